"""The embedded ClickHouse engine (chDB) for astro: one piece of code for the Makefile, the tests
and the dbt bridge.

An embedded database is a directory (env ASTRO_DB, default <repo>/.astro/db). Next to it,
`<db>.config.xml` tells the engine where the astro binary lives (user_scripts_path) and where the
UDF definitions are (user_defined_executable_functions_config), with absolute paths, so the same
`clickhouse_config/functions/*_function.xml` serves the server and the embedded engine.

chDB allows one holder of a database path at a time: open, use, close. Every opener here (the
Database class, hence astro_dev.astro_db and the tests, and the dbt bridge) first takes an
exclusive, non-blocking lock on `<db>.lock` (fcntl.flock, held while the database is open, released
by the kernel when the process ends), so a second process fails at once with DatabaseInUse, one
line naming the holder's pid, instead of an engine error deep inside chDB.

    from astro_dev.embedded import Database
    with Database("/tmp/db") as db:           # writes /tmp/db.config.xml, opens the session
        db.apply()                            # sql/*.sql + sql/embedded/*.sql, in file-name order
        db.ingest()                           # sql/ingest/ingest.sql (runs `astro fetch`)
        print(db.query("SELECT count() FROM astro.people_now"))        # TabSeparated text
        db.rows("SELECT craft, name FROM astro.people FINAL")          # [{'craft':..,'name':..}]

For clickhouse-connect (the dbt bridge):
    clickhouse_connect.get_client(interface="chdb", path=str(db_path),
                                  chdb_options=chdb_options(db_path))
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import subprocess
from pathlib import Path
from typing import Iterable
from xml.sax.saxutils import escape as _xml_escape

# The repository the package works on (python/astro_dev/embedded.py is two levels below it): the
# package is installed editable, so its files are the checkout's own.
REPO_ROOT = Path(__file__).resolve().parents[2]
if not (REPO_ROOT / "sql").is_dir():
    raise ImportError(f"astro_dev works on the files of its repository (sql/, user_scripts/, "
                      f"dbt/), which are not around {Path(__file__).parent}: install it editable "
                      "from the checkout (pip install -e ., as make venv does)")
SQL_DIR = REPO_ROOT / "sql"
# Object DDL applied on both engines, in file-name order.
SCHEMA_GLOB = "*.sql"
# DDL only the embedded engine accepts (the executable DDL dictionary; the server has the XML).
EMBEDDED_DIR = SQL_DIR / "embedded"
# The refreshable materialized view: fetches on its own, so only on request.
SCHEDULE_DIR = SQL_DIR / "schedule"
INGEST_FILE = SQL_DIR / "ingest" / "ingest.sql"
USER_SCRIPTS_DIR = REPO_ROOT / "user_scripts"
FUNCTIONS_DIR = REPO_ROOT / "clickhouse_config" / "functions"
DICTIONARIES_DIR = REPO_ROOT / "clickhouse_config" / "dictionaries"

__all__ = [
    "REPO_ROOT", "SQL_DIR", "EMBEDDED_DIR", "SCHEDULE_DIR", "INGEST_FILE", "USER_SCRIPTS_DIR",
    "FUNCTIONS_DIR", "DICTIONARIES_DIR", "QueryError", "DatabaseInUse", "DatabaseLock",
    "Database", "default_db_path", "config_path", "lock_path", "write_config",
    "write_functions_with_flags", "connection_string", "chdb_options", "schema_plan", "schema_files",
    "schema_objects", "split_statements",
]


_STACK_TRACE = re.compile(r", Stack trace \(when copying this message.*?\n(?:\d+\. [^\n]*\n)+ \(version [^)]*\)", re.S)


class QueryError(Exception):
    """A query failed. str(error) and .message: ClickHouse's message (e.g. 'Code: 60.
    DB::Exception: ...') without the unsymbolised stack trace some errors carry (UDF failures);
    .raw: the engine's text as is; .sql: the statement."""

    def __init__(self, message: str, sql: str = ""):
        self.raw = message
        self.message = _STACK_TRACE.sub("", message)
        self.sql = sql
        super().__init__(self.message)


class DatabaseInUse(Exception):
    """Another holder has the embedded database open. str(error) is one line for the user."""


