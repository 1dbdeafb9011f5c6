"""The dbt project (dbt/) on the embedded engine, with the loopback fake API.

dbt runs in a subprocess through astro_dev.dbt_embedded (as `make dbt` does); this process closes
its own session on the database before each dbt run (one holder of a path at a time). dbt starts
slowly, so the story is one scenario with several dbt invocations, and one for the guard.
"""

from __future__ import annotations

import functools
import json

import pytest
import yaml

from astro_dev import embedded
from astro_dev.api_server import Reply, astros_body, astros_reply, json_reply
from conftest import USER_SCRIPTS
from dbt_helpers import ingest_statement_of_macro, run_dbt

FIVE = [("ISS", "Ann Orbit"), ("ISS", "Bob Module"), ("ISS", "Cy Truss"),
        ("Tiangong", "Dai Wen"), ("Tiangong", "Eve Lin")]
THREE = [("Tiangong", "Fang Yu"), ("Tiangong", "Gao Ming"), ("Crew Dragon", "Hal O'Brien")]

# Every data test of the project (schema.yml tests and dbt/tests/*.sql). A test that vanishes
# (a deleted file, a typo in a schema.yml key) changes this number, and this suite fails.
EXPECTED_DATA_TESTS = 34
GUARD = "assert_people_now_matches_latest_payload"

PER_CRAFT = "SELECT craft, toUInt32(people_count) AS n FROM astro.people_per_craft ORDER BY craft"
SUMMARY = ("SELECT toUInt32(total_people) AS total, toUInt32(crafts_count) AS crafts, "
           "source, toString(as_of) AS as_of, toString(built_at) AS built_at "
           "FROM astro.people_summary")
NOW = "SELECT craft, name FROM astro.people_now ORDER BY craft, name"
LATEST = "SELECT source, toString(fetched_at) AS fetched_at FROM astro.latest_fetch"


def per_craft(people):
    counts = {}
    for craft, _ in people:
        counts[craft] = counts.get(craft, 0) + 1
    return [{"craft": craft, "n": n} for craft, n in sorted(counts.items())]


def as_rows(people):
    return [{"craft": c, "name": n} for c, n in sorted(people)]


def read(db_path, functions_dir, *queries):
    """Open the database, run `queries` (rows as dicts), close it again before dbt runs."""
    with embedded.Database(db_path, user_scripts_dir=USER_SCRIPTS,
                           functions_dir=functions_dir) as db:
        return [db.rows(q) for q in queries]


def data_tests(result, db_path) -> dict[str, str]:
    """name -> status of every data test in the run (dbt's run_results.json)."""
    results = json.loads((db_path.parent / f"{db_path.name}.dbt" / "target" /
                          "run_results.json").read_text())["results"]
    return {r["unique_id"].split(".")[2]: r["status"] for r in results
            if r["unique_id"].startswith("test.")}


def assert_all_tests_passed(result, db_path):
    assert result.returncode == 0, result.output
    tests = data_tests(result, db_path)
    assert len(tests) == EXPECTED_DATA_TESTS, sorted(tests)
    assert set(tests.values()) == {"pass"}, {k: v for k, v in tests.items() if v != "pass"}
    assert GUARD in tests


def test_ingest_hook_runs_the_statement_of_sql_ingest():
    """dbt cannot read sql/ingest/ingest.sql, so the macro keeps a copy: it must stay identical."""
    [statement] = embedded.split_statements(embedded.INGEST_FILE.read_text())
    from_sql = "\n".join(line for line in statement.splitlines()
                         if not line.lstrip().startswith("--")).strip()
    assert ingest_statement_of_macro() == from_sql
    assert from_sql == "INSERT INTO astro.raw_data SELECT * FROM astro.fetch_raw"


