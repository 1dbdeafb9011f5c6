"""astro against ClickHouse's url(), a Python executable and dlt, side by side (issue 14).

    make bench                                   # the full run: builds, makes dlt's venv
    .venv/bin/python -m bench --quick            # smoke run, no dlt (from the repository root)
    ... -m bench --json results.json             # also write every figure as JSON

Everything runs on the embedded engine (chDB, one session for the whole run) against a loopback
fake API (astro_dev.api_server; answers serialised once, before timing); nothing reaches the
internet. The run works in a temporary directory: a database, a user_scripts directory holding
copies of the programs ClickHouse runs, and a copy of the UDF XML that allows the loopback host.
The measurements and their rows are described in their modules (see bench/__init__.py); the goals
in bench/report.py. Exit code 1 only when a measurement failed (a query error, a wrong row count
or content), never for a missed goal.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from astro_dev import embedded
from astro_dev.api_server import ApiServer, Reply

from . import fixtures, large, latency, pages, records, report, rss, small, udf
from .common import MIB, BenchError, Run, astro_formats, machine_info, work_parent

HERE = Path(__file__).resolve().parent
DLT_PYTHON = HERE / ".venv-dlt" / "bin" / "python"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench",
                                     description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: few rounds, smaller answers, no dlt (every other row)")
    parser.add_argument("--rounds", type=int, help="small-ingest rounds (default 40; quick 5)")
    parser.add_argument("--large-runs", type=int,
                        help="runs of the large, records and pages rows (default 5; quick 1)")
    parser.add_argument("--people", type=int,
                        help="people in the large answer (default 1,000,000; quick 100,000)")
    parser.add_argument("--records", type=int,
                        help="records in the records answer (default 1,000,000; quick 100,000)")
    parser.add_argument("--pages", type=int, default=100, help="pages of the paginated API")
    parser.add_argument("--page-size", type=int, default=1000, help="records per page")
    parser.add_argument("--dlt-rounds", type=int, default=3, help="dlt runs (each ~7 s)")
    parser.add_argument("--dlt-python", default=str(DLT_PYTHON),
                        help="the interpreter of dlt's venv (default bench/.venv-dlt)")
    parser.add_argument("--no-dlt", action="store_true", help="leave the dlt row out")
    parser.add_argument("--udf-rows", default="1,100,1000", help="N values for the UDF")
    parser.add_argument("--udf-repeats", type=int, help="runs per UDF N (default 5; quick 2)")
    parser.add_argument("--rss-runs", type=int,
                        help="peak-RSS runs per command (default 3; quick 1)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--dir", help="parent of the temporary directory (default /dev/shm when "
                        "it has room, else the system temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    q = args.quick
    args.rounds = args.rounds or (5 if q else 40)
    args.large_runs = args.large_runs or (1 if q else 5)
    args.people = args.people or (100_000 if q else 1_000_000)
    args.records = args.records or (100_000 if q else 1_000_000)
    args.udf_repeats = args.udf_repeats or (2 if q else 5)
    args.rss_runs = args.rss_runs or (1 if q else 3)
    args.udf_rows = [int(x) for x in args.udf_rows.split(",") if x.strip()]
    # dlt is heavy to install (its own venv): the quick run, which `make test` runs, never needs it.
    args.dlt = not (q or args.no_dlt or args.dlt_rounds < 1)
    return args


def log(message: str) -> None:
    print(f"# {message}", file=sys.stderr, flush=True)


def serve(api: ApiServer, args: argparse.Namespace, results: dict[str, Any]) -> dict[str, str]:
    """Serialise every answer once and script it on the loopback server; the URLs by name."""
    started = time.perf_counter()
    bodies = {"small": fixtures.small_body(), "large": fixtures.large_body(args.people),
              "records": fixtures.records_body(args.records)}
    paths = {"small": "/astros.json", "large": "/large.json", "records": "/records.json"}
    for name, body in bodies.items():
        api.set_default(paths[name], Reply(body=body))
    for k in range(1, args.pages + 1):
        next_url = api.url(f"/pages/{k + 1}.json") if k < args.pages else None
        api.set_default(f"/pages/{k}.json", Reply(body=fixtures.page_body(
            (k - 1) * args.page_size, args.page_size, next_url)))
    results.update({f"{name}_bytes": len(body) for name, body in bodies.items()})
    log(f"answers ready in {time.perf_counter() - started:.1f}s: small {len(bodies['small'])} B, "
        f"large {len(bodies['large']) / MIB:.1f} MiB ({args.people:,} people), records "
        f"{len(bodies['records']) / MIB:.1f} MiB ({args.records:,}), {args.pages} pages")
    latency.serve(api)
    return {**{name: api.url(path) for name, path in paths.items()},
            "pages": api.url("/pages/1.json"), "latency_items": api.url("/latency/items"),
            "latency_parents": api.url("/latency/parents"), "latency_base": api.url("/latency"),
            "fanout": api.url("/fanout")}


def notices(ctx: Run) -> list[str]:
    """The rows this run leaves out, and why (never dropped silently)."""
    out = []
    if not ctx.args.dlt:
        flag = ("--quick" if ctx.args.quick else "--no-dlt" if ctx.args.no_dlt
                else "--dlt-rounds 0")
        out.append(f"pages: the dlt row is left out ({flag}); dlt runs in its own venv, "
                   "bench/.venv-dlt, which `make bench` makes and `make test` does not")
    if not ctx.rowbinary:
        out.append("RowBinary rows not measured: this astro build's `fetch --format` takes "
                   f"{', '.join(ctx.formats)} only")
    elif (why := records.rowbinary_unsupported(ctx)) is not None:
        out.append(f"records RowBinary row not measured: {why}")
    return out


def run(args: argparse.Namespace, workdir: Path) -> tuple[dict[str, Any], list[report.Section],
                                                          list[str]]:
    results: dict[str, Any] = {"machine": machine_info(), "mode": "quick" if args.quick else "full",
                               "workdir": str(workdir)}
    interpreter = fixtures.python_interpreter()
    scripts = workdir / "user_scripts"
    fixtures.install_user_scripts(scripts, interpreter)
    functions = embedded.write_functions_with_flags(workdir / "functions",
                                                    "--allow-host 127.0.0.1 --allow-private")
    formats = astro_formats(scripts / "astro")
    results.update({"python_interpreter": interpreter, "astro_formats": formats,
                    "large_people": args.people, "records_count": args.records})
    with ApiServer(lifetime=3600) as api:
        urls = serve(api, args, results)
        # Anything that falls back to the environment stays on loopback.
        os.environ["ASTRO_API_URL"] = urls["small"] + "?via=astro"
        with embedded.Database(workdir / "db", user_scripts_dir=scripts,
                               functions_dir=functions) as db:
            ctx = Run(args, workdir, scripts, db, urls, formats)
            for line in notices(ctx):
                log(line)
            db.apply()
            for statement in fixtures.BENCH_DDL:
                db.execute(statement)
            for name, module in (("small", small), ("large", large), ("records", records),
                                 ("pages", pages), ("udf", udf), ("latency", latency)):
                started = time.perf_counter()
                results[name] = module.run(ctx)
                log(f"{name} done in {time.perf_counter() - started:.0f}s")
        payloads = {"large": results["large_bytes"], "records": results["records_bytes"]}
        results["rss"] = rss.run(ctx, payloads)
    results["goals"] = report.judge(results)
    sections = [small.section(results["small"], results["small_bytes"]),
                large.section(results["large"], args.people, results["large_bytes"]),
                records.section(results["records"], args.records, results["records_bytes"]),
                pages.section(results["pages"]),
                udf.section(results["udf"]),
                rss.section(results["rss"], payloads),
                latency.section(results["latency"])]
    return results, sections, notices(ctx)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="astro-bench-", dir=work_parent(args.dir)))
    started = time.perf_counter()
    try:
        results, sections, notes = run(args, workdir)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    results["elapsed_s"] = time.perf_counter() - started
    print(report.render(results, sections, notes))
    print(f"\n(total {results['elapsed_s']:.0f}s)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
