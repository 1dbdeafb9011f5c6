"""Run the dbt project (dbt/) on an embedded test database, in a subprocess.

dbt goes through astro_dev.dbt_embedded, exactly as `make dbt` does. The engine allows one holder
of a database path per process, and this test process holds engines too, so dbt always runs in
its own process: close your own Database on that path before calling run_dbt().

    result = run_dbt(["build", "--vars", "{ingest: true}"], db_path, api_url=url)
    assert result.returncode == 0, result.output
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

from astro_dev import embedded

DBT_DIR = embedded.REPO_ROOT / "dbt"


@dataclasses.dataclass
class DbtResult:
    args: list[str]
    returncode: int
    output: str  # stdout and stderr, interleaved as dbt wrote them


def run_dbt(args: list[str], db_path: Path, *, api_url: str | None = None,
            user_scripts: Path | None = None, functions_dir: Path | None = None,
            work_dir: Path | None = None, timeout: float = 300) -> DbtResult:
    """Run `dbt <args>` on the embedded database `db_path` (target `embedded`).

    dbt's target/ and logs/ go to `work_dir` (default: <db_path>.dbt), not into the repository,
    so tests never disturb a developer's dbt/target or each other. No colours, no usage stats.
    """
    work = Path(work_dir or f"{db_path}.dbt")
    env = dict(os.environ)
    env.update({
        "ASTRO_DB": str(db_path),
        "DBT_TARGET": "embedded",
        "DBT_TARGET_PATH": str(work / "target"),
        "DBT_LOG_PATH": str(work / "logs"),
        "DBT_USE_COLORS": "false",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "PYTHONUNBUFFERED": "1",
    })
    if api_url is not None:
        env["ASTRO_API_URL"] = api_url
    if user_scripts is not None:
        env["ASTRO_USER_SCRIPTS"] = str(user_scripts)
    if functions_dir is not None:
        env["ASTRO_FUNCTIONS"] = str(functions_dir)
    proc = subprocess.run([sys.executable, "-m", "astro_dev.dbt_embedded", *args], env=env,
                          cwd=embedded.REPO_ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout)
    return DbtResult(args=list(args), returncode=proc.returncode, output=proc.stdout)


def ingest_statement_of_macro() -> str:
    """The SQL of dbt/macros/astro_ingest.sql's astro_ingest_sql() macro (its Jinja-free body)."""
    text = (DBT_DIR / "macros" / "astro_ingest.sql").read_text()
    start = text.index("{% macro astro_ingest_sql() -%}") + len("{% macro astro_ingest_sql() -%}")
    end = text.index("{%- endmacro %}", start)
    return text[start:end].strip()