def test_dbt_marts_count_people_now_and_survive_a_failed_ingest(
        api, api_url, make_db, test_functions_dir):
    db = make_db()  # schema applied
    db_path = db.path
    db.close()
    urls = {name: api.url(f"/{name}.json") for name in ("five", "three", "empty", "down")}
    api.set_default("/five.json", astros_reply(FIVE))
    api.set_default("/three.json", astros_reply(THREE))
    api.set_default("/empty.json", astros_reply([]))
    api.set_default("/down.json", Reply(status=500, body=b'{"message": "down"}'))
    dbt = functools.partial(run_dbt, db_path=db_path, user_scripts=USER_SCRIPTS,
                            functions_dir=test_functions_dir)

    def build_from(name):
        return dbt(["build", "--vars", "{ingest: true}"], api_url=urls[name])

    # The embedded target connects through the bridge.
    debug = dbt(["debug"])
    assert debug.returncode == 0, debug.output
    assert "All checks passed" in debug.output

    # 1. 5 people from one URL (the on-run-start hook ingests), then every model and test green.
    first = build_from("five")
    assert_all_tests_passed(first, db_path)
    assert api.count("/five.json") == 1
    crafts, summary, tables, latest = read(
        db_path, test_functions_dir, PER_CRAFT, SUMMARY,
        "SELECT name, engine FROM system.tables WHERE database = 'astro' "
        "AND name IN ('people_per_craft', 'people_summary') ORDER BY name", LATEST)
    assert tables == [{"name": "people_per_craft", "engine": "MergeTree"},
                      {"name": "people_summary", "engine": "MergeTree"}]
    assert crafts == per_craft(FIVE)
    assert summary[0]["total"] == 5 and summary[0]["crafts"] == 2
    assert summary[0]["source"] == urls["five"]
    assert summary[0]["as_of"] == latest[0]["fetched_at"]

    # 2. 3 others from ANOTHER URL: the marts count the 3 of the latest fetch, not 5 + 3.
    second = build_from("three")
    assert_all_tests_passed(second, db_path)
    crafts, summary, now, people = read(
        db_path, test_functions_dir, PER_CRAFT, SUMMARY, NOW,
        "SELECT craft, name FROM astro.people FINAL ORDER BY craft, name")
    assert now == as_rows(THREE)
    assert crafts == per_craft(THREE)
    assert summary[0]["total"] == 3 and summary[0]["crafts"] == 2
    assert summary[0]["source"] == urls["three"]
    assert people == as_rows(FIVE + THREE)  # history keeps everyone

    # 3. The first URL again: 5.
    third = build_from("five")
    assert_all_tests_passed(third, db_path)
    crafts, summary, now = read(db_path, test_functions_dir, PER_CRAFT, SUMMARY, NOW)
    assert now == as_rows(FIVE)
    assert crafts == per_craft(FIVE)
    assert summary[0]["total"] == 5 and summary[0]["source"] == urls["five"]

    # 4. An answer listing nobody: 0, not the previous crew.
    fourth = build_from("empty")
    assert_all_tests_passed(fourth, db_path)
    crafts, summary, now, latest = read(db_path, test_functions_dir, PER_CRAFT, SUMMARY, NOW, LATEST)
    assert now == [] and crafts == []
    assert summary[0]["total"] == 0 and summary[0]["crafts"] == 0
    assert summary[0]["source"] == urls["empty"]
    assert summary[0]["as_of"] == latest[0]["fetched_at"]

    # Without the var the hook does nothing: no fetch. Freshness passes on fresh data.
    fetches = api.count()
    freshness = dbt(["source", "freshness"])
    assert freshness.returncode == 0, freshness.output
    assert "PASS freshness of astro.raw_data" in freshness.output, freshness.output
    assert api.count() == fetches

    # 5. The API fails (500 on every attempt): the hook fails the build with the binary's own
    #    message, every model is skipped, and the marts keep the previous build, untouched.
    failed = build_from("down")
    assert failed.returncode != 0, failed.output
    assert f"Stderr: astro: fetch of {urls['down']}" in failed.output, failed.output
    assert "PASS=0" in failed.output, failed.output
    assert api.count("/down.json") > 2  # the binary retried
    crafts_after, summary_after, latest_after = read(
        db_path, test_functions_dir, PER_CRAFT, SUMMARY, LATEST)
    assert crafts_after == crafts
    assert summary_after == summary  # built_at included: the table was not rebuilt
    assert latest_after == latest


def test_the_guard_fails_when_people_now_and_the_latest_payload_disagree(
        api, api_url, make_db, test_functions_dir):
    db = make_db()
    api.set_default("/astros.json", astros_reply(FIVE))
    db.ingest()
    db_path = db.path
    db.close()
    guard = functools.partial(run_dbt, ["test", "--select", GUARD], db_path,
                              user_scripts=USER_SCRIPTS, functions_dir=test_functions_dir)
    ok = guard()
    assert ok.returncode == 0, ok.output
    assert data_tests(ok, db_path) == {GUARD: "pass"}

    # a. People lost between raw_data and people (here: removed by hand after the ingest).
    with embedded.Database(db_path, user_scripts_dir=USER_SCRIPTS,
                           functions_dir=test_functions_dir) as db:
        db.execute("DELETE FROM astro.people WHERE name = 'Ann Orbit'")
    lost = guard()
    assert lost.returncode == 1, lost.output
    assert data_tests(lost, db_path) == {GUARD: "fail"}

    # b. A latest payload that ClickHouse's JSON functions cannot parse (a lone surrogate in a
    #    field astro does not look at): the MV writes no people and the counts agree at 0, so
    #    only the isValidJSON half of the guard catches it.
    body = astros_body(THREE).decode().replace('"message"', '"note": "\\ud83d", "message"', 1)
    with embedded.Database(db_path, user_scripts_dir=USER_SCRIPTS,
                           functions_dir=test_functions_dir) as db:
        db.execute("INSERT INTO astro.raw_data SELECT 'http://unparsable.example/', "
                   f"now64(3, 'UTC'), 1, {embedded.sql_string(body)}")
        assert db.scalar("SELECT isValidJSON(payload) FROM astro.latest_fetch") == "0"
        assert db.scalar("SELECT count() FROM astro.people_now") == "0"
    invalid = guard()
    assert invalid.returncode == 1, invalid.output
    assert data_tests(invalid, db_path) == {GUARD: "fail"}
    assert "Got 1 result" in invalid.output, invalid.output


