"""Sample reuse on the quadratic: each generation reuses the last k generations' samples through importance ratios.

Plain ES on f(x) = -(x - 5)^2 (as ``standard_quadratic.py``: 1-D Gaussian N(mu, 0.5^2)
from mu = 1, z-scored fitness), but each generation evaluates only ``--population`` (50)
new samples and pools them with the previous k - 1 = 9 generations' (``ng.ReuseBuffer``).
A pooled sample drawn by generation g is weighted by

    rho_i = p(x_i) / q(x_i),    log q(x) = logsumexp_g log p_g(x) - log k

(the balance heuristic over the stored generations' distributions), and the step is

    grad_mu = sum_i rho_i (dJ/dr_i at r = rho) (x_i - mu) / sigma^2,   J = (1/N) sum_i z_i r_i

``--reuse 1`` is plain ES.  The run counts evaluations until |mu - 5| first falls below
``--target``; the end state is the mean |mu - 5| over the last fifth of the steps.  The
learning rate is 0.2, not EvoGrad's 0.03: reuse pays when mu settles within a few steps
(here about one), since a pooled sample's noise enters k consecutive steps; with small
steps the noise is averaged over many steps anyway, and pooling gives about what plain
ES with the same new samples gives (docs/reuse.md has both measurements).
``--compare N`` runs plain ES with 500 and with ``--population`` samples and reuse, N seeds
each, and prints the median evaluations to the target and the median end state
(``main`` returns them under ``comparison``).
Run ``python demos/reuse_quadratic.py --help``.
"""

from __future__ import annotations

import argparse

import numpy as np
from _reuse import compare, pooled_run, reuse_args

import npevograd as ng

NAME = "reuse_quadratic"
OPTIMUM = 5.0


def fitness(x: np.ndarray) -> np.ndarray:
    """f(x) = -(x - 5)^2, maximal at x = 5."""
    return -((x - OPTIMUM) ** 2)


def run(args: argparse.Namespace) -> dict:
    """One run of the pooled loop with the z-scored mean fitness."""
    return pooled_run(NAME, args, ng.Mean(shaping=ng.zscore), fitness, OPTIMUM, "J (z-scored)")


def main(argv: list[str] | None = None) -> dict:
    """Run the demo; returns final mu, the last J, the history and the evaluation counts."""
    args = reuse_args(__doc__, argv, steps=150, population=50, reuse=10, lr=0.2, target=0.05)
    result = run(args)
    if args.compare:
        result["comparison"] = compare(NAME, args, run, plain_population=500)
    return result


if __name__ == "__main__":
    main()
