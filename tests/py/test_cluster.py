"""astro on a ClickHouse cluster (docs/cluster.md), checked where no cluster can run.

There is no Docker engine and no ClickHouse server here, and the embedded engine (chDB) has no
replication. What the real engine can hold is held on it:

- every statement `astro init --cluster` prints, and every statement the binary sends on a real
  run, is parsed by the engine (EXPLAIN AST, formatQuery);
- the check astro makes before creating anything runs on the engine, through a stand-in for
  ClickHouse's HTTP interface backed by a chDB process whose config defines a cluster of two
  replicas that are that process itself (chDB runs clusterAllReplicas on "local" replicas);
- two inits at once leave a ledger a third init reads as all applied (single node: no Keeper);
- the cluster config files load into the engine the way the compose file mounts them;
- the compose file validates against the vendored compose-spec schema, mounts only paths that
  exist, and pins versions that have the features; the dbt `cluster` target builds replicated
  marts and agrees with astro on the database engine.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
import xml.etree.ElementTree as ET
from pathlib import Path, PurePosixPath

import jinja2
import jsonschema
import pytest
import yaml

from astro_dev import embedded
from conftest import USER_SCRIPTS, write_test_functions

ROOT = embedded.REPO_ROOT
ASTRO = USER_SCRIPTS / "astro"
COMPOSE_FILE = ROOT / "docker-compose.yml"
CLUSTER_D = ROOT / "clickhouse_config" / "cluster.d"
KEEPER_XML = ROOT / "clickhouse_config" / "keeper" / "keeper_config.xml"
SCHEMA_DIR = ROOT / "tests" / "data" / "compose-spec"
DOC = ROOT / "docs" / "cluster.md"
CLUSTER = "astro_cluster"
PASSWORD = "cluster-pw-8e41"
REPLICAS = ("clickhouse-1", "clickhouse-2")
# The oldest ClickHouse with everything the cluster uses (docs/cluster.md, minimum versions).
MINIMUM = (24, 10)


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CLICKHOUSE_", "ASTRO_"))}
    env.update(extra)
    return env


def astro(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(ASTRO), *args], env=clean_env(**env), capture_output=True,
                          text=True, timeout=120, cwd=ROOT)


def planned(*args: str, **env: str) -> list[str]:
    """The statements `astro init --dry-run --jsonl <args>` prints."""
    done = astro("init", "--dry-run", "--jsonl", *args, **env)
    assert done.returncode == 0, done.stderr
    return [json.loads(line)["statement"] for line in done.stdout.splitlines()]


def code_of(sql: str) -> str:
    return "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))


def parse(db: embedded.Database, statement: str) -> str:
    """The engine's own formatting of `statement`; raises QueryError if it does not parse."""
    db.query(f"EXPLAIN AST {statement}")
    return db.rows(f"SELECT formatQuery({embedded.sql_string(statement)}) AS f")[0]["f"]


@pytest.fixture
def parser(make_db) -> embedded.Database:
    return make_db("parser", apply=False)


# -- the statements ---------------------------------------------------------------------------

def test_the_parse_check_can_fail(parser):
    with pytest.raises(embedded.QueryError, match="Syntax error"):
        parse(parser, "CREATE TABLE astro.t (x UInt8) ENGINE =")


@pytest.mark.parametrize("args,env", [
    ((), {}),
    (("--schedule",), {}),
    (("--schedule",), {"CLICKHOUSE_DATABASE": "space"}),
], ids=["schema", "schedule", "database-space"])
def test_every_statement_of_init_cluster_dry_run_parses(parser, args, env):
    statements = planned("--cluster", CLUSTER, *args, **env)
    database = env.get("CLICKHOUSE_DATABASE", "astro")
    assert len(statements) == len(planned(*args, **env))
    for statement in statements:
        formatted = parse(parser, statement)
        if re.match(r"CREATE TABLE", formatted):
            engine = re.search(r"^ENGINE = (\w+)", formatted, flags=re.M).group(1)
            assert engine.startswith("Replicated") and engine.endswith("MergeTree"), formatted
    database_ddl = parse(parser, statements[0])
    assert database_ddl.startswith(
        f"CREATE DATABASE IF NOT EXISTS {database} ON CLUSTER {CLUSTER}\n"
        f"ENGINE = Replicated('/clickhouse/databases/{CLUSTER}/{database}', '{{shard}}', "
        "'{replica}')"), database_ddl
    if "--schedule" in args:
        view = parse(parser, statements[-1])
        # One refresh per schedule: coordination is on unless all_replicas = 1.
        assert "REFRESH EVERY 15 MINUTE APPEND" in view and "all_replicas" not in view, view


