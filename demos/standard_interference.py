"""Plain ES on the interference function: mu stays where it started.

Port of EvoGrad's ``demos/standard_interference.py`` with its settings.  The
fitness f(x) = 5 sin(0.2 x) sin(20 x) oscillates with period 0.31, far below
the search width sigma = 0.5, so the z-scored fitness of N(mu, 0.5^2)
samples is almost uncorrelated with x - mu: the mean-fitness gradient

    grad_mu = (1/n) sum_i z_i (x_i - mu) / sigma^2,    z = zscore(f(x))

is noise around zero, and mu (from 1.0, learning rate 0.03, 500 samples, 2000
steps) wanders near its start (EvoGrad over 5 seeds: 0.67 to 1.02).
Run ``python demos/standard_interference.py --help``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import npevograd as ng
from npevograd.optim import SGD

NAME = "standard_interference"


def fitness(x: np.ndarray) -> np.ndarray:
    """f(x) = 5 sin(0.2 x) sin(20 x)."""
    return 5.0 * np.sin(0.2 * x) * np.sin(20.0 * x)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=2000, help="generations (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--population", type=int, default=500, help="samples per step (default 500)")
    parser.add_argument("--sigma", type=float, default=0.5, help="search std (default 0.5)")
    parser.add_argument("--mu0", type=float, default=1.0, help="initial mu (default 1.0)")
    parser.add_argument("--lr", type=float, default=0.03, help="learning rate (default 0.03)")
    parser.add_argument("--print-every", type=int, default=100, help="progress every N steps, 0: quiet")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Run the demo; returns final mu, the last mean f(x) and the history."""
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    p = ng.Normal(np.array([args.mu0]), sigma=args.sigma)
    opt = SGD(p, lr=args.lr)
    estimator = ng.Mean(shaping=ng.zscore)
    mus, objective = [args.mu0], []
    start = time.perf_counter()
    for t in range(1, args.steps + 1):
        x = p.sample(args.population, rng)
        f = fitness(x[:, 0])
        estimate = estimator(f, x, p)
        opt.step(estimate.grad)
        mus.append(float(p.params["mu"][0]))
        objective.append(float(f.mean()))
        if args.print_every and (t % args.print_every == 0 or t == args.steps):
            print(f"[{NAME}] step {t:5d}  mu {mus[-1]:8.4f}  mean f(x) {objective[-1]:9.4f}", flush=True)
    return {
        "name": NAME,
        "final": mus[-1],
        "final_label": "mu",
        "objective": objective[-1],
        "objective_label": "mean f(x)",
        "history": {"mu": np.array(mus), "objective": np.array(objective)},
        "seed": args.seed,
        "steps": args.steps,
        "seconds": time.perf_counter() - start,
    }


if __name__ == "__main__":
    main()
