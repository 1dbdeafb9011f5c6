"""The dbt bridge itself (astro_dev.dbt_embedded), apart from the dbt project: which target a
command line asks for, and how it runs dbt (dbtRunner, dbt's exit statuses). The project's runs
are in test_dbt.py."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from astro_dev import dbt_embedded
from conftest import USER_SCRIPTS
from dbt_helpers import run_dbt


@pytest.mark.parametrize("success, exception, status", [
    (True, None, 0),                      # dbt ran, everything passed
    (False, None, 1),                     # dbt ran, a model or test failed (the result says so)
    (False, RuntimeError("no profile"), 2),  # dbt itself failed
])
def test_exit_status_is_dbts_own(success, exception, status):
    result = SimpleNamespace(success=success, exception=exception, result=None)
    assert dbt_embedded.exit_status(result) == status


def test_a_command_line_dbt_cannot_parse_exits_2_and_says_why(tmp_path):
    # dbtRunner returns a usage error without printing it (dbt's click entry point printed it).
    result = run_dbt(["build", "--no-such-option"], tmp_path / "db", user_scripts=USER_SCRIPTS)
    assert result.returncode == 2, result.output
    assert "dbt: No such option '--no-such-option'." in result.output, result.output


@pytest.mark.parametrize("argv, target", [
    (["build", "--target", "server"], "server"),
    (["build", "--target=server"], "server"),
    (["build", "-t", "server"], "server"),
    (["build", "-tserver"], "server"),
    (["-tserver", "debug"], "server"),
    (["build", "-tembedded"], "embedded"),
    (["build", "-t", "embedded"], "embedded"),
    (["build", "--target", "embedded"], "embedded"),
    (["build", "--target=embedded"], "embedded"),
    # dbt takes the last one given.
    (["build", "-t", "server", "--target=embedded"], "embedded"),
    (["build", "--target=embedded", "-tserver"], "server"),
    # Not a target: the environment's (main sets DBT_TARGET, default embedded).
    (["build", "--threads", "2", "--vars", "{ingest: true}"], "from-env"),
    (["build", "--target"], "from-env"),
])
def test_the_target_is_read_in_every_spelling_dbt_takes(argv, target, monkeypatch):
    monkeypatch.setenv("DBT_TARGET", "from-env")
    assert dbt_embedded.target_of(argv) == target


def test_without_a_target_or_dbt_target_it_is_embedded(monkeypatch):
    monkeypatch.delenv("DBT_TARGET", raising=False)
    assert dbt_embedded.target_of(["build"]) == "embedded"


def test_a_server_target_spelt_short_does_not_take_the_embedded_lock(tmp_path):
    """-tserver used to be missed: the bridge took the embedded database's lock (and checked the
    embedded versions) for a run on the server. Here the embedded database is held by this
    process, so a run that takes its lock stops at once with 'is in use'."""
    db_path = tmp_path / "db"
    with dbt_embedded.embedded.DatabaseLock(db_path):
        held = run_dbt(["debug", "--config-dir"], db_path, user_scripts=USER_SCRIPTS)
        server = run_dbt(["debug", "--config-dir", "-tserver"], db_path, user_scripts=USER_SCRIPTS)
    assert held.returncode == 2 and "is in use" in held.output, held.output
    assert server.returncode == 0, server.output
    assert "is in use" not in server.output, server.output
