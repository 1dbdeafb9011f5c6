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

from astro_dev import dictionary, embedded
from astro_dev.api_server import Reply, astros_body, astros_reply, json_reply
from conftest import USER_SCRIPTS

CREW = [("ISS", "Oleg Kononenko"), ("ISS", "Nikolai Chub"), ("Tiangong", "Ye Guangfu")]
FIVE = [("ISS", "Ann Orbit"), ("ISS", "Bob Module"), ("ISS", "Cy Truss"),
        ("Tiangong", "Dai Wen"), ("Tiangong", "Eve Lin")]
THREE = [("Tiangong", "Fang Yu"), ("Tiangong", "Gao Ming"), ("Crew Dragon", "Hal O'Brien")]

# Failure tests run the shipped views with a small budget, so a dead API costs ~2 s.
FAST_FETCH = "astro fetch --max-attempts 3 --timeout 500ms --max-elapsed 2s"
FETCH_RAW_FILE = embedded.SQL_DIR / "07_fetch_raw.sql"
FETCH_PEOPLE_FILE = embedded.SQL_DIR / "08_fetch_people.sql"


def with_command(path, command: str) -> str:
    """A shipped view file whose `astro fetch` starts as `command` instead (the rest of its
    command line, e.g. `--output people`, and the settings stay)."""
    text = path.read_text()
    assert text.count("'astro fetch") == 1, path
    return text.replace("'astro fetch", "'" + command, 1)


def use_fast_fetch(db) -> None:
    """Replace astro.fetch_raw and astro.fetch_people by the shipped definitions with a 2 s
    budget: the ingest statement, the schedule and the views stay as shipped."""
    db.execute_script(with_command(FETCH_RAW_FILE, FAST_FETCH))
    db.execute_script(with_command(FETCH_PEOPLE_FILE, FAST_FETCH))


def code_of(sql: str) -> str:
    """SQL text without its comment lines."""
    return "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--")).strip()


def people(db, final=True):
    return sorted((r["craft"], r["name"]) for r in db.rows(
        f"SELECT craft, name FROM astro.people {'FINAL' if final else ''}"))


def people_now(db):
    """Who is in space now, as the view astro.people_now says."""
    return sorted((r["craft"], r["name"]) for r in db.rows("SELECT craft, name FROM astro.people_now"))


def snapshot(db):
    """Every stored row of both tables, merged or not (a failed ingest must change nothing)."""
    return (db.query("SELECT * FROM astro.raw_data ORDER BY ALL"),
            db.query("SELECT * FROM astro.people ORDER BY ALL"))


def ingest_from(db, monkeypatch, api, path, crew):
    """One shipped ingest of `crew`, served at `path` (ASTRO_API_URL points there)."""
    api.set_default(path, astros_reply(crew))
    monkeypatch.setenv("ASTRO_API_URL", api.url(path))
    db.ingest()


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
        ("astro", "latest_fetch"): "View",
        ("astro", "people_now"): "View",
        ("astro", "fetch_raw"): "View",
        ("astro", "fetch_people"): "View",
        ("default", "astro_people"): "Dictionary",
    }
    # The refreshable MV is never created by the default apply (it would fetch on its own).
    assert ("astro", "ingest_schedule") not in tables
    assert db.has_schema()
    assert set(embedded.schema_objects()) == set(tables)


def test_has_schema_notices_a_missing_view(db):
    db.execute("DROP VIEW astro.people_now")
    assert not db.has_schema()
    db.apply()
    assert db.has_schema()


SPLITTER_CASES = [
    "SELECT 1; SELECT 2",
    "-- a comment; with a semicolon\nCREATE DATABASE IF NOT EXISTS astro;\n",
    "SELECT 'a;''b', `c;d`, \"e;f\" FROM t; /* block; */ SELECT 3;",
    "SELECT 'it\\'s;'; SELECT 4",
    "-- nothing here\n/* or here */\n",
    "SELECT 5 -- trailing; comment\n; ;; SELECT 6",
]


