"""The small loop: d = 10 SNES and CMA-ES generations (n = 10, 50, 500) in npevograd and its peers (issue 24).

    python benchmarks/peers_small.py            # pinned to one core, n = 10, 50, 500, both tables
    python benchmarks/peers_small.py --quick    # fewer repeats
    python benchmarks/peers_small.py --algorithm cmaes  # one table (snes, cmaes or both)
    python benchmarks/peers.py --sections small # the SNES rows inside peers.py (one core and all cores)
    python benchmarks/peers_small.py --strategies SNES,PGPE,CMAES  # each strategy's ask/tell alone

Rows, timed alternating side by side in one process (``peers.py`` gives the method: blocks of
consecutive calls, restarts every ``scan`` generations).  SNES table: ``npevograd_asktell``, a generation of
``ng.algorithms.SNES`` (``es.tell(f(es.ask()))``); ``npevograd``, the same SNES written by hand
with the public distribution and estimator; ``floor``, the fewest NumPy calls the same
generation needs (``floor`` below: draw, shift and scale, fitness, ranks, one contraction of
eps and eps^2 - 1, the two steps); evosax's ``jax.jit`` of ask + evaluate + tell and its whole
loop in one ``jax.lax.scan`` (per generation); EvoTorch's ``SNES.step()``.  CMA-ES table:
``npevograd_asktell``, a generation of ``ng.algorithms.CMAES`` (its defaults: active weights, the lazy
eigendecomposition, every generation at d = 10); ``floor``, the same generation in the fewest NumPy calls
(``CMAFloor``: checked to make CMAES's numbers from the same draws); evosax's ``CMA_ES`` (jit and scan, as for
SNES; it decomposes C every generation); pycma's ``CMAEvolutionStrategy`` ask/tell.  A restart takes a new
npevograd or pycma strategy built before the timing.  Goals (issue 24): evosax jit / ask-tell >= 1.5,
ask-tell / floor <= 1.5.  Run by itself the script pins its process to one core before NumPy or JAX loads
(so BLAS and XLA see one CPU).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable

from _peers import alternate, load_evotorch, load_jax
from _timing import fmt_iqr, machine


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


def bench_small(
    n: int, d: int, repeats: int, scan_generations: int, block: int, clock: Callable[[], float] = time.perf_counter
) -> dict[str, Any]:
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
        # the fewest NumPy calls a SNES generation needs: draw, shift and scale, fitness, ranks (two argsorts),
        # one contraction of [eps, eps^2 - 1] with the utilities, the mu and sigma steps
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
    jx = load_jax()
    if jx is None:
        out["notes"].append("evosax/jax not installed: skipped")
    else:
        generation, scan, compile_s = _evosax_small(jx, n, d, scan_generations)
        fns["evosax_jit"] = generation
        fns["evosax_scan"] = scan
        out["evosax_compile_s"] = compile_s
    tt = load_evotorch()
    if tt is None:
        out["notes"].append("evotorch/torch not installed: skipped")
    else:
        fns["evotorch"] = _evotorch_small(tt, n, d, every)
    return _timed(out, fns, repeats, block, scan_generations, ("npevograd", "npevograd_asktell"), clock)


Timed = Callable[[], object]


def _evosax_small(
    jx: Any, n: int, d: int, generations: int, algorithm: str = "SNES", std_init: float | None = None
) -> tuple[Timed, Timed, dict[str, float]]:
    """evosax's ``algorithm`` (default params; ``std_init`` if given): one jitted generation, and a ``lax.scan``."""
    jax, jnp, algorithms = jx

    def rastrigin(x: Any) -> Any:
        return 10.0 * x.shape[1] + jnp.sum(x**2 - 10.0 * jnp.cos(2 * jnp.pi * x), axis=1)  # minimised

    strategy = getattr(algorithms, algorithm)(population_size=n, solution=jnp.zeros(d))
    params = strategy.default_params
    if std_init is not None:
        params = params.replace(std_init=jnp.asarray(std_init))
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