def test_the_docs_sql_parses_and_shows_the_check_astro_makes(parser, tmp_path):
    blocks = re.findall(r"```sql\n(.*?)```", DOC.read_text(), flags=re.S)
    statements = [s for block in blocks for s in embedded.split_statements(block)]
    assert len(statements) >= 6
    for statement in statements:
        try:
            parse(parser, statement)
            # What reads this server's system tables runs here too (columns and all).
            if code_of(statement).lstrip().startswith("SELECT") \
                    and "clusterAllReplicas" not in statement:
                parser.query(statement)
        except embedded.QueryError as exc:
            pytest.fail(f"docs/cluster.md: {statement}\n{exc}")
    # The check's queries in the doc are the ones the binary sends (whitespace aside).
    with ChdbHttp(tmp_path, cluster_xml=local_cluster(2), functions=True) as clickhouse:
        done = astro("init", "--cluster", CLUSTER, "--clickhouse-url", clickhouse.url,
                     CLICKHOUSE_PASSWORD=PASSWORD)
        assert done.returncode == 0, done.stderr
        sent = {" ".join(r["sql"].split()) for r in clickhouse.log()}
    shown = [" ".join(code_of(s).split()) for s in statements if "system.clusters" in s
             or "clusterAllReplicas" in s and "system.functions" in s]
    assert len(shown) == 2
    for query in shown:
        assert query in sent, (query, sent)


# -- a stand-in for ClickHouse's HTTP interface, backed by the real engine --------------------

SERVER = textwrap.dedent(r'''
    """ClickHouse's HTTP interface, as far as astro uses it, on one chDB session. mode "check":
    statements that create or change anything are parsed (EXPLAIN AST), not run, and the rest
    run; mode "execute": everything runs. Every request is logged as a JSON line."""
    import json, re, sys, tempfile, threading, urllib.parse
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from chdb import session

    db, config, mode, log_path, password, together = sys.argv[1:7]
    # The first `together` ledger reads wait for each other: the inits then all find the ledger
    # empty and apply everything, at once.
    barrier = threading.Barrier(int(together)) if int(together) > 1 else None
    ledger_reads = []
    s = session.Session(db + ("?config-file=" + config if config else ""))
    lock = threading.Lock()
    scratch = tempfile.mkdtemp()
    DDL = re.compile(r"(?:\s|--[^\n]*\n)*(CREATE|ALTER|DROP|INSERT|RENAME|EXCHANGE|SYSTEM)\b", re.I)
    HTTP_ONLY = {"query", "database", "default_format"}

    def known_setting(name):
        r = s.query("SELECT count() FROM system.settings WHERE name = '%s'" % name.replace("'", ""), "TSV")
        return r.bytes().strip() == b"1"

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                body = bytearray()
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                    if size == 0:
                        while self.rfile.readline().strip():
                            pass
                        break
                    body += self.rfile.read(size)
                    self.rfile.readline()
            else:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            params = dict(urllib.parse.parse_qsl(self.path.partition("?")[2], keep_blank_values=True))
            sql = params.get("query") or body.decode()
            entry = {"sql": sql, "params": params, "outcome": "ran"}
            status, out, code = 200, b"", None
            if barrier and sql.startswith("EXISTS TABLE"):
                with lock:
                    ledger_reads.append(sql)
                    wait = len(ledger_reads) <= barrier.parties
                if wait:
                    barrier.wait(timeout=60)
            with lock:
                try:
                    if self.headers.get("X-ClickHouse-Key") != password:
                        raise RuntimeError("Code: 516. DB::Exception: wrong password (AUTHENTICATION_FAILED)")
                    for name in params:
                        if name not in HTTP_ONLY and not known_setting(name):
                            raise RuntimeError("Code: 115. DB::Exception: Unknown setting '%s' (UNKNOWN_SETTING)" % name)
                    if mode == "check" and DDL.match(sql):
                        s.query("EXPLAIN AST " + sql, "TSV")
                        entry["outcome"] = "parsed"
                    elif "query" in params:
                        head, _, fmt = sql.rpartition(" FORMAT ")
                        path = "%s/%d.bin" % (scratch, id(entry))
                        open(path, "wb").write(body)
                        if params.get("database"):
                            s.query("USE " + params["database"], "TSV")
                        try:
                            s.query("%s FROM INFILE '%s' FORMAT %s" % (head, path, fmt), "TSV")
                        finally:
                            s.query("USE default", "TSV")
                    else:
                        out = s.query(sql, params.get("default_format") or "TSV").bytes()
                except Exception as exc:
                    text = str(exc).strip()
                    m = re.match(r"Code: (\d+)", text)
                    status, out, code = 500, (text + "\n").encode(), (m.group(1) if m else "1000")
                    entry["outcome"] = "error: " + text.splitlines()[0][:300]
                with open(log_path, "a") as log:
                    log.write(json.dumps(entry) + "\n")
            self.send_response(status)
            if code:
                self.send_header("X-ClickHouse-Exception-Code", code)
            self.send_header("Content-Length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print("PORT", server.server_address[1], flush=True)
    try:
        server.serve_forever()
    finally:
        s.close()
''')