def test_the_python_splitter_splits_as_the_binary_does(tmp_path):
    """astro_dev.embedded keeps a splitter for ad-hoc SQL; the schema goes through the binary's.
    Both split every schema file and these awkward texts alike."""
    sql = tmp_path / "sql"
    sql.mkdir()
    for index, text in enumerate(SPLITTER_CASES):
        (sql / f"{index:02d}_case.sql").write_text(text)
    plan = embedded.schema_plan(sql_dir=sql, user_scripts_dir=USER_SCRIPTS)
    by_file: dict[str, list[str]] = {}
    for file, statement in plan:
        by_file.setdefault(os.path.basename(file), []).append(statement)
    for index, text in enumerate(SPLITTER_CASES):
        assert by_file.get(f"{index:02d}_case.sql", []) == embedded.split_statements(text), text
    for file, statement in embedded.schema_plan(schedule=True, user_scripts_dir=USER_SCRIPTS):
        assert embedded.split_statements((embedded.REPO_ROOT / file).read_text()) == [statement], file


def test_schema_files_are_one_numbered_sequence_in_apply_order():
    files = embedded.schema_files(schedule=True)
    # Top level, then embedded/, then schedule/; numbers 01, 02, ... without gaps or repeats.
    assert [f.parent.name for f in files] == sorted(
        (f.parent.name for f in files), key=lambda d: {"sql": 0, "embedded": 1, "schedule": 2}[d])
    numbers = [int(re.match(r"(\d+)_", f.name).group(1)) for f in files]
    assert numbers == list(range(1, len(files) + 1)), [f.name for f in files]
    for path in files:
        text = path.read_text()
        statements = embedded.split_statements(text)
        assert len(statements) == 1, f"{path.name}: one object per file"
        assert text.startswith("-- "), f"{path.name}: starts with a comment saying why"
        statement = code_of(statements[0])
        # Views are replaced (idempotent and upgradeable); everything that holds data or
        # fires on its own is created only if missing.
        if re.match(r"\s*CREATE\s+(OR\s+REPLACE\s+)?VIEW", statement):
            assert statement.lstrip().startswith("CREATE OR REPLACE VIEW "), path.name
        else:
            assert "IF NOT EXISTS" in statement.splitlines()[0], path.name


def test_fetch_views_have_the_columns_of_their_targets(db):
    def columns(table):
        return [(r["name"], r["type"]) for r in db.rows(
            "SELECT name, type FROM system.columns WHERE database = 'astro' "
            f"AND table = '{table}' ORDER BY position")]
    assert columns("fetch_raw") == columns("raw_data")
    assert columns("fetch_people") == [("craft", "String"), ("name", "String"),
                                       ("fetched_at", "DateTime64(3, 'UTC')")]
    assert columns("people_now") == [(n, t) for n, t in columns("people")]


def test_the_ingest_and_the_schedule_go_through_the_view():
    # One copy of the executable() call: only the view files carry it.
    [ingest] = embedded.split_statements(embedded.INGEST_FILE.read_text())
    assert code_of(ingest) == "INSERT INTO astro.raw_data SELECT * FROM astro.fetch_raw"
    [schedule] = sorted(embedded.SCHEDULE_DIR.glob("*.sql"))
    assert code_of(schedule.read_text()).removesuffix(";").endswith(
        "AS SELECT * FROM astro.fetch_raw")
    carriers = sorted(p.name for p in embedded.SQL_DIR.rglob("*.sql")
                      if "executable(" in code_of(p.read_text()))
    assert carriers == ["07_fetch_raw.sql", "08_fetch_people.sql"]
    for name in carriers:
        text = (embedded.SQL_DIR / name).read_text()
        assert "SETTINGS check_exit_code = 1, stderr_reaction = 'log_last'" in text


