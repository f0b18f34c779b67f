"""docs/derivations.md and docs/reuse.md made executable: every display formula, every numeric claim.

Four kinds of check, each of which reads the documents as they are:

- ``DISPLAY``: each display formula (a ```math block) is quoted verbatim next to a check of its
  mathematics (sympy on a small symbolic case, or the library at random points); a block that is
  not quoted here, or a quote that is not in the doc, fails.
- ``arithmetic``: every inline or display formula whose sides are plain arithmetic (fractions,
  roots, logs, pi, e, the normal density) is evaluated side by side, to the printed digits.
- ``PROSE``: numbers in the prose, each printed from its computation (the library, a quadrature,
  the tables of the doc itself).
- the formula ledger (``tests/data/docs_formulas.txt``): every inline formula with a digit or a
  sign, and every prose line with a number, as reviewed; ``python tests/test_docs_claims.py
  --write`` rewrites it after a deliberate change. It pins text; it does not check mathematics.

``doc_failures(texts)`` returns every failure for given document texts, so that
``tests/docs_mutation.py`` can run all of them on single random edits.
"""

from __future__ import annotations

import functools
import math
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import npevograd as ng

sys.path.insert(0, str(Path(__file__).resolve().parent))
import test_docs  # noqa: E402  (the tables, the math census)

sp = pytest.importorskip("sympy")

ROOT = test_docs.ROOT
DOCS = {"derivations": test_docs.DOC, "reuse": test_docs.REUSE}
LEDGER = ROOT / "tests" / "data" / "docs_formulas.txt"


def texts_now() -> dict[str, str]:
    return {name: path.read_text() for name, path in DOCS.items()}


# ---------------------------------------------------------------- the display formulas, verbatim, with their checks
# (the quotes keep the documents' long lines: E501 is waived on their closing lines)


B_D1 = r"""\nabla_\theta\, \mathbb E_{x \sim p_\theta}[f(x)]."""


B_D2 = r"""\nabla_\theta \mathbb E[f]
= \nabla_\theta \int f(x)\, p_\theta(x)\, dx
= \int f(x)\, \nabla_\theta p_\theta(x)\, dx
= \int f(x)\, p_\theta(x)\, \nabla_\theta \log p_\theta(x)\, dx
= \mathbb E\big[f(x)\, \nabla_\theta \log p_\theta(x)\big],"""


B_D3 = r"""\mathbb E[\nabla_\theta \log p_\theta(x)] = \int \nabla_\theta p_\theta(x)\, dx = \nabla_\theta 1 = 0"""


B_D4 = r"""r_i(\theta) = \frac{p_\theta(x_i)}{p_{\theta_0}(x_i)}, \qquad r_i(\theta_0) = 1,
\qquad \nabla_\theta r_i \big|_{\theta_0} = r_i\, \nabla_\theta \log p_\theta(x_i) \big|_{\theta_0} = \nabla_\theta \log p_\theta(x_i)\big|_{\theta_0}."""  # noqa: E501


B_D5 = r"""\nabla_\theta J = \sum_i \frac{\partial J}{\partial r_i}\Big|_{r = 1} \nabla_\theta \log p_\theta(x_i)
= \sum_i w_i\, \nabla_\theta \log p_\theta(x_i)."""


B_D6 = r"""\frac{\partial J}{\partial r_i} = \frac{(b_i - \bar b)^2}{n s^2}
- \frac{2}{n s^2} \sum_l r_l (b_l - \bar b)\, \frac{b_i}{n},"""


B_D7 = r"""J(r) = \frac1n \sum_i f_i\, r_i, \qquad w_i = \frac{\partial J}{\partial r_i} = \frac{f_i}{n}."""


B_D8 = r"""z_{ij} = \frac{b_{ij} - \bar b_j}{s_j}, \qquad
J(r) = \frac1n \sum_i \lVert z_i\rVert^2 r_i, \qquad
w_i = \frac{\lVert z_i\rVert^2}{n}."""


B_D9 = r"""J(r) = \frac1n \sum_j \frac{\sum_i r_i (b_{ij} - \bar b_j(r))^2}{s_j(r)^2}
= \frac1n \sum_j (n - 1) = \frac{k(n-1)}{n}:"""


B_D10 = r"""K_{il} = \exp\!\big(-\lVert z_i - z_l\rVert^2 / h^2\big), \qquad K_{ii} = 1, \qquad K_{il} = K_{li}."""


B_D11 = r"""\hat p_l(r) = \frac1n \sum_i K_{il}\, r_i, \qquad
J(r) = \frac1n \sum_l \big(-\log \hat p_l(r)\big)\, r_l ."""


B_D12 = r"""w_i = \underbrace{\frac1n\big(-\log \hat p_i\big)}_{\text{outer},\ l = i}
\;+\; \underbrace{\frac1n \sum_l \Big(-\frac{1}{\hat p_l}\Big)\frac{K_{il}}{n}}_{\text{nested}}
= \frac1n\big[-\log \hat p_i - \nu_i\big], \qquad \nu_i = \frac1n \sum_l \frac{K_{il}}{\hat p_l}."""


B_D13 = r"""J_a(r) = \frac1n \sum_i v_{ia}\, r_i, \qquad \frac{\partial J_a}{\partial r_i} = \frac{v_{ia}}{n}."""


B_D14 = r"""\mathbb E\Big[\sum_i \frac{f_i - \bar f}{n} \nabla \log p(x_i)\Big]
= \mathbb E\Big[\sum_i \frac{1}{n}\Big(1 - \frac1n\Big) f_i\, \nabla \log p(x_i)\Big]
= \frac{n-1}{n}\, \nabla_\theta \mathbb E f:"""


B_D15 = (
    r"""\frac{\partial J}{\partial r_i}\Big|_{r=1} = \frac{f_i}{n} - \frac{\sum_l f_l}{n^2} = \frac{f_i - \bar f}{n}:"""
)


B_D16 = r"""\frac{f(\mu + \sigma\epsilon) - f(\mu - \sigma\epsilon)}{2}\,\frac{\epsilon}{\sigma}
\quad\text{in } g_\mu,
\qquad
\frac{f(\mu + \sigma\epsilon) + f(\mu - \sigma\epsilon)}{2}\,\frac{\epsilon^2 - 1}{\sigma}
\quad\text{in } g_\sigma."""


B_D17 = r"""J \;\to\; -\mathbb E_{p_z}\big[\log (p_z \star N(0, \tfrac{h^2}{2} I))\big] - \frac k2 \log(\pi h^2),"""


B_D18 = r"""\log p(x) = -\sum_j \frac{(x_j - \mu_j)^2}{2\sigma_j^2} - \sum_j \log \sigma_j - \frac d2 \log 2\pi ."""


B_D19 = r"""\partial_{\mu_j} \log p = \frac{\delta_j}{\sigma_j^2}, \qquad
\partial_{\sigma_j} \log p = \frac{\delta_j^2}{\sigma_j^3} - \frac1{\sigma_j}\ \text{(diagonal)}, \qquad
\partial_\sigma \log p = \frac{\lVert\delta\rVert^2}{\sigma^3} - \frac d\sigma\ \text{(isotropic)}."""


B_D20 = r"""\sum_i w_i \frac{\delta_i}{\sigma^2} = \frac{\sum_i w_i x_i - (\sum_i w_i)\,\mu}{\sigma^2},"""


B_D21 = r"""\sum_i w_i \frac{\delta_i}{\sigma^2} = \frac1\sigma \sum_i w_i\,\epsilon_i, \qquad
\sum_i w_i\, \partial_{\sigma_j}\log p(x_i) = \frac1{\sigma_j}\Big(\sum_i w_i\, \epsilon_{ij}^2 - \sum_i w_i\Big),
\qquad
\sum_i w_i\, \partial_\sigma \log p(x_i) = \frac1\sigma\Big(\sum_j\sum_i w_i\, \epsilon_{ij}^2 - d\sum_i w_i\Big),"""


B_D22 = r"""\sum_i w_i \frac{\delta_i}{\sigma^2} = \frac1\sigma \sum_i (w_i \varsigma_i)\,\epsilon_i, \qquad
\sum_i w_i \Big(\frac{\delta_{ij}^2}{\sigma_j^3} - \frac1{\sigma_j}\Big) = \frac1{\sigma_j}\Big(\sum_i w_i \epsilon_{ij}^2 - \sum_i w_i\Big):"""  # noqa: E501


B_D23 = r"""\nabla_{\mu_c} \log p(x) = \frac{\frac1C \nabla_{\mu_c} N(x; \mu_c)}{p(x)}
= \frac{N(x; \mu_c)\, (x - \mu_c)/\sigma^2}{\sum_{c'} N(x; \mu_{c'})}
= \gamma_c(x)\, \frac{x - \mu_c}{\sigma^2},"""


B_D24 = r"""\lVert\zeta_c\rVert^2 - \lVert\zeta_{c^\star}\rVert^2 = \frac{\mu_{c^\star} - \mu_c}{\sigma} \cdot (\zeta_c + \zeta_{c^\star}),"""  # noqa: E501


B_D25 = r"""\log p(x) = \sum_j \big[x_j \ell_j - \log(1 + e^{\ell_j})\big], \qquad
\partial_{\ell_j} \log p(x) = x_j - \operatorname{sigmoid}(\ell_j) = x_j - \pi_j ."""  # noqa: E501


B_D26 = r"""\log p(x) = \sum_j \log \operatorname{softmax}(\ell_j)_{x_j}, \qquad
\partial_{\ell_j} \log p(x) = \operatorname{onehot}(x_j) - \operatorname{softmax}(\ell_j)."""


B_D27 = r"""\mu \leftarrow \mu + \eta_\mu\, n\, \tilde g_\mu, \qquad
\sigma \leftarrow \sigma \odot \exp\!\Big(\eta_\sigma\, \frac{n\, \tilde g_\sigma}{\sigma}\Big),
\qquad \eta_\sigma = \frac{3 + \ln d}{5\sqrt d}."""


