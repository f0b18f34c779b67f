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
mu and J are labelled.)  The loop is ``ng.algorithms.EvolvabilityES(kind="entropy")``: Normal(mu, sigma),
the estimator and SGD(lr), the same draws and steps as writing them out.
Run ``python demos/max_ent_interference.py --help``.
"""

from __future__ import annotations

import numpy as np
from _common import MuTrace, gaussian_1d_args
from _common import interference as behaviour

import npevograd as ng

NAME = "max_ent_interference"


def main(argv: list[str] | None = None) -> dict:
    """Run the demo; returns final mu, the last entropy J and the history."""
    args = gaussian_1d_args(__doc__, argv, lr=0.10, bandwidth=1.0)
    rng = np.random.default_rng(args.seed)
    es = ng.algorithms.EvolvabilityES(
        np.array([args.mu0]), args.sigma, popsize=args.population, rng=rng, kind="entropy", lr=args.lr,
        bandwidth=args.bandwidth,
    )  # Normal(mu0, sigma), Entropy(bandwidth), SGD(lr)
    trace = MuTrace(NAME, args, "entropy J")
    for t in range(1, args.steps + 1):
        x = es.ask()
        b = behaviour(x[:, 0])
        es.tell(b)
        trace.record(t, es.mean[0], es.estimate.value)
    return trace.finish()


if __name__ == "__main__":
    main()
