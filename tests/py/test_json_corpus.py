"""The JSON corpus (tests/data/json/corpus.jsonl) still says what this chDB says.

src/json.rs holds astro's verdict equal to the corpus (`cargo test`); this test holds the corpus
equal to the ClickHouse engine, so an engine upgrade that changes a verdict fails here instead of
letting astro accept what the materialized view cannot read. The fix is to rerun
`python -m astro_dev.json_corpus`, read the diff, and follow the change in src/json.rs.
"""

from __future__ import annotations

import subprocess
import sys


def test_corpus_verdicts_match_this_clickhouse():
    # A child process: chDB holds one engine per process, and the other tests open databases.
    done = subprocess.run([sys.executable, "-m", "astro_dev.json_corpus", "--check"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
