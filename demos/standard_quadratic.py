"""Plain ES on a quadratic: mu climbs to the maximum of f(x) = -(x - 5)^2.

Port of EvoGrad's ``demos/standard_quadratic.py`` with its settings: a 1-D
Gaussian N(mu, 0.5^2) starting at mu = 1, 500 samples per step, z-scored
fitness, gradient ascent with learning rate 0.03 for 2000 steps.  Each step

    grad_mu = (1/n) sum_i z_i (x_i - mu) / sigma^2,    z = zscore(f(x)),
    mu     <- mu + lr * grad_mu

and mu ends at 5.0.  Run ``python demos/standard_quadratic.py --help``.
"""

from __future__ import annotations

import numpy as np
from _common import MuTrace, gaussian_1d_args

import npevograd as ng
from npevograd.optim import SGD

NAME = "standard_quadratic"


def fitness(x: np.ndarray) -> np.ndarray:
    """f(x) = -(x - 5)^2, maximal at x = 5."""
    return -((x - 5.0) ** 2)


def main(argv: list[str] | None = None) -> dict:
    """Run the demo; returns final mu, the last mean fitness and the history."""
    args = gaussian_1d_args(__doc__, argv, lr=0.03)
    rng = np.random.default_rng(args.seed)
    p = ng.Normal(np.array([args.mu0]), sigma=args.sigma)
    opt = SGD(p, lr=args.lr)
    estimator = ng.Mean(shaping=ng.zscore)
    trace = MuTrace(NAME, args, "mean f(x)")
    for t in range(1, args.steps + 1):
        x = p.sample(args.population, rng)
        f = fitness(x[:, 0])
        opt.step(estimator(f, x, p).grad)
        trace.record(t, p.params["mu"][0], float(f.mean()))
    return trace.finish()


if __name__ == "__main__":
    main()
