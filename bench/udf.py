"""5. The UDF astro_fetch(url) (executable_pool) over N distinct loopback URLs: ms per row.
Distinct URLs per row (the server ignores the query string), since a constant argument could be
evaluated once for the whole block."""

from __future__ import annotations

from typing import Any

from .common import BenchError, Run, Series, fmt_ms
from .report import Section


def run(ctx: Run) -> dict[str, Any]:
    u = ctx.urls["small"]

    def query(n: int) -> str:
        return (f"SELECT sum(length(astro_fetch(concat('{u}?row=', toString(number))))) "
                f"FROM numbers({n})")

    first = ctx.timed(query(1))  # the first call of the session starts the pool's process
    out: dict[str, Any] = {"first_call_s": first, "per_n": {}}
    for n in ctx.args.udf_rows:
        series = Series(f"N={n}", [ctx.timed(query(n)) for _ in range(ctx.args.udf_repeats)])
        out["per_n"][str(n)] = {**series.summary(), "ms_per_row": series.median * 1000 / n}
    # A correctness check on the last answer: the JSON comes back whole.
    got = ctx.scalar(f"SELECT JSONExtractString(astro_fetch('{u}'), 'message')")
    if got != "success":
        raise BenchError(f"astro_fetch returned an unexpected answer: {got!r}")
    return out


def section(u: dict[str, Any]) -> Section:
    out = Section("5. UDF astro_fetch(url), executable_pool, distinct loopback URLs",
                  ("ms/query", "ms/row"))
    out.row("udf     first call N=1 (pool start)", fmt_ms(u["first_call_s"]),
            fmt_ms(u["first_call_s"]))
    for n, v in u["per_n"].items():
        out.row(f"udf     N={n}", fmt_ms(v["median_s"]), f"{v['ms_per_row']:.3f}")
    return out
