"""What the demo scripts share: the interference landscape, their flags, progress lines and result dict.

Each demo keeps its own math and its own generation loop (sample -> evaluate ->
estimate -> step); only the bookkeeping around that loop lives here.  Every
demo returns the same dict, which ``run_all.py`` and the tests read:

    name, final, final_label, objective, objective_label, history, [extras], seed, steps, seconds

with ``history["objective"]`` the objective of every generation.  The demos
import this file as ``_common``: ``python demos/x.py`` puts ``demos/`` on
``sys.path`` itself, and the loaders that import a demo by its path
(``run_all.load_demo``, the tests) put it there first.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def interference(x: np.ndarray) -> np.ndarray:
    """b(x) = 5 sin(0.2 x) sin(20 x): a ripple of period 0.31 under the envelope 5 sin(0.2 x), peak at 2.5 pi."""
    return 5.0 * np.sin(0.2 * x) * np.sin(20.0 * x)


def demo_parser(doc: str, *, steps: int) -> argparse.ArgumentParser:
    """A demo's parser, described by its docstring's first line, with the flags every demo opens with."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--steps", type=int, default=steps, help=f"generations (default {steps})")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    return parser


def parse(parser: argparse.ArgumentParser, argv: list[str] | None, *, print_every: int) -> argparse.Namespace:
    """Add the flag every demo closes with, ``--print-every``, and parse ``argv`` (None: the command line)."""
    parser.add_argument(
        "--print-every", type=int, default=print_every, help="progress every N steps, 0: quiet"
    )
    return parser.parse_args(argv)


def gaussian_1d_args(
    doc: str,
    argv: list[str] | None,
    *,
    lr: float,
    mu0: float | list[float] = 1.0,
    bandwidth: float | None = None,
    sigma_help: str = "search std",
) -> argparse.Namespace:
    """The flags of EvoGrad's 1-D demos: 2000 steps of 500 samples of N(mu0, 0.5^2), learning rate ``lr``.

    A list ``mu0`` makes ``--mu0`` take one initial mean per mixture component;
    a ``bandwidth`` adds ``--bandwidth`` (the entropy demos' kernel width h).
    """
    p = demo_parser(doc, steps=2000)
    p.add_argument("--population", type=int, default=500, help="samples per step (default 500)")
    p.add_argument("--sigma", type=float, default=0.5, help=f"{sigma_help} (default 0.5)")
    if isinstance(mu0, list):
        shown = " ".join(str(m) for m in mu0)
        p.add_argument("--mu0", type=float, nargs="+", default=mu0, help=f"initial means (default {shown})")
    else:
        p.add_argument("--mu0", type=float, default=mu0, help=f"initial mu (default {mu0})")
    p.add_argument("--lr", type=float, default=lr, help=f"learning rate (default {lr:.2f})")
    if bandwidth is not None:
        p.add_argument("--bandwidth", type=float, default=bandwidth, help=f"kernel bandwidth h (default {bandwidth})")
    return parse(p, argv, print_every=100)


class Run:
    """One demo run: its wall clock, its ``[name] step t ...`` progress lines and its result dict."""

    def __init__(self, name: str, args: argparse.Namespace) -> None:
        self.name, self.args = name, args
        self.start = time.perf_counter()

    def progress(self, t: int, text: str, *, last: bool = False) -> None:
        """Print ``text`` for step ``t`` every ``--print-every`` steps, at the final step and when ``last``."""
        every = self.args.print_every
        if every and (t % every == 0 or t == self.args.steps or last):
            print(f"[{self.name}] step {t:5d}  {text}", flush=True)

    def say(self, text: str) -> None:
        """Print a closing line ``[name] text`` unless the run is quiet."""
        if self.args.print_every:
            print(f"[{self.name}] {text}")

    def result(
        self,
        *,
        final: object,
        final_label: str,
        objective: float,
        objective_label: str,
        history: dict[str, np.ndarray],
        steps: int | None = None,
        **extra: object,
    ) -> dict:
        """The result dict (keys in the order above); ``steps`` defaults to ``--steps``."""
        return {
            "name": self.name,
            "final": final,
            "final_label": final_label,
            "objective": objective,
            "objective_label": objective_label,
            "history": history,
            **extra,
            "seed": self.args.seed,
            "steps": self.args.steps if steps is None else steps,
            "seconds": time.perf_counter() - self.start,
        }


    def minimised(self, fbest: float, best_so_far: list[float], steps: int, **extra: object) -> dict:
        """The result dict of a minimisation run: the best f found, and the best f so far after each generation."""
        return self.result(
            final=fbest,
            final_label="best f",
            objective=best_so_far[-1],
            objective_label="best f so far",
            history={"objective": np.array(best_so_far)},
            steps=steps,
            **extra,
        )


class MuTrace(Run):
    """A 1-D Gaussian demo's run: mu after every step (from mu0) and each generation's objective."""

    def __init__(self, name: str, args: argparse.Namespace, objective_label: str) -> None:
        super().__init__(name, args)
        self.objective_label = objective_label
        self.mus: list[float] = [args.mu0]
        self.objective: list[float] = []

    def record(self, t: int, mu: float, objective: float) -> None:
        """Keep step ``t``'s mu and objective, and print them when due."""
        self.mus.append(float(mu))
        self.objective.append(objective)
        self.progress(t, f"mu {self.mus[-1]:8.4f}  {self.objective_label} {objective:9.4f}")

    def finish(self) -> dict:
        """The result dict: final mu, the last objective, and both histories."""
        return self.result(
            final=self.mus[-1],
            final_label="mu",
            objective=self.objective[-1],
            objective_label=self.objective_label,
            history={"mu": np.array(self.mus), "objective": np.array(self.objective)},
        )
