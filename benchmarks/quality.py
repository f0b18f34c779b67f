"""Solution quality of npevograd's SNES and XNES beside evosax 0.3.2 (JAX, CPU) and EvoTorch 0.6.1.

    python benchmarks/quality.py --quick                      # seconds: d = 10, 2 seeds
    python benchmarks/quality.py                              # the full table (about 10 min of CPU)
    python benchmarks/quality.py --libraries npevograd        # without the peers

Functions (minimised here; npevograd maximises -f), optimum f = 0:

- sphere         f(x) = sum_i x_i^2
- ellipsoid      f(x) = sum_i 10^(6 (i-1)/(d-1)) y_i^2, y = R x, R a random rotation drawn per seed
                 (condition number 1e6; not separable, so a diagonal covariance cannot fit it)
- rosenbrock     f(x) = sum_i 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2
- rastrigin      f(x) = 10 d + sum_i x_i^2 - 10 cos(2 pi x_i)

at d = 10 and 100, 10 seeds each.  Every run starts from the same mean (uniform in
[-3, 3]^d, drawn from the seed) with sigma = 1, uses the population size
4 + floor(3 ln d) (10 at d = 10, 17 at d = 100: every library's default) and the same
evaluation budget (``BUDGETS``), and stops early once the best f seen is below 1e-8.
Each library runs with its own default hyperparameters; for SNES and xNES these are
the papers' values in all three libraries (listed in the JSON under
``hyperparameters``), which are also npevograd's, so "own defaults" and "npevograd's
hyperparameters" are the same runs.  Reported: the median number of evaluations to
reach f < 1e-8 over the seeds (unreached runs count as infinite), or, where the
median run does not reach it, the median best f at the end of the budget.

Evaluation counts do not depend on the machine's load.  The peers are optional:
each is skipped when it cannot be imported.  JAX runs in float64
(``jax_enable_x64``) and EvoTorch with float64 problems, as npevograd, so that 1e-8
is reachable for all.  Results: ``benchmarks/results/quality.json`` and a markdown
table (``quality.md``) printed at the end.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # six agents share two cores: threads only contend
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import npevograd as ng  # noqa: E402

TARGET = 1e-8
FUNCTIONS = ["sphere", "ellipsoid", "rosenbrock", "rastrigin"]
DIMS = [10, 100]
SEEDS = 10
# evaluation budget per (function, d): chosen so that the full run stays near 10 min of CPU
BUDGETS = {
    ("sphere", 10): 20_000,
    ("ellipsoid", 10): 20_000,
    ("rosenbrock", 10): 20_000,
    ("rastrigin", 10): 10_000,
    ("sphere", 100): 10_000,
    ("ellipsoid", 100): 10_000,
    ("rosenbrock", 100): 10_000,
    ("rastrigin", 100): 10_000,
}
QUICK_BUDGET = 2_000
SIGMA0 = 1.0
ALGORITHMS = [("npevograd", "SNES"), ("evosax", "SNES"), ("evotorch", "SNES"),
              ("npevograd", "XNES"), ("evosax", "xNES"), ("evotorch", "XNES")]


def popsize(d: int) -> int:
    return 4 + int(math.floor(3 * math.log(d)))


# --------------------------------------------------------------------------- problems


def objective(name: str, d: int, rotation: Any, cos: Callable) -> Callable:
    """f(x) for rows of x (n, d), written once for numpy, jax.numpy and torch arrays."""
    scales = [10.0 ** (6 * i / (d - 1)) for i in range(d)]

    def sphere(x):
        return (x**2).sum(-1)

    def ellipsoid(x):
        y = x @ rotation.T
        return (y**2 * scale_array).sum(-1)

    def rosenbrock(x):
        return (100 * (x[:, 1:] - x[:, :-1] ** 2) ** 2 + (1 - x[:, :-1]) ** 2).sum(-1)

    def rastrigin(x):
        return 10.0 * d + (x**2 - 10 * cos(2 * math.pi * x)).sum(-1)

    scale_array = rotation[0] * 0 + _like(rotation, scales)
    return {"sphere": sphere, "ellipsoid": ellipsoid, "rosenbrock": rosenbrock, "rastrigin": rastrigin}[name]


def _like(reference: Any, values: list[float]) -> Any:
    """``values`` as an array of the same library as ``reference``."""
    module = type(reference).__module__
    if module.startswith("torch"):
        import torch

        return torch.tensor(values, dtype=reference.dtype)
    if module.startswith("jax"):
        import jax.numpy as jnp

        return jnp.asarray(values)
    return np.asarray(values)


def start(d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The initial mean (uniform in [-3, 3]^d) and the ellipsoid's rotation for this seed."""
    rng = np.random.default_rng(1000 + seed)
    mean = rng.uniform(-3, 3, d)
    q, r = np.linalg.qr(rng.standard_normal((d, d)))
    return mean, q * np.sign(np.diag(r))  # a Haar-random rotation


# --------------------------------------------------------------------------- runners
# each returns the best f seen after every generation (length <= budget // popsize)


