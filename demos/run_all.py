"""Run every npevograd demo end to end, print a summary table and draw the results.

    pip install -e ".[demos]" && python demos/run_all.py

runs the four 1-D demos ported from EvoGrad (standard quadratic, standard
interference, MaxVar and MaxEnt interference) with EvoGrad's settings (2000
steps each) and CartPole (300 generations) for ``--seeds`` seeds each, then SNES
on 10-D Rastrigin, OneMax with Bernoulli bits, the MaxEnt Gaussian mixture and the
two sample-reuse demos, and the run layer's three (``optimize`` on the rotated ellipsoid and the
CartPole MLP, IPOP restarts on Rastrigin with a checkpoint), one seed each.  It prints each demo's
progress, then a table of the final mu (or return, or fitness) per seed, the last objective value and
the wall time, every number taken from the runs.  With matplotlib installed it writes a PNG (``--out``)
of mu over generations on top of each landscape and the CartPole learning
curve; without matplotlib it says so and skips the picture.  ``--tiny`` runs a
few steps of everything (a smoke test).  Run ``python demos/run_all.py --help``.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType

import numpy as np

HERE = Path(__file__).resolve().parent

ONE_D = ["standard_quadratic", "standard_interference", "max_var_interference", "max_ent_interference"]
EXTRAS = ["cartpole", "snes_rastrigin", "onemax_bernoulli", "mixture_interference"]
EXTRAS += ["reuse_quadratic", "reuse_max_ent"]  # sample reuse (issue 10)
EXTRAS += ["rotated_ellipsoid", "cartpole_mlp", "rastrigin_ipop"]  # the run layer: optimize, restarts (issue 21)
# (full-run arguments, tiny-run arguments) for each demo
ARGS = {
    "standard_quadratic": (["--print-every", "500"], ["--steps", "5", "--population", "50"]),
    "standard_interference": (["--print-every", "500"], ["--steps", "5", "--population", "50"]),
    "max_var_interference": (["--print-every", "500"], ["--steps", "5", "--population", "50"]),
    "max_ent_interference": (["--print-every", "500"], ["--steps", "5", "--population", "50"]),
    "cartpole": (["--steps", "300", "--print-every", "25"], ["--steps", "3", "--episodes", "2"]),
    "snes_rastrigin": (["--print-every", "50"], ["--steps", "5"]),
    "onemax_bernoulli": (["--print-every", "20"], ["--steps", "5"]),
    "mixture_interference": (["--print-every", "250"], ["--steps", "5", "--population", "50"]),
    "reuse_quadratic": (["--print-every", "50"], ["--steps", "5", "--population", "20", "--reuse", "3"]),
    "reuse_max_ent": (["--print-every", "500"], ["--steps", "5", "--population", "20", "--reuse", "3"]),
    "rotated_ellipsoid": (["--print-every", "500", "--cma"], ["--steps", "5"]),
    "cartpole_mlp": (["--print-every", "10"], ["--steps", "3", "--episodes", "2", "--workers", "0"]),
    "rastrigin_ipop": (["--print-every", "200", "--verify"], ["--steps", "5", "--checkpoint-at", "2"]),
}


def load_demo(name: str) -> ModuleType:
    """Import ``demos/<name>.py`` by path, with demos/ on sys.path for the demos' shared ``_common``."""
    if str(HERE) not in sys.path:
        sys.path.append(str(HERE))
    spec = importlib.util.spec_from_file_location(f"npevograd_demo_{name}", HERE / f"{name}.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load demo {name!r} from {HERE}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--seeds", type=int, default=3, help="seeds for the four 1-D demos and CartPole (default 3)"
    )
    parser.add_argument("--out", default="npevograd_demos.png", help="PNG path (default npevograd_demos.png)")
    parser.add_argument("--no-plot", action="store_true", help="skip the PNG")
    parser.add_argument("--tiny", action="store_true", help="a few steps of every demo (smoke test)")
    parser.add_argument(
        "--only", nargs="+", choices=ONE_D + EXTRAS, default=None, help="run only these demos"
    )
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error(f"--seeds must be >= 1, got {args.seeds}")
    return args


