"""1. Small ingest (the ~200-byte normal answer): the whole INSERT ... SELECT into astro.raw_data
(the shipped schema, its materialized view into astro.people included) for

    astro   the shipped statement sql/ingest/ingest.sql (executable('astro fetch')), verbatim
    url     url(..., JSONAsString), the URL as `source`, now64(3) and 1 as the other columns
    python  executable('python_fetch.py') (stdlib urllib, the same retry and validation contract)
    floor   executable('cat') of a row astro printed earlier: ClickHouse's cost around a program
            that does no work (not a contender)

interleaved per round, the order turning each round; median, p10, p90. Also the fetch alone
(SELECT, no insert), and the programs alone outside ClickHouse, to show where the time goes."""

from __future__ import annotations

import subprocess
import time
from typing import Any

from astro_dev import embedded

from .common import EXEC_SETTINGS, RAW_COLUMNS, BenchError, Run, Series, fmt_ms, rotated
from .report import Section

NAMES = {"astro": "astro   executable('astro fetch')",
         "url": "url()   url(..., JSONAsString)",
         "python": "python  executable('python_fetch.py')",
         "floor": "floor   executable('cat'), pre-made row"}


def run(ctx: Run) -> dict[str, Any]:
    u = ctx.urls["small"]
    ingest = embedded.split_statements(embedded.INGEST_FILE.read_text())
    if len(ingest) != 1:
        raise BenchError(f"{embedded.INGEST_FILE} should hold one statement")
    inserts = {
        # The shipped statement, verbatim; the URL comes from ASTRO_API_URL (?via=astro).
        "astro": ingest[0],
        "url": f"INSERT INTO astro.raw_data SELECT '{u}?via=url', now64(3), 1, json "
               f"FROM url('{u}?via=url', JSONAsString, 'json String')",
        "python": f"INSERT INTO astro.raw_data SELECT * FROM executable("
                  f"'python_fetch.py --url {u}?via=python', TabSeparated, '{RAW_COLUMNS}', "
                  f"SETTINGS {EXEC_SETTINGS})",
    }
    floor_file = ctx.premade("floor_small.tsv", [ctx.astro, "fetch", "--url", f"{u}?via=floor"])
    inserts["floor"] = (f"INSERT INTO astro.raw_data SELECT * FROM executable("
                        f"'cat {floor_file}', TabSeparated, '{RAW_COLUMNS}', "
                        f"SETTINGS {EXEC_SETTINGS})")
    selects = {
        "astro": f"SELECT sum(length(payload)) FROM executable('astro fetch', TabSeparated, "
                 f"'{RAW_COLUMNS}', SETTINGS {EXEC_SETTINGS})",
        "url": f"SELECT sum(length(json)) FROM url('{u}?via=url', JSONAsString, 'json String')",
        "python": f"SELECT sum(length(payload)) FROM executable("
                  f"'python_fetch.py --url {u}?via=python', TabSeparated, '{RAW_COLUMNS}', "
                  f"SETTINGS {EXEC_SETTINGS})",
    }
    methods = list(inserts)
    # Warm-up (first process start, first url() connection), then check each lands a row.
    for m in methods:
        ctx.timed(inserts[m])
        if m in selects:
            ctx.timed(selects[m])
    for m in methods:
        ctx.expect(f"small ingest via {m}: rows", ctx.count(
            f"SELECT count() FROM astro.raw_data FINAL WHERE source = '{u}?via={m}'"), 1)
    ins = {m: Series(m) for m in methods}
    sel = {m: Series(m) for m in selects}
    rounds = ctx.args.rounds
    for r in range(rounds):
        order = rotated(methods, r)
        for m in order:
            ins[m].samples.append(ctx.timed(inserts[m]))
        for m in order:
            if m in sel:
                sel[m].samples.append(ctx.timed(selects[m]))
    # The processes alone, outside ClickHouse (spawned from here, stdout to /dev/null): how much
    # of each INSERT is the program itself.
    alone_cmd = {
        "astro": [ctx.astro, "fetch", "--url", f"{u}?via=alone"],
        "python": [str(ctx.scripts / "python_fetch.py"), "--url", f"{u}?via=alone"],
    }
    alone = {m: Series(m) for m in alone_cmd}
    for r in range(rounds):
        for m in rotated(list(alone_cmd), r):
            start = time.perf_counter()
            proc = subprocess.run(alone_cmd[m], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            alone[m].samples.append(time.perf_counter() - start)
            if proc.returncode != 0:
                raise BenchError(f"{m} alone exited {proc.returncode}: "
                                 f"{proc.stderr.decode(errors='replace')[:300]}")
    return {
        "rounds": rounds,
        "process_alone": {m: s.summary() for m, s in alone.items()},
        "process_alone_python_over_astro": alone["python"].median / alone["astro"].median,
        "insert": {m: s.summary() for m, s in ins.items()},
        "fetch_only": {m: s.summary() for m, s in sel.items()},
        "astro_over_url": ins["astro"].median / ins["url"].median,
        "python_over_astro": ins["python"].median / ins["astro"].median,
        "fetch_only_astro_over_url": sel["astro"].median / sel["url"].median,
        "fetch_only_python_over_astro": sel["python"].median / sel["astro"].median,
    }


def section(s: dict[str, Any], answer_bytes: int) -> Section:
    out = Section(f"1. Small ingest ({answer_bytes} B answer, {s['rounds']} interleaved rounds), "
                  "ms", ("median", "p10", "p90"))

    def add(label: str, summary: dict[str, Any]) -> None:
        out.row(label, fmt_ms(summary["median_s"]), fmt_ms(summary["p10_s"]),
                fmt_ms(summary["p90_s"]))

    for key, summary in s["insert"].items():
        add("INSERT " + NAMES[key], summary)
    for key, summary in s["fetch_only"].items():
        add("SELECT " + NAMES[key], summary)
    for key, summary in s["process_alone"].items():
        add("process alone " + ("astro fetch" if key == "astro" else "python_fetch.py"), summary)
    out.notes.append(
        f"ratios INSERT: astro/url {s['astro_over_url']:.2f}x, "
        f"python/astro {s['python_over_astro']:.1f}x;  "
        f"SELECT only: astro/url {s['fetch_only_astro_over_url']:.2f}x, "
        f"python/astro {s['fetch_only_python_over_astro']:.1f}x;  process alone: "
        f"python/astro {s['process_alone_python_over_astro']:.1f}x")
    return out