def bench_strategies(
    names: list[str], popsizes: list[int], d: int = 10, repeats: int = 5, generations: int = 300
) -> str:
    """Each strategy's ``es.tell(sphere(es.ask()))`` at d from one start: best of ``repeats`` blocks, per generation.

    The shared ask/tell layer's cost beside each strategy's own (no peer: a before/after check
    of a change, run on both checkouts in turn).
    """
    import numpy as np

    import npevograd as ng

    def sphere(x: Any) -> Any:
        return -np.sum((x - 1.0) ** 2, axis=1)

    lines = []
    for name in names:
        for n in popsizes:
            es = getattr(ng.algorithms, name)(np.zeros(d), 1.0, popsize=n, rng=1)
            start = {k: v.copy() for k, v in es.distribution.params.items()}
            best = math.inf
            for _ in range(repeats):
                for k, v in start.items():
                    es.distribution.params[k][...] = v
                t0 = time.process_time()
                for _ in range(generations):
                    es.tell(sphere(es.ask()))
                best = min(best, (time.process_time() - t0) / generations)
            lines.append(f"{name} n={n} d={d}: {best * 1e6:.0f} us")
    return "\n".join(lines)


class CMAFloor:
    """The fewest NumPy calls of one generation of npevograd's default ``CMAES`` (active weights, lazy eigh).

    The tutorial's generation (``npevograd/algorithms/cmaes.py``'s docstring) with the constants of a freshly built
    ``es`` (read once here: its weights, rates, damping and eigendecomposition gap), each piece in its cheapest
    known form: draw z, y = z (BD)^T, x = m + sigma y, the fitness (maximised), one argsort, z and y in rank
    order, the weighted recombination of the mu best, p_sigma with C^{-1/2} <y>_w = B <z>_w, h_sigma, p_c, the
    rank-mu plus rank-one update of C (negative weights scaled by d / ||z_i||^2; BLAS ``dgemm`` with beta = the
    decay, then ``dger``, on the transposes), sigma (CSA, capped at a factor e), and every
    ``max(1, ceil(lazy_gap))`` generations C made symmetric and eigendecomposed (LAPACK ``dsyevd``).  Nothing
    else: no checks, no gradient estimate, no bookkeeping.  Drawn from ``rng`` as ``CMAES`` draws from its own,
    so from the same seed it is the same run (``tests/test_cma_small_loop.py``).
    """

    def __init__(self, es: Any, rng: Any) -> None:
        import numpy as np
        from scipy.linalg import blas, lapack

        self.dgemm, self.dger, self.dsyevd = blas.dgemm, blas.dger, lapack.dsyevd
        n, d, mu = es.popsize, es.dim, es.mu
        self.n, self.d, self.mu = n, d, mu
        weights = np.asarray(es.weights, dtype=float)
        self.w_parents = weights[:mu].copy()
        self.rank_mu_rates = es.c_mu * weights  # c_mu w_i by rank; the negative ones replaced in each step
        self.negative_rates = d * self.rank_mu_rates[mu:]  # d c_mu w_i, for d c_mu w_i / ||z_i||^2
        self.c_1, self.c_m, self.chi_d = es.c_1, es.c_m, es.chi_d
        self.cs_keep, self.cc_keep = 1 - es.c_sigma, 1 - es.c_c
        self.cs_factor = math.sqrt(es.c_sigma * (2 - es.c_sigma) * es.mueff)
        self.cc_factor = math.sqrt(es.c_c * (2 - es.c_c) * es.mueff)
        self.cs_over_ds = es.c_sigma / es.d_sigma
        self.h_bound = 2 + 4 / (d + 1)
        self.decay = 1 - es.c_1 - es.c_mu * weights.sum()  # h_sigma = 1
        self.decay_stalled = self.decay + es.c_1 * es.c_c * (2 - es.c_c)  # h_sigma = 0
        self.gap = max(1, math.ceil(es.lazy_gap))
        self.rng = rng
        self.m0, self.sigma0 = es.mean, es.sigma
        self.reset()

    def reset(self) -> None:
        """Back to the initial state: m, sigma as given, C = B = I, D = 1, the paths 0, generation 0."""
        import numpy as np

        d = self.d
        self.m, self.sigma, self.g = self.m0.copy(), self.sigma0, 0
        self.C, self.B, self.BD = np.eye(d), np.eye(d), np.eye(d)
        self.p_sigma, self.p_c = np.zeros(d), np.zeros(d)

    def step(self, fitness: Callable[[Any], Any]) -> None:
        import numpy as np

        mu = self.mu
        z = self.rng.standard_normal((self.n, self.d))
        y = z @ self.BD.T
        order = np.argsort(-fitness(self.m + self.sigma * y), kind="stable")  # best first
        z, y = z[order], y[order]
        z_w, y_w = self.w_parents @ z[:mu], self.w_parents @ y[:mu]
        self.m = self.m + (self.c_m * self.sigma) * y_w
        self.p_sigma = self.cs_keep * self.p_sigma + self.cs_factor * (self.B @ z_w)
        ps_squared = float(self.p_sigma @ self.p_sigma)
        self.g += 1
        h_sigma = ps_squared / self.d < self.h_bound * (1 - self.cs_keep ** (2 * self.g))
        self.p_c = self.cc_keep * self.p_c + self.cc_factor * y_w if h_sigma else self.cc_keep * self.p_c
        rates = self.rank_mu_rates.copy()
        np.divide(self.negative_rates, np.einsum("ij,ij->i", z[mu:], z[mu:]), out=rates[mu:])
        y_t = y.T
        decay = self.decay if h_sigma else self.decay_stalled
        c_t = self.dgemm(1.0, y_t * rates, y_t, beta=decay, c=self.C.T, trans_b=1)  # (decay C + Y^T R Y)^T
        self.C = self.dger(self.c_1, self.p_c, self.p_c, a=c_t, overwrite_a=1).T  # + c_1 p_c p_c^T
        self.sigma *= math.exp(min(1.0, self.cs_over_ds * (math.sqrt(ps_squared) / self.chi_d - 1)))
        if self.g % self.gap == 0:
            self.C = (self.C + self.C.T) / 2
            eigenvalues, self.B, _ = self.dsyevd(self.C.T, compute_v=1, lower=1)
            self.BD = self.B * np.sqrt(eigenvalues)


