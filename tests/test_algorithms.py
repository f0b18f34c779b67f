"""npevograd.algorithms: each first update against its paper's formulas, written out here; invariants; errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

import npevograd as ng
from npevograd.algorithms import PGPE, SNES, XNES, EvolvabilityES, OpenES

MU = np.array([1.0, -2.0, 0.5, 3.0])
SIGMA = np.array([0.5, 1.0, 2.0, 0.3])


def sphere(x: np.ndarray) -> np.ndarray:
    return -np.sum(x**2, axis=1)


def fitness(x: np.ndarray) -> np.ndarray:
    """A fixed fitness without ties: a tilted quadratic."""
    return -np.sum((x - 0.3) ** 2 * np.arange(1, x.shape[1] + 1), axis=1) + x[:, 0]


def utilities(f: np.ndarray) -> np.ndarray:
    """NES utilities (Wierstra et al. 2014, section 3.1), rank k = 1 for the best."""
    n = len(f)
    k = np.empty(n)
    k[np.argsort(-f)] = np.arange(1, n + 1)
    raw = np.maximum(0, np.log(n / 2 + 1) - np.log(k))
    return raw / raw.sum() - 1 / n


def centered(f: np.ndarray) -> np.ndarray:
    """Salimans et al.'s compute_centered_ranks: rank / (n - 1) - 1/2."""
    ranks = np.empty(len(f))
    ranks[np.argsort(f)] = np.arange(len(f))
    return ranks / (len(f) - 1) - 0.5


def expm_series(m: np.ndarray) -> np.ndarray:
    """exp(M) of a symmetric M by eigendecomposition (independent of scipy.linalg.expm)."""
    vals, vecs = np.linalg.eigh(m)
    return vecs @ np.diag(np.exp(vals)) @ vecs.T


# --------------------------------------------------------------------------- first updates


def test_snes_first_update_is_the_paper_formula():
    es = SNES(MU, SIGMA, rng=0)
    x = es.ask()
    f = fitness(x)
    d, n = 4, 4 + math.floor(3 * math.log(4))
    assert es.popsize == n == x.shape[0]
    eta_sigma = (3 + math.log(d)) / (5 * math.sqrt(d))
    u, z = utilities(f), (x - MU) / SIGMA
    mu = MU + 1.0 * SIGMA * (u @ z)
    sigma = SIGMA * np.exp(eta_sigma / 2 * (u @ (z**2 - 1)))
    es.tell(f)
    np.testing.assert_allclose(es.mean, mu, rtol=1e-12)
    np.testing.assert_allclose(es.sigma, sigma, rtol=1e-12)


def test_xnes_first_update_is_the_paper_formula():
    L = np.array([[1.0, 0, 0, 0], [0.5, 0.8, 0, 0], [-0.3, 0.2, 1.5, 0], [0.1, -0.4, 0.3, 0.6]])
    es = XNES(MU, L, rng=1)
    x = es.ask()
    f = fitness(x)
    d = 4
    eta = 3 * (3 + math.log(d)) / (5 * d * math.sqrt(d))
    assert (es.lr_sigma, es.lr_B, es.lr_mu) == (pytest.approx(eta), pytest.approx(eta), 1.0)
    u = utilities(f)
    z = np.linalg.solve(L, (x - MU).T).T
    g_delta = u @ z
    g_m = sum(uk * (np.outer(zk, zk) - np.eye(d)) for uk, zk in zip(u, z))
    g_sigma = np.trace(g_m) / d
    g_b = g_m - g_sigma * np.eye(d)
    sigma, B = np.linalg.det(L) ** (1 / d), L / np.linalg.det(L) ** (1 / d)  # A = sigma B, det B = 1
    mu = MU + 1.0 * sigma * B @ g_delta
    sigma_new = sigma * np.exp(eta / 2 * g_sigma)
    B_new = B @ expm_series(eta / 2 * g_b)
    A_new = sigma_new * B_new
    es.tell(f)
    np.testing.assert_allclose(es.mean, mu, rtol=1e-12)
    L_new = es.distribution.scale_tril
    assert np.all(np.triu(L_new, 1) == 0) and np.all(np.diag(L_new) > 0)
    np.testing.assert_allclose(L_new @ L_new.T, A_new @ A_new.T, rtol=1e-12)  # the same covariance
    assert es.sigma == pytest.approx(sigma_new, rel=1e-12)


