"""Issue 25 (hardening, third round): one regression test per defect outside ``algorithms/``, by defect number.

Each test's docstring names its defect; the issue text is the bug report.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import npevograd as ng

# --------------------------------------------------------------------------- defect 3: inf samples


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", ["normal", "paired", "table", "mvn"])
def test_defect_3_a_sample_that_overflows_is_a_value_error_naming_sigma_and_mu(kind, dtype):
    """Defect 3: sample() returned inf samples silently (sigma = 1e308); now a ValueError naming sigma and mu."""
    big = float(np.finfo(dtype).max)
    mu = np.zeros(2, dtype)
    if kind == "mvn":
        p = ng.MultivariateNormal(mu, np.eye(2) * big)
        named = "scale_tril"
    elif kind == "table":
        p = ng.Normal(mu, big, noise=ng.NoiseTable(1000, 0))
        named = "sigma"
    else:
        p = (ng.PairedNormal if kind == "paired" else ng.Normal)(mu, big)
        named = "sigma"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning on the way to the error
        with pytest.raises(ValueError, match=rf"samples overflow {np.dtype(dtype)}.*largest \|?{named}\|? .*mu"):
            p.sample(50, rng=0)
        if kind == "table":  # the encoding is checked too: its decoded samples would overflow
            with pytest.raises(ValueError, match="samples overflow"):
                p.sample(50, rng=0, encode=True)


def test_defect_3_samples_near_the_limit_that_fit_are_returned_unchanged():
    """Defect 3: the check scans only distributions near the limit, and a finite draw there is still returned."""
    p = ng.Normal(np.zeros(2), 1e300)
    x = p.sample(20, rng=1)
    assert np.isfinite(x).all()
    np.testing.assert_array_equal(x, 1e300 * np.random.default_rng(1).standard_normal((20, 2)))


# --------------------------------------------------------------------------- defect 7: inf covariance


def test_defect_7_an_overflowing_covariance_is_a_value_error_naming_scale_tril():
    """Defect 7: MultivariateNormal(mu, eye * 1e300).covariance returned inf unchecked."""
    p = ng.MultivariateNormal(np.zeros(2), np.eye(2) * 1e300)
    with pytest.raises(ValueError, match=r"covariance scale_tril @ scale_tril.T overflows float64.*1e\+300"):
        p.covariance  # noqa: B018
    np.testing.assert_allclose(ng.MultivariateNormal(np.zeros(2), np.eye(2) * 1e150).covariance, np.eye(2) * 1e300)


# --------------------------------------------------------------------------- defect 9: triangular solves


def test_defect_9_a_valid_factor_that_lu_calls_singular_is_solved():
    """Defect 9: LinAlgError 'Singular matrix' for L = [[1e-200, 0], [1e200, 1e-200]]; log_prob(0) = 919.2."""
    L = np.array([[1e-200, 0.0], [1e200, 1e-200]])
    p = ng.MultivariateNormal(np.zeros(2), L, learn_scale=True)
    expected = -2 * math.log(1e-200) - math.log(2 * math.pi)  # u = 0: -log det L - (d/2) log 2 pi
    np.testing.assert_allclose(p.log_prob(np.zeros((1, 2))), [expected], rtol=1e-14)
    assert abs(expected - 919.196) < 1e-3
    x = np.array([[1e-200, 1e200]])  # x = L [1, 0]: u = (1, 0)
    np.testing.assert_allclose(p.whiten(x), [[1.0, 0.0]], atol=1e-12)
    score = p.score(np.array([[0.0, 0.0]]))  # u = v = 0: d/dL = -diag(1/L_jj)
    np.testing.assert_allclose(score["scale_tril"][0], -np.diag([1e200, 1e200]), rtol=1e-14)
