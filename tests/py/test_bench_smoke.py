"""Smoke test of the benchmark (`python -m bench --quick`): it runs end to end on the embedded
engine against the loopback API and prints every row the quick mode promises. Timing is NOT
asserted here: timing goals are benchmark figures (`make bench`, BENCHMARKS.md), not test
assertions. The quick mode needs only the project's .venv: it leaves the dlt row out (dlt lives in
bench/.venv-dlt, which only `make bench` makes) and says so, and runs the RowBinary rows exactly
when the binary has `--format RowBinary`, saying so when it has not (and that the records have
no typed RowBinary row)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from astro_dev import embedded

REPO_ROOT = Path(__file__).resolve().parent.parent.parent

# Every row label of the quick table (a row missing means a measurement silently dropped out).
EXPECTED_ROWS = [
    "INSERT astro   executable('astro fetch')",
    "INSERT url()   url(..., JSONAsString)",
    "INSERT python  executable('python_fetch.py')",
    "INSERT floor   executable('cat'), pre-made row",
    "SELECT astro   executable('astro fetch')",
    "SELECT url()   url(..., JSONAsString)",
    "SELECT python  executable('python_fetch.py')",
    "process alone astro fetch",
    "process alone python_fetch.py",
    "ratios INSERT: astro/url",
    "raw     astro fetch ",
    "raw     url() JSONAsString",
    "raw     python_fetch.py",
    "raw     floor: executable('cat') of astro's rows",
    "people  astro fetch --output people ",
    "people  url() + JSONExtract ARRAY JOIN",
    "people  astro raw + MV parse (product path)",
    "people  floor: executable('cat') of astro's rows",
    "ratios: raw astro/url",
    "records astro fetch --output records --format JSONEachRow",
    "records url() JSONEachRow",
    "records floor: executable('cat') of astro's rows",
    "ratios: astro/url",
    "pages   astro executable() into chDB (whole INSERT)",
    "udf     first call N=1 (pool start)",
    "udf     N=1 ",
    "udf     N=100 ",
    "udf     N=1000 ",
    "rss     astro fetch (raw)",
    "rss     astro fetch --output people ",
    "rss     astro fetch --output records (JSONEachRow)",
    "rss     python_fetch.py (raw, reference)",
    "latency astro pages --concurrency 1",
    "latency astro pages --concurrency 8",
    "latency url() with a {1..25} glob (JSONAsString)",
    "latency astro --each-row --concurrency 8 (250 parents)",
    "--each-row over 2,000 parents: peak RSS",
    # The quick mode's promise about dlt: left out, and said so.
    "Note: pages: the dlt row is left out (--quick)",
]
ROWBINARY_ROWS = [
    "raw     astro fetch --format RowBinary",
    "people  astro fetch --output people --format RowBinary",
    "rss     astro fetch --format RowBinary (raw)",
    "rss     astro fetch --output people --format RowBinary",
    # astro's RowBinary records are one `record String` column, not the typed row compared.
    "Note: records RowBinary row not measured",
]
GOALS = [
    "small ingest: astro / url() <= 1.05x",
    "large raw: astro / url() JSONAsString <= 0.9x",
    "large people: astro / (url() + JSONExtract) <= 0.6x",
    "records: astro / url() JSONEachRow <= 1.0x",
    "peak RSS astro raw <= 1.2x payload",
    "peak RSS astro people <= 1.5x payload",
    "peak RSS astro records <= 1.5x payload",
    "latency pages: astro c1 / astro c8 >= 5x",
    "latency pages: url() glob / astro c8 >= 4x",
]
ROWBINARY_GOALS = [
    "large raw: astro RowBinary / url() JSONAsString <= 0.9x",
    "large people: astro RowBinary / (url() + JSONExtract) <= 0.6x",
]
# Only in the full run, which has dlt and 100,000 parents.
FULL_ONLY = ["pages   dlt", "pages: dlt / astro >= 10x", "latency dlt", "dlt / astro c8",
             "dlt resolve / astro", "--each-row 100k parents"]


def binary_has_rowbinary() -> bool:
    """Read from the binary itself, not from the bench, so a broken detection fails here."""
    help_text = subprocess.run([str(embedded.USER_SCRIPTS_DIR / "astro"), "fetch", "--help"],
                               capture_output=True, text=True, check=True).stdout
    return "RowBinary" in help_text


def test_bench_quick_prints_every_row(tmp_path):
    out_json = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, "-m", "bench", "--quick", "--json", str(out_json)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"python -m bench --quick failed:\n{proc.stdout}\n{proc.stderr}"
    table = proc.stdout
    rowbinary = binary_has_rowbinary()
    expected = EXPECTED_ROWS + (ROWBINARY_ROWS if rowbinary
                                else ["Note: RowBinary rows not measured"])
    goals = GOALS + (ROWBINARY_GOALS if rowbinary else [])
    missing = [row for row in expected + goals if row not in table]
    assert not missing, f"rows missing from the table: {missing}\n{table}"
    assert not [row for row in FULL_ONLY if row in table], table
    # Every goal row ends in a verdict; the figures are numbers, never nan.
    goal_lines = [line for line in table.splitlines() if re.search(r"\b(PASS|MISS)$", line)]
    assert len(goal_lines) == len(goals), table
    assert "nan" not in table.lower()
    results = json.loads(out_json.read_text())
    assert {g["goal"] for g in results["goals"]} >= set(goals)
    assert len(results["goals"]) == len(goal_lines)
    assert results["small"]["rounds"] >= 3
    for method in ("astro", "url", "python"):
        assert results["small"]["insert"][method]["n"] == results["small"]["rounds"]
        assert results["large"]["raw"][method]["median_s"] > 0
    assert results["records"]["insert"]["astro"]["median_s"] > 0
    assert results["pages"]["dlt_measured"] is False


def test_the_bench_calls_executable_with_the_columns_and_settings_of_the_shipped_views():
    """The bench writes its own executable() calls (other formats and flags than the views), with
    copies of the views' column lists and essential SETTINGS: held equal to sql/07 and sql/08 here.
    Read from a child run from the repository root, as `python -m bench` runs."""
    code = ("import json; from bench.common import EXEC_SETTINGS, PEOPLE_COLUMNS, RAW_COLUMNS; "
            "print(json.dumps([RAW_COLUMNS, PEOPLE_COLUMNS, EXEC_SETTINGS]))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    raw, people, settings = json.loads(proc.stdout)
    fetch_raw = (embedded.SQL_DIR / "07_fetch_raw.sql").read_text()
    fetch_people = (embedded.SQL_DIR / "08_fetch_people.sql").read_text()
    assert f"'{raw}'" in fetch_raw, fetch_raw
    assert f"'{people}'" in fetch_people, fetch_people
    assert f"SETTINGS {settings}\n" in fetch_raw and f"SETTINGS {settings}\n" in fetch_people