def run_npevograd(alg: str, fname: str, d: int, seed: int, budget: int) -> np.ndarray:
    mean, rotation = start(d, seed)
    f = objective(fname, d, rotation, np.cos)
    es = getattr(ng.algorithms, alg)(mean, SIGMA0, rng=seed)
    best = []
    for _ in range(budget // es.popsize):
        x = es.ask()
        es.tell(-f(x))
        best.append(-es.best.fitness)
        if best[-1] < TARGET:
            break
    return np.array(best)


def run_evosax(alg: str, fname: str, d: int, seed: int, budget: int, chunk: int = 100) -> np.ndarray:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    runner = _evosax_runner(alg, fname, d, chunk)
    mean, rotation = start(d, seed)
    es, params = runner["es"], runner["params"]
    key = jax.random.key(seed)
    state = es.init(key, jnp.asarray(mean), params)
    rot = jnp.asarray(rotation)
    best: list[float] = []
    generations = budget // es.population_size
    while len(best) < generations:
        key, sub = jax.random.split(key)
        state, chunk_best = runner["scan"](state, jax.random.split(sub, chunk), rot)
        best += np.asarray(chunk_best).tolist()
        if min(best) < TARGET:
            break
    best_arr = np.minimum.accumulate(np.array(best[:generations]))
    hit = np.flatnonzero(best_arr < TARGET)
    return best_arr[: hit[0] + 1] if hit.size else best_arr


_EVOSAX_CACHE: dict = {}


def _evosax_runner(alg: str, fname: str, d: int, chunk: int) -> dict:
    """One jit-compiled scan of ``chunk`` generations per (algorithm, function, d)."""
    key = (alg, fname, d, chunk)
    if key in _EVOSAX_CACHE:
        return _EVOSAX_CACHE[key]
    import jax
    import jax.numpy as jnp
    from evosax.algorithms import SNES, xNES

    es = {"SNES": SNES, "xNES": xNES}[alg](population_size=popsize(d), solution=jnp.zeros(d))
    params = es.default_params.replace(std_init=SIGMA0)

    def scan(state, keys, rotation):
        f = objective(fname, d, rotation, jnp.cos)

        def step(state, k):
            k_ask, k_tell = jax.random.split(k)
            x, state = es.ask(k_ask, state, params)
            state, _ = es.tell(k_tell, x, f(x), state, params)
            return state, state.best_fitness

        return jax.lax.scan(step, state, keys)

    _EVOSAX_CACHE[key] = {"es": es, "params": params, "scan": jax.jit(scan)}
    return _EVOSAX_CACHE[key]


def run_evotorch(alg: str, fname: str, d: int, seed: int, budget: int) -> np.ndarray:
    import logging

    import torch
    from evotorch import Problem
    from evotorch.algorithms import SNES, XNES

    logging.getLogger("evotorch").setLevel(logging.WARNING)
    torch.set_num_threads(1)
    mean, rotation = start(d, seed)
    f = objective(fname, d, torch.as_tensor(rotation), torch.cos)
    problem = Problem("min", f, solution_length=d, initial_bounds=(-3, 3), vectorized=True,
                      dtype=torch.float64, seed=seed)
    searcher = {"SNES": SNES, "XNES": XNES}[alg](problem, stdev_init=SIGMA0, center_init=torch.as_tensor(mean))
    best = []
    for _ in range(budget // popsize(d)):
        searcher.step()
        best.append(float(searcher.status["best_eval"]))
        if best[-1] < TARGET:
            break
    return np.array(best)


RUNNERS = {"npevograd": run_npevograd, "evosax": run_evosax, "evotorch": run_evotorch}


def hyperparameters(d: int, libraries: list[str]) -> dict:
    """The defaults each library uses at dimension d (read from the libraries where they expose them)."""
    out: dict = {
        "npevograd": {
            "SNES": vars_of(ng.algorithms.SNES(np.zeros(d)), ["popsize", "lr_mu", "lr_sigma"]),
            "XNES": vars_of(ng.algorithms.XNES(np.zeros(d)), ["popsize", "lr_mu", "lr_sigma", "lr_B"]),
        }
    }
    if "evosax" in libraries:
        import jax.numpy as jnp
        from evosax.algorithms import SNES, xNES

        out["evosax"] = {}
        for name, cls in (("SNES", SNES), ("xNES", xNES)):
            p = cls(population_size=popsize(d), solution=jnp.zeros(d)).default_params
            out["evosax"][name] = {"popsize": popsize(d), "lr_mu": 1.0, "lr_sigma": float(p.lr_std_init)}
            if name == "xNES":
                out["evosax"][name]["lr_B"] = float(p.lr_B)
    if "evotorch" in libraries:
        out["evotorch"] = {  # EvoTorch computes these inside __init__ (gaussian.py): the same formulas
            "SNES": {"popsize": popsize(d), "lr_mu": 1.0, "lr_sigma": 0.2 * (3 + math.log(d)) / math.sqrt(d)},
            "XNES": {"popsize": popsize(d), "lr_mu": 1.0, "lr_sigma": 0.6 * (3 + math.log(d)) / (d * math.sqrt(d))},
        }
    return out


def vars_of(obj: object, names: list[str]) -> dict:
    return {k: getattr(obj, k) for k in names}


# --------------------------------------------------------------------------- summary


def summarise(curves: list[np.ndarray], pop: int) -> dict:
    evals = [(int(np.argmax(c < TARGET)) + 1) * pop if np.any(c < TARGET) else math.inf for c in curves]
    finals = [float(c[-1]) for c in curves]
    median_evals = float(np.median(evals))
    return {
        "reached": int(sum(e < math.inf for e in evals)),
        "seeds": len(curves),
        "median_evals": None if median_evals == math.inf else median_evals,
        "median_final": float(np.median(finals)),
        "evals": [None if e == math.inf else e for e in evals],
        "finals": finals,
    }


def cell(s: dict | None) -> str:
    if s is None:
        return "n/a"
    if s["median_evals"] is not None:
        return f"{s['median_evals']:,.0f} ({s['reached']}/{s['seeds']})"
    return f"f = {s['median_final']:.2g} ({s['reached']}/{s['seeds']})"


def table(results: dict, libraries: list[str]) -> str:
    columns = [(lib, alg) for lib, alg in ALGORITHMS if lib in libraries]
    lines = [
        "| function | d | budget | " + " | ".join(f"{lib} {alg}" for lib, alg in columns) + " |",
        "|---|---|---|" + "---|" * len(columns),
    ]
    for key, row in results.items():
        fname, d = key.split("/")
        lines.append(
            f"| {fname} | {d} | {row['budget']:,} | "
            + " | ".join(cell(row["algorithms"].get(f"{lib} {alg}")) for lib, alg in columns)
            + " |"
        )
    return "\n".join(lines)


def available(libraries: list[str]) -> list[str]:
    found = []
    for lib in libraries:
        try:
            __import__(lib)
        except ImportError:
            print(f"[quality] {lib} is not importable: skipped", flush=True)
            continue
        found.append(lib)
    return found


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="d = 10, sphere and ellipsoid, 2 seeds, 2000 evaluations")
    parser.add_argument("--libraries", nargs="+", default=["npevograd", "evosax", "evotorch"],
                        choices=["npevograd", "evosax", "evotorch"])
    parser.add_argument("--seeds", type=int, default=None, help=f"seeds per problem (default {SEEDS}; quick 2)")
    parser.add_argument("--out", type=Path, default=None, help="JSON output (default benchmarks/results/quality.json)")
    args = parser.parse_args(argv)
    libraries = available(args.libraries)
    seeds = args.seeds or (2 if args.quick else SEEDS)
    problems = [("sphere", 10), ("ellipsoid", 10)] if args.quick else [(f, d) for d in DIMS for f in FUNCTIONS]
    default_name = "quality-quick" if args.quick else "quality"
    out = args.out or ROOT / "benchmarks" / "results" / f"{default_name}.json"
    started = time.process_time()
    results: dict = {}
    for fname, d in problems:
        budget = QUICK_BUDGET if args.quick else BUDGETS[(fname, d)]
        row: dict = {"budget": budget, "popsize": popsize(d), "algorithms": {}}
        for lib, alg in ALGORITHMS:
            if lib not in libraries:
                continue
            t = time.process_time()
            curves = [RUNNERS[lib](alg, fname, d, seed, budget) for seed in range(seeds)]
            row["algorithms"][f"{lib} {alg}"] = summary = summarise(curves, popsize(d))
            summary["cpu_seconds"] = time.process_time() - t
            print(f"[quality] {fname:10s} d={d:3d} {lib:9s} {alg:4s}  {cell(summary):24s}"
                  f"  {summary['cpu_seconds']:6.1f} s CPU", flush=True)
        results[f"{fname}/{d}"] = row
    markdown = table(results, libraries)
    report = {
        "target": TARGET,
        "sigma0": SIGMA0,
        "seeds": seeds,
        "quick": args.quick,
        "libraries": libraries,
        "versions": versions(libraries),
        "hyperparameters": {str(d): hyperparameters(d, libraries) for d in sorted({d for _, d in problems})},
        "cpu_seconds": time.process_time() - started,
        "machine": platform.platform(),
        "results": results,
        "markdown": markdown,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    out.with_suffix(".md").write_text(markdown + "\n")
    print(markdown)
    print(f"[quality] {report['cpu_seconds']:.0f} s CPU; wrote {out}")
    return report


def versions(libraries: list[str]) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    found = {"numpy": np.__version__}
    for lib in libraries + (["jax"] if "evosax" in libraries else []) + (["torch"] if "evotorch" in libraries else []):
        try:
            found[lib] = version(lib)
        except PackageNotFoundError:
            found[lib] = ng.__version__ if lib == "npevograd" else "unknown"
    return found


if __name__ == "__main__":
    main()
