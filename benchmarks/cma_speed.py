"""Per-generation time of CMA-ES and XNES (ask + tell, fitness excluded) against pycma and the ``cmaes`` package.

Each library runs the sphere with the same popsize (the default 4 + floor(3 ln d)); only ``ask`` and ``tell``
are timed (the fitness is computed between the two timed calls).  The libraries take turns: each repeat
runs ``block`` generations of each in turn, and every ``restart`` generations each starts again from the
same initial state (a new instance, not timed), so every library times the same phase of a run.  Ratios
are medians over the repeats of the per-repeat ratios, with [first, third] quartiles.

    python benchmarks/cma_speed.py                 # d = 10, 100, 1000: CMAES and XNES vs pycma and cmaes
    python benchmarks/cma_speed.py --sep           # SepCMAES vs SNES at d = 100,000: time and peak memory
    python benchmarks/cma_speed.py --same-gap      # CMAES and pycma with the same (purecma's) eigendecomposition gap
    python benchmarks/cma_speed.py --quick         # small repeats, for a smoke run
    python benchmarks/cma_speed.py --xnes-pieces --dims 1000   # the cost of each piece of an XNES generation

``OPENBLAS_NUM_THREADS=1`` before the command times every library on one core (on a busy machine OpenBLAS's
threads make every row noisy).

pycma's ``CMAEvolutionStrategy`` runs with ``verbose=-9`` and no logging; ``cmaes.CMA`` asks one sample per
call, as its API does.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import RESULTS, fmt_iqr, load, machine, peak_extra_bytes, quartiles, time_one  # noqa: E402

import npevograd as ng  # noqa: E402


def sphere(x: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", x, x)


class Runner:
    """One library's loop: ``generation()`` returns the seconds its ask + tell took (fitness not counted)."""

    def __init__(self, make: Callable[[], Any], step: Callable[[Any], float], restart: int) -> None:
        self.make, self.step, self.restart = make, step, restart
        self.state = make()
        self.count = 0

    def generations(self, k: int) -> float:
        total = 0.0
        for _ in range(k):
            if self.count and self.count % self.restart == 0:
                self.state = self.make()
            self.count += 1
            total += self.step(self.state)
        return total / k


def npevograd_step(es: Any) -> float:
    t0 = time.perf_counter()
    x = es.ask()
    t1 = time.perf_counter()
    f = sphere(x)
    t2 = time.perf_counter()
    es.tell(f)
    return (t1 - t0) + (time.perf_counter() - t2)


def pycma_step(es: Any) -> float:
    t0 = time.perf_counter()
    x = es.ask()
    t1 = time.perf_counter()
    f = [float(v) for v in sphere(np.asarray(x))]
    t2 = time.perf_counter()
    es.tell(x, f)
    return (t1 - t0) + (time.perf_counter() - t2)


def cmaes_step(opt: Any) -> float:
    t0 = time.perf_counter()
    xs = [opt.ask() for _ in range(opt.population_size)]
    t1 = time.perf_counter()
    f = sphere(np.asarray(xs))
    solutions = [(x, float(v)) for x, v in zip(xs, f)]
    t2 = time.perf_counter()
    opt.tell(solutions)
    return (t1 - t0) + (time.perf_counter() - t2)


def runners(d: int, restart: int, same_gap: bool) -> dict[str, Runner]:
    """The four loops; ``same_gap``: CMAES and pycma both decompose C every purecma gap, 0.5 / ((c_1 + c_mu) d)."""
    mean0 = np.full(d, 1.0)
    popsize = 4 + int(3 * np.log(d))
    probe = ng.algorithms.CMAES(mean0, 0.5)
    gap = 0.5 / ((probe.c_1 + probe.c_mu) * d) if same_gap else None

    def cma_es() -> Any:
        return ng.algorithms.CMAES(mean0, 0.5, rng=1, minimize=True, lazy_gap=gap)

    def x_nes() -> Any:
        return ng.algorithms.XNES(mean0, 0.5, rng=1)

    out = {"npevograd CMAES": Runner(cma_es, npevograd_step, restart)}
    if not same_gap:
        out["npevograd XNES"] = Runner(x_nes, npevograd_step_max, restart)
    try:
        import cma

        options = {"verbose": -9, "verb_disp": 0, "verb_log": 0, "seed": 1, "popsize": popsize}
        if same_gap:
            options["updatecovwait"] = gap

        def pycma() -> Any:
            return cma.CMAEvolutionStrategy(mean0, 0.5, options)

        out["pycma"] = Runner(pycma, pycma_step, restart)
    except ImportError:
        pass
    try:
        import cmaes

        def cmaes_cma() -> Any:
            return cmaes.CMA(mean=mean0, sigma=0.5, population_size=popsize, seed=1)

        if not same_gap:  # cmaes decomposes every generation: no gap to set
            out["cmaes"] = Runner(cmaes_cma, cmaes_step, restart)
    except ImportError:
        pass
    return out