B_D28 = r"""-\lVert \tilde z_i - \tilde z_l\rVert^2 = \big[2\tilde z_i,\ -\lVert \tilde z_i\rVert^2,\ -1\big] \cdot \big[\tilde z_l,\ 1,\ \lVert \tilde z_l\rVert^2\big]"""  # noqa: E501


B_R1 = r"""\nabla_\theta J = \sum_i \left.\frac{\partial J}{\partial r_i}\right|_{r=\rho} \rho_i\, \nabla_\theta \log p_\theta(x_i)."""  # noqa: E501


B_R2 = r"""\log q(x) = \operatorname{logsumexp}_g\big(\log p_g(x) + \log n_g\big) - \log N,"""


def _normal_symbols():
    x, mu = sp.symbols("x mu", real=True)
    sigma = sp.symbols("sigma", positive=True)
    log_p = -((x - mu) ** 2) / (2 * sigma**2) - sp.log(sigma) - sp.log(2 * sp.pi) / 2
    return x, mu, sigma, log_p


def _normal_expectation(expr, x, mu, sigma):
    return sp.simplify(
        sp.integrate(
            expr * sp.exp(-((x - mu) ** 2) / (2 * sigma**2)) / (sigma * sp.sqrt(2 * sp.pi)), (x, -sp.oo, sp.oo)
        )
    )


def check_score_identity():
    """Blocks D1-D3 and D5: E[f score] is the gradient of E f, the score has mean zero (sympy, f = x^3 + e^x)."""
    x, mu, sigma, log_p = _normal_symbols()
    f = x**3 + x
    lhs = sp.diff(_normal_expectation(f, x, mu, sigma), mu)
    rhs = _normal_expectation(f * sp.diff(log_p, mu), x, mu, sigma)
    assert sp.simplify(lhs - rhs) == 0
    for theta in (mu, sigma):
        assert _normal_expectation(sp.diff(log_p, theta), x, mu, sigma) == 0


def check_ratio_derivative():
    """Block D4: r_i(theta_0) = 1 and grad r_i at theta_0 is the score (library, finite differences)."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 2))
    p0 = ng.Normal(np.array([0.3, -0.2]), 0.7)
    step = 1e-6
    for j in range(2):
        e = np.zeros(2)
        e[j] = step
        up = np.exp(ng.Normal(p0.mu + e, 0.7).log_prob(x) - p0.log_prob(x))
        down = np.exp(ng.Normal(p0.mu - e, 0.7).log_prob(x) - p0.log_prob(x))
        np.testing.assert_allclose((up - down) / (2 * step), p0.score(x)["mu"][:, j], rtol=1e-6)


def _r(n):
    return sp.symbols(f"r1:{n + 1}", positive=True)


def _at_one(expr, r):
    return expr.subs({ri: 1 for ri in r})


def check_variance_mean_carries_ratios():
    """Block D6: d/dr_i of (1/n) sum_l r_l (b_l - bbar(r))^2 / s^2, with bbar(r) = (1/n) sum_l r_l b_l."""
    n = 3
    r, b = _r(n), sp.symbols("b1:4", real=True)
    s = sp.symbols("s", positive=True)
    bbar = sum(ri * bi for ri, bi in zip(r, b)) / n
    J = sum(rl * (bl - bbar) ** 2 for rl, bl in zip(r, b)) / (n * s**2)
    for i in range(n):
        formula = (b[i] - bbar) ** 2 / (n * s**2) - 2 / (n * s**2) * sum(rl * (bl - bbar) for rl, bl in zip(r, b)) * b[
            i
        ] / n
        assert sp.simplify(sp.diff(J, r[i]) - formula) == 0
        assert sp.simplify(_at_one(sp.diff(J, r[i]) - (b[i] - bbar) ** 2 / (n * s**2), r)) == 0  # zero at r = 1


def check_linear_weights():
    """Blocks D7, D13: the weights of J(r) = (1/n) sum_i v_i r_i are v_i / n, the library's Mean weights."""
    n = 4
    r, v = _r(n), sp.symbols("v1:5", real=True)
    J = sum(vi * ri for vi, ri in zip(v, r)) / n
    assert [sp.diff(J, ri) for ri in r] == [vi / n for vi in v]
    values = np.array([0.5, -1.0, 2.0, 0.25])
    np.testing.assert_allclose(ng.Mean().weights(values, n)[1], values / n, rtol=1e-15)


def check_maxvar():
    """Blocks D8, D9: z-scored weights ||z_i||^2 / n (library); with s(r) carrying ratios J(r) = k (n - 1)/n."""
    n, k = 3, 2
    r = _r(n)
    b = sp.Matrix(n, k, lambda i, j: sp.Rational((i + 1) * (j + 2) + i * i, j + 1))
    J = 0
    for j in range(k):
        bbar = sum(r[i] * b[i, j] for i in range(n)) / n
        s2 = sum(r[i] * (b[i, j] - bbar) ** 2 for i in range(n)) / (n - 1)
        J += sum(r[i] * (b[i, j] - bbar) ** 2 for i in range(n)) / (n * s2)
    assert sp.simplify(J - sp.Rational(k * (n - 1), n)) == 0
    values = np.array(b.tolist(), dtype=float)
    z = (values - values.mean(axis=0)) / values.std(axis=0, ddof=1)
    np.testing.assert_allclose(ng.Variance().weights(values, n)[1], (z**2).sum(axis=1) / n, rtol=1e-13)


def check_entropy_weights():
    """Blocks D10-D12: differentiate J(r) = (1/n) sum_j -log(p_j(r)) r_j, p_j(r) = (1/n) sum_i K_ij r_i, at r = 1."""
    n = 3
    r = _r(n)
    z = [sp.Rational(-1), sp.Rational(0), sp.Rational(2)]
    K = sp.Matrix(n, n, lambda i, j: sp.exp(-((z[i] - z[j]) ** 2)))  # h = 1
    assert all(K[i, i] == 1 and K[i, j] == K[j, i] for i in range(n) for j in range(n))
    p_hat = [sum(K[i, j] * r[i] for i in range(n)) / n for j in range(n)]
    J = sum(-sp.log(p_hat[j]) * r[j] for j in range(n)) / n
    density = [_at_one(pj, r) for pj in p_hat]
    nu = [sum(K[i, j] / density[j] for j in range(n)) / n for i in range(n)]
    formula = [(-sp.log(density[i]) - nu[i]) / n for i in range(n)]
    got = [_at_one(sp.diff(J, ri), r) for ri in r]
    np.testing.assert_allclose([float(g) for g in got], [float(f) for f in formula], rtol=1e-14)
    w = ng.Entropy(1.0, standardize=False).weights(np.array([-1.0, 0.0, 2.0]), n)[1]
    np.testing.assert_allclose(w, [float(f) for f in formula], rtol=1e-12)


def _gaussian_expectation(poly, xs, mu):
    """E of a polynomial in independent x_j ~ N(mu, 1): x_j = mu + e_j, E e^k = (k - 1)!! for even k, 0 for odd."""
    es = sp.symbols(f"e1:{len(xs) + 1}", real=True)
    expr = sp.Poly(sp.expand(poly.subs({x: mu + e for x, e in zip(xs, es)})), *es)
    total = 0
    for powers, coefficient in expr.terms():
        moment = 1
        for k in powers:
            moment *= 0 if k % 2 else sp.factorial2(k - 1)
        total += coefficient * moment
    return sp.expand(total)


def check_batch_mean_bias():
    """Block D14: E[sum_i (f_i - fbar)/n score_i] = (n-1)/n grad E f (sympy, exact moments, n = 2, 3, 4)."""
    mu = sp.symbols("mu", real=True)
    xs = sp.symbols("x1:5", real=True)
    f = lambda x: x**3 + 2 * x  # noqa: E731
    grad = sp.diff(_gaussian_expectation(f(xs[0]), xs[:1], mu), mu)
    assert sp.expand(grad - (3 * mu**2 + 5)) == 0  # d/dmu (mu^3 + 3 mu + 2 mu)
    for n in (2, 3, 4):
        fbar = sum(f(x) for x in xs[:n]) / n
        g = sum((f(x) - fbar) / n * (x - mu) for x in xs[:n])  # the score of N(mu, 1) is x - mu
        assert sp.expand(_gaussian_expectation(g, xs[:n], mu) - sp.Rational(n - 1, n) * grad) == 0


def check_self_normalised():
    """Block D15: the weights of sum_i r_i f_i / sum_i r_i at r = 1 are (f_i - fbar)/n."""
    n = 3
    r, f = _r(n), sp.symbols("f1:4", real=True)
    J = sum(ri * fi for ri, fi in zip(r, f)) / sum(r)
    fbar = sum(f) / n
    for i in range(n):
        assert sp.simplify(_at_one(sp.diff(J, r[i]), r) - (f[i] / n - sum(f) / n**2)) == 0
        assert sp.simplify(f[i] / n - sum(f) / n**2 - (f[i] - fbar) / n) == 0


def check_antithetic_pair():
    """Block D16: a mirrored pair's two terms of Mean average to the odd part (mu) and the even part (sigma)."""
    eps, mu = sp.symbols("epsilon mu", real=True)
    sigma = sp.symbols("sigma", positive=True)
    f = sp.Function("f")
    plus, minus = f(mu + sigma * eps), f(mu - sigma * eps)
    score_mu = lambda e: e / sigma  # noqa: E731  (delta / sigma^2 with delta = sigma e)
    score_sigma = lambda e: (e**2 - 1) / sigma  # noqa: E731
    pair_mu = (plus * score_mu(eps) + minus * score_mu(-eps)) / 2
    pair_sigma = (plus * score_sigma(eps) + minus * score_sigma(-eps)) / 2
    assert sp.simplify(pair_mu - (plus - minus) / 2 * eps / sigma) == 0
    assert sp.simplify(pair_sigma - (plus + minus) / 2 * (eps**2 - 1) / sigma) == 0


