"""Every output format of `astro fetch` read back by the engine itself: whatever astro writes in
TabSeparated, JSONEachRow or RowBinary, ClickHouse reads as the same values, byte for byte
(awkward strings, long strings whose RowBinary length takes several bytes, the timestamp to the
millisecond)."""

from __future__ import annotations

import json
import subprocess

import pytest

from astro_dev import embedded
from astro_dev.api_server import Reply

FORMATS = ["TabSeparated", "JSONEachRow", "RowBinary", "RowBinaryWithNamesAndTypes"]

RAW = "source String, fetched_at DateTime64(3, 'UTC'), attempts UInt32, payload String"
PEOPLE = "craft String, name String, fetched_at DateTime64(3, 'UTC')"
RECORD = "record String"

# Lengths 127/128 and 16383/16384 are where a RowBinary length grows a byte.
AWKWARD = [
    ("ISS", "tab\there"),
    ("ISS", "new\nline and cr\r"),
    ("ISS", "back\\slash \\t not a tab, \\N not null"),
    ("Crew 'Dragon'", 'quote " and \''),
    ("Союз", "Юрий Гагарин"),
    ("天宫", "rocket 🚀 👩‍🚀"),
    ("ISS", "nul\x00 bs\x08 ff\x0c"),
    ("", ""),
    ("ISS", "x" * 127),
    ("ISS", "y" * 128),
    ("ISS", "z" * 16383),
    ("ISS", "w" * 16384),
    ("ISS", "long " * 100_000),
]


def body(people) -> bytes:
    return json.dumps({"message": "success", "number": len(people),
                       "people": [{"craft": c, "name": n} for c, n in people]}).encode()


def fetch_sql(url: str, flags: str, fmt: str, structure: str, select: str) -> str:
    command = f"astro fetch --url {url} --allow-host 127.0.0.1 --allow-private {flags} --format {fmt}"
    return f"SELECT {select} FROM executable('{command}', {fmt}, {embedded.sql_string(structure)})"


@pytest.fixture
def served(api):
    api.set_default("/astros.json", Reply(body=body(AWKWARD)))
    return api.url("/astros.json")


@pytest.mark.parametrize("fmt", FORMATS)
def test_people_rows_arrive_byte_for_byte(db, served, fmt):
    rows = db.rows(fetch_sql(served, "--output people", fmt, PEOPLE,
                             "hex(craft) AS c, hex(name) AS n, toUnixTimestamp64Milli(fetched_at) AS t"))
    got = [(bytes.fromhex(r["c"]).decode(), bytes.fromhex(r["n"]).decode()) for r in rows]
    assert got == AWKWARD
    # One fetch, one timestamp, and a plausible one (not the epoch, not garbage bytes).
    stamps = {int(r["t"]) for r in rows}
    assert len(stamps) == 1
    assert int(db.scalar("SELECT toUnixTimestamp64Milli(now64(3))")) - stamps.pop() in range(0, 600_000)


def test_every_format_gives_the_same_raw_row(db, served):
    """One raw row per format; the same source, attempts and payload, and a payload that is the
    answer itself."""
    seen = {}
    for fmt in FORMATS:
        [row] = db.rows(fetch_sql(served, "", fmt, RAW,
                                  "source, attempts, hex(payload) AS p, toUnixTimestamp64Milli(fetched_at) AS t"))
        seen[fmt] = (row["source"], row["attempts"], bytes.fromhex(row["p"]))
        assert int(row["t"]) > 1_700_000_000_000, row["t"]
    assert len(set(seen.values())) == 1, seen
    source, attempts, payload = seen["RowBinary"]
    assert source == served and attempts == 1
    assert [(p["craft"], p["name"]) for p in json.loads(payload)["people"]] == AWKWARD


@pytest.mark.parametrize("fmt", ["TabSeparated", "RowBinary", "RowBinaryWithNamesAndTypes"])
def test_records_as_one_json_column_arrive_byte_for_byte(db, served, fmt):
    rows = db.rows(fetch_sql(served, "--records /people --output records", fmt, RECORD,
                             "hex(record) AS r, isValidJSON(record) AS ok"))
    records = [json.loads(bytes.fromhex(r["r"])) for r in rows]
    assert [(p["craft"], p["name"]) for p in records] == AWKWARD
    assert {r["ok"] for r in rows} == {1}


@pytest.mark.parametrize("declared, reason", [
    ("craft String, name String, fetched_at DateTime('UTC')",
     "Type of 'fetched_at' must be DateTime('UTC'), not DateTime64(3, 'UTC')"),
    ("craft String, name String, fetched_at DateTime64(6, 'UTC')",
     "Type of 'fetched_at' must be DateTime64(6, 'UTC'), not DateTime64(3, 'UTC')"),
    ("craft String, name Nullable(String), fetched_at DateTime64(3, 'UTC')",
     "Type of 'name' must be Nullable(String), not String"),
])
def test_a_declared_type_that_differs_fails_with_names_and_types(db, served, declared, reason):
    """Plain RowBinary trusts the declared structure (a DateTime64(6) would read milliseconds as
    microseconds); with the header, ClickHouse checks every type and fails the query."""
    with pytest.raises(embedded.QueryError) as info:
        db.query(fetch_sql(served, "--output people", "RowBinaryWithNamesAndTypes", declared, "count()"))
    assert reason in str(info.value)


def test_names_and_types_map_by_name(db, served):
    rows = db.rows(fetch_sql(served, "--output people", "RowBinaryWithNamesAndTypes",
                             "name String, craft String", "hex(craft) AS c, hex(name) AS n"))
    assert [(bytes.fromhex(r["c"]).decode(), bytes.fromhex(r["n"]).decode()) for r in rows] == AWKWARD


def test_binary_formats_cannot_carry_an_input_cursor():
    proc = subprocess.run([str(embedded.USER_SCRIPTS_DIR / "astro"), "fetch", "--url",
                           "http://127.0.0.1:9/?since={cursor}", "--cursor-stdin",
                           "--format", "RowBinary"], capture_output=True, text=True)
    assert proc.returncode == 2 and "not RowBinary" in proc.stderr, proc.stderr
