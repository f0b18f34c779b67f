"""MaxEnt with sample reuse: the entropy of behaviours on the interference landscape, last k generations pooled.

As ``max_ent_interference.py`` (b(x) = 5 sin(0.2 x) sin(20 x), kernel bandwidth 1.0,
learning rate 0.10, N(mu, 0.5^2) from mu = 1), but each generation evaluates only
``--population`` (100) new samples and pools them with the previous k - 1 = 4
generations' (``ng.ReuseBuffer``, balance heuristic).  With ratios rho_i the kernel
density estimate and its nested term are rho-weighted:

    phat_j = (1/N) sum_i K_ij rho_i,    J = (1/N) sum_j -log(phat_j) rho_j,
    w_i = rho_i (1/N) [ -log phat_i - (1/N) sum_j K_ij rho_j / phat_j ]

The target is |mu - 2.5 pi| < ``--target`` (the envelope's peak); ``--compare N`` runs
plain MaxEnt with 500 and with ``--population`` samples and the pooled run, N seeds each.
Run ``python demos/reuse_max_ent.py --help``.
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import interference as behaviour
from _reuse import compare, pooled_run, reuse_args

import npevograd as ng

NAME = "reuse_max_ent"
OPTIMUM = 2.5 * np.pi


def run(args: argparse.Namespace) -> dict:
    """One run of the pooled loop with the kernel-density entropy."""
    return pooled_run(NAME, args, ng.Entropy(bandwidth=1.0), behaviour, OPTIMUM, "entropy J")


def main(argv: list[str] | None = None) -> dict:
    """Run the demo; returns final mu, the last entropy J, the history and the evaluation counts."""
    args = reuse_args(__doc__, argv, steps=1500, population=100, reuse=5, lr=0.10, target=0.35)
    result = run(args)
    if args.compare:
        result["comparison"] = compare(NAME, args, run, plain_population=500)
    return result


if __name__ == "__main__":
    main()
