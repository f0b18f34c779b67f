"""COCO/BBOB: npevograd's strategies beside pycma on the 24 noiseless BBOB functions (issue 22).

    python benchmarks/bbob.py --quick                      # a few functions, one instance, small budget
    python benchmarks/bbob.py --dims 2 3 5 --instances 1 2 3 --budget-per-dim 1000 --tag d2-5
    python benchmarks/bbob.py --report benchmarks/results/bbob_d2-5.json   # tables and figure only

The functions and instances are COCO's BBOB suite as ``ioh`` builds it (``ioh.get_problem(fid,
instance, d, ProblemClass.BBOB)``, which also gives each instance's optimum value f_opt).

Protocol (as COCO's example experiment).  Every algorithm starts each of its runs from a point
drawn uniformly in [-4, 4]^d with step size sigma = 2, minimises f and restarts by its own rule
(IPOP: popsize doubled at each restart; BIPOP: Hansen 2009's interleaved large and small
populations) until the budget of ``budget_per_dim * d`` evaluations is used up or the final target
is reached.  Evaluations are counted one by one across restarts; a population is cut where the
budget ends.  The starting points come from a generator seeded by (seed, function, instance, d),
the same for every algorithm.

Targets.  COCO's 51 targets Delta f_k = 10^(2 - k/5), k = 0..50 (10^2 down to 10^-8).  A
target is reached at evaluation r_k: the first evaluation whose precision f(x) - f_opt <= Delta f_k
(so r_0 <= r_1 <= ... <= r_50, missing ones are infinite).  A problem (function, instance, d) is
*solved* when r_50 is finite (f - f_opt <= 1e-8 within the budget).

ECDF area.  For a set S of (problem, target) pairs (one dimension, one function group or all 24
functions) the runtime ECDF is

    F(t) = #{(p, k) in S : log10(r_pk / d) <= t} / |S|,        t in [0, T],  T = log10(budget / d)

(COCO's "bootstrapped runtime distribution" with one run per problem), and its area, normalised
to [0, 1], is

    A = (1/T) integral_0^T F(t) dt = (1/|S|) sum_(p,k) max(0, T - max(0, log10(r_pk / d))) / T

(an unreached target adds 0; one reached at r_pk <= d adds 1; one reached at the budget adds 0).
A = 1 only if every target is hit within d evaluations.  The spread over instances: A (and the
solved fraction) computed over the pairs of one instance at a time, reported as [min, max].

Algorithms (``--algorithms``, names as in the results):

=====================  =========================================================================
npevograd CMAES-IPOP   ``npevograd.algorithms.CMAES``, IPOP restarts (popsize x2 per restart)
npevograd CMAES-BIPOP  ``npevograd.algorithms.CMAES``, BIPOP restarts
npevograd SepCMAES     ``npevograd.algorithms.SepCMAES``, IPOP restarts
npevograd SNES         ``npevograd.algorithms.SNES``, IPOP restarts
npevograd XNES         ``npevograd.algorithms.XNES``, IPOP restarts
pycma IPOP             ``cma.fmin2(f, x0, 2, restarts=9, incpopsize=2)`` (pycma's defaults)
pycma BIPOP            ``cma.fmin2(f, x0, 2, restarts=9, bipop=True)``
evosax CMA_ES          evosax's ``CMA_ES`` (jit), IPOP restarts; skipped when evosax/jax is absent
=====================  =========================================================================

An algorithm whose class is not in this npevograd build (e.g. ``CMAES`` before it is merged) is
skipped with a note.  Every run also records how each restart ended (its stop criteria), the
number of restarts and the best precision; the report gives the stop reasons per algorithm.

Results accumulate in one JSON file per ``--tag`` (``benchmarks/results/bbob_<tag>.json``): a run
already in the file (same algorithm, d, function, instance, budget and seed) is not repeated, so an
interrupted run resumes.  Problems run in a ``multiprocessing`` pool (``--workers``, default 2),
each worker with one BLAS thread.  The figure (``bbob_<tag>.png``): one panel per dimension, one
line per algorithm, the ECDF F(t) over all functions, as COCO draws it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Callable

if __name__ == "__main__":  # before NumPy loads: one BLAS thread per worker (imported, threadpoolctl does it)
    for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

TARGETS = 10.0 ** (2 - np.arange(51) / 5)  # COCO's 51 targets, 1e2 .. 1e-8
GROUPS = {
    "separable": range(1, 6),
    "moderate": range(6, 10),
    "ill-conditioned": range(10, 15),
    "multimodal": range(15, 20),
    "weakly structured": range(20, 25),
}
SIGMA0 = 2.0
BOX = 4.0  # starting points uniform in [-BOX, BOX]^d
QUICK = {"dims": [2, 5], "functions": [1, 8, 10, 15, 21], "instances": [1], "budget_per_dim": 100}
MAX_RESTARTS = 9  # pycma's restarts=9; npevograd's restart loops also stop after 1 + 9 runs
SEED = 1


class Done(Exception):
    """Raised by ``Recorder`` when the budget is used up or the final target reached: the run ends there."""


class Recorder:
    """The objective seen by an algorithm: counts evaluations and records when each target is reached.

    ``recorder(x)`` takes one point (d,) or a population (n, d) and returns f (a float or (n,)).
    ``hits[k]`` is the evaluation (1-based, counted over all restarts) at which f - f_opt first
    fell to TARGETS[k] or below, -1 while not reached.  Evaluations past the budget are not made:
    a population that crosses it is evaluated up to the budget, then ``Done`` is raised; ``Done`` is
    also raised as soon as the final target is reached.  ``trace=True`` keeps every precision.
    """

    def __init__(self, problem: Any, budget: int, trace: bool = False) -> None:
        self.problem = problem
        self.f_opt = float(problem.optimum.y)
        self.budget = int(budget)
        self.evaluations = 0
        self.hits = np.full(TARGETS.size, -1, dtype=np.int64)
        self.reached = 0  # targets reached so far: hits[:reached] are set
        self.best_delta = math.inf
        self.trace: list[float] | None = [] if trace else None

    def __call__(self, x: Any) -> Any:
        arr = np.asarray(x, dtype=float)
        rows = arr.reshape(1, -1) if arr.ndim == 1 else arr
        if self.evaluations >= self.budget or self.reached == TARGETS.size:
            raise Done
        room = self.budget - self.evaluations
        f = np.asarray(self.problem(rows[:room]), dtype=float).reshape(-1)
        self._record(f - self.f_opt)
        if f.size < rows.shape[0] or self.reached == TARGETS.size:
            raise Done
        return float(f[0]) if arr.ndim == 1 else f

    def _record(self, delta: np.ndarray) -> None:
        if self.trace is not None:
            self.trace.extend(delta.tolist())
        running = np.minimum.accumulate(delta)
        self.best_delta = min(self.best_delta, float(running[-1]))
        # targets newly reached in this batch: the first row whose running minimum is at or below each
        while self.reached < TARGETS.size and running[-1] <= TARGETS[self.reached]:
            first = int(np.argmax(running <= TARGETS[self.reached]))
            self.hits[self.reached] = self.evaluations + first + 1
            self.reached += 1
        self.evaluations += delta.size


def hits_from_trace(trace: Iterable[float]) -> np.ndarray:
    """The hits a record of precisions gives, computed target by target (the slow, obvious way)."""
    hits = np.full(TARGETS.size, -1, dtype=np.int64)
    deltas = list(trace)
    for k, target in enumerate(TARGETS):
        for i, delta in enumerate(deltas):
            if delta <= target:
                hits[k] = i + 1
                break
    return hits


# ---------------------------------------------------------------- algorithms


def uniform_start(rng: np.random.Generator, d: int) -> Callable[[], np.ndarray]:
    return lambda: rng.uniform(-BOX, BOX, d)


def npevograd_class(name: str) -> Any:
    import npevograd.algorithms as algorithms

    return getattr(algorithms, name, None)


def npevograd_runner(cls_name: str, regime: str) -> Callable[..., list[list[str]]]:
    """``npevograd.algorithms.Restarts`` (IPOP or BIPOP) around one strategy class, until ``Done``.

    Each run starts uniformly in [-4, 4]^d (``box``) with sigma = SIGMA0 (BIPOP's small runs: times
    their ``sigma_scale``), minimising; at most 1 + MAX_RESTARTS runs, as pycma's ``restarts=9``.
    Returns each run's stop criteria; the run cut by the budget or the target says so.
    """

    def run(recorder: Recorder, rng: np.random.Generator, seed: int) -> list[list[str]]:
        from npevograd.algorithms import Restarts

        cls = npevograd_class(cls_name)

        def factory(x0: np.ndarray, popsize: int | None, es_rng: Any, sigma_scale: float = 1.0) -> Any:
            return cls(x0, SIGMA0 * sigma_scale, popsize=popsize, rng=es_rng, minimize=True)

        d = recorder.problem.meta_data.n_variables
        runs = Restarts(factory, uniform_start(rng, d)(), regime, box=(-BOX, BOX), max_restarts=MAX_RESTARTS, rng=rng)
        ended = ""
        try:
            while not runs.stop():
                runs.tell(recorder(runs.ask()))
        except Done:
            ended = "target" if recorder.reached == TARGETS.size else "budget"
        stops = [sorted(r.stop) for r in runs.result.runs]
        if ended:
            stops[-1] = [ended]
        return stops

    return run


def pycma_runner(bipop: bool) -> Callable[..., list[list[str]]]:
    def run(recorder: Recorder, rng: np.random.Generator, seed: int) -> list[list[str]]:
        import cma

        runs: list[Any] = []

        def remember(es: Any) -> None:  # fmin2's callback: called each iteration with the current run's es
            if not runs or runs[-1] is not es:
                runs.append(es)

        d = recorder.problem.meta_data.n_variables
        options = {"verbose": -9, "seed": seed, "verb_log": 0, "verb_disp": 0, "maxfevals": recorder.budget}
        kwargs = {"restarts": MAX_RESTARTS, "bipop": True} if bipop else {"restarts": MAX_RESTARTS, "incpopsize": 2}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                cma.fmin2(recorder, uniform_start(rng, d), SIGMA0, options, callback=remember, **kwargs)
        except Done:
            pass
        stops = [sorted(es.stop(check=False)) for es in runs]
        if stops:
            stops[-1] = ["target" if recorder.reached == TARGETS.size else "budget"] if not stops[-1] else stops[-1]
        return stops

    return run


def evosax_runner(recorder: Recorder, rng: np.random.Generator, seed: int) -> list[list[str]]:
    """evosax's CMA_ES with IPOP restarts; its own (jit) ask/tell, popsize doubled per restart.

    evosax has no stop criteria: a run ends when its generation best has not improved by 1e-12 for
    10 + ceil(30 d / popsize) generations (the length of pycma's tolfun history), then it restarts.
    """
    import jax
    from evosax.algorithms import CMA_ES

    d = recorder.problem.meta_data.n_variables
    stops: list[list[str]] = []
    key = jax.random.key(seed)
    for run in range(1 + MAX_RESTARTS):
        popsize = (4 + int(3 * math.log(d))) * 2**run
        es = CMA_ES(population_size=popsize, solution=np.zeros(d))
        params = es.default_params.replace(std_init=SIGMA0)
        key, k_init = jax.random.split(key)
        state = es.init(k_init, np.asarray(rng.uniform(-BOX, BOX, d)), params)
        ask, tell = jax.jit(es.ask), jax.jit(es.tell)
        best, stale = math.inf, 0
        try:
            while stale < 10 + math.ceil(30 * d / popsize):
                key, k_ask, k_tell = jax.random.split(key, 3)
                x, state = ask(k_ask, state, params)
                f = recorder(np.asarray(x))
                state, _ = tell(k_tell, x, np.asarray(f), state, params)
                stale = 0 if f.min() < best - 1e-12 else stale + 1
                best = min(best, float(f.min()))
            stops.append(["no improvement"])
        except Done:
            stops.append(["target" if recorder.reached == TARGETS.size else "budget"])
            break
    return stops


def evosax_available() -> bool:
    """Whether evosax and jax are installed, found without importing them (a parent that imported jax cannot fork)."""
    return _importable("evosax") and _importable("jax")


ALGORITHMS: dict[str, tuple[Callable[[], bool], Callable[..., list[list[str]]]]] = {
    "npevograd CMAES-IPOP": (lambda: npevograd_class("CMAES") is not None, npevograd_runner("CMAES", "ipop")),
    "npevograd CMAES-BIPOP": (lambda: npevograd_class("CMAES") is not None, npevograd_runner("CMAES", "bipop")),
    "npevograd SepCMAES": (lambda: npevograd_class("SepCMAES") is not None, npevograd_runner("SepCMAES", "ipop")),
    "npevograd SNES": (lambda: True, npevograd_runner("SNES", "ipop")),
    "npevograd XNES": (lambda: True, npevograd_runner("XNES", "ipop")),
    "pycma IPOP": (lambda: _importable("cma"), pycma_runner(bipop=False)),
    "pycma BIPOP": (lambda: _importable("cma"), pycma_runner(bipop=True)),
    "evosax CMA_ES": (evosax_available, evosax_runner),
}


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


# ---------------------------------------------------------------- one problem


def get_problem(fid: int, instance: int, d: int) -> Any:
    import ioh

    return ioh.get_problem(fid, instance=instance, dimension=d, problem_class=ioh.ProblemClass.BBOB)


def problem_seed(seed: int, fid: int, instance: int, d: int) -> np.random.SeedSequence:
    return np.random.SeedSequence([seed, fid, instance, d])


def run_one(task: tuple[str, int, int, int, int, int]) -> tuple[str, dict[str, Any]]:
    """One algorithm on one problem: ``(algorithm, d, fid, instance, budget_per_dim, seed)`` -> (key, record)."""
    algorithm, d, fid, instance, budget_per_dim, seed = task
    sequence = problem_seed(seed, fid, instance, d)
    rng = np.random.default_rng(sequence)
    peer_seed = int(sequence.generate_state(1)[0] % (2**31 - 2)) + 1
    recorder = Recorder(get_problem(fid, instance, d), budget_per_dim * d)
    start = time.perf_counter()
    try:
        stops = ALGORITHMS[algorithm][1](recorder, rng, peer_seed)
    except Done:  # a runner that lets Done through ended on the budget or the target
        stops = [["target" if recorder.reached == TARGETS.size else "budget"]]
    record = {
        "hits": recorder.hits.tolist(),
        "evaluations": recorder.evaluations,
        "best_delta": recorder.best_delta,
        "runs": len(stops),
        "stops": stops,
        "seconds": round(time.perf_counter() - start, 3),
    }
    return task_key(algorithm, d, fid, instance), record


def task_key(algorithm: str, d: int, fid: int, instance: int) -> str:
    return f"{algorithm}|{d}|{fid}|{instance}"


def parse_key(key: str) -> tuple[str, int, int, int]:
    algorithm, d, fid, instance = key.split("|")
    return algorithm, int(d), int(fid), int(instance)


# ---------------------------------------------------------------- statistics


def ecdf_area(hits: np.ndarray, d: int, budget_per_dim: int) -> float:
    """The normalised ECDF area over (problem, target) pairs: hits has shape (problems, 51), -1 = missed."""
    hits = np.asarray(hits, dtype=float)
    span = math.log10(budget_per_dim)
    with np.errstate(divide="ignore"):
        t = np.where(hits > 0, np.log10(np.where(hits > 0, hits, 1) / d), np.inf)
    contribution = np.clip(span - np.maximum(t, 0.0), 0.0, span) / span
    return float(contribution.mean())


def ecdf_curve(hits: np.ndarray, d: int, grid: np.ndarray) -> np.ndarray:
    """F(t) on ``grid``: the fraction of (problem, target) pairs with log10(r / d) <= t."""
    hits = np.asarray(hits, dtype=float).ravel()
    t = np.log10(hits[hits > 0] / d)
    return np.searchsorted(np.sort(t), grid, side="right") / hits.size


def summarise(records: dict[str, dict[str, Any]], budget_per_dim: int) -> dict[str, Any]:
    """Per algorithm, dimension and group (and 'all'): problems, solved fraction, ECDF area, instance spread."""
    table: dict[str, Any] = {}
    by: dict[tuple[str, int], dict[tuple[int, int], np.ndarray]] = {}
    for key, record in records.items():
        algorithm, d, fid, instance = parse_key(key)
        by.setdefault((algorithm, d), {})[(fid, instance)] = np.asarray(record["hits"])
    for (algorithm, d), problems in sorted(by.items()):
        for group, fids in [("all", range(1, 25)), *GROUPS.items()]:
            chosen = {p: h for p, h in problems.items() if p[0] in fids}
            if not chosen:
                continue
            instances = sorted({p[1] for p in chosen})
            hits = np.array(list(chosen.values()))
            per_instance = [np.array([h for p, h in chosen.items() if p[1] == i]) for i in instances]
            solved = [float((h[:, -1] > 0).mean()) for h in per_instance]
            areas = [ecdf_area(h, d, budget_per_dim) for h in per_instance]
            table.setdefault(algorithm, {}).setdefault(str(d), {})[group] = {
                "problems": len(chosen),
                "solved": float((hits[:, -1] > 0).mean()),
                "solved_range": [min(solved), max(solved)],
                "area": ecdf_area(hits, d, budget_per_dim),
                "area_range": [min(areas), max(areas)],
            }
    return table


def stop_reasons(records: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per algorithm: how many restart runs ended on each criterion, and the mean number of runs per problem."""
    out: dict[str, dict[str, Any]] = {}
    for key, record in records.items():
        algorithm = parse_key(key)[0]
        entry = out.setdefault(algorithm, {"problems": 0, "runs": 0, "reasons": {}})
        entry["problems"] += 1
        entry["runs"] += record["runs"]
        for reasons in record["stops"]:
            for reason in reasons:
                entry["reasons"][reason] = entry["reasons"].get(reason, 0) + 1
    for entry in out.values():
        entry["runs_per_problem"] = entry["runs"] / entry["problems"]
        entry["reasons"] = dict(sorted(entry["reasons"].items(), key=lambda kv: -kv[1]))
    return out


# ---------------------------------------------------------------- report


def markdown(table: dict[str, Any], budget_per_dim: int, groups: Iterable[str] = ("all", *GROUPS)) -> str:
    """One table per dimension: rows algorithms, columns groups, cells 'solved (range) / area (range)'."""
    lines: list[str] = []
    dims = sorted({int(d) for per_alg in table.values() for d in per_alg})
    for d in dims:
        present = [g for g in groups if any(g in table[a].get(str(d), {}) for a in table)]
        lines.append(f"d = {d}, budget {budget_per_dim}·d: solved to 1e-8 [instance range] / ECDF area [range]")
        lines.append("")
        lines.append("| algorithm | " + " | ".join(f"{g} ({table_problems(table, d, g)})" for g in present) + " |")
        lines.append("|---" * (len(present) + 1) + "|")
        for algorithm in table:
            cells = []
            for g in present:
                cells.append(solved_and_area(table[algorithm].get(str(d), {}).get(g)))
            lines.append(f"| {algorithm} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines).replace("%", "%")


def solved_and_area(c: dict[str, Any] | None) -> str:
    """A table cell: the solved fraction and the ECDF area, each with its [min, max] over the instances."""
    if c is None:
        return ""
    return (
        f"{c['solved']:.0%} [{c['solved_range'][0]:.0%}, {c['solved_range'][1]:.0%}] / "
        f"{c['area']:.2f} [{c['area_range'][0]:.2f}, {c['area_range'][1]:.2f}]"
    )


def table_problems(table: dict[str, Any], d: int, group: str) -> int:
    return max(table[a].get(str(d), {}).get(group, {}).get("problems", 0) for a in table)


def readme_tables(table: dict[str, Any]) -> str:
    """The README's two tables: per dimension over the functions run, then the solved fraction per group run."""
    dims = sorted({int(d) for per_alg in table.values() for d in per_alg})
    problems = ", ".join(f"{table_problems(table, d, 'all')} at d = {d}" for d in dims)
    lines = [
        f"All functions run (problems: {problems}): solved to 1e-8 / ECDF area, [min, max] over the instances",
        "",
        "| algorithm | " + " | ".join(f"d = {d}" for d in dims) + " |",
        "|---" * (len(dims) + 1) + "|",
    ]
    for algorithm in table:
        cells = []
        for d in dims:
            cells.append(solved_and_area(table[algorithm].get(str(d), {}).get("all")))
        lines.append(f"| {algorithm} | " + " | ".join(cells) + " |")
    groups = {
        g: f for g, f in GROUPS.items() if any(g in per_d for per_alg in table.values() for per_d in per_alg.values())
    }
    lines += ["", "Solved to 1e-8 per function group, d = " + " / ".join(map(str, dims)), ""]
    lines.append("| algorithm | " + " | ".join(f"{g} (f{min(f)}-{max(f)})" for g, f in groups.items()) + " |")
    lines.append("|---" * (len(groups) + 1) + "|")
    for algorithm in table:
        cells = []
        for group in groups:
            values = [table[algorithm].get(str(d), {}).get(group) for d in dims]
            cells.append(" / ".join("-" if c is None else f"{100 * c['solved']:.0f}" for c in values))
        lines.append(f"| {algorithm} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def stops_markdown(stops: dict[str, dict[str, Any]]) -> str:
    lines = ["| algorithm | problems | runs per problem | how the runs ended (count) |", "|---|---|---|---|"]
    for algorithm, entry in stops.items():
        reasons = ", ".join(f"{r} {n}" for r, n in entry["reasons"].items())
        lines.append(f"| {algorithm} | {entry['problems']} | {entry['runs_per_problem']:.1f} | {reasons} |")
    return "\n".join(lines)


def figure(records: dict[str, dict[str, Any]], budget_per_dim: int, path: Path, title: str) -> None:
    """One panel per dimension: the runtime ECDF over all functions and targets, one line per algorithm."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by: dict[int, dict[str, list[list[int]]]] = {}
    for key, record in records.items():
        algorithm, d, _, _ = parse_key(key)
        by.setdefault(d, {}).setdefault(algorithm, []).append(record["hits"])
    dims = sorted(by)
    fig, axes = plt.subplots(1, len(dims), figsize=(4.2 * len(dims), 3.8), squeeze=False, sharey=True)
    span = math.log10(budget_per_dim)
    grid = np.linspace(0, span, 400)
    algorithms = sorted({a for per_d in by.values() for a in per_d})
    colors = dict(zip(algorithms, plt.get_cmap("tab10").colors))
    for ax, d in zip(axes[0], dims):
        for algorithm in algorithms:
            if algorithm not in by[d]:
                continue
            hits = np.asarray(by[d][algorithm])
            style = "--" if algorithm.startswith("pycma") or algorithm.startswith("evosax") else "-"
            ax.step(
                grid,
                ecdf_curve(hits, d, grid),
                where="post",
                ls=style,
                color=colors[algorithm],
                label=f"{algorithm} ({ecdf_area(hits, d, budget_per_dim):.2f})",
            )
        ax.axvline(span, color="k", lw=0.6)
        problems = len(next(iter(by[d].values())))
        ax.set_title(f"d = {d}: {problems} problems x 51 targets", fontsize=9)
        ax.set_xlabel("log10(evaluations / d)")
        ax.set_xlim(0, span + 0.05)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="upper left")
    axes[0][0].set_ylabel("fraction of (problem, target) pairs")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---------------------------------------------------------------- driver


def load(path: Path, meta: dict[str, Any]) -> dict[str, Any]:
    if not path.exists():
        return {"meta": meta, "runs": {}}
    saved = json.loads(path.read_text())
    for name in ("budget_per_dim", "seed"):
        if saved["meta"][name] != meta[name]:
            raise ValueError(
                f"{path} holds runs with {name}={saved['meta'][name]}, this run asks {name}={meta[name]}; "
                "use another --tag"
            )
    return saved


def save(path: Path, saved: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(saved, separators=(",", ":"), sort_keys=True))  # compact: thousands of runs
    tmp.replace(path)


def limit_threads() -> None:
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass


def run(
    algorithms: list[str],
    dims: list[int],
    functions: list[int],
    instances: list[int],
    budget_per_dim: int,
    seed: int = SEED,
    workers: int = 2,
    out: Path | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run every (algorithm, d, function, instance) not yet in ``out``; returns the saved dict."""
    meta = {
        "budget_per_dim": budget_per_dim,
        "seed": seed,
        "targets": "10^(2 - k/5), k = 0..50",
        "start": f"uniform [-{BOX}, {BOX}]^d",
        "sigma0": SIGMA0,
        "max_restarts": MAX_RESTARTS,
    }
    saved = load(out, meta) if out is not None else {"meta": meta, "runs": {}}
    skipped = [a for a in algorithms if not ALGORITHMS[a][0]()]
    if skipped:
        log(f"skipped (not available here): {', '.join(skipped)}")
    saved["meta"]["skipped"] = sorted(set(saved["meta"].get("skipped", [])) | set(skipped))
    tasks = [
        (a, d, f, i, budget_per_dim, seed)
        for d in dims
        for f in functions
        for i in instances
        for a in algorithms
        if a not in skipped and task_key(a, d, f, i) not in saved["runs"]
    ]
    # small d and low instances first: a run cut short still holds whole dimensions and instances
    tasks.sort(key=lambda t: (t[1], t[3], t[2], t[0]))
    log(f"{len(tasks)} runs to do ({len(saved['runs'])} already in {out})")
    if workers > 1 and len(tasks) > 1:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(workers, initializer=limit_threads) as pool:
            for n, (key, record) in enumerate(pool.imap_unordered(run_one, tasks), 1):
                saved["runs"][key] = record
                log(
                    f"[{n}/{len(tasks)}] {key}: best {record['best_delta']:.2e} in {record['runs']} runs, "
                    f"{record['seconds']:.1f} s"
                )
                if out is not None:
                    save(out, saved)
    else:
        for n, task in enumerate(tasks, 1):
            key, record = run_one(task)
            saved["runs"][key] = record
            log(f"[{n}/{len(tasks)}] {key}: best {record['best_delta']:.2e}, {record['seconds']:.1f} s")
            if out is not None:
                save(out, saved)
    return saved


def report(saved: dict[str, Any], png: Path | None, title: str) -> str:
    budget_per_dim = saved["meta"]["budget_per_dim"]
    table = summarise(saved["runs"], budget_per_dim)
    stops = stop_reasons(saved["runs"])
    saved["summary"], saved["stop_reasons"] = table, stops
    text = "\n\n".join([readme_tables(table), markdown(table, budget_per_dim), stops_markdown(stops)])
    if png is not None and saved["runs"]:
        figure(saved["runs"], budget_per_dim, png, title)
    return text


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK} (what the test suite runs)")
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 3, 5, 10, 20])
    parser.add_argument("--functions", type=int, nargs="+", default=list(range(1, 25)))
    parser.add_argument("--instances", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    parser.add_argument("--budget-per-dim", type=int, default=10_000)
    parser.add_argument(
        "--algorithms",
        nargs="+",
        default=list(ALGORITHMS),
        choices=list(ALGORITHMS),
        metavar="NAME",
        help="; ".join(ALGORITHMS),
    )
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tag", default=None, help="results go to benchmarks/results/bbob_<tag>.json/.png")
    parser.add_argument("--out", type=Path, default=None, help="the JSON file (overrides --tag); PNG beside it")
    parser.add_argument("--report", type=Path, default=None, help="only tabulate and draw this results file")
    args = parser.parse_args(argv)
    if args.quick:
        for name, value in QUICK.items():
            setattr(args, name, value)
    if args.report is not None:
        saved = json.loads(args.report.read_text())
        out = args.report
    else:
        for name in ("dims", "functions", "instances"):
            values = getattr(args, name)
            low, high = (1, 24) if name == "functions" else (1, 10**6)
            if any(not low <= v <= high for v in values):
                parser.error(f"--{name} must be in [{low}, {high}], got {values}")
        if args.budget_per_dim < 2:
            parser.error(f"--budget-per-dim must be >= 2, got {args.budget_per_dim}")
        out = args.out or RESULTS / f"bbob_{args.tag or ('quick' if args.quick else 'run')}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        saved = run(
            args.algorithms,
            args.dims,
            args.functions,
            args.instances,
            args.budget_per_dim,
            args.seed,
            args.workers,
            out,
        )
    dims = sorted({parse_key(k)[1] for k in saved["runs"]})
    instances = sorted({parse_key(k)[3] for k in saved["runs"]})
    title = (
        f"BBOB, d = {', '.join(map(str, dims))}, instances {', '.join(map(str, instances))}, "
        f"budget {saved['meta']['budget_per_dim']}·d (ECDF area in the legend)"
    )
    text = report(saved, out.with_suffix(".png"), title)
    save(out, saved)
    out.with_suffix(".md").write_text(text + "\n")
    print(text)
    return saved


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
