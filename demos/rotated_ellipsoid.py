"""CMA-ES minimises the 20-D rotated ellipsoid to f < 1e-8 in one call to npevograd.optimize.

    f(x) = sum_i 10^(6 (i - 1) / (d - 1)) (R x)_i^2,   R a random rotation (from --seed)

condition number 1e6, minimum 0 at x = 0, start x0 = (1, ..., 1), sigma0 = 1.  The run
stops at ``ftarget`` (or another of pycma's criteria); progress lines as pycma's.  With
``--cma`` and pycma installed, pycma's CMA-ES runs the same problem and its evaluation
count is printed beside ours (seed 0: npevograd's CMAES 13,428 evaluations, pycma 12,888;
``--method xnes``: 36,396).  Run ``python demos/rotated_ellipsoid.py --help``.
"""

from __future__ import annotations

import numpy as np
from _common import Run, demo_parser, parse

import npevograd as ng

NAME = "rotated_ellipsoid"


def rotated_ellipsoid(d: int, seed: int):
    """f(x) for a population x (m, d), with its rotation drawn from ``seed``."""
    rotation, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    scales = 1e6 ** (np.arange(d) / (d - 1))
    return lambda x: np.sum(scales * (x @ rotation.T) ** 2, axis=1)


def main(argv: list[str] | None = None) -> dict:
    parser = demo_parser(__doc__, steps=100_000)
    parser.add_argument("--dim", type=int, default=20, help="dimension (default 20)")
    parser.add_argument("--method", default="cmaes", help="optimize's method (default cmaes)")
    parser.add_argument("--ftarget", type=float, default=1e-8, help="target f (default 1e-8)")
    parser.add_argument("--cma", action="store_true", help="also run pycma's CMA-ES (if installed)")
    args = parse(parser, argv, print_every=500)
    run = Run(NAME, args)
    fitness = rotated_ellipsoid(args.dim, args.seed)
    best: list[float] = []
    result = ng.optimize(
        fitness,
        np.ones(args.dim),
        1.0,
        method=args.method,
        ftarget=args.ftarget,
        maxiter=args.steps,
        rng=args.seed,
        verbose=args.print_every,
        callback=lambda es: best.append(es.best.fitness),
    )
    run.say(f"{args.method}: f = {result.fbest:.3g} after {result.evaluations} evaluations, stop {result.stop}")
    extras = {"evaluations": result.evaluations, "stop": result.stop}
    if args.cma:
        extras["cma_evaluations"] = cma_evaluations(fitness, args)
        run.say(f"pycma's CMA-ES: {extras['cma_evaluations']} evaluations to the same target")
    return run.minimised(result.fbest, best, result.generations, **extras)


def cma_evaluations(fitness, args) -> int | None:
    """pycma's evaluations to ``--ftarget`` on the same function and start, None without pycma."""
    try:
        import cma
    except ImportError:
        return None
    es = cma.CMAEvolutionStrategy(
        np.ones(args.dim), 1.0, {"ftarget": args.ftarget, "verbose": -9, "seed": args.seed + 1}
    )
    while not es.stop():
        x = es.ask()
        es.tell(x, fitness(np.array(x)).tolist())
    return int(es.result.evaluations)


if __name__ == "__main__":
    main()
