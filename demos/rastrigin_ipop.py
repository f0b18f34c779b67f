"""IPOP restarts of SNES solve 10-D Rastrigin, with a checkpoint to a pickle file and a resume from it.

    f(x) = 10 d + sum_i (x_i^2 - 10 cos(2 pi x_i)),   minimum 0 at x = 0, starts uniform in [-5, 5]^d

``Restarts`` (IPOP: the population doubles at each restart, Auger and Hansen 2005) runs SNES until
f < 1e-8 or the budget.  After ``--checkpoint-at`` generations the whole run (the current strategy,
the restart schedule, every generator) is pickled to a file and the run goes on from the file's copy,
as a restarted job would; ``--verify`` also runs it without the interruption and checks that both
end bit for bit the same.  Run ``python demos/rastrigin_ipop.py --help``.
"""

from __future__ import annotations

import os
import pickle
import tempfile

import numpy as np
from _common import Run, demo_parser, parse

from npevograd.algorithms import SNES, Restarts, StrategyFactory


def rastrigin(x: np.ndarray) -> np.ndarray:
    return 10 * x.shape[1] + np.sum(x**2 - 10 * np.cos(2 * np.pi * x), axis=1)


def restarts(args) -> Restarts:
    factory = StrategyFactory(SNES, sigma0=2.0, options={"minimize": True})  # picklable: checkpoints work
    x0 = np.random.default_rng(args.seed).uniform(-5, 5, args.dim)
    return Restarts(factory, x0, "ipop", box=(-5, 5), budget=args.budget, ftarget=1e-8, rng=args.seed)


def generations(job: Restarts, count: int, best: list[float], run: Run | None = None) -> None:
    """Up to ``count`` generations of ``job`` (fewer when it stops), recording the best f so far."""
    for _ in range(count):
        if job.stop():
            return
        job.tell(rastrigin(job.ask()))
        best.append(job.result.fbest)
        if run is not None:
            run.progress(len(best), f"run {len(job.runs) + 1} popsize {job.strategy.popsize:4d}  best f {best[-1]:.3e}")


def main(argv: list[str] | None = None) -> dict:
    parser = demo_parser(__doc__, steps=20_000)
    parser.add_argument("--dim", type=int, default=10, help="dimension (default 10)")
    parser.add_argument("--budget", type=int, default=1_000_000, help="total evaluations (default 1e6)")
    parser.add_argument("--checkpoint-at", type=int, default=300, help="generation of the checkpoint (default 300)")
    parser.add_argument("--verify", action="store_true", help="also run without the checkpoint and compare")
    args = parse(parser, argv, print_every=200)
    run = Run("rastrigin_ipop", args)
    job, best = restarts(args), []
    generations(job, min(args.checkpoint_at, args.steps), best, run)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "rastrigin_ipop.pickle")
        with open(path, "wb") as file:
            pickle.dump(job, file)
        del job  # the job "dies" here; it goes on from the file
        with open(path, "rb") as file:
            job = pickle.load(file)
        run.say(f"checkpoint after {len(best)} generations ({os.path.getsize(path)} bytes), resumed from it")
    generations(job, args.steps - len(best), best, run)
    result = job.result
    popsizes = [r.popsize for r in result.runs]
    run.say(f"f = {result.fbest:.3g} after {result.evaluations} evaluations, runs of popsize {popsizes}, {result.stop}")
    same = None
    if args.verify:
        straight = restarts(args)
        generations(straight, args.steps, [])
        same = straight.result.runs == result.runs and np.array_equal(straight.result.xbest, result.xbest)
        run.say(f"the uninterrupted run ends the same, bit for bit: {same}")
    return run.minimised(
        result.fbest, best, len(best), evaluations=result.evaluations, popsizes=popsizes, resumed_identically=same
    )


if __name__ == "__main__":
    main()