def test_creating_the_views_runs_nothing(api, api_url, tmp_path, test_functions_dir):
    # A user_scripts directory whose `astro` logs every start before running the real binary.
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    log = tmp_path / "starts.log"
    wrapper = scripts / "astro"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {USER_SCRIPTS / "astro"} "$@"\n')
    wrapper.chmod(0o755)
    api.set_default("/astros.json", astros_reply(CREW))
    db = embedded.Database(tmp_path / "wrapped", user_scripts_dir=scripts,
                           functions_dir=test_functions_dir)
    try:
        db.apply()
        db.apply()
        db.query("SELECT name, type FROM system.columns WHERE database = 'astro'")
        # The only starts are the schema plans apply asks the binary for, none by the engine.
        def engine_starts():
            lines = log.read_text().splitlines() if log.exists() else []
            return [line for line in lines if not line.startswith("init --dry-run --jsonl")]
        assert engine_starts() == []
        assert api.count() == 0
        # The wrapper is live: reading the view does start astro.
        db.ingest()
        assert engine_starts() == ["fetch --format RowBinaryWithNamesAndTypes"]
        assert people_now(db) == sorted(CREW)
    finally:
        db.close()


def test_dictionary_ddl_is_generated_from_the_xml():
    assert dictionary.check_ddl_file(), "run: python -m astro_dev.astro_db gen-dictionary"


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
    assert people_now(db) == sorted(CREW)
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
    assert people_now(db) == sorted(new_crew)
    # Merges reach the same state as FINAL.
    db.execute("OPTIMIZE TABLE astro.raw_data FINAL")
    db.execute("OPTIMIZE TABLE astro.people FINAL")
    assert db.scalar("SELECT count() FROM astro.raw_data") == "1"
    assert people(db, final=False) == sorted(set(CREW) | set(new_crew))


# Each fault, and the reason astro's line must give for it.
FAILURES = {
    "http_500": ([Reply(status=500, body=b"internal error")], "HTTP 500 Internal Server Error"),
    "non_json": ([Reply(status=200, body=b"<html>maintenance</html>", content_type="text/html")],
                 "the answer is not JSON"),
    "wrong_shape": ([json_reply({"message": "failure", "people": "none"})], "\"success\""),
    "truncated": ([Reply(status=200, body=astros_body(CREW), truncate_to=20)],
                  "the answer was cut short"),
    "truncated_held_open": ([Reply(status=200, body=astros_body(CREW), truncate_to=20, hold_open=5)],
                            "no complete answer within"),
    "timeout": ([Reply(status=200, body=astros_body(CREW), delay=5)], "no complete answer within"),
}


def astro_line(api_url: str) -> str:
    """The start of astro's own failure line, as stderr_reaction = 'log_last' puts it into the
    exception (ClickHouse's wrapper alone would say only 'return code 1')."""
    return f"Stderr: astro: fetch of {api_url}"


@pytest.mark.parametrize("failure", list(FAILURES))
def test_failing_api_fails_the_shipped_ingest_and_changes_nothing(db, api, api_url, failure):
    api.set_default("/astros.json", astros_reply(CREW))
    db.ingest()
    before = snapshot(db)
    use_fast_fetch(db)
    api.reset()
    replies, reason = FAILURES[failure]
    api.set_default("/astros.json", replies[0])
    with pytest.raises(embedded.QueryError) as info:
        db.ingest()  # INSERT INTO astro.raw_data SELECT * FROM astro.fetch_raw
    message = str(info.value)
    assert astro_line(api_url) in message, message
    [line] = [line for line in message.splitlines() if astro_line(api_url) in line]
    assert reason in line, line
    # One line: ClickHouse's own ending follows astro's text on the same line.
    assert line.rstrip().endswith("(CHILD_WAS_NOT_EXITED_NORMALLY)"), message
    assert api.count("/astros.json") >= 1
    assert snapshot(db) == before
    assert people_now(db) == sorted(CREW)


@pytest.mark.parametrize("view", ["fetch_raw", "fetch_people"])
def test_half_the_statement_fails_loudly_too(db, api, api_url, view):
    # Only the SELECT of the ingest (what a user might copy): the view carries the settings, so
    # a dead API is astro's error, not 0 rows and exit 0.
    use_fast_fetch(db)
    api.set_default("/astros.json", Reply(status=503, body=b"down"))
    with pytest.raises(embedded.QueryError) as info:
        db.query(f"SELECT * FROM astro.{view}")
    assert astro_line(api_url) in str(info.value), str(info.value)
    # And with a working API the view is the fetch itself.
    api.set_default("/astros.json", astros_reply(CREW))
    rows = db.rows(f"SELECT * FROM astro.{view}")
    if view == "fetch_people":
        assert sorted((r["craft"], r["name"]) for r in rows) == sorted(CREW)
    else:
        assert len(rows) == 1 and json.loads(rows[0]["payload"]) == json.loads(astros_body(CREW))


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


