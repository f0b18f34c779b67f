"""The three figures of docs/derivations.md, from the library.

    python docs/make_figures.py            # writes docs/*.png (about 20 s on a loaded machine)
    python docs/make_figures.py --quick    # fewer batches and points, for the smoke test

Figure 1: Entropy's weights n w_i against the behaviour b_i, outer, nested and total; and against x_i.
Figure 2: the standard deviation of the mu gradient against sigma and d, with and
without a batch-mean or leave-one-out baseline, and the leave-one-out closed form against d.
Figure 3: plain against natural gradient steps of Mean on a badly scaled fitness.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import npevograd as ng
from npevograd.estimators import _kde

HERE = Path(__file__).resolve().parent


def interference(x: np.ndarray) -> np.ndarray:
    return 5 * np.sin(0.2 * x) * np.sin(20 * x)


def entropy_weights(ax_b, ax_x) -> dict[str, np.ndarray]:
    """The MaxEnt demo's first batch: n w_i = -log p_i - nu_i against b_i, and n w_i against x_i.

    The second panel is what the mu gradient sees: g_mu = sum_i w_i (x_i - mu) / sigma^2, so samples to the
    right of mu with large w_i push mu right. Returns the plotted arrays.
    """
    p = ng.Normal(np.array([1.0]), 0.5)
    x = p.sample(500, np.random.default_rng(0))
    b = interference(x[:, 0])
    density, nested = _kde.kernel_sums(ng.zscore(b)[:, None], 1.0)
    outer = -np.log(density)
    w = ng.Entropy(bandwidth=1.0)(b, x, p).weights
    np.testing.assert_allclose(len(b) * w, outer - nested, rtol=1e-12, atol=1e-12)
    order = np.argsort(b)
    ax_b.plot(b[order], outer[order], label=r"outer $-\log \hat p_i$")
    ax_b.plot(b[order], -nested[order], label=r"nested $-\nu_i$")
    ax_b.plot(b[order], len(b) * w[order], "k", lw=2, label=r"total $n w_i$")
    ax_b.axhline(-1, color="grey", lw=0.8, ls=":")
    ax_b.set_xlabel(r"behaviour $b_i$")
    ax_b.set_ylabel(r"$n\,w_i$ and its terms")
    ax_b.set_title("against the behaviour")
    ax_b.legend(fontsize=8)
    by_x = np.argsort(x[:, 0])
    centred = len(b) * w - (len(b) * w).mean()
    ax_x.plot(x[by_x, 0], centred[by_x], "k.", ms=3, label=r"$n w_i - \overline{n w}$")
    ax_x.axvline(1.0, color="grey", lw=0.8, ls=":", label=r"$\mu = 1$")
    ax_x.axhline(0.0, color="grey", lw=0.8)
    ax_x.set_xlabel(r"sample $x_i$")
    ax_x.set_title(r"against the sample: $g_\mu = \sum_i w_i (x_i - \mu)/\sigma^2$")
    ax_x.legend(fontsize=8)
    return {"x": x[:, 0], "b": b, "outer": outer, "nested": nested, "n_w": len(b) * w}


def baseline_weights(f: np.ndarray, how: str) -> np.ndarray:
    """w_i for batches of fitness rows f (R, n): no baseline, batch mean, leave-one-out."""
    n = f.shape[1]
    if how == "none":
        return f / n
    if how == "mean":
        return (f - f.mean(axis=1, keepdims=True)) / n
    if how != "loo":
        raise ValueError(f"how must be 'none', 'mean' or 'loo', got {how!r}")
    loo = (f.sum(axis=1, keepdims=True) - f) / (n - 1)
    return (f - loo) / n


def gradient_sd(sigma: float, d: int, how: str, batches: int, rng: np.random.Generator) -> float:
    """sd over batches of the first coordinate of g_mu for f = -||x - 1||^2 at mu = 0, n = 20."""
    n = 20
    eps = rng.standard_normal((batches, n, d))
    x = sigma * eps
    f = -np.square(x - 1).sum(axis=2)
    g = (baseline_weights(f, how) * eps[:, :, 0] / sigma).sum(axis=1)
    return float(g.std(ddof=1))


def loo_sd_formula(sigma: float, d: int, n: int = 20) -> float:
    """sd of the leave-one-out g_mu,1 for f = -||x - 1||^2 at mu = 0 (derivations.md, sections 10.8 and 10.9).

    f = sum_k f_k with f_k = -(sigma e_k - 1)^2: Var f_k = 4 sigma^2 + 2 sigma^4, and
    E[(f_1 - E f_1)^2 e_1^2] = 12 sigma^2 + 10 sigma^4; the gradient is 2 and E[psi^2] = 1/sigma^2.
    """
    var_part = 4 * sigma**2 + 2 * sigma**4
    grad = 2.0
    v_mean = ((d - 1) * var_part + 12 * sigma**2 + 10 * sigma**4) / sigma**2 - grad**2
    return float(np.sqrt((v_mean + (d * var_part / sigma**2 + grad**2) / (n - 1)) / n))


def no_baseline_sd_formula(sigma: float, d: int, n: int = 20) -> float:
    """sd of g_mu,1 without a baseline, same setting: V(E f) + (E f)^2 E[psi^2] + 2 E f E[(f - E f) psi^2], over n.

    E f = -d (1 + sigma^2) and E[(f - E f) psi^2] = E[(f_1 - E f_1) e_1^2] / sigma^2 = -2.
    """
    var_part = 4 * sigma**2 + 2 * sigma**4
    v_mean = ((d - 1) * var_part + 12 * sigma**2 + 10 * sigma**4) / sigma**2 - 4.0
    mean_f = -d * (1 + sigma**2)
    return float(np.sqrt((v_mean + mean_f**2 / sigma**2 - 4 * mean_f) / n))


def gradient_variance(ax_sigma, ax_d, quick: bool) -> dict[str, dict[str, list[float]]]:
    """sd of g_mu,1 against sigma (d = 10) and d (sigma = 0.5), per baseline; the d panel with the closed form."""
    rng = np.random.default_rng(1)
    batches = 50 if quick else 2000
    sigmas = np.geomspace(0.05, 3, 4 if quick else 15)
    dims = [1, 10] if quick else [1, 2, 5, 10, 20, 50, 100, 200]
    data: dict[str, dict[str, list[float]]] = {"sigma": {"x": list(sigmas)}, "d": {"x": [float(d) for d in dims]}}
    for how, label in [("none", "no baseline"), ("mean", "batch mean"), ("loo", "leave-one-out")]:
        data["sigma"][how] = [gradient_sd(s, 10, how, batches, rng) for s in sigmas]
        data["d"][how] = [gradient_sd(0.5, d, how, batches, rng) for d in dims]
        ax_sigma.loglog(sigmas, data["sigma"][how], "o-", label=label)
        ax_d.loglog(dims, data["d"][how], "o-", label=label)
    data["d"]["formula"] = [loo_sd_formula(0.5, d) for d in dims]
    data["sigma"]["formula none"] = [no_baseline_sd_formula(s, 10) for s in sigmas]
    data["sigma"]["formula loo"] = [loo_sd_formula(s, 10) for s in sigmas]
    ax_sigma.loglog(sigmas, data["sigma"]["formula none"], "k:", lw=1, label="no baseline, formula")
    ax_sigma.loglog(sigmas, data["sigma"]["formula loo"], "k--", lw=1, label="leave-one-out, formula")
    ax_d.loglog(dims, data["d"]["formula"], "k--", lw=1, label="leave-one-out, formula")
    ax_sigma.axvline(1.0, color="grey", lw=0.8, ls=":")
    ax_sigma.set_xlabel(r"$\sigma$ ($d = 10$)")
    ax_d.set_xlabel(r"$d$ ($\sigma = 0.5$)")
    ax_sigma.set_ylabel(r"sd of $g_{\mu,1}$")
    ax_sigma.set_title(r"$f = -\Vert x - 1\Vert^2$, $n = 20$")
    ax_sigma.legend(fontsize=7)
    ax_d.legend(fontsize=7)
    return data


def natural_step(ax, quick: bool) -> dict[str, np.ndarray]:
    """mu over steps of Mean (PairedNormal, n = 400) on f = -(x1^2 + 100 x2^2), sigma = (1, 0.1): plain and natural."""
    sigma = np.array([1.0, 0.1])
    steps = 10 if quick else 40

    def fitness(x: np.ndarray) -> np.ndarray:
        return -(x[:, 0] ** 2 + 100 * x[:, 1] ** 2)

    grid = np.linspace(-3.5, 3.5, 200)
    u, v = np.meshgrid(grid, grid)
    contours = ax.contour(u, v, u**2 + 100 * v**2, levels=[1, 10, 100, 1000], colors="0.45", linewidths=0.8)
    ax.clabel(contours, fontsize=7, fmt=lambda level: f"f = -{level:g}")
    paths = {}
    for natural, lr, label in [(False, 0.008, "plain, lr 0.008"), (True, 0.25, r"natural $\sigma^2 g$, lr 0.25")]:
        rng = np.random.default_rng(2)
        p = ng.PairedNormal(np.array([3.0, 3.0]), sigma)  # pairs: a quadratic's gradient without f's noise
        path = [p.mu.copy()]
        for _ in range(steps):
            x = p.sample(400, rng)
            grad = ng.Mean()(fitness(x), x, p).grad
            if natural:
                grad = p.natural_gradient(grad)
            p.params["mu"] += lr * grad["mu"]
            path.append(p.mu.copy())
        trail = np.array(path)
        paths["natural" if natural else "plain"] = trail
        ax.plot(trail[:, 0], trail[:, 1], ".-", label=label)
    ax.set_xlim(-0.5, 3.5)
    ax.set_ylim(-3.5, 3.5)
    ax.set_xlabel(r"$\mu_1$ ($\sigma_1 = 1$)")
    ax.set_ylabel(r"$\mu_2$ ($\sigma_2 = 0.1$)")
    ax.set_title(f"{steps} steps from (3, 3)")
    ax.legend(fontsize=8)
    return paths


def main(argv: list[str] | None = None) -> list[Path]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few batches and points (smoke test)")
    parser.add_argument("--out", type=Path, default=HERE, help="output directory (default: docs/)")
    args = parser.parse_args(argv)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    args.out.mkdir(parents=True, exist_ok=True)
    written = []

    def save(fig, name: str) -> None:
        path = args.out / name
        fig.tight_layout()
        fig.savefig(path, dpi=80)
        plt.close(fig)
        written.append(path)

    fig, (ax_b, ax_x) = plt.subplots(1, 2, figsize=(10, 3.6))
    entropy_weights(ax_b, ax_x)
    save(fig, "entropy_weights.png")

    fig, (ax_sigma, ax_d) = plt.subplots(1, 2, figsize=(8, 3.4), sharey=True)
    gradient_variance(ax_sigma, ax_d, args.quick)
    save(fig, "gradient_variance.png")

    fig, ax = plt.subplots(figsize=(5, 4))
    natural_step(ax, args.quick)
    save(fig, "natural_step.png")
    for path in written:
        print(path)
    return written


if __name__ == "__main__":
    main()
