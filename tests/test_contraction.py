"""Normal's weighted contraction: sums over the deviations e = x - mu, divided by sigma after, where they fit."""

from __future__ import annotations

import numpy as np
import pytest

from npevograd.distributions import _normal_contraction as contraction
from npevograd.distributions._normal_contraction import weighted_deviations


def scaled_reference(w, x, mu, sigma):
    """The sums over z = (x - mu) / sigma in float64, the definition: (sum w z / sigma, (sum w z^2 - sum w) / sigma)."""
    z = (x.astype(np.float64) - mu) / sigma
    w64 = w.astype(np.float64)
    return {"mu": w64 @ z / sigma, "sigma": (w64 @ (z * z) - w64.sum()) / sigma}


def inputs(dtype, n=300, d=40, sigma_scale=1.0, w_scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    mu = rng.uniform(-2, 2, d).astype(dtype)
    sigma = (sigma_scale * rng.uniform(0.5, 2.0, d)).astype(dtype)
    x = (mu + sigma * rng.standard_normal((n, d))).astype(dtype)
    w = (w_scale * rng.standard_normal(n) / n).astype(dtype)
    return w, x, mu, sigma


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("sigma_scale", [1e-6, 1.0, 1e6])
def test_unscaled_sums_are_the_scaled_ones_to_rounding(dtype, sigma_scale, monkeypatch):
    w, x, mu, sigma = inputs(dtype, sigma_scale=sigma_scale)
    assert contraction._unscaled_fits(w, sigma, w.size, np.dtype(dtype))
    unscaled = weighted_deviations(w, x, mu, sigma, True, False)
    monkeypatch.setattr(contraction, "_unscaled_fits", lambda *args: False)
    scaled = weighted_deviations(w, x, mu, sigma, True, False)
    reference = scaled_reference(w, x, mu, sigma)
    eps = np.finfo(dtype).eps
    for name in ("mu", "sigma"):
        scale = np.abs(reference[name]).max()
        # the two roundings against the float64 definition: both a few hundred ulps of the largest entry at most
        for grad in (unscaled, scaled):
            assert np.max(np.abs(grad[name] - reference[name])) <= 300 * eps * scale, name


@pytest.mark.parametrize(
    ("dtype", "sigma_scale", "w_scale"),
    [(np.float32, 1e-30, 1.0), (np.float32, 1e25, 1.0), (np.float32, 1.0, 1e-35), (np.float64, 1e-170, 1.0)],
)
def test_products_near_the_dtype_limits_take_the_scaled_sums(dtype, sigma_scale, w_scale, monkeypatch):
    w, x, mu, sigma = inputs(dtype, sigma_scale=sigma_scale, w_scale=w_scale)
    assert not contraction._unscaled_fits(w, sigma, w.size, np.dtype(dtype))
    got = weighted_deviations(w, x, mu, sigma, True, False)
    calls = []
    original = contraction._scaled_rows
    monkeypatch.setattr(contraction, "_scaled_rows", lambda *a: calls.append(len(a)) or original(*a))
    again = weighted_deviations(w, x, mu, sigma, True, False)
    assert calls == [3]  # x, mu and sigma: the rows are scaled before the products
    for name in ("mu", "sigma"):
        np.testing.assert_array_equal(got[name], again[name])
        assert np.all(np.isfinite(got[name]))


def test_an_overflowing_unscaled_sum_is_taken_again_scaled():
    """Rows far outside the distribution (not its samples) can overflow e^2 where z^2 does not: the scaled sums."""
    w, x, mu, sigma = inputs(np.float32, n=50, d=6, sigma_scale=1e6)
    x[0] = mu + 1e20  # z about 1e14: z^2 fits float32, e^2 = 1e40 does not
    assert contraction._unscaled_fits(w, sigma, w.size, np.dtype(np.float32))
    with np.errstate(over="ignore", invalid="ignore"):  # as Distribution._contract calls it: results checked
        got = weighted_deviations(w, x, mu, sigma, True, False)
    reference = scaled_reference(w, x, mu, sigma)
    for name in ("mu", "sigma"):
        assert np.all(np.isfinite(got[name]))
        np.testing.assert_allclose(got[name], reference[name], rtol=1e-4)


def test_an_overflow_in_a_helper_threads_block_is_checked_not_warned(monkeypatch):
    """Blocks run in helper threads, whose np.errstate is not the caller's: an overflow there raises no warning."""
    from npevograd.sampling import _blocks

    monkeypatch.setenv("NPEVOGRAD_NUM_THREADS", "2")
    monkeypatch.setattr(_blocks, "BLOCK_BYTES", 4096)  # blocks of a few rows, one block a group: 100 groups
    monkeypatch.setattr(_blocks, "GROUP_BLOCKS", 1)
    w, x, mu, sigma = inputs(np.float32, n=400, d=40, sigma_scale=1e6)
    x[::7] = mu + 1e20  # in many blocks, some a helper's: e^2 overflows, z^2 does not
    with np.errstate(over="ignore", invalid="ignore"):
        got = weighted_deviations(w, x, mu, sigma, True, False)
    assert all(np.all(np.isfinite(v)) for v in got.values())
