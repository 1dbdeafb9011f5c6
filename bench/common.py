"""What every measurement shares: the run's context (one database session, timed queries, row
checks), the column lists and SETTINGS of the executable() calls, statistics and machine facts."""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, TypeVar

from astro_dev import embedded

MIB = 1024 * 1024

# Column lists as they appear inside a SQL string literal (quotes doubled).
RAW_COLUMNS = "source String, fetched_at DateTime64(3, ''UTC''), attempts UInt32, payload String"
PEOPLE_COLUMNS = "craft String, name String, fetched_at DateTime64(3, ''UTC'')"
RECORD_COLUMNS = "id UInt64, name String, value Float64, ok Bool"
EXEC_SETTINGS = "check_exit_code = 1, stderr_reaction = 'log_last'"
# A large answer needs a larger size cap and a longer budget than the defaults, and the matching
# command_read_timeout (milliseconds) inside executable().
LARGE_FLAGS = "--max-bytes 256MiB --timeout 60s --max-elapsed 60s"
LARGE_PY_FLAGS = f"--max-bytes {256 * MIB} --timeout 60 --max-elapsed 60"
LARGE_SETTINGS = f"{EXEC_SETTINGS}, command_read_timeout = 120000"

T = TypeVar("T")


class BenchError(Exception):
    """A measurement failed (a query error, a wrong row count): the run exits non-zero. A missed
    goal is not an error."""


# ------------------------------------------------------------------------------------------
# statistics and formatting


def percentile(values: Sequence[float], q: float) -> float:
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
    """The samples of one contender, in seconds."""

    label: str
    samples: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    def summary(self) -> dict[str, Any]:
        return {"label": self.label, "n": len(self.samples), "median_s": self.median,
                "p10_s": percentile(self.samples, 10), "p90_s": percentile(self.samples, 90),
                "min_s": min(self.samples), "max_s": max(self.samples)}


def rotated(items: Sequence[T], round_no: int) -> list[T]:
    """`items` starting at position round_no (mod len): contenders interleaved, the order turning
    each round, so no one always runs first (cold) or right after the heaviest."""
    k = round_no % len(items)
    return list(items[k:]) + list(items[:k])


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def fmt_s(seconds: float) -> str:
    return f"{seconds:.3f}"


def fmt_mb(nbytes: float) -> str:
    return f"{nbytes / MIB:.1f}"


# ------------------------------------------------------------------------------------------
# machine and work directory


def machine_info() -> dict[str, Any]:
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


def astro_formats(binary: Path) -> list[str]:
    """The --format values this build of `astro fetch` accepts, read from its --help: the
    RowBinary rows run only where the binary has it. clap writes them as
    `[possible values: A, B]`, or as a `- A: what it is` list when the values are documented."""
    proc = subprocess.run([str(binary), "fetch", "--help"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise BenchError(f"{binary} fetch --help exited {proc.returncode}: {proc.stderr[:300]}")
    start = proc.stdout.find("--format <")
    block = proc.stdout[start:] if start >= 0 else ""
    next_option = re.search(r"\n\s+(?:-\w, )?--[a-z]", block[1:])
    block = block[:next_option.start() + 1] if next_option else block
    listed = re.search(r"\[possible values: ([^\]]*)\]", block)
    values = ([value.strip() for value in " ".join(listed.group(1).split()).split(",")]
              if listed else re.findall(r"^\s+- (\w+):", block, re.M))
    if not values:
        raise BenchError(f"{binary} fetch --help names no --format values")
    return values


# ------------------------------------------------------------------------------------------
# the run's context


@dataclass
class Run:
    """One benchmark run: the arguments, the work directory, the user_scripts copy, the open
    database session and the loopback URLs. Measurements read from it and never touch args
    parsing or setup."""

    args: argparse.Namespace
    workdir: Path
    scripts: Path
    db: embedded.Database
    urls: dict[str, str]
    formats: list[str]

    @property
    def astro(self) -> str:
        return str(self.scripts / "astro")

    @property
    def rowbinary(self) -> bool:
        return "RowBinary" in self.formats

    def timed(self, sql: str) -> float:
        """Seconds one statement took; a query error is a failed measurement."""
        start = time.perf_counter()
        self._run(self.db.execute, sql)
        return time.perf_counter() - start

    def scalar(self, sql: str) -> str:
        return self._run(self.db.scalar, sql)

    @staticmethod
    def _run(call, sql: str):
        """`call(sql)`, a query error turned into a failed measurement."""
        try:
            return call(sql)
        except embedded.QueryError as exc:
            raise BenchError(f"query failed: {exc.message}\n  SQL: {sql[:300]}") from None

    def count(self, sql: str) -> int:
        return int(self.scalar(sql) or 0)

    def expect(self, what: str, got: int | str, want: int | str) -> None:
        if got != want:
            raise BenchError(f"{what}: expected {want}, got {got}")

    def premade(self, name: str, argv: list[str]) -> Path:
        """Run argv once outside ClickHouse, its stdout into workdir/name (for the floor rows)."""
        path = self.workdir / name
        with open(path, "wb") as out:
            proc = subprocess.run(argv, stdout=out, stderr=subprocess.PIPE)
        if proc.returncode != 0:
            raise BenchError(f"{argv[0]} exited {proc.returncode}: "
                             f"{proc.stderr.decode(errors='replace')[:300]}")
        return path
