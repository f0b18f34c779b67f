"""CMAES and SepCMAES: update for update against Hansen's purecma, the tutorial's constants, the rank-mu identity
(a natural-gradient step of ``Mean(shaping=cma_weights)``), stop criteria, errors, minimize, pickles."""

from __future__ import annotations

import math
import pickle
import random

import numpy as np
import pytest

import npevograd as ng
from npevograd.algorithms import CMAES, SepCMAES


def sphere(x: np.ndarray) -> np.ndarray:
    return np.sum(x**2, axis=1)


def ellipsoid(x: np.ndarray, condition: float = 1e6) -> np.ndarray:
    d = x.shape[1]
    return np.sum(condition ** (np.arange(d) / max(d - 1, 1)) * x**2, axis=1)


def rotated_ellipsoid(x: np.ndarray, condition: float = 1e6) -> np.ndarray:
    d = x.shape[1]
    q = np.linalg.qr(np.random.default_rng(d).standard_normal((d, d)))[0]
    return ellipsoid(x @ q.T, condition)


def rosenbrock(x: np.ndarray) -> np.ndarray:
    return np.sum(100 * (x[:, 1:] - x[:, :-1] ** 2) ** 2 + (1 - x[:, :-1]) ** 2, axis=1)


def rastrigin(x: np.ndarray) -> np.ndarray:
    return 10 * x.shape[1] + np.sum(x**2 - 10 * np.cos(2 * np.pi * x), axis=1)


def relative_error(a: object, b: object) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


# --------------------------------------------------------------------------- purecma, update for update


@pytest.mark.parametrize("d", [2, 10, pytest.param(40, marks=pytest.mark.slow)])
def test_matches_purecma_positive_weights(d: int) -> None:
    """The same samples told to both: mean, sigma, C, p_sigma, p_c agree to 1e-10 for 200 generations.

    purecma's own choices are passed in: its c_mu (without the tutorial v2's 1/4), its damping
    d_sigma = 2 mu_eff / n + 0.3 + c_s, its squared-norm CSA, and its eigendecomposition gap
    (it decomposes when more than 0.5 n / ((c_1 + c_mu) d) evaluations have passed).  The two differ by
    rounding only, amplified by cond(C): a rotated ellipsoid of condition 1e3 keeps it below 1e-10 (at 1e6 the
    d = 2 run reaches 1e-10 after C has adapted, with every difference still growing from 1e-16).
    """
    purecma = pytest.importorskip("cma.more_algorithms.purecma")
    gauss = random.Random(0)  # purecma's ask draws from it; its samples are not used
    ref = purecma.CMAES(list(np.linspace(-1, 2, d)), 0.7, randn=gauss.normalvariate)
    par = ref.params
    n = par.lam
    gap = math.floor(par.lazy_gap_evals / n) + 1  # the fewest generations g with g n > lazy_gap_evals
    while not gap * n > par.lazy_gap_evals or (gap - 1) * n > par.lazy_gap_evals:
        gap += 1 if not gap * n > par.lazy_gap_evals else -1
    es = CMAES(
        np.linspace(-1, 2, d),
        0.7,
        popsize=n,
        rng=1,
        active=False,
        minimize=True,
        c_mu=par.cmu,
        d_sigma=par.damps,
        csa_squared=True,
        lazy_gap=gap,
        maxiter=None,
    )
    assert (es.c_1, es.c_c, es.c_sigma, es.mueff) == pytest.approx((par.c1, par.cc, par.cs, par.mueff), rel=1e-14)
    for generation in range(200):
        ref.ask()  # purecma decomposes C in its ask
        x = es.ask()
        f = rotated_ellipsoid(x, 1e3)  # optimum at 0: m and sigma shrink together, x - m keeps its digits
        ref.tell([list(row) for row in x], list(f))
        es.tell(f)
        assert relative_error(es.mean, ref.xmean) < 1e-10, generation
        assert abs(es.sigma / ref.sigma - 1) < 1e-10, generation
        assert relative_error(es.C, [list(row) for row in ref.C]) < 1e-10, generation
        assert relative_error(es.p_sigma, ref.ps) < 1e-10, generation
        assert relative_error(es.p_c, ref.pc) < 1e-10, generation


# --------------------------------------------------------------------------- the tutorial's constants