def npevograd_step_max(es: Any) -> float:
    """XNES maximises: the negated sphere."""
    t0 = time.perf_counter()
    x = es.ask()
    t1 = time.perf_counter()
    f = -sphere(x)
    t2 = time.perf_counter()
    es.tell(f)
    return (t1 - t0) + (time.perf_counter() - t2)


def bench_dim(d: int, repeats: int, block: int, restart: int, same_gap: bool = False) -> dict[str, Any]:
    lanes = runners(d, restart, same_gap)
    for lane in lanes.values():
        lane.generations(2)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in lanes}
    for _ in range(repeats):
        for name, lane in lanes.items():
            times[name].append(lane.generations(block))
    row: dict[str, Any] = {"d": d, "popsize": 4 + int(3 * np.log(d))}
    row.update({f"{name}_ms": 1e3 * statistics.median(ts) for name, ts in times.items()})
    peers = [name for name in ("pycma", "cmaes") if name in times]
    for ours in [name for name in lanes if name.startswith("npevograd")]:
        for peer in peers:
            ratios = [p / o for p, o in zip(times[peer], times[ours])]
            row[f"{peer}/{ours}"] = statistics.median(ratios)
            row[f"{peer}/{ours}_iqr"] = quartiles(ratios)
        if peers:
            faster = [min(times[p][k] for p in peers) / times[ours][k] for k in range(repeats)]
            row[f"faster peer/{ours}"] = statistics.median(faster)
            row[f"faster peer/{ours}_iqr"] = quartiles(faster)
    return row


def bench_sep(d: int, repeats: int) -> dict[str, Any]:
    """SepCMAES vs SNES at the same popsize: per-generation time (alternating) and peak memory of one generation."""
    popsize = 4 + int(3 * np.log(d))
    sep = Runner(lambda: ng.algorithms.SepCMAES(np.ones(d), 0.5, rng=1, minimize=True), npevograd_step, 10**9)
    snes = Runner(lambda: ng.algorithms.SNES(np.ones(d), 0.5, rng=1), npevograd_step_max, 10**9)
    sep.generations(1)
    snes.generations(1)
    t_sep, t_snes = [], []
    for _ in range(repeats):
        t_sep.append(sep.generations(1))
        t_snes.append(snes.generations(1))
    population = popsize * d * 8

    def one_generation(es: Any) -> Callable[[], None]:
        def run() -> None:
            es.tell(-sphere(es.ask()) if not es.minimize else sphere(es.ask()))

        return run

    peak_sep = peak_extra_bytes(one_generation(sep.state))
    peak_snes = peak_extra_bytes(one_generation(snes.state))
    ratios = [a / b for a, b in zip(t_sep, t_snes)]
    return {
        "d": d,
        "popsize": popsize,
        "SepCMAES_ms": 1e3 * statistics.median(t_sep),
        "SNES_ms": 1e3 * statistics.median(t_snes),
        "SepCMAES/SNES": statistics.median(ratios),
        "SepCMAES/SNES_iqr": quartiles(ratios),
        "population_MB": population / 1e6,
        "SepCMAES_peak_MB": peak_sep / 1e6,
        "SNES_peak_MB": peak_snes / 1e6,
        "SepCMAES_peak/population": peak_sep / population,
    }


