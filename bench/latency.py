"""7. A real network's latency (issue 26): every answer of the loopback API comes after 50 ms, as
over a network, and the CPU idles while each tool waits.

    pages     250 records in 25 pages of 10 (page numbers, an empty 26th page ends them):
              astro --concurrency 1 and 8 (executable() INSERT into chDB), ClickHouse's own
              url() with a {1..25} glob (the page count must be known), dlt's rest_api with its
              page_number paginator (whole process, in dlt's venv)
    parents   250 parents, 4 child records each: astro --each-row --concurrency 8 (the parents
              from the input query) against dlt's rest_api `resolve` (the parents from a list
              endpoint, one more request)
    memory    peak RSS of a large --each-row run (100,000 parents, no delay; 2,000 in the quick
              run) against the bytes it prints

Both sides must load exactly the records served."""

from __future__ import annotations

import json
import os
import shutil

import subprocess
import time
from pathlib import Path
from typing import Any

from astro_dev.api_server import json_reply

from .common import BenchError, Run, Series, fmt_mb, fmt_s
from .pages import _dlt_env
from .report import Section
from .rss import GNU_TIME

HERE = Path(__file__).resolve().parent
DLT_SCRIPT = HERE / "dlt_pages.py"
DELAY = 0.05
PAGES, PAGE_SIZE = 25, 10
PARENTS, CHILDREN = 250, 4
COLUMNS = "id UInt64, name String"
SETTINGS = ("check_exit_code = 1, stderr_reaction = 'log_last', command_read_timeout = 120000")
FLAGS = "--output records --format JSONEachRow --max-elapsed 100s --timeout 10s"
NAMES = {"astro_1": "latency astro pages --concurrency 1",
         "astro_8": "latency astro pages --concurrency 8",
         "url_glob": "latency url() with a {1..25} glob (JSONAsString)",
         "dlt_pages": "latency dlt rest_api page_number (whole process)",
         "astro_parents": "latency astro --each-row --concurrency 8 (250 parents)",
         "dlt_parents": "latency dlt rest_api resolve (250 parents, whole process)"}


def serve(api) -> None:
    """The delayed endpoints: /latency/items?page=N and /latency/parents[/ID/children]."""
    def items(request):
        page = int(request.param("page") or 0)
        first = (page - 1) * PAGE_SIZE
        rows = [{"id": i, "name": f"r{i}"} for i in range(first, first + PAGE_SIZE)] \
            if 1 <= page <= PAGES else []
        return json_reply({"items": rows}, delay=DELAY)
    api.set_handler("/latency/items", items)
    api.set_default("/latency/parents", json_reply(
        {"items": [{"id": p} for p in range(1, PARENTS + 1)]}, delay=DELAY))
    for parent in range(1, PARENTS + 1):
        api.set_default(f"/latency/parents/{parent}/children", json_reply(
            {"items": [{"id": parent * 10 + c, "name": f"c{c}"} for c in range(CHILDREN)]},
            delay=DELAY))
    # No delay: the memory run's many parents, each with one comment of about a kilobyte.
    body = "x" * 1000
    api.set_handler("/fanout", lambda request: json_reply(
        {"items": [{"id": int(request.param("p")), "name": body}]}))


def _insert(command: str, input_query: str = "") -> str:
    source = f"({input_query}), " if input_query else ""
    return (f"INSERT INTO bench.latency SELECT * FROM executable('{command}', JSONEachRow, "
            f"'{COLUMNS}', {source}SETTINGS {SETTINGS})")


