"""MaxEnt (Evolvability ES): mu moves to where the behaviour is most diverse.

Port of EvoGrad's ``demos/max_ent_interference.py`` with its settings
(learning rate 0.10, kernel bandwidth 1.0).  On z-scored behaviours z_i of
b(x) = 5 sin(0.2 x) sin(20 x), with K_ij = exp(-(z_i - z_j)^2 / h^2), the
kernel-density entropy and its weights (outer and nested KDE terms) are

    phat_j = (1/n) sum_i K_ij,    J = (1/n) sum_j -log phat_j,
    w_i = (1/n) [ -log phat_i - (1/n) sum_j K_ij / phat_j ],
    grad_mu = sum_i w_i (x_i - mu) / sigma^2

and mu ends near 7.85, the envelope's peak.  The reported objective is the
entropy estimate J.  (EvoGrad's script prints mu under the word 'entropy'; here
mu and J are labelled.)  Run ``python demos/max_ent_interference.py --help``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import npevograd as ng
from npevograd.optim import SGD

NAME = "max_ent_interference"


def behaviour(x: np.ndarray) -> np.ndarray:
    """b(x) = 5 sin(0.2 x) sin(20 x)."""
    return 5.0 * np.sin(0.2 * x) * np.sin(20.0 * x)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=2000, help="generations (default 2000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--population", type=int, default=500, help="samples per step (default 500)")
    parser.add_argument("--sigma", type=float, default=0.5, help="search std (default 0.5)")
    parser.add_argument("--mu0", type=float, default=1.0, help="initial mu (default 1.0)")
    parser.add_argument("--lr", type=float, default=0.10, help="learning rate (default 0.10)")
    parser.add_argument("--bandwidth", type=float, default=1.0, help="kernel bandwidth h (default 1.0)")
    parser.add_argument("--print-every", type=int, default=100, help="progress every N steps, 0: quiet")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Run the demo; returns final mu, the last entropy J and the history."""
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    p = ng.Normal(np.array([args.mu0]), sigma=args.sigma)
    opt = SGD(p, lr=args.lr)
    estimator = ng.Entropy(bandwidth=args.bandwidth)
    mus, objective = [args.mu0], []
    start = time.perf_counter()
    for t in range(1, args.steps + 1):
        x = p.sample(args.population, rng)
        b = behaviour(x[:, 0])
        estimate = estimator(b, x, p)
        opt.step(estimate.grad)
        mus.append(float(p.params["mu"][0]))
        objective.append(estimate.value)
        if args.print_every and (t % args.print_every == 0 or t == args.steps):
            print(f"[{NAME}] step {t:5d}  mu {mus[-1]:8.4f}  entropy J {objective[-1]:9.4f}", flush=True)
    return {
        "name": NAME,
        "final": mus[-1],
        "final_label": "mu",
        "objective": objective[-1],
        "objective_label": "entropy J",
        "history": {"mu": np.array(mus), "objective": np.array(objective)},
        "seed": args.seed,
        "steps": args.steps,
        "seconds": time.perf_counter() - start,
    }


if __name__ == "__main__":
    main()
