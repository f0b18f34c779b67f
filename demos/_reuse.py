"""What the two reuse demos share: the pooled generation loop, its flags and the with/without comparison.

Each generation draws ``--population`` new samples from p, stores them with their
values and a snapshot of p in an ``ng.ReuseBuffer`` of the last k generations, and
steps along the gradient of the estimator on the pooled samples, reweighted by
rho_i = p(x_i) / q(x_i) with q the balance-heuristic mixture of the stored
generations' distributions.  ``--reuse 1`` is the plain loop.
"""

from __future__ import annotations

import argparse
from typing import Callable

import numpy as np
from _common import Run, demo_parser, parse

import npevograd as ng
from npevograd.optim import SGD


def reuse_args(doc: str, argv: list[str] | None, *, steps: int, population: int, reuse: int, lr: float,
               target: float) -> argparse.Namespace:
    """The flags of the reuse demos (a 1-D Gaussian N(mu0, 0.5^2)), with these defaults."""
    p = demo_parser(doc, steps=steps)
    p.add_argument(
        "--population", type=int, default=population, help=f"new samples per generation (default {population})"
    )
    p.add_argument("--reuse", type=int, default=reuse, help=f"generations pooled, k (default {reuse}; 1: no reuse)")
    p.add_argument("--sigma", type=float, default=0.5, help="search std (default 0.5)")
    p.add_argument("--mu0", type=float, default=1.0, help="initial mu (default 1.0)")
    p.add_argument("--lr", type=float, default=lr, help=f"learning rate (default {lr})")
    p.add_argument("--target", type=float, default=target, help=f"target |mu - optimum| (default {target})")
    p.add_argument("--compare", type=int, default=0, help="also compare with plain ES over N seeds (default 0)")
    args = parse(p, argv, print_every=max(1, steps // 6))
    if args.reuse < 1 or args.population < 2:
        p.error(f"--reuse must be >= 1 and --population >= 2, got {args.reuse} and {args.population}")
    return args


def pooled_run(name: str, args: argparse.Namespace, estimator: ng.Estimator, values_of: Callable,
               optimum: float, objective_label: str) -> dict:
    """One run of the pooled loop; returns the demo's result dict with the evaluation counts."""
    rng = np.random.default_rng(args.seed)
    p = ng.Normal(np.array([args.mu0]), sigma=args.sigma)
    opt = SGD(p, lr=args.lr)
    buffer = ng.ReuseBuffer(k=args.reuse)
    trace = Run(name, args)
    mus, objective, ess, reached = [args.mu0], [], [], None
    for t in range(1, args.steps + 1):
        x = p.sample(args.population, rng)
        buffer.add(x, values_of(x[:, 0]), p)
        estimate = estimator(buffer.values, buffer.x, p, log_proposal=buffer.log_proposal)
        opt.step(estimate.grad)
        mus.append(float(p.mu[0]))
        objective.append(float(estimate.value))
        ess.append(estimate.ess)
        if reached is None and abs(mus[-1] - optimum) < args.target:
            reached = t * args.population
        trace.progress(t, f"mu {mus[-1]:8.4f}  {objective_label} {objective[-1]:9.4f}  ess {ess[-1]:6.1f}")
    tail = np.abs(np.array(mus[-max(1, args.steps // 5):]) - optimum)
    trace.say(f"|mu - {optimum:.4g}| < {args.target} after {reached} evaluations" if reached else "target not reached")
    return trace.result(
        final=mus[-1], final_label="mu", objective=objective[-1], objective_label=objective_label,
        history={"mu": np.array(mus), "objective": np.array(objective), "ess": np.array(ess)},
        evaluations=args.steps * args.population, evaluations_to_target=reached, end_error=float(tail.mean()),
    )


def compare(name: str, args: argparse.Namespace, run: Callable[[argparse.Namespace], dict],
            plain_population: int) -> list[dict]:
    """Median evaluations to the target and median end state over ``--compare`` seeds, three settings."""
    settings = [
        (f"plain ES, {plain_population} samples", plain_population, 1),
        (f"plain ES, {args.population} samples", args.population, 1),
        (f"reuse k={args.reuse}, {args.population} new samples", args.population, args.reuse),
    ]
    rows = []
    for label, population, k in settings:
        overrides = {"population": population, "reuse": k, "print_every": 0}
        runs = [run(argparse.Namespace(**{**vars(args), **overrides, "seed": s})) for s in range(args.compare)]
        reached = [r["evaluations_to_target"] for r in runs if r["evaluations_to_target"] is not None]
        row = {
            "setting": label, "reached": len(reached), "seeds": args.compare,
            "median_evaluations": float(np.median(reached)) if len(reached) == args.compare else None,
            "median_end_error": float(np.median([r["end_error"] for r in runs])),
        }
        rows.append(row)
        print(f"[{name}] {label}: target reached in {row['reached']}/{row['seeds']} seeds, median "
              f"{row['median_evaluations']} evaluations, median end |mu - optimum| {row['median_end_error']:.4f}")
    return rows
