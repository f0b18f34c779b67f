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
* ``small``: d = 10, n = 50 and 500, the full loop with a Rastrigin fitness written in
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
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]


def alternate(
    fns: dict[str, Callable[[], object]],
    repeats: int,
    block: int | dict[str, int] = 1,
    warm: int = 0,
    baselines: tuple[str, ...] = ("npevograd",),
) -> dict[str, float]:
    """Median seconds per call of each callable; the callables take turns in blocks of calls.

    After one warm-up call each, every repeat runs each callable in turn: ``warm`` untimed
    calls, then ``block`` timed consecutive calls (an int, or a count per name), whose
    time / ``block`` is that repeat's time per call.  Ratios are medians over the repeats of
    the per-repeat ratios: ``{name}_ratio`` = t_name / t_npevograd (the first baseline),
    ``{name}_over_{base}`` = t_name / t_base for any further baseline.
    """
    blocks = {name: block[name] if isinstance(block, dict) else block for name in fns}
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            for _ in range(warm):
                fn()
            t0 = time.perf_counter()
            for _ in range(blocks[name]):
                fn()
            times[name].append((time.perf_counter() - t0) / blocks[name])
    out = {f"{name}_s": statistics.median(ts) for name, ts in times.items()}
    for k, base in enumerate(baselines):
        suffix = "_ratio" if k == 0 else f"_over_{base}"
        for name in fns:
            if name != base:
                out[f"{name}{suffix}"] = statistics.median(t / b for t, b in zip(times[name], times[base]))
    return out


def _jax() -> Any:
    try:
        import jax
        import jax.numpy as jnp
        from evosax import algorithms
    except ImportError:
        return None
    return jax, jnp, algorithms


def _torch() -> Any:
    try:
        import evotorch
        import torch
    except ImportError:
        return None
    return torch, evotorch


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
    jx = _jax()
    if jx is None:
        notes.append("evosax/jax not installed: skipped")
    else:
        learned_fns["evosax"] = _evosax_generation(jx, "SNES", n, d, lambda x: x[:, 0])
        paired_fns["evosax"] = _evosax_generation(jx, "Open_ES", n, d, lambda x: x[:, 0])
    tt = _torch()
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


# --------------------------------------------------------------------------- small d


def restarting(step: Callable[[], object], reset: Callable[[], object], every: int) -> Callable[[], object]:
    """``step()``, with ``reset()`` (back to the initial state) before every ``every``-th call.

    Thousands of timed generations would otherwise carry each loop into its converged phase
    (sigma near 1e-10, fitness values tied by rounding), a different workload from the start
    of a run and not the same one for every library.
    """
    calls = [0]

    def run() -> None:
        if calls[0] % every == 0:
            reset()
        calls[0] += 1
        step()

    return run


