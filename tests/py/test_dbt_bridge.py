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


# -- the fence around the private dbt-clickhouse internals the bridge patches --------------------

def test_the_dbt_clickhouse_internals_the_bridge_patches_are_as_it_expects():
    """Fails the day dbt-clickhouse changes get_db_client, ChHttpClient._create_client or
    ChClientWrapper's _conn_settings, with a message naming the change and what to do."""
    problems = dbt_embedded.internals_problems()
    assert not problems, dbt_embedded.internals_message(problems)


def installed():
    from dbt.adapters.clickhouse import connections, dbclient, httpclient
    return connections, dbclient, httpclient


def copy(module, **replaced) -> SimpleNamespace:
    return SimpleNamespace(**{**vars(module), **replaced})


def the_real_create_client():
    return installed()[2].ChHttpClient.__dict__["_create_client"]


def test_the_fence_names_a_changed_client_factory():
    connections, dbclient, httpclient = installed()

    def get_db_client(credentials, profile):
        return None

    problems = dbt_embedded.internals_problems(
        copy(connections, get_db_client=get_db_client),
        copy(dbclient, get_db_client=get_db_client), httpclient)
    assert problems == ["dbclient.get_db_client takes (credentials, profile), not (credentials)"]

    def elsewhere(credentials):
        return None

    assert dbt_embedded.internals_problems(copy(connections, get_db_client=elsewhere), dbclient,
                                           httpclient) \
        == ["connections no longer imports dbclient.get_db_client by name"]

    class ClickHouseConnectionManager:
        @classmethod
        def open(cls, connection):
            return make_client(connection)  # noqa: F821 (never run: only its source is read)

    assert dbt_embedded.internals_problems(
        copy(connections, ClickHouseConnectionManager=ClickHouseConnectionManager), dbclient,
        httpclient) == ["ClickHouseConnectionManager.open() no longer calls get_db_client()"]


def test_the_fence_names_a_changed_http_client():
    connections, dbclient, httpclient = installed()

    class Renamed(dbclient.ChClientWrapper):
        def _make_client(self, credentials):
            return None

    assert dbt_embedded.internals_problems(connections, dbclient,
                                           copy(httpclient, ChHttpClient=Renamed)) \
        == ["ChHttpClient no longer defines _create_client()"]

    class OtherSettings(dbclient.ChClientWrapper):
        def _create_client(self, credentials):
            return connect(settings=self._settings)  # noqa: F821 (never run)

    assert dbt_embedded.internals_problems(connections, dbclient,
                                           copy(httpclient, ChHttpClient=OtherSettings)) \
        == ["ChHttpClient._create_client() no longer passes settings=self._conn_settings to "
            "clickhouse-connect"]

    class NotAWrapper:
        pass

    assert dbt_embedded.internals_problems(connections, dbclient,
                                           copy(httpclient, ChHttpClient=NotAWrapper)) \
        == ["httpclient.ChHttpClient is gone or no longer a dbclient.ChClientWrapper"]


def test_the_fence_names_settings_set_after_the_client_is_created():
    connections, dbclient, httpclient = installed()

    class ChClientWrapper:
        def __init__(self, credentials):
            self._client = self._create_client(credentials)
            self._conn_settings = {}

    http = type("ChHttpClient", (ChClientWrapper,), {"_create_client": the_real_create_client()})
    problems = dbt_embedded.internals_problems(
        connections, copy(dbclient, ChClientWrapper=ChClientWrapper),
        copy(httpclient, ChHttpClient=http))
    assert problems == ["ChClientWrapper.__init__ no longer sets self._conn_settings before it "
                        "calls self._create_client()"]


def test_install_refuses_to_patch_changed_internals(monkeypatch):
    monkeypatch.setattr(dbt_embedded, "internals_problems",
                        lambda: ["dbclient.get_db_client is gone"])
    with pytest.raises(dbt_embedded.InternalsChanged) as raised:
        dbt_embedded.install()
    message = str(raised.value)
    assert "changed the private internals the embedded target's bridge" in message, message
    assert "dbclient.get_db_client is gone" in message and "remove the bridge" in message, message
    assert "\n" not in message
    connections, _, _ = installed()
    assert not getattr(connections.get_db_client, "astro_bridge", False)
