"""Shared fixtures for the SQL/dbt layer tests: a loopback fake API and a fresh embedded database.

Nothing here reaches the internet: every test points ASTRO_API_URL at the loopback server (the
ClickHouse engine runs in this process, so `astro` children inherit the variable).

Fixtures
    api               a started ApiServer (astro_dev.api_server); stopped after the test
    api_url           api.url("/astros.json"), also exported as ASTRO_API_URL for the test
    test_functions_dir
                      a copy of clickhouse_config/functions/ whose `astro udf` command line also
                      allows 127.0.0.1 and private addresses (the fake API is on loopback; the
                      shipped XML keeps the safe default allowlist, api.open-notify.org only)
    make_db           factory: make_db(name="db", apply=True, functions_dir=...) -> an open
                      astro_dev.embedded.Database in tmp_path, schema applied; closed after the test
    db                make_db() with the test UDF config (depends on api_url, so the environment
                      is set before the engine starts any child)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from astro_dev import embedded
from astro_dev.api_server import ApiServer

# Where the astro binary is taken from: <repo>/user_scripts (installed by `make build`).
# ASTRO_TEST_USER_SCRIPTS overrides it (e.g. to test another build).
USER_SCRIPTS = Path(os.environ.get("ASTRO_TEST_USER_SCRIPTS") or embedded.USER_SCRIPTS_DIR)

# The UDF command line for tests: the shipped one plus the loopback allowance.
TEST_UDF_FLAGS = "--allow-host 127.0.0.1 --allow-private"


@pytest.fixture(scope="session", autouse=True)
def _binary_installed():
    binary = USER_SCRIPTS / "astro"
    if not os.access(binary, os.X_OK):
        pytest.fail(f"{binary} is missing: run `make build` first (make test does)", pytrace=False)


@pytest.fixture
def api():
    with ApiServer() as server:
        yield server


@pytest.fixture
def api_url(api, monkeypatch):
    url = api.url("/astros.json")
    monkeypatch.setenv("ASTRO_API_URL", url)
    return url


def write_test_functions(target: Path, extra_flags: str = TEST_UDF_FLAGS) -> Path:
    """The shipped UDF XML with the loopback allowance, in `target` (see
    embedded.write_functions_with_flags)."""
    return embedded.write_functions_with_flags(target, extra_flags)


@pytest.fixture(scope="session")
def test_functions_dir(tmp_path_factory) -> Path:
    return write_test_functions(tmp_path_factory.mktemp("functions"))


@pytest.fixture
def make_db(tmp_path, test_functions_dir):
    opened: list[embedded.Database] = []

    def factory(name: str = "db", apply: bool = True, functions_dir: Path | None = None,
                schedule: bool = False) -> embedded.Database:
        database = embedded.Database(tmp_path / name, user_scripts_dir=USER_SCRIPTS,
                                     functions_dir=functions_dir or test_functions_dir)
        opened.append(database)
        if apply:
            database.apply(schedule=schedule)
        return database

    yield factory
    for database in opened:
        database.close()


@pytest.fixture
def db(api_url, make_db) -> embedded.Database:
    return make_db()