def test_open_es_first_update_is_the_paper_formula():
    sigma, lr, l2 = 0.1, 0.01, 0.005
    es = OpenES(MU, sigma, popsize=10, rng=2)
    x = es.ask()
    eps = (x - MU) / sigma
    np.testing.assert_allclose(eps[5:], -eps[:5], rtol=1e-12)  # mirrored pairs
    f = fitness(x)
    g = centered(f) @ eps / (10 * sigma) - l2 * MU  # (1/(n sigma)) sum F_i eps_i, then weight decay
    m, v = 0.1 * g, 0.001 * g**2  # Adam's first moments, beta1 = 0.9, beta2 = 0.999
    step = lr * (m / 0.1) / (np.sqrt(v / 0.001) + 1e-8)
    es.tell(f)
    np.testing.assert_allclose(es.mean, MU + step, rtol=1e-12)


@pytest.mark.parametrize("optimizer", ["sgd", "clipup"])
def test_pgpe_first_update_is_the_paper_formula(optimizer):
    es = PGPE(MU, SIGMA, popsize=12, rng=3, optimizer=optimizer)
    x = es.ask()
    f = fitness(x)
    m = 6
    eps = x[:m] - MU
    np.testing.assert_allclose(x[m:] - MU, -eps, rtol=1e-12)
    shaped = centered(f)
    f_plus, f_minus = shaped[:m], shaped[m:]
    g_mu = ((f_plus - f_minus) / 2) @ eps / m
    g_sigma = (((f_plus + f_minus) / 2 - 0.0) @ ((eps**2 - SIGMA**2) / SIGMA)) / m  # baseline: mean shaped f = 0
    if optimizer == "sgd":
        mu = MU + 0.2 * g_mu
    else:  # ClipUp's first velocity: alpha g / ||g||, its norm alpha below v_max = 2 alpha
        mu = MU + 0.2 * g_mu / np.linalg.norm(g_mu)
    sigma = SIGMA + np.clip(0.1 * g_sigma, -0.2 * SIGMA, 0.2 * SIGMA)
    es.tell(f)
    np.testing.assert_allclose(es.mean, mu, rtol=1e-12)
    np.testing.assert_allclose(es.sigma, sigma, rtol=1e-12)


def test_pgpe_sigma_change_is_clipped():
    es = PGPE(np.zeros(2), 1.0, popsize=4, rng=0, lr_sigma=100.0)
    x = es.ask()
    es.tell(sphere(x))
    change = es.sigma - 1.0
    assert np.all(np.abs(change) <= 0.2 + 1e-15) and np.any(np.isclose(np.abs(change), 0.2))


def test_clipup_caps_the_speed():
    opt = ng.algorithms.ClipUp(2, step_size=1.0, max_speed=1.5, momentum=0.9)
    g = np.array([3.0, 4.0])
    np.testing.assert_allclose(opt.step(g), [0.6, 0.8])  # alpha g / ||g||
    np.testing.assert_allclose(opt.step(g), 1.5 * np.array([0.6, 0.8]))  # 1.9 clipped to 1.5
    assert np.linalg.norm(opt.velocity) == pytest.approx(1.5)


@pytest.mark.parametrize("kind", ["variance", "entropy"])
def test_evolvability_es_first_update_is_the_paper_formula(kind):
    sigma, n = 0.5, 40
    es = EvolvabilityES(np.array([1.0]), sigma, popsize=n, rng=4, kind=kind)
    x = es.ask()
    b = 5 * np.sin(0.2 * x[:, 0]) * np.sin(20 * x[:, 0])
    z = (b - b.mean()) / b.std(ddof=1)
    if kind == "variance":
        w, lr = z**2 / n, 0.03
    else:
        K = np.exp(-((z[:, None] - z[None, :]) ** 2) / 1.0**2)
        density = K.mean(0)
        w, lr = (-np.log(density) - (K / density[None, :]).mean(1)) / n, 0.1
    grad = w @ (x - 1.0) / sigma**2
    es.tell(b)
    np.testing.assert_allclose(es.mean, 1.0 + lr * grad, rtol=1e-12)
    assert es.best is not None and es.best.x[0] == 1.0 and es.best.fitness == es.estimate.value


