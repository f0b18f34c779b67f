"""docs/derivations.md: every table and worked-example number is regenerated here, every exercise checked.

Each ``table_*`` function recomputes one table of the doc from the library (or from plain
NumPy where a formula is being measured, checked once against the library) with a fixed
seed, and returns its markdown; the test asserts the doc prints exactly that.
``python tests/test_docs.py`` prints every table; ``--write`` rewrites them in the doc after a deliberate change.
"""

from __future__ import annotations

import importlib.util
import math
import re
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import npevograd as ng
from npevograd.estimators import _kde

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "derivations.md"
REUSE = ROOT / "docs" / "reuse.md"


def _load_figures_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("_npevograd_make_figures", ROOT / "docs" / "make_figures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FIGURES_SCRIPT = _load_figures_script()  # its baselines and behaviour are the tables' too


def doc_text() -> str:
    return DOC.read_text()


def reuse_text() -> str:
    return REUSE.read_text()


def math_spans(line: str, open_tick: str | None = None) -> tuple[list[tuple[int, int, bool]], str | None]:
    """The inline math of one markdown line: (start, stop, safe) per span, outside code spans.

    ``safe`` spans are GitHub's `` $`...`$ `` form, whose body Markdown leaves alone; bare ones are ``$...$``.
    ``open_tick`` is a code span's backtick run still open from the previous line; the one open at the end
    of this line is returned. A bare ``$`` with no closing ``$`` on the line raises ValueError.
    """
    spans, i = [], 0
    if open_tick:
        close = line.find(open_tick)
        if close < 0:
            return spans, open_tick
        i = close + len(open_tick)
    while i < len(line):
        if line.startswith("$`", i):
            stop = line.index("`$", i + 2) + 2
            spans.append((i, stop, True))
            i = stop
        elif line[i] == "$":
            stop = line.find("$", i + 1)
            if stop < 0:
                raise ValueError(f"unclosed inline math: {line!r}")
            spans.append((i, stop + 1, False))
            i = stop + 1
        elif line[i] == "`":
            tick = re.match(r"`+", line[i:]).group(0)
            close = line.find(tick, i + len(tick))
            if close < 0:
                return spans, tick
            i = close + len(tick)
        else:
            i += 1
    return spans, None


def typeset_safely(line: str) -> str:
    """Every bare ``$...$`` of a line (outside code) in the `` $`...`$ `` form GitHub renders as written."""
    spans, _ = math_spans(line)
    for start, stop, safe in reversed(spans):
        if not safe:
            line = line[:start] + "$`" + line[start + 1 : stop - 1] + "`$" + line[stop:]
    return line


def markdown(header: list[str], rows: list[list[str]]) -> str:
    """A markdown table; its math in the safe inline form."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(typeset_safely(line) for line in lines)


# (what, measured mean, its standard error, formula, whether they must agree): filled by each table
Claim = tuple[str, float, float, float, bool]


def rounding_zero(value: float, fmt: str) -> str:
    """``value`` in ``fmt``, or "< 1e-14" where it is zero up to rounding.

    The last bits of such a value vary with the CPU's SIMD sums.
    """
    return "< 1e-14" if value < 1e-14 else format(value, fmt)


def mean_se(samples: np.ndarray, digits: int = 3) -> tuple[str, float, float]:
    se = samples.std(ddof=1) / math.sqrt(samples.size)
    return f"{samples.mean():.{digits}f} ± {se:.{digits}f}", float(samples.mean()), float(se)


def check_claims(claims: list[Claim]) -> None:
    """Agreeing claims within 4.5 standard errors of their formula; disagreeing ones beyond it."""
    for what, mean, se, formula, agree in claims:
        if agree:
            assert abs(mean - formula) <= 4.5 * se + 1e-12, (what, mean, se, formula)
        else:
            assert abs(mean - formula) > 4.5 * se, (what, mean, se, formula)


def gauss_moment(g, mu: float, sigma: float) -> float:
    """E[g(x)] for x ~ N(mu, sigma^2), by 40-point Gauss-Hermite (exact for polynomials to degree 79)."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(40)
    return float(weights @ g(mu + sigma * nodes) / math.sqrt(2 * math.pi))


# ---------------------------------------------------------------- section 4: what each shaping estimates

CUBIC_MU, CUBIC_SIGMA = 0.5, 1.0


def cubic(x: np.ndarray) -> np.ndarray:
    return x**3 + 3 * x


def shaped_weights(f: np.ndarray, how: str) -> np.ndarray:
    """w_i for a batch of fitness rows f (R, n), written from the formulas of the doc."""
    n = f.shape[1]
    if how == "zscore":
        return (f - f.mean(axis=1, keepdims=True)) / f.std(axis=1, ddof=1, keepdims=True) / n
    if how == "centered_ranks":
        ranks = f.argsort(axis=1).argsort(axis=1)  # no ties among continuous draws
        return (ranks / (n - 1) - 0.5) / n
    return FIGURES_SCRIPT.baseline_weights(f, how)  # "none", "mean" or "loo"


def table_shaping() -> tuple[str, list[Claim]]:
    mu, sigma = CUBIC_MU, CUBIC_SIGMA
    grad = 3 * mu**2 + 3 * sigma**2 + 3  # d/dmu E[x^3 + 3x] = d/dmu (mu^3 + 3 mu sigma^2 + 3 mu)
    sd_f = math.sqrt(gauss_moment(lambda x: cubic(x) ** 2, mu, sigma) - gauss_moment(cubic, mu, sigma) ** 2)
    rank_target = 1 / (2 * math.sqrt(math.pi) * sigma)
    rows, claims = [], []
    rng = np.random.default_rng(20261201)
    for n in (5, 20):
        x = mu + sigma * rng.standard_normal((20000, n))
        f, score = cubic(x), (x - mu) / sigma**2
        for how, prediction, target in [
            ("none", grad, r"$\nabla_\mu \mathbb E f$"),
            ("mean", (n - 1) / n * grad, r"$\frac{n-1}{n}\nabla_\mu \mathbb E f$"),
            ("loo", grad, r"$\nabla_\mu \mathbb E f$"),
            ("zscore", grad / sd_f, r"$\nabla_\mu \mathbb E f / \mathrm{sd}(f)$ only as $n \to \infty$"),
            ("centered_ranks", rank_target, r"$\nabla_\mu \mathbb E\, G_{\theta_0}(f(x))$"),
        ]:
            g = (shaped_weights(f, how) * score).sum(axis=1)
            text, mean, se = mean_se(g)
            rows.append([f"`{how}`", str(n), text, f"{prediction:.3f}", target])
            claims.append((f"{how}, n={n}", mean, se, prediction, how != "zscore"))
    header = ["shaping / baseline", "$n$", "measured mean of $g_\\mu$", "formula", "estimates"]
    return markdown(header, rows), claims


def test_shaping_weights_match_the_library():
    """The plain-NumPy weights of table_shaping are the library's (zscore, centered_ranks, no shaping)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((7, 1))
    f = cubic(x[:, 0])
    for how, shaping in [("none", None), ("zscore", ng.zscore), ("centered_ranks", ng.centered_ranks)]:
        w = ng.Mean(shaping=shaping).weights(f, 7)[1]
        np.testing.assert_allclose(shaped_weights(f[None], how)[0], w, rtol=1e-12, atol=1e-15)


def test_table_shaping():
    """A batch-mean baseline scales the gradient by (n-1)/n, leave-one-out does not, z-scores change it."""
    text, claims = table_shaping()
    check_claims(claims)
    assert text in doc_text()


# ---------------------------------------------------------------- section 3.1: EvoGrad's ratio node


def test_evograd_ratio_node_is_a_magic_box_to_first_order_only():
    """Issue 23, wrong 3: NormalProbRatio has the magic box's value and mu derivative, not its second derivative."""
    torch = pytest.importorskip("torch")
    distributions = pytest.importorskip("evograd.distributions")
    x = torch.tensor([[0.7], [-1.2], [2.0]], dtype=torch.float32)
    mu0, sigma = 0.3, 0.8
    for i in range(len(x)):
        mu = torch.tensor([mu0], requires_grad=True)
        node = distributions.NormalProbRatio.apply(mu, sigma, x, lambda descriptors: descriptors)[i]
        (first,) = torch.autograd.grad(node, mu, create_graph=True)
        (second,) = torch.autograd.grad(first.sum(), mu)
        mu = torch.tensor([mu0], requires_grad=True, dtype=torch.float64)
        log_p = -((x[i].double() - mu) ** 2).sum() / (2 * sigma**2)
        box = torch.exp(log_p - log_p.detach())  # DiCE's magic box
        (box_first,) = torch.autograd.grad(box, mu, create_graph=True)
        (box_second,) = torch.autograd.grad(box_first.sum(), mu)
        delta = float(x[i, 0]) - mu0
        assert float(node.detach()) == float(box.detach()) == 1.0
        assert float(first.detach()) == pytest.approx(float(box_first.detach()), rel=1e-6)
        assert float(first.detach()) == pytest.approx(delta / sigma**2, rel=1e-6)
        # the second derivative of NormalProbRatio is the derivative of its backward formula
        assert float(second.detach()) == pytest.approx(-1 / sigma**2, rel=1e-6)
        assert float(box_second) == pytest.approx(delta**2 / sigma**4 - 1 / sigma**2, rel=1e-12)
        assert abs(float(second) - float(box_second)) > 0.1


# ---------------------------------------------------------------- docs/reuse.md: the baselines' table

BASELINE_ESTIMATORS = [
    ("none", ng.Mean()),
    ('`"mean"`', ng.Mean(baseline="mean")),
    ('`"loo"`', ng.Mean(baseline="loo")),
    ("`normalize`", ng.Mean(normalize=True)),
]


def baseline_gradients(dim: int) -> dict[str, np.ndarray]:
    """g_mu of each estimator on the same 2000 batches of n = 100 (reuse.md's script; 10-D: f = -||x - 1||^2)."""
    if dim == 1:
        p, fitness = ng.Normal(np.array([1.0]), 0.5), lambda x: -((x[:, 0] - 5) ** 2)
    else:
        p, fitness = ng.Normal(np.zeros(dim), 1.0), lambda x: -np.square(x - 1).sum(axis=1)
    rng = np.random.default_rng(0)
    xs = [p.sample(100, rng) for _ in range(2000)]
    return {name: np.array([est(fitness(x), x, p).grad["mu"] for x in xs]) for name, est in BASELINE_ESTIMATORS}


def table_reuse_baselines() -> tuple[str, list[Claim]]:
    """Per baseline: the variance of g_mu (summed over entries) and the mean of its first entry, in 1-D and 10-D."""
    cells: dict[str, list[str]] = {name: [name] for name, _ in BASELINE_ESTIMATORS}
    exact_row, claims = ["exact mean (and $\\frac{n-1}{n}$ of it)"], []
    for dim, exact in [(1, 8.0), (10, 2.0)]:  # grad_mu E f = -2 (mu - x*): 2 (5 - 1) and 2 (1 - 0)
        for name, g in baseline_gradients(dim).items():
            text, mean, se = mean_se(g[:, 0])
            cells[name] += [f"{g.var(axis=0, ddof=1).sum():.4g}", text]
            expected = exact * (0.99 if name in ('`"mean"`', "`normalize`") else 1.0)  # (n - 1)/n, n = 100
            claims.append((f"{dim}-D {name}", mean, se, expected, True))
        exact_row += ["", f"{exact:g} ({0.99 * exact:g})"]
    header = [
        "baseline",
        r"1-D: variance of $g_\mu$",
        r"1-D: mean of $g_\mu$",
        r"10-D: variance of $g_\mu$ (sum over entries)",
        r"10-D: mean of $g_{\mu,1}$",
    ]
    return markdown(header, [*cells.values(), exact_row]), claims


def test_table_reuse_baselines():
    """reuse.md: the baselines' variance and mean, each mean within 4.5 standard errors of its expectation."""
    text, claims = table_reuse_baselines()
    check_claims(claims)
    assert text in reuse_text()


# ---------------------------------------------------------------- section 9.2: z-scores and the tails of f

ZSCORE_FITNESS = {  # name: (f, its limit grad_mu E f / sd(f) at N(0, 1))
    "$x$": (lambda x: x, 1.0),
    "$x^3$": (lambda x: x**3, 3 / math.sqrt(15)),
    "$e^x$": (np.exp, 1 / math.sqrt(math.e - 1)),
    "$e^{2x}$": (lambda x: np.exp(2 * x), 2 / math.sqrt(math.e**4 - 1)),
}
ZSCORE_SIZES = [(5, 40000), (20, 20000), (200, 4000)]  # (n, batches)


def table_zscore_tails() -> tuple[str, list[Claim]]:
    """Mean of the z-scored g_mu at N(0, 1) against grad E f / sd(f): below it for light tails, above for heavy."""
    rng = np.random.default_rng(20261204)
    rows, claims = [], []
    for name, (f, limit) in ZSCORE_FITNESS.items():
        row = [name]
        for n, batches in ZSCORE_SIZES:
            x = rng.standard_normal((batches, n))
            g = (shaped_weights(f(x), "zscore") * x).sum(axis=1)  # mu = 0, sigma = 1: the score is x
            text, mean, se = mean_se(g)
            side = "above" if mean > limit else "below"
            row.append(f"{text} ({side})")
            claims.append((f"{name}, n={n}, {side}", mean, se, limit, False))
        rows.append(row + [f"{limit:.3f}"])
    header = (
        ["$f$"]
        + [f"mean of $g_\\mu$, $n = {n}$" for n, _ in ZSCORE_SIZES]
        + [r"$\nabla_\mu \mathbb E f/\mathrm{sd}(f)$"]
    )
    return markdown(header, rows), claims


def test_table_zscore_tails():
    """Issue 23, wrong 1: the z-scored gradient's finite-n target is a rescaling whose side depends on the tails."""
    text, claims = table_zscore_tails()
    check_claims(claims)  # every printed side is beyond 4.5 standard errors of the limit
    assert text in doc_text()
    for what, mean, _, limit, _ in claims:
        assert (mean > limit) == what.endswith("above")


# ---------------------------------------------------------------- section 4: NES utilities are O(1/n)

NES_SIZES = [(5, 20000), (20, 20000), (100, 4000), (1000, 400)]


def nes_utility_limit() -> float:
    """lim n E[g_mu] of Mean(shaping=nes_utilities), f increasing, N(0, 1): E[U'(Phi(x)) phi(x)].

    n u_i -> U(G) = 2 max(0, -log(2 (1 - G))) - 1, with G the fitness CDF at x_i.
    """
    from scipy import integrate, stats

    def integrand(x: float) -> float:  # U'(G) phi(x)^2 = 2 phi(x)^2 / (1 - Phi(x)) above the median, 0 below
        return 2 * math.exp(2 * stats.norm.logpdf(x) - stats.norm.logsf(x))

    return float(integrate.quad(integrand, 0, 40)[0])


def table_nes_utilities() -> tuple[str, list[Claim], list[tuple[float, float]]]:
    """Mean(shaping=nes_utilities) and Mean(shaping=centered_ranks), f = x at N(0, 1): the first shrinks like 1/n."""
    rng = np.random.default_rng(20261205)
    rows, claims, scaled = [], [], []
    for n, batches in NES_SIZES:
        x = rng.standard_normal((batches, n))
        ranks = x.argsort(axis=1).argsort(axis=1)  # f = x: rank of the fitness
        utilities = ng.nes_utilities(np.arange(n, dtype=float))[ranks]  # the library's utility of each rank
        g_nes = (utilities / n * x).sum(axis=1)
        g_ranks = (shaped_weights(x, "centered_ranks") * x).sum(axis=1)
        nes_text, nes_mean, nes_se = mean_se(n * g_nes)
        rank_text, rank_mean, rank_se = mean_se(g_ranks)
        rows.append([str(n), f"{nes_mean / n:.4f}", nes_text, rank_text])
        claims.append((f"centered ranks, n={n}", rank_mean, rank_se, 1 / (2 * math.sqrt(math.pi)), True))
        scaled.append((nes_mean, nes_se))
    rows.append(["limit", "", f"{nes_utility_limit():.3f}", f"{1 / (2 * math.sqrt(math.pi)):.3f}"])
    header = ["$n$", "mean of $g_\\mu$, `nes_utilities`", "$n \\times$ that", "mean of $g_\\mu$, `centered_ranks`"]
    return markdown(header, rows), claims, scaled


def test_table_nes_utilities():
    """Issue 23, wrong 2: NES utilities' gradient is (1/n) grad E[U(G(f))], centered ranks' does not depend on n."""
    text, claims, scaled = table_nes_utilities()
    check_claims(claims)
    assert text in doc_text()
    limit = nes_utility_limit()
    for (small, small_se), (large, large_se) in zip(scaled, scaled[1:]):
        assert large - small > 4.5 * math.hypot(small_se, large_se)  # n E g rises towards the limit ...
    assert 0 < limit - scaled[-1][0] < 0.02  # ... and is within 2% of it at n = 1000


# ---------------------------------------------------------------- section 9: antithetic sampling


def table_antithetic() -> str:
    """sd of the mu and sigma gradients of Mean, iid against mirrored pairs, for an even and an odd f."""
    rng = np.random.default_rng(7)
    n, reps = 10, 4000
    half = rng.standard_normal((reps, n // 2))
    noise = {"iid": rng.standard_normal((reps, n)), "paired": np.concatenate([half, -half], axis=1)}
    rows = []
    for name, f in [("$f(x) = x^2$ (even)", np.square), ("$f(x) = x^3$ (odd)", lambda x: x**3)]:
        row = [name]
        for part in ("mu", "sigma"):
            for kind in ("iid", "paired"):
                eps = noise[kind]  # mu = 0, sigma = 1: x = eps
                score = eps if part == "mu" else eps**2 - 1
                row.append(rounding_zero((f(eps) / n * score).sum(axis=1).std(), ".2g"))
        rows.append(row)
    header = ["fitness", "sd $g_\\mu$, iid", "sd $g_\\mu$, pairs", "sd $g_\\sigma$, iid", "sd $g_\\sigma$, pairs"]
    return markdown(header, rows)


def test_table_antithetic():
    """Pairs cancel the even part of f in the mu gradient and the odd part in the sigma gradient."""
    text = table_antithetic()
    assert text in doc_text()
    even, odd = text.splitlines()[2:]
    assert even.split("|")[3].strip() == odd.split("|")[5].strip() == "< 1e-14"


def test_paired_normal_cancels_even_terms_in_mu_and_odd_terms_in_sigma():
    """Error 1 of issue 12, on the library: PairedNormal's docstring now says this."""
    p = ng.PairedNormal(np.array([0.0]), 1.0, learn_sigma=True)
    x = p.sample(64, rng=3)
    even = ng.Mean()(x[:, 0] ** 2 + np.cos(x[:, 0]), x, p).grad
    odd = ng.Mean()(x[:, 0] ** 3 + np.sin(x[:, 0]), x, p).grad
    assert abs(even["mu"][0]) < 1e-14 and abs(odd["sigma"]) < 1e-14
    assert abs(even["sigma"]) > 0.1 and abs(odd["mu"][0]) > 0.1
    docstring = " ".join(ng.PairedNormal.__doc__.split())
    assert "so the even terms of the fitness's Taylor expansion cancel there" in docstring


# ---------------------------------------------------------------- section 9: the entropy's nested term and target

DEMO = {"mu": 1.0, "sigma": 0.5, "n": 500, "bandwidth": 1.0}


interference = FIGURES_SCRIPT.interference


def entropy_terms(b: np.ndarray, bandwidth: float, standardize: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(outer, nested) of Entropy's weights, w = (outer - nested) / n, from the library's kernel sums."""
    z = ng.zscore(b) if standardize else b
    density, nested = _kde.kernel_sums(z.reshape(len(z), -1), bandwidth)
    return -np.log(density), nested


def table_nested() -> tuple[str, list[Claim]]:
    """The nested term averages exactly 1; the mu gradient with and without it, on the MaxEnt demo's batches."""
    p = ng.Normal(np.array([DEMO["mu"]]), DEMO["sigma"])
    rng = np.random.default_rng(0)
    grads: dict[str, list[float]] = {"total": [], "outer": [], "nested": []}
    nested_means = []
    for _ in range(200):
        x = p.sample(DEMO["n"], rng)
        outer, nested = entropy_terms(interference(x[:, 0]), DEMO["bandwidth"])
        nested_means.append(nested.mean())
        n = len(x)
        for part, w in [("total", (outer - nested) / n), ("outer", outer / n), ("nested", -nested / n)]:
            grads[part].append(p.weighted_score(w, x)["mu"][0])
    rows, claims = [], []
    for part, label in [("total", "outer + nested (`Entropy`)"), ("outer", "outer only"), ("nested", "nested only")]:
        g = np.array(grads[part])
        text, mean, se = mean_se(g)
        rows.append([label, text, f"{g.std(ddof=1):.3f}"])
        claims.append((part, mean, se, 0.0, False))  # every term moves mu: none averages to zero
    deviation = np.max(np.abs(np.array(nested_means) - 1))
    rows.append([r"$\max \lvert \frac1n\sum_i \nu_i - 1\rvert$ over the batches", rounding_zero(deviation, ".0e"), ""])
    header = ["term of $w_i$", "mean of $g_\\mu$ over 200 batches", "sd of $g_\\mu$"]
    return markdown(header, rows), claims


def test_table_nested():
    """The nested term averages exactly 1 over the samples, and still carries signal: dropping it biases g."""
    text, claims = table_nested()
    check_claims(claims)
    assert text in doc_text()
    total, outer = (row.split("|")[2].split(" ± ")[0].strip() for row in text.splitlines()[2:4])
    assert doc_text().count(f"from {total} to {outer}") == 2  # sections 3.2 and 9.4 quote the table


def demo_mu_gradients() -> tuple[float, float]:
    """The MaxEnt demo's first mu gradient (seed 0), with and without the nested term."""
    p = ng.Normal(np.array([DEMO["mu"]]), DEMO["sigma"])
    x = p.sample(DEMO["n"], np.random.default_rng(0))
    b = interference(x[:, 0])
    total = ng.Entropy(bandwidth=DEMO["bandwidth"])(b, x, p).grad["mu"][0]
    outer, _ = entropy_terms(b, DEMO["bandwidth"])
    return float(total), float(p.weighted_score(outer / len(x), x)["mu"][0])


KDE_LIMIT = 0.5 * math.log(2 * math.pi * 1.5) + 1 / 3 - 0.5 * math.log(math.pi)  # N(0, 1), h = 1
# n (E J - limit) -> -(E[1/Kbar] - 1) + (E[E_z' K^2 / Kbar^2] - 1) / 2: the self term K_jj / n, then Jensen;
# for N(0, 1) and h = 1, Kbar(z) = E_z' K(z, z') = exp(-z^2/3)/sqrt(3), E[1/Kbar] = 3, E[E_z' K^2/Kbar^2] = 3 sqrt(3/7).
KDE_FIRST_ORDER = -(3 - 1) + (3 * math.sqrt(3 / 7) - 1) / 2
TRUE_ENTROPY = 0.5 * math.log(2 * math.pi * math.e)


def table_kde_target() -> tuple[str, list[Claim]]:
    """Entropy().value on N(0, 1) behaviours (standardize=False, h = 1) against its large-n limit."""
    rng = np.random.default_rng(11)
    rows, claims = [], []
    for n, reps in [(10, 4000), (100, 400), (1000, 40)]:
        values = []
        for _ in range(reps):
            b = rng.standard_normal(n)
            outer, _ = entropy_terms(b, 1.0, standardize=False)
            values.append(outer.mean())
        v = np.array(values)
        text, mean, se = mean_se(v)
        rows.append([str(n), text, f"{n * (mean - KDE_LIMIT):.2f} ± {n * se:.2f}"])
        if n != 100:  # at n = 100 the bias, -0.015, is about the 4.5 standard errors of the test
            claims.append((f"n={n}", mean, se, KDE_LIMIT, n == 1000))
    rows.append(["first order in $1/n$", "", f"{KDE_FIRST_ORDER:.2f}"])
    rows.append(["limit $n \\to \\infty$", f"{KDE_LIMIT:.3f}", ""])
    rows.append(["true entropy", f"{TRUE_ENTROPY:.3f}", ""])
    return markdown(["$n$", "mean of `Entropy().value`", "$n\\,(\\text{mean} - \\text{limit})$"], rows), claims


def test_table_kde_target():
    """The unnormalised KDE estimates a smoothed cross-entropy minus (k/2) log(pi h^2), with a ~1/n bias."""
    text, claims = table_kde_target()
    check_claims(claims)
    assert text in doc_text()


def table_variance_value() -> str:
    rng = np.random.default_rng(5)
    rows = []
    for k in (1, 3):
        for n in (3, 10, 1000):
            x = rng.standard_normal((n, 1))
            b = rng.standard_normal((n, k)) * rng.uniform(0.1, 10, k) + 3.0
            value = ng.Variance()(b, x, ng.Normal(np.zeros(1))).value
            rows.append([str(k), str(n), f"{value:.15g}", f"{k * (n - 1) / n:.15g}"])
    return markdown(["$k$", "$n$", "`Variance().value`", "$k(n-1)/n$"], rows)


def test_table_variance_value():
    text = table_variance_value()
    assert text in doc_text()
    for row in text.splitlines()[2:]:
        cells = row.split("|")
        assert float(cells[3]) == pytest.approx(float(cells[4]), rel=1e-14)


def table_maxvar_target() -> tuple[str, list[Claim]]:
    """MaxVar with s held fixed, b = x in 1-D: its sigma gradient against d/dsigma log Var(b) = 2 / sigma."""
    sigma = 0.5
    rng = np.random.default_rng(13)
    rows, claims = [], []
    for n, reps in [(5, 40000), (50, 4000), (500, 400)]:
        eps = rng.standard_normal((reps, n))
        z = (eps - eps.mean(axis=1, keepdims=True)) / eps.std(axis=1, ddof=1, keepdims=True)
        g = (z**2 / n * (eps**2 - 1) / sigma).sum(axis=1)
        text, mean, se = mean_se(g)
        rows.append([str(n), text, f"{2 / sigma:.3f}"])
        claims.append((f"n={n}", mean, se, 2 / sigma, n == 500))
    header = ["$n$", "mean of `Variance` $g_\\sigma$", "$\\partial_\\sigma \\log \\mathrm{Var}(b) = 2/\\sigma$"]
    return markdown(header, rows), claims


def test_table_maxvar_target():
    """Holding s fixed makes MaxVar a plug-in estimate of grad log Var(b): biased at small n, right at large n."""
    text, claims = table_maxvar_target()
    check_claims(claims)
    assert text in doc_text()


# ---------------------------------------------------------------- section 3: where the ratios go


def grad_r(J, n: int, step: float = 1e-6) -> np.ndarray:
    """Central finite differences of J(r) at r = 1: the weights dJ/dr_i."""
    out = np.empty(n)
    for i in range(n):
        e = np.zeros(n)
        e[i] = step
        out[i] = (J(1 + e) - J(1 - e)) / (2 * step)
    return out


def weighted_mean(b: np.ndarray, r: np.ndarray) -> np.ndarray:
    return (r[:, None] * b).sum(axis=0) / len(r)


def maxvar_mean_carries_ratios(b: np.ndarray, s: np.ndarray):
    """J(r) = (1/n) sum_i r_i ||(b_i - m(r)) / s||^2 with m(r) = (1/n) sum_i r_i b_i, s frozen."""
    return lambda r: float((r * (((b - weighted_mean(b, r)) / s) ** 2).sum(axis=1)).sum() / len(r))


def maxvar_std_carries_ratios(b: np.ndarray):
    """As above with s_j(r)^2 = (1/(n-1)) sum_i r_i (b_ij - m_j(r))^2 carrying ratios too."""

    def J(r):
        centred = b - weighted_mean(b, r)
        s2 = (r[:, None] * centred**2).sum(axis=0) / (len(r) - 1)
        return float((r[:, None] * centred**2 / s2).sum() / len(r))

    return J


def where_ratios_measurements() -> dict[str, float]:
    rng = np.random.default_rng(17)
    n, k = 12, 2
    b = rng.standard_normal((n, k)) * [1.0, 4.0] + [0.0, 2.0]
    x = rng.standard_normal((n, 1))
    p = ng.Normal(np.zeros(1))
    w = ng.Variance().weights(b, n)[1]
    s = b.std(axis=0, ddof=1)
    r_random = rng.uniform(0.5, 1.5, n)
    J_std = maxvar_std_carries_ratios(b)
    b1 = b[:, 1]
    h = 0.7
    w_z = ng.Entropy(h).weights(b1, n)[1]
    w_raw = ng.Entropy(h * b1.std(ddof=1), standardize=False).weights(b1, n)[1]
    del x, p
    return {
        MEAN_CARRIES: float(np.abs(grad_r(maxvar_mean_carries_ratios(b, s), n) - w).max()),
        STD_VALUE: abs(J_std(r_random) - k * (n - 1) / n),
        STD_GRAD: float(np.abs(grad_r(J_std, n)).max()),
        ZSCORE_BANDWIDTH: float(np.abs(w_z - w_raw).max()),
    }


MEAN_CARRIES = r"`Variance`, $\bar b(r)$ carrying ratios: $\max_i \lvert \partial J/\partial r_i - w_i \rvert$"
STD_VALUE = r"`Variance`, $\bar b(r)$ and $s(r)$ carrying ratios: $\lvert J(r) - k(n-1)/n \rvert$ at a random $r$"
STD_GRAD = r"the same: $\max_i \lvert \partial J/\partial r_i \rvert$"
ZSCORE_BANDWIDTH = r"`Entropy(h)` on $b$ against `Entropy(h s, standardize=False)`: $\max_i \lvert \Delta w_i \rvert$"

BOUNDS = {
    MEAN_CARRIES: 1e-8,
    STD_VALUE: 1e-14,
    STD_GRAD: 1e-8,
    ZSCORE_BANDWIDTH: 1e-15,
}


def table_where_ratios() -> str:
    rows = [[what, f"< {bound:.0e}"] for what, bound in BOUNDS.items()]
    return markdown(["measured ($n = 12$, $k = 2$)", "bound asserted"], rows)


def test_table_where_ratios():
    """The consequences of EvoGrad's choice of where ratios go, each measured against its bound."""
    for what, value in where_ratios_measurements().items():
        assert value < BOUNDS[what], (what, value)
    assert table_where_ratios() in doc_text()


# ---------------------------------------------------------------- section 8: the worked example, n = 3

X3 = np.array([[-1.0], [0.0], [2.0]])  # mu = 0, sigma = 1; f = b = x


def frac(v: float) -> str:
    from fractions import Fraction

    q = Fraction(v).limit_denominator(1000)
    assert abs(float(q) - v) < 1e-12, v
    return str(q)


def worked_example() -> dict[str, str]:
    p = ng.Normal(np.zeros(1), 1.0, learn_sigma=True)
    x, n = X3, 3
    b = x[:, 0]
    scores = p.score(x)
    mean, var = ng.Mean()(b, x, p), ng.Variance()(b, x, p)
    entropy = ng.Entropy(bandwidth=1.0, standardize=False)(b, x, p)
    kernel = np.exp(-((b[:, None] - b[None, :]) ** 2))
    outer, nested = entropy_terms(b, 1.0, standardize=False)
    np.testing.assert_allclose(kernel.sum(axis=0) / n, np.exp(-outer), rtol=1e-15)
    np.testing.assert_allclose((outer - nested) / n, entropy.weights, rtol=1e-15)
    z = ng.zscore(b)
    tables = {}
    tables["scores"] = markdown(
        ["$i$", "$x_i$", r"$\partial_\mu \log p$", r"$\partial_\sigma \log p$"],
        [[str(i + 1), f"{b[i]:g}", f"{scores['mu'][i, 0]:g}", f"{scores['sigma'][i]:g}"] for i in range(n)],
    )
    tables["mean_variance"] = markdown(
        ["$i$", "`Mean` $w_i = f_i/n$", "$z_i$", "`Variance` $w_i = z_i^2/n$"],
        [[str(i + 1), f"${frac(mean.weights[i])}$", f"{z[i]:.4f}", f"${frac(var.weights[i])}$"] for i in range(n)],
    )
    tables["kernel"] = markdown(
        ["$K_{il}$", "$l = 1$", "$l = 2$", "$l = 3$"],
        [[f"$i = {i + 1}$"] + [f"{kernel[i, j]:.4f}" for j in range(n)] for i in range(n)],
    )
    tables["entropy"] = markdown(
        ["$i$", r"$\hat p_i$", r"outer $-\log \hat p_i$", r"nested $\frac1n\sum_l K_{il}/\hat p_l$", "$w_i$"],
        [
            [str(i + 1), f"{np.exp(-outer[i]):.4f}", f"{outer[i]:.4f}", f"{nested[i]:.4f}", f"{entropy.weights[i]:.4f}"]
            for i in range(n)
        ],
    )
    tables["gradients"] = markdown(
        ["estimator", "value $J$", r"$g_\mu = \sum_i w_i \partial_\mu \log p$", r"$g_\sigma$"],
        [
            [name, f"{e.value:.4f}", f"{e.grad['mu'][0]:.4f}", f"{e.grad['sigma']:.4f}"]
            for name, e in [("`Mean`", mean), ("`Variance`", var), ("`Entropy(1.0, standardize=False)`", entropy)]
        ],
    )
    return tables


@pytest.mark.parametrize("part", ["scores", "mean_variance", "kernel", "entropy", "gradients"])
def test_worked_example(part):
    """Every number of the n = 3 example is recomputed from the library."""
    assert worked_example()[part] in doc_text()


def test_worked_example_gradients_are_finite_differences_of_the_ratio_objectives():
    """The example's Entropy gradient, by finite differences of J(r(theta)) in mu and sigma."""
    x, b = X3, X3[:, 0]
    theta0 = ng.Normal(np.zeros(1), 1.0)
    kernel = np.exp(-((b[:, None] - b[None, :]) ** 2))

    def J(mu, sigma):
        r = np.exp(ng.Normal(np.array([mu]), sigma).log_prob(x) - theta0.log_prob(x))
        density = kernel @ r / 3
        return float((-np.log(density) * r).sum() / 3)

    grad = ng.Entropy(1.0, standardize=False)(b, x, ng.Normal(np.zeros(1), 1.0, learn_sigma=True)).grad
    step = 1e-6
    assert (J(step, 1) - J(-step, 1)) / (2 * step) == pytest.approx(grad["mu"][0], abs=1e-8)
    assert (J(0, 1 + step) - J(0, 1 - step)) / (2 * step) == pytest.approx(float(grad["sigma"]), abs=1e-8)


# ---------------------------------------------------------------- exercises


def test_exercise_self_normalised_kde_shifts_every_weight_by_one_over_n():
    rng = np.random.default_rng(21)
    n = 9
    z = rng.standard_normal((n, 2))
    kernel = np.exp(-((z[:, None, :] - z[None, :, :]) ** 2).sum(axis=2) / 0.8**2)

    def J(r):
        density = kernel @ r / r.sum()
        return float((-np.log(density) * r).sum() / n)

    w = ng.Entropy(0.8, standardize=False).weights(z, n)[1]
    np.testing.assert_allclose(grad_r(J, n), w + 1 / n, atol=1e-8)


def test_exercise_maxvar_gradient_vanishes_when_the_std_carries_ratios():
    rng = np.random.default_rng(22)
    b = rng.standard_normal((8, 3))
    J = maxvar_std_carries_ratios(b)
    assert J(rng.uniform(0.2, 3, 8)) == pytest.approx(3 * 7 / 8, rel=1e-14)
    np.testing.assert_allclose(grad_r(J, 8), 0, atol=1e-8)


def test_exercise_weights_of_the_mean_and_log_mean_of_exp_f():
    rng = np.random.default_rng(23)
    n = 6
    f = rng.standard_normal(n)
    mean_exp = lambda r: float((np.exp(f) * r).sum() / n)  # noqa: E731
    log_mean_exp = lambda r: float(np.log((np.exp(f) * r).sum() / n))  # noqa: E731
    np.testing.assert_allclose(grad_r(mean_exp, n), np.exp(f) / n, atol=1e-8)
    np.testing.assert_allclose(ng.Mean().weights(np.exp(f), n)[1], np.exp(f) / n, rtol=1e-15)
    np.testing.assert_allclose(grad_r(log_mean_exp, n), np.exp(f) / np.exp(f).sum(), atol=1e-8)


def test_exercise_leave_one_out_is_the_rescaled_batch_mean():
    f = np.random.default_rng(24).standard_normal((3, 7))
    n = f.shape[1]
    loo = (f.sum(axis=1, keepdims=True) - f) / (n - 1)
    np.testing.assert_allclose(f - loo, n / (n - 1) * (f - f.mean(axis=1, keepdims=True)), rtol=1e-13, atol=1e-15)
    rescaled = n / (n - 1) * shaped_weights(f, "mean")
    np.testing.assert_allclose(shaped_weights(f, "loo"), rescaled, rtol=1e-13, atol=1e-15)


def test_exercise_self_normalised_mean_is_the_batch_mean_baseline():
    f = np.random.default_rng(27).standard_normal(8)
    J = lambda r: float((r * f).sum() / r.sum())  # noqa: E731
    np.testing.assert_allclose(grad_r(J, 8), shaped_weights(f[None], "mean")[0], atol=1e-9)


def test_exercise_bernoulli_fisher_is_diagonal_pi_one_minus_pi():
    import itertools

    logits = np.array([-1.0, 0.3, 2.0])
    p = ng.Bernoulli(logits)
    x = np.array(list(itertools.product([0.0, 1.0], repeat=3)))
    prob = np.exp(p.log_prob(x))
    score = p.score(x)["logits"]
    fisher = np.einsum("i,ij,ik->jk", prob, score, score)
    pi = 1 / (1 + np.exp(-logits))
    np.testing.assert_allclose(fisher, np.diag(pi * (1 - pi)), atol=1e-15)
    g = np.array([0.2, -0.5, 0.7])
    np.testing.assert_allclose(p.natural_gradient({"logits": g})["logits"], np.linalg.solve(fisher, g), rtol=1e-12)


def test_exercise_expectation_is_mean_column_by_column():
    rng = np.random.default_rng(25)
    p = ng.Normal(np.array([0.2, -0.4]), 0.8, learn_sigma=True)
    x = p.sample(11, rng)
    f, h = rng.standard_normal(11), rng.standard_normal(11)
    single, mean = ng.expectation(f, x, p), ng.Mean()(f, x, p)
    assert single.value == pytest.approx(mean.value, rel=1e-15)
    np.testing.assert_allclose(single.weights, mean.weights, rtol=1e-15)
    for name in p.params:
        np.testing.assert_allclose(single.grad[name], mean.grad[name], rtol=1e-13)
    stacked = ng.expectation(np.column_stack([f, h]), x, p)
    for a, column in enumerate([f, h]):
        for name in p.params:
            np.testing.assert_allclose(stacked.grad[name][a], ng.Mean()(column, x, p).grad[name], rtol=1e-12)


def test_exercise_variance_sigma_gradient_of_the_example():
    p = ng.Normal(np.zeros(1), 1.0, learn_sigma=True)
    assert frac(float(ng.Variance()(X3[:, 0], X3, p).grad["sigma"])) == "74/63"


def test_exercise_one_component_mixture_is_a_normal():
    rng = np.random.default_rng(26)
    x = rng.standard_normal((9, 3))
    mu = np.array([0.5, -1.0, 2.0])
    one = ng.MixNormal(mu[None, :], 0.7).score(x)["mus"][:, 0, :]
    np.testing.assert_allclose(one, ng.Normal(mu, 0.7).score(x)["mu"], rtol=1e-13)
    mus = np.array([[0.0, 0.0, 0.0], [1.0, 0.5, -0.5], [-1.0, 2.0, 0.3]])
    mix = ng.MixNormal(mus, 0.7)
    log_k = -0.5 * ((x[:, None, :] - mus[None]) ** 2).sum(axis=2) / 0.7**2
    gamma = np.exp(log_k - log_k.max(axis=1, keepdims=True))
    gamma /= gamma.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(mix.score(x)["mus"].sum(axis=1), (x - gamma @ mus) / 0.7**2, rtol=1e-12)


def test_bernoulli_log_density_is_the_bracketed_sum():
    """Error 5 of issue 12: log p = sum_j [x_j l_j - log(1 + e^{l_j})], in the doc and the docstring."""
    logits = np.array([-1.0, 0.3, 2.0])
    x = np.array([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    bracketed = (x * logits - np.log1p(np.exp(logits))).sum(axis=1)
    np.testing.assert_allclose(ng.Bernoulli(logits).log_prob(x), bracketed, rtol=1e-15)
    assert r"\sum_j \big[x_j \ell_j - \log(1 + e^{\ell_j})\big]" in ng.Bernoulli.__doc__
    assert r"\sum_j \big[x_j \ell_j - \log(1 + e^{\ell_j})\big]" in doc_text()


def test_no_citation_of_a_design_section_that_does_not_exist():
    """Error 6 of issue 12: nothing cites "DESIGN.md section N" (the repository has no such file)."""
    for path in [*ROOT.glob("npevograd/*.py"), DOC, ROOT / "README.md"]:
        assert re.search(r"DESIGN\.md section \d", path.read_text()) is None, path


def test_every_formula_is_typeset():
    """No indented plain-text formula blocks remain: code blocks are python quotes, formulas are math."""
    text = doc_text()
    in_fence = False
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("```"):
            in_fence = not in_fence
            continue
        assert in_fence or not line.startswith("    "), f"line {number} is an indented plain-text block: {line!r}"
    fences = re.findall(r"^```(\w*)$", text, flags=re.M)
    assert set(fences[::2]) <= {"python", "math"}, set(fences[::2])


MARKDOWN_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
UNSAFE_IN_BARE_MATH = ("_", "*", r"\,", "\\\\")  # GitHub reads these as Markdown before it finds the math


def math_census(text: str) -> dict[str, list[str]]:
    """Inline spans (safe and bare), display blocks (```math) and $$ displays of a markdown text, outside code."""
    census: dict[str, list[str]] = {"safe": [], "bare": [], "math blocks": [], "$$ displays": []}
    in_fence, open_tick = None, None
    for line in text.split("\n"):
        if open_tick is None and line.startswith("```"):
            if in_fence is None:
                in_fence = line[3:].strip()
                census["math blocks"] += [line] if in_fence == "math" else []
            else:
                in_fence = None
            continue
        if in_fence is not None:
            continue
        if "$$" in line.replace("$`", "").replace("`$", ""):
            census["$$ displays"].append(line)
            continue
        spans, open_tick = math_spans(line, open_tick)
        for start, stop, safe in spans:
            census["safe" if safe else "bare"].append(line[start:stop])
    return census


@pytest.mark.parametrize("path", MARKDOWN_FILES, ids=lambda path: path.name)
def test_math_is_typeset_in_the_forms_github_renders(path):
    """Issue 23, rendering: no bare $...$ holding _, *, \\, or \\\\, no $$ display; inline math not glued to a word."""
    text = path.read_text()
    census = math_census(text)
    assert [span for span in census["bare"] if any(c in span for c in UNSAFE_IN_BARE_MATH)] == []
    assert census["$$ displays"] == []
    assert re.findall(r"[\w-]\$`", text) == []  # GitHub needs a space or punctuation before inline math


@pytest.mark.parametrize(
    ("mutated", "caught"),
    [
        ("the score $x_i$ here", True),
        ("a $2 * 3$ product", True),
        (r"a thin space $a\,b$", True),
        ("a plain $n$ stays legal", False),
        ("safe $`x_i`$ and `code $x_i$`", False),
        ("$$x_i$$", True),
    ],
)
def test_math_census_catches_bare_math(mutated, caught):
    census = math_census(mutated)
    bad = [span for span in census["bare"] if any(c in span for c in UNSAFE_IN_BARE_MATH)] + census["$$ displays"]
    assert bool(bad) == caught


def test_figures_script_smoke_runs(tmp_path):
    """docs/make_figures.py --quick writes the three figures the doc shows."""
    pytest.importorskip("matplotlib")
    written = FIGURES_SCRIPT.main(["--quick", "--out", str(tmp_path)])
    assert sorted(path.name for path in written) == sorted(FIGURES)
    for name in FIGURES:
        assert (tmp_path / name).stat().st_size > 1000
        assert f"]({name})" in doc_text()
        assert (ROOT / "docs" / name).is_file()


def test_figures_plot_the_library_and_the_formulas():
    """Issue 23, missing 5: each figure's arrays are the library's, and where the text derives a curve, that curve."""
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4)
    entropy = FIGURES_SCRIPT.entropy_weights(axes[0], axes[1])
    p = ng.Normal(np.array([1.0]), 0.5)
    x = p.sample(500, np.random.default_rng(0))
    np.testing.assert_array_equal(entropy["x"], x[:, 0])
    weights = ng.Entropy(bandwidth=1.0)(interference(x[:, 0]), x, p).weights
    np.testing.assert_allclose(entropy["n_w"], 500 * weights, rtol=1e-12)
    np.testing.assert_allclose(entropy["outer"] - entropy["nested"], entropy["n_w"], rtol=1e-10, atol=1e-12)
    variance = FIGURES_SCRIPT.gradient_variance(axes[2], axes[2], quick=True)
    dims = [int(d) for d in variance["d"]["x"]]
    assert variance["d"]["formula"] == [FIGURES_SCRIPT.loo_sd_formula(0.5, d) for d in dims]
    paths = FIGURES_SCRIPT.natural_step(axes[3], quick=True)
    plt.close(fig)
    steps = np.arange(len(paths["plain"]))
    # plain steps on -(x1^2 + 100 x2^2): mu_1 shrinks by 1 - 2 lr = 0.984 a step (1% of noise from n = 400 pairs)
    np.testing.assert_allclose(paths["plain"][:, 0], 3 * (1 - 2 * 0.008) ** steps, rtol=0.03)
    # natural steps: sigma^2 g = -2 mu in every coordinate, so mu halves a step at lr 0.25
    assert np.all(np.linalg.norm(paths["natural"], axis=1) <= 1.5 * 3 * math.sqrt(2) * 0.5**steps)


def test_leave_one_out_sd_against_d_is_the_derived_formula():
    """Figure 2's dashed curve, sections 10.8-10.9: the measured sd of g_mu,1 within 4.5 standard errors of it."""
    rng = np.random.default_rng(3)
    for d in (1, 10, 40):
        g = []
        for _ in range(4):
            eps = rng.standard_normal((2500, 20, d))
            f = -np.square(0.5 * eps - 1).sum(axis=2)
            g.append((FIGURES_SCRIPT.baseline_weights(f, "loo") * eps[:, :, 0] / 0.5).sum(axis=1))
        g = np.concatenate(g)
        variance = g.var(ddof=1)
        kurtosis = ((g - g.mean()) ** 4).mean() / variance**2
        se = variance * math.sqrt((kurtosis - 1) / g.size)
        assert abs(variance - FIGURES_SCRIPT.loo_sd_formula(0.5, d) ** 2) < 4.5 * se, d


def test_no_baseline_sd_rises_for_sigma_above_one():
    """Section 10.9: without a baseline the (E f)^2 / sigma^2 term makes the sd rise beyond sigma = 1; measured."""
    rng = np.random.default_rng(4)
    for sigma in (1.0, 3.0):
        eps = rng.standard_normal((8000, 20, 10))
        f = -np.square(sigma * eps - 1).sum(axis=2)
        g = (FIGURES_SCRIPT.baseline_weights(f, "none") * eps[:, :, 0] / sigma).sum(axis=1)
        variance = g.var(ddof=1)
        se = variance * math.sqrt((((g - g.mean()) ** 4).mean() / variance**2 - 1) / g.size)
        assert abs(variance - FIGURES_SCRIPT.no_baseline_sd_formula(sigma, 10) ** 2) < 4.5 * se, sigma
    none = [FIGURES_SCRIPT.no_baseline_sd_formula(s, 10) for s in (0.5, 1.0, 3.0)]
    assert none[1] < none[0] and none[1] < none[2]  # the minimum near sigma = 1
    ratio = [FIGURES_SCRIPT.no_baseline_sd_formula(s, 10) / FIGURES_SCRIPT.loo_sd_formula(s, 10) for s in (1.0, 3.0)]
    assert ratio[0] > 2 and ratio[1] > 2  # the baseline removes most of it at every sigma


def notation_symbols(text: str) -> list[str]:
    """Every symbol section 0's notation table defines: the math spans of each row's first cell, split at ", "."""
    table = text[text.index("## 0. Notation") : text.index("## 1. The problem")]
    symbols = []
    for line in table.split("\n"):
        if line.startswith("| $`"):
            cell = line.split(" | ")[0]
            symbols += [symbol.strip() for span in re.findall(r"\$`(.*?)`\$", cell) for symbol in span.split(", ")]
    return symbols


def defined_twice(symbols: list[str]) -> list[str]:
    return sorted({symbol for symbol in symbols if symbols.count(symbol) > 1})


def test_notation_table_defines_each_symbol_once():
    """Issue 23, wrong 5: one symbol per quantity; a second row defining a symbol fails (checked on a copy)."""
    symbols = notation_symbols(doc_text())
    assert len(symbols) > 80 and defined_twice(symbols) == []
    row = "| $`n`$; $`i, l`$; $`j`$ |"
    assert row in doc_text()
    twice = doc_text().replace(row, row.replace("$`j`$", "$`j`$; $`k`$"), 1)
    assert defined_twice(notation_symbols(twice)) == ["k"]


def _docstring(path: str) -> str:
    import ast

    return ast.get_docstring(ast.parse((ROOT / path).read_text())) or ""


SECOND_MEANINGS = [  # (where, pattern, the meaning the symbol no longer has there)
    ("docs/reuse.md", r"\$`b_i|- b_i\(", "b as a baseline (it is the behaviour; baselines are kappa)"),
    ("docs/reuse.md", r"s_i", "s as the score (s is a standard deviation; the score is psi)"),
    ("docs/reuse.md", r"F_q|F_p", "F as a CDF (F is the Fisher information; CDFs are G)"),
    ("docs/reuse.md", r"f_i - m\)", "m as a shift (m is the number of categories)"),
    ("docs/derivations.md", r"\\phi(?![a-z])", "phi as a smooth function (it is Omega)"),
    ("docs/derivations.md", r"\\epsilon_c|\\epsilon_m|\\epsilon_\{ic\}", "epsilon per component (it is zeta_c)"),
    ("docs/derivations.md", r"component \$`m`\$", "m as the nearest component (it is c^star)"),
    ("docs/derivations.md", r"K_\{ij\}|\\hat p_j|K_\{jj\}", "j as a sample index (it is a coordinate)"),
    ("docs/derivations.md", r"baseline \$`b_i`\$", "b as a baseline"),
    (
        "npevograd/distributions/multivariate.py",
        r":math:`u\b|u u\^|u\^\\top",
        "u as the whitened sample (u is a utility)",
    ),
    ("npevograd/algorithms/xnes.py", r"z_k", "z as the whitened sample (z is a z-score)"),
    ("npevograd/algorithms/pgpe.py", r"\\frac1m|m = n/2", "m as the number of pairs"),
    ("npevograd/estimators/stderr.py", r"s_i", "s as the score"),
]


@pytest.mark.parametrize(("where", "pattern", "meaning"), SECOND_MEANINGS, ids=[m[2][:30] for m in SECOND_MEANINGS])
def test_no_symbol_keeps_a_second_meaning(where, pattern, meaning):
    """Issue 23, wrong 5: each symbol that had two meanings keeps one, in the docs and the module docstrings."""
    text = _docstring(where) if where.endswith(".py") else (ROOT / where).read_text()
    assert re.search(pattern, text) is None, (where, meaning, re.search(pattern, text))


FIGURES = ["entropy_weights.png", "gradient_variance.png", "natural_step.png"]


def all_tables() -> list[str]:
    """Every table the doc prints, in markdown."""
    tables = [
        result[0] if isinstance(result, tuple) else result
        for result in (
            table_antithetic(),
            table_nes_utilities(),
            table_zscore_tails(),
            table_kde_target(),
            table_maxvar_target(),
            table_nested(),
            table_shaping(),
            table_variance_value(),
            table_where_ratios(),
        )
    ]
    return tables + list(worked_example().values())


def all_reuse_tables() -> list[str]:
    """Every table docs/reuse.md prints that is computed here."""
    return [table_reuse_baselines()[0]]


def write_tables(text: str, tables: list[str]) -> str:
    """Replace each table of ``text`` that starts with a table's header line by that table."""
    lines = text.split("\n")
    for table in tables:
        header = table.split("\n")[0]
        start = lines.index(header)  # headers are unique and fixed; only the numbers change
        stop = start
        while stop < len(lines) and lines[stop].startswith("|"):
            stop += 1
        lines[start:stop] = table.split("\n")
    return "\n".join(lines)


def test_write_tables_restores_a_changed_table():
    table = table_variance_value()
    stale = doc_text().replace(table, table.replace("2.997", "2.9"))
    assert stale != doc_text() and write_tables(stale, [table]) == doc_text()


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:  # after a deliberate change: rewrite the doc's tables in place
        DOC.write_text(write_tables(doc_text(), all_tables()))
        REUSE.write_text(write_tables(reuse_text(), all_reuse_tables()))
        sys.exit(0)
    for table in all_tables() + all_reuse_tables():
        print(table + "\n")