def _fmt(value: object) -> str:
    if isinstance(value, (list, tuple, np.ndarray)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return f"{float(value):.4g}" if isinstance(value, (float, np.floating)) else str(value)


def summary_rows(results: dict[str, list[dict]]) -> list[dict]:
    """One row per demo: final value per seed, mean last objective, summed wall time."""
    rows = []
    for name, runs in results.items():
        rows.append(
            {
                "demo": name,
                "seeds": [r["seed"] for r in runs],
                "final_label": runs[0]["final_label"],
                "final": [r["final"] for r in runs],
                "objective_label": runs[0]["objective_label"],
                "objective": float(np.mean([r["objective"] for r in runs])),
                "seconds": float(sum(r["seconds"] for r in runs)),
            }
        )
    return rows


def format_table(rows: list[dict]) -> str:
    """The summary as a Markdown table."""
    lines = [
        "| demo | seeds | final (per seed) | objective (mean over seeds) | wall time |",
        "| --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        finals = " / ".join(_fmt(v) for v in row["final"])
        seeds = ",".join(str(s) for s in row["seeds"])
        lines.append(
            f"| {row['demo']} | {seeds} | {row['final_label']} = {finals} | "
            f"{row['objective_label']} = {_fmt(row['objective'])} | {row['seconds']:.1f} s |"
        )
    return "\n".join(lines)


def plot(results: dict[str, list[dict]], demos: dict[str, ModuleType], out: str) -> str | None:
    """Draw mu over generations on the landscapes and the CartPole curve; None without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [n for n in ONE_D + EXTRAS if n in results]
    ncols = 4 if len(panels) > 3 else len(panels)
    nrows = -(-len(panels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(5.2 * ncols, 4.4 * nrows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.set_visible(False)
    titles = {
        "standard_quadratic": "Plain ES, f(x) = -(x-5)^2",
        "standard_interference": "Plain ES, f(x) = 5 sin(0.2x) sin(20x)",
        "max_var_interference": "MaxVar, b(x) = 5 sin(0.2x) sin(20x)",
        "max_ent_interference": "MaxEnt, b(x) = 5 sin(0.2x) sin(20x)",
        "mixture_interference": "MaxEnt with a 3-component mixture",
        "cartpole": "CartPole, linear policy",
        "snes_rastrigin": "SNES on 10-D Rastrigin",
        "onemax_bernoulli": "OneMax, 100 Bernoulli bits",
        "reuse_quadratic": "Plain ES reusing the last 10 generations",
        "reuse_max_ent": "MaxEnt reusing the last 5 generations",
        "rotated_ellipsoid": "optimize: xNES, 20-D rotated ellipsoid",
        "cartpole_mlp": "optimize: PGPE + ClipUp, CartPole MLP",
        "rastrigin_ipop": "IPOP restarts of SNES, 10-D Rastrigin",
    }
    for ax, name in zip(axes.flat, panels):
        runs = results[name]
        ax.set_title(titles[name], fontsize=11)
        if name in ONE_D or name in ("mixture_interference", "reuse_quadratic", "reuse_max_ent"):
            module = demos[name]
            landscape = module.fitness if hasattr(module, "fitness") else module.behaviour
            label = "f(x)" if hasattr(module, "fitness") else "b(x)"
            steps = max(len(r["history"]["mu"]) for r in runs) - 1
            ys = np.linspace(-0.5, 10.5, 1400)
            values = landscape(ys)
            signed = values.min() < 0 < values.max()
            image = ax.imshow(
                np.repeat(values[:, None], 2, axis=1), aspect="auto", origin="lower",
                cmap="RdBu_r" if signed else "viridis", interpolation="bilinear",
                extent=(0, max(steps, 1), ys[0], ys[-1]),
                vmin=-np.abs(values).max() if signed else None, vmax=np.abs(values).max() if signed else None,
            )
            fig.colorbar(image, ax=ax, fraction=0.046, pad=0.02).set_label(label)
            for r in runs:
                mu = np.asarray(r["history"]["mu"])
                mu = mu[:, None] if mu.ndim == 1 else mu
                for k in range(mu.shape[1]):
                    tag = f"seed {r['seed']}" if mu.shape[1] == 1 else f"component {k + 1}"
                    ax.plot(np.arange(len(mu)), mu[:, k], lw=1.6, label=tag)
            optimum = 5.0 if name in ("standard_quadratic", "reuse_quadratic") else 2.5 * np.pi
            ax.axhline(optimum, color="k", ls=":", lw=1)
            ax.text(0.5 * max(steps, 1), optimum + 0.25, f"x = {optimum:.2f}", fontsize=8, ha="center",
                    bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none", "pad": 1.5})
            ax.set_xlabel("generation")
            ax.set_ylabel("mu (x)")
            ax.legend(loc="lower right", fontsize=8, framealpha=0.85)
        elif name == "cartpole":
            for r in runs:
                ax.plot(np.arange(1, len(r["history"]["objective"]) + 1), r["history"]["objective"],
                        lw=1.4, label=f"seed {r['seed']}: return of mu {r['final']:.0f}")
            ax.axhline(200, color="k", ls=":", lw=1)
            ax.set_ylim(0, 210)
            ax.set_xlabel("generation")
            ax.set_ylabel("population mean return")
            ax.legend(loc="lower right", fontsize=8)
        elif name == "snes_rastrigin":
            sigma = np.asarray(runs[0]["history"]["sigma"])
            ax.semilogy(sigma, lw=0.9)
            ax.set_xlabel("generation")
            ax.set_ylabel("sigma_j (one line per coordinate)")
            twin = ax.twinx()
            twin.plot(-np.asarray(runs[0]["history"]["f_mu"]), color="k", lw=1.6, ls="--")
            twin.set_yscale("symlog", linthresh=1e-3)
            twin.set_ylabel("Rastrigin(mu), dashed")
        elif name == "onemax_bernoulli":
            hist = runs[0]["history"]
            ax.plot(np.arange(1, len(hist["objective"]) + 1), hist["objective"], label="mean f(x)")
            ax.plot(np.arange(1, len(hist["mode_f"]) + 1), hist["mode_f"], ls="--",
                    label="f(most likely x)")
            ax.set_ylim(40, 102)
            ax.set_xlabel("generation")
            ax.set_ylabel("number of ones")
            ax.legend(loc="lower right", fontsize=8)
        else:  # the run layer's demos: the best f so far (CartPole: the mean policy's return) over generations
            best = np.asarray(runs[0]["history"]["objective"])
            ax.plot(np.arange(1, len(best) + 1), best, lw=1.4)
            if name != "cartpole_mlp":
                ax.set_yscale("log")
            ax.set_xlabel("generation")
            ax.set_ylabel(runs[0]["objective_label"])
    fig.tight_layout()
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> dict:
    """Run the demos; returns the per-run results, the summary rows, the table and the PNG path."""
    args = parse_args(argv)
    names = [n for n in ONE_D + EXTRAS if args.only is None or n in args.only]
    demos = {name: load_demo(name) for name in names}
    results: dict[str, list[dict]] = {}
    start = time.perf_counter()
    for name in names:
        seeds = range(args.seeds) if name in ONE_D + ["cartpole"] else range(1)
        full, tiny = ARGS[name]
        for seed in seeds:
            print(f"== {name}, seed {seed} ==", flush=True)
            run = demos[name].main((tiny if args.tiny else full) + ["--seed", str(seed)])
            results.setdefault(name, []).append(run)
    total = time.perf_counter() - start
    rows = summary_rows(results)
    table = format_table(rows)
    print("\nSummary (every number from the runs above)\n")
    print(table)
    print(f"\ntotal wall time {total:.1f} s")
    png = None
    if not args.no_plot:
        png = plot(results, demos, args.out)
        print(f"picture written to {png}" if png else "matplotlib is not installed: PNG skipped")
    return {"results": results, "rows": rows, "table": table, "png": png, "seconds": total}


if __name__ == "__main__":
    main()
