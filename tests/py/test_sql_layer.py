"""The ClickHouse layer end to end on the real engine (chDB) with the real astro binary, against a
loopback fake API: schema, parsing MV, executable() ingest, UDF, dictionary, refreshable MV."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time

import pytest

import dictionary
import embedded
from api_server import Reply, astros_body, astros_reply, json_reply
from conftest import USER_SCRIPTS

CREW = [("ISS", "Oleg Kononenko"), ("ISS", "Nikolai Chub"), ("Tiangong", "Ye Guangfu")]

# Failure tests run the shipped ingest statement with a small budget, so a dead API costs ~2 s.
FAST_FETCH = "astro fetch --max-attempts 3 --timeout 500ms --max-elapsed 2s"


def ingest_sql(command: str | None = None) -> str:
    """sql/ingest/ingest.sql, optionally with another `astro fetch` command line."""
    text = embedded.INGEST_FILE.read_text()
    if command:
        assert "'astro fetch'" in text
        text = text.replace("'astro fetch'", f"'{command}'")
    return text


def people(db, final=True):
    return sorted((r["craft"], r["name"]) for r in db.rows(
        f"SELECT craft, name FROM astro.people {'FINAL' if final else ''}"))


def latest_people(db, source):
    """The people of the latest successful fetch of `source` (what the marts count)."""
    return sorted((r["craft"], r["name"]) for r in db.rows(
        "SELECT craft, name FROM astro.people FINAL WHERE source = '{s}' AND fetched_at = "
        "(SELECT max(fetched_at) FROM astro.raw_data FINAL WHERE source = '{s}')".format(s=source)))


def snapshot(db):
    """Every stored row of both tables, merged or not (a failed ingest must change nothing)."""
    return (db.query("SELECT * FROM astro.raw_data ORDER BY ALL"),
            db.query("SELECT * FROM astro.people ORDER BY ALL"))


# -- schema ---------------------------------------------------------------------------------------

def test_apply_is_idempotent_and_creates_the_objects(db):
    db.apply()
    db.apply()
    tables = {(r["database"], r["name"]): r["engine"] for r in db.rows(
        "SELECT database, name, engine FROM system.tables "
        "WHERE database = 'astro' OR (database = 'default' AND name = 'astro_people')")}
    assert tables == {
        ("astro", "raw_data"): "ReplacingMergeTree",
        ("astro", "people"): "ReplacingMergeTree",
        ("astro", "people_mv"): "MaterializedView",
        ("default", "astro_people"): "Dictionary",
    }
    # The refreshable MV is never created by the default apply (it would fetch on its own).
    assert ("astro", "ingest_schedule") not in tables
    assert db.has_schema()


def test_dictionary_ddl_is_generated_from_the_xml():
    assert dictionary.check_ddl_file(), "run: python tools/astro_db.py gen-dictionary"


def test_shipped_udf_xml_keeps_the_safe_default():
    text = (embedded.FUNCTIONS_DIR / "astro_function.xml").read_text()
    command = re.search(r"<command>(.*?)</command>", text).group(1).strip()
    assert command == "astro udf --chunk-header"
    assert "<send_chunk_header>1</send_chunk_header>" in text


# -- ingest ---------------------------------------------------------------------------------------

def test_one_ingest_gives_the_expected_people(db, api, api_url):
    api.set_default("/astros.json", astros_reply(CREW))
    db.ingest()
    raw = db.rows("SELECT source, toString(fetched_at) AS fetched_at, attempts, payload "
                  "FROM astro.raw_data FINAL")
    assert len(raw) == 1
    assert raw[0]["source"] == api_url
    assert raw[0]["attempts"] == 1
    assert json.loads(raw[0]["payload"]) == json.loads(astros_body(CREW))
    rows = db.rows("SELECT craft, name, source, toString(fetched_at) AS fetched_at "
                   "FROM astro.people FINAL ORDER BY craft, name")
    assert sorted((r["craft"], r["name"]) for r in rows) == sorted(CREW)
    assert {r["source"] for r in rows} == {api_url}
    assert {r["fetched_at"] for r in rows} == {raw[0]["fetched_at"]}
    assert latest_people(db, api_url) == sorted(CREW)
    assert api.count("/astros.json") == 1


def test_ten_ingests_keep_one_row_per_source_and_no_duplicate_people(db, api, api_url):
    api.set_default("/astros.json", astros_reply(CREW))
    for _ in range(9):
        db.ingest()
    # The last fetch sees a new crew: one person left, one arrived.
    new_crew = CREW[1:] + [("Crew Dragon", "Anne McClain")]
    api.set_default("/astros.json", astros_reply(new_crew))
    db.ingest()
    assert api.count("/astros.json") == 10
    assert db.scalar("SELECT count() FROM astro.raw_data FINAL") == "1"
    assert db.scalar("SELECT uniqExact(source) FROM astro.raw_data") == "1"
    assert json.loads(db.scalar("SELECT payload FROM astro.raw_data FINAL")) == json.loads(astros_body(new_crew))
    # History is kept (the person who left is still known), without duplicates...
    assert people(db) == sorted(set(CREW) | set(new_crew))
    assert db.scalar("SELECT count() - uniqExact(craft, name) FROM astro.people FINAL") == "0"
    # ...and the latest successful fetch tells who is in space now.
    assert latest_people(db, api_url) == sorted(new_crew)
    # Merges reach the same state as FINAL.
    db.execute("OPTIMIZE TABLE astro.raw_data FINAL")
    db.execute("OPTIMIZE TABLE astro.people FINAL")
    assert db.scalar("SELECT count() FROM astro.raw_data") == "1"
    assert people(db, final=False) == sorted(set(CREW) | set(new_crew))


FAILURES = {
    "http_500": [Reply(status=500, body=b"internal error")],
    "non_json": [Reply(status=200, body=b"<html>maintenance</html>", content_type="text/html")],
    "wrong_shape": [json_reply({"message": "failure", "people": "none"})],
    "truncated": [Reply(status=200, body=astros_body(CREW), truncate_to=20)],
    "truncated_held_open": [Reply(status=200, body=astros_body(CREW), truncate_to=20, hold_open=5)],
    "timeout": [Reply(status=200, body=astros_body(CREW), delay=5)],
}


@pytest.mark.parametrize("failure", list(FAILURES))
def test_failing_api_fails_the_insert_and_changes_nothing(db, api, api_url, failure):
    api.set_default("/astros.json", astros_reply(CREW))
    db.ingest()
    before = snapshot(db)
    api.reset()
    api.set_default("/astros.json", FAILURES[failure][0])
    started = time.monotonic()
    with pytest.raises(embedded.QueryError) as info:
        db.execute_script(ingest_sql(FAST_FETCH))
    elapsed = time.monotonic() - started
    message = str(info.value)
    # ClickHouse's wrapper, then the binary's own line, naming the URL.
    assert "Child process was exited with return code" in message, message
    assert "Stderr:" in message and f"127.0.0.1:{api.port}" in message, message
    assert api.count("/astros.json") >= 1
    assert elapsed < 8, f"the 2 s budget was not honoured: {elapsed:.1f}s"
    assert snapshot(db) == before


def test_default_budget_ends_inside_clickhouse_read_timeout(db, api, api_url):
    # The shipped statement, default budget, a server that never answers: the binary must give
    # up first (its own line in the exception), not ClickHouse's command_read_timeout (10 s).
    api.set_default("/astros.json", Reply(body=astros_body(CREW), delay=60))
    with pytest.raises(embedded.QueryError) as info:
        db.ingest()
    message = str(info.value)
    assert "Child process was exited with return code" in message, message
    assert f"Stderr: astro: fetch of {api_url}" in message, message
    assert db.scalar("SELECT count() FROM astro.raw_data") == "0"


# -- exact bytes ----------------------------------------------------------------------------------

TRICKY = [
    ("ISS", "tab\there"),
    ("ISS", "new\nline"),
    ("ISS", "carriage\rreturn"),
    ("ISS", 'double "quote"'),
    ("ISS", "single 'quote'"),
    ("ISS", "back\\slash \\t \\n"),
    ("ISS", "Zoë Ñúñez-Ørsted"),
    ("ISS", "Олег Кононенко"),
    ("天宫", "叶光富"),
    ("ISS", "rocket 🚀 emoji 👩‍🚀"),
    ("ISS", "null\x00byte"),
    ("ISS", "  spaces  "),
]


@pytest.mark.parametrize("ascii_escaped", [False, True], ids=["utf8_body", "ascii_escaped_body"])
def test_special_names_arrive_byte_for_byte(db, api, api_url, ascii_escaped):
    doc = {"message": "success", "number": len(TRICKY),
           "people": [{"craft": c, "name": n} for c, n in TRICKY]}
    api.set_default("/astros.json", Reply(body=json.dumps(doc, ensure_ascii=ascii_escaped).encode()))
    db.ingest()
    got = sorted((bytes.fromhex(r["c"]), bytes.fromhex(r["n"])) for r in db.rows(
        "SELECT hex(craft) AS c, hex(name) AS n FROM astro.people FINAL"))
    assert got == sorted((c.encode(), n.encode()) for c, n in TRICKY)


# -- UDF ------------------------------------------------------------------------------------------

def test_udf_answers_a_multi_row_block_in_order(db, api):
    paths = [f"/crew/{i}" for i in (3, 1, 4, 0, 2)]
    for path in paths:
        api.set_default(path, astros_reply([("ISS", f"person of {path}")]))
    urls = [api.url(p) for p in paths]
    array = "[" + ", ".join(f"'{u}'" for u in urls) + "]"
    rows = db.rows(f"SELECT url, astro_fetch(url) AS answer FROM (SELECT arrayJoin({array}) AS url)")
    assert [r["url"] for r in rows] == urls
    for url, row in zip(urls, rows):
        path = url.removeprefix(api.base_url)
        assert json.loads(row["answer"]) == json.loads(astros_body([("ISS", f"person of {path}")]))
        assert api.count(path) == 1
    # The answer is ready for ClickHouse's JSON functions, and the pool serves a second block.
    assert db.scalar(f"SELECT JSONExtractString(astro_fetch('{urls[0]}'), 'people', 1, 'name')") \
        == "person of /crew/3"


def test_udf_refuses_a_disallowed_host(db, api):
    with pytest.raises(embedded.QueryError) as info:
        db.query("SELECT astro_fetch('http://example.com/astros.json')")
    message = str(info.value)
    assert "Child process was exited with return code" in message, message
    assert "example.com" in message, message
    # The pool recovers: the next call works.
    api.set_default("/astros.json", astros_reply(CREW))
    assert json.loads(db.scalar(f"SELECT astro_fetch('{api.url()}')"))["number"] == len(CREW)


def test_shipped_udf_refuses_loopback(api, make_db):
    # The shipped XML (no test allowances): the loopback fake API must not be reachable.
    db = make_db(functions_dir=embedded.FUNCTIONS_DIR)
    api.set_default("/astros.json", astros_reply(CREW))
    with pytest.raises(embedded.QueryError) as info:
        db.query(f"SELECT astro_fetch('{api.url()}')")
    assert "Child process was exited with return code" in str(info.value), str(info.value)
    assert api.count() == 0


# -- dictionary -----------------------------------------------------------------------------------

def test_dictionary_answers_dictget(db, api, api_url):
    api.set_default("/astros.json", astros_reply(CREW))
    assert db.scalar("SELECT dictGet('astro_people', 'craft', 'Ye Guangfu')") == "Tiangong"
    assert db.scalar("SELECT dictGet('astro_people', 'craft', 'Oleg Kononenko')") == "ISS"
    assert db.scalar("SELECT dictHas('astro_people', 'Nobody')") == "0"
    assert db.scalar("SELECT count() FROM default.astro_people") == str(len(CREW))
    assert api.count("/astros.json") == 1


# -- refreshable MV -------------------------------------------------------------------------------

def test_refreshable_mv_refreshes(db, api, api_url):
    api.set_default("/astros.json", astros_reply(CREW))
    [schedule_file] = sorted(embedded.SCHEDULE_DIR.glob("*.sql"))
    fast, n = re.subn(r"REFRESH EVERY \d+ \w+", "REFRESH EVERY 1 SECOND", schedule_file.read_text())
    assert n == 1
    db.execute_script(fast)
    try:
        # Bounded poll: at least two scheduled runs (not only the one at creation) that succeeded.
        deadline = time.monotonic() + 30
        while True:
            state = db.rows("SELECT status, last_success_time, exception FROM system.view_refreshes "
                            "WHERE database = 'astro' AND view = 'ingest_schedule'")
            if state and state[0]["last_success_time"] and api.count("/astros.json") >= 2 \
                    and int(db.scalar("SELECT count() FROM astro.raw_data")) >= 2:
                break
            assert time.monotonic() < deadline, f"no two successful refreshes in 30 s: {state}"
            time.sleep(0.2)
        assert state[0]["exception"] == "", state
        assert db.scalar("SELECT count() FROM astro.raw_data FINAL") == "1"
        assert latest_people(db, api_url) == sorted(CREW)
        assert people(db) == sorted(CREW)
    finally:
        db.execute("DROP VIEW IF EXISTS astro.ingest_schedule SYNC")


def test_apply_schedule_creates_the_refreshable_mv(db, api, api_url):
    api.set_default("/astros.json", astros_reply(CREW))
    try:
        db.apply(schedule=True)
        db.apply(schedule=True)
        assert db.scalar("SELECT count() FROM system.view_refreshes "
                         "WHERE database = 'astro' AND view = 'ingest_schedule'") == "1"
        # The shipped schedule refreshes once at creation, then on its interval.
        deadline = time.monotonic() + 20
        while db.scalar("SELECT count() FROM astro.people") == "0":
            assert time.monotonic() < deadline, "no refresh at creation within 20 s"
            time.sleep(0.2)
        assert latest_people(db, api_url) == sorted(CREW)
    finally:
        db.execute("DROP VIEW IF EXISTS astro.ingest_schedule SYNC")


# -- the command-line driver (make schema / ingest / sql) -----------------------------------------

def run_cli(tmp_path, *args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k != "Q"}
    env.update(ASTRO_DB=str(tmp_path / "clidb"), **(env_extra or {}))
    return subprocess.run([sys.executable, str(embedded.REPO_ROOT / "tools" / "astro_db.py"),
                           "--user-scripts", str(USER_SCRIPTS), *args],
                          env=env, capture_output=True, text=True, timeout=60)


def test_cli_ingest_and_sql(tmp_path, api, api_url):
    api.set_default("/astros.json", astros_reply(CREW))
    ok = run_cli(tmp_path, "ingest")  # applies the schema first, since it is missing
    assert ok.returncode == 0, ok.stderr
    out = run_cli(tmp_path, "sql", env_extra={"Q": "SELECT craft, name FROM astro.people FINAL ORDER BY name"})
    assert out.returncode == 0, out.stderr
    assert out.stdout == "".join(f"{c}\t{n}\n" for c, n in sorted(CREW, key=lambda p: p[1]))
    bad = run_cli(tmp_path, "sql", "SELECT", "no_such_column")
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert "UNKNOWN_IDENTIFIER" in bad.stderr and "Traceback" not in bad.stderr