def _dlt(python: str, ctx: Run, mode: str, base: str, round_no: int) -> float:
    """One dlt process from empty directories, its wall seconds, its rows checked."""
    home = ctx.workdir / f"dlt-latency-{mode}-{round_no}"
    home.mkdir()
    try:
        start = time.perf_counter()
        proc = subprocess.run([python, str(DLT_SCRIPT), mode, "--url", base, "--dir", str(home),
                               "--loader", "jsonl"], env=_dlt_env(home), cwd=home,
                              capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise BenchError(f"dlt {mode} exited {proc.returncode}: {proc.stderr.strip()[-600:]}")
        counted = subprocess.run([python, str(DLT_SCRIPT), "count", "--dir", str(home)],
                                 env=_dlt_env(home), cwd=home, capture_output=True, text=True)
        rows = json.loads(counted.stdout.strip().splitlines()[-1])["rows"]
        want = PAGES * PAGE_SIZE if mode == "latency-pages" else PARENTS * CHILDREN
        ctx.expect(f"dlt {mode}: rows", rows, want)
        return wall
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _memory(ctx: Run, parents: int) -> dict[str, Any]:
    """Peak RSS of an --each-row run over `parents` parents, and the bytes it printed."""
    rows = ctx.workdir / "parents.ndjson"
    rows.write_text("".join(f'{{"p":{p}}}\n' for p in range(parents)))
    argv = [ctx.astro, "fetch", "--url", ctx.urls["fanout"] + "?p={p}", "--each-row",
            "--records", "/items", "--concurrency", "8", "--output", "records", "--format",
            "JSONEachRow", "--max-elapsed", "600s",
            # every parent's rows are held until all are done (all or nothing), so one
            # --max-bytes covers them all: 100,000 parents of about 1 KB pass the 64 MiB default
            "--max-bytes", "1GiB"]
    printed = ctx.workdir / "printed.ndjson"
    with open(rows, "rb") as stdin, open(printed, "wb") as stdout:
        start = time.perf_counter()
        if os.access(GNU_TIME, os.X_OK):
            proc = subprocess.run([GNU_TIME, "-f", "%M", *argv], stdin=stdin, stdout=stdout,
                                  stderr=subprocess.PIPE)
            peak = int(proc.stderr.decode().strip().splitlines()[-1]) * 1024
        else:
            child = subprocess.Popen(argv, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)
            _, status, usage = os.wait4(child.pid, 0)
            proc = subprocess.CompletedProcess(argv, os.waitstatus_to_exitcode(status), b"",
                                               child.stderr.read())
            peak = usage.ru_maxrss * 1024
        wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise BenchError(f"each-row memory run exited {proc.returncode}: {proc.stderr[-300:]!r}")
    size = printed.stat().st_size
    ctx.expect("each-row memory run: rows", sum(1 for _ in printed.open("rb")), parents)
    return {"parents": parents, "peak_rss_bytes": peak, "printed_bytes": size,
            "over_printed": peak / size, "wall_s": wall}


def run(ctx: Run) -> dict[str, Any]:
    items = ctx.urls["latency_items"]
    page_command = (f"astro fetch --url {items}?v=1 --records /items --paginate page:page {FLAGS}"
                    " --concurrency ")
    parents_command = (f"astro fetch --url {ctx.urls['latency_parents']}/{{id}}/children "
                       f"--each-row --records /items --concurrency 8 {FLAGS}")
    parents_input = f"SELECT number + 1 AS id FROM numbers({PARENTS})"
    glob = (f"INSERT INTO bench.latency SELECT JSONExtractUInt(r, 'id'), JSONExtractString(r, "
            f"'name') FROM url('{items}?page={{1..{PAGES}}}', JSONAsString, 'json String') "
            "ARRAY JOIN JSONExtractArrayRaw(json, 'items') AS r")
    queries = {"astro_1": _insert(page_command + "1"), "astro_8": _insert(page_command + "8"),
               "url_glob": glob, "astro_parents": _insert(parents_command, parents_input)}
    expected = {"astro_parents": PARENTS * CHILDREN}
    series = {name: Series(name) for name in (*queries, "dlt_pages", "dlt_parents")}
    python = ctx.args.dlt_python if ctx.args.dlt else None
    runs = 1 if ctx.args.quick else 3
    for name, sql in queries.items():
        ctx.db.execute("TRUNCATE TABLE bench.latency")
        ctx.timed(sql)  # warm-up
        for _ in range(runs):
            ctx.db.execute("TRUNCATE TABLE bench.latency")
            series[name].samples.append(ctx.timed(sql))
            ctx.expect(f"latency {name}: rows", ctx.count("SELECT count() FROM bench.latency"),
                       expected.get(name, PAGES * PAGE_SIZE))
    if python is not None:
        base = ctx.urls["latency_base"]
        for r in range(runs):
            series["dlt_pages"].samples.append(_dlt(python, ctx, "latency-pages", base, r))
            series["dlt_parents"].samples.append(_dlt(python, ctx, "latency-parents", base, r))
    out: dict[str, Any] = {name: s.summary() for name, s in series.items() if s.samples}
    median = {name: s.median for name, s in series.items() if s.samples}
    out["ratios"] = {
        "astro_1_over_astro_8": median["astro_1"] / median["astro_8"],
        "url_glob_over_astro_8": median["url_glob"] / median["astro_8"],
    }
    if python is not None:
        out["ratios"]["dlt_pages_over_astro_8"] = median["dlt_pages"] / median["astro_8"]
        out["ratios"]["dlt_parents_over_astro"] = median["dlt_parents"] / median["astro_parents"]
    out["memory"] = _memory(ctx, 2_000 if ctx.args.quick else 100_000)
    return out


def section(r: dict[str, Any]) -> Section:
    out = Section(f"7. Latency: every answer after {int(DELAY * 1000)} ms ({PAGES} pages of "
                  f"{PAGE_SIZE}; {PARENTS} parents of {CHILDREN}), s", ("median", "min", "max"))
    out.timed_rows(NAMES, r)
    out.notes.append("ratios: " + ", ".join(f"{k} {v:.1f}x" for k, v in r["ratios"].items()))
    m = r["memory"]
    out.notes.append(f"--each-row over {m['parents']:,} parents: peak RSS "
                     f"{fmt_mb(m['peak_rss_bytes'])} MiB for {fmt_mb(m['printed_bytes'])} MiB "
                     f"printed ({m['over_printed']:.2f}x), {fmt_s(m['wall_s'])} s")
    return out