def bench_small(n: int, d: int, repeats: int, scan_generations: int, block: int) -> dict[str, Any]:
    import numpy as np

    import npevograd as ng

    rng = np.random.default_rng(1)
    eta_mu, eta_sigma = 1.0, (3 + np.log(d)) / (5 * np.sqrt(d))
    mu0, sigma0 = rng.uniform(-5, 5, d), np.full(d, 3.0)
    p = ng.Normal(mu0, sigma=sigma0, learn_sigma=True)
    estimator = ng.Mean(shaping=ng.nes_utilities)

    def rastrigin(x: Any) -> Any:
        return -(10.0 * x.shape[1] + np.sum(x**2 - 10.0 * np.cos(2 * np.pi * x), axis=1))

    def ours() -> None:  # the loop body of demos/snes_rastrigin.py
        x = p.sample(n, rng)
        natural = p.natural_gradient(estimator(rastrigin(x), x, p).grad)
        mu, sigma = p.params["mu"], p.params["sigma"]
        mu += eta_mu * n * natural["mu"]
        sigma *= np.exp(eta_sigma * n * natural["sigma"] / sigma)

    es = ng.algorithms.SNES(mu0, sigma0, popsize=n, rng=np.random.default_rng(3))

    def ask_tell() -> None:  # the same SNES through ng.algorithms (its paper's default rates)
        es.tell(rastrigin(es.ask()))

    def reset(*params: dict[str, Any]) -> Callable[[], None]:
        def put_back() -> None:
            for entries in params:
                entries["mu"][...], entries["sigma"][...] = mu0, sigma0

        return put_back

    floor_params = {"mu": mu0.copy(), "sigma": sigma0.copy()}
    mu_f, sigma_f = floor_params["mu"], floor_params["sigma"]
    utilities = np.asarray(ng.nes_utilities(np.arange(n, dtype=float)))  # by rank, fixed for n
    gen = np.random.default_rng(2)

    def floor() -> None:
        # the fewest NumPy calls: draw, fitness, argsort, one contraction of eps and eps^2, step
        eps = gen.standard_normal((n, d))
        x = mu_f + sigma_f * eps
        u = utilities[np.argsort(np.argsort(rastrigin(x)))]
        g = u @ np.concatenate([eps, eps * eps - 1], axis=1)
        mu_f[:] += sigma_f * g[:d]
        sigma_f[:] *= np.exp(0.5 * eta_sigma * g[d:])

    every = scan_generations  # the scan row runs this many generations from the initial state
    fns: dict[str, Callable[[], object]] = {
        "npevograd": restarting(ours, reset(p.params), every),
        "npevograd_asktell": restarting(ask_tell, reset(es.distribution.params), every),
        "floor": restarting(floor, reset(floor_params), every),
    }
    out: dict[str, Any] = {"n": n, "d": d, "notes": []}
    jx = _jax()
    if jx is None:
        out["notes"].append("evosax/jax not installed: skipped")
    else:
        generation, scan, compile_s = _evosax_small(jx, n, d, scan_generations)
        fns["evosax_jit"] = generation
        fns["evosax_scan"] = scan
        out["evosax_compile_s"] = compile_s
    tt = _torch()
    if tt is None:
        out["notes"].append("evotorch/torch not installed: skipped")
    else:
        fns["evotorch"] = _evotorch_small(tt, n, d, every)
    blocks = {name: 1 if name == "evosax_scan" else block for name in fns}  # one scan call: `every` generations
    out.update(alternate(fns, repeats, blocks, warm=1, baselines=("npevograd", "npevograd_asktell")))
    for key in [k for k in out if k.startswith("evosax_scan_")]:  # per generation
        out[key] /= scan_generations
    out["scan_generations"] = scan_generations
    out["block"] = block
    return out


Timed = Callable[[], object]


def _evosax_small(jx: Any, n: int, d: int, generations: int) -> tuple[Timed, Timed, dict[str, float]]:
    jax, jnp, algorithms = jx

    def rastrigin(x: Any) -> Any:
        return 10.0 * x.shape[1] + jnp.sum(x**2 - 10.0 * jnp.cos(2 * jnp.pi * x), axis=1)  # minimised

    strategy = algorithms.SNES(population_size=n, solution=jnp.zeros(d))
    params = strategy.default_params
    state0 = strategy.init(jax.random.key(0), jax.random.uniform(jax.random.key(1), (d,), minval=-5, maxval=5), params)

    def step(carry: Any, _: Any = None) -> Any:
        key, state = carry
        key, k_ask, k_tell = jax.random.split(key, 3)
        x, state = strategy.ask(k_ask, state, params)
        state, _ = strategy.tell(k_tell, x, rastrigin(x), state, params)
        return (key, state), None

    jit_step = jax.jit(lambda carry: step(carry)[0])
    jit_scan = jax.jit(lambda carry: jax.lax.scan(step, carry, None, length=generations)[0])
    initial = (jax.random.key(2), state0)
    carry = [initial]
    compile_s = {}
    for name, fn in (("jit", jit_step), ("scan", jit_scan)):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(initial))
        compile_s[name] = time.perf_counter() - t0

    def run_jit() -> None:
        carry[0] = jit_step(carry[0])
        jax.block_until_ready(carry[0])

    def run_scan() -> None:  # `generations` generations from the initial state
        jax.block_until_ready(jit_scan(initial))

    return restarting(run_jit, lambda: carry.__setitem__(0, initial), generations), run_scan, compile_s