def local_cluster(replicas: int, *, down_port: int | None = None, macros: bool = True) -> str:
    """A cluster of `replicas` replicas that are all the engine process itself (localhost and
    127.0.0.1 on its tcp_port), plus one where nothing listens (down_port)."""
    hosts = ["localhost", "127.0.0.1", "127.0.0.1", "localhost"][:replicas]
    entries = "".join(f"<replica><host>{h}</host><port>9000</port></replica>" for h in hosts)
    if down_port:
        entries += f"<replica><host>127.0.0.1</host><port>{down_port}</port></replica>"
    macro = "<macros><shard>01</shard><replica>r1</replica></macros>" if macros else ""
    return (f"<clickhouse>{macro}<remote_servers><{CLUSTER}><shard>{entries}</shard>"
            f"</{CLUSTER}></remote_servers></clickhouse>")


class ChdbHttp:
    """The stand-in, in its own process (the engine keeps global state, and its config, the
    cluster's, is the process's)."""

    def __init__(self, tmp_path: Path, *, cluster_xml: str | None = None, functions: bool = False,
                 mode: str = "check", together: int = 1):
        etc = tmp_path / "etc"
        (etc / "conf.d").mkdir(parents=True, exist_ok=True)
        udf = ""
        if functions:
            udf_dir = write_test_functions(tmp_path / "functions")
            udf = (f"<user_scripts_path>{USER_SCRIPTS.resolve()}/</user_scripts_path>"
                   f"<user_defined_executable_functions_config>{udf_dir}/*_function.xml"
                   "</user_defined_executable_functions_config>")
        (etc / "config.xml").write_text(f"<clickhouse><tcp_port>9000</tcp_port>{udf}</clickhouse>")
        if cluster_xml:
            (etc / "conf.d" / "cluster.xml").write_text(cluster_xml)
        self.log_path = tmp_path / "requests.jsonl"
        self.log_path.write_text("")
        self._process = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(tmp_path / "db"), str(etc / "config.xml"), mode,
             str(self.log_path), PASSWORD, str(together)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self._process.stdout.readline()
        if not line.startswith("PORT "):
            self._process.kill()
            raise RuntimeError(f"the stand-in did not start: {line}{self._process.stderr.read()}")
        self.url = f"http://127.0.0.1:{line.split()[1]}"

    def log(self) -> list[dict]:
        return [json.loads(line) for line in self.log_path.read_text().splitlines()]

    def __enter__(self) -> "ChdbHttp":
        return self

    def __exit__(self, *exc) -> None:
        self._process.kill()
        self._process.wait(timeout=30)


def init_cluster(clickhouse: ChdbHttp, *args: str, cluster: str = CLUSTER):
    return astro("init", "--cluster", cluster, "--clickhouse-url", clickhouse.url, *args,
                 CLICKHOUSE_PASSWORD=PASSWORD)