def tutorial_constants(d: int, separable: bool = False) -> dict[str, object]:
    """Table 1 of Hansen's tutorial (arXiv:1604.00772, v2), written out again here."""
    n = 4 + math.floor(3 * math.log(d))
    mu = n // 2
    raw = np.array([math.log((n + 1) / 2) - math.log(i) for i in range(1, n + 1)])
    mueff = raw[:mu].sum() ** 2 / (raw[:mu] ** 2).sum()
    negative = raw[mu:]
    mueff_minus = negative.sum() ** 2 / (negative**2).sum()
    c1 = 2 / ((d + 1.3) ** 2 + mueff)
    cmu = min(1 - c1, 2 * (1 / 4 + mueff + 1 / mueff - 2) / ((d + 2) ** 2 + 2 * mueff / 2))
    if separable:
        c1, cmu = c1 * (d + 2) / 3, min(1 - c1 * (d + 2) / 3, cmu * (d + 2) / 3)
    alpha = min(1 + c1 / cmu, 1 + 2 * mueff_minus / (mueff + 2), (1 - c1 - cmu) / (d * cmu))
    weights = np.concatenate([raw[:mu] / raw[:mu].sum(), alpha * negative / np.abs(negative).sum()])
    c_sigma = (mueff + 2) / (d + mueff + 5)
    return {
        "popsize": n,
        "mu": mu,
        "mueff": mueff,
        "weights": weights,
        "c_1": c1,
        "c_mu": cmu,
        "c_c": (4 + mueff / d) / (d + 4 + 2 * mueff / d),
        "c_sigma": c_sigma,
        "d_sigma": 1 + 2 * max(0, math.sqrt((mueff - 1) / (d + 1)) - 1) + c_sigma,
        "c_m": 1.0,
        "chi_d": math.sqrt(d) * (1 - 1 / (4 * d) + 1 / (21 * d * d)),
        "lazy_gap": 1 / (10 * d * (c1 + cmu)),
    }


@pytest.mark.parametrize("separable", [False, True])
@pytest.mark.parametrize("d", [2, 10, 100, 1000])
def test_constants_are_the_tutorials(d: int, separable: bool) -> None:
    es = (SepCMAES if separable else CMAES)(np.zeros(d), 1.0, rng=0)
    expected = tutorial_constants(d, separable)
    for name, value in expected.items():
        np.testing.assert_allclose(getattr(es, name), value, rtol=1e-13, err_msg=name)
    assert es.weights[: es.mu].sum() == pytest.approx(1.0, rel=1e-15)
    assert np.all(es.weights[: es.mu] > 0) and np.all(es.weights[es.mu :] <= 0)


def test_positive_weights_variant_has_zero_weights_past_mu() -> None:
    es = CMAES(np.zeros(10), 1.0, rng=0, active=False)
    np.testing.assert_allclose(es.weights, np.maximum(tutorial_constants(10)["weights"], 0), rtol=1e-14)


