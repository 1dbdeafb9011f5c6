"""Run dbt for astro, on the embedded engine (chDB) by default: the bridge dbt-clickhouse lacks.

    .venv/bin/python -m astro_dev.dbt_embedded build                  # embedded, ASTRO_DB
    .venv/bin/python -m astro_dev.dbt_embedded build --vars '{ingest: true}'
    .venv/bin/python -m astro_dev.dbt_embedded debug --target server  # the Docker server (http)

Any dbt command line works; flags given explicitly win over these defaults (set through dbt's own
environment variables, so commands without such flags are unaffected):
    DBT_PROJECT_DIR=<repo>/dbt   DBT_PROFILES_DIR=<repo>/dbt   DBT_TARGET=embedded
    ASTRO_DB=<repo>/.astro/db    (the embedded database, as for astro_dev.astro_db)
and, like astro_db's --user-scripts/--functions (the tests use them to run another build):
    ASTRO_USER_SCRIPTS=<repo>/user_scripts   ASTRO_FUNCTIONS=<repo>/clickhouse_config/functions
dbt runs in this process through dbtRunner, dbt's documented programmatic entry point. The exit
status is the one dbt's own command line gives: 0 success, 1 a model or test failed, 2 dbt itself
failed (exit_status()).

Why a bridge. dbt-clickhouse 1.10 picks its client in dbclient.get_db_client() and knows only the
drivers `http` and `native`. clickhouse-connect (1.6 and later) has an in-process client,
`clickhouse_connect.get_client(interface="chdb", path=...)`, with the same Client API as its HTTP
client, so dbt-clickhouse's HTTP wrapper (ChHttpClient) works unchanged on top of it. install()
teaches dbt-clickhouse one more driver value and nothing else:

  * profiles.yml, target `embedded`: `driver: chdb`, `host: <database directory>`.
  * ChChdbClient = ChHttpClient with one method replaced, _create_client(), which opens the chdb
    client on that directory with the engine config astro_dev.embedded writes (user_scripts_path,
    UDF config), as chdb_options={"config-file": ...}: the same config file as
    astro_dev.astro_db, so `executable('astro fetch', ...)` in the ingest hook finds the binary.
  * get_db_client(), as imported by dbt.adapters.clickhouse.connections, is wrapped: `driver:
    chdb` gets ChChdbClient; every other driver goes to the original function untouched, so the
    `server` target behaves exactly as with plain `dbt`.
Plain `dbt` on the embedded target stops with "Unrecognized ClickHouse driver chdb" (not silently
on a server).

  * The same lock as astro_dev.embedded's Database (`<db>.lock`, exclusive flock): taken before
    the engine opens and held until dbt exits, so dbt and `make sql` (or a test, or another dbt)
    never hold the database at once; the later one stops with one line naming the holder's pid
    (exit status 2, like any other dbt failure to start).

Limits. One engine path per process (chDB): while dbt runs, no other process may hold ASTRO_DB,
so close your own session first; dbt's threads share the one engine (the profile uses threads: 1).
Host, port, user, password, TLS and connection-pool settings have no meaning in-process and are
ignored. The patch targets dbt-clickhouse 1.10.x internals: get_db_client (in dbclient, imported
by connections), ChHttpClient._create_client and ChClientWrapper's _conn_settings.
internals_problems() checks that they are there in the shape the bridge expects; install() refuses
to patch otherwise, and tests/py/test_dbt_bridge.py fails naming what changed.

Removing it, once dbt-clickhouse ships its own `driver: chdb`: set the embedded target in
dbt/profiles.yml to that driver's keys (the database path from ASTRO_DB, and the engine config:
astro_dev.embedded's chdb_options() or config_path() give the file), delete this file and call
dbt directly in the Makefile (`dbt <args> --project-dir dbt --profiles-dir dbt --target embedded`),
and in tests/py/dbt_helpers.py.
"""

from __future__ import annotations

import ast
import inspect
import os
import sys
import textwrap
from pathlib import Path

# The engine config and the lock shared with astro_db.
from . import embedded

DRIVER = "chdb"
DBT_DIR = embedded.REPO_ROOT / "dbt"

# What the bridge was written against and checked with: dbt-clickhouse's client internals change
# between minor releases, so the bridge refuses other minor versions instead of failing somewhere
# inside dbt. clickhouse-connect has had the chdb client since 1.6. The server target needs none
# of this: plain dbt, any version the project's require-dbt-version allows.
SUPPORTED = {
    "dbt-clickhouse": ((1, 10), (1, 11)),   # 1.10.x
    "clickhouse-connect": ((1, 6), None),   # 1.6 and later
}


class UnsupportedVersion(RuntimeError):
    """An installed package is outside the versions the bridge supports; str() is one line."""


class InternalsChanged(RuntimeError):
    """dbt-clickhouse's private internals differ from what install() patches; str() is one line
    naming the differences and what to do (internals_message)."""


def _minor(version: str) -> tuple[int, int]:
    parts = (version.split(".") + ["0"])[:2]
    return tuple(int("".join(c for c in part if c.isdigit()) or 0) for part in parts)


