"""3. Records as typed rows: 1,000,000 records (id UInt64, name String with escapes and non-ASCII,
value Float64, ok Bool) served as one top-level JSON array, inserted into bench.records
(MergeTree ORDER BY tuple()) by

    astro   executable('astro fetch --records= --output records --format JSONEachRow',
            JSONEachRow, '<columns>'): astro validates and prints one record per line
    url     url(..., JSONEachRow, '<the same columns>'): ClickHouse's JSONEachRow reads a
            top-level [{...},...] array itself (checked on chDB 26.9; the same records under
            {"items": [...]} would be read as one row of defaults, so both read the plain array)
    floor   executable('cat') of astro's rows: ClickHouse's own JSONEachRow parse of them

and, where the binary prints typed records in RowBinary, astro in RowBinary. Every method must
land n rows with the same content (a fingerprint over all columns, and the names of the first
records as Python wrote them): a wrong count or content is a failed measurement."""

from __future__ import annotations

import json
from typing import Any

from .common import LARGE_FLAGS, LARGE_SETTINGS, RECORD_COLUMNS, Run, Series, rotated
from .fixtures import record_name
from .report import Section

NAMES = {"astro": "records astro fetch --output records --format JSONEachRow",
         "astro_rowbinary": "records astro fetch --output records --format RowBinary",
         "url": "records url() JSONEachRow",
         "floor": "records floor: executable('cat') of astro's rows"}
FINGERPRINT = ("SELECT count(), sum(id), sum(cityHash64(name)), sum(value), countIf(ok) "
               "FROM bench.records")
CHECKED_NAMES = 6  # records 0..5 carry every kind of name


def _executable(command: str, fmt: str) -> str:
    return f"executable('{command}', {fmt}, '{RECORD_COLUMNS}', SETTINGS {LARGE_SETTINGS})"


def rowbinary_unsupported(ctx: Run) -> str | None:
    """Why the RowBinary records row cannot run with this binary, or None when it can."""
    if not ctx.rowbinary:
        return "this astro build's `fetch --format` has no RowBinary"
    # RowBinary is positional and typed: astro could write a record's fields only if it were told
    # the columns, and `astro fetch` takes no such flag; its RowBinary records are one
    # `record String` column of JSON, which is not the typed row this measurement compares.
    return ("astro prints records in RowBinary as one `record String` column of JSON; it has "
            "no flag to be told the records' columns, so no typed RowBinary row exists")


def fetch_command(u: str) -> str:
    """astro's records command: the empty pointer for a top-level array, written `--records=`
    since ClickHouse splits the command line on spaces and passes no empty argument."""
    return f"astro fetch --url {u} --records= --output records --format JSONEachRow {LARGE_FLAGS}"


def run(ctx: Run) -> dict[str, Any]:
    u, n = ctx.urls["records"], ctx.args.records
    into = "INSERT INTO bench.records SELECT * FROM "
    premade = ctx.premade("floor_records.ndjson",
                          [ctx.astro, *fetch_command(f"{u}?via=floor").split()[1:]])
    inserts = {
        "astro": into + _executable(fetch_command(f"{u}?via=astro"), "JSONEachRow"),
        "url": f"{into}url('{u}?via=url', JSONEachRow, '{RECORD_COLUMNS}')",
        "floor": into + _executable(f"cat {premade}", "JSONEachRow"),
    }
    if rowbinary_unsupported(ctx) is None:
        command = fetch_command(f"{u}?via=astro_rowbinary").replace("JSONEachRow", "RowBinary")
        inserts["astro_rowbinary"] = into + _executable(command, "RowBinary")
    want_names = [record_name(i) for i in range(min(CHECKED_NAMES, n))]
    series = {m: Series(m) for m in inserts}
    reference: str | None = None
    for r in range(ctx.args.large_runs):
        for m in rotated(list(inserts), r):
            ctx.db.execute("TRUNCATE TABLE bench.records")
            series[m].samples.append(ctx.timed(inserts[m]))
            ctx.expect(f"records via {m}: rows", ctx.count("SELECT count() FROM bench.records"), n)
            if r == 0:  # every method reads the same content
                got = ctx.scalar(FINGERPRINT)
                reference = reference or got
                ctx.expect(f"records via {m}: fingerprint (count, sums) against the first method",
                           got, reference)
                names = [row["name"] for row in ctx.db.rows(
                    f"SELECT name FROM bench.records WHERE id < {CHECKED_NAMES} ORDER BY id")]
                ctx.expect(f"records via {m}: names", json.dumps(names, ensure_ascii=False),
                           json.dumps(want_names, ensure_ascii=False))
    out: dict[str, Any] = {
        "runs": ctx.args.large_runs,
        "insert": {m: s.summary() for m, s in series.items()},
        "astro_over_url": series["astro"].median / series["url"].median,
    }
    if "astro_rowbinary" in series:
        out["astro_rowbinary_over_url"] = series["astro_rowbinary"].median / series["url"].median
    return out


def section(rec: dict[str, Any], n: int, answer_bytes: int) -> Section:
    out = Section(f"3. Records as typed rows ({n:,} records, {answer_bytes / 1024 / 1024:.1f} MiB "
                  f"top-level array, {rec['runs']} runs), s", ("median", "min", "max"))
    out.timed_rows(NAMES, rec["insert"])
    ratios = f"ratios: astro/url {rec['astro_over_url']:.2f}x"
    if "astro_rowbinary_over_url" in rec:
        ratios += f", astro RowBinary/url {rec['astro_rowbinary_over_url']:.2f}x"
    out.notes.append(ratios)
    return out