def check_kde_limit():
    """Block D17: -E log Kbar = -E log N(z; 0, 1 + h^2/2) - (k/2) log(pi h^2) for N(0, 1) behaviours, h = 1."""
    z = sp.symbols("z", real=True)
    h = 1
    kbar = sp.exp(-(z**2) / 3) / sp.sqrt(3)  # E_z' exp(-(z - z')^2 / h^2), z' ~ N(0, 1)
    zp = sp.symbols("zp", real=True)
    direct = sp.integrate(
        sp.exp(-((z - zp) ** 2) / h**2) * sp.exp(-(zp**2) / 2) / sp.sqrt(2 * sp.pi), (zp, -sp.oo, sp.oo)
    )
    assert sp.simplify(direct - kbar) == 0
    smoothed = sp.exp(-(z**2) / 3) / sp.sqrt(2 * sp.pi * sp.Rational(3, 2))  # N(0, 1 + h^2/2)
    assert sp.simplify(kbar - sp.sqrt(sp.pi * h**2) * smoothed) == 0  # (pi h^2)^{k/2} times the smoothed density
    limit = sp.integrate(-sp.log(kbar) * sp.exp(-(z**2) / 2) / sp.sqrt(2 * sp.pi), (z, -sp.oo, sp.oo))
    assert float(limit) == pytest.approx(test_docs.KDE_LIMIT, rel=1e-14)


def check_normal_scores():
    """Blocks D18, D19: the Normal log-density and its scores (sympy), diagonal and isotropic, against the library."""
    x, mu, sigma, log_p = _normal_symbols()
    delta = x - mu
    assert sp.simplify(sp.diff(log_p, mu) - delta / sigma**2) == 0
    assert sp.simplify(sp.diff(log_p, sigma) - (delta**2 / sigma**3 - 1 / sigma)) == 0
    d = 3
    xs, mus = sp.symbols("x1:4", real=True), sp.symbols("m1:4", real=True)
    iso = sum(-((a - m) ** 2) / (2 * sigma**2) - sp.log(sigma) for a, m in zip(xs, mus)) - sp.Rational(d, 2) * sp.log(
        2 * sp.pi
    )
    norm2 = sum((a - m) ** 2 for a, m in zip(xs, mus))
    assert sp.simplify(sp.diff(iso, sigma) - (norm2 / sigma**3 - d / sigma)) == 0
    rng = np.random.default_rng(2)
    p = ng.Normal(np.array([0.3, -1.0, 2.0]), np.array([0.5, 1.5, 0.8]), learn_sigma=True)
    points = rng.standard_normal((4, 3))
    lam = sp.lambdify((x, mu, sigma), log_p)
    np.testing.assert_allclose(p.log_prob(points), lam(points, p.mu, p.sigma).sum(axis=1), rtol=1e-13)


def check_contractions():
    """Blocks D20-D22: the contracted scores equal the library's weighted_score (plain, learned sigma, signed)."""
    rng = np.random.default_rng(3)
    n, d = 7, 3
    mu, sigma = np.array([0.5, -0.2, 1.0]), np.array([0.7, 1.3, 0.4])
    eps = rng.standard_normal((n, d))
    signs = np.where(rng.uniform(size=n) < 0.5, -1.0, 1.0)
    x = mu + signs[:, None] * sigma * eps
    w = rng.standard_normal(n)
    delta = x - mu
    diag = ng.Normal(mu, sigma, learn_sigma=True).weighted_score(w, x)
    np.testing.assert_allclose(diag["mu"], (w @ x - w.sum() * mu) / sigma**2, rtol=1e-12)
    np.testing.assert_allclose(diag["mu"], (w * signs) @ eps / sigma, rtol=1e-12)
    np.testing.assert_allclose(diag["sigma"], (w @ eps**2 - w.sum()) / sigma, rtol=1e-12)
    np.testing.assert_allclose(w @ (delta**2 / sigma**3 - 1 / sigma), (w @ eps**2 - w.sum()) / sigma, rtol=1e-12)
    iso = ng.Normal(mu, 0.9, learn_sigma=True)
    e_iso = delta / 0.9
    grad = iso.weighted_score(w, x)
    assert float(grad["sigma"]) == pytest.approx(((w @ e_iso**2).sum() - d * w.sum()) / 0.9, rel=1e-12)


def check_mixture():
    """Blocks D23, D24: the mixture's mu_c score is gamma_c (x - mu_c)/sigma^2; the product form of the difference."""
    x, m1, m2 = sp.symbols("x m1 m2", real=True)
    sigma = sp.symbols("sigma", positive=True)
    normal = lambda m: sp.exp(-((x - m) ** 2) / (2 * sigma**2)) / (sigma * sp.sqrt(2 * sp.pi))  # noqa: E731
    p = (normal(m1) + normal(m2)) / 2
    gamma1 = normal(m1) / (normal(m1) + normal(m2))
    assert sp.simplify(sp.diff(sp.log(p), m1) - gamma1 * (x - m1) / sigma**2) == 0
    e1, e2 = (x - m1) / sigma, (x - m2) / sigma
    assert sp.expand(e1**2 - e2**2 - (m2 - m1) / sigma * (e1 + e2)) == 0  # c = 1, m = 2
    rng = np.random.default_rng(4)
    mus = np.array([[0.0, 1.0], [1.5, -0.5]])
    points = rng.standard_normal((5, 2))
    score = ng.MixNormal(mus, 0.8).score(points)["mus"]
    log_k = -0.5 * ((points[:, None, :] - mus[None]) ** 2).sum(axis=2) / 0.64
    gamma = np.exp(log_k - log_k.max(axis=1, keepdims=True))
    gamma /= gamma.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(score, gamma[:, :, None] * (points[:, None, :] - mus[None]) / 0.64, rtol=1e-12)


def check_discrete_scores():
    """Blocks D25, D26: Bernoulli and categorical log-densities and scores (sympy)."""
    ell, xv = sp.symbols("ell x", real=True)
    log_p = xv * ell - sp.log(1 + sp.exp(ell))
    assert sp.simplify(sp.diff(log_p, ell) - (xv - 1 / (1 + sp.exp(-ell)))) == 0
    for value in (0, 1):  # the bracket is log of pi^x (1 - pi)^(1 - x)
        pi = 1 / (1 + sp.exp(-ell))
        assert sp.simplify(sp.exp(log_p.subs(xv, value)) - pi**value * (1 - pi) ** (1 - value)) == 0
    logits = sp.symbols("l1:4", real=True)
    total = sum(sp.exp(li) for li in logits)
    for category in range(3):
        log_softmax = logits[category] - sp.log(total)
        for j in range(3):
            onehot = 1 if j == category else 0
            assert sp.simplify(sp.diff(log_softmax, logits[j]) - (onehot - sp.exp(logits[j]) / total)) == 0


def check_snes_update():
    """Block D27: SNES's update is mu + eta_mu n g_mu, sigma exp(eta_sigma n g_sigma / sigma), eta_sigma its default."""
    d = 5
    es = ng.algorithms.SNES(np.zeros(d), 0.7, rng=3)
    assert es.lr_sigma == pytest.approx((3 + math.log(d)) / (5 * math.sqrt(d)), rel=1e-15)
    p = es.distribution
    mu, sigma = p.mu.copy(), p.sigma.copy()
    x = es.ask()
    f = -np.square(x).sum(axis=1)
    natural = p.natural_gradient(ng.Mean(shaping=ng.nes_utilities)(f, x, p).grad)
    n = len(x)
    es.tell(f)
    np.testing.assert_allclose(es.mean, mu + es.lr_mu * n * natural["mu"], rtol=1e-12)
    np.testing.assert_allclose(p.sigma, sigma * np.exp(es.lr_sigma * n * natural["sigma"] / sigma), rtol=1e-12)


def check_tile_exponent():
    """Block D28: -||a - b||^2 = [2a, -||a||^2, -1] . [b, 1, ||b||^2] (sympy, two dimensions)."""
    a, b = sp.symbols("a1:3", real=True), sp.symbols("b1:3", real=True)
    lhs = -sum((ai - bi) ** 2 for ai, bi in zip(a, b))
    left = [2 * ai for ai in a] + [-sum(ai**2 for ai in a), -1]
    right = list(b) + [1, sum(bi**2 for bi in b)]
    assert sp.expand(lhs - sum(u * v for u, v in zip(left, right))) == 0


def check_reuse_identity():
    """Block R1: with a proposal the gradient is sum_i (dJ/dr_i at r = rho) rho_i score_i (library, Entropy)."""
    rng = np.random.default_rng(5)
    p, q = ng.Normal(np.array([0.4]), 0.8), ng.Normal(np.array([0.0]), 1.2)
    x = q.sample(9, rng)
    b = np.sin(3 * x[:, 0])
    rho = np.exp(p.log_prob(x) - q.log_prob(x))
    kernel = np.exp(-((b[:, None] - b[None, :]) ** 2))
    n = len(b)

    def J(r):
        return float((-np.log(kernel @ r / n) * r).sum() / n)

    step = 1e-7
    dJ = np.array([(J(rho + step * e) - J(rho - step * e)) / (2 * step) for e in np.eye(n)])
    got = ng.Entropy(1.0, standardize=False)(b, x, p, proposal=q).grad["mu"]
    np.testing.assert_allclose(got, (dJ * rho) @ p.score(x)["mu"], rtol=1e-6)


def check_balance_heuristic():
    """Block R2: the buffer's log q is logsumexp_g(log p_g + log n_g) - log N."""
    from scipy.special import logsumexp

    p = ng.Normal(np.array([0.0]), 1.0)
    buffer = ng.ReuseBuffer(k=3)
    snapshots, counts = [], [4, 6, 5]
    for t, m in enumerate(counts):
        buffer.add(p.sample(m, rng=t), np.zeros(m), p)
        snapshots.append(ng.Normal(p.mu.copy(), 1.0))
        p.params["mu"] += 0.5
    log_p = np.stack([s.log_prob(buffer.x) for s in snapshots])
    expected = logsumexp(log_p + np.log(counts)[:, None], axis=0) - np.log(sum(counts))
    np.testing.assert_allclose(buffer.log_proposal, expected, rtol=1e-13)