def check_versions(installed: dict[str, str | None]) -> None:
    """Raise UnsupportedVersion unless every package of SUPPORTED is installed in a supported
    version. `installed`: package name -> version (None: not installed)."""
    for package, (low, high) in SUPPORTED.items():
        version = installed.get(package)
        wanted = f">={low[0]}.{low[1]}" + (f", <{high[0]}.{high[1]}" if high else "")
        if version is None:
            raise UnsupportedVersion(
                f"astro: the embedded dbt target needs {package} {wanted}, which is not installed "
                "(make venv installs it)")
        minor = _minor(version)
        if minor < low or (high is not None and minor >= high):
            raise UnsupportedVersion(
                f"astro: the embedded dbt target (astro_dev.dbt_embedded) supports {package} "
                f"{wanted}, not {version}; the server target works with plain dbt "
                "(dbt ... --target server), or install the pinned versions with make venv")


def installed_versions() -> dict[str, str | None]:
    from importlib import metadata
    versions: dict[str, str | None] = {}
    for package in SUPPORTED:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return versions


# The locks this process holds, by database path: taken once, kept until the process exits (dbt
# may open and close its client several times in one run; nobody else may slip in between).
_HELD: dict[str, embedded.DatabaseLock] = {}


def hold_lock(db_path: str) -> None:
    """Take the embedded database's lock for the rest of this process (idempotent)."""
    path = os.path.realpath(db_path)
    if path not in _HELD:
        _HELD[path] = embedded.DatabaseLock(path).acquire()  # raises DatabaseInUse


def target_of(argv: list[str]) -> str:
    """The dbt target of this command line, in every spelling dbt's parser (click) takes:
    `--target X`, `--target=X`, `-t X`, `-tX`; the last one given wins, as in dbt. Else
    DBT_TARGET (set by main)."""
    target = None
    args = iter(argv)
    for arg in args:
        if arg in ("--target", "-t"):
            target = next(args, target)
        elif arg.startswith("--target="):
            target = arg.split("=", 1)[1]
        elif arg.startswith("-t") and not arg.startswith("--"):
            target = arg[2:]
    return target if target is not None else os.environ.get("DBT_TARGET", "embedded")


def exit_status(result) -> int:
    """The exit status dbt's own command line gives for this dbtRunnerResult: 0 success, 1 dbt ran
    and a model or test failed (a result, no exception), 2 dbt itself failed (an exception: the
    command line, the project, the connection)."""
    if result.success:
        return 0
    return 1 if result.exception is None else 2


# -- the fence around the private dbt-clickhouse internals the bridge patches ------------------

def _source_tree(function) -> ast.AST | None:
    try:
        return ast.parse(textwrap.dedent(inspect.getsource(function)))
    except (OSError, TypeError, SyntaxError):
        return None


def _is_self_attribute(node: ast.AST, name: str) -> bool:
    return (isinstance(node, ast.Attribute) and node.attr == name
            and isinstance(node.value, ast.Name) and node.value.id == "self")