# --------------------------------------------------------------------------- invariants


def test_separable_xnes_with_a_diagonal_factor_is_snes():
    """Schaul et al. 2011, section 3: SNES is xNES restricted to diagonal factors."""
    snes = SNES(MU, SIGMA, rng=5)
    xnes = XNES(MU, SIGMA, rng=5, lr_sigma=snes.lr_sigma, lr_B=snes.lr_sigma, separable=True)
    for _ in range(30):
        x = snes.ask()
        np.testing.assert_allclose(xnes.ask(), x, rtol=1e-15, atol=1e-15)  # the same draws: mu + L z, L diagonal
        snes.tell(fitness(x))
        xnes.tell(fitness(x))
    assert isinstance(xnes.distribution, ng.Normal)  # separable: the diagonal factor only (issue 25)
    np.testing.assert_allclose(xnes.mean, snes.mean, rtol=1e-10)
    np.testing.assert_allclose(xnes.distribution.params["sigma"], snes.sigma, rtol=1e-10)


def test_xnes_learns_a_rotation_that_snes_cannot():
    """Rotated ellipsoid, condition 1e4, d = 4: XNES reaches 1e-8, SNES does not within the same budget."""
    d = 4
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((d, d)))
    scales = 1e4 ** (np.arange(d) / (d - 1))

    def ellipsoid(x):
        y = x @ q.T
        return -np.sum(scales * y**2, axis=1)

    ends = {}
    for name, es in {"xnes": XNES(np.ones(d), 1.0, rng=1), "snes": SNES(np.ones(d), 1.0, rng=1)}.items():
        for _ in range(500):  # XNES needs 183 generations here
            x = es.ask()
            es.tell(ellipsoid(x))
            if es.best.fitness > -1e-8:
                break
        ends[name] = es.best.fitness
    assert ends["xnes"] > -1e-8
    assert ends["snes"] < -1e-6


@pytest.mark.parametrize(
    "make, generations, target",
    [
        (lambda: SNES(np.full(4, 3.0), 1.0, rng=0), 300, 1e-8),
        (lambda: XNES(np.full(4, 3.0), 1.0, rng=0), 300, 1e-8),
        (lambda: PGPE(np.full(4, 3.0), 1.0, popsize=20, rng=0), 300, 1e-8),
        (lambda: OpenES(np.full(4, 3.0), 0.05, popsize=20, rng=0, lr=0.05, weight_decay=0.0), 300, 1e-2),
    ],
    ids=["snes", "xnes", "pgpe", "openes"],
)
def test_each_algorithm_solves_a_small_sphere(make, generations, target):
    es = make()
    start = -sphere(es.mean[None])[0]
    for _ in range(generations):
        x = es.ask()
        es.tell(sphere(x))
        if -sphere(es.mean[None])[0] < target:
            break
    assert -sphere(es.mean[None])[0] < target < start  # 36 -> target; OpenES's sigma is fixed, so 1e-2
    assert es.generation < generations and es.best.fitness >= sphere(es.mean[None])[0] - 1e-2


def test_best_is_the_best_sample_told():
    es = SNES(np.zeros(3), 1.0, popsize=6, rng=0)
    told = []
    for _ in range(5):
        x = es.ask()
        f = fitness(x)
        told += list(zip(f, x))
        es.tell(f)
    f_best, x_best = max(told, key=lambda t: t[0])
    assert es.best.fitness == f_best
    np.testing.assert_array_equal(es.best.x, x_best)


def test_ask_returns_a_copy():
    es = SNES(np.zeros(3), 1.0, popsize=6, rng=0)
    x = es.ask()
    f = fitness(x)
    x[:] = 100.0  # the user's array, not the strategy's
    es.tell(f)
    assert np.all(np.abs(es.mean) < 10)