B_V1 = r"""\mathrm{Var}(g_\mu) = \frac1n\Big(\frac{\mathbb E[f(x)^2\,\delta^2]}{\sigma^4} - (\partial_\mu \mathbb E f)^2\Big)
= \frac1n\Big(\frac{(a + b\mu)^2}{\sigma^2} + 2b^2\Big)."""  # noqa: E501

B_V2 = r"""V(\kappa) = \mathbb E\big[(f - \kappa)^2 \psi^2\big] - (\partial_\theta \mathbb E f)^2, \qquad
\kappa^\star = \frac{\mathbb E[f\,\psi^2]}{\mathbb E[\psi^2]}, \qquad
V(\kappa^\star) = V(0) - \frac{\mathbb E[f\,\psi^2]^2}{\mathbb E[\psi^2]}."""

B_V3 = r"""\mathrm{Var}(g^{\text{loo}}) = \frac1n\Big(V(\mathbb E f) + \frac{\mathrm{Var}(f)\,\mathbb E[\psi^2] + (\partial_\theta\mathbb E f)^2}{n - 1}\Big),
\qquad
\mathrm{Var}(g^{\text{mean}}) = \Big(\frac{n-1}{n}\Big)^2 \mathrm{Var}(g^{\text{loo}}),"""  # noqa: E501

B_V4 = r"""\mathrm{Var}(t_j) = \frac{1}{\sigma^2}\Big(\sum_{k \ne j} \mathrm{Var}(f_k) + \mathbb E\big[(f_j - \mathbb E f_j)^2\,\epsilon_j^2\big]\Big) - (\partial_{\mu_j}\mathbb E f)^2 ."""  # noqa: E501

B_V5 = r"""\nabla_\mu \mathbb E f(\mu + \sigma\epsilon) = \mathbb E\big[\nabla f(\mu + \sigma\epsilon)\big], \qquad
\partial_\sigma \mathbb E f(\mu + \sigma\epsilon) = \mathbb E\big[\nabla f(\mu + \sigma\epsilon)^\top \epsilon\big]."""  # noqa: E501

B_K1 = r"""\mathrm{KL}(p_\theta \,\Vert\, p_{\theta + \Delta}) = \tfrac12 \Delta^\top F \Delta + O(\lVert\Delta\rVert^3), \qquad
F = \mathbb E\big[-\nabla^2_\theta \log p_\theta\big] = \mathbb E\big[\nabla_\theta \log p_\theta\, \nabla_\theta \log p_\theta^\top\big]."""  # noqa: E501

B_K2 = r"""\Delta^\star = \sqrt{\frac{2\tau^2}{g^\top F^{-1} g}}\; F^{-1} g ,"""

B_K3 = r"""F_{\mu\mu} = \frac{\mathbb E\delta^2}{\sigma^4} = \frac1{\sigma^2}, \qquad
F_{\mu\sigma} = \mathbb E\Big[\frac{\delta}{\sigma^2}\Big(\frac{\delta^2}{\sigma^3} - \frac1\sigma\Big)\Big] = 0, \qquad
F_{\sigma\sigma} = \mathbb E\Big[\Big(\frac{\delta^2}{\sigma^3} - \frac1\sigma\Big)^2\Big] = \frac{3 - 2 + 1}{\sigma^2} = \frac2{\sigma^2},"""  # noqa: E501

B_S1 = r"""\nabla_\mu \log p = L^{-\top}\epsilon, \qquad
\nabla_L \log p = \operatorname{tril}\big(L^{-\top}(\epsilon\epsilon^\top - I)\big)."""

B_S2 = r"""G_\xi = \sum_i u_i\,\epsilon_i, \qquad
G_M = \sum_i u_i\,(\epsilon_i\epsilon_i^\top - I), \qquad
\mu \leftarrow \mu + \eta_\mu A G_\xi, \qquad
A \leftarrow A \exp\!\big(\tfrac{\eta_M}{2} G_M\big)."""

B_S3 = r"""\sigma^2 g_\sigma = 2\,\tilde g_\sigma, \qquad \tilde g_\sigma = \frac{\sigma^2}{2}\, g_\sigma ."""

B_S4 = r"""\tilde\nabla_\mu = \sum_i w_i (x_i - \mu), \qquad
\tilde\nabla_\Sigma = \sum_i w_i \big((x_i - \mu)(x_i - \mu)^\top - \Sigma\big),"""

B_S5 = r"""\mathbf p_\sigma \leftarrow (1 - \alpha_\sigma)\,\mathbf p_\sigma + \sqrt{\alpha_\sigma(2 - \alpha_\sigma)\,n_{\mathrm{eff}}}\; \mathbf C^{-1/2}\,\frac{\mu' - \mu}{\sigma}, \qquad
\sigma \leftarrow \sigma \exp\!\Big(\frac{\alpha_\sigma}{D_\sigma}\Big(\frac{\lVert \mathbf p_\sigma\rVert}{\mathbb E\lVert N(0, I)\rVert} - 1\Big)\Big),"""  # noqa: E501

B_B1 = r"""\tilde f(x) = f(\pi(x)) + \gamma \sum_j \Big(\frac{x_j - \pi(x)_j}{s_j}\Big)^2,
\qquad \gamma = \frac{2\,\mathrm{IQR}_i\, f(\pi(x_i))}{d},"""

B_B2 = r"""\nabla_\theta\, \mathbb{E}_{x \sim p_\theta}\big[\tilde f(x)\big]
= \mathbb{E}_{x \sim p_\theta}\big[\tilde f(x)\, \nabla_\theta \log p_\theta(x)\big]
\approx \frac1n \sum_i \tilde f(x_i)\, \nabla_\theta \log p_\theta(x_i),"""


def _moment_expectation(expr, delta, sigma):
    """E of a polynomial in delta ~ N(0, sigma^2): E delta^k = sigma^k (k - 1)!! for even k, 0 for odd."""
    poly = sp.Poly(sp.expand(expr), delta)
    return sp.simplify(sum(c * (0 if k % 2 else sigma**k * sp.factorial2(k - 1)) for (k,), c in poly.terms()))


def check_plain_variance():
    """Block V1: Var of one term f psi for f = a + b x, psi = delta/sigma^2."""
    a, b, mu, delta = sp.symbols("a b mu delta", real=True)
    sigma = sp.symbols("sigma", positive=True)
    f = a + b * (mu + delta)
    second = _moment_expectation(f**2 * delta**2, delta, sigma) / sigma**4
    grad = sp.diff(_moment_expectation(f, delta, sigma).subs(mu, mu), mu)
    assert sp.simplify(second - grad**2 - ((a + b * mu) ** 2 / sigma**2 + 2 * b**2)) == 0


def _baseline_quantities():
    """psi = delta/sigma^2 and f = x^2 + c x (a fitness whose kappa* is not E f)."""
    c, mu, delta, kappa = sp.symbols("c mu delta kappa", real=True)
    sigma = sp.symbols("sigma", positive=True)
    f = (mu + delta) ** 2 + c * (mu + delta)
    psi = delta / sigma**2
    E = lambda expr: _moment_expectation(expr, delta, sigma)  # noqa: E731
    grad = sp.diff(E(f), mu)
    return f, psi, E, grad, kappa, mu, sigma


def check_optimal_baseline():
    """Block V2: V(kappa), its minimiser kappa* and V(kappa*) (sympy, f = x^2 + c x)."""
    f, psi, E, grad, kappa, mu, sigma = _baseline_quantities()
    V = E((f - kappa) ** 2 * psi**2) - grad**2
    kappa_star = E(f * psi**2) / E(psi**2)
    assert sp.simplify(sp.diff(V, kappa).subs(kappa, kappa_star)) == 0
    assert sp.simplify(V.subs(kappa, kappa_star) - (V.subs(kappa, 0) - E(f * psi**2) ** 2 / E(psi**2))) == 0
    assert sp.simplify(V - V.subs(kappa, kappa_star) - (kappa - kappa_star) ** 2 * E(psi**2)) == 0


def check_leave_one_out_variance():
    """Block V3: the exact variance of the leave-one-out and batch-mean gradients, n = 3, f = x^2 + x, N(mu, 1)."""
    mu = sp.symbols("mu", real=True)
    xs = sp.symbols("x1:4", real=True)
    n = 3
    f = lambda x: x**2 + x  # noqa: E731
    loo = sum((f(xs[i]) - sum(f(xs[j]) for j in range(n) if j != i) / (n - 1)) * (xs[i] - mu) for i in range(n)) / n
    variance = _gaussian_expectation(loo**2, xs, mu) - _gaussian_expectation(loo, xs, mu) ** 2
    one = xs[:1]
    E = lambda expr: _gaussian_expectation(expr, one, mu)  # noqa: E731
    x, psi = xs[0], xs[0] - mu
    grad, mean_f = E(f(x) * psi), E(f(x))
    V = E((f(x) - mean_f) ** 2 * psi**2) - grad**2
    formula = (V + (E(f(x) ** 2) - mean_f**2) * E(psi**2) / (n - 1) + grad**2 / (n - 1)) / n
    assert sp.expand(variance - formula) == 0
    batch_mean = sum((f(xs[i]) - sum(f(x) for x in xs) / n) * (xs[i] - mu) for i in range(n)) / n
    assert sp.expand(batch_mean - sp.Rational(n - 1, n) * loo) == 0


def check_variance_growth_with_d():
    """Block V4: Var of t_1 = (f - E f) e_1/sigma, separable f = -sum_k (x_k - 1)^2, d = 3, mu = 0 (sympy moments)."""
    sigma = sp.symbols("sigma", positive=True)
    es = sp.symbols("e1:4", real=True)
    parts = [-((sigma * e - 1) ** 2) for e in es]
    zero = sp.Integer(0)
    E = lambda expr: _gaussian_expectation(expr, es, zero)  # noqa: E731
    f = sum(parts)
    t = (f - E(f)) * es[0] / sigma
    grad = E(f * es[0] / sigma)
    lhs = E(t**2) - grad**2
    variances = [E(part**2) - E(part) ** 2 for part in parts]
    rhs = (sum(variances[1:]) + E((parts[0] - E(parts[0])) ** 2 * es[0] ** 2)) / sigma**2 - grad**2
    assert sp.simplify(lhs - rhs) == 0
    assert sp.simplify(variances[1] - (4 * sigma**2 + 2 * sigma**4)) == 0
    assert sp.simplify(E(f) + 3 * (1 + sigma**2)) == 0  # E f = -d (1 + sigma^2)


