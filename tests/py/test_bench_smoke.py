"""Smoke test of the benchmark (bench/run.py --quick): it runs end to end on the embedded engine
against the loopback API and prints every row of the table. Timing is NOT asserted here: timing
goals are benchmark figures (`make bench`, BENCHMARKS.md), not test assertions."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent.parent

# Every row label of the table (a row missing means a measurement silently dropped out).
EXPECTED_ROWS = [
    "INSERT astro   executable('astro fetch')",
    "INSERT url()   url(..., JSONAsString)",
    "INSERT python  executable('python_fetch.py')",
    "SELECT astro   executable('astro fetch')",
    "SELECT url()   url(..., JSONAsString)",
    "SELECT python  executable('python_fetch.py')",
    "process alone astro fetch",
    "process alone python_fetch.py",
    "ratios INSERT: astro/url",
    "raw     astro fetch",
    "raw     url() JSONAsString",
    "raw     python_fetch.py",
    "people  astro fetch --output people",
    "people  url() + JSONExtract ARRAY JOIN",
    "people  astro raw + MV parse (product path)",
    "ratios: raw astro/url",
    "rss     astro fetch (raw)",
    "rss     astro fetch --output people",
    "rss     python_fetch.py (raw, reference)",
    "udf     first call N=1 (pool start)",
    "udf     N=1 ",
    "udf     N=100 ",
    "udf     N=1000 ",
    "small: astro <= 1.2x url()",
    "small: python >= 15x astro",
    "large raw: astro <= 1.1x url()",
    "large people: astro <= url()+parse",
    "peak RSS astro raw <= 2.5x payload + 10 MB",
    "peak RSS astro people <= 2.5x payload + 10 MB",
]


def test_bench_quick_prints_every_row(tmp_path):
    out_json = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, str(REPO_ROOT / "bench" / "run.py"), "--quick", "--json", str(out_json)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, f"bench/run.py --quick failed:\n{proc.stdout}\n{proc.stderr}"
    table = proc.stdout
    missing = [row for row in EXPECTED_ROWS if row not in table]
    assert not missing, f"rows missing from the table: {missing}\n{table}"
    # Every goal row ends in a verdict; the figures are numbers, never nan.
    goal_lines = [line for line in table.splitlines() if re.search(r"\b(PASS|MISS)$", line)]
    assert len(goal_lines) == 6, table
    assert "nan" not in table.lower()
    results = json.loads(out_json.read_text())
    assert {g["goal"] for g in results["goals"]} and len(results["goals"]) == 6
    assert results["small"]["rounds"] >= 3
    for method in ("astro", "url", "python"):
        assert results["small"]["insert"][method]["n"] == results["small"]["rounds"]
        assert results["large"]["raw"][method]["median_s"] > 0
