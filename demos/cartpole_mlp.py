"""PGPE with ClipUp trains a 97-weight MLP policy for CartPole, its population evaluated on a process pool.

The policy 4 -> 16 (tanh) -> 1 pushes right when its output is > 0 (``_cartpole.mlp_returns``,
Gymnasium's vector CartPole, 200-step episodes).  A policy's fitness is its mean return over the
same ``--episodes`` start states (common random numbers: a row's return depends on that row
only, so every executor gives the same run).  One call: ``npevograd.optimize(..., method="pgpe",
optimizer="clipup", minimize=False, executor=ProcessPool(workers))``; its callback stops the run
once the mean policy returns the maximum, 200, on every training episode.  The final figure is the
mean policy's return over 100 fresh episodes.
Run ``python demos/cartpole_mlp.py --help``.
"""

from __future__ import annotations

import functools
from contextlib import nullcontext

import numpy as np
from _cartpole import MAX_STEPS, mlp_returns, mlp_size
from _common import Run, demo_parser, parse

import npevograd as ng
from npevograd.parallel import ProcessPool

NAME = "cartpole_mlp"


def main(argv: list[str] | None = None) -> dict:
    parser = demo_parser(__doc__, steps=200)
    parser.add_argument("--hidden", type=int, default=16, help="hidden units (default 16: 97 weights)")
    parser.add_argument("--population", type=int, default=20, help="policies per generation, even (default 20)")
    parser.add_argument("--sigma", type=float, default=0.1, help="initial search std (default 0.1)")
    parser.add_argument("--lr", type=float, default=0.15, help="ClipUp step size (default 0.15)")
    parser.add_argument("--episodes", type=int, default=5, help="episodes per policy (default 5)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes; 0: this process (default 2)")
    args = parse(parser, argv, print_every=10)
    run = Run(NAME, args)
    fitness = functools.partial(mlp_returns, seed=args.seed, episodes=args.episodes, hidden=args.hidden)
    returns: list[float] = []  # the mean policy's return after each generation, on the training episodes

    def solved(es) -> bool:
        """The callback: stop once the mean policy itself balances every training episode for 200 steps."""
        returns.append(float(fitness(es.mean[None])[0]))
        return returns[-1] >= MAX_STEPS

    with ProcessPool(args.workers) if args.workers else nullcontext() as pool:
        result = ng.optimize(
            fitness,
            np.zeros(mlp_size(args.hidden)),
            args.sigma,
            method="pgpe",
            minimize=False,
            optimizer="clipup",
            lr_mu=args.lr,
            popsize=args.population,
            maxiter=args.steps,
            executor=pool,
            rng=args.seed,
            verbose=args.print_every,
            callback=solved,
        )
    fresh = functools.partial(mlp_returns, seed=args.seed + 10**6, episodes=100, hidden=args.hidden)
    final, best = (float(r) for r in fresh(np.stack([result.mean, result.xbest])))
    run.say(
        f"{result.evaluations} evaluations, stop {result.stop}; on 100 fresh episodes the mean policy returns "
        f"{final:.1f}, the best sample {best:.1f}"
    )
    return run.result(
        final=final,
        final_label="return of mu",
        objective=returns[-1],
        objective_label="return of mu (training episodes)",
        history={"objective": np.array(returns)},
        steps=result.generations,
        evaluations=result.evaluations,
        best_policy_return=best,
    )


if __name__ == "__main__":
    main()