def check_pathwise():
    """Block V5: E[f'(x)] and E[f'(x) e] are the mu and sigma derivatives of E f (sympy, f = x^4 - 3x)."""
    mu, e = sp.symbols("mu e", real=True)
    sigma = sp.symbols("sigma", positive=True)
    f = lambda x: x**4 - 3 * x  # noqa: E731
    x = mu + sigma * e
    E = lambda expr: _gaussian_expectation(expr, [e], sp.Integer(0))  # noqa: E731
    mean = E(f(x))
    derivative = sp.diff(f(sp.Symbol("y")), sp.Symbol("y")).subs(sp.Symbol("y"), x)
    assert sp.simplify(sp.diff(mean, mu) - E(derivative)) == 0
    assert sp.simplify(sp.diff(mean, sigma) - E(derivative * e)) == 0


def check_kl_expansion():
    """Block K1: KL(N(mu, sigma^2) || N(mu + a, (sigma + b)^2)) = (a^2 + 2 b^2)/(2 sigma^2) + O(3)."""
    mu, a, b = sp.symbols("mu a b", real=True)
    sigma, t = sp.symbols("sigma t", positive=True)
    s2 = sigma + t * b
    kl = sp.log(s2 / sigma) + (sigma**2 + (t * a) ** 2) / (2 * s2**2) - sp.Rational(1, 2)
    second = sp.series(kl, t, 0, 3).removeO()
    fisher = sp.Matrix([[1 / sigma**2, 0], [0, 2 / sigma**2]])
    delta = sp.Matrix([a, b])
    assert sp.simplify(second - t**2 * (delta.T * fisher * delta)[0] / 2) == 0
    x = sp.symbols("x", real=True)
    log_p = -((x - mu) ** 2) / (2 * sigma**2) - sp.log(sigma)
    for i, u in enumerate((mu, sigma)):  # the expected negative Hessian is the Fisher above
        for j, v in enumerate((mu, sigma)):
            hessian = -sp.diff(log_p, u, v)
            assert (
                sp.simplify(
                    _moment_expectation(hessian.subs(x, mu + sp.Symbol("delta")), sp.Symbol("delta"), sigma)
                    - fisher[i, j]
                )
                == 0
            )


def check_steepest_ascent():
    """Block K2: Delta* maximises g' Delta on the ellipse Delta' F Delta / 2 = tau^2 (numerically, random F and g)."""
    rng = np.random.default_rng(7)
    root = rng.standard_normal((3, 3))
    F = root @ root.T + 3 * np.eye(3)
    g = rng.standard_normal(3)
    tau = 0.3
    natural = np.linalg.solve(F, g)
    best = math.sqrt(2 * tau**2 / (g @ natural)) * natural
    assert best @ F @ best / 2 == pytest.approx(tau**2, rel=1e-12)
    others = rng.standard_normal((2000, 3))
    others *= np.sqrt(2 * tau**2 / np.einsum("ij,jk,ik->i", others, F, others))[:, None]  # on the ellipse
    assert np.all(others @ g <= g @ best + 1e-12)


def check_normal_fisher_entries():
    """Block K3: the Normal's Fisher entries from the moments (sympy), and the library's natural gradient."""
    delta = sp.symbols("delta", real=True)
    sigma = sp.symbols("sigma", positive=True)
    score_mu, score_sigma = delta / sigma**2, delta**2 / sigma**3 - 1 / sigma
    assert _moment_expectation(score_mu**2, delta, sigma) == 1 / sigma**2
    assert _moment_expectation(score_mu * score_sigma, delta, sigma) == 0
    assert sp.simplify(_moment_expectation(score_sigma**2, delta, sigma) - (3 - 2 + 1) / sigma**2) == 0
    p = ng.Normal(np.array([0.2]), 0.7, learn_sigma=True)
    natural = p.natural_gradient({"mu": np.array([1.0]), "sigma": np.array(1.0)})
    np.testing.assert_allclose([natural["mu"][0], float(natural["sigma"])], [0.49, 0.49 / 2], rtol=1e-14)


def _multivariate(rng):
    d = 3
    L = np.tril(rng.standard_normal((d, d))) * 0.5
    L[np.diag_indices(d)] = np.abs(np.diagonal(L)) + 0.5  # a positive diagonal
    return ng.MultivariateNormal(np.array([0.5, -1.0, 2.0]), L, learn_scale=True), L


def check_multivariate_score():
    """Block S1: the score in mu and in the lower triangle of L, against the library."""
    rng = np.random.default_rng(8)
    p, L = _multivariate(rng)
    x = p.sample(5, rng)
    eps = np.linalg.solve(L, (x - p.mu).T).T
    score = p.score(x)
    inv_t = np.linalg.inv(L).T
    np.testing.assert_allclose(score["mu"], eps @ np.linalg.inv(L), rtol=1e-12)  # rows: (L^-T eps)^T
    for i in range(len(x)):
        expected = np.tril(inv_t @ (np.outer(eps[i], eps[i]) - np.eye(3)))
        np.testing.assert_allclose(score["scale_tril"][i], expected, rtol=1e-12, atol=1e-14)


def check_xnes_update():
    """Block S2: xNES's steps are n times the library's natural gradient pushed forward; expm keeps A A^T's form."""
    from scipy.linalg import expm

    rng = np.random.default_rng(9)
    p, A = _multivariate(rng)
    x = p.sample(8, rng)
    f = -np.square(x).sum(axis=1)
    u = ng.nes_utilities(f)
    eps = np.linalg.solve(A, (x - p.mu).T).T
    g_delta = u @ eps
    g_m = np.einsum("i,ij,ik->jk", u, eps, eps) - u.sum() * np.eye(3)
    natural = p.natural_gradient(ng.Mean(shaping=ng.nes_utilities)(f, x, p).grad)
    n = len(x)
    np.testing.assert_allclose(A @ g_delta, n * natural["mu"], rtol=1e-12)
    moved = natural["scale_tril"] @ A.T + A @ natural["scale_tril"].T  # d(A A^T) of the natural gradient
    np.testing.assert_allclose(A @ g_m @ A.T, n * moved, rtol=1e-10, atol=1e-12)
    eta = 0.1
    new_a = A @ expm(eta / 2 * g_m)
    np.testing.assert_allclose(new_a @ new_a.T, A @ expm(eta * g_m) @ A.T, rtol=1e-12)


def check_pgpe_sigma_step():
    """Block S3: sigma^2 g_sigma is twice PairedNormal's natural gradient of sigma."""
    p = ng.PairedNormal(np.zeros(3), np.array([0.5, 1.0, 2.0]), learn_sigma=True)
    g = np.array([0.3, -1.0, 0.7])
    natural = p.natural_gradient({"mu": np.zeros(3), "sigma": g})["sigma"]
    np.testing.assert_allclose(p.sigma**2 * g, 2 * natural, rtol=1e-14)


def check_igo_natural_gradient():
    """Block S4: IGO's natural gradient in (mu, Sigma) is the push-forward of the library's (MultivariateNormal)."""
    rng = np.random.default_rng(10)
    p, L = _multivariate(rng)
    x = p.sample(7, rng)
    w = rng.standard_normal(7)
    natural = p.natural_gradient(p.weighted_score(w, x))
    delta = x - p.mu
    np.testing.assert_allclose(natural["mu"], w @ delta, rtol=1e-12)
    moved = natural["scale_tril"] @ L.T + L @ natural["scale_tril"].T
    np.testing.assert_allclose(moved, np.einsum("i,ij,ik->jk", w, delta, delta) - w.sum() * L @ L.T, atol=1e-12)


def check_csa():
    """Block S5: the path's factor keeps N(0, I) stationary; E||N(0, I)|| and its expansion."""
    c = sp.symbols("c", positive=True)
    assert sp.expand((1 - c) ** 2 + c * (2 - c)) == 1
    for d in (2, 10, 100):
        exact = math.sqrt(2) * math.exp(math.lgamma((d + 1) / 2) - math.lgamma(d / 2))
        assert exact == pytest.approx(math.sqrt(d) * (1 - 1 / (4 * d) + 1 / (21 * d**2)), rel=0.02 / d**2)
    rng = np.random.default_rng(11)
    samples = np.linalg.norm(rng.standard_normal((20000, 10)), axis=1)
    exact = math.sqrt(2) * math.exp(math.lgamma(5.5) - math.lgamma(5))
    assert abs(samples.mean() - exact) < 4.5 * samples.std() / math.sqrt(len(samples))


# ---------------------------------------------------------------- exercises of sections 10.8 and 12


def test_exercise_optimal_baseline_of_x_squared():
    f, psi, E, grad, kappa, mu, sigma = _baseline_quantities()
    f = f.subs(sp.Symbol("c", real=True), 0)
    assert sp.simplify(E(f * psi**2) / E(psi**2) - (mu**2 + 3 * sigma**2)) == 0
    assert sp.simplify(E(f) - (mu**2 + sigma**2)) == 0


def test_exercise_xnes_mean_step_is_n_natural_gradients():
    check_xnes_update()


def test_exercise_pgpe_sigma_step_is_twice_the_natural_gradient():
    delta = sp.symbols("delta", real=True)
    sigma = sp.symbols("sigma", positive=True)
    fisher = _moment_expectation((delta**2 / sigma**3 - 1 / sigma) ** 2, delta, sigma)
    assert sp.simplify(sigma**2 - 2 / fisher) == 0  # sigma^2 g = 2 F^-1 g
    check_pgpe_sigma_step()