def one_line_failure(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 1, done.stderr
    assert done.stdout == "" and len(done.stderr.splitlines()) == 1, done.stderr
    assert PASSWORD not in done.stderr
    return done.stderr


def test_on_a_ready_cluster_every_statement_sent_parses(tmp_path):
    with ChdbHttp(tmp_path, cluster_xml=local_cluster(2), functions=True) as clickhouse:
        done = init_cluster(clickhouse, "--schedule")
        log = clickhouse.log()
    assert done.returncode == 0, done.stderr
    assert all(not r["outcome"].startswith("error") for r in log), log
    # The check ran on the engine (both replicas answered, with astro_fetch and the macros)...
    ran = [r["sql"] for r in log if r["outcome"] == "ran"]
    assert any(f"clusterAllReplicas('{CLUSTER}', system.functions)" in sql for sql in ran)
    # ...and everything that creates something was parsed: the --dry-run statements in order,
    # the ledger's DDL and its rows.
    parsed = [r["sql"] for r in log if r["outcome"] == "parsed"]
    schema = [sql for sql in parsed if "schema_migrations" not in sql]
    assert schema == planned("--cluster", CLUSTER, "--schedule")
    assert any("ReplicatedReplacingMergeTree(applied_at)" in sql for sql in parsed)
    assert sum(sql.startswith("INSERT INTO `schema_migrations`") for sql in parsed) == len(schema)
    # The DDL settings astro sends are settings the engine knows (checked by the stand-in).
    ddl = [r for r in log if r["outcome"] == "parsed" and "query" not in r["params"]]
    assert all(r["params"].get("http_wait_end_of_query") == "1" for r in ddl)


def test_on_a_cluster_without_astro_every_replica_is_named_and_nothing_created(tmp_path):
    with ChdbHttp(tmp_path, cluster_xml=local_cluster(2), functions=False) as clickhouse:
        done = init_cluster(clickhouse, "--schedule")
        log = clickhouse.log()
    line = one_line_failure(done)
    assert ("2 of the 2 replicas of cluster astro_cluster are not ready, nothing was created; "
            "localhost:9000, 127.0.0.1:9000: astro is not installed (no function astro_fetch)") \
        in line, line
    # Only the check's four questions, answered by the engine; nothing parsed or created.
    assert [r["outcome"] for r in log] == ["ran"] * 4, log
    assert all(r["sql"].startswith("SELECT") for r in log)


def test_a_replica_that_does_not_answer_is_named(tmp_path):
    import socket
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        down = probe.getsockname()[1]
    with ChdbHttp(tmp_path, cluster_xml=local_cluster(2, down_port=down),
                  functions=True) as clickhouse:
        line = one_line_failure(init_cluster(clickhouse))
        log = clickhouse.log()
    assert (f"1 of the 3 replicas of cluster astro_cluster is not ready, nothing was created; "
            f"127.0.0.1:{down}: did not answer (down or unreachable)") in line, line
    assert len(log) == 4


def test_replicas_without_the_macros_are_named(tmp_path):
    with ChdbHttp(tmp_path, cluster_xml=local_cluster(2, macros=False),
                  functions=True) as clickhouse:
        line = one_line_failure(init_cluster(clickhouse))
    assert ("localhost:9000, 127.0.0.1:9000: the macros {shard} and {replica} are not both "
            "defined") in line, line


def test_an_unknown_cluster_is_named(tmp_path):
    with ChdbHttp(tmp_path, cluster_xml=local_cluster(2), functions=True) as clickhouse:
        line = one_line_failure(init_cluster(clickhouse, cluster="elsewhere"))
        log = clickhouse.log()
    assert "cluster elsewhere is not defined on the ClickHouse server at http://127.0.0.1:" \
        in line, line
    assert len(log) == 1


def test_two_inits_at_once_leave_a_ledger_that_reads_all_applied(tmp_path):
    """Single node (the embedded engine has no Keeper): the ledger's table and its reading are
    the cluster's but for the replicated engine."""
    with ChdbHttp(tmp_path, mode="execute", together=2) as clickhouse:
        env = clean_env(CLICKHOUSE_PASSWORD=PASSWORD)
        runs = [subprocess.Popen([str(ASTRO), "init", "--clickhouse-url", clickhouse.url],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True) for _ in range(2)]
        files = len(planned())
        for run in runs:
            _, err = run.communicate(timeout=120)
            assert run.returncode == 0, err
            assert f"{files} files applied, 0 unchanged" in err, err
        # Both applied and recorded every file: two rows per file, told apart by applied_at.
        rows = [r for r in clickhouse.log() if r["sql"].startswith("INSERT INTO `schema_migrations`")]
        assert len(rows) == 2 * files and all(r["outcome"] == "ran" for r in rows)
        third = astro("init", "--clickhouse-url", clickhouse.url, CLICKHOUSE_PASSWORD=PASSWORD)
        assert third.returncode == 0, third.stderr
        assert f"0 files applied, {files} unchanged" in third.stderr, third.stderr


# -- the cluster's configuration, as the compose file mounts it --------------------------------

@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def volumes_of(service: dict) -> list[dict]:
    result = []
    for v in service.get("volumes", []):
        if isinstance(v, dict):
            result.append({"type": v["type"], "source": v["source"], "target": v["target"],
                           "read_only": bool(v.get("read_only"))})
        else:
            source, target, *mode = v.split(":")
            result.append({"type": "bind" if source.startswith((".", "/")) else "volume",
                           "source": source, "target": target, "read_only": mode == ["ro"]})
    return result


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, from `env`."""
    def one(m):
        name, op, rest = m.group(1), m.group(2), m.group(3)
        if env.get(name):
            return env[name]
        if op == ":-":
            return rest
        raise KeyError(f"{name} is required: {rest}")
    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, str(value))


def pinned_version(image: str) -> tuple[int, ...]:
    tag = interpolate(image.split(":", 1)[1], {})
    return tuple(int(part) for part in tag.split("."))


def test_the_cluster_services_are_the_profile_and_make_up_is_unchanged(services):
    profiled = {name for name, s in services.items() if s.get("profiles")}
    assert profiled == {"keeper", *REPLICAS, "cluster-init"}
    assert all(services[name]["profiles"] == ["cluster"] for name in profiled)
    makefile = (ROOT / "Makefile").read_text()
    up = re.search(r"^up: .*?\n((?:\t.*\n)+)", makefile, flags=re.M).group(1)
    assert "--profile" not in up
    up_cluster = re.search(r"^up-cluster: .*?\n((?:\t.*\n)+)", makefile, flags=re.M).group(1)
    assert "--profile cluster up -d --wait keeper clickhouse-1 clickhouse-2" in up_cluster
    assert "--profile cluster run --rm cluster-init" in up_cluster


def test_replicas_run_the_builders_binary_with_health_checks(services):
    single = services["clickhouse"]
    [binary] = [m for m in volumes_of(single) if m["source"] == "astro-bin"]
    for name in REPLICAS:
        replica = services[name]
        assert replica["hostname"] == name
        assert replica["depends_on"] == {
            "builder": {"condition": "service_completed_successfully"},
            "keeper": {"condition": "service_healthy"}}
        mounts = volumes_of(replica)
        assert [m for m in mounts if m["source"] == "astro-bin"] == [binary]
        # Everything the single server mounts from the repository, and conf.d.
        for m in volumes_of(single):
            if m["type"] == "bind":
                assert m in mounts, (name, m)
        [conf_d] = [m for m in mounts if m["target"] == "/etc/clickhouse-server/conf.d"]
        assert (ROOT / conf_d["source"]).resolve() == CLUSTER_D and conf_d["read_only"]
        data = [m for m in mounts if m["target"] == "/var/lib/clickhouse"]
        assert data == [{"type": "volume", "source": f"{name}-data",
                         "target": "/var/lib/clickhouse", "read_only": False}]
        test = replica["healthcheck"]["test"]
        assert test[0] == "CMD" and test[-1] == "http://127.0.0.1:8123/replicas_status"
        assert all(p.startswith("127.0.0.1:") for p in replica["ports"])
        env = replica["environment"]
        assert re.fullmatch(r"\$\{CLICKHOUSE_PASSWORD:\?[^}]+\}", env["CLICKHOUSE_PASSWORD"])
        assert env["CLICKHOUSE_REPLICA"] == name
        assert env["ASTRO_API_URL"] is None
    keeper = services["keeper"]
    assert keeper["healthcheck"]["test"][0] == "CMD"
    init = services["cluster-init"]
    assert init["depends_on"] == {name: {"condition": "service_healthy"} for name in REPLICAS}
    assert init["restart"] == "no"
    assert init["environment"]["CLICKHOUSE_URL"] == "http://clickhouse-1:8123"
    # Every published port has its own default, so both stacks can run at once.
    published = [interpolate(p.rsplit(":", 1)[0].split(":", 1)[1], {})
                 for service in services.values() for p in service.get("ports", [])]
    assert len(published) == len(set(published)) == 4, published
    # The data volumes are declared.
    assert {"keeper-data", "clickhouse-1-data", "clickhouse-2-data"} <= set(
        yaml.safe_load(COMPOSE_FILE.read_text())["volumes"])


def test_the_images_pin_a_version_with_every_feature(services):
    versions = {name: pinned_version(services[name]["image"])
                for name in ("keeper", *REPLICAS, "cluster-init")}
    assert len(set(versions.values())) == 1, versions
    version = next(iter(versions.values()))
    assert version >= MINIMUM, version
    assert services["keeper"]["image"].startswith("clickhouse/clickhouse-keeper:")
    for name in (*REPLICAS, "cluster-init"):
        assert services[name]["image"].startswith("clickhouse/clickhouse-server:")
    text = ".".join(map(str, version))
    assert re.search(rf"^CLICKHOUSE_CLUSTER_VERSION={re.escape(text)}$",
                     (ROOT / ".env.example").read_text(), flags=re.M)
    doc = DOC.read_text()
    assert f"pinned to `{text}`" in doc
    # The doc names the minimum of each feature, with where it comes from.
    for feature in ("Replicated database engine", "refreshable materialized views, `APPEND`",
                    "refreshable views in a Replicated database"):
        row = next(line for line in doc.splitlines() if line.startswith(f"| {feature}"))
        assert re.search(r"\| (2[4-9])\.\d+ ", row) and "changelog" in row, row
    assert f"**{MINIMUM[0]}.{MINIMUM[1]}** is the least a cluster needs" in doc


def test_every_path_the_compose_file_mounts_exists(services):
    for name, service in services.items():
        for m in volumes_of(service):
            if m["type"] == "bind":
                path = (ROOT / m["source"]).resolve()
                assert path.exists(), (name, m)
                assert ROOT in path.parents or path == ROOT, (name, m)


def test_the_compose_file_validates_against_the_compose_spec(compose):
    schema_file = SCHEMA_DIR / "compose-spec.json"
    recorded = re.search(r"SHA-256: `([0-9a-f]{64})`", (SCHEMA_DIR / "README.md").read_text())
    assert hashlib.sha256(schema_file.read_bytes()).hexdigest() == recorded.group(1)
    validator = jsonschema.Draft7Validator(json.loads(schema_file.read_text()))
    errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []
    # The validator does refuse what the schema refuses.
    broken = json.loads(json.dumps(compose))
    broken["services"]["keeper"]["profiles"] = "cluster"
    broken["services"]["clickhouse-1"]["healthcheck"]["retry"] = 3
    assert len(list(validator.iter_errors(broken))) == 2


def container_to_host(service: dict, path: str) -> Path | None:
    best = None
    for m in volumes_of(service):
        target = m["target"].rstrip("/")
        if m["type"] == "bind" and (path == target or path.startswith(target + "/")):
            if best is None or len(target) > len(best["target"]):
                best = m
    if best is None:
        return None
    rest = path[len(best["target"].rstrip("/")):].lstrip("/")
    return (ROOT / best["source"]).resolve() / rest


PROBE = textwrap.dedent("""
    import json, sys
    from chdb import session
    s = session.Session(sys.argv[1] + "?config-file=" + sys.argv[2])
    def rows(q):
        return [json.loads(l) for l in s.query(q, "JSONEachRow").bytes().decode().splitlines()]
    try:
        print("RESULT" + json.dumps({
            "clusters": rows("SELECT shard_num, replica_num, host_name, port, user "
                             "FROM system.clusters WHERE cluster = '%s' ORDER BY shard_num, replica_num"
                             % sys.argv[3]),
            "macros": rows("SELECT macro, substitution FROM system.macros ORDER BY macro"),
            "udf": rows("SELECT count() AS n FROM system.functions WHERE name = 'astro_fetch'"),
        }))
    finally:
        s.close()
""")


def load_as_replica(tmp_path: Path, service: dict) -> dict:
    """The replica's config as the server would read it: config.xml, config.d and conf.d from
    the service's mounts, container paths moved to what is mounted there (the binary's volume to
    the host build), the service's environment; loaded by the embedded engine."""
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "config.xml").write_text("<clickhouse></clickhouse>\n")
    moves = {}
    for m in volumes_of(service):
        if m["type"] == "bind":
            moves[m["target"].rstrip("/")] = str((ROOT / m["source"]).resolve())
        elif m["source"] == "astro-bin":
            moves[m["target"].rstrip("/")] = str(USER_SCRIPTS.resolve())
    for directory in ("config.d", "conf.d"):
        source = container_to_host(service, f"/etc/clickhouse-server/{directory}")
        assert source is not None and source.is_dir(), directory
        (etc / directory).mkdir()
        for f in source.glob("*.xml"):
            text = f.read_text()
            for target, host in sorted(moves.items(), key=lambda kv: -len(kv[0])):
                if target.startswith("/etc/clickhouse-server/conf") or target == "/var/lib/clickhouse":
                    continue
                text = text.replace(target, host)
            (etc / directory / f.name).write_text(text)
    env = clean_env(CLICKHOUSE_PASSWORD=PASSWORD)
    env.update({k: interpolate(v, {"CLICKHOUSE_PASSWORD": PASSWORD})
                for k, v in service["environment"].items() if v is not None})
    done = subprocess.run([sys.executable, "-c", PROBE, str(tmp_path / "db"),
                           str(etc / "config.xml"), CLUSTER], capture_output=True, text=True,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.split("RESULT", 1)[1])


