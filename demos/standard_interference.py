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

import numpy as np
from _common import MuTrace, gaussian_1d_args
from _common import interference as fitness

import npevograd as ng
from npevograd.optim import SGD

NAME = "standard_interference"


def main(argv: list[str] | None = None) -> dict:
    """Run the demo; returns final mu, the last mean f(x) and the history."""
    args = gaussian_1d_args(__doc__, argv, lr=0.03)
    rng = np.random.default_rng(args.seed)
    p = ng.Normal(np.array([args.mu0]), sigma=args.sigma)
    opt = SGD(p, lr=args.lr)
    estimator = ng.Mean(shaping=ng.zscore)
    trace = MuTrace(NAME, args, "mean f(x)")
    for t in range(1, args.steps + 1):
        x = p.sample(args.population, rng)
        f = fitness(x[:, 0])
        estimate = estimator(f, x, p)
        opt.step(estimate.grad)
        trace.record(t, p.params["mu"][0], float(f.mean()))
    return trace.finish()


if __name__ == "__main__":
    main()