def test_exercise_open_es_gradient_is_the_noise_form():
    rng = np.random.default_rng(12)
    p = ng.Normal(np.array([0.5, -0.5]), 0.3)
    x = p.sample(10, rng)
    u = ng.centered_ranks(-np.square(x).sum(axis=1))
    eps = (x - p.mu) / 0.3
    np.testing.assert_allclose(ng.Mean()(u, x, p).grad["mu"], u @ eps / (10 * 0.3), rtol=1e-12)


def test_exercise_igo_natural_gradient_in_mean_and_variance():
    delta, mu = sp.symbols("delta mu", real=True)
    v = sp.symbols("v", positive=True)
    x = sp.symbols("x", real=True)
    log_p = -((x - mu) ** 2) / (2 * v) - sp.log(v) / 2
    score = [sp.diff(log_p, mu).subs(x, mu + delta), sp.diff(log_p, v).subs(x, mu + delta)]
    sigma = sp.sqrt(v)
    fisher = sp.Matrix(2, 2, lambda i, j: _moment_expectation(score[i] * score[j], delta, sigma))
    assert fisher == sp.Matrix([[1 / v, 0], [0, 1 / (2 * v**2)]])
    assert sp.simplify(fisher.inv() * sp.Matrix(score) - sp.Matrix([delta, delta**2 - v])) == sp.zeros(2, 1)


B_R3 = r"""\mathbb E_q[\rho^2] = \int \frac{p(x)^2}{q(x)}\,dx = \frac{\sigma_q^2}{\sigma_p\sqrt{2\sigma_q^2 - \sigma_p^2}}\,\exp\Big(\frac{(\mu_p - \mu_q)^2}{2\sigma_q^2 - \sigma_p^2}\Big) \quad \text{if } 2\sigma_q^2 > \sigma_p^2,"""  # noqa: E501

B_R4 = r"""\mathrm{Var}\Big(\sum_i \tilde\rho_i f_i\Big) = v\sum_i \tilde\rho_i^2 = \frac{v}{\mathrm{ESS}}, \qquad
\mathrm{ESS} = \frac{(\sum_i\rho_i)^2}{\sum_i\rho_i^2}, \qquad
\frac{\mathrm{ESS}}{n} \to \frac{(\mathbb E_q\rho)^2}{\mathbb E_q[\rho^2]} = \frac{1}{\mathbb E_q[\rho^2]} :"""  # noqa: E501

B_R5 = r"""\mathbb E\Big[\frac1N\sum_g\sum_{i \in g} f(x_i)\,\frac{p(x_i)}{q(x_i)}\Big]
= \frac1N\sum_g n_g\int f\,\frac pq\,p_g
= \int f\,p\,\frac{\sum_g n_g\,p_g}{N q}
= \mathbb E_p f ."""

B_R6 = r"""\mathrm{Var}_{\text{stratified}} = \frac1{N^2}\sum_g n_g\,\mathrm{Var}_{p_g}(f\rho)
= \frac1N\Big(\mathrm{Var}_q(f\rho) - \sum_g \frac{n_g}{N}(m_g - \bar m)^2\Big)
\le \frac1N\,\mathrm{Var}_q(f\rho),"""


def _second_moment_of_ratio(mu_p, sigma_p, mu_q, sigma_q):
    """E_q[rho^2] = integral of p^2/q by quadrature."""
    from scipy import integrate, stats

    def integrand(x):
        return math.exp(2 * stats.norm.logpdf(x, mu_p, sigma_p) - stats.norm.logpdf(x, mu_q, sigma_q))

    return integrate.quad(integrand, -60, 60, points=[mu_p, mu_q], limit=200)[0]


def check_ratio_second_moment():
    """Block R3: the closed form of E_q[rho^2] for 1-D Normals, against quadrature; infinite below sigma_p/sqrt 2."""
    for mu_p, sigma_p, mu_q, sigma_q in [(0.5, 1.0, 0.0, 1.5), (1.0, 1.0, 0.0, 1.0), (0.3, 2.0, -0.2, 1.6)]:
        closed = sigma_q**2 / (sigma_p * math.sqrt(2 * sigma_q**2 - sigma_p**2))
        closed *= math.exp((mu_p - mu_q) ** 2 / (2 * sigma_q**2 - sigma_p**2))
        assert _second_moment_of_ratio(mu_p, sigma_p, mu_q, sigma_q) == pytest.approx(closed, rel=1e-8)
    x = sp.symbols("x", real=True)
    sigma_p, sigma_q = sp.symbols("sigma_p sigma_q", positive=True)
    log_ratio = 2 * (-(x**2) / (2 * sigma_p**2) - sp.log(sigma_p)) + x**2 / (2 * sigma_q**2) + sp.log(sigma_q)
    quadratic = sp.Poly(sp.expand(log_ratio), x).coeff_monomial(x**2)  # p^2/q = exp(quadratic x^2 + ...)
    assert sp.simplify(quadratic - (sigma_p**2 - 2 * sigma_q**2) / (2 * sigma_p**2 * sigma_q**2)) == 0
    # the integral is finite exactly when the x^2 coefficient is negative: 2 sigma_q^2 > sigma_p^2


def check_effective_sample_size():
    """Block R4: Var(sum rho~_i f_i) = v sum rho~_i^2 = v / ESS (fixed weights); ESS/n -> 1/E_q[rho^2] (Monte Carlo)."""
    rng = np.random.default_rng(13)
    rho = rng.uniform(0.1, 3.0, 6)
    tilde = rho / rho.sum()
    v = 2.5
    assert v * (tilde**2).sum() == pytest.approx(v / (rho.sum() ** 2 / (rho**2).sum()), rel=1e-14)
    p, q = ng.Normal(np.array([0.5]), 1.0), ng.Normal(np.array([0.0]), 1.5)
    x = q.sample(200_000, rng)
    est = ng.Mean()(x[:, 0], x, p, proposal=q)
    limit = 1 / _second_moment_of_ratio(0.5, 1.0, 0.0, 1.5)
    assert est.ess / len(x) == pytest.approx(limit, rel=0.02)
    values = rng.standard_normal((20000, 6)) * math.sqrt(v)
    measured = (values @ tilde).var(ddof=1)
    assert abs(measured - v * (tilde**2).sum()) < 4.5 * measured * math.sqrt(2 / 19999)


def _stratified_estimates(counts, repeats, rng):
    """Balance-heuristic estimates of E_p f, f = x^2, p = N(0.5, 1), from exactly n_g draws of each p_g.

    Also each stratum weighted by its own ratio p/p_g. Vectorised over the repeats; the first repeat is checked
    against the library's Mean with the same log_proposal.
    """
    from scipy.special import logsumexp
    from scipy.stats import norm

    means, N = (-0.5, 0.2), sum(counts)
    x = np.concatenate([m + rng.standard_normal((repeats, n_g)) for m, n_g in zip(means, counts)], axis=1)
    log_parts = np.stack([norm.logpdf(x, m, 1.0) + math.log(n_g / N) for m, n_g in zip(means, counts)])
    log_q, log_p = logsumexp(log_parts, axis=0), norm.logpdf(x, 0.5, 1.0)
    estimates = (x**2 * np.exp(log_p - log_q)).mean(axis=1)
    log_own = np.concatenate(
        [norm.logpdf(x[:, : counts[0]], means[0], 1.0), norm.logpdf(x[:, counts[0] :], means[1], 1.0)], axis=1
    )
    own = (x**2 * np.exp(log_p - log_own)).mean(axis=1)
    first = ng.Mean()(x[0] ** 2, x[0][:, None], ng.Normal(np.array([0.5]), 1.0), log_proposal=log_q[0]).value
    assert first == pytest.approx(estimates[0], rel=1e-12)
    return estimates, own


def check_balance_heuristic_unbiased():
    """Block R5: the balance heuristic is unbiased for stratified draws (Monte Carlo, 4.5 standard errors)."""
    estimates, _ = _stratified_estimates([1, 3], 20000, np.random.default_rng(14))
    assert abs(estimates.mean() - 1.25) < 4.5 * estimates.std(ddof=1) / math.sqrt(len(estimates))  # E_p x^2 = 1.25


def check_stratified_variance():
    """Block R6: the law of total variance for the strata, by quadrature (f = x^2, two generations)."""
    from scipy import integrate, stats

    counts, means, mu_p = [1, 3], [-0.5, 0.2], 0.5
    N = sum(counts)

    def q(x):
        return sum(n_g / N * stats.norm.pdf(x, m, 1.0) for n_g, m in zip(counts, means))

    def moment(k, density):
        def integrand(x):
            return (x**2 * stats.norm.pdf(x, mu_p, 1.0) / q(x)) ** k * density(x)

        return integrate.quad(integrand, -25, 25, points=[-0.5, 0.2, 0.5], limit=200)[0]

    strata = [
        (moment(1, lambda x, m=m: stats.norm.pdf(x, m, 1.0)), moment(2, lambda x, m=m: stats.norm.pdf(x, m, 1.0)))
        for m in means
    ]
    m_bar = sum(n_g / N * m1 for n_g, (m1, _) in zip(counts, strata))
    assert m_bar == pytest.approx(1.25, rel=1e-8)
    stratified = sum(n_g * (m2 - m1**2) for n_g, (m1, m2) in zip(counts, strata)) / N**2
    var_q = moment(2, q) - moment(1, q) ** 2
    between = sum(n_g / N * (m1 - m_bar) ** 2 for n_g, (m1, _) in zip(counts, strata))
    assert stratified == pytest.approx((var_q - between) / N, rel=1e-7)
    assert stratified <= var_q / N


def test_exercise_reuse_ess_of_given_ratios():
    p = ng.Normal(np.array([0.0]), 1.0)
    for ratios, ess in [([1.0, 1.0, 0.0], 2.0), ([1.0] * 4, 4.0), ([4.0, 1.0, 1.0, 1.0, 1.0], 3.2)]:
        x = np.linspace(-1, 1, len(ratios))[:, None]
        log_rho = np.array([math.log(r) if r > 0 else -1000.0 for r in ratios])  # exp(-1000) underflows to 0
        log_q = p.log_prob(x) - log_rho  # rho = p / q
        assert ng.Mean()(x[:, 0], x, p, log_proposal=log_q).ess == pytest.approx(ess, rel=1e-12)


