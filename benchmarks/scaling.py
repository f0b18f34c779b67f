"""Section ``scaling``: time against n and d, log-log, drawn to ``benchmarks/results/``.

Single-threaded (the parent runs it at 1 BLAS thread only).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from _timing import RESULTS, ROOT, time_one

SINGLE_THREADED = True

# Sizes per mode (quick keeps the section but shrinks the arrays).
SIZES: dict[str, dict[str, Any]] = {
    "quick": {
        "scaling_nd": {
            "n": [250, 500, 1000, 2000],
            "d": [2_500, 5_000, 10_000, 20_000],
            "fixed_n": 500,
            "fixed_d": 5_000,
        },
        "scaling_entropy_n": [500, 1000, 2000],
        "scaling_k": [1, 2, 8],
        "scaling_repeats": 3,
    },
    "full": {
        "scaling_nd": {
            "n": [250, 500, 1000, 2000, 4000],
            "d": [6_250, 12_500, 25_000, 50_000, 100_000],
            "fixed_n": 1000,
            "fixed_d": 25_000,
        },
        "scaling_entropy_n": [1000, 2000, 4000, 8000, 16000],
        "scaling_k": [1, 2, 8],
        "scaling_repeats": 3,
    },
}

GOALS: dict[str, tuple[float, str]] = {}

def bench_scaling(size: dict[str, Any], threads: int) -> dict[str, Any]:
    import numpy as np

    import npevograd as ng

    rng = np.random.default_rng(3)
    repeats = size["scaling_repeats"]
    nd = size["scaling_nd"]
    mean = ng.Mean()
    grad_rows = []
    for vary, values in (("n", nd["n"]), ("d", nd["d"])):
        for v in values:
            n, d = (v, nd["fixed_d"]) if vary == "n" else (nd["fixed_n"], v)
            p = ng.Normal(np.zeros(d, dtype=np.float32), 0.5)
            x = p.sample(n, rng)
            f = rng.standard_normal(n).astype(np.float32)
            seconds = time_one(lambda f=f, x=x, p=p: mean(f, x, p), repeats)
            grad_rows.append({"vary": vary, "n": n, "d": d, "s": seconds})
    ent_rows = []
    for k in size["scaling_k"]:
        for n in size["scaling_entropy_n"]:
            b = rng.standard_normal((n, k))
            blocked = ng.Entropy(1.0, block_size=_default_block())
            seconds = time_one(lambda b=b, n=n, blocked=blocked: blocked.weights(b, n), repeats)
            ent_rows.append({"k": k, "n": n, "s": seconds})
    return {"gradient": grad_rows, "entropy": ent_rows, "entropy_note": "blocked path forced (block_size=BLOCK)"}

def _default_block() -> int:
    from npevograd.estimators import _kde

    return _kde.BLOCK

def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log y against log x."""
    lx = [math.log(v) for v in xs]
    ly = [math.log(v) for v in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)

def plot_scaling(scaling: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    def human(v: float, _: object = None) -> str:
        for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if v >= scale:
                return f"{v / scale:g}{suffix}"
        return f"{v:g}"

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6))
    for vary, marker in (("n", "o"), ("d", "s")):
        rows = [r for r in scaling["gradient"] if r["vary"] == vary]
        xs = [r["n"] * r["d"] for r in rows]
        ys = [r["s"] * 1e3 for r in rows]
        fixed = f"d = {rows[0]['d']:,}" if vary == "n" else f"n = {rows[0]['n']:,}"
        left.loglog(xs, ys, marker + "-", label=f"vary {vary} ({fixed}): slope {slope(xs, ys):.2f}")
    xs = sorted({r["n"] * r["d"] for r in scaling["gradient"]})
    ref = [r for r in scaling["gradient"] if r["n"] * r["d"] == xs[-1]][0]["s"] * 1e3
    left.loglog(xs, [ref * v / xs[-1] for v in xs], "k:", label="slope 1: O(n d)")
    left.set_xlabel("n · d  (entries of the sample matrix)")
    left.set_ylabel("time per gradient (ms)")
    left.set_title("Mean gradient, float32, fixed sigma")
    left.legend(fontsize=8)
    left.grid(True, which="both", alpha=0.3)

    for k in sorted({r["k"] for r in scaling["entropy"]}):
        rows = [r for r in scaling["entropy"] if r["k"] == k]
        xs = [r["n"] for r in rows]
        ys = [r["s"] for r in rows]
        right.loglog(xs, ys, "o-", label=f"k = {k}: slope {slope(xs, ys):.2f}")
    rows = [r for r in scaling["entropy"] if r["k"] == min(r2["k"] for r2 in scaling["entropy"])]
    xs = [r["n"] for r in rows]
    right.loglog(xs, [rows[-1]["s"] * (v / xs[-1]) ** 2 for v in xs], "k:", label="slope 2: O(n² k)")
    right.set_xlabel("n  (population)")
    right.set_ylabel("time per estimate (s)")
    right.set_title("Entropy weights, float64, kernel recomputed in tiles")
    right.legend(fontsize=8)
    right.grid(True, which="both", alpha=0.3)
    for axis in (left.xaxis, left.yaxis, right.xaxis, right.yaxis):
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(human))
        axis.set_minor_formatter(NullFormatter())
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)

run = bench_scaling

def goal_rows(runs: dict[str, Any]) -> list[dict[str, Any]]:
    """No goal rows: the section's figures are the picture and its slopes."""
    return []


def time_lines(s: dict[str, Any]) -> list[str]:
    return []


def picture(section: dict[str, Any], mode: str, cpu: str) -> str:
    """Draw the log-log picture of a run's scaling section; its path, relative to the repository."""
    png = RESULTS / ("scaling.png" if mode == "full" else "scaling-quick.png")
    plot_scaling(section, png, f"npevograd scaling ({mode} run, 1 BLAS thread, {cpu})")
    return str(png.relative_to(ROOT))