def _evotorch_small(tt: Any, n: int, d: int, every: int) -> Callable[[], object]:
    torch, evotorch = tt
    from evotorch.algorithms import SNES
    from evotorch.decorators import vectorized

    @vectorized
    def rastrigin(x: Any) -> Any:
        return 10.0 * x.shape[1] + torch.sum(x**2 - 10.0 * torch.cos(2 * torch.pi * x), dim=1)

    problem = evotorch.Problem("min", rastrigin, solution_length=d, initial_bounds=(-5.0, 5.0), dtype=torch.float64)
    searcher = SNES(problem, popsize=n, stdev_init=3.0)
    initial = searcher._distribution  # its updates return new distribution objects: this one stays as it was

    def put_back() -> None:
        searcher._distribution = initial

    return restarting(searcher.step, put_back, every)


# --------------------------------------------------------------------------- sampling and import


def bench_sampling(n: int, d: int, repeats: int) -> dict[str, Any]:
    import numpy as np

    import npevograd as ng

    p = ng.Normal(np.zeros(d, dtype=np.float32), np.full(d, 0.1, dtype=np.float32))
    rng = np.random.default_rng(0)
    fns: dict[str, Callable[[], object]] = {"npevograd": lambda: p.sample(n, rng)}
    out: dict[str, Any] = {"n": n, "d": d, "dtype": "float32"}
    tt = _torch()
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
        "bytecode": "cached for both (PYTHONPYCACHEPREFIX, warm-up import)",
        "goal": "at most 1.5",
    }


# --------------------------------------------------------------------------- driver

SIZES = {
    "quick": {"highd": (200, 100_000), "small": (50, 500), "repeats": 5, "small_repeats": 20, "block": 20,
              "scan": 100},
    "full": {"highd": (1000, 100_000), "small": (50, 500), "repeats": 7, "small_repeats": 40, "block": 50,
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


def report(results: dict[str, Any]) -> str:
    lines = ["ratios: peer time / npevograd time (above 1: npevograd faster); medians of alternating repeats"]
    if "import" in results:
        r = results["import"]
        lines.append(f"import: numpy {r['numpy_s'] * 1e3:.0f} ms, npevograd {r['npevograd_s'] * 1e3:.0f} ms, "
                     f"ratio {r['npevograd_over_numpy']:.2f} (goal <= 1.5)")
    for cores, run in results.get("runs", {}).items():
        lines.append(f"-- {cores} ({run['cores']} core(s) usable)")
        h = run.get("highd")
        for key in ("learned_sigma", "fixed_sigma_antithetic") if h else ():
            r = h[key]
            peers = ", ".join(f"{k[:-6]} {v:.2f}x" for k, v in r.items() if k.endswith("_ratio"))
            lines.append(f"high-d {key} n={h['n']} d={h['d']}: npevograd {r['npevograd_s'] * 1e3:.0f} ms; {peers}")
        for r in run.get("small", []):
            peers = ", ".join(f"{k[:-6]} {v:.2f}x" for k, v in r.items() if k.endswith("_ratio"))
            lines.append(f"small n={r['n']} d={r['d']}: npevograd {r['npevograd_s'] * 1e6:.0f} us; {peers}"
                         " (floor: ratio < 1 = how far above the fewest-calls floor)")
            if "npevograd_asktell_s" in r:
                peers = ", ".join(f"{k[:-23]} {v:.2f}x" for k, v in r.items() if k.endswith("_over_npevograd_asktell"))
                ask_tell = r["npevograd_asktell_s"] * 1e6
                lines.append(f"  ask/tell n={r['n']}: npevograd algorithms.SNES {ask_tell:.0f} us; {peers}")
        s = run.get("sampling")
        if s:
            peers = ", ".join(f"{k[:-6]} {v:.2f}x" for k, v in s.items() if k.endswith("_ratio"))
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
    results: dict[str, Any] = {"mode": mode, "runs": {}}
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