def _parameters(function) -> list[str] | None:
    try:
        return list(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return None


def internals_problems(connections=None, dbclient=None, httpclient=None) -> list[str]:
    """What differs, in dbt-clickhouse, from the private internals install() patches: one sentence
    per difference, [] when all are as the bridge expects. The modules default to the installed
    dbt.adapters.clickhouse.{connections,dbclient,httpclient}; tests pass altered ones."""
    if connections is None or dbclient is None or httpclient is None:
        from dbt.adapters.clickhouse import connections, dbclient, httpclient
    problems = []

    # 1. The client factory: dbclient.get_db_client(credentials), imported by name into
    #    connections, whose ClickHouseConnectionManager.open() calls that name (so replacing
    #    connections.get_db_client reroutes every connection).
    factory = getattr(dbclient, "get_db_client", None)
    if not callable(factory):
        problems.append("dbclient.get_db_client is gone")
    elif (parameters := _parameters(factory)) != ["credentials"]:
        problems.append(f"dbclient.get_db_client takes ({', '.join(parameters or [])}), "
                        "not (credentials)")
    imported = getattr(connections, "get_db_client", None)
    imported = getattr(imported, "astro_original", imported)  # install() ran in this process
    if factory is not None and imported is not factory:
        problems.append("connections no longer imports dbclient.get_db_client by name")
    manager = getattr(connections, "ClickHouseConnectionManager", None)
    tree = _source_tree(getattr(manager, "open", None))
    if tree is None or not any(isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                               and node.func.id == "get_db_client" for node in ast.walk(tree)):
        problems.append("ClickHouseConnectionManager.open() no longer calls get_db_client()")

    # 2. The HTTP client wrapper: ChHttpClient, a ChClientWrapper whose _create_client(self,
    #    credentials) returns the clickhouse-connect client, made with settings=self._conn_settings.
    wrapper = getattr(dbclient, "ChClientWrapper", None)
    http = getattr(httpclient, "ChHttpClient", None)
    if not (isinstance(http, type) and isinstance(wrapper, type) and issubclass(http, wrapper)):
        problems.append("httpclient.ChHttpClient is gone or no longer a dbclient.ChClientWrapper")
    else:
        create = http.__dict__.get("_create_client")
        if create is None:
            problems.append("ChHttpClient no longer defines _create_client()")
        else:
            parameters = _parameters(create)
            if parameters != ["self", "credentials"]:
                problems.append(f"ChHttpClient._create_client takes "
                                f"({', '.join(parameters or [])}), not (self, credentials)")
            tree = _source_tree(create)
            if tree is None or not any(isinstance(node, ast.keyword) and node.arg == "settings"
                                       and _is_self_attribute(node.value, "_conn_settings")
                                       for node in ast.walk(tree)):
                problems.append("ChHttpClient._create_client() no longer passes "
                                "settings=self._conn_settings to clickhouse-connect")

    # 3. ChClientWrapper.__init__ sets self._conn_settings before it calls
    #    self._create_client(credentials) (the bridge's _create_client reads it).
    tree = _source_tree(getattr(wrapper, "__init__", None))
    nodes = list(ast.walk(tree)) if tree is not None else []
    settings = [node.lineno for node in nodes
                if _is_self_attribute(node, "_conn_settings") and isinstance(node.ctx, ast.Store)]
    creates = [node.lineno for node in nodes
               if isinstance(node, ast.Call) and _is_self_attribute(node.func, "_create_client")]
    if not settings or not creates or min(settings) > min(creates):
        problems.append("ChClientWrapper.__init__ no longer sets self._conn_settings before it "
                        "calls self._create_client()")
    return problems


def internals_message(problems: list[str]) -> str:
    """The sentence that names what changed and what to do about it."""
    versions = installed_versions()
    return (f"astro: dbt-clickhouse {versions.get('dbt-clickhouse')} changed the private "
            "internals the embedded target's bridge (python/astro_dev/dbt_embedded.py) patches: "
            + "; ".join(problems) + ". If this dbt-clickhouse has its own `driver: chdb`, remove "
            "the bridge as its docstring says; else adapt install() to the new internals, make "
            "internals_problems() describe them, and update SUPPORTED.")


def install() -> None:
    """Teach dbt-clickhouse the driver `chdb` (idempotent). See the module docstring."""
    import clickhouse_connect
    from dbt.adapters.clickhouse import connections
    from dbt.adapters.exceptions import FailedToConnectError
    from dbt.adapters.clickhouse.httpclient import ChHttpClient

    original = connections.get_db_client
    if getattr(original, "astro_bridge", False):
        return
    problems = internals_problems()
    if problems:
        raise InternalsChanged(internals_message(problems))

    class ChChdbClient(ChHttpClient):
        """dbt-clickhouse's HTTP client wrapper over clickhouse-connect's in-process chdb client."""

        def _create_client(self, credentials):
            db_path = os.path.realpath(credentials.host)
            try:
                hold_lock(db_path)
            except embedded.DatabaseInUse as ex:
                raise FailedToConnectError(str(ex)) from None
            try:
                return clickhouse_connect.get_client(
                    interface="chdb",
                    path=db_path,
                    chdb_options=embedded.chdb_options(
                        db_path,
                        user_scripts_dir=os.environ.get("ASTRO_USER_SCRIPTS") or None,
                        functions_dir=os.environ.get("ASTRO_FUNCTIONS") or None,
                    ),
                    query_limit=0,
                    settings=self._conn_settings,
                )
            except Exception as ex:  # e.g. a holder outside astro's tools (no lock taken)
                raise FailedToConnectError(
                    f"{ex}\nThe embedded database {db_path} can be open in one process at a "
                    "time: close other sessions on it (make sql, a test, another dbt) and retry."
                ) from ex

    def get_db_client(credentials):
        if credentials.driver == DRIVER:
            return ChChdbClient(credentials)
        return original(credentials)

    get_db_client.astro_bridge = True
    get_db_client.astro_original = original
    connections.get_db_client = get_db_client


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("DBT_PROJECT_DIR", str(DBT_DIR))
    os.environ.setdefault("DBT_PROFILES_DIR", str(DBT_DIR))
    os.environ.setdefault("DBT_TARGET", "embedded")
    os.environ["ASTRO_DB"] = str(embedded.default_db_path().resolve())
    if target_of(argv) == "embedded":
        # Before dbt starts: an unsupported version or a database in use is one line, not a dbt
        # stack of errors.
        try:
            check_versions(installed_versions())
            hold_lock(os.environ["ASTRO_DB"])
        except (UnsupportedVersion, embedded.DatabaseInUse) as ex:
            print(ex, file=sys.stderr)
            return 2
    try:
        install()
    except InternalsChanged as ex:
        print(ex, file=sys.stderr)
        return 2
    from dbt.cli.exceptions import DbtInternalException, DbtUsageException
    from dbt.cli.main import dbtRunner

    result = dbtRunner().invoke(argv)
    # dbt logs every failure of a command itself; a command line it cannot parse it only returns.
    if isinstance(result.exception, (DbtUsageException, DbtInternalException)):
        print(f"dbt: {result.exception}", file=sys.stderr)
    return exit_status(result)


if __name__ == "__main__":
    sys.exit(main())