@pytest.mark.parametrize("replica", REPLICAS)
def test_the_cluster_config_loads_as_the_replicas_load_it(tmp_path, services, replica):
    service = services[replica]
    loaded = load_as_replica(tmp_path, service)
    hosts = [services[name]["hostname"] for name in REPLICAS]
    assert loaded["clusters"] == [
        {"shard_num": 1, "replica_num": i + 1, "host_name": host, "port": 9000, "user": "astro"}
        for i, host in enumerate(hosts)]
    assert loaded["macros"] == [
        {"macro": "replica", "substitution": service["hostname"]},
        {"macro": "shard", "substitution": service["environment"]["CLICKHOUSE_SHARD"]}]
    # The UDF of the mounted functions directory, with the builder's binary where it is mounted.
    assert loaded["udf"] == [{"n": "1"}] or loaded["udf"] == [{"n": 1}]
    # The password reaches the config from the environment only.
    assert PASSWORD not in "".join(p.read_text() for p in CLUSTER_D.glob("*.xml"))


def test_keeper_and_the_replicas_agree(services):
    cluster = ET.parse(CLUSTER_D / "astro_cluster.xml").getroot()
    keeper = ET.parse(KEEPER_XML).getroot()
    node = cluster.find("zookeeper/node")
    assert node.findtext("host") == services["keeper"]["hostname"]
    assert node.findtext("port") == keeper.findtext("keeper_server/tcp_port")
    [server] = keeper.findall("keeper_server/raft_configuration/server")
    assert server.findtext("id") == keeper.findtext("keeper_server/server_id")
    assert server.findtext("hostname") == services["keeper"]["hostname"]
    [mount] = [m for m in volumes_of(services["keeper"]) if m["type"] == "bind"]
    assert mount["target"] == "/etc/clickhouse-keeper/keeper_config.xml" and mount["read_only"]
    assert (ROOT / mount["source"]).resolve() == KEEPER_XML
    [data] = [m for m in volumes_of(services["keeper"]) if m["type"] == "volume"]
    for key in ("log_storage_path", "snapshot_storage_path"):
        path = PurePosixPath(keeper.findtext(f"keeper_server/{key}"))
        assert PurePosixPath(data["target"]) in path.parents, key
    # One cluster name everywhere: remote_servers, cluster-init, the dbt profile's default.
    [name] = [child.tag for child in cluster.find("remote_servers")]
    assert name == CLUSTER
    argv = services["cluster-init"]["entrypoint"]
    assert argv[1:5] == ["init", "--cluster", name, "--schedule"]
    assert f"env_var('CLICKHOUSE_CLUSTER', '{name}')" in (ROOT / "dbt" / "profiles.yml").read_text()
    hosts = [r.findtext("host") for r in cluster.findall(f"remote_servers/{name}/shard/replica")]
    assert hosts == [services[r]["hostname"] for r in REPLICAS]


