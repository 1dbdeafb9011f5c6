#!/usr/bin/env python3
"""astro against ClickHouse's url() and a Python executable, side by side in one run (issue 7).

    .venv/bin/python bench/run.py            # the full run (`make bench`), a few minutes
    .venv/bin/python bench/run.py --quick    # a smoke run: every row of the table, few rounds
    .venv/bin/python bench/run.py --json results.json   # also write the figures as JSON

Everything runs on the embedded engine (chDB, one session for the whole run) against a loopback
fake API (tests/py/api_server.py; bodies are serialised once, before timing). Nothing reaches the
internet. The run works in a temporary directory: a database, a user_scripts directory holding a
copy of the repo's `astro` binary and bench/python_fetch.py, and a copy of the UDF XML that
allows the loopback host (the shipped XML allows api.open-notify.org only).

Measured
  1. small ingest (the ~200-byte normal answer): the whole INSERT ... SELECT into astro.raw_data
     (the shipped schema, materialized view into astro.people included) for
       astro   the shipped statement sql/ingest/ingest.sql (executable('astro fetch'))
       url     url(..., JSONAsString)
       python  executable('python_fetch.py') (stdlib urllib, same retry and validation contract)
     interleaved per round, the order rotating each round; median, p10, p90.
     Also the fetch alone (SELECT, no insert) for the three, to show where the time goes.
  2. large answer (1,000,000 people, ~50 MB): the raw insert for the three into bench.raw_data
     (same columns as astro.raw_data, no materialized view, so only fetch + insert is timed);
     people rows into bench.people: `astro fetch --output people` against url() + JSONExtract
     ARRAY JOIN; and, for reference, the product's path (astro raw into a table whose
     materialized view parses the payload). Peak RSS of the binary (and of the Python script) run
     outside ClickHouse (os.wait4 rusage) against the payload size.
  3. the UDF astro_fetch(url) (executable_pool) over N distinct loopback URLs: ms per row.

Goals (issue 7; benchmark figures, not assertions): small astro <= 1.2x url and python >= 15x
astro; large raw astro <= 1.1x url; people astro <= url + parse; peak RSS <= 2.5 x payload + 10 MB.
Each is printed PASS or MISS. The exit code is non-zero only if a measurement failed (a query
error or a wrong row count), never for a missed goal.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent
sys.path.insert(0, str(REPO_ROOT / "tools"))
sys.path.insert(0, str(REPO_ROOT / "tests" / "py"))

import embedded  # noqa: E402
from api_server import ApiServer, Reply, astros_body  # noqa: E402

MIB = 1024 * 1024
RAW_COLUMNS = "source String, fetched_at DateTime64(3, ''UTC''), attempts UInt32, payload String"
PEOPLE_COLUMNS = "craft String, name String, fetched_at DateTime64(3, ''UTC'')"
EXEC_SETTINGS = "check_exit_code = 1, stderr_reaction = 'log_last'"
# The large answer needs a larger size cap and a longer budget than the defaults, and the
# matching command_read_timeout (milliseconds) inside executable().
LARGE_FLAGS = "--max-bytes 256MiB --timeout 60s --max-elapsed 60s"
LARGE_PY_FLAGS = f"--max-bytes {256 * MIB} --timeout 60 --max-elapsed 60"
LARGE_SETTINGS = f"{EXEC_SETTINGS}, command_read_timeout = 120000"

# The small answer: the shape of Open Notify's, about 200 bytes.
SMALL_PEOPLE = [("ISS", "Oleg Kononenko"), ("ISS", "Nikolai Chub"), ("ISS", "Tracy Caldwell Dyson"),
                ("Tiangong", "Ye Guangfu")]


class BenchError(Exception):
    """A measurement failed (not a missed goal)."""


# ------------------------------------------------------------------------------------------
# statistics and formatting


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile, q in [0, 100]."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    pos = (len(ordered) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass
class Series:
    label: str
    samples: list[float] = field(default_factory=list)  # seconds

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def summary(self) -> dict:
        return {"label": self.label, "n": len(self.samples), "median_s": self.median,
                "p10_s": percentile(self.samples, 10), "p90_s": percentile(self.samples, 90),
                "min_s": min(self.samples), "max_s": max(self.samples)}


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def fmt_s(seconds: float) -> str:
    return f"{seconds:.3f}"


def fmt_mb(nbytes: float) -> str:
    return f"{nbytes / MIB:.1f}"


# ------------------------------------------------------------------------------------------
# machine


def machine_info() -> dict:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    try:
        import chdb
        engine = f"chDB {getattr(chdb, '__version__', '?')}"
    except Exception:  # pragma: no cover
        engine = "chDB ?"
    try:
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        load = "unknown"
    return {"nproc": os.cpu_count(), "cpu": cpu, "memory": mem, "loadavg_at_start": load,
            "kernel": platform.release(), "python": platform.python_version(), "engine": engine}


# ------------------------------------------------------------------------------------------
# setup


def python_interpreter() -> str:
    """The interpreter the Python executable's shebang names: /usr/bin/python3 when present (what
    a user script would name), else this interpreter's real path. Never a pyenv-style shim,
    whose start-up would be charged to the Python script unfairly."""
    if os.access("/usr/bin/python3", os.X_OK):
        return "/usr/bin/python3"
    return os.path.realpath(sys.executable)


def install_user_scripts(target: Path, interpreter: str) -> None:
    """A user_scripts directory for the run: a copy of the repo's astro (ClickHouse requires the
    executable inside user_scripts_path, so a copy rather than a link) and python_fetch.py with a
    concrete interpreter in its shebang."""
    target.mkdir(parents=True, exist_ok=True)
    binary = embedded.USER_SCRIPTS_DIR / "astro"
    if not os.access(binary, os.X_OK):
        raise BenchError(f"{binary} is missing: run `make build` first (make bench does)")
    shutil.copy2(binary, target / "astro")
    # The floor of any executable() ingest: `cat` of a pre-made answer (what ClickHouse costs
    # around a program that does no work).
    cat = shutil.which("cat")
    if cat is None:
        raise BenchError("no `cat` on PATH")
    shutil.copy2(cat, target / "cat")
    source = (HERE / "python_fetch.py").read_text().split("\n", 1)[1]
    script = target / "python_fetch.py"
    script.write_text(f"#!{interpreter}\n{source}")
    script.chmod(0o755)


def large_people(n: int) -> list[tuple[str, str]]:
    crafts = ("ISS", "Tiangong", "Crew Dragon", "Soyuz MS-25")
    surnames = ("Kononenko", "Caldwell Dyson", "Guangfu", "Šimek", "Nováková", "O'Hara")
    # About 52 bytes per person in the JSON: 1,000,000 people make a ~50 MB answer.
    return [(crafts[i % len(crafts)], f"{surnames[i % len(surnames)]} {i:07d}")
            for i in range(n)]


BENCH_DDL = [
    "CREATE DATABASE IF NOT EXISTS bench",
    # Same columns and engine as astro.raw_data, but no materialized view: fetch + insert only.
    """CREATE TABLE IF NOT EXISTS bench.raw_data (source String, fetched_at DateTime64(3, 'UTC'),
        attempts UInt32, payload String) ENGINE = ReplacingMergeTree(fetched_at) ORDER BY source""",
    # People rows in arrival order (no sort key), so the fetch and parse dominate, not sorting.
    """CREATE TABLE IF NOT EXISTS bench.people (craft String, name String,
        fetched_at DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY tuple()""",
    # The product's path for reference: raw rows whose materialized view parses the payload
    # (as astro.people_mv does).
    """CREATE TABLE IF NOT EXISTS bench.raw_mv (source String, fetched_at DateTime64(3, 'UTC'),
        attempts UInt32, payload String) ENGINE = ReplacingMergeTree(fetched_at) ORDER BY source""",
    """CREATE TABLE IF NOT EXISTS bench.people_mv_target (craft String, name String,
        fetched_at DateTime64(3, 'UTC')) ENGINE = MergeTree ORDER BY tuple()""",
    """CREATE MATERIALIZED VIEW IF NOT EXISTS bench.people_mv TO bench.people_mv_target AS
        SELECT tupleElement(p, 'craft') AS craft, tupleElement(p, 'name') AS name, fetched_at
        FROM bench.raw_mv
        ARRAY JOIN JSONExtract(payload, 'people', 'Array(Tuple(craft String, name String))') AS p""",
]


# ------------------------------------------------------------------------------------------
# peak RSS of a command

_RSS_HELPER = r"""
import os, sys, time
devnull = os.open(os.devnull, os.O_WRONLY)
start = time.perf_counter()
pid = os.posix_spawn(sys.argv[1], sys.argv[1:], os.environ,
                     file_actions=[(os.POSIX_SPAWN_DUP2, devnull, 1)])
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - start
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss, wall)
"""
GNU_TIME = "/usr/bin/time"
RSS_METHOD = ("GNU time (/usr/bin/time -f %M)" if os.access(GNU_TIME, os.X_OK)
              else "python -S helper, os.wait4 rusage")


def peak_rss(argv: list[str]) -> tuple[int, float]:
    """(peak RSS in bytes, wall seconds) of one run of argv with stdout to /dev/null."""
    if os.access(GNU_TIME, os.X_OK):
        start = time.perf_counter()
        proc = subprocess.run([GNU_TIME, "-f", "%M", *argv], stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
        wall = time.perf_counter() - start
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        if proc.returncode != 0 or not err:
            raise BenchError(f"{argv[0]} exited {proc.returncode}: {' '.join(err)[:300]}")
        return int(err[-1]) * 1024, wall
    proc = subprocess.run([os.path.realpath(sys.executable), "-S", "-c", _RSS_HELPER, *argv],
                          capture_output=True)
    fields = proc.stdout.decode().split()
    if proc.returncode != 0 or len(fields) != 3 or fields[0] != "0":
        raise BenchError(f"{argv[0]} failed: {proc.stderr.decode(errors='replace')[:300]}")
    return int(fields[1]) * 1024, float(fields[2])


# ------------------------------------------------------------------------------------------
# the runner


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path):
        self.args = args
        self.workdir = workdir
        self.results: dict = {"machine": machine_info(), "mode": "quick" if args.quick else "full",
                              "workdir": str(workdir)}
        self.rows: list[tuple] = []  # printed table

    # -- helpers -------------------------------------------------------------------------
    def timed(self, sql: str) -> float:
        start = time.perf_counter()
        try:
            self.db.execute(sql)
        except embedded.QueryError as exc:
            raise BenchError(f"query failed: {exc.message}\n  SQL: {sql[:300]}") from None
        return time.perf_counter() - start

    def count(self, sql: str) -> int:
        return int(self.db.scalar(sql) or 0)

    def premade(self, name: str, argv: list[str]) -> Path:
        """Run argv once outside ClickHouse, its stdout into workdir/name (for the floor rows)."""
        path = self.workdir / name
        with open(path, "wb") as out:
            proc = subprocess.run(argv, stdout=out, stderr=subprocess.PIPE)
        if proc.returncode != 0:
            raise BenchError(f"{argv[0]} exited {proc.returncode}: "
                             f"{proc.stderr.decode(errors='replace')[:300]}")
        return path

    def expect(self, what: str, got: int, want: int) -> None:
        if got != want:
            raise BenchError(f"{what}: expected {want} rows, got {got}")

    # -- the run -------------------------------------------------------------------------
    def run(self) -> None:
        args = self.args
        interpreter = python_interpreter()
        scripts = self.workdir / "user_scripts"
        install_user_scripts(scripts, interpreter)
        self.scripts = scripts
        functions = embedded.write_functions_with_flags(
            self.workdir / "functions", "--allow-host 127.0.0.1 --allow-private")
        self.results["python_interpreter"] = interpreter

        small_body = astros_body(SMALL_PEOPLE)
        t0 = time.perf_counter()
        large_body = astros_body(large_people(args.people))
        self.results["small_bytes"] = len(small_body)
        self.results["large_bytes"] = len(large_body)
        self.results["large_people"] = args.people
        print(f"# bodies ready: small {len(small_body)} B, large {len(large_body) / MIB:.1f} MiB "
              f"({args.people:,} people) in {time.perf_counter() - t0:.1f}s", file=sys.stderr)

        with ApiServer(lifetime=3600) as api:
            api.set_default("/astros.json", Reply(body=small_body))
            api.set_default("/large.json", Reply(body=large_body))
            self.small_url = api.url("/astros.json")
            self.large_url = api.url("/large.json")
            # Anything that falls back to the environment stays on loopback.
            os.environ["ASTRO_API_URL"] = self.small_url + "?via=astro"
            with embedded.Database(self.workdir / "db", user_scripts_dir=scripts,
                                   functions_dir=functions) as db:
                self.db = db
                db.apply()
                for statement in BENCH_DDL:
                    db.execute(statement)
                self.small()
                self.large()
                self.udf()
            self.rss(scripts)
        self.goals()

    # -- 1. small ingest -----------------------------------------------------------------
    def small(self) -> None:
        u = self.small_url
        ingest = embedded.split_statements(embedded.INGEST_FILE.read_text())
        if len(ingest) != 1:
            raise BenchError(f"{embedded.INGEST_FILE} should hold one statement")
        inserts = {
            # The shipped statement, verbatim; the URL comes from ASTRO_API_URL (?via=astro).
            "astro": ingest[0],
            "url": f"INSERT INTO astro.raw_data SELECT '{u}?via=url', now64(3), 1, json "
                   f"FROM url('{u}?via=url', JSONAsString, 'json String')",
            "python": f"INSERT INTO astro.raw_data SELECT * FROM executable("
                      f"'python_fetch.py --url {u}?via=python', TabSeparated, '{RAW_COLUMNS}', "
                      f"SETTINGS {EXEC_SETTINGS})",
        }
        floor_file = self.premade("floor_small.tsv", [str(self.scripts / "astro"), "fetch",
                                                      "--url", f"{u}?via=floor"])
        inserts["floor"] = (f"INSERT INTO astro.raw_data SELECT * FROM executable("
                            f"'cat {floor_file}', TabSeparated, '{RAW_COLUMNS}', "
                            f"SETTINGS {EXEC_SETTINGS})")
        selects = {
            "astro": f"SELECT sum(length(payload)) FROM executable('astro fetch', TabSeparated, "
                     f"'{RAW_COLUMNS}', SETTINGS {EXEC_SETTINGS})",
            "url": f"SELECT sum(length(json)) FROM url('{u}?via=url', JSONAsString, 'json String')",
            "python": f"SELECT sum(length(payload)) FROM executable("
                      f"'python_fetch.py --url {u}?via=python', TabSeparated, '{RAW_COLUMNS}', "
                      f"SETTINGS {EXEC_SETTINGS})",
        }
        methods = list(inserts)
        # Warm-up (first process start, first url() connection), then check each lands a row.
        for m in methods:
            self.timed(inserts[m])
            if m in selects:
                self.timed(selects[m])
        for m in methods:
            self.expect(f"small ingest via {m}", self.count(
                f"SELECT count() FROM astro.raw_data FINAL WHERE source = '{u}?via={m}'"), 1)
        ins = {m: Series(m) for m in methods}
        sel = {m: Series(m) for m in selects}
        rounds = self.args.rounds
        for r in range(rounds):
            k = r % len(methods)
            order = methods[k:] + methods[:k]
            for m in order:
                ins[m].samples.append(self.timed(inserts[m]))
            for m in order:
                if m in sel:
                    sel[m].samples.append(self.timed(selects[m]))
        # The processes alone, outside ClickHouse (spawned from here, stdout to /dev/null): how
        # much of each INSERT is the program itself.
        alone_cmd = {
            "astro": [str(self.scripts / "astro"), "fetch", "--url", f"{u}?via=alone"],
            "python": [str(self.scripts / "python_fetch.py"), "--url", f"{u}?via=alone"],
        }
        alone = {m: Series(m) for m in alone_cmd}
        for r in range(rounds):
            for m in (list(alone_cmd) if r % 2 == 0 else list(alone_cmd)[::-1]):
                start = time.perf_counter()
                proc = subprocess.run(alone_cmd[m], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE)
                alone[m].samples.append(time.perf_counter() - start)
                if proc.returncode != 0:
                    raise BenchError(f"{m} alone exited {proc.returncode}: "
                                     f"{proc.stderr.decode(errors='replace')[:300]}")
        self.results["small"] = {
            "rounds": rounds,
            "process_alone": {m: s.summary() for m, s in alone.items()},
            "process_alone_python_over_astro": alone["python"].median / alone["astro"].median,
            "insert": {m: s.summary() for m, s in ins.items()},
            "fetch_only": {m: s.summary() for m, s in sel.items()},
            "astro_over_url": ins["astro"].median / ins["url"].median,
            "python_over_astro": ins["python"].median / ins["astro"].median,
            "fetch_only_astro_over_url": sel["astro"].median / sel["url"].median,
            "fetch_only_python_over_astro": sel["python"].median / sel["astro"].median,
        }
        self.small_series = (ins, sel, alone)

    # -- 2. large answer -----------------------------------------------------------------
    def large(self) -> None:
        u, n = self.large_url, self.args.people
        raw = {
            "astro": f"INSERT INTO bench.raw_data SELECT * FROM executable("
                     f"'astro fetch --url {u}?via=astro {LARGE_FLAGS}', TabSeparated, "
                     f"'{RAW_COLUMNS}', SETTINGS {LARGE_SETTINGS})",
            "url": f"INSERT INTO bench.raw_data SELECT '{u}?via=url', now64(3), 1, json "
                   f"FROM url('{u}?via=url', JSONAsString, 'json String')",
            "python": f"INSERT INTO bench.raw_data SELECT * FROM executable("
                      f"'python_fetch.py --url {u}?via=python {LARGE_PY_FLAGS}', TabSeparated, "
                      f"'{RAW_COLUMNS}', SETTINGS {LARGE_SETTINGS})",
        }
        people = {
            "astro": f"INSERT INTO bench.people SELECT * FROM executable("
                     f"'astro fetch --url {u}?via=astro --output people {LARGE_FLAGS}', "
                     f"TabSeparated, '{PEOPLE_COLUMNS}', SETTINGS {LARGE_SETTINGS})",
            "url": f"INSERT INTO bench.people SELECT tupleElement(p, 'craft'), "
                   f"tupleElement(p, 'name'), now64(3) "
                   f"FROM url('{u}?via=url', JSONAsString, 'json String') "
                   f"ARRAY JOIN JSONExtract(json, 'people', "
                   f"'Array(Tuple(craft String, name String))') AS p",
            "astro_mv": f"INSERT INTO bench.raw_mv SELECT * FROM executable("
                        f"'astro fetch --url {u}?via=astro {LARGE_FLAGS}', TabSeparated, "
                        f"'{RAW_COLUMNS}', SETTINGS {LARGE_SETTINGS})",
        }
        astro = [str(self.scripts / "astro"), "fetch", "--url", f"{u}?via=floor",
                 *LARGE_FLAGS.split()]
        floor_raw = self.premade("floor_raw.tsv", astro)
        floor_people = self.premade("floor_people.tsv", [*astro, "--output", "people"])
        raw["floor"] = (f"INSERT INTO bench.raw_data SELECT * FROM executable('cat {floor_raw}', "
                        f"TabSeparated, '{RAW_COLUMNS}', SETTINGS {LARGE_SETTINGS})")
        people["floor"] = (f"INSERT INTO bench.people SELECT * FROM executable("
                           f"'cat {floor_people}', TabSeparated, '{PEOPLE_COLUMNS}', "
                           f"SETTINGS {LARGE_SETTINGS})")
        raw_s = {m: Series(m) for m in raw}
        people_s = {m: Series(m) for m in people}
        runs = self.args.large_runs
        for r in range(runs):
            k = r % len(raw)
            order = list(raw)[k:] + list(raw)[:k]
            for m in order:
                self.db.execute("TRUNCATE TABLE bench.raw_data")
                raw_s[m].samples.append(self.timed(raw[m]))
                self.expect(f"large raw via {m}", self.count(
                    "SELECT count() FROM bench.raw_data"), 1)
                if r == 0:  # the payload arrived whole
                    self.expect(f"large raw via {m}: people in payload", self.count(
                        "SELECT length(JSONExtractArrayRaw(payload, 'people')) "
                        "FROM bench.raw_data"), n)
            k = r % len(people)
            porder = list(people)[k:] + list(people)[:k]
            for m in porder:
                self.db.execute("TRUNCATE TABLE bench.people")
                self.db.execute("TRUNCATE TABLE bench.raw_mv")
                self.db.execute("TRUNCATE TABLE bench.people_mv_target")
                people_s[m].samples.append(self.timed(people[m]))
                table = "bench.people_mv_target" if m == "astro_mv" else "bench.people"
                self.expect(f"large people via {m}", self.count(f"SELECT count() FROM {table}"), n)
        self.results["large"] = {
            "runs": runs,
            "raw": {m: s.summary() for m, s in raw_s.items()},
            "people": {m: s.summary() for m, s in people_s.items()},
            "raw_astro_over_url": raw_s["astro"].median / raw_s["url"].median,
            "raw_python_over_astro": raw_s["python"].median / raw_s["astro"].median,
            "people_astro_over_url": people_s["astro"].median / people_s["url"].median,
            "people_astro_mv_over_url": people_s["astro_mv"].median / people_s["url"].median,
        }
        self.large_series = (raw_s, people_s)

    # -- peak RSS --------------------------------------------------------------------------
    def rss(self, scripts: Path) -> None:
        """Peak resident memory of one run outside ClickHouse, stdout to /dev/null; the max over
        a few runs. Measured through a small process (GNU time when present, else a tiny Python
        helper), never spawned from this process: Linux counts the pre-exec memory of the
        spawning process in the child's ru_maxrss, and this one holds chDB and the bodies."""
        u = self.large_url
        commands = {
            "astro_raw": [str(scripts / "astro"), "fetch", "--url", u, *LARGE_FLAGS.split()],
            "astro_people": [str(scripts / "astro"), "fetch", "--url", u, "--output", "people",
                             *LARGE_FLAGS.split()],
            "python_raw": [str(scripts / "python_fetch.py"), "--url", u,
                           *LARGE_PY_FLAGS.split()],
        }
        floor = peak_rss(["/bin/true"])[0]
        out = {}
        for name, argv in commands.items():
            peaks, walls = [], []
            for _ in range(self.args.rss_runs):
                peak, wall = peak_rss(argv)
                peaks.append(peak)
                walls.append(wall)
            out[name] = {"peak_rss_bytes": max(peaks), "wall_s": statistics.median(walls)}
        payload = self.results["large_bytes"]
        limit = 2.5 * payload + 10 * 1000 * 1000
        for v in out.values():
            v["over_payload"] = v["peak_rss_bytes"] / payload
            v["limit_bytes"] = limit
        self.results["rss"] = out
        self.results["rss_method"] = RSS_METHOD
        self.results["rss_floor_bytes"] = floor

    # -- 3. the UDF ------------------------------------------------------------------------
    def udf(self) -> None:
        u = self.small_url

        def query(n: int) -> str:
            # Distinct URLs per row (the server ignores the query string): a constant argument
            # could be evaluated once for the whole block.
            return (f"SELECT sum(length(astro_fetch(concat('{u}?row=', toString(number))))) "
                    f"FROM numbers({n})")

        def run(n: int) -> float:
            elapsed = self.timed(query(n))
            return elapsed

        first = run(1)
        out = {"first_call_s": first, "per_n": {}}
        for n in self.args.udf_rows:
            series = Series(f"N={n}", [run(n) for _ in range(self.args.udf_repeats)])
            out["per_n"][str(n)] = {**series.summary(), "ms_per_row": series.median * 1000 / n}
        # A correctness check on the last answer: the JSON comes back whole.
        got = self.db.scalar(f"SELECT JSONExtractString(astro_fetch('{u}'), 'message')")
        if got != "success":
            raise BenchError(f"astro_fetch returned an unexpected answer: {got!r}")
        self.results["udf"] = out

    # -- goals -----------------------------------------------------------------------------
    def goals(self) -> None:
        s, l, r = self.results["small"], self.results["large"], self.results["rss"]
        goals = [
            ("small: astro <= 1.2x url()", f"{s['astro_over_url']:.2f}x", s["astro_over_url"] <= 1.2),
            ("small: python >= 15x astro", f"{s['python_over_astro']:.1f}x",
             s["python_over_astro"] >= 15),
            ("large raw: astro <= 1.1x url()", f"{l['raw_astro_over_url']:.2f}x",
             l["raw_astro_over_url"] <= 1.1),
            ("large people: astro <= url()+parse", f"{l['people_astro_over_url']:.2f}x",
             l["people_astro_over_url"] <= 1.0),
        ]
        for name in ("astro_raw", "astro_people"):
            v = r[name]
            goals.append((f"peak RSS {name.replace('_', ' ')} <= 2.5x payload + 10 MB",
                          f"{fmt_mb(v['peak_rss_bytes'])} MiB of {fmt_mb(v['limit_bytes'])}",
                          v["peak_rss_bytes"] <= v["limit_bytes"]))
        self.results["goals"] = [{"goal": g, "value": v, "pass": p} for g, v, p in goals]

    # -- the table -------------------------------------------------------------------------
    def table(self) -> str:
        res = self.results
        m = res["machine"]
        lines = []
        add = lines.append
        add(f"astro benchmark ({res['mode']}) on {m['engine']}, {m['nproc']} x {m['cpu']}, "
            f"{m['memory']}, load {m['loadavg_at_start']}")
        add(f"database in {Path(res['workdir']).parent}; Python executable: "
            f"{res['python_interpreter']}")
        add("")
        ins, sel, alone = self.small_series
        s = res["small"]
        add(f"1. Small ingest ({res['small_bytes']} B answer, {s['rounds']} interleaved rounds), "
            f"ms")
        add(f"   {'':<50}{'median':>9}{'p10':>9}{'p90':>9}")
        names = {"astro": "astro   executable('astro fetch')",
                 "url": "url()   url(..., JSONAsString)",
                 "python": "python  executable('python_fetch.py')",
                 "floor": "floor   executable('cat'), pre-made row"}
        for key, series in ins.items():
            add(f"   {'INSERT ' + names[key]:<50}{fmt_ms(series.median):>9}"
                f"{fmt_ms(percentile(series.samples, 10)):>9}"
                f"{fmt_ms(percentile(series.samples, 90)):>9}")
        for key, series in sel.items():
            add(f"   {'SELECT ' + names[key]:<50}{fmt_ms(series.median):>9}"
                f"{fmt_ms(percentile(series.samples, 10)):>9}"
                f"{fmt_ms(percentile(series.samples, 90)):>9}")
        for key, series in alone.items():
            add(f"   {'process alone ' + ('astro fetch' if key == 'astro' else 'python_fetch.py'):<50}"
                f"{fmt_ms(series.median):>9}{fmt_ms(percentile(series.samples, 10)):>9}"
                f"{fmt_ms(percentile(series.samples, 90)):>9}")
        add(f"   ratios INSERT: astro/url {s['astro_over_url']:.2f}x, "
            f"python/astro {s['python_over_astro']:.1f}x;  "
            f"SELECT only: astro/url {s['fetch_only_astro_over_url']:.2f}x, "
            f"python/astro {s['fetch_only_python_over_astro']:.1f}x;  process alone: "
            f"python/astro {s['process_alone_python_over_astro']:.1f}x")
        add("")
        raw_s, people_s = self.large_series
        l = res["large"]
        add(f"2. Large answer ({res['large_people']:,} people, {fmt_mb(res['large_bytes'])} MiB, "
            f"{l['runs']} runs), s")
        add(f"   {'':<50}{'median':>9}{'min':>9}{'max':>9}")
        rnames = {"astro": "raw     astro fetch", "url": "raw     url() JSONAsString",
                  "python": "raw     python_fetch.py",
                  "floor": "raw     floor: executable('cat') of astro's rows"}
        for key, series in raw_s.items():
            add(f"   {rnames[key]:<50}{fmt_s(series.median):>9}{fmt_s(min(series.samples)):>9}"
                f"{fmt_s(max(series.samples)):>9}")
        pnames = {"astro": "people  astro fetch --output people",
                  "url": "people  url() + JSONExtract ARRAY JOIN",
                  "astro_mv": "people  astro raw + MV parse (product path)",
                  "floor": "people  floor: executable('cat') of astro's rows"}
        for key, series in people_s.items():
            add(f"   {pnames[key]:<50}{fmt_s(series.median):>9}{fmt_s(min(series.samples)):>9}"
                f"{fmt_s(max(series.samples)):>9}")
        add(f"   ratios: raw astro/url {l['raw_astro_over_url']:.2f}x, raw python/astro "
            f"{l['raw_python_over_astro']:.1f}x, people astro/(url+parse) "
            f"{l['people_astro_over_url']:.2f}x, product path/(url+parse) "
            f"{l['people_astro_mv_over_url']:.2f}x")
        add("")
        add(f"   Peak RSS outside ClickHouse (payload {fmt_mb(res['large_bytes'])} MiB; "
            f"limit 2.5x payload + 10 MB = {fmt_mb(2.5 * res['large_bytes'] + 1e7)} MiB; "
            f"{res['rss_method']}, /bin/true reads {fmt_mb(res['rss_floor_bytes'])} MiB)")
        add(f"   {'':<50}{'MiB':>9}{'xpayload':>9}{'wall s':>9}")
        for key, label in (("astro_raw", "rss     astro fetch (raw)"),
                           ("astro_people", "rss     astro fetch --output people"),
                           ("python_raw", "rss     python_fetch.py (raw, reference)")):
            v = res["rss"][key]
            add(f"   {label:<50}{fmt_mb(v['peak_rss_bytes']):>9}{v['over_payload']:>9.2f}"
                f"{fmt_s(v['wall_s']):>9}")
        add("")
        u = res["udf"]
        add("3. UDF astro_fetch(url), executable_pool, distinct loopback URLs")
        add(f"   {'':<50}{'ms/query':>9}{'ms/row':>9}")
        add(f"   {'udf     first call N=1 (pool start)':<50}{fmt_ms(u['first_call_s']):>9}"
            f"{fmt_ms(u['first_call_s']):>9}")
        for n, v in u["per_n"].items():
            add(f"   {'udf     N=' + n:<50}{fmt_ms(v['median_s']):>9}{v['ms_per_row']:>9.3f}")
        add("")
        add("Goals")
        for g in res["goals"]:
            add(f"   {g['goal']:<50}{g['value']:>24}   {'PASS' if g['pass'] else 'MISS'}")
        return "\n".join(lines)