def test_the_bridge_names_the_versions_it_supports():
    from astro_dev import dbt_embedded

    dbt_embedded.check_versions(dbt_embedded.installed_versions())  # the pinned environment
    dbt_embedded.check_versions({"dbt-clickhouse": "1.10.3", "clickhouse-connect": "1.6.0"})
    cases = [
        ({"dbt-clickhouse": "1.11.0", "clickhouse-connect": "1.12.0"}, "supports dbt-clickhouse >=1.10, <1.11, not 1.11.0"),
        ({"dbt-clickhouse": "1.9.2", "clickhouse-connect": "1.12.0"}, "supports dbt-clickhouse >=1.10, <1.11, not 1.9.2"),
        ({"dbt-clickhouse": "1.10.0", "clickhouse-connect": "1.5.9"}, "supports clickhouse-connect >=1.6, not 1.5.9"),
        ({"dbt-clickhouse": None, "clickhouse-connect": "1.12.0"}, "needs dbt-clickhouse >=1.10, <1.11, which is not installed"),
    ]
    for versions, expected in cases:
        with pytest.raises(dbt_embedded.UnsupportedVersion) as raised:
            dbt_embedded.check_versions(versions)
        message = str(raised.value)
        assert expected in message and "\n" not in message, message


def test_the_project_does_not_cap_users_dbt():
    project = yaml.safe_load((embedded.REPO_ROOT / "dbt" / "dbt_project.yml").read_text())
    assert project["require-dbt-version"] == ">=1.10.0"


@pytest.mark.parametrize("hours_old, exit_code, verdict", [
    (5, 0, "WARN freshness of astro.raw_data"),
    (30, 1, "ERROR STALE freshness of astro.raw_data"),
])
def test_source_freshness_warns_then_fails_on_old_fetches(
        make_db, test_functions_dir, hours_old, exit_code, verdict):
    """The schedule fetches every 15 minutes: a newest fetch over 3 hours old warns, over a day
    fails `dbt source freshness` (sources.yml)."""
    db = make_db()
    payload = embedded.sql_string(astros_body(FIVE).decode())
    db.execute("INSERT INTO astro.raw_data SELECT 'http://old.example/', "
               f"now64(3, 'UTC') - INTERVAL {hours_old} HOUR, 1, {payload}")
    db_path = db.path
    db.close()
    freshness = run_dbt(["source", "freshness"], db_path, user_scripts=USER_SCRIPTS,
                        functions_dir=test_functions_dir)
    assert freshness.returncode == exit_code, freshness.output
    assert verdict in freshness.output, freshness.output


def test_the_load_macro_runs_any_api_with_the_settings_that_make_failures_loud(
        api, make_db, test_functions_dir):
    """`dbt run-operation astro_load` renders the whole executable() call (check_exit_code and
    stderr_reaction included) from a command and a column list, and loads; a failing API fails
    the operation with astro's line and inserts nothing."""
    db = make_db()
    db.execute("CREATE TABLE default.items (id UInt64, name String) ENGINE = MergeTree ORDER BY id")
    db_path = db.path
    db.close()
    api.set_handler("/items", lambda request: json_reply(
        {"data": [{"id": 1, "name": "it's"}, {"id": 2, "name": "b"}]
         if request.param("page") == "1" else []}))
    api.set_default("/down", Reply(status=500, body=b"down"))

    def load(url: str):
        args = ("{relation: default.items, command: \"--url " + url
                + " --records /data --paginate page:page --max-attempts 1\", "
                "columns: \"id UInt64, name String\", settings: {command_read_timeout: 20000}}")
        return run_dbt(["run-operation", "astro_load", "--args", args], db_path,
                       user_scripts=USER_SCRIPTS, functions_dir=test_functions_dir)

    result = load(api.url("/items"))
    assert result.returncode == 0, result.output
    failed = load(api.url("/down"))
    assert failed.returncode != 0, failed.output
    assert "HTTP 500" in failed.output and "astro: page 1: fetch of" in failed.output, failed.output
    db = make_db(apply=False)
    try:
        assert db.rows("SELECT id, name FROM default.items ORDER BY id") == \
            [{"id": 1, "name": "it's"}, {"id": 2, "name": "b"}]
    finally:
        db.close()