def test_cluster_init_of_the_compose_file_plans_the_cluster_schema(services, parser):
    init = services["cluster-init"]
    args = list(init["entrypoint"][1:])
    index = args.index("--sql-dir") + 1
    args[index] = str(container_to_host(init, args[index]))
    done = astro(*args, "--dry-run", "--jsonl", CLICKHOUSE_PASSWORD="p w")
    assert done.returncode == 0, done.stderr
    statements = [json.loads(line)["statement"] for line in done.stdout.splitlines()]
    assert statements == planned("--cluster", CLUSTER, "--schedule")
    assert "p w" not in done.stdout + done.stderr
    for statement in statements:
        parse(parser, statement)


# -- dbt -----------------------------------------------------------------------------------------

def render_profile(target: str, env: dict[str, str]) -> dict:
    """profiles.yml's target, rendered with env_var as dbt renders it."""
    def env_var(name, default=None):
        if name in env:
            return env[name]
        if default is None:
            raise KeyError(name)
        return default
    jinja = jinja2.Environment(undefined=jinja2.StrictUndefined)
    jinja.filters["as_number"] = lambda value: int(value)
    profile = yaml.safe_load((ROOT / "dbt" / "profiles.yml").read_text())
    output = profile["astro_project"]["outputs"][target]

    def render(value):
        if isinstance(value, str):
            return jinja.from_string(value).render(env_var=env_var)
        if isinstance(value, dict):
            return {k: render(v) for k, v in value.items()}
        return value
    return render(output)