FUNCTIONS = {
    "sphere": sphere,
    "ellipsoid": ellipsoid,
    "rotated_ellipsoid": rotated_ellipsoid,
    "rosenbrock": rosenbrock,
    "rastrigin": rastrigin,
    "cigar": lambda x: x[:, 0] ** 2 + 1e6 * np.sum(x[:, 1:] ** 2, axis=1),
    "sharp_ridge": lambda x: x[:, 0] + 100 * np.sqrt(np.sum(x[:, 1:] ** 2, axis=1)),
    "different_powers": lambda x: np.sum(np.abs(x) ** (2 + 4 * np.arange(x.shape[1]) / (x.shape[1] - 1)), axis=1),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_covariance_stays_positive_definite(name: str) -> None:
    """Active CMA (default): the smallest eigenvalue of C stays > 0 every generation until a stop criterion."""
    es = CMAES(np.full(8, 2.0), 1.0, rng=3, minimize=True, maxiter=1500)
    while not es.stop():
        es.tell(FUNCTIONS[name](es.ask()))
        assert np.linalg.eigvalsh(es.C)[0] > 0, es.generation
    assert es.generation > 20


# --------------------------------------------------------------------------- the rank-mu update is a natural gradient


def natural_covariance(p: ng.MultivariateNormal, natural: dict[str, np.ndarray]) -> np.ndarray:
    """d Sigma = g_L L^T + L g_L^T: the natural gradient in scale_tril as a covariance step."""
    L = p.scale_tril
    return natural["scale_tril"] @ L.T + L @ natural["scale_tril"].T


def rank_mu_only(d: int, active: bool) -> CMAES:
    """c_1 = 0 (no rank-one term), c_c = 0 and c_sigma = 0 (no paths; sigma fixed), after 6 rank-mu generations."""
    es = CMAES(np.linspace(0, 1, d), 0.5, rng=4, active=active, c_1=0.0, c_c=0.0, c_sigma=0.0, lazy_gap=1)
    for _ in range(6):
        es.tell(-rotated_ellipsoid(es.ask()))
    return es


@pytest.mark.parametrize("d", [3, 12])
def test_rank_mu_step_is_the_natural_gradient_of_mean_with_cma_weights(d: int) -> None:
    es = rank_mu_only(d, active=False)
    m0, C0, sigma = es.mean, es.C.copy(), es.sigma
    x = es.ask()
    f = -rotated_ellipsoid(x)
    es.tell(f)
    p = ng.MultivariateNormal(m0, np.linalg.cholesky(sigma**2 * C0), learn_scale=True)
    estimate = ng.Mean(shaping=ng.cma_weights)(f, x, p)
    natural = p.natural_gradient(estimate.grad)
    assert es.sigma == sigma
    assert relative_error(es.mean - m0, es.c_m * natural["mu"]) < 1e-12
    assert relative_error(sigma**2 * (es.C - C0), es.c_mu * natural_covariance(p, natural)) < 1e-12
    assert relative_error(es.estimate.weights, estimate.weights) < 1e-15
    # MultivariateNormal.natural_weighted_score gives the same step in (mu, Sigma) directly
    direct = p.natural_weighted_score(estimate.weights, x)
    assert relative_error(direct["mu"], natural["mu"]) < 1e-12
    assert relative_error(direct["covariance"], natural_covariance(p, natural)) < 1e-12


def test_active_rank_mu_step_is_the_natural_gradient_for_the_rescaled_weights() -> None:
    """Active weights: C's step is c_mu (natural gradient for w° + (sum w° - sum w) C) / sigma^2."""
    d = 6
    es = rank_mu_only(d, active=True)
    m0, C0, sigma = es.mean, es.C.copy(), es.sigma
    x = es.ask()  # decomposes C (lazy_gap=1)
    B, D = es.distribution.B.copy(), es.distribution.D.copy()
    es.tell(-ellipsoid(x))
    w = es.estimate.weights
    z = ((x - m0) / sigma @ B) / D  # C^{-1/2} y = B z with the decomposition the samples were drawn from
    w_circ = np.where(w < 0, w * d / np.sum(z**2, axis=1), w)
    p = ng.MultivariateNormal(m0, np.linalg.cholesky(sigma**2 * C0), learn_scale=True)
    natural = p.natural_weighted_score(w_circ, x)["covariance"] + (w_circ.sum() - w.sum()) * sigma**2 * C0
    assert relative_error(sigma**2 * (es.C - C0), es.c_mu * natural) < 1e-12
    positive = np.where(w > 0, w, 0.0)
    assert relative_error(es.mean - m0, p.natural_weighted_score(positive, x)["mu"]) < 1e-12


def test_cma_weights_shaping() -> None:
    f = np.array([3.0, -1.0, 7.0, 0.5, 2.0, 9.0, -4.0])
    n = f.size
    table = tutorial_constants(2)  # popsize 6 at d = 2; rebuild the positive weights for n = 7
    raw = np.log((n + 1) / 2) - np.log(np.arange(1, n + 1))
    positive = np.where(np.arange(n) < n // 2, raw / raw[: n // 2].sum(), 0.0)
    ranks = np.argsort(np.argsort(-f))  # 0 for the highest fitness
    np.testing.assert_allclose(ng.cma_weights(f), n * positive[ranks], rtol=1e-14)
    np.testing.assert_allclose(
        ng.Mean(shaping=ng.cma_weights)(f, np.zeros((n, 1)), ng.Normal(np.zeros(1), 1.0)).weights,
        positive[ranks],
        rtol=1e-14,
    )
    np.testing.assert_allclose(ng.cma_weights(np.exp(f)), ng.cma_weights(f))  # ranks only
    active = ng.cma_weights(np.arange(6.0), dim=2) / 6
    np.testing.assert_allclose(active[::-1], table["weights"], rtol=1e-13)
    tied = ng.cma_weights(np.array([1.0, 1.0, 0.0, 2.0]))
    assert tied[0] == tied[1] and tied.sum() == pytest.approx(4.0)
    with pytest.raises(ValueError, match="dim must be None or an int >= 1, got 0"):
        ng.cma_weights(f, dim=0)
    with pytest.raises(ValueError, match="f must be a 1-D array"):
        ng.cma_weights(np.ones((3, 2)))


# --------------------------------------------------------------------------- stop criteria


def run(es: CMAES, fitness, generations: int) -> dict[str, float]:
    for _ in range(generations):
        es.tell(fitness(es.ask()))
        if es.stop():
            break
    return es.stop()


def test_tolx_fires_on_the_sphere() -> None:
    es = CMAES(np.full(5, 1.0), 1.0, rng=0, minimize=True, tolfun=None, tolfunhist=None)
    stop = run(es, sphere, 3000)
    assert "tolx" in stop and stop["tolx"] == 1e-11
    assert np.all(es._widths() < 1e-11) and np.all(es.sigma * np.abs(es.p_c) < 1e-11)


def test_tolconditioncov_fires_on_an_ill_conditioned_ellipsoid() -> None:
    es = CMAES(np.full(3, 1.0), 1.0, rng=0, minimize=True, tolfun=None, tolfunhist=None, tolx=None)
    stop = run(es, lambda x: ellipsoid(x, 1e20), 5000)
    assert "tolconditioncov" in stop
    assert es.axis_ratio > 1e7


def test_tolupsigma_fires_on_the_sign_mistake() -> None:
    """Maximising the sphere (a minimisation told the wrong way round): sigma grows until pycma's rule fires."""
    es = CMAES(np.zeros(4), 1.0, rng=0)
    stop = run(es, sphere, 400)
    assert "tolupsigma" in stop and es.generation < 200
    assert es.sigma / es.distribution.D.max() > 1e20


def test_noeffect_criteria_fire_when_steps_vanish_in_rounding() -> None:
    es = CMAES(np.full(3, 1e8), 1e-9, rng=0, minimize=True)
    es.tell(sphere(es.ask()))
    assert {"noeffectaxis", "noeffectcoord"} <= set(es.stop())


# --------------------------------------------------------------------------- arguments, run layer, pickles


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: CMAES(np.zeros(3), -1.0), ValueError, "sigma must be a finite number > 0, got -1.0"),
        (lambda: CMAES(np.zeros(3), "x"), TypeError, "sigma must be a real number, got str"),
        (lambda: CMAES(np.zeros(3), np.ones(3)), TypeError, "sigma must be a real number, got ndarray"),
        (lambda: CMAES(np.zeros((3, 2))), ValueError, r"mu must be a 1-D array of shape \(d,\)"),
        (lambda: CMAES(np.zeros(3), active="no"), TypeError, "active must be a bool, got str 'no'"),
        (lambda: CMAES(np.zeros(3), c_1=2.0), ValueError, r"c_1 must be a number in \[0, 1\], got 2.0"),
        (lambda: CMAES(np.zeros(3), c_1=0.6, c_mu=0.6), ValueError, "c_1 \\+ c_mu must be <= 1"),
        (lambda: CMAES(np.zeros(3), lazy_gap=0), ValueError, "lazy_gap must be a finite number > 0, got 0"),
        (lambda: CMAES(np.zeros(3), tolconditioncov=-1), ValueError, "tolconditioncov must be a number > 0"),
        (lambda: CMAES(np.zeros(3), tolx="a"), TypeError, "tolx must be a real number or None"),
        (lambda: CMAES(np.zeros(3), tolfoo=1), TypeError, r"unknown stop criteria \['tolfoo'\]"),
        (lambda: CMAES(np.zeros(3), popsize=1), ValueError, "popsize"),
        (lambda: SepCMAES(np.zeros(3), csa_squared=1), TypeError, "csa_squared must be a bool"),
    ],
)
def test_bad_arguments(make, error, message) -> None:
    with pytest.raises(error, match=message):
        make()


