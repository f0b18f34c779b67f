"""The report: the table of comparisons against their goals and the absolute times behind them.

Each section module gives its own rows (``goal_rows(runs)``) and time lines
(``time_lines(sections)``); this module lays them out.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any


def fmt_s(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s * 1e3:.3g} ms" if s < 1 else f"{s:.3g} s"


def get(run: dict[str, Any], path: list[Any]) -> Any:
    """A run's figure at ``path`` through its sections (a tuple of (key, value) pairs selects a row of a list)."""
    node: Any = run["sections"]
    for key in path:
        if isinstance(key, tuple):  # select from a list of rows
            node = next((r for r in node if all(r.get(k) == v for k, v in key)), None)
        else:
            node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            return None
    return node


def row(key: str, label: str, values: dict[str, Any], unit: str, goals: dict[str, tuple[float, str]]) -> dict[str, Any]:
    """One comparison: its figure per thread count, its goal (from ``goals``) and whether every figure meets it."""
    goal = goals.get(key)
    met = None
    present = [v for v in values.values() if v is not None]
    if goal is not None and present:
        target, kind = goal
        met = all(v >= target for v in present) if kind == "min" else all(v <= target for v in present)
    return {"key": key, "label": label, "values": values, "unit": unit, "goal": goal, "met": met}


def goal_rows(runs: dict[str, Any], sections: list[ModuleType]) -> list[dict[str, Any]]:
    """One row per comparison, section after section: figures per thread count, the goal, and whether it is met."""
    return [r for section in sections for r in section.goal_rows(runs)]


def format_table(rows: list[dict[str, Any]], threads: list[str]) -> str:
    head = ["comparison"] + [f"{t} BLAS thread{'s' if t != '1' else ''}" for t in threads] + ["goal", "met"]
    lines = []
    for row in rows:
        cells = [row["label"]]
        for t in threads:
            v = row["values"].get(t)
            cells.append("-" if v is None else (f"{v:.3g}x" if row["unit"] == "x" else f"{v:.3g} MB"))
        goal = row["goal"]
        if goal is None:
            cells.append("")
        else:
            unit = "x" if row["unit"] == "x" else " MB"
            cells.append(f"{'>=' if goal[1] == 'min' else '<='} {goal[0]:g}{unit}")
        cells.append("" if row["met"] is None else ("yes" if row["met"] else "NO"))
        lines.append(cells)
    widths = [max(len(c) for c in col) for col in zip(head, *lines)]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |"]
    out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    out += ["| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |" for cells in lines]
    return "\n".join(out)



def format_times(runs: dict[str, Any], sections: list[ModuleType]) -> str:
    """The absolute medians behind the ratios, per thread count."""
    lines = []
    for t, run in runs.items():
        s = run["sections"]
        lines.append(f"{t} BLAS thread(s):")
        for section in sections:
            lines += section.time_lines(s)
        for name, sec in s.items():
            lines.append(f"  [{name}: {sec['wall_s']:.1f} s, load average {sec['load_before_after']}]")
    return "\n".join(lines)