@pytest.mark.parametrize("cluster", [None, "prod-eu"])
def test_the_dbt_cluster_target_has_astros_database_engine(cluster):
    env = {"CLICKHOUSE_CLUSTER": cluster} if cluster else {}
    target = render_profile("cluster", env)
    name = cluster or CLUSTER
    assert target["cluster"] == name
    ddl = planned("--cluster", name)[0]
    engine = re.search(r"ENGINE = (Replicated\(.*\))$", ddl).group(1)
    assert target["database_engine"] == engine
    assert target["schema"] == "astro" and target["driver"] == "http"
    assert target["custom_settings"] == {"insert_quorum": "auto",
                                         "database_replicated_enforce_synchronous_settings": 1}


def dbt_parse(tmp_path: Path, target: str) -> dict:
    out = tmp_path / target
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "parse", "--project-dir", "dbt",
         "--profiles-dir", "dbt", "--target", target, "--target-path", str(out),
         "--log-path", str(out / "logs"), "--no-partial-parse"],
        cwd=ROOT, env=clean_env(CLICKHOUSE_PASSWORD="x", DBT_TARGET=target),
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    return {n["name"]: n["config"].get("engine") for n in manifest["nodes"].values()
            if n["resource_type"] == "model" and n["config"].get("materialized") == "table"}


def test_dbt_builds_replicated_marts_on_the_cluster_only(tmp_path):
    assert dbt_parse(tmp_path, "cluster") == {
        "people_per_craft": "ReplicatedMergeTree()", "people_summary": "ReplicatedMergeTree()"}
    for target in ("embedded", "server"):
        assert set(dbt_parse(tmp_path, target).values()) == {"MergeTree()"}, target


def test_the_marts_ddl_dbt_sends_on_the_cluster_parses(parser):
    """dbt-clickhouse 1.10's table materialization: CREATE TABLE ... ENGINE = <engine> ORDER
    BY ... EMPTY AS (<model>), then INSERT, then EXCHANGE TABLES (no ON CLUSTER: the database
    is Replicated)."""
    for order_by in ("craft", "tuple()"):
        parse(parser, f"create table astro.people_per_craft__dbt_backup engine = "
                      f"ReplicatedMergeTree() order by {order_by} empty as (select 'a' as craft)")
    parse(parser, "EXCHANGE TABLES astro.people_per_craft__dbt_backup AND astro.people_per_craft")