def test_bad_tell_changes_nothing() -> None:
    es = CMAES(np.zeros(4), 1.0, rng=0)
    es.ask()
    state = pickle.dumps(es)
    with pytest.raises(ValueError, match=r"fitness must have shape \(8,\)"):
        es.tell(np.zeros(7))
    with pytest.raises(ValueError, match="fitness"):
        es.tell(np.full(8, np.nan))
    assert pickle.dumps(es) == state
    with pytest.raises(ValueError, match="encode=True needs a noise table; CMAES has none"):
        es.ask(encode=True)


@pytest.mark.parametrize("cls", [CMAES, SepCMAES])
def test_minimize_is_the_same_run_bit_for_bit(cls) -> None:
    a = cls(np.full(5, 2.0), 1.0, rng=9, minimize=True)
    b = cls(np.full(5, 2.0), 1.0, rng=9)
    for _ in range(60):
        xa, xb = a.ask(), b.ask()
        np.testing.assert_array_equal(xa, xb)
        a.tell(rosenbrock(xa))
        b.tell(-rosenbrock(xb))
    np.testing.assert_array_equal(a.C, b.C)
    assert a.sigma == b.sigma and a.result.fbest == -b.result.fbest


@pytest.mark.parametrize("cls", [CMAES, SepCMAES])
def test_pickle_resumes_bit_for_bit(cls) -> None:
    es = cls(np.full(6, 1.0), 0.5, rng=2, minimize=True)
    for _ in range(15):
        es.tell(rastrigin(es.ask()))
    twin = pickle.loads(pickle.dumps(es))
    for _ in range(30):
        x, y = es.ask(), twin.ask()
        np.testing.assert_array_equal(x, y)
        es.tell(rastrigin(x))
        twin.tell(rastrigin(y))
    np.testing.assert_array_equal(es.C, twin.C)
    assert es.sigma == twin.sigma and es.stop() == twin.stop()


