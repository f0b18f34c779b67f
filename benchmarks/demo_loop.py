"""Section ``demo``: one generation of EvoGrad's interference demos at population 500, d = 1.

Sample, evaluate 5 sin(0.2x) sin(20x), estimate, plain step: npevograd against EvoGrad,
for the z-scored mean, the variance and the entropy objectives.
"""

from __future__ import annotations

from typing import Any

from _timing import import_evograd, import_torch, time_one, time_pair
from report import fmt_s, get, row

# Sizes per mode (quick keeps the section but shrinks the arrays).
SIZES: dict[str, dict[str, Any]] = {
    "quick": {
        "demo_repeats": 7,
        "demo_inner": {"npevograd": 20, "evograd": 2},
    },
    "full": {
        "demo_repeats": 15,
        "demo_inner": {"npevograd": 50, "evograd": 3},
    },
}

# Goals of issue 6, as (comparison key, goal, kind): "min" = ratio must reach goal,
# "max" = ratio (or MB) must stay at or under it.
GOALS = {
    "demo/mean": (100.0, 'min'),
    "demo/variance": (100.0, 'min'),
    "demo/entropy": (10.0, 'min'),
}

def bench_demo(size: dict[str, Any], threads: int) -> dict[str, Any]:
    import numpy as np

    import npevograd as ng

    out: dict[str, Any] = {}
    torch = import_torch(threads)
    evo = import_evograd() if torch is not None else None
    npop, sigma = 500, 0.5
    rates = {"mean": 0.03, "variance": 0.03, "entropy": 0.10}  # EvoGrad's demo settings

    def fun_np(x: Any) -> Any:
        return 5 * np.sin(0.2 * x) * np.sin(20 * x)

    estimators = {"mean": ng.Mean(shaping=ng.zscore), "variance": ng.Variance(), "entropy": ng.Entropy(1.0)}

    for name, estimator in estimators.items():
        rng = np.random.default_rng(0)
        p = ng.Normal(np.array([1.0]), sigma)
        lr = rates[name]

        def ours(p=p, rng=rng, estimator=estimator, lr=lr) -> None:
            x = p.sample(npop, rng)
            est = estimator(fun_np(x), x, p)
            p.params["mu"] += lr * est.grad["mu"]

        if evo is None:
            t = time_one(ours, size["demo_repeats"])
            out[name] = {"npevograd_s": t, "note": "EvoGrad or torch not importable: no comparison"}
            continue
        theirs = _evograd_generation(name, evo, torch, npop, sigma, lr)
        r = time_pair(
            theirs, ours, size["demo_repeats"], (size["demo_inner"]["evograd"], size["demo_inner"]["npevograd"])
        )
        out[name] = {"evograd_s": r["first_s"], "npevograd_s": r["second_s"], "speedup": 1 / r["ratio"]}
    return out

def _evograd_generation(name: str, evo: tuple[Any, Any], torch: Any, npop: int, sigma: float, lr: float) -> Any:
    """One generation of EvoGrad's demo ``name``, written as its demos write it."""
    import numpy as np
    import scipy.spatial

    expectation, Normal = evo
    mu = torch.tensor([1.0], requires_grad=True)
    p = Normal(mu, sigma, random_state=np.random.RandomState(0))

    def fun(x: Any) -> Any:
        return 5 * torch.sin(0.2 * x) * torch.sin(20 * x)

    def generation() -> None:
        sample = p.sample(npop)
        values = fun(sample)
        values = (values - values.mean()) / values.std()
        if name == "mean":
            objective = expectation(values, sample, p=p)
        elif name == "variance":
            objective = expectation(values**2, sample, p=p)
        else:  # max_ent_interference.py (its scipy.exp is np.exp, removed from SciPy since)
            dists = scipy.spatial.distance.squareform(scipy.spatial.distance.pdist(values, "sqeuclidean"))
            kernel = torch.tensor(np.exp(-dists / 1.0**2), dtype=torch.float32)
            p_x = expectation(kernel, sample, p=p)
            objective = expectation(-torch.log(p_x), sample, p=p)
        objective.backward()
        with torch.no_grad():
            mu.add_(lr * mu.grad)
            mu.grad.zero_()

    return generation

run = bench_demo

def goal_rows(runs: dict[str, Any]) -> list[dict[str, Any]]:
    """The table's rows of this section: one per comparison, its figure per thread count."""
    spec: list[tuple[str, str, list[Any], str]] = [
        ("demo/mean", "demo gen. mean (z-scored): EvoGrad / npevograd", ["demo", "mean", "speedup"], "x"),
        ("demo/variance", "demo gen. variance: EvoGrad / npevograd", ["demo", "variance", "speedup"], "x"),
        ("demo/entropy", "demo gen. entropy: EvoGrad / npevograd", ["demo", "entropy", "speedup"], "x"),
    ]
    return [
        row(key, label, {t: get(run, path) for t, run in runs.items()}, unit, GOALS) for key, label, path, unit in spec
    ]


def time_lines(s: dict[str, Any]) -> list[str]:
    """The absolute medians behind the ratios, for one thread count's sections ``s``."""
    lines = []
    for name, r in s.get("demo", {}).items():
        if isinstance(r, dict) and "npevograd_s" in r:
            lines.append(
                f"  demo {name:9s} npevograd {fmt_s(r['npevograd_s'])}, EvoGrad {fmt_s(r.get('evograd_s'))}"
            )
    return lines
