"""npevograd against evosax 0.3 (JAX) and EvoTorch 0.6 (torch) on whole SNES generations (issue 15).

    python benchmarks/peers.py --quick          # a few minutes on 2 cores
    python benchmarks/peers.py                  # n = 1000, d = 100,000 for the high-d rows
    python benchmarks/peers.py --json out.json  # also write the figures

Workloads, each run once pinned to one core and once on every core:

* ``highd``: one generation at d = 100,000 float32 (n = 1000; quick: n = 200), fresh
  Gaussian noise, a trivial fitness (the first coordinate) so the generation is measured,
  not the problem: (a) SNES with a learned diagonal sigma (sample, ranks, gradient,
  natural-gradient step), (b) fixed sigma with antithetic pairs (evosax ``Open_ES``,
  EvoTorch ``PGPE`` with ``stdev_learning_rate=0``, npevograd ``PairedNormal``).
* ``small`` (``peers_small.py``, also a script of its own): d = 10, n = 10, 50 and 500, the full loop
  with a Rastrigin fitness written in
  each library's array language, SNES with NES utilities: npevograd's demo loop body;
  evosax ``jax.jit`` of ask + evaluate + tell (compile time reported apart) and its whole
  loop in one ``jax.lax.scan`` (time per generation); EvoTorch ``SNES.step()``.
* ``sampling``: ``Normal.sample`` against EvoTorch's ask (its ``SeparableGaussian``
  sample: torch's in-place normal fill) at the high-d shape.
* ``import``: ``import npevograd`` against ``import numpy``, fresh interpreters, median of 10.

Method.  "One core" is a child process pinned with ``os.sched_setaffinity`` before any
library loads, for every library (JAX ignores the XLA thread flags, so pinning is the
only equal setting); "all cores" is the default threading of each library.  Within each
repeat the callables take turns in blocks (``alternate``): each runs one untimed call,
then a block of consecutive timed calls (``block``; 1 for the high-d rows, whose calls
take about a second), and its time per call is the block's time over its length.  Each
ratio is the median over repeats of the per-repeat ratios (peer time / npevograd time:
above 1 means npevograd is faster), so load spikes on a shared machine hit both sides.
Blocks, not single calls, because a single call timed right after another library's runs
on that library's leftovers: its caches, allocator and thread state.  Measured in issue
15: npevograd's small generation (n = 50) takes about 76 us run back to back, but 159 us
right after an EvoTorch step, 217 us after a ``lax.scan`` call and 432 us alternated
call by call with all four; the block is what a user's loop does.  The small loops also
restart from their initial state every ``scan`` generations (``restarting``; the scan
row runs that many generations from it), so every library is timed on the same phase of
the run rather than drifting into its converged phase (sigma near 1e-10, fitness values
tied by rounding).  A library that is not installed is reported as skipped.  ``floor``
rows give the fewest NumPy calls a small generation needs (sample, fitness, ranks, one
contraction, step), timed the same way; ``npevograd_asktell`` is the same SNES through
``ng.algorithms.SNES`` ask/tell, also compared with the peers (``*_over_npevograd_asktell``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

from _peers import alternate, load_evotorch, load_jax
from _timing import fmt_iqr, machine, quartiles
from peers_small import bench_small
from peers_small import report as small_report

ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- high d


def bench_highd(n: int, d: int, repeats: int) -> dict[str, Any]:
    import numpy as np

    import npevograd as ng

    out: dict[str, Any] = {"n": n, "d": d, "dtype": "float32"}
    rng = np.random.default_rng(0)
    mu0 = np.zeros(d, dtype=np.float32)
    eta_mu, eta_sigma = 1.0, (3 + np.log(d)) / (5 * np.sqrt(d))

    learned = ng.Normal(mu0, np.full(d, 0.1, dtype=np.float32), learn_sigma=True)
    nes = ng.Mean(shaping=ng.nes_utilities)

    def ours_learned() -> None:
        x = learned.sample(n, rng)
        natural = learned.natural_gradient(nes(x[:, 0], x, learned).grad)
        learned.params["mu"] += eta_mu * n * natural["mu"]
        sigma = learned.params["sigma"]
        sigma *= np.exp(eta_sigma * n * natural["sigma"] / sigma)

    paired = ng.PairedNormal(mu0, 0.1)
    ranks = ng.Mean(shaping=ng.centered_ranks)

    def ours_paired() -> None:
        x = paired.sample(n, rng)
        paired.params["mu"] += 0.01 * ranks(x[:, 0], x, paired).grad["mu"]

    learned_fns: dict[str, Callable[[], object]] = {"npevograd": ours_learned}
    paired_fns: dict[str, Callable[[], object]] = {"npevograd": ours_paired}
    notes = []
    jx = load_jax()
    if jx is None:
        notes.append("evosax/jax not installed: skipped")
    else:
        learned_fns["evosax"] = _evosax_generation(jx, "SNES", n, d, lambda x: x[:, 0])
        paired_fns["evosax"] = _evosax_generation(jx, "Open_ES", n, d, lambda x: x[:, 0])
    tt = load_evotorch()
    if tt is None:
        notes.append("evotorch/torch not installed: skipped")
    else:
        learned_fns["evotorch"] = _evotorch_step(tt, "SNES", n, d, lambda x: x[:, 0])
        paired_fns["evotorch"] = _evotorch_step(tt, "PGPE", n, d, lambda x: x[:, 0])
    out["learned_sigma"] = alternate(learned_fns, repeats)
    out["fixed_sigma_antithetic"] = alternate(paired_fns, repeats)
    out["notes"] = notes
    return out


def _evosax_generation(jx: Any, algorithm: str, n: int, d: int, fitness: Callable[[Any], Any]) -> Callable[[], object]:
    """One jitted ask + evaluate + tell of an evosax strategy; the state is carried between calls."""
    jax, jnp, algorithms = jx
    kwargs = {"use_antithetic_sampling": True} if algorithm == "Open_ES" else {}
    strategy = getattr(algorithms, algorithm)(population_size=n, solution=jnp.zeros(d, dtype=jnp.float32), **kwargs)
    params = strategy.default_params
    key = jax.random.key(0)
    state = strategy.init(key, jnp.zeros(d, dtype=jnp.float32), params)

    @jax.jit
    def generation(key: Any, state: Any) -> Any:
        key, k_ask, k_tell = jax.random.split(key, 3)
        x, state = strategy.ask(k_ask, state, params)
        state, _ = strategy.tell(k_tell, x, fitness(x), state, params)
        return key, state

    carry = [key, state]

    def run() -> None:
        carry[0], carry[1] = generation(carry[0], carry[1])
        jax.block_until_ready(carry[1])

    return run


def _evotorch_step(tt: Any, algorithm: str, n: int, d: int, fitness: Callable[[Any], Any]) -> Callable[[], object]:
    torch, evotorch = tt
    from evotorch.algorithms import PGPE, SNES
    from evotorch.decorators import vectorized

    @vectorized
    def f(x: Any) -> Any:
        return fitness(x)

    problem = evotorch.Problem("max", f, solution_length=d, initial_bounds=(-1.0, 1.0), dtype=torch.float32)
    if algorithm == "SNES":
        searcher = SNES(problem, popsize=n, stdev_init=0.1)
    else:
        searcher = PGPE(problem, popsize=n, center_learning_rate=0.01, stdev_learning_rate=0.0, stdev_init=0.1,
                        optimizer="sgd", symmetric=True)
    return searcher.step


# --------------------------------------------------------------------------- sampling and import


def bench_sampling(n: int, d: int, repeats: int) -> dict[str, Any]:
    import numpy as np

    import npevograd as ng

    p = ng.Normal(np.zeros(d, dtype=np.float32), np.full(d, 0.1, dtype=np.float32))
    rng = np.random.default_rng(0)
    fns: dict[str, Callable[[], object]] = {"npevograd": lambda: p.sample(n, rng)}
    out: dict[str, Any] = {"n": n, "d": d, "dtype": "float32"}
    tt = load_evotorch()
    if tt is None:
        out["note"] = "evotorch/torch not installed: skipped"
    else:
        torch, _ = tt
        from evotorch.distributions import SeparableGaussian

        dist = SeparableGaussian(
            {"mu": torch.zeros(d, dtype=torch.float32), "sigma": torch.full((d,), 0.1, dtype=torch.float32)},
            dtype=torch.float32,
        )
        fns["evotorch"] = lambda: dist.sample(n)
    out.update(alternate(fns, repeats))
    return out


def bench_import(repeats: int = 10) -> dict[str, Any]:
    """Seconds to import numpy and npevograd, each in fresh interpreters, alternating.

    Both are timed with their bytecode cached, the state every import after the first is
    in: numpy's was compiled by pip at install, npevograd's (an editable checkout) is
    written at its first import.  A shell with ``PYTHONDONTWRITEBYTECODE`` set (this
    workplace sets it) never writes npevograd's, so each import would compile all of it
    from source (about 28 ms) while numpy's stays compiled.  Here that variable is
    dropped and ``PYTHONPYCACHEPREFIX`` points both at one fresh directory, filled by an
    untimed warm-up import of each.
    """
    import tempfile

    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    code = "import time; t = time.perf_counter(); import {}; print(time.perf_counter() - t)"
    times: dict[str, list[float]] = {"numpy": [], "npevograd": []}
    with tempfile.TemporaryDirectory() as cache:
        env["PYTHONPYCACHEPREFIX"] = cache

        def timed(mod: str) -> float:
            cmd = [sys.executable, "-c", code.format(mod)]
            return float(subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout)

        for mod in times:  # warm-up: writes the bytecode of both
            timed(mod)
        for _ in range(repeats):
            for mod, ts in times.items():
                ts.append(timed(mod))
    ratios = [ours / base for ours, base in zip(times["npevograd"], times["numpy"])]
    return {
        "numpy_s": statistics.median(times["numpy"]),
        "npevograd_s": statistics.median(times["npevograd"]),
        "npevograd_over_numpy": statistics.median(ratios),
        "npevograd_over_numpy_iqr": quartiles(ratios),
        "bytecode": "cached for both (PYTHONPYCACHEPREFIX, warm-up import)",
        "goal": "at most 1.5",
    }


# --------------------------------------------------------------------------- driver

SIZES = {
    "quick": {"highd": (200, 100_000), "small": (10, 50, 500), "repeats": 5, "small_repeats": 20, "block": 20,
              "scan": 100},
    "full": {"highd": (1000, 100_000), "small": (10, 50, 500), "repeats": 7, "small_repeats": 40, "block": 50,
             "scan": 200},
}


def child(mode: str, sections: list[str]) -> dict[str, Any]:
    sys.path.insert(0, str(ROOT))
    size = SIZES[mode]
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    out: dict[str, Any] = {"cores": usable}
    n, d = size["highd"]
    if "highd" in sections:
        out["highd"] = bench_highd(n, d, size["repeats"])
    if "small" in sections:
        out["small"] = [bench_small(m, 10, size["small_repeats"], size["scan"], size["block"]) for m in size["small"]]
    if "sampling" in sections:
        out["sampling"] = bench_sampling(n, d, size["repeats"])
    return out


def run_child(mode: str, sections: list[str], one_core: bool) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", "--sections", ",".join(sections)]
    cmd += ["--quick"] if mode == "quick" else []
    cmd += ["--one-core"] if one_core else []
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True)
    return json.loads(proc.stdout.splitlines()[-1])  # the libraries may log to stdout before it


def ratios_text(r: dict[str, Any], suffix: str = "_ratio") -> str:
    """``evosax 3.70x [3.52, 3.91], ...``: each ratio ending in ``suffix``, with its quartiles over the repeats."""
    return ", ".join(
        f"{k[: -len(suffix)]} {v:.2f}x {fmt_iqr(r[k + '_iqr'])}" for k, v in r.items() if k.endswith(suffix)
    )


def report(results: dict[str, Any]) -> str:
    lines = [
        "ratios: peer time / npevograd time (above 1: npevograd faster); medians of alternating repeats,"
        " [first, third quartile] over the repeats"
    ]
    if "import" in results:
        r = results["import"]
        lines.append(f"import: numpy {r['numpy_s'] * 1e3:.0f} ms, npevograd {r['npevograd_s'] * 1e3:.0f} ms, "
                     f"ratio {r['npevograd_over_numpy']:.2f} {fmt_iqr(r['npevograd_over_numpy_iqr'])} (goal <= 1.5)")
    for cores, run in results.get("runs", {}).items():
        lines.append(f"-- {cores} ({run['cores']} core(s) usable)")
        h = run.get("highd")
        for key in ("learned_sigma", "fixed_sigma_antithetic") if h else ():
            r = h[key]
            peers = ratios_text(r)
            lines.append(f"high-d {key} n={h['n']} d={h['d']}: npevograd {r['npevograd_s'] * 1e3:.0f} ms; {peers}")
        if run.get("small"):
            lines.append("small loop, SNES d = 10:\n" + small_report(run["small"]))
        s = run.get("sampling")
        if s:
            peers = ratios_text(s)
            lines.append(f"sampling n={s['n']} d={s['d']}: npevograd {s['npevograd_s'] * 1e3:.0f} ms; {peers}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller high-d population and fewer repeats")
    parser.add_argument("--sections", default="import,highd,small,sampling", help="comma-separated sections")
    parser.add_argument("--cores", default="one,all", help="'one', 'all' or 'one,all'")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--one-core", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    sections = [s for s in args.sections.split(",") if s]
    if args.child:
        if args.one_core:
            os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # before any library loads
        print(json.dumps(child(mode, sections)))
        return {}
    results: dict[str, Any] = {"mode": mode, "machine": machine(), "runs": {}}
    print(f"machine: {results['machine']}")
    if "import" in sections:
        results["import"] = bench_import()
    rest = [s for s in sections if s != "import"]
    for cores in args.cores.split(","):
        if rest:
            results["runs"][f"{cores} core(s)"] = run_child(mode, rest, one_core=cores == "one")
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