def test_tell_with_samples_drawn_elsewhere_whitens_them() -> None:
    """tell(f, x=...) with the very samples of ask(): the same update as from the kept z, to rounding."""
    a, b = CMAES(np.full(5, 1.0), 0.5, rng=3), CMAES(np.full(5, 1.0), 0.5, rng=3)
    for _ in range(25):
        x = a.ask()
        b.ask()
        a.tell(-sphere(x))
        b.tell(-sphere(x), x=x.copy())
    assert relative_error(b.C, a.C) < 1e-12 and relative_error(b.mean, a.mean) < 1e-12


def test_nan_policy_worst_and_bounds() -> None:
    es = CMAES(np.full(4, 3.0), 2.0, rng=1, minimize=True, nan_policy="worst", bounds=(-1.0, 5.0))
    for _ in range(120):
        x = es.ask()
        assert np.all(x >= -1) and np.all(x <= 5)
        f = sphere(x - 4)
        f[0] = np.nan
        es.tell(f)
    assert es.failed == 120
    assert np.abs(es.result.xbest - 4).max() < 1e-3


# --------------------------------------------------------------------------- SepCMAES


def test_sep_matches_cmaes_on_the_diagonal_while_both_keep_b_equal_i() -> None:
    """Same rates, same samples, no eigendecomposition: SepCMAES's C is the diagonal of CMAES's, mean/sigma equal."""
    d = 6
    full = CMAES(np.full(d, 1.0), 0.8, rng=5, minimize=True, lazy_gap=1e9)
    sep = SepCMAES(np.full(d, 1.0), 0.8, rng=6, minimize=True, lazy_gap=1e9, c_1=full.c_1, c_mu=full.c_mu)
    for _ in range(40):
        x = full.ask()
        sep.ask()
        full.tell(ellipsoid(x))
        sep.tell(ellipsoid(x), x=x)
    assert relative_error(sep.C, np.diagonal(full.C)) < 1e-12
    assert relative_error(sep.mean, full.mean) < 1e-12 and sep.sigma == pytest.approx(full.sigma, rel=1e-12)


@pytest.mark.parametrize("fitness", [sphere, ellipsoid])
def test_sep_solves_separable_problems(fitness) -> None:
    es = SepCMAES(np.full(20, 3.0), 2.0, rng=0, minimize=True)
    run(es, fitness, 3000)
    assert es.result.fbest < 1e-8
    assert es.axis_ratio > 100 if fitness is ellipsoid else es.axis_ratio < 10


def test_sep_stores_only_the_diagonal() -> None:
    es = SepCMAES(np.zeros(50_000), 1.0, rng=0, popsize=4)
    es.tell(sphere(es.ask()))
    assert es.C.shape == (50_000,) and es.distribution.B is None
