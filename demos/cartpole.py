"""ES on CartPole: a linear policy of 4 weights learns to balance the pole.

Port of EvoGrad's ``demos/cartpole.py``: the policy pushes right when
obs @ w > 0; policies are sampled from N(mu, 0.5^2 I) (population 50), each
is scored by its mean return over 10 episodes, the returns are z-scored and

    grad_mu = (1/n) sum_i z_i (w_i - mu) / sigma^2,    mu <- mu + 0.03 grad_mu

(plain ascent, as EvoGrad; ``--optimizer adam`` uses npevograd.optim.Adam).
Every generation's 50 x 10 episodes run at once in Gymnasium's vector
CartPole (``CartPoleVectorEnv``, 200-step episodes as CartPole-v0; see
``_cartpole.py``).  All policies of one generation see the same 10 start
states (common random numbers).  When every policy scores the same return the
z-score is undefined and the step is skipped.  The final figure is the mean
policy mu's return over 100 fresh episodes; the maximum is 200.  Run
``python demos/cartpole.py --help``.
"""

from __future__ import annotations

import argparse

import numpy as np
from _cartpole import episode_returns
from _common import Run, demo_parser, parse

import npevograd as ng
from npevograd.optim import SGD, Adam

NAME = "cartpole"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = demo_parser(__doc__, steps=2000)
    parser.add_argument("--population", type=int, default=50, help="policies per generation (default 50)")
    parser.add_argument("--sigma", type=float, default=0.5, help="search std (default 0.5)")
    parser.add_argument("--lr", type=float, default=0.03, help="learning rate (default 0.03)")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per policy (default 10)")
    parser.add_argument("--optimizer", choices=["sgd", "adam"], default="sgd", help="update rule (default sgd)")
    parser.add_argument(
        "--stop-at", type=float, default=None,
        help="stop once the population's mean return reaches this (default: run all steps)",
    )
    return parse(parser, argv, print_every=100)


def main(argv: list[str] | None = None) -> dict:
    """Run the demo; returns the mean policy's return, the population's and the history."""
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    p = ng.Normal(rng.standard_normal(4), sigma=args.sigma)  # mu ~ N(0, I), as EvoGrad
    opt = SGD(p, lr=args.lr) if args.optimizer == "sgd" else Adam(p, lr=args.lr)
    estimator = ng.Mean(shaping=ng.zscore)
    mus, mean_return = [p.params["mu"].copy()], []
    run = Run(NAME, args)
    t = 0
    for t in range(1, args.steps + 1):
        w = p.sample(args.population, rng)
        returns = episode_returns(w, seed=int(rng.integers(2**31)), episodes=args.episodes)
        if np.ptp(returns) > 0:  # all-equal returns: zscore undefined, no direction to move
            opt.step(estimator(returns, w, p).grad)
        mus.append(p.params["mu"].copy())
        mean_return.append(float(returns.mean()))
        last = t == args.steps or (args.stop_at is not None and mean_return[-1] >= args.stop_at)
        run.progress(t, f"population mean return {mean_return[-1]:7.2f}", last=last)
        if last:
            break
    final = float(episode_returns(p.params["mu"][None], seed=args.seed + 10**6, episodes=100)[0])
    run.say(f"mean policy mu = {np.round(p.params['mu'], 3)}  return {final:.1f} (100 episodes)")
    return run.result(
        final=final,
        final_label="return of mu",
        objective=mean_return[-1] if mean_return else float("nan"),
        objective_label="population mean return",
        history={"mu": np.array(mus), "objective": np.array(mean_return)},
        steps=t,
    )


if __name__ == "__main__":
    main()