def test_exercise_reuse_ess_limit_of_a_shifted_normal():
    x, delta = sp.symbols("x Delta", real=True)
    p = sp.exp(-((x - delta) ** 2) / 2) / sp.sqrt(2 * sp.pi)
    q = sp.exp(-(x**2) / 2) / sp.sqrt(2 * sp.pi)
    assert sp.simplify(sp.integrate(sp.simplify(p**2 / q), (x, -sp.oo, sp.oo)) - sp.exp(delta**2)) == 0
    rng = np.random.default_rng(15)
    proposal = ng.Normal(np.array([0.0]), 1.0)
    samples = proposal.sample(200_000, rng)
    est = ng.Mean()(samples[:, 0], samples, ng.Normal(np.array([0.7]), 1.0), proposal=proposal)
    assert est.ess / len(samples) == pytest.approx(math.exp(-(0.7**2)), rel=0.02)


def test_exercise_balance_heuristic_is_unbiased_under_stratified_draws():
    estimates, own = _stratified_estimates([1, 3], 20000, np.random.default_rng(16))
    for values in (estimates, own):
        assert abs(values.mean() - 1.25) < 4.5 * values.std(ddof=1) / math.sqrt(len(values))


def check_box_penalty():
    """Blocks B1, B2: bounds tell the unrepaired x_i with f(pi(x_i)) + gamma sum_j ((x_j - pi(x)_j) / s_j)^2,
    gamma = 2 IQR / d; so a bounded SNES step equals an unbounded one told that penalised cost at the same x."""
    d, lower, upper = 4, -0.5, 0.5
    bounded = ng.algorithms.SNES(np.zeros(d), 1.0, rng=5, bounds=(lower, upper))
    plain = ng.algorithms.SNES(np.zeros(d), 1.0, rng=5)
    repaired, x = bounded.ask(), plain.ask()
    np.testing.assert_array_equal(repaired, np.clip(x, lower, upper))
    f = np.square(repaired - 0.3).sum(axis=1)  # a cost; the strategies maximise -f
    q1, q3 = np.percentile(f, [25, 75])
    penalised = f + 2 * (q3 - q1) / d * np.sum(((x - repaired) / plain.sigma) ** 2, axis=1)
    assert np.any(penalised > f)
    bounded.tell(-f)
    plain.tell(-penalised)
    np.testing.assert_allclose(bounded.mean, plain.mean, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(bounded.sigma, plain.sigma, rtol=1e-13)


DISPLAY = {
    check_score_identity: [B_D1, B_D2, B_D3, B_D5],
    check_ratio_derivative: [B_D4],
    check_variance_mean_carries_ratios: [B_D6],
    check_linear_weights: [B_D7, B_D13],
    check_maxvar: [B_D8, B_D9],
    check_entropy_weights: [B_D10, B_D11, B_D12],
    check_batch_mean_bias: [B_D14],
    check_self_normalised: [B_D15],
    check_antithetic_pair: [B_D16],
    check_kde_limit: [B_D17],
    check_normal_scores: [B_D18, B_D19],
    check_contractions: [B_D20, B_D21, B_D22],
    check_mixture: [B_D23, B_D24],
    check_discrete_scores: [B_D25, B_D26],
    check_snes_update: [B_D27],
    check_tile_exponent: [B_D28],
    check_reuse_identity: [B_R1],
    check_balance_heuristic: [B_R2],
    check_plain_variance: [B_V1],
    check_optimal_baseline: [B_V2],
    check_leave_one_out_variance: [B_V3],
    check_variance_growth_with_d: [B_V4],
    check_pathwise: [B_V5],
    check_kl_expansion: [B_K1],
    check_steepest_ascent: [B_K2],
    check_normal_fisher_entries: [B_K3],
    check_multivariate_score: [B_S1],
    check_xnes_update: [B_S2],
    check_pgpe_sigma_step: [B_S3],
    check_igo_natural_gradient: [B_S4],
    check_csa: [B_S5],
    check_ratio_second_moment: [B_R3],
    check_effective_sample_size: [B_R4],
    check_balance_heuristic_unbiased: [B_R5],
    check_stratified_variance: [B_R6],
    check_box_penalty: [B_B1, B_B2],
}


@pytest.mark.parametrize("check", list(DISPLAY), ids=lambda check: check.__name__)
def test_display_formula_mathematics(check):
    check()


def display_blocks(text: str) -> list[str]:
    return re.findall(r"^```math\n(.*?)\n```$", text, flags=re.M | re.S)


# ---------------------------------------------------------------- arithmetic: formulas whose sides are numbers


def _braced(s: str, i: int) -> tuple[str, int]:
    """The argument of a LaTeX macro at s[i]: a {...} group, a \\name, or one character; and where it ends."""
    while s[i] == " ":
        i += 1
    if s[i] == "{":
        depth = 0
        for j in range(i, len(s)):
            depth += {"{": 1, "}": -1}.get(s[j], 0)
            if depth == 0:
                return s[i + 1 : j], j + 1
    if s[i] == "\\":
        name = re.match(r"\\[a-zA-Z]+", s[i:]).group(0)
        return name, i + len(name)
    return s[i], i + 1


def _unfrac(s: str) -> str:
    r"""\frac{a}{b}, \tfrac12, \frac1{n}, \sqrt{a} as parenthesised Python."""
    out, i = "", 0
    while i < len(s):
        m = re.match(r"\\[td]?frac|\\sqrt", s[i:])
        if not m:
            out += s[i]
            i += 1
            continue
        i += m.end()
        first, i = _braced(s, i)
        if m.group(0) == r"\sqrt":
            out += f" sqrt({_unfrac(first)})"
            continue
        second, i = _braced(s, i)
        out += f"(({_unfrac(first)})/({_unfrac(second)}))"
    return out


NAMED = {
    "pi": sp.pi,
    "E": sp.E,
    "log": sp.log,
    "sqrt": sp.sqrt,
    "exp": sp.exp,
    "phi": lambda t: sp.exp(-(t**2) / 2) / sp.sqrt(2 * sp.pi),
}


def arithmetic_value(side: str) -> float | None:
    """The value of one side of a formula if it is plain arithmetic in LaTeX, else None."""
    from sympy.parsing.sympy_parser import (
        convert_xor,
        implicit_multiplication_application,
        parse_expr,
        standard_transformations,
    )

    s = side.strip().rstrip(".,:;").strip()
    s = re.sub(r"\\(big|Big|bigg|Bigg|left|right)(?=[()\[\].|])", "", s)
    for macro, plain in [
        (r"\,", " "),
        (r"\;", " "),
        (r"\!", ""),
        (r"\ ", " "),
        ("{,}", ""),
        (r"\cdot", "*"),
        (r"\times", "*"),
    ]:
        s = s.replace(macro, plain)
    s = _unfrac(s)
    s = re.sub(r"\\(pi|log|ln|exp)\b", lambda m: {"ln": " log "}.get(m.group(1), f" {m.group(1)} "), s)
    s = re.sub(r"\\varphi", " phi ", s)
    s = re.sub(r"(?<![a-zA-Z])e(?![a-zA-Z])", " E ", s)
    s = s.replace("{", "(").replace("}", ")")
    if not s.strip() or re.search(r"[\\_]", s) or set(re.findall(r"[a-zA-Z]+", s)) - set(NAMED):
        return None
    try:
        value = parse_expr(
            s,
            transformations=standard_transformations + (implicit_multiplication_application, convert_xor),
            local_dict=NAMED,
        )
        return float(value)
    except Exception:  # not arithmetic after all (an interval, a tuple, ...)
        return None


def printed_tolerance(side: str) -> float:
    """Half a unit in the last printed digit of a decimal side, else rounding."""
    m = re.fullmatch(r"\s*-?\d+\.(\d+)\s*[.,:;]?\s*", side)
    return 0.5 * 10 ** -len(m.group(1)) + 1e-12 if m else 1e-12


def arithmetic_failures(body: str) -> list[str]:
    """Every pair of adjacent arithmetic sides of an equation chain that disagree."""
    sides = [side for side in re.split(r"(?<![<>!\\])=", body)]
    values = [(side, arithmetic_value(side)) for side in sides]
    numeric = [(side, value) for side, value in values if value is not None]
    failures = []
    for (a, va), (b, vb) in zip(numeric, numeric[1:]):
        if abs(va - vb) > max(printed_tolerance(a), printed_tolerance(b)) * (1 + 1e-9) + 1e-12 * abs(va):
            failures.append(f"{body!r}: {a.strip()} = {va} but {b.strip()} = {vb}")
    return failures


def math_bodies(text: str) -> list[str]:
    """Every inline formula and every display block of a document."""
    bodies = display_blocks(text)
    open_tick, in_fence = None, False
    for line in text.split("\n"):
        if open_tick is None and line.startswith("```"):
            in_fence = not in_fence
            continue
        if not in_fence:
            spans, open_tick = test_docs.math_spans(line, open_tick)
            bodies += [line[start + 2 : stop - 2] for start, stop, safe in spans if safe]
    return bodies


# ---------------------------------------------------------------- numbers in the prose, each from its computation


def _kde_terms() -> tuple[float, float]:
    return -(3 - 1), (3 * math.sqrt(3 / 7) - 1) / 2  # the self term and Jensen's, for N(0, 1) and h = 1


def _rank_limits() -> tuple[float, float]:
    """reuse.md, f = x, p = N(0.5, 1): d/dmu E_p[Phi(x)] from fresh samples, phi(0)/sqrt 2, and q = N(0, 1.5^2)."""
    from scipy.stats import norm

    s = math.sqrt(1 + 1.5**2)
    return norm.pdf(0) / math.sqrt(2), norm.pdf(0.5 / s) / s


def _reuse_demo_table(text: str) -> dict[str, tuple[float, float]]:
    """reuse.md's measured demo table: run label -> (evaluations to target, end distance)."""
    rows = {}
    for line in text.split("\n"):
        cells = [cell.replace("**", "").strip() for cell in line.split("|")[1:-1]]
        if len(cells) == 3 and cells[0].startswith(("quadratic", "MaxEnt")):
            rows[cells[0]] = (float(cells[1].split()[0].replace(",", "").strip("*")), float(cells[2]))
    return rows


def prose_claims(texts: dict[str, str]) -> list[tuple[str, str]]:
    """(document, the exact text each number must be printed as, from its computation)."""
    grad, self_term, jensen, fresh, proposal, cut, nested_total, nested_outer, nes_limit = computed_numbers()
    try:
        return computed_claims(texts) + [
            (
                doc,
                claim.format(
                    grad=grad,
                    self_term=-self_term,
                    jensen=jensen,
                    fresh=fresh,
                    proposal=proposal,
                    cut_low=min(cut),
                    cut_high=max(cut),
                    total=nested_total,
                    outer=nested_outer,
                    nes_limit=nes_limit,
                ),
            )
            for doc, claim in PROSE_TEMPLATES
        ]
    except (KeyError, ValueError, IndexError) as error:  # a mutated label or number in the measured demo table
        return [("reuse", f"the demo table cannot be read: {error!r}")]


@functools.lru_cache(maxsize=1)
def computed_numbers() -> tuple:
    """The computed values the prose prints (the expensive ones computed once)."""
    grad = 3 * 0.5**2 + 3 * 1.0**2 + 3
    self_term, jensen = _kde_terms()
    fresh, proposal = _rank_limits()
    table, _ = test_docs.table_reuse_baselines()
    variances = [[float(cell) for cell in row.split("|")[2:5:2]] for row in table.split("\n")[2:6]]
    cut = tuple(variances[0][k] / variances[j][k] for j in (1, 2, 3) for k in (0, 1))
    nested_total, nested_outer = (
        row.split("|")[2].split(" ± ")[0].strip() for row in test_docs.table_nested()[0].split("\n")[2:4]
    )
    return grad, self_term, jensen, fresh, proposal, cut, nested_total, nested_outer, test_docs.nes_utility_limit()


def computed_claims(texts: dict[str, str]) -> list[tuple[str, str]]:
    """The prose's ratios of reuse.md's measured demo table, computed from that table."""
    demo = _reuse_demo_table(texts["reuse"])
    quad = "quadratic, lr 0.2, "
    maxent = "MaxEnt, lr 0.1, "
    reuse_quad, plain500 = demo[quad + "reuse k = 10, 50 new samples"], demo[quad + "plain ES, 500 samples"]
    reuse_ent, ent500, ent100 = (
        demo[maxent + "reuse k = 5, 100 new samples"],
        demo[maxent + "plain, 500 samples"],
        demo[maxent + "plain, 100 samples"],
    )
    slow = "quadratic, lr 0.03, "
    return [
        ("reuse", f"**{reuse_quad[0]:,.0f}** ({plain500[0] / reuse_quad[0]:.1f}x fewer than 500)"),
        ("reuse", f"**{reuse_ent[0]:,.0f}** ({ent500[0] / reuse_ent[0]:.1f}x fewer than 500)"),
        ("reuse", f"reuse saves only {100 * (1 - reuse_ent[0] / ent100[0]):.0f}% of the evaluations"),
        ("reuse", f"state goes from {ent100[1]:.3f} to {reuse_ent[1]:.3f}"),
        ("reuse", f"({reuse_quad[1]:.4f} against\n{plain500[1]:.4f}) with {plain500[0] / reuse_quad[0]:.1f}x fewer"),
        (
            "reuse",
            f"the end state is {demo[slow + 'reuse k = 10, 50 new samples'][1]:.3f} against "
            f"{demo[slow + 'plain ES, 50 samples'][1]:.3f}",
        ),
        ("reuse", f"it needs {ent500[0] / reuse_ent[0]:.1f}x fewer"),
    ]


KERNEL_EXPONENTS = [(a - b) ** 2 for a, b in [(-1, 0), (-1, 2), (0, 2)]]  # (b_i - b_j)^2 of the n = 3 example
PROSE_TEMPLATES = [  # each field is filled from computed_numbers()
    ("derivations", "3\\mu^2 + 3\\sigma^2 + 3 = {grad:g}"),
    ("derivations", "$`1/(2\\sqrt\\pi\\,\\sigma) = " + f"{1 / (2 * math.sqrt(math.pi)):.3f}" + "`$ for every"),
    ("derivations", "$`-\\frac{{{self_term}}}{{n}} + \\frac{{{jensen:.2f}}}{{n}}`$"),
    ("derivations", "\\frac{{2\\varphi(x)^2}}{{1 - \\Phi(x)}}\\,dx = {nes_limit:.3f}`$"),
    ("derivations", "$`\\nabla_\\mu \\mathbb E[U(\\Phi(x))] = {nes_limit:.3f}`$ (section 5)"),
    ("derivations", "from {total} to {outer}, and the nested term"),
    (
        "derivations",
        ", ".join(f"$`K_{{{{{pair}}}}} = e^{{{{-{e}}}}}`$" for pair, e in zip((12, 13, 23), KERNEL_EXPONENTS)),
    ),
    ("derivations", f"the {74 / 63:.4f} of the table"),
    ("reuse", "$`\\varphi(0)/\\sqrt2 = {fresh:.3f}`$"),
    ("reuse", "$`\\varphi(0.5/s)/s = {proposal:.3f}`$, where $`s^2 = 1 + 1.5^2`$"),
    ("reuse", "Both baselines cut the variance by {cut_low:.1f} to {cut_high:.0f}x"),
    ("reuse", "$`(n/(n-1))^2 = " + f"{(100 / 99) ** 2:.2f}" + "`$"),
]


# ---------------------------------------------------------------- the ledger: formulas and numbered prose as reviewed

SIGNED_OR_NUMBERED = re.compile(r"[0-9+\-]|\\pm|\\mp")


def ledger_entries(name: str, text: str) -> list[str]:
    """Every formula with a digit or a sign, and every prose line with a digit, outside code, one per line."""
    entries, in_fence, open_tick = [], None, None
    for line in text.split("\n"):
        if open_tick is None and line.startswith("```"):
            in_fence = line[3:].strip() if in_fence is None else None
            continue
        if in_fence == "math":
            entries.append(f"{name}\tdisplay\t{line}")
            continue
        if in_fence is not None:
            continue
        spans, open_tick = test_docs.math_spans(line, open_tick)
        entries += [
            f"{name}\tinline\t{line[a + 2 : b - 2]}" for a, b, _ in spans if SIGNED_OR_NUMBERED.search(line[a:b])
        ]
        prose = line
        for a, b, _ in reversed(spans):
            prose = prose[:a] + "$" + prose[b:]
        prose = re.sub(r"`[^`]*`", "`", prose)
        if re.search(r"\d", prose):
            entries.append(f"{name}\tprose\t{line}")
    return entries


def all_ledger_entries(texts: dict[str, str]) -> list[str]:
    return [entry for name, text in texts.items() for entry in ledger_entries(name, text)]


@functools.lru_cache(maxsize=1)
def generated_tables() -> tuple[tuple[str, ...], tuple[str, ...]]:
    return tuple(test_docs.all_tables()), tuple(test_docs.all_reuse_tables())


def doc_failures(texts: dict[str, str], ledger: list[str] | None = None) -> list[str]:
    """Every check that reads the documents, run on the given texts: an empty list when all hold."""
    failures = []
    derivation_tables, reuse_tables = generated_tables()
    for name, tables in (("derivations", derivation_tables), ("reuse", reuse_tables)):
        failures += [f"{name}: table not as generated: {table[:60]!r}" for table in tables if table not in texts[name]]
    quoted = [block for blocks in DISPLAY.values() for block in blocks]
    shown = [block for text in texts.values() for block in display_blocks(text)]
    failures += [f"display formula without its check: {block[:60]!r}" for block in shown if block not in quoted]
    failures += [f"checked display formula not in the docs: {block[:60]!r}" for block in quoted if block not in shown]
    for text in texts.values():
        for body in math_bodies(text):
            failures += arithmetic_failures(body)
        census = test_docs.math_census(text)
        failures += [f"bare math {span!r}" for span in census["bare"]] + census["$$ displays"]
    failures += [
        f"{name}: prose number not as computed: {claim!r}"
        for name, claim in prose_claims(texts)
        if claim not in texts[name]
    ]
    reviewed = LEDGER.read_text().split("\n") if ledger is None else ledger
    now = all_ledger_entries(texts)
    now_counts, reviewed_counts = Counter(now), Counter(reviewed)  # as multisets: a formula may appear twice
    failures += [f"not in the reviewed ledger: {entry!r}" for entry in sorted(now_counts - reviewed_counts)]
    failures += [f"in the ledger, not in the docs: {entry!r}" for entry in sorted(reviewed_counts - now_counts)]
    return failures


def test_every_display_formula_is_checked_and_every_number_computed():
    """Issue 23: the documents as they stand pass every check that reads them."""
    assert doc_failures(texts_now()) == []


def test_arithmetic_checker_catches_a_wrong_side():
    assert arithmetic_failures(r"g_\mu = \frac{-16 + 0 + 50}{63} = \frac{34}{63}") == []
    assert arithmetic_failures(r"g_\mu = \frac{-16 + 0 + 50}{63} = \frac{35}{63}") != []
    assert arithmetic_failures(r"\frac12\log(3\pi) + \frac13 - \frac12\log\pi = 0.883") == []
    assert arithmetic_failures(r"\frac12\log(3\pi) + \frac13 - \frac12\log\pi = 0.884") != []
    assert arithmetic_failures(r"\frac12\log(2\pi e) = 1.419") == []
    assert arithmetic_value(r"\mu + 1") is None


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:  # after a deliberate, reviewed change of the docs
        LEDGER.write_text("\n".join(all_ledger_entries(texts_now())))
        sys.exit(0)
    for failure in doc_failures(texts_now()):
        print(failure)