def bench_small_cmaes(
    n: int, d: int, repeats: int, scan_generations: int, block: int, clock: Callable[[], float] = time.perf_counter
) -> dict[str, Any]:
    """The CMA-ES table: npevograd ``CMAES`` ask/tell, its floor (``CMAFloor``), evosax ``CMA_ES`` and pycma."""
    import numpy as np

    import npevograd as ng

    mu0, sigma0 = np.random.default_rng(1).uniform(-5, 5, d), 3.0

    def rastrigin(x: Any) -> Any:
        return -(10.0 * x.shape[1] + np.sum(x**2 - 10.0 * np.cos(2 * np.pi * x), axis=1))

    every = scan_generations
    # a restart takes a new strategy (npevograd, pycma) built before the timing: enough for every call alternate makes
    restarts = (1 + repeats * (1 + block)) // every + 2

    def fresh(make: Callable[[int], Any]) -> Callable[[], Any]:
        pool = [make(seed) for seed in range(restarts)]
        return lambda: pool.pop() if pool else make(restarts)

    new_cmaes = fresh(lambda seed: ng.algorithms.CMAES(mu0, sigma0, popsize=n, rng=seed))
    es = [new_cmaes()]

    def ask_tell() -> None:
        es[0].tell(rastrigin(es[0].ask()))

    floor_es = CMAFloor(ng.algorithms.CMAES(mu0, sigma0, popsize=n), np.random.default_rng(2))
    fns: dict[str, Callable[[], object]] = {
        "npevograd_asktell": restarting(ask_tell, lambda: es.__setitem__(0, new_cmaes()), every),
        "floor": restarting(lambda: floor_es.step(rastrigin), floor_es.reset, every),
    }
    out: dict[str, Any] = {"n": n, "d": d, "notes": []}
    jx = load_jax()
    if jx is None:
        out["notes"].append("evosax/jax not installed: skipped")
    else:
        generation, scan, compile_s = _evosax_small(jx, n, d, scan_generations, "CMA_ES", sigma0)
        fns["evosax_jit"] = generation
        fns["evosax_scan"] = scan
        out["evosax_compile_s"] = compile_s
    try:
        import cma
    except ImportError:
        out["notes"].append("pycma (cma) not installed: skipped")
    else:
        options = {"popsize": n, "verbose": -9, "verb_disp": 0, "verb_log": 0, "maxiter": math.inf}
        new_pycma = fresh(lambda seed: cma.CMAEvolutionStrategy(mu0, sigma0, {**options, "seed": seed + 1}))
        pycma = [new_pycma()]

        def pycma_step() -> None:
            x = pycma[0].ask()
            pycma[0].tell(x, -rastrigin(np.asarray(x)))  # pycma minimises

        fns["pycma"] = restarting(pycma_step, lambda: pycma.__setitem__(0, new_pycma()), every)
    return _timed(out, fns, repeats, block, scan_generations, ("floor", "npevograd_asktell"), clock)