# -- "now": astro.people_now --------------------------------------------------------------------

def test_people_now_is_the_latest_fetch_whatever_its_source(db, api, monkeypatch):
    ingest_from(db, monkeypatch, api, "/five.json", FIVE)
    assert people_now(db) == sorted(FIVE)
    ingest_from(db, monkeypatch, api, "/three.json", THREE)
    # Another URL: its 3 people are now, the 5 of the other source are history.
    assert people_now(db) == sorted(THREE)
    assert people(db) == sorted(FIVE + THREE)
    assert {r["source"] for r in db.rows("SELECT source FROM astro.people_now")} == {api.url("/three.json")}
    ingest_from(db, monkeypatch, api, "/five.json", FIVE)
    assert people_now(db) == sorted(FIVE)
    # raw_data keeps the latest fetch of both sources; latest_fetch is only the newest.
    assert db.scalar("SELECT count() FROM astro.raw_data FINAL") == "2"
    assert db.rows("SELECT source FROM astro.latest_fetch") == [{"source": api.url("/five.json")}]


def test_an_answer_listing_nobody_means_nobody_now(db, api, monkeypatch):
    ingest_from(db, monkeypatch, api, "/astros.json", CREW)
    ingest_from(db, monkeypatch, api, "/astros.json", [])
    assert people_now(db) == []
    assert db.scalar("SELECT count() FROM astro.latest_fetch") == "1"
    # The crew is history, not "now".
    assert people(db) == sorted(CREW)


def test_people_now_is_empty_before_the_first_ingest(db):
    assert people_now(db) == []
    assert db.scalar("SELECT count() FROM astro.latest_fetch") == "0"


def test_fetches_tied_at_the_same_millisecond_all_count(db):
    # Two sources fetched in the same millisecond (written directly: astro's clock cannot be
    # made to tie on demand). Both crews are "now"; an older third one is not.
    def raw(source, at, crew):
        payload = embedded.sql_string(astros_body(crew).decode())
        db.execute(f"INSERT INTO astro.raw_data VALUES ('{source}', '{at}', 1, {payload})")
    raw("http://old.example/", "2026-01-01 00:00:00.000", [("ISS", "Old Timer")])
    raw("http://a.example/", "2026-01-01 00:00:01.500", FIVE[:2])
    raw("http://b.example/", "2026-01-01 00:00:01.500", THREE[:1] + FIVE[:1])
    assert people_now(db) == sorted(set(FIVE[:2] + THREE[:1]))
    assert sorted(r["source"] for r in db.rows("SELECT source FROM astro.latest_fetch")) == \
        ["http://a.example/", "http://b.example/"]


def test_dictionary_equals_people_now_after_an_ingest_of_the_same_answer(db, api, monkeypatch):
    # The dictionary runs astro itself (an executable source, see its XML); for the same API
    # answer it must hold exactly the people of people_now.
    ingest_from(db, monkeypatch, api, "/first.json", FIVE)
    ingest_from(db, monkeypatch, api, "/second.json", THREE)
    dictionary = sorted((r["craft"], r["name"]) for r in db.rows(
        "SELECT craft, name FROM default.astro_people"))
    assert dictionary == people_now(db) == sorted(THREE)
    assert db.scalar("SELECT dictGet('astro_people', 'craft', 'Hal O''Brien')") == "Crew Dragon"
    assert db.scalar("SELECT dictHas('astro_people', 'Ann Orbit')") == "0"


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
    # The guard's reason, not a DNS failure (the query text repeats the host anyway).
    assert "refused: host `example.com` is not on the allowlist" in message, message
    # The pool recovers: the next call works.
    api.set_default("/astros.json", astros_reply(CREW))
    assert json.loads(db.scalar(f"SELECT astro_fetch('{api.url()}')"))["number"] == len(CREW)


