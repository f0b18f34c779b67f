"""MaxVar (Evolvability ES): mu moves to where the behaviour varies most.

Port of EvoGrad's ``demos/max_var_interference.py`` with its settings.  The
behaviour b(x) = 5 sin(0.2 x) sin(20 x) is z-scored over the population and
the estimator ascends the variance of the z-scores (Gajewski et al. 2019):

    J = (1/n) sum_i z_i^2 r_i,    grad_mu = (1/n) sum_i z_i^2 (x_i - mu) / sigma^2

Samples whose behaviour is far from the mean pull mu towards them, so mu climbs
to the envelope's peak 5 sin(0.2 x) = 5 at x = 2.5 pi = 7.85 (EvoGrad over 5
seeds: 7.74 to 7.90).  The reported objective is the raw behaviour variance
var(b), which is what the update increases (the z-scored value is always
(n - 1)/n).  The loop is ``ng.algorithms.EvolvabilityES(kind="variance")``: Normal(mu, sigma),
the estimator and SGD(lr), the same draws and steps as writing them out.
Run ``python demos/max_var_interference.py --help``.
"""

from __future__ import annotations

import numpy as np
from _common import MuTrace, gaussian_1d_args
from _common import interference as behaviour

import npevograd as ng

NAME = "max_var_interference"


def main(argv: list[str] | None = None) -> dict:
    """Run the demo; returns final mu, the last var b(x) and the history."""
    args = gaussian_1d_args(__doc__, argv, lr=0.03)
    rng = np.random.default_rng(args.seed)
    es = ng.algorithms.EvolvabilityES(
        np.array([args.mu0]), args.sigma, popsize=args.population, rng=rng, kind="variance", lr=args.lr
    )  # Normal(mu0, sigma), Variance(), SGD(lr)
    trace = MuTrace(NAME, args, "var b(x)")
    for t in range(1, args.steps + 1):
        x = es.ask()
        b = behaviour(x[:, 0])
        es.tell(b)
        trace.record(t, es.mean[0], float(b.var(ddof=1)))
    return trace.finish()


if __name__ == "__main__":
    main()
