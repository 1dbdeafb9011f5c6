"""The printed table and the goals of issue 14 ("Ahead of url() and of dlt").

Each measurement module turns its figures into a Section; this module lays the sections out and
judges the goals, all from the results dict (so the JSON that --json writes holds every figure
the table shows). A missed goal prints MISS and never changes the exit code."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .common import fmt_s

LABEL_WIDTH = 58
VALUE_WIDTH = 9


@dataclass
class Section:
    """One numbered block of the table: a title, the column heads, rows of a label and one value
    per head (already formatted), and free lines (ratios, notes) after the rows."""

    title: str
    heads: tuple[str, ...]
    rows: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def row(self, label: str, *values: str) -> None:
        if len(values) != len(self.heads):
            raise ValueError(f"{label}: {len(values)} values for {len(self.heads)} columns")
        self.rows.append((label, values))

    def timed_rows(self, names: dict[str, str], results: dict[str, Any]) -> None:
        """A row of median, min and max seconds for each key of `names` that `results` holds
        (a Series' summary), labelled as `names` says, in its order."""
        for key, label in names.items():
            if key in results:
                v = results[key]
                self.row(label, fmt_s(v["median_s"]), fmt_s(v["min_s"]), fmt_s(v["max_s"]))

    def lines(self) -> list[str]:
        def line(label: str, values: tuple[str, ...]) -> str:
            return f"   {label:<{LABEL_WIDTH}}" + "".join(f"{v:>{VALUE_WIDTH}}" for v in values)

        return [self.title, line("", self.heads),
                *(line(label, values) for label, values in self.rows),
                *(f"   {note}" for note in self.notes)]


@dataclass(frozen=True)
class Goal:
    """One row of the goals table: what is compared, the figure, the bound and its direction."""

    name: str
    figure: Callable[[dict[str, Any]], float | None]  # None: not measured in this run
    bound: float
    at_least: bool = False  # True: the figure must reach the bound (dlt/astro >= 10x)

    def judge(self, results: dict[str, Any]) -> dict[str, Any] | None:
        value = self.figure(results)
        if value is None:
            return None
        passed = value >= self.bound if self.at_least else value <= self.bound
        return {"goal": self.name, "value": value, "bound": self.bound, "pass": passed}


def _get(*keys: str) -> Callable[[dict[str, Any]], float | None]:
    """A figure at results[k1][k2]...; None where a part of the path was not measured."""
    def figure(results: dict[str, Any]) -> float | None:
        node: Any = results
        for key in keys:
            if not isinstance(node, dict) or node.get(key) is None:
                return None
            node = node[key]
        return float(node)
    return figure


def _each_row_memory(results: dict[str, Any]) -> float | None:
    """Peak RSS over bytes printed, judged in the full run only: over the quick run's 2,000
    parents the process's own baseline is most of the peak."""
    memory = results.get("latency", {}).get("memory") or {}
    if memory.get("parents", 0) < 100_000:
        return None
    return float(memory["over_printed"])


# Issue 14's goals (the large answer is 50 MB and the records 1,000,000 in the full run), ratios
# of medians measured in the same run. RowBinary variants are judged
# against the same bound as the astro row they vary; they appear only where the binary has it.
GOALS = [
    Goal("small ingest: astro / url() <= 1.05x", _get("small", "astro_over_url"), 1.05),
    Goal("large raw: astro / url() JSONAsString <= 0.9x",
         _get("large", "raw_astro_over_url"), 0.9),
    Goal("large raw: astro RowBinary / url() JSONAsString <= 0.9x",
         _get("large", "raw_astro_rowbinary_over_url"), 0.9),
    Goal("large people: astro / (url() + JSONExtract) <= 0.6x",
         _get("large", "people_astro_over_url"), 0.6),
    Goal("large people: astro RowBinary / (url() + JSONExtract) <= 0.6x",
         _get("large", "people_astro_rowbinary_over_url"), 0.6),
    Goal("records: astro / url() JSONEachRow <= 1.0x",
         _get("records", "astro_over_url"), 1.0),
    Goal("records: astro RowBinary / url() JSONEachRow <= 1.0x",
         _get("records", "astro_rowbinary_over_url"), 1.0),
    Goal("pages: dlt / astro >= 10x", _get("pages", "dlt_over_astro"), 10.0, at_least=True),
    Goal("peak RSS astro raw <= 1.2x payload", _get("rss", "astro_raw", "over_payload"), 1.2),
    Goal("peak RSS astro people <= 1.5x payload",
         _get("rss", "astro_people", "over_payload"), 1.5),
    Goal("peak RSS astro records <= 1.5x payload",
         _get("rss", "astro_records", "over_payload"), 1.5),
    # Issue 26's goals: a 50 ms answer, 25 pages and 250 parents.
    Goal("latency pages: astro c1 / astro c8 >= 5x",
         _get("latency", "ratios", "astro_1_over_astro_8"), 5.0, at_least=True),
    Goal("latency pages: dlt / astro c8 >= 5x",
         _get("latency", "ratios", "dlt_pages_over_astro_8"), 5.0, at_least=True),
    Goal("latency pages: url() glob / astro c8 >= 4x",
         _get("latency", "ratios", "url_glob_over_astro_8"), 4.0, at_least=True),
    Goal("parents: dlt resolve / astro --each-row >= 5x",
         _get("latency", "ratios", "dlt_parents_over_astro"), 5.0, at_least=True),
    Goal("--each-row 100k parents: peak RSS <= 1.5x printed", _each_row_memory, 1.5),
]


def judge(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The verdict of every goal measured in this run."""
    return [verdict for goal in GOALS if (verdict := goal.judge(results)) is not None]


def render(results: dict[str, Any], sections: list[Section], notices: list[str]) -> str:
    """The whole table: a header naming the machine, the sections, notices (rows this run left
    out and why), then the goals."""
    m = results["machine"]
    lines = [
        f"astro benchmark ({results['mode']}) on {m['engine']}, {m['nproc']} x {m['cpu']}, "
        f"{m['memory']}, load {m['loadavg_at_start']}",
        f"database in {Path(results['workdir']).parent}; Python executable: "
        f"{results['python_interpreter']}; astro --format: {', '.join(results['astro_formats'])}",
    ]
    for section in sections:
        lines.append("")
        lines.extend(section.lines())
    if notices:
        lines.append("")
        lines.extend(f"Note: {notice}" for notice in notices)
    lines += ["", "Goals (issues 14 and 26, ratios of medians)"]
    for g in results["goals"]:
        value = f"{g['value']:.2f}x"
        if value == f"{g['bound']:.2f}x":  # at the bound: show which side of it
            value = f"{g['value']:.3f}x"
        lines.append(f"   {g['goal']:<{LABEL_WIDTH + 6}}{value:>12}   "
                     f"{'PASS' if g['pass'] else 'MISS'}")
    return "\n".join(lines)