def test_shipped_udf_refuses_loopback(api, make_db):
    # The shipped XML (no test allowances): the loopback fake API must not be reachable.
    db = make_db(functions_dir=embedded.FUNCTIONS_DIR)
    api.set_default("/astros.json", astros_reply(CREW))
    with pytest.raises(embedded.QueryError) as info:
        db.query(f"SELECT astro_fetch('{api.url()}')")
    message = str(info.value)
    assert "Child process was exited with return code" in message, message
    # The shipped allowlist is the API's host only, so loopback is refused before connecting.
    assert "refused: host `127.0.0.1` is not on the allowlist (api.open-notify.org)" in message, message
    assert api.count() == 0


# -- dictionary -----------------------------------------------------------------------------------

def test_dictionary_answers_dictget(db, api, api_url):
    api.set_default("/astros.json", astros_reply(CREW))
    assert db.scalar("SELECT dictGet('astro_people', 'craft', 'Ye Guangfu')") == "Tiangong"
    assert db.scalar("SELECT dictGet('astro_people', 'craft', 'Oleg Kononenko')") == "ISS"
    assert db.scalar("SELECT dictHas('astro_people', 'Nobody')") == "0"
    assert db.scalar("SELECT count() FROM default.astro_people") == str(len(CREW))
    assert api.count("/astros.json") == 1


def test_dictionary_keeps_its_contents_while_the_api_is_down(db, api, api_url):
    """A failed reload keeps the last good contents and shows astro's line in
    system.dictionaries; a dictionary that never loaded fails dictGet loudly, never empty."""
    api.set_default("/astros.json", astros_reply(CREW))
    assert db.scalar("SELECT dictGet('astro_people', 'craft', 'Ye Guangfu')") == "Tiangong"
    api.set_default("/astros.json", Reply(status=503))
    with pytest.raises(embedded.QueryError) as info:
        db.query("SYSTEM RELOAD DICTIONARY default.astro_people")
    assert astro_line(api_url) in str(info.value) and "HTTP 503" in str(info.value), info.value
    assert db.scalar("SELECT dictGet('astro_people', 'craft', 'Ye Guangfu')") == "Tiangong"
    exception = db.scalar("SELECT last_exception FROM system.dictionaries WHERE name = 'astro_people'")
    assert "HTTP 503" in exception, exception


def test_a_dictionary_that_never_loaded_fails_dictget(api, api_url, make_db):
    api.set_default("/astros.json", Reply(status=503))
    db = make_db()
    with pytest.raises(embedded.QueryError) as info:
        db.query("SELECT dictGet('astro_people', 'craft', 'Ye Guangfu')")
    assert "HTTP 503" in str(info.value), info.value


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
        assert people_now(db) == sorted(CREW)
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
        assert people_now(db) == sorted(CREW)
    finally:
        db.execute("DROP VIEW IF EXISTS astro.ingest_schedule SYNC")


def test_a_failed_scheduled_refresh_shows_astros_line_and_changes_nothing(db, api, api_url):
    api.set_default("/astros.json", astros_reply(CREW))
    db.ingest()
    before = snapshot(db)
    use_fast_fetch(db)
    api.reset()
    api.set_default("/astros.json", Reply(status=500, body=b"internal error"))
    [schedule_file] = sorted(embedded.SCHEDULE_DIR.glob("*.sql"))
    fast, n = re.subn(r"REFRESH EVERY \d+ \w+", "REFRESH EVERY 1 SECOND", schedule_file.read_text())
    assert n == 1
    db.execute_script(fast)
    try:
        # Bounded poll (a hang guard, not a timing goal): the first refresh fails.
        deadline = time.monotonic() + 120
        while True:
            state = db.rows("SELECT exception FROM system.view_refreshes "
                            "WHERE database = 'astro' AND view = 'ingest_schedule'")
            if state and state[0]["exception"]:
                break
            assert time.monotonic() < deadline, f"no failed refresh recorded: {state}"
            time.sleep(0.2)
        assert astro_line(api_url) in state[0]["exception"], state
        assert api.count("/astros.json") >= 1
    finally:
        db.execute("DROP VIEW IF EXISTS astro.ingest_schedule SYNC")
    assert snapshot(db) == before
    assert people_now(db) == sorted(CREW)