def lock_path(db_path: str | os.PathLike) -> Path:
    """The lock file of `db_path`: the sibling file `<db>.lock`."""
    db = Path(os.path.realpath(db_path))
    return db.with_name(db.name + ".lock")


def _describe_pid(pid: int) -> str:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
    except OSError:
        return f"pid {pid}"
    command = " ".join(os.path.basename(a.decode(errors="replace")) if i == 0 else
                       a.decode(errors="replace") for i, a in enumerate(argv) if a)
    command = " ".join(command.split())  # one line, whatever the arguments hold
    if len(command) > 80:
        command = command[:77] + "..."
    return f"pid {pid}: {command}" if command else f"pid {pid}"


class DatabaseLock:
    """An exclusive, non-blocking flock on `<db>.lock`; the holder's pid is written into the file
    so the next opener can say who holds it. A lock file left behind by a dead process does not
    block anyone: the kernel drops a flock with the last descriptor."""

    def __init__(self, db_path: str | os.PathLike):
        self.db_path = Path(os.path.realpath(db_path))
        self.path = lock_path(self.db_path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> "DatabaseLock":
        if self._fd is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            who = (_describe_pid(int(holder)) if holder.isdigit() else "unknown pid")
            if holder == str(os.getpid()):
                who = f"this process, pid {holder}"
            raise DatabaseInUse(
                f"astro: the embedded database {self.db_path} is in use ({who}); one process "
                "at a time can open it: wait for it or stop it, then retry"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.ftruncate(fd, 0)
            os.close(fd)  # closing the last descriptor drops the flock

    def __enter__(self) -> "DatabaseLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def default_db_path() -> Path:
    """$ASTRO_DB, or <repo>/.astro/db."""
    return Path(os.environ.get("ASTRO_DB") or REPO_ROOT / ".astro" / "db")


def config_path(db_path: str | os.PathLike) -> Path:
    """Where the engine config for `db_path` lives: the sibling file `<db>.config.xml`."""
    db = Path(os.path.realpath(db_path))
    return db.with_name(db.name + ".config.xml")


def write_config(db_path: str | os.PathLike, *, user_scripts_dir: str | os.PathLike | None = None,
                 functions_dir: str | os.PathLike | None = None) -> Path:
    """Write the embedded engine config next to the database and return its path.

    user_scripts_dir: where `astro` is (default <repo>/user_scripts).
    functions_dir: the directory of *_function.xml UDF files (default
    <repo>/clickhouse_config/functions; tests pass a copy with a loopback allowlist).
    """
    scripts = Path(os.path.realpath(user_scripts_dir or USER_SCRIPTS_DIR))
    functions = Path(os.path.realpath(functions_dir or FUNCTIONS_DIR))
    cfg = config_path(db_path)
    cfg.parent.mkdir(parents=True, exist_ok=True)
    text = (
        "<?xml version=\"1.0\"?>\n"
        "<!-- Written by astro_dev.embedded for the embedded engine (chDB); regenerated on every open. -->\n"
        "<clickhouse>\n"
        f"    <user_scripts_path>{_xml_escape(str(scripts))}/</user_scripts_path>\n"
        "    <user_defined_executable_functions_config>"
        f"{_xml_escape(str(functions))}/*_function.xml"
        "</user_defined_executable_functions_config>\n"
        "</clickhouse>\n"
    )
    if not cfg.exists() or cfg.read_text() != text:
        tmp = cfg.with_name(cfg.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(cfg)
    return cfg


def chdb_options(db_path: str | os.PathLike, **config_kwargs) -> dict[str, str]:
    """Engine options for clickhouse-connect's chdb client (writes the config file)."""
    return {"config-file": str(write_config(db_path, **config_kwargs))}


def connection_string(db_path: str | os.PathLike, **config_kwargs) -> str:
    """`<realpath>?config-file=<cfg>` for chdb.session.Session (writes the config file).

    The path is normalised with realpath, as clickhouse-connect does, so both open the same path.
    """
    cfg = write_config(db_path, **config_kwargs)
    return f"{os.path.realpath(db_path)}?config-file={cfg}"


def write_functions_with_flags(target: str | os.PathLike, extra_flags: str) -> Path:
    """Copy the shipped clickhouse_config/functions/*_function.xml into `target`, appending
    `extra_flags` to every `astro udf` command line (e.g. `--allow-host 127.0.0.1
    --allow-private` for a loopback API in tests and benchmarks; the shipped files keep the safe
    default allowlist). Returns `target`, usable as `functions_dir`."""
    target = Path(target)
    target.mkdir(parents=True, exist_ok=True)
    for src in sorted(FUNCTIONS_DIR.glob("*_function.xml")):
        text = src.read_text()
        new, count = re.subn(r"(<command>\s*astro udf\b[^<]*?)(\s*</command>)",
                             lambda m: f"{m.group(1)} {extra_flags}{m.group(2)}", text)
        if count == 0 and "astro udf" in text:
            raise ValueError(f"no astro udf command line found in {src}")
        (target / src.name).write_text(new)
    return target


def schema_plan(schedule: bool = False, user_scripts_dir: str | os.PathLike | None = None,
                sql_dir: str | os.PathLike | None = None) -> list[tuple[str, str]]:
    """(file, statement) pairs in apply order, as the astro binary itself plans them
    (`astro init --dry-run --jsonl --engine embedded`): the same files, order and statement
    splitting that `astro init` applies to a server, plus sql/embedded/, and sql/schedule/ on
    request. `sql_dir`: another schema directory instead of the copy inside the binary."""
    binary = Path(user_scripts_dir or USER_SCRIPTS_DIR) / "astro"
    if not os.access(binary, os.X_OK):
        raise QueryError(f"{binary} is missing: run `make build` first")
    args = [str(binary), "init", "--dry-run", "--jsonl", "--engine", "embedded"]
    if schedule:
        args.append("--schedule")
    if sql_dir is not None:
        args += ["--sql-dir", str(sql_dir)]
    # The embedded schema is the astro database as written: no CLICKHOUSE_DATABASE renaming.
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLICKHOUSE_")}
    done = subprocess.run(args, capture_output=True, env=env, check=False)
    if done.returncode != 0:
        raise QueryError(f"astro init --dry-run failed: {done.stderr.decode(errors='replace').strip()}")
    return [(line["file"], line["statement"])
            for line in map(json.loads, done.stdout.decode().splitlines())]


def schema_files(schedule: bool = False) -> list[Path]:
    """The DDL files `apply` runs, in order (from schema_plan): sql/*.sql, sql/embedded/*.sql,
    then (on request) sql/schedule/*.sql."""
    files: list[Path] = []
    for file, _ in schema_plan(schedule):
        path = REPO_ROOT / file
        if path not in files:
            files.append(path)
    return files


_CREATE = re.compile(r"""CREATE\s+(?:OR\s+REPLACE\s+)?(TABLE|VIEW|MATERIALIZED\s+VIEW|DICTIONARY)
                         \s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)\.(\w+)""", re.I | re.X)


def schema_objects(schedule: bool = False, files: Iterable[Path] | None = None) -> list[tuple[str, str]]:
    """(database, name) of every table, view and dictionary the schema (default: what `apply`
    runs; else these files) creates."""
    if files is None:
        statements = [statement for _, statement in schema_plan(schedule)]
    else:
        statements = [s for path in files for s in split_statements(path.read_text())]
    return [(m.group(2), m.group(3)) for m in map(_CREATE.search, statements) if m]


_TOKEN = re.compile(r"""
      '(?:[^'\\]|\\.|'')*'        # string literal
    | "(?:[^"\\]|\\.|"")*"        # quoted identifier
    | `(?:[^`\\]|\\.|``)*`        # back-quoted identifier
    | --[^\n]*                    # line comment
    | /\*.*?\*/                   # block comment
    | ;                           # statement end
    | [^'"`;/-]+ | .              # anything else
""", re.S | re.X)


def sql_string(value: str) -> str:
    """`value` as a ClickHouse string literal: quoted, with backslashes and quotes escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def split_statements(text: str) -> list[str]:
    """Split SQL text on `;` outside literals and comments; drop empty (comment-only) parts.
    For ad-hoc SQL (ingest statements, README examples); the schema is split by the binary
    (schema_plan), and tests/py/test_sql_layer.py holds the two splitters equal."""
    out, cur, has_code = [], [], False
    for m in _TOKEN.finditer(text):
        tok = m.group(0)
        if tok == ";":
            if has_code:
                out.append("".join(cur).strip())
            cur, has_code = [], False
            continue
        cur.append(tok)
        if not (tok.startswith("--") or tok.startswith("/*") or tok.isspace()):
            has_code = True
    if has_code:
        out.append("".join(cur).strip())
    return out


class Database:
    """An open embedded database. Use as a context manager, or call close()."""

    def __init__(self, db_path: str | os.PathLike | None = None, *,
                 user_scripts_dir: str | os.PathLike | None = None,
                 functions_dir: str | os.PathLike | None = None):
        self.path = Path(os.path.realpath(db_path or default_db_path()))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.user_scripts_dir = user_scripts_dir
        self._session = None
        self._lock = DatabaseLock(self.path).acquire()  # raises DatabaseInUse, before any engine
        try:
            from chdb import session  # imported late: `astro_db --help` needs no engine

            self.conn_str = connection_string(self.path, user_scripts_dir=user_scripts_dir,
                                              functions_dir=functions_dir)
            self._session = session.Session(self.conn_str)
        except BaseException:
            self._lock.release()
            raise

    # -- lifecycle ---------------------------------------------------------------------------
    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None
        self._lock.release()

    def __enter__(self) -> "Database":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- queries -----------------------------------------------------------------------------
    def query_bytes(self, sql: str, fmt: str = "TabSeparated") -> bytes:
        """Run one statement; the raw output bytes in `fmt`. Raises QueryError."""
        if self._session is None:
            raise QueryError("the database is closed", sql)
        try:
            result = self._session.query(sql, fmt)
        except Exception as exc:  # chdb raises ChdbError (a RuntimeError) with ClickHouse's text
            raise QueryError(str(exc).strip(), sql) from None
        return result.bytes() if result is not None else b""

    def query(self, sql: str, fmt: str = "TabSeparated") -> str:
        """Run one statement; the output decoded as UTF-8 (TabSeparated by default)."""
        return self.query_bytes(sql, fmt).decode("utf-8", errors="surrogateescape")

    def execute(self, sql: str) -> None:
        """Run one statement for its effect."""
        self.query_bytes(sql)

    def execute_script(self, text: str) -> int:
        """Run every statement of `text` in order; the number run."""
        statements = split_statements(text)
        for statement in statements:
            self.execute(statement)
        return len(statements)

    def rows(self, sql: str) -> list[dict]:
        """The result as a list of dicts (JSONEachRow: as ClickHouse writes JSON, so 64-bit
        integers arrive as strings; cast with toUInt32() etc. in SQL if you want numbers)."""
        out = self.query(sql, "JSONEachRow")
        return [json.loads(line) for line in out.splitlines() if line]

    def scalar(self, sql: str) -> str:
        """The first column of the first row, as TabSeparated text ('' when there is no row)."""
        out = self.query(sql)
        return out.split("\n", 1)[0].split("\t", 1)[0]

    # -- astro operations --------------------------------------------------------------------
    def apply(self, schedule: bool = False) -> list[Path]:
        """Apply the schema (idempotent), as planned by the binary (schema_plan). With
        schedule=True also the refreshable MV. Returns the files applied, in order."""
        applied: list[Path] = []
        for file, statement in schema_plan(schedule, self.user_scripts_dir):
            try:
                self.execute(statement)
            except QueryError as exc:
                raise QueryError(f"{file}: {exc.message}", exc.sql) from None
            path = REPO_ROOT / file
            if path not in applied:
                applied.append(path)
        return applied

    def ingest(self) -> None:
        """One ingest: sql/ingest/ingest.sql, INSERT ... SELECT * FROM astro.fetch_raw."""
        self.execute_script(INGEST_FILE.read_text())

    def has_schema(self, files: Iterable[Path] | None = None) -> bool:
        """True if every table, view and dictionary `apply` creates (or `files` create) exists;
        an older schema without a newer object counts as missing, so `ingest` applies it."""
        wanted = schema_objects(files=files)
        pairs = ", ".join(f"('{d}', '{n}')" for d, n in wanted)
        return self.scalar(f"SELECT count() FROM system.tables WHERE (database, name) IN ({pairs})") \
            == str(len(wanted))
