"""`astro init` and `astro load` (push mode over HTTP with the clickhouse crate) checked against
the real engine, without a ClickHouse server (none can run here):

1. a loopback endpoint answers like ClickHouse's HTTP interface and records every request
   (method, path, query string, headers, body; the INSERT streams its body chunked);
2. the recorded requests are replayed into a fresh embedded database (chDB): a DDL request's
   body is the statement; an INSERT's statement is in the `query` parameter (default database in
   `database`, settings as further parameters) and its body is RowBinary, replayed with
   `INSERT ... FROM INFILE '<body file>' FORMAT RowBinary`, i.e. the very statement the server
   would run, on the very bytes it would read;
3. raw_data and people must then hold the right rows.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from astro_dev import embedded
from astro_dev.api_server import ApiServer, astros_reply
from conftest import USER_SCRIPTS

ASTRO = USER_SCRIPTS / "astro"
PASSWORD = "replay-pw-5d1e"
# Names that need escaping in every text format: the binary path must carry them byte for byte.
CREW = [
    ("ISS", "Oleg Kononenko"),
    ("ISS", "Tab\there, new\nline"),
    ("Tiangong", "Ye Guangfu"),
    ("Crew Dragon", "Квота 'single' \"double\" back\\slash 🚀"),
]


# -- a recording stand-in for ClickHouse's HTTP interface ------------------------------------

@dataclass
class Recorded:
    method: str
    path: str
    params: list[tuple[str, str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def param(self, name: str) -> str | None:
        return next((value for key, value in self.params if key == name), None)


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def clickhouse_error(status: int, code: int, text: str) -> Answer:
    return Answer(status, f"Code: {code}. DB::Exception: {text}\n".encode(),
                  {"X-ClickHouse-Exception-Code": str(code)})


class Recorder:
    """Records every request; answers with the scripted answers in order, then 200 (empty body,
    as ClickHouse answers a successful INSERT or DDL)."""

    def __init__(self, *script: Answer):
        self.requests: list[Recorded] = []
        self._script = list(script)
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_POST(self):
                recorder._handle(self)

            do_GET = do_POST

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> "Recorder":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = bytearray()
            while True:
                size = int(handler.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while handler.rfile.readline().strip():
                        pass
                    break
                body += handler.rfile.read(size)
                handler.rfile.readline()
        else:
            body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        path, _, query = handler.path.partition("?")
        with self._lock:
            self.requests.append(Recorded(handler.command, path,
                                          urllib.parse.parse_qsl(query, keep_blank_values=True),
                                          {k.lower(): v for k, v in handler.headers.items()},
                                          bytes(body)))
            answer = self._script.pop(0) if self._script else Answer()
        handler.send_response(answer.status)
        for name, value in answer.headers.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(answer.body)))
        handler.end_headers()
        handler.wfile.write(answer.body)


# -- running astro and replaying what it sent -------------------------------------------------

def astro(*args: str, clickhouse: Recorder, api_url: str | None = None,
          ) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("CLICKHOUSE_") and k not in ("ASTRO_HEADERS_FILE", "ASTRO_BEARER_TOKEN")}
    env.update(CLICKHOUSE_URL=clickhouse.url, CLICKHOUSE_PASSWORD=PASSWORD)
    if api_url:
        env["ASTRO_API_URL"] = api_url
    return subprocess.run([str(ASTRO), *args], env=env, capture_output=True, text=True,
                          timeout=60, cwd=embedded.REPO_ROOT)


def replay(db: embedded.Database, request: Recorded, scratch: Path) -> None:
    """Run one recorded request on the embedded engine, as the server would have."""
    assert request.method == "POST"
    statement = request.param("query")
    if statement is None:
        # A query without data (DDL from `astro init`): the body is the statement.
        db.execute(request.body.decode())
        return
    settings = [(k, v) for k, v in request.params if k not in ("query", "database")]
    database = request.param("database")
    assert " FORMAT " in statement, statement
    body_file = scratch / f"body-{len(list(scratch.iterdir()))}.bin"
    body_file.write_bytes(request.body)
    # The statement as sent; the body comes from the file (FROM INFILE goes before FORMAT).
    head, _, fmt = statement.rpartition(" FORMAT ")
    if database:
        db.execute(f"USE {database}")
    for name, value in settings:
        db.execute(f"SET {name} = {embedded.sql_string(value)}")
    try:
        db.execute(f"{head} FROM INFILE {embedded.sql_string(str(body_file))} FORMAT {fmt}")
    finally:
        for name, _ in settings:
            db.execute(f"SET {name} = DEFAULT")
        db.execute("USE default")


def raw_rows(db, final: bool = True) -> list[dict]:
    return db.rows("SELECT source, toString(fetched_at) AS fetched_at, toUInt32(attempts) AS attempts,"
                   f" payload FROM astro.raw_data {'FINAL' if final else ''} ORDER BY fetched_at")


def people(db, final: bool = True) -> list[tuple[str, str, str]]:
    return sorted((r["craft"], r["name"], r["fetched_at"]) for r in db.rows(
        "SELECT craft, name, toString(fetched_at) AS fetched_at FROM astro.people "
        f"{'FINAL' if final else ''}"))


@pytest.fixture
def api_crew():
    with ApiServer() as api:
        api.set_default("/astros.json", astros_reply(CREW))
        yield api


@pytest.fixture
def scratch(tmp_path) -> Path:
    path = tmp_path / "bodies"
    path.mkdir()
    return path


# -- tests ------------------------------------------------------------------------------------

def test_init_then_load_replayed_into_the_engine(make_db, api_crew, scratch):
    api_url = api_crew.url("/astros.json")
    with Recorder() as clickhouse:
        init = astro("init", clickhouse=clickhouse)
        assert init.returncode == 0, init.stderr
        ddl = list(clickhouse.requests)
        load = astro("load", "-v", clickhouse=clickhouse, api_url=api_url)
        assert load.returncode == 0, load.stderr
        inserts = clickhouse.requests[len(ddl):]
    assert PASSWORD not in init.stdout + init.stderr + load.stdout + load.stderr

    # init sent sql/*.sql, one statement per request, in file-name order, besides its ledger
    # bookkeeping (reading it, creating it, one record per file).
    def is_ledger(request):
        return "schema_migrations" in request.body.decode(errors="replace") + (request.param("query") or "")

    files = sorted(embedded.SQL_DIR.glob("*.sql"))
    statements = [request for request in ddl if not is_ledger(request)]
    assert len(statements) == len(files)
    for request, path in zip(statements, files):
        assert request.body.decode() == path.read_text().strip().rstrip(";").strip(), path
        assert request.headers.get("x-clickhouse-key") == PASSWORD
        assert request.param("database") is None

    # One INSERT, RowBinary, into the default database astro.
    assert len(inserts) == 1
    insert = inserts[0]
    assert insert.param("database") == "astro"
    assert insert.param("query") == \
        "INSERT INTO `raw_data`(`source`,`fetched_at`,`attempts`,`payload`) FORMAT RowBinary"
    assert insert.param("insert_deduplication_token").startswith("astro-raw-")

    db = make_db(apply=False)  # a fresh database: the schema comes from init's replay
    for request in ddl:
        replay(db, request, scratch)
    assert db.has_schema(files)  # everything sql/*.sql creates (sql/embedded/ is not the server's)
    # The ledger, replayed into the engine, records every file once.
    assert db.query("SELECT file FROM astro.schema_migrations FINAL ORDER BY file").split() == \
        [path.name for path in files]
    replay(db, insert, scratch)

    rows = raw_rows(db)
    assert len(rows) == 1
    row = rows[0]
    assert row["source"] == api_url
    assert row["attempts"] == 1
    answer = json.loads(row["payload"])
    assert answer["message"] == "success"
    assert [(p["craft"], p["name"]) for p in answer["people"]] == CREW
    assert row["payload"] == json.dumps(answer, ensure_ascii=False, separators=(",", ":"))
    # The materialized view parsed the inserted row: every person, with that fetch's fetched_at.
    assert people(db) == sorted((craft, name, row["fetched_at"]) for craft, name in CREW)
    # fetched_at is the fetch time the binary reports.
    assert row["fetched_at"] in load.stderr


def test_retried_insert_lands_exactly_one_row(make_db, api_crew, scratch):
    """HTTP 500 (a transient ClickHouse error), then success. Replaying BOTH requests is the worst
    case (the server committed the first INSERT but its answer was lost): still one row."""
    api_url = api_crew.url("/astros.json")
    transient = clickhouse_error(500, 252, "Too many parts (300). Merges are processing "
                                           "significantly slower than inserts. (TOO_MANY_PARTS)")
    with Recorder(transient) as clickhouse:
        load = astro("load", "-v", clickhouse=clickhouse, api_url=api_url)
        requests = list(clickhouse.requests)
    assert load.returncode == 0, load.stderr
    assert "2 insert attempts" in load.stderr
    assert len(requests) == 2
    first, second = requests
    assert first.param("insert_deduplication_token") == second.param("insert_deduplication_token")
    assert first.param("deduplicate_blocks_in_dependent_materialized_views") == "1"
    assert first.param("query") == second.param("query")
    assert first.body == second.body

    # Without server-side deduplication (plain MergeTree): ReplacingMergeTree collapses the
    # identical rows (same source, same fetched_at version).
    db = make_db()
    replay(db, first, scratch)
    replay(db, second, scratch)
    rows = raw_rows(db)
    assert len(rows) == 1
    assert people(db) == sorted((c, n, rows[0]["fetched_at"]) for c, n in CREW)

    # With insert deduplication on (as on Replicated/SharedMergeTree, e.g. ClickHouse Cloud),
    # the token makes the server drop the repeated block outright: one row even without FINAL.
    # (Same database: the engine holds one database path per process.)
    db.execute("TRUNCATE TABLE astro.raw_data")
    db.execute("TRUNCATE TABLE astro.people")
    for table in ("raw_data", "people"):
        db.execute(f"ALTER TABLE astro.{table} MODIFY SETTING non_replicated_deduplication_window = 100")
    replay(db, first, scratch)
    replay(db, second, scratch)
    assert len(raw_rows(db, final=False)) == 1
    # deduplicate_blocks_in_dependent_materialized_views = 1 (sent by astro): the view's block
    # into people is dropped too.
    assert people(db, final=False) == sorted((c, n, rows[0]["fetched_at"]) for c, n in CREW)


def test_error_answers_are_one_line_with_the_server_message(api_crew):
    api_url = api_crew.url("/astros.json")
    auth = clickhouse_error(401, 516, "default: Authentication failed: password is incorrect, or "
                                      "there is no user with such name. (AUTHENTICATION_FAILED)")
    with Recorder(auth) as clickhouse:
        result = astro("load", clickhouse=clickhouse, api_url=api_url)
        assert len(clickhouse.requests) == 1  # not retried
    assert result.returncode == 1
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert "authentication failed for user 'default'" in result.stderr
    assert "Code: 516. DB::Exception: default: Authentication failed" in result.stderr
    assert PASSWORD not in result.stderr

    missing = clickhouse_error(404, 60, "Table astro.raw_data does not exist. (UNKNOWN_TABLE)")
    with Recorder(missing) as clickhouse:
        result = astro("load", clickhouse=clickhouse, api_url=api_url)
    assert result.returncode == 1
    assert "table astro.raw_data does not exist (run `astro init` first): Code: 60." in result.stderr
