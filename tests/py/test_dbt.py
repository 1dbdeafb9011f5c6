"""The dbt project (dbt/) on the embedded engine, with the loopback fake API.

dbt runs in a subprocess through tools/dbt_embedded.py (as `make dbt` does); this process closes
its own session on the database before each dbt run (one holder of a path at a time). dbt starts
slowly, so the whole story is one scenario with five dbt invocations.
"""

from __future__ import annotations

import functools

import embedded
from api_server import Reply, astros_reply
from conftest import USER_SCRIPTS
from dbt_helpers import ingest_statement_of_macro, run_dbt

FIVE = [("ISS", "Ann Orbit"), ("ISS", "Bob Module"), ("ISS", "Cy Truss"),
        ("Tiangong", "Dai Wen"), ("Tiangong", "Eve Lin")]
THREE = [("Tiangong", "Fang Yu"), ("Tiangong", "Gao Ming"), ("Crew Dragon", "Hal O'Brien")]

PER_CRAFT = "SELECT craft, toUInt32(people_count) AS n FROM astro.people_per_craft ORDER BY craft"
SUMMARY = ("SELECT toUInt32(total_people) AS total, toUInt32(crafts_count) AS crafts, "
           "toUInt32(sources_count) AS sources, toString(as_of) AS as_of, "
           "toString(built_at) AS built_at FROM astro.people_summary")


def per_craft(people):
    counts = {}
    for craft, _ in people:
        counts[craft] = counts.get(craft, 0) + 1
    return [{"craft": craft, "n": n} for craft, n in sorted(counts.items())]


def read(db_path, functions_dir, *queries):
    """Open the database, run `queries` (rows as dicts), close it again before dbt runs."""
    with embedded.Database(db_path, user_scripts_dir=USER_SCRIPTS,
                           functions_dir=functions_dir) as db:
        return [db.rows(q) for q in queries]


def test_ingest_hook_runs_the_statement_of_sql_ingest():
    """dbt cannot read sql/ingest/ingest.sql, so the macro keeps a copy: it must stay identical."""
    [statement] = embedded.split_statements(embedded.INGEST_FILE.read_text())
    from_sql = "\n".join(line for line in statement.splitlines()
                         if not line.lstrip().startswith("--")).strip()
    assert ingest_statement_of_macro() == from_sql


def test_dbt_marts_follow_the_latest_fetch_and_survive_a_failed_ingest(
        api, api_url, make_db, test_functions_dir):
    db = make_db()  # schema applied
    db_path = db.path
    db.close()
    api.enqueue("/astros.json", astros_reply(FIVE), astros_reply(THREE))
    api.set_default("/astros.json", Reply(status=500, body=b'{"message": "down"}'))
    dbt = functools.partial(run_dbt, db_path=db_path, api_url=api_url, user_scripts=USER_SCRIPTS,
                            functions_dir=test_functions_dir)

    # The embedded target connects through the bridge.
    debug = dbt(["debug"])
    assert debug.returncode == 0, debug.output
    assert "All checks passed" in debug.output

    # 1. Ingest of 5 (the on-run-start hook), then every model and test green.
    first = dbt(["build", "--vars", "{ingest: true}"])
    assert first.returncode == 0, first.output
    assert "ERROR=0" in first.output and "SKIP=0" in first.output, first.output
    assert api.count("/astros.json") == 1
    crafts, summary, tables = read(
        db_path, test_functions_dir, PER_CRAFT, SUMMARY,
        "SELECT name, engine FROM system.tables WHERE database = 'astro' "
        "AND name IN ('people_per_craft', 'people_summary') ORDER BY name")
    assert tables == [{"name": "people_per_craft", "engine": "MergeTree"},
                      {"name": "people_summary", "engine": "MergeTree"}]
    assert crafts == per_craft(FIVE)
    assert summary[0]["total"] == 5 and summary[0]["crafts"] == 2 and summary[0]["sources"] == 1

    # 2. Ingest of 3 others from the same URL: the marts count the 3 in space now, people keeps
    #    all 8 as history, raw_data the latest fetch only.
    second = dbt(["build", "--vars", "{ingest: true}"])
    assert second.returncode == 0, second.output
    assert "ERROR=0" in second.output and "SKIP=0" in second.output, second.output
    crafts, summary, people, raw = read(
        db_path, test_functions_dir, PER_CRAFT, SUMMARY,
        "SELECT craft, name FROM astro.people FINAL ORDER BY craft, name",
        "SELECT source, toString(fetched_at) AS fetched_at FROM astro.raw_data FINAL")
    assert crafts == per_craft(THREE)
    assert summary[0]["total"] == 3 and summary[0]["crafts"] == 2 and summary[0]["sources"] == 1
    assert people == [{"craft": c, "name": n} for c, n in sorted(FIVE + THREE)]
    assert raw == [{"source": api_url, "fetched_at": summary[0]["as_of"]}]

    # Without the var the hook does nothing: no fetch. Freshness passes on fresh data.
    fetches = api.count("/astros.json")
    freshness = dbt(["source", "freshness"])
    assert freshness.returncode == 0, freshness.output
    assert "PASS freshness of astro.raw_data" in freshness.output, freshness.output
    assert api.count("/astros.json") == fetches

    # 3. The API fails (500 on every attempt): the hook fails the build with the binary's own
    #    message, every model is skipped, and the marts keep the previous build, untouched.
    third = dbt(["build", "--vars", "{ingest: true}"])
    assert third.returncode != 0, third.output
    assert "Child process was exited with return code 1" in third.output, third.output
    assert api_url in third.output and "500" in third.output, third.output
    assert "PASS=0" in third.output, third.output
    assert api.count("/astros.json") > 2  # the binary retried
    crafts_after, summary_after, raw_after = read(
        db_path, test_functions_dir, PER_CRAFT, SUMMARY,
        "SELECT source, toString(fetched_at) AS fetched_at FROM astro.raw_data FINAL")
    assert crafts_after == crafts
    assert summary_after == summary  # built_at included: the table was not rebuilt
    assert raw_after == raw