def _timed(
    out: dict[str, Any],
    fns: dict[str, Callable[[], object]],
    repeats: int,
    block: int,
    scan_generations: int,
    baselines: tuple[str, ...],
    clock: Callable[[], float],
) -> dict[str, Any]:
    """``alternate`` the rows (the scan row: one call of ``scan_generations`` generations), per generation."""
    blocks = {name: 1 if name == "evosax_scan" else block for name in fns}
    out.update(alternate(fns, repeats, blocks, warm=1, baselines=baselines, clock=clock))
    for key in [k for k in out if k.startswith("evosax_scan_")]:  # per generation (ratios' quartiles too)
        value = out[key]
        out[key] = [v / scan_generations for v in value] if isinstance(value, list) else value / scan_generations
    out["scan_generations"] = scan_generations
    out["block"] = block
    return out


SIZES = {
    "quick": {"popsizes": (10, 50, 500), "repeats": 15, "block": 20, "scan": 100},
    "full": {"popsizes": (10, 50, 500), "repeats": 40, "block": 50, "scan": 200},
}


def report(rows: list[dict[str, Any]]) -> str:
    """One line per popsize: times, then the goal ratios with their quartiles over the repeats."""
    lines = ["times per generation (median); ratios: medians of per-repeat ratios [first, third quartile]"]
    for r in rows:
        us = {k[:-2]: v * 1e6 for k, v in r.items() if k.endswith("_s") and k != "evosax_compile_s"}
        times = ", ".join(f"{k} {v:.0f} us" for k, v in us.items())
        lines.append(f"n={r['n']} d={r['d']}: {times}")
        base = "_over_npevograd_asktell"
        peers = (("evosax_jit", ">= 1.5"), ("evosax_scan", ""), ("evotorch", ""), ("pycma", ""), ("npevograd", ""))
        for peer, goal in peers:
            if peer + base in r:
                lines.append(f"  {peer} / ask-tell: {r[peer + base]:.2f}x {fmt_iqr(r[peer + base + '_iqr'])} {goal}")
        if "floor" + base in r:
            q1, q3 = r["floor" + base + "_iqr"]
            lines.append(f"  ask-tell / floor: {1 / r['floor' + base]:.2f}x {fmt_iqr([1 / q3, 1 / q1])} <= 1.5")
        lines += [f"  note: {note}" for note in r["notes"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and shorter blocks")
    parser.add_argument("--all-cores", action="store_true", help="do not pin to one core")
    parser.add_argument("--popsizes", default=None, help="comma-separated popsizes (default 10,50,500)")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall: time.perf_counter; cpu: time.process_time (CPU time of every thread: steadier on a busy machine)",
    )
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument(
        "--strategies",
        default=None,
        help="comma-separated npevograd strategies (e.g. SNES,PGPE,XNES): time their ask/tell on a sphere instead "
        "(CPU time, best of 5 x 300 generations; popsizes 10,50 unless given)",
    )
    parser.add_argument(
        "--algorithm",
        choices=("snes", "cmaes", "both"),
        default="both",
        help="the SNES table, the CMA-ES table (npevograd CMAES, its floor, evosax CMA_ES, pycma) or both",
    )
    args = parser.parse_args(argv)
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    if not args.all_cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # before NumPy or JAX loads
    if args.strategies:
        sizes = [int(m) for m in args.popsizes.split(",")] if args.popsizes else [10, 50]
        print(bench_strategies(args.strategies.split(","), sizes))
        return []
    size = SIZES["quick" if args.quick else "full"]
    popsizes = [int(m) for m in args.popsizes.split(",")] if args.popsizes else size["popsizes"]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"machine: {machine()}; {cores} core(s) usable; load average {os.getloadavg()[0]:.2f}", flush=True)
    print(f"clock: {args.clock}", flush=True)
    tables = {"snes": ("small", bench_small), "cmaes": ("small_cmaes", bench_small_cmaes)}
    chosen = list(tables) if args.algorithm == "both" else [args.algorithm]
    results: dict[str, Any] = {"machine": machine(), "cores": cores, "clock": args.clock}
    rows: list[dict[str, Any]] = []
    for algorithm in chosen:
        key, bench = tables[algorithm]
        rows = [bench(m, 10, size["repeats"], size["scan"], size["block"], clock) for m in popsizes]
        results[key] = rows
        print(f"{algorithm.upper()}, d = 10:\n{report(rows)}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return rows


if __name__ == "__main__":
    main()
