"""4. A paginated API: 100,000 records in 100 pages of 1,000 on the loopback server, each page
`{"items": [...], "next": "<absolute URL of the next page>" | null}` (dlt's json_link and
astro's next-url:/next styles read the same pages, so both make exactly 100 requests).

    astro   INSERT INTO bench.records SELECT * FROM executable('astro fetch --records /items
            --paginate next-url:/next --output records --format JSONEachRow ...', JSONEachRow,
            '<columns>') on the embedded engine (chDB)
    dlt     dlt's rest_api source into its embedded duckdb destination (bench/dlt_pages.py in
            dlt's own venv, bench/.venv-dlt), the whole process timed: interpreter start and
            `import dlt` included. Also the seconds measured inside the process, without the
            interpreter's start: import dlt + pipeline.run, and pipeline.run alone.

dlt runs with loader_file_format=jsonl, the fastest loader its duckdb destination has with the
pinned install (the default, insert_values, spent ~20 s of a ~23 s run in the load step here):
the comparison gives dlt its best setting. Each dlt run starts from empty pipeline and data
directories; telemetry is off and its data, project and home directories are the run's own, so
nothing reaches beyond loopback. Both sides must load exactly the records served."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from .common import LARGE_FLAGS, LARGE_SETTINGS, RECORD_COLUMNS, BenchError, Run, Series
from .report import Section

HERE = Path(__file__).resolve().parent
DLT_SCRIPT = HERE / "dlt_pages.py"
DLT_LOADER = "jsonl"
NAMES = {"astro": "pages   astro executable() into chDB (whole INSERT)",
         "dlt": "pages   dlt rest_api -> duckdb (whole process, start incl.)",
         "dlt_in_process": "pages   dlt inside its process: import dlt + run()",
         "dlt_run": "pages   dlt inside its process: pipeline.run() only"}


def astro_insert(first_url: str, pages: int) -> str:
    command = (f"astro fetch --url {first_url} --records /items --paginate next-url:/next "
               f"--max-pages {pages + 1} --output records --format JSONEachRow "
               f"--allow-host 127.0.0.1 --allow-private {LARGE_FLAGS}")
    return (f"INSERT INTO bench.records SELECT * FROM executable('{command}', JSONEachRow, "
            f"'{RECORD_COLUMNS}', SETTINGS {LARGE_SETTINGS})")


def _dlt_env(home: Path) -> dict[str, str]:
    """dlt's environment: nothing inherited but PATH and the locale, telemetry off, every
    directory dlt reads or writes inside this round's own directory."""
    env = {key: os.environ[key] for key in ("PATH", "LANG", "LC_ALL") if key in os.environ}
    env.update({"HOME": str(home), "DLT_DATA_DIR": str(home / "data"),
                "DLT_PROJECT_DIR": str(home), "DLT_LOCAL_DIR": str(home),
                "RUNTIME__DLTHUB_TELEMETRY": "false"})
    return env


def _dlt(python: str, mode: str, home: Path, *extra: str) -> tuple[dict[str, Any], float]:
    """One dlt_pages.py process: its JSON line and its wall seconds."""
    start = time.perf_counter()
    proc = subprocess.run([python, str(DLT_SCRIPT), mode, "--dir", str(home), *extra],
                          env=_dlt_env(home), cwd=home, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise BenchError(f"dlt {mode} exited {proc.returncode}: {proc.stderr.strip()[-600:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1]), wall


def dlt_round(ctx: Run, python: str, round_no: int) -> dict[str, Any]:
    """One dlt load from empty directories, checked, then removed."""
    home = ctx.workdir / f"dlt-{round_no}"
    home.mkdir()
    try:
        inside, wall = _dlt(python, "load", home, "--url", ctx.urls["pages"],
                            "--loader", DLT_LOADER)
        counted, _ = _dlt(python, "count", home)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    n = ctx.args.pages * ctx.args.page_size
    ctx.expect("pages via dlt: rows", counted["rows"], n)
    ctx.expect("pages via dlt: distinct ids", counted["distinct_ids"], n)
    return {**inside, "wall_s": wall}


def run(ctx: Run) -> dict[str, Any]:
    n = ctx.args.pages * ctx.args.page_size
    insert = astro_insert(ctx.urls["pages"], ctx.args.pages)
    astro = Series("astro")
    dlt = {key: Series(key) for key in ("dlt", "dlt_in_process", "dlt_run")}
    python = ctx.args.dlt_python if ctx.args.dlt else None
    if python is not None and not os.access(python, os.X_OK):
        raise BenchError(f"{python} is missing: `make bench` makes dlt's venv "
                         "(or pass --no-dlt)")
    version = None
    if python is not None:
        # Untimed: bring dlt's files into the page cache, as any second run finds them.
        subprocess.run([python, "-c", "import dlt.sources.rest_api, duckdb"], check=True,
                       env=_dlt_env(ctx.workdir), cwd=ctx.workdir)
    ctx.timed(insert)  # warm-up, as every astro row has
    rounds = max(ctx.args.large_runs, ctx.args.dlt_rounds if python else 0)
    for r in range(rounds):
        # Alternate who goes first, so neither always follows the other's load on the CPU.
        sides = ["astro", "dlt"] if r % 2 == 0 else ["dlt", "astro"]
        for side in sides:
            if side == "astro" and r < ctx.args.large_runs:
                ctx.db.execute("TRUNCATE TABLE bench.records")
                astro.samples.append(ctx.timed(insert))
                ctx.expect("pages via astro: rows",
                           ctx.count("SELECT count() FROM bench.records"), n)
                ctx.expect("pages via astro: distinct ids",
                           ctx.count("SELECT uniqExact(id) FROM bench.records"), n)
            elif side == "dlt" and python is not None and r < ctx.args.dlt_rounds:
                got = dlt_round(ctx, python, r)
                version = got["dlt_version"]
                dlt["dlt"].samples.append(got["wall_s"])
                dlt["dlt_in_process"].samples.append(got["in_process_s"])
                dlt["dlt_run"].samples.append(got["run_s"])
    out: dict[str, Any] = {"pages": ctx.args.pages, "page_size": ctx.args.page_size,
                           "astro": astro.summary(), "dlt_measured": python is not None}
    if python is not None:
        out.update({key: s.summary() for key, s in dlt.items()})
        out.update({"dlt_version": version, "dlt_loader_file_format": DLT_LOADER,
                    "dlt_rounds": ctx.args.dlt_rounds,
                    "dlt_over_astro": dlt["dlt"].median / astro.median,
                    "dlt_run_over_astro": dlt["dlt_run"].median / astro.median})
    return out


def section(p: dict[str, Any]) -> Section:
    n = p["pages"] * p["page_size"]
    runs = f"astro {p['astro']['n']} runs"
    if p["dlt_measured"]:
        runs += (f", dlt {p['dlt_rounds']} runs (dlt {p['dlt_version']}, "
                 f"{p['dlt_loader_file_format']})")
    out = Section(f"4. Paginated API ({n:,} records in {p['pages']} pages of {p['page_size']:,}, "
                  f"loopback; {runs}), s", ("median", "min", "max"))
    out.timed_rows(NAMES, p)
    if p["dlt_measured"]:
        out.notes.append(f"ratios: dlt (whole process)/astro {p['dlt_over_astro']:.1f}x, "
                         f"dlt run() only/astro {p['dlt_run_over_astro']:.1f}x")
    return out
