"""Peak resident memory of the programs outside ClickHouse, against the size of the answer they
read: one run at a time, stdout to /dev/null, the max over a few runs.

Measured through a small process (GNU time when present, else a tiny Python helper), never
spawned from the bench process: Linux counts the pre-exec memory of the spawning process in the
child's ru_maxrss, and the bench process holds chDB and the answers."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from typing import Any

from .common import LARGE_FLAGS, LARGE_PY_FLAGS, BenchError, Run, fmt_mb, fmt_s
from .records import fetch_command as records_command
from .report import Section

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
METHOD = ("GNU time (/usr/bin/time -f %M)" if os.access(GNU_TIME, os.X_OK)
          else "python -S helper, os.wait4 rusage")
LABELS = {"astro_raw": "rss     astro fetch (raw)",
          "astro_raw_rowbinary": "rss     astro fetch --format RowBinary (raw)",
          "astro_people": "rss     astro fetch --output people",
          "astro_people_rowbinary": "rss     astro fetch --output people --format RowBinary",
          "astro_records": "rss     astro fetch --output records (JSONEachRow)",
          "python_raw": "rss     python_fetch.py (raw, reference)"}


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


def run(ctx: Run, payloads: dict[str, int]) -> dict[str, Any]:
    """payloads: the answer sizes in bytes, by URL name ("large", "records")."""
    u = ctx.urls["large"]
    astro_raw = [ctx.astro, "fetch", "--url", u, *LARGE_FLAGS.split()]
    commands: dict[str, tuple[list[str], str]] = {
        "astro_raw": (astro_raw, "large"),
        "astro_people": ([*astro_raw, "--output", "people"], "large"),
        "astro_records": ([ctx.astro, *records_command(ctx.urls["records"]).split()[1:]],
                          "records"),
        "python_raw": ([str(ctx.scripts / "python_fetch.py"), "--url", u,
                        *LARGE_PY_FLAGS.split()], "large"),
    }
    if ctx.rowbinary:
        commands["astro_raw_rowbinary"] = ([*astro_raw, "--format", "RowBinary"], "large")
        commands["astro_people_rowbinary"] = ([*astro_raw, "--output", "people",
                                               "--format", "RowBinary"], "large")
    out: dict[str, Any] = {"method": METHOD, "floor_bytes": peak_rss(["/bin/true"])[0]}
    for name, (argv, payload) in commands.items():
        peaks, walls = [], []
        for _ in range(ctx.args.rss_runs):
            peak, wall = peak_rss(argv)
            peaks.append(peak)
            walls.append(wall)
        out[name] = {"peak_rss_bytes": max(peaks), "wall_s": statistics.median(walls),
                     "payload_bytes": payloads[payload],
                     "over_payload": max(peaks) / payloads[payload]}
    return out


def section(r: dict[str, Any], payloads: dict[str, int]) -> Section:
    out = Section(f"6. Peak RSS outside ClickHouse (payload: people "
                  f"{fmt_mb(payloads['large'])} MiB, records {fmt_mb(payloads['records'])} MiB; "
                  f"{r['method']}, /bin/true reads {fmt_mb(r['floor_bytes'])} MiB)",
                  ("MiB", "xpayload", "wall s"))
    for key, label in LABELS.items():
        if key in r:
            v = r[key]
            out.row(label, fmt_mb(v["peak_rss_bytes"]), f"{v['over_payload']:.2f}",
                    fmt_s(v["wall_s"]))
    return out
