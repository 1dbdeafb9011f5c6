"""The dbt bridge itself (astro_dev.dbt_embedded), apart from the dbt project: how it runs dbt
(dbtRunner, dbt's exit statuses). The project's runs are in test_dbt.py."""

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