def xnes_pieces(d: int, repeats: int) -> dict[str, float]:
    """The median ms of each piece of one XNES generation (the full factor A, after 20 generations turned it).

    The pieces, as ``XNES.ask``/``_update``/``_full_step`` run them: sampling (z, y = z A^T, x = mu + y),
    ranking (the NES utilities), X = W Z Z^T with the 2n x 2n ``expm_taylor`` for phi(X), phi(X) W Z, A Z^T
    (timed for comparison only: the update reuses the sampling's Y = Z A^T), the
    rank-n ``dgemm`` s (A + Y^T phi W Z), the finiteness pass over the new A, the condition bound (eigenvalues
    of the n x n X), the mean step Y^T u; and the whole ask + tell for comparison.
    """
    from npevograd._checks import all_finite
    from npevograd.algorithms.xnes import _blas, expm_taylor

    es = ng.algorithms.XNES(np.ones(d), 0.5, rng=1)
    for _ in range(20):
        es.tell(-sphere(es.ask()))
    p, n, rng = es.distribution, es.popsize, np.random.default_rng(0)
    A, mu = p.params["factor"], p.params["mu"]
    z, y, x = p.draw(n, rng)
    f = -sphere(x)
    u = n * es.estimator.weights(f, n)[1]
    w_diag = 0.5 * es.lr_B * u
    x_small = (w_diag[:, None] * z) @ z.T
    block = np.zeros((2 * n, 2 * n))
    block[:n, :n], block[:n, n:] = x_small, np.eye(n)
    phi = expm_taylor(block)[:n, n:]
    right = (phi * w_diag[None, :]) @ z
    new_A = _blas("dgemm")(0.99, right, y, beta=0.99, c=A.T, trans_a=1).T

    def exponential() -> None:
        small = (w_diag[:, None] * z) @ z.T
        square = np.zeros((2 * n, 2 * n))
        square[:n, :n], square[:n, n:] = small, np.eye(n)
        expm_taylor(square)

    def generation() -> None:
        es.tell(-sphere(es.ask()))

    pieces = {
        "sampling": lambda: p.draw(n, rng),
        "ranking": lambda: es.estimator.weights(f, n),
        "n x n exp (X, phi)": exponential,
        "phi W Z": lambda: (phi * w_diag[None, :]) @ z,
        "A Z^T (not run: the kept Y^T)": lambda: A @ z.T,
        "rank-n dgemm (new A)": lambda: _blas("dgemm")(0.99, right, y, beta=0.99, c=A.T, trans_a=1),
        "finiteness of new A": lambda: all_finite(new_A),
        "condition bound (eigvals of X)": lambda: np.linalg.eigvals(x_small),
        "mean step Y^T u": lambda: mu + u @ y,
        "ask + tell": generation,
    }
    return {name: 1e3 * time_one(fn, repeats) for name, fn in pieces.items()}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dims", type=int, nargs="*", default=[10, 100, 1000])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--sep", action="store_true", help="SepCMAES vs SNES at d = 100,000 instead")
    parser.add_argument("--quick", action="store_true", help="few repeats (a smoke run)")
    parser.add_argument(
        "--same-gap",
        action="store_true",
        help="CMAES and pycma both eigendecompose every purecma gap 0.5 / ((c_1 + c_mu) d) generations",
    )
    parser.add_argument(
        "--xnes-pieces", action="store_true", help="the cost of each piece of one XNES generation at each d instead"
    )
    parser.add_argument("--save", action="store_true", help=f"write the results to {RESULTS}/cma_speed.json")
    args = parser.parse_args(argv)
    out: dict[str, Any] = {"machine": machine(), "load_before": load()}
    if args.xnes_pieces:
        out["xnes_pieces"] = {}
        for d in args.dims:
            pieces = out["xnes_pieces"][d] = xnes_pieces(d, 3 if args.quick else args.repeats)
            print(f"XNES at d = {d}: " + ", ".join(f"{k} {v:.3g} ms" for k, v in pieces.items()), flush=True)
    elif args.sep:
        out["sep"] = bench_sep(100_000 if not args.quick else 20_000, 3 if args.quick else args.repeats)
        print(json.dumps(out["sep"], indent=1))
    else:
        rows = []
        for d in args.dims:
            block = {10: 50, 100: 10, 1000: 10}.get(d, 5)
            restart = {10: 500, 100: 300, 1000: 100}.get(d, 100)
            repeats = 3 if args.quick else args.repeats
            row = bench_dim(d, repeats, 2 if args.quick else block, restart, args.same_gap)
            rows.append(row)
            print(format_row(row), flush=True)
        out["rows"] = rows
    out["load_after"] = load()
    print(f"machine: {out['machine']}; load average {out['load_before']:.2f} -> {out['load_after']:.2f}")
    if args.save:
        RESULTS.mkdir(exist_ok=True)
        name = "cma_speed_sep.json" if args.sep else "cma_speed_same_gap.json" if args.same_gap else "cma_speed.json"
        (RESULTS / name).write_text(json.dumps(out, indent=1))
    return out


def format_row(row: dict[str, Any]) -> str:
    ms = ", ".join(f"{k[:-3]} {v:.3g} ms" for k, v in row.items() if k.endswith("_ms"))
    ratios = "; ".join(
        f"{k} {v:.2f}x {fmt_iqr(row[k + '_iqr'])}" for k, v in row.items() if "/" in k and not k.endswith("_iqr")
    )
    return f"d = {row['d']}, popsize {row['popsize']}: {ms}\n    {ratios}"


if __name__ == "__main__":
    main()