def test_float32_is_kept():
    for es in [SNES(MU.astype(np.float32), 1.0, rng=0), XNES(MU.astype(np.float32), 1.0, rng=0)]:
        x = es.ask()
        assert x.dtype == np.float32
        es.tell(fitness(x))
        assert all(v.dtype == np.float32 for v in es.distribution.params.values())


# --------------------------------------------------------------------------- bad input


def _snapshot(obj: object) -> object:
    """Everything a strategy holds, as comparable values (arrays as bytes, rngs as their state)."""
    if isinstance(obj, np.ndarray):
        return ("array", obj.dtype.str, obj.shape, obj.tobytes())
    if isinstance(obj, np.random.Generator):
        return ("rng", repr(obj.bit_generator.state))
    if isinstance(obj, dict):
        return {k: _snapshot(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_snapshot(v) for v in obj]
    if callable(obj) and not hasattr(obj, "__dict__"):
        return obj
    if hasattr(obj, "__dict__"):
        return (type(obj).__name__, _snapshot(vars(obj)))
    return obj


STRATEGIES = {
    "snes": lambda: SNES(MU, SIGMA, rng=0),
    "xnes": lambda: XNES(MU, 1.0, rng=0),
    "openes": lambda: OpenES(MU, popsize=8, rng=0),
    "pgpe": lambda: PGPE(MU, SIGMA, popsize=8, rng=0, optimizer="clipup"),
    "maxvar": lambda: EvolvabilityES(MU, popsize=8, rng=0),
    "maxent": lambda: EvolvabilityES(MU, popsize=8, rng=0, kind="entropy"),
}


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_bad_tell_leaves_the_state_unchanged(name):
    es = STRATEGIES[name]()
    x = es.ask()
    es.tell(fitness(x))  # one real generation first: optimizer moments, best, counters are live
    x = es.ask()
    before = _snapshot(es)
    n = es.popsize
    what = "behaviours" if isinstance(es, EvolvabilityES) else "fitness"
    bad = [
        (np.ones(n - 1), rf"{what} must have shape \({n},\).*one value per row of ask\(\), got shape \({n - 1},\)"),
        (np.where(np.arange(n) == 2, np.nan, 1.0 * np.arange(n)), rf"{what} must be finite, got 1 non-finite"),
        (np.ones((n, 2, 1)), rf"{what} must have shape \({n},\)"),
    ]
    if isinstance(es, EvolvabilityES):
        bad.append((np.ones(n), "behaviours is constant"))  # z-scoring fails inside the estimator
    for values, message in bad:
        with pytest.raises(ValueError, match=message):
            es.tell(values)
        assert _snapshot(es) == before
    es.tell(fitness(x))  # the pending population is still there
    assert es.generation == 2


def test_tell_before_ask_and_twice():
    es = SNES(MU, 1.0, rng=0)
    with pytest.raises(ValueError, match=r"SNES.tell\(\) needs a population: call ask\(\) first"):
        es.tell(np.zeros(es.popsize))
    es.tell(fitness(es.ask()))
    with pytest.raises(ValueError, match="call ask"):
        es.tell(np.zeros(es.popsize))


@pytest.mark.parametrize(
    "make, error, message",
    [
        (lambda: OpenES(MU, popsize=7), ValueError, "popsize must be even for OpenES"),
        (lambda: PGPE(MU, popsize=7), ValueError, "popsize must be even for PGPE"),
        (lambda: PGPE(MU, optimizer="adam"), ValueError, "optimizer must be 'sgd' or 'clipup', got 'adam'"),
        (lambda: SNES(MU, popsize=1), ValueError, "popsize must be >= 2, got 1"),
        (lambda: SNES(MU, lr_sigma=0.0), ValueError, "lr_sigma must be a finite number > 0, got 0.0"),
        (lambda: SNES(MU, sigma=-1.0), ValueError, "sigma must be > 0"),
        (lambda: XNES(MU, lr_B="x"), TypeError, "lr_B must be a real number, got str"),
        (lambda: XNES(MU, np.ones((4, 4))), ValueError, "scale_tril must be lower triangular"),
        (lambda: EvolvabilityES(MU, kind="novelty"), ValueError, "kind must be 'variance' or 'entropy', got 'novelty'"),
    ],
)
def test_constructor_errors(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_algorithms_is_an_attribute_and_import_is_light():
    import subprocess
    import sys

    code = "import sys, npevograd as ng; ng.algorithms.XNES; print('scipy.linalg' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------- encoded samples, parallel.evaluate


NOISY = {
    "snes": lambda noise: SNES(MU, SIGMA, popsize=8, rng=3, noise=noise),
    "openes": lambda noise: OpenES(MU, 0.1, popsize=8, rng=3, noise=noise),
    "pgpe": lambda noise: PGPE(MU, SIGMA, popsize=8, rng=3, noise=noise),
    "maxent": lambda noise: EvolvabilityES(MU, popsize=8, rng=3, kind="entropy", noise=noise),
}


@pytest.mark.parametrize("name", sorted(NOISY))
def test_encoded_ask_and_parallel_evaluate_give_the_plain_loop(name):
    """ask(encode=True) / parallel.evaluate + tell(f, x=samples) == ask() / tell(f): the same draws, same state."""
    from npevograd.parallel import evaluate

    table = ng.NoiseTable(10_000, seed=1, dtype=np.float64)
    plain, encoded, evaluated = (NOISY[name](table) for _ in range(3))
    for _ in range(3):
        x = plain.ask()
        plain.tell(fitness(x))
        e = encoded.ask(encode=True)
        assert isinstance(e, ng.EncodedSamples) and e.shape == x.shape
        encoded.tell(fitness(encoded.distribution.decode(e)))
        ev = evaluate(fitness, evaluated.distribution, evaluated.popsize, evaluated.rng)
        evaluated.tell(ev.fitness, x=ev.samples)
    for other in (encoded, evaluated):
        np.testing.assert_allclose(other.mean, plain.mean, rtol=1e-10)
        for k, v in plain.distribution.params.items():
            np.testing.assert_allclose(other.distribution.params[k], v, rtol=1e-10)
        assert other.best.fitness == pytest.approx(plain.best.fitness, rel=1e-12)
        np.testing.assert_allclose(other.best.x, plain.best.x, rtol=1e-12)


def test_xnes_takes_parallel_evaluate_rows():
    from npevograd.parallel import evaluate

    a, b = XNES(MU, 1.0, rng=2), XNES(MU, 1.0, rng=2)
    x = a.ask()
    a.tell(fitness(x))
    ev = evaluate(fitness, b.distribution, b.popsize, b.rng)
    b.tell(ev.fitness, x=ev.samples)
    # a keeps the z it drew, b whitens the same rows against L (issue 25): equal to rounding
    np.testing.assert_allclose(b.distribution.scale_tril, a.distribution.scale_tril, rtol=1e-13, atol=1e-15)


def test_encode_and_x_errors():
    es = XNES(MU, 1.0, rng=0)
    with pytest.raises(ValueError, match=r"encode=True needs a noise table: build XNES\(\.\.\., noise=NoiseTable"):
        es.ask(encode=True)
    with pytest.raises(ValueError, match="x has 3 samples, expected popsize = 8"):
        es.tell(np.zeros(10), x=np.zeros((3, 4)))


def test_best_is_kept_until_beaten_and_params_are_updated_in_place():
    es = SNES(np.zeros(3), 1.0, popsize=6, rng=0)
    mu, sigma = es.distribution.params["mu"], es.distribution.params["sigma"]
    x = es.ask()
    es.tell(np.arange(6.0))
    np.testing.assert_array_equal(es.best.x, x[5])
    assert es.best.fitness == 5.0
    es.ask()
    es.tell(np.full(6, 5.0) - np.arange(6.0))  # ties the best, does not beat it
    np.testing.assert_array_equal(es.best.x, x[5])
    x = es.ask()
    es.tell(np.r_[6.0, np.zeros(5)])
    np.testing.assert_array_equal(es.best.x, x[0])
    assert es.best.fitness == 6.0 and es.generation == 3
    assert es.distribution.params["mu"] is mu and es.distribution.params["sigma"] is sigma
