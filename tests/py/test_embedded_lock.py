"""One holder of an embedded database at a time, across processes: the second one (make sql,
make ingest, dbt) stops with one line naming the holder's pid, not a Python traceback or an
engine error, and the database works again once the holder is gone. Real processes throughout."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from astro_dev import embedded
from astro_dev.api_server import Reply, astros_body
from conftest import USER_SCRIPTS
from dbt_helpers import run_dbt

# Opens the database through astro_dev.embedded, says so, and holds it until stdin closes.
HOLDER = textwrap.dedent("""
    import sys
    from astro_dev import embedded
    db = embedded.Database(sys.argv[1], user_scripts_dir=sys.argv[2])
    print("holding", flush=True)
    sys.stdin.read()
    db.close()
""")


def astro_db(db_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "Q"}
    env["ASTRO_DB"] = str(db_path)
    return subprocess.run([sys.executable, "-m", "astro_dev.astro_db", "--user-scripts",
                           str(USER_SCRIPTS), *args], env=env, capture_output=True, text=True,
                          timeout=120)


def assert_in_use_line(stderr: str, db_path: Path, pid: int) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert f"the embedded database {os.path.realpath(db_path)} is in use" in lines[0], lines[0]
    assert f"pid {pid}" in lines[0], lines[0]


@pytest.fixture
def holder(tmp_path):
    """A second process holding tmp_path/db open (schema applied first, by this process)."""
    db_path = tmp_path / "db"
    with embedded.Database(db_path, user_scripts_dir=USER_SCRIPTS) as db:
        db.apply()
    proc = subprocess.Popen([sys.executable, "-c", HOLDER, str(db_path), str(USER_SCRIPTS)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "holding\n"
        yield db_path, proc
    finally:
        proc.stdin.close()
        proc.wait(timeout=120)


def test_make_sql_while_another_process_holds_the_database(holder):
    db_path, proc = holder
    busy = astro_db(db_path, "sql", "SELECT 1")
    assert busy.returncode == 1
    assert busy.stdout == ""
    assert_in_use_line(busy.stderr, db_path, proc.pid)
    ingest = astro_db(db_path, "ingest")
    assert ingest.returncode == 1
    assert_in_use_line(ingest.stderr, db_path, proc.pid)

    # Once the holder is gone, the lock is free again (the lock file stays: no stale lock).
    proc.stdin.close()
    assert proc.wait(timeout=120) == 0
    ok = astro_db(db_path, "sql", "SELECT count() FROM astro.raw_data")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == "0\n"
    assert embedded.lock_path(db_path).exists()


def test_dbt_while_another_process_holds_the_database(holder, tmp_path):
    db_path, proc = holder
    result = run_dbt(["debug"], db_path, user_scripts=USER_SCRIPTS)
    assert result.returncode == 2, result.output
    assert_in_use_line(result.output, db_path, proc.pid)


def test_make_sql_while_dbt_holds_the_database(tmp_path, api, api_url, test_functions_dir):
    # dbt holds the database from its start to its exit (here a build whose ingest hook waits on
    # a slow API); make sql meanwhile is refused with dbt's pid.
    db_path = tmp_path / "db"
    with embedded.Database(db_path, user_scripts_dir=USER_SCRIPTS) as db:
        db.apply()
    api.set_default("/astros.json", Reply(body=astros_body([("ISS", "Ann")]), delay=60))
    env = dict(os.environ, ASTRO_DB=str(db_path), ASTRO_API_URL=api_url,
               ASTRO_USER_SCRIPTS=str(USER_SCRIPTS), ASTRO_FUNCTIONS=str(test_functions_dir),
               DBT_TARGET_PATH=str(tmp_path / "dbt" / "target"),
               DBT_LOG_PATH=str(tmp_path / "dbt" / "logs"), DBT_SEND_ANONYMOUS_USAGE_STATS="false")
    dbt = subprocess.Popen([sys.executable, "-m", "astro_dev.dbt_embedded", "build", "--vars",
                            "{ingest: true}"], env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        lock = embedded.lock_path(db_path)
        # Bounded wait (a hang guard) until dbt has written its pid into the lock file, then
        # until its ingest hook is waiting on the API.
        deadline = time.monotonic() + 120
        while lock.read_text().strip() != str(dbt.pid) or api.count("/astros.json") == 0:
            assert dbt.poll() is None, "dbt ended before it held the database"
            assert time.monotonic() < deadline, "dbt never took the lock and reached the API"
            time.sleep(0.1)
        busy = astro_db(db_path, "sql", "SELECT 1")
        assert dbt.poll() is None, "dbt ended before the check; the check proves nothing"
        assert busy.returncode == 1
        assert_in_use_line(busy.stderr, db_path, dbt.pid)
    finally:
        dbt.kill()
        dbt.wait(timeout=60)