def test_replacing_fetch_raw_under_the_schedule_upgrades_it(db, api, api_url):
    # CREATE OR REPLACE VIEW works while the refreshable MV reads the view (re-applying the
    # schema is not refused), and the schedule then runs the new definition: here one that
    # fetches another URL, which the failure line names.
    api.set_default("/astros.json", Reply(status=500, body=b"internal error"))
    other = api.url("/other.json")  # the server's default answer there: 404, not retried
    [schedule_file] = sorted(embedded.SCHEDULE_DIR.glob("*.sql"))
    try:
        use_fast_fetch(db)
        db.execute_script(re.sub(r"REFRESH EVERY \d+ \w+", "REFRESH EVERY 1 SECOND",
                                 schedule_file.read_text()))
        db.apply(schedule=True)  # the shipped definitions again: replaced, not refused
        db.execute_script(with_command(FETCH_RAW_FILE, f"astro fetch --url {other}"))
        deadline = time.monotonic() + 120
        while True:
            state = db.rows("SELECT exception FROM system.view_refreshes "
                            "WHERE database = 'astro' AND view = 'ingest_schedule'")
            if state and astro_line(other) in state[0]["exception"]:
                break
            assert time.monotonic() < deadline, f"the schedule never ran the new view: {state}"
            time.sleep(0.2)
    finally:
        db.execute("DROP VIEW IF EXISTS astro.ingest_schedule SYNC")
    assert api.count("/other.json") >= 1
    assert db.scalar("SELECT count() FROM astro.raw_data") == "0"


# -- the command-line driver (make schema / ingest / sql) -----------------------------------------

def run_cli(tmp_path, *args, env_extra=None):
    env = {k: v for k, v in os.environ.items() if k != "Q"}
    env.update(ASTRO_DB=str(tmp_path / "clidb"), **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "astro_dev.astro_db",
                           "--user-scripts", str(USER_SCRIPTS), *args],
                          env=env, capture_output=True, text=True, timeout=60)


def test_cli_ingest_and_sql(tmp_path, api, api_url):
    api.set_default("/astros.json", astros_reply(CREW))
    ok = run_cli(tmp_path, "ingest")  # applies the schema first, since it is missing
    assert ok.returncode == 0, ok.stderr
    assert re.fullmatch(rf"ingest: 3 people in space now \(fetch of {re.escape(api_url)} at "
                        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC\)\n", ok.stderr), ok.stderr
    out = run_cli(tmp_path, "sql", env_extra={"Q": "SELECT craft, name FROM astro.people FINAL ORDER BY name"})
    assert out.returncode == 0, out.stderr
    assert out.stdout == "".join(f"{c}\t{n}\n" for c, n in sorted(CREW, key=lambda p: p[1]))
    bad = run_cli(tmp_path, "sql", "SELECT", "no_such_column")
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert "UNKNOWN_IDENTIFIER" in bad.stderr and "Traceback" not in bad.stderr


def test_cli_ingest_summary_counts_people_now(tmp_path, api):
    # 5 people at one URL, then nobody at another: the line says 0, from the second URL (the
    # old summary counted every source and said 5).
    api.set_default("/five.json", astros_reply(FIVE))
    api.set_default("/empty.json", astros_reply([]))
    first = run_cli(tmp_path, "ingest", env_extra={"ASTRO_API_URL": api.url("/five.json")})
    assert first.returncode == 0, first.stderr
    assert f"ingest: 5 people in space now (fetch of {api.url('/five.json')} at " in first.stderr
    empty = run_cli(tmp_path, "ingest", env_extra={"ASTRO_API_URL": api.url("/empty.json")})
    assert empty.returncode == 0, empty.stderr
    assert f"ingest: 0 people in space now (fetch of {api.url('/empty.json')} at " in empty.stderr
    # The time in the line is the fetch's fetched_at.
    at = run_cli(tmp_path, "sql", "SELECT toString(fetched_at) FROM astro.latest_fetch").stdout.strip()
    assert f" at {at} UTC)" in empty.stderr