def work_parent(requested: str | None) -> str | None:
    """Where the run's temporary directory (database included) goes: --dir, else /dev/shm when
    it is a tmpfs with room (the INSERTs then measure the fetch methods, not the machine's disk,
    whose latency otherwise dominates a small INSERT and varies run to run), else the default
    temporary directory."""
    if requested:
        return requested
    shm = "/dev/shm"
    try:
        st = os.statvfs(shm)
        if st.f_bavail * st.f_frsize >= 2 * 1024 * MIB and os.access(shm, os.W_OK):
            return shm
    except OSError:
        pass
    return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: few rounds, 100,000 people (every row of the table)")
    parser.add_argument("--rounds", type=int, help="small-ingest rounds (default 40; quick 5)")
    parser.add_argument("--large-runs", type=int, help="large-answer runs (default 5; quick 1)")
    parser.add_argument("--people", type=int,
                        help="people in the large answer (default 1,000,000; quick 100,000)")
    parser.add_argument("--udf-rows", default="1,100,1000", help="N values for the UDF")
    parser.add_argument("--udf-repeats", type=int, help="runs per UDF N (default 5; quick 2)")
    parser.add_argument("--rss-runs", type=int, help="peak-RSS runs per command (default 3; quick 1)")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    parser.add_argument("--dir", help="parent of the temporary directory (default /dev/shm when "
                        "it has room, else the system temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    q = args.quick
    args.rounds = args.rounds or (5 if q else 40)
    args.large_runs = args.large_runs or (1 if q else 5)
    args.people = args.people or (100_000 if q else 1_000_000)
    args.udf_repeats = args.udf_repeats or (2 if q else 5)
    args.rss_runs = args.rss_runs or (1 if q else 3)
    args.udf_rows = [int(x) for x in args.udf_rows.split(",") if x.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="astro-bench-", dir=work_parent(args.dir)))
    started = time.perf_counter()
    try:
        bench = Bench(args, workdir)
        bench.run()
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    bench.results["elapsed_s"] = time.perf_counter() - started
    print(bench.table())
    print(f"\n(total {bench.results['elapsed_s']:.0f}s)")
    if args.json:
        Path(args.json).write_text(json.dumps(bench.results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
