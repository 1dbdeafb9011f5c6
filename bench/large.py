"""2. Large answer (1,000,000 people, ~50 MB).

raw rows into bench.raw_data (the columns of astro.raw_data, no materialized view, so only fetch
and insert are timed): astro, url(..., JSONAsString), python, and the floor (executable('cat') of
astro's rows). people rows into bench.people: `astro fetch --output people` against url() +
JSONExtract ARRAY JOIN, and for reference the product's path (astro raw into a table whose
materialized view parses the payload) and the floor. Where the binary has `--format RowBinary`,
astro's raw and people rows also run in RowBinary. Interleaved, the order turning each run."""

from __future__ import annotations

from typing import Any

from .common import (
    LARGE_FLAGS,
    LARGE_PY_FLAGS,
    LARGE_SETTINGS,
    PEOPLE_COLUMNS,
    RAW_COLUMNS,
    Run,
    Series,
    fmt_s,
    rotated,
)
from .report import Section

RAW_NAMES = {"astro": "raw     astro fetch",
             "astro_rowbinary": "raw     astro fetch --format RowBinary",
             "url": "raw     url() JSONAsString",
             "python": "raw     python_fetch.py",
             "floor": "raw     floor: executable('cat') of astro's rows"}
PEOPLE_NAMES = {"astro": "people  astro fetch --output people",
                "astro_rowbinary": "people  astro fetch --output people --format RowBinary",
                "url": "people  url() + JSONExtract ARRAY JOIN",
                "astro_mv": "people  astro raw + MV parse (product path)",
                "floor": "people  floor: executable('cat') of astro's rows"}


def _executable(command: str, fmt: str, columns: str) -> str:
    return f"executable('{command}', {fmt}, '{columns}', SETTINGS {LARGE_SETTINGS})"


