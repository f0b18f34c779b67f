"""OneMax with Bernoulli bits: a product of 100 coin flips learns to output all ones.

A PBIL-like estimation-of-distribution algorithm (Baluja 1994) written as a
score-function gradient: x in {0,1}^100 is drawn from independent Bernoulli
bits with probabilities s = sigmoid(logits), the fitness is the number of ones,
f(x) = sum_j x_j, z-scored over the population, and the logits climb

    grad_logits = (1/n) sum_i z_i (x_i - s),    logits <- logits + lr * grad_logits

Starting from s = 1/2 everywhere (population 50, lr 1.0), every probability
goes to 1: the most likely string is all ones (f = 100) and nearly every sample
is.  When the whole population has equal fitness the step is skipped (z-score
undefined).  Run ``python demos/onemax_bernoulli.py --help``.
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import Run, demo_parser, parse

import npevograd as ng
from npevograd.optim import SGD

NAME = "onemax_bernoulli"


def onemax(x: np.ndarray) -> np.ndarray:
    """Number of ones in each row of x (n, d)."""
    return x.sum(axis=1)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = demo_parser(__doc__, steps=200)
    parser.add_argument("--bits", type=int, default=100, help="string length d (default 100)")
    parser.add_argument("--population", type=int, default=50, help="samples per step (default 50)")
    parser.add_argument("--lr", type=float, default=1.0, help="learning rate on the logits (default 1.0)")
    return parse(parser, argv, print_every=20)


def main(argv: list[str] | None = None) -> dict:
    """Run the demo; returns the fitness of the most likely string and the history."""
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    p = ng.Bernoulli(np.zeros(args.bits))
    opt = SGD(p, lr=args.lr)
    estimator = ng.Mean(shaping=ng.zscore)
    mode_f, mean_f, first_solved = [], [], None
    run = Run(NAME, args)
    for t in range(1, args.steps + 1):
        x = p.sample(args.population, rng)
        f = onemax(x)
        if np.ptp(f) > 0:
            opt.step(estimator(f, x, p).grad)
        mode_f.append(float(np.sum(p.params["logits"] > 0)))  # f of the most likely string
        mean_f.append(float(f.mean()))
        if first_solved is None and f.max() == args.bits:
            first_solved = t
        run.progress(
            t,
            f"f(most likely x) {mode_f[-1]:5.0f}  mean f(x) {mean_f[-1]:7.2f}  min P(x_j = 1) {p.probs.min():.4f}",
        )
    run.say(f"first all-ones sample at step {first_solved}")
    return run.result(
        final=mode_f[-1],
        final_label="f(most likely x)",
        objective=mean_f[-1],
        objective_label="mean f(x)",
        history={"mode_f": np.array(mode_f), "objective": np.array(mean_f)},
        first_solved=first_solved,
    )


if __name__ == "__main__":
    main()