def test_every_shipped_xml_file_is_well_formed():
    # A server (or the embedded engine) skips a malformed function or dictionary file with
    # only a log line: the UDF would then simply not exist (e.g. `--` inside an XML comment).
    import xml.etree.ElementTree as ElementTree

    files = sorted((embedded.REPO_ROOT / "clickhouse_config").rglob("*.xml"))
    assert len(files) >= 4
    for path in files:
        ElementTree.parse(path)


# -- whatever astro accepts, ClickHouse parses ------------------------------------------------------

def _crew_with(extra: str) -> bytes:
    """The Open Notify answer for CREW with `extra` (raw JSON text) as one more member."""
    people = ",".join(json.dumps({"craft": c, "name": n}) for c, n in CREW)
    return f'{{"message": "success", "number": {len(CREW)}, "people": [{people}], {extra}}}'.encode()


# Answers ClickHouse's JSON functions cannot read (or would read otherwise), each of which once
# landed in raw_data while the MV wrote no people, with no error.
UNREADABLE = {
    "lone_surrogate": (_crew_with('"note": "\\ud83d"'), "lone surrogate"),
    "number_beyond_float64": (_crew_with('"n": 1e309'), "JSON that ClickHouse cannot read"),
    "nested_1100_deep": (_crew_with('"deep": ' + "[" * 1100 + "]" * 1100), "JSON that ClickHouse cannot read"),
    "duplicate_craft": (
        b'{"message": "success", "people": [{"craft": "A", "name": "x", "craft": "B"}]}',
        'duplicate key "craft"'),
}


@pytest.mark.parametrize("case", list(UNREADABLE))
def test_what_clickhouse_cannot_read_is_refused_on_every_path(db, api, api_url, case):
    body, reason = UNREADABLE[case]
    # ClickHouse itself cannot read it the way astro would (the reason astro refuses it).
    readable = db.scalar(f"SELECT isValidJSON(unhex('{body.hex()}'))")
    assert readable == "0" or case == "duplicate_craft", readable
    api.set_default("/astros.json", astros_reply(CREW))
    db.ingest()
    before = snapshot(db)
    api.set_default("/astros.json", Reply(status=200, body=body))
    for statement in ("INSERT INTO astro.raw_data SELECT * FROM astro.fetch_raw",
                      "SELECT * FROM astro.fetch_people",
                      f"SELECT astro_fetch('{api_url}')"):
        with pytest.raises(embedded.QueryError) as info:
            db.query(statement)
        assert reason in str(info.value), (statement, str(info.value))
    assert snapshot(db) == before
    assert people_now(db) == sorted(CREW)


def test_every_path_gives_the_same_people(db, api, api_url):
    # Awkward but readable: escapes, a surrogate pair, a pretty answer, extra fields.
    crew = [("ISS", r"Jo\u00e3o \ud83d\ude80"), (r"Tian\tgong", r"Ye \"Guangfu\"")]
    people_json = ", ".join(f'{{"craft": "{c}", "name": "{n}", "age": 1.5e3}}' for c, n in crew)
    body = f'{{\n  "message": "success",\n  "people": [ {people_json} ]\n}}'.encode()
    api.set_default("/astros.json", Reply(status=200, body=body))
    db.ingest()
    via_mv = people_now(db)
    via_view = sorted((r["craft"], r["name"]) for r in db.rows("SELECT craft, name FROM astro.fetch_people"))
    answer = db.query(f"SELECT astro_fetch('{api_url}')", "RawBLOB")
    via_udf = sorted((p["craft"], p["name"]) for p in json.loads(answer)["people"])
    expected = sorted((json.loads(f'"{c}"'), json.loads(f'"{n}"')) for c, n in crew)
    assert via_mv == via_view == via_udf == expected
    assert db.scalar(f"SELECT isValidJSON(astro_fetch('{api_url}'))") == "1"