def run(ctx: Run) -> dict[str, Any]:
    u, n = ctx.urls["large"], ctx.args.people
    fetch = f"astro fetch --url {u}?via=astro {LARGE_FLAGS}"
    python = f"python_fetch.py --url {u}?via=python {LARGE_PY_FLAGS}"
    astro = [ctx.astro, "fetch", "--url", f"{u}?via=floor", *LARGE_FLAGS.split()]
    floor_raw = ctx.premade("floor_raw.tsv", astro)
    floor_people = ctx.premade("floor_people.tsv", [*astro, "--output", "people"])
    into_raw = "INSERT INTO bench.raw_data SELECT * FROM "
    into_people = "INSERT INTO bench.people SELECT * FROM "
    raw = {
        "astro": into_raw + _executable(fetch, "TabSeparated", RAW_COLUMNS),
        "url": f"INSERT INTO bench.raw_data SELECT '{u}?via=url', now64(3), 1, json "
               f"FROM url('{u}?via=url', JSONAsString, 'json String')",
        "python": into_raw + _executable(python, "TabSeparated", RAW_COLUMNS),
        "floor": into_raw + _executable(f"cat {floor_raw}", "TabSeparated", RAW_COLUMNS),
    }
    people = {
        "astro": into_people + _executable(f"{fetch} --output people", "TabSeparated",
                                           PEOPLE_COLUMNS),
        "url": "INSERT INTO bench.people SELECT tupleElement(p, 'craft'), "
               "tupleElement(p, 'name'), now64(3) "
               f"FROM url('{u}?via=url', JSONAsString, 'json String') "
               "ARRAY JOIN JSONExtract(json, 'people', "
               "'Array(Tuple(craft String, name String))') AS p",
        # The product's path: astro.fetch_raw's format (RowBinaryWithNamesAndTypes where the
        # binary has it), then the materialized view parses the payload.
        "astro_mv": "INSERT INTO bench.raw_mv SELECT * FROM "
                    + (_executable(f"{fetch} --format RowBinaryWithNamesAndTypes",
                                   "RowBinaryWithNamesAndTypes", RAW_COLUMNS)
                       if ctx.rowbinary else _executable(fetch, "TabSeparated", RAW_COLUMNS)),
        "floor": into_people + _executable(f"cat {floor_people}", "TabSeparated",
                                           PEOPLE_COLUMNS),
    }
    if ctx.rowbinary:
        raw["astro_rowbinary"] = into_raw + _executable(f"{fetch} --format RowBinary",
                                                        "RowBinary", RAW_COLUMNS)
        people["astro_rowbinary"] = into_people + _executable(
            f"{fetch} --output people --format RowBinary", "RowBinary", PEOPLE_COLUMNS)
    raw_s = {m: Series(m) for m in raw}
    people_s = {m: Series(m) for m in people}
    runs = ctx.args.large_runs
    for r in range(runs):
        for m in rotated(list(raw), r):
            ctx.db.execute("TRUNCATE TABLE bench.raw_data")
            raw_s[m].samples.append(ctx.timed(raw[m]))
            ctx.expect(f"large raw via {m}: rows", ctx.count(
                "SELECT count() FROM bench.raw_data"), 1)
            if r == 0:  # the payload arrived whole
                ctx.expect(f"large raw via {m}: people in the payload", ctx.count(
                    "SELECT length(JSONExtractArrayRaw(payload, 'people')) "
                    "FROM bench.raw_data"), n)
        for m in rotated(list(people), r):
            for table in ("bench.people", "bench.raw_mv", "bench.people_mv_target"):
                ctx.db.execute(f"TRUNCATE TABLE {table}")
            people_s[m].samples.append(ctx.timed(people[m]))
            table = "bench.people_mv_target" if m == "astro_mv" else "bench.people"
            ctx.expect(f"large people via {m}: rows",
                       ctx.count(f"SELECT count() FROM {table}"), n)
    out: dict[str, Any] = {
        "runs": runs,
        "raw": {m: s.summary() for m, s in raw_s.items()},
        "people": {m: s.summary() for m, s in people_s.items()},
        "raw_astro_over_url": raw_s["astro"].median / raw_s["url"].median,
        "raw_python_over_astro": raw_s["python"].median / raw_s["astro"].median,
        "people_astro_over_url": people_s["astro"].median / people_s["url"].median,
        "people_astro_mv_over_url": people_s["astro_mv"].median / people_s["url"].median,
    }
    if ctx.rowbinary:
        out["raw_astro_rowbinary_over_url"] = (raw_s["astro_rowbinary"].median
                                               / raw_s["url"].median)
        out["people_astro_rowbinary_over_url"] = (people_s["astro_rowbinary"].median
                                                  / people_s["url"].median)
    return out


def section(big: dict[str, Any], people: int, answer_bytes: int) -> Section:
    out = Section(f"2. Large answer ({people:,} people, {answer_bytes / 1024 / 1024:.1f} MiB, "
                  f"{big['runs']} runs), s", ("median", "min", "max"))
    for names, series in ((RAW_NAMES, big["raw"]), (PEOPLE_NAMES, big["people"])):
        for key in names:  # the table's order, whatever order the runs took
            if key in series:
                v = series[key]
                out.row(names[key], fmt_s(v["median_s"]), fmt_s(v["min_s"]), fmt_s(v["max_s"]))
    ratios = (f"ratios: raw astro/url {big['raw_astro_over_url']:.2f}x, raw python/astro "
              f"{big['raw_python_over_astro']:.1f}x, people astro/(url+parse) "
              f"{big['people_astro_over_url']:.2f}x, product path/(url+parse) "
              f"{big['people_astro_mv_over_url']:.2f}x")
    if "raw_astro_rowbinary_over_url" in big:
        ratios += (f"; RowBinary: raw astro/url {big['raw_astro_rowbinary_over_url']:.2f}x, "
                   f"people astro/(url+parse) {big['people_astro_rowbinary_over_url']:.2f}x")
    out.notes.append(ratios)
    return out
