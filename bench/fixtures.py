"""What the run sets up before timing: the answers the loopback API serves (serialised once), the
bench tables, and a user_scripts directory holding copies of the programs ClickHouse runs."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

from astro_dev import embedded
from astro_dev.api_server import astros_body

from .common import BenchError

HERE = Path(__file__).resolve().parent

# The small answer: the shape of Open Notify's, about 200 bytes.
SMALL_PEOPLE = [("ISS", "Oleg Kononenko"), ("ISS", "Nikolai Chub"),
                ("ISS", "Tracy Caldwell Dyson"), ("Tiangong", "Ye Guangfu")]

# Record names with what a JSON parser must get right: escaped quotes and backslashes, a tab,
# non-ASCII letters, a character outside the BMP (a surrogate pair when \u-escaped).
_NAMES = ("Ann Lee", 'Šimek "Ace"', "O'Hara \\ back", "Nováková\tTab", "李小龍", "rocket 🚀")
# Each name as the inside of a JSON string, escaped once (json.dumps without the quotes).
_NAMES_JSON = tuple(json.dumps(name, ensure_ascii=False)[1:-1] for name in _NAMES)

BENCH_DDL = [
    "CREATE DATABASE IF NOT EXISTS bench",
    # The latency rows (bench/latency.py): id and name of each record.
    """CREATE TABLE IF NOT EXISTS bench.latency (id UInt64, name String)
        ENGINE = MergeTree ORDER BY tuple()""",
    # Same columns and engine as astro.raw_data, but no materialized view: fetch + insert only.
    """CREATE TABLE IF NOT EXISTS bench.raw_data (source String, fetched_at DateTime64(3, 'UTC'),
        attempts UInt32, payload String) ENGINE = ReplacingMergeTree(fetched_at) ORDER BY source""",
    # People and records in arrival order (no sort key), so the fetch and parse dominate, not
    # sorting.
    """CREATE TABLE IF NOT EXISTS bench.people (craft String, name String,
        fetched_at DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY tuple()""",
    """CREATE TABLE IF NOT EXISTS bench.records (id UInt64, name String, value Float64, ok Bool)
        ENGINE = MergeTree ORDER BY tuple()""",
    # The product's path for reference: raw rows whose materialized view parses the payload
    # (as astro.people_mv does).
    """CREATE TABLE IF NOT EXISTS bench.raw_mv (source String, fetched_at DateTime64(3, 'UTC'),
        attempts UInt32, payload String) ENGINE = ReplacingMergeTree(fetched_at) ORDER BY source""",
    """CREATE TABLE IF NOT EXISTS bench.people_mv_target (craft String, name String,
        fetched_at DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY tuple()""",
    """CREATE MATERIALIZED VIEW IF NOT EXISTS bench.people_mv TO bench.people_mv_target AS
        SELECT tupleElement(p, 'craft') AS craft, tupleElement(p, 'name') AS name, fetched_at
        FROM bench.raw_mv
        ARRAY JOIN JSONExtract(payload, 'people',
                               'Array(Tuple(craft String, name String))') AS p""",
]


def small_body() -> bytes:
    return astros_body(SMALL_PEOPLE)


def large_body(n: int) -> bytes:
    """The Open Notify answer with n people, about 52 bytes each: 1,000,000 make ~50 MB."""
    crafts = ("ISS", "Tiangong", "Crew Dragon", "Soyuz MS-25")
    surnames = ("Kononenko", "Caldwell Dyson", "Guangfu", "Šimek", "Nováková", "O'Hara")
    return astros_body((crafts[i % len(crafts)], f"{surnames[i % len(surnames)]} {i:07d}")
                       for i in range(n))


def record_name(i: int) -> str:
    """The name of record i, as a reader must decode it."""
    return f"{_NAMES[i % len(_NAMES)]} {i}"


def record_json(i: int) -> str:
    """Record i as compact JSON: id UInt64, name String, value Float64, ok Bool (~70 bytes).
    Written by hand rather than json.dumps of a dict: a million dicts cost seconds and hundreds
    of MiB here, and the text is the same."""
    name = _NAMES_JSON[i % len(_NAMES_JSON)]
    return (f'{{"id":{i},"name":"{name} {i}","value":{i / 16!r},'
            f'"ok":{"true" if i % 3 else "false"}}}')


def records_body(n: int) -> bytes:
    """n records as one top-level JSON array (what both `--records=` and ClickHouse's
    JSONEachRow read)."""
    return ("[" + ",".join(record_json(i) for i in range(n)) + "]").encode("utf-8")


def page_body(first: int, size: int, next_url: str | None) -> bytes:
    """One page of a paginated API: records first..first+size-1 under `items`, and the next
    page's absolute URL under `next` (null on the last page), as dlt's json_link paginator and
    astro's next-url:/next read it."""
    items = ",".join(record_json(i) for i in range(first, first + size))
    return f'{{"items":[{items}],"next":{json.dumps(next_url)}}}'.encode("utf-8")


def python_interpreter() -> str:
    """The interpreter the Python executable's shebang names: /usr/bin/python3 when present (what
    a user script would name), else this interpreter's real path. Never a pyenv-style shim,
    whose start-up would be charged to the Python script unfairly."""
    if os.access("/usr/bin/python3", os.X_OK):
        return "/usr/bin/python3"
    return os.path.realpath(sys.executable)


def install_user_scripts(target: Path, interpreter: str) -> None:
    """A user_scripts directory for the run: a copy of the repo's astro (ClickHouse requires the
    executable inside user_scripts_path, so a copy rather than a link), `cat` for the floor rows,
    and python_fetch.py with a concrete interpreter in its shebang."""
    target.mkdir(parents=True, exist_ok=True)
    binary = embedded.USER_SCRIPTS_DIR / "astro"
    if not os.access(binary, os.X_OK):
        raise BenchError(f"{binary} is missing: run `make build` first (make bench does)")
    shutil.copy2(binary, target / "astro")
    # The floor of any executable() ingest: `cat` of a pre-made answer (what ClickHouse costs
    # around a program that does no work).
    cat = shutil.which("cat")
    if cat is None:
        raise BenchError("no `cat` on PATH")
    shutil.copy2(cat, target / "cat")
    source = (HERE / "python_fetch.py").read_text().split("\n", 1)[1]
    script = target / "python_fetch.py"
    script.write_text(f"#!{interpreter}\n{source}")
    script.chmod(0o755)
