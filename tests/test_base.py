"""Generic properties every distribution in the EXAMPLES registry must have."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import EXAMPLES
from hypothesis import given, settings
from hypothesis import strategies as st

import npevograd as ng


def _flat_score(p: ng.Distribution, x: np.ndarray) -> np.ndarray:
    """Per-sample score of every parameter, flattened to (n, P) in params order."""
    return np.concatenate([s.reshape(len(x), -1) for s in p.score(x).values()], axis=1)


def _flat(grad: dict) -> np.ndarray:
    return np.concatenate([np.ravel(g) for g in grad.values()])


def test_sample_shape_and_log_prob_shape(example):
    x = example.sample(8, rng=1)
    assert x.shape[0] == 8
    assert example.log_prob(x).shape == (8,)
    for name, s in example.score(x).items():
        assert s.shape == (8, *example.params[name].shape)


def test_rng_kinds_give_reproducible_samples(example):
    a = example.sample(6, rng=np.random.default_rng(3))
    b = example.sample(6, rng=3)
    c = example.sample(6, rng=np.random.RandomState(3))
    d = example.sample(6, rng=np.random.RandomState(3))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(c, d)


def test_score_matches_finite_differences_of_log_prob(example):
    x = example.sample(6, rng=11)
    score = example.score(x)
    step = 1e-6
    for name, param in example.params.items():
        for idx in np.ndindex(param.shape):
            original = param[idx]
            param[idx] = original + step
            up = example.log_prob(x)
            param[idx] = original - step
            down = example.log_prob(x)
            param[idx] = original
            np.testing.assert_allclose(score[name][(slice(None), *idx)], (up - down) / (2 * step),
                                       rtol=1e-6, atol=1e-7, err_msg=f"{name}{idx}")


@pytest.mark.parametrize("factory", [EXAMPLES[k] for k in sorted(EXAMPLES)], ids=sorted(EXAMPLES))
@settings(max_examples=25, deadline=None)
@given(n=st.integers(2, 40), seed=st.integers(0, 2**32 - 1), scale=st.floats(1e-3, 1e3))
def test_weighted_score_is_the_contraction_of_score(factory, n, seed, scale):
    p = factory(np.float64)
    rng = np.random.default_rng(seed)
    x = p.sample(n if not isinstance(p, ng.PairedNormal) else 2 * n, rng=rng)
    w = scale * rng.standard_normal(len(x))
    got = p.weighted_score(w, x)
    for name, s in p.score(x).items():
        want = np.tensordot(w, s, axes=(0, 0))
        np.testing.assert_allclose(got[name], want, rtol=1e-10, atol=1e-12 * scale * np.abs(s).sum())


def test_dtype_is_kept(dtype):
    for make in EXAMPLES.values():
        p = make(dtype)
        assert all(v.dtype == dtype for v in p.params.values())
        x = p.sample(8, rng=0)
        if np.issubdtype(x.dtype, np.floating):
            assert x.dtype == dtype
        assert p.log_prob(x).dtype == dtype
        assert all(s.dtype == dtype for s in p.score(x).values())
        w = np.linspace(-1, 1, 8, dtype=dtype)
        assert all(g.dtype == dtype for g in p.weighted_score(w, x).values()), p


def test_inputs_are_not_mutated(example):
    x = example.sample(10, rng=2)
    x_before = x.copy()
    params_before = {k: v.copy() for k, v in example.params.items()}
    w = np.arange(10.0)
    example.weighted_score(w, x)
    example.score(x)
    example.log_prob(x)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(w, np.arange(10.0))
    for k, v in example.params.items():
        np.testing.assert_array_equal(v, params_before[k])


def test_constructor_copies_its_arguments():
    mu = np.array([1.0, 2.0])
    p = ng.Normal(mu, 0.5)
    p.params["mu"] += 1
    np.testing.assert_array_equal(mu, [1.0, 2.0])


def test_score_has_zero_mean(example):
    """E[score] = 0: the identity that makes constant fitness carry no gradient."""
    n = 40_000
    x = example.sample(n, rng=5)
    s = _flat_score(example, x)
    standard_error = s.std(axis=0, ddof=1) / np.sqrt(n)
    assert np.all(np.abs(s.mean(axis=0)) < 4.5 * standard_error + 1e-12)


@pytest.mark.parametrize("name", [k for k in sorted(EXAMPLES) if k != "mix-normal"])
def test_natural_gradient_inverts_the_empirical_fisher(name):
    """F (F^-1 g) = g, with F = E[score score^T] estimated from samples, to 4.5 standard errors."""
    p = EXAMPLES[name](np.float64)
    n = 100_000
    x = p.sample(n, rng=8)
    s = _flat_score(p, x)
    g = p.weighted_score(np.random.default_rng(1).standard_normal(50), p.sample(50, rng=9))
    natural = _flat(p.natural_gradient(g))
    terms = s * (s @ natural)[:, None]  # the i-th sample's score score^T natural
    standard_error = terms.std(axis=0, ddof=1) / np.sqrt(n)
    assert np.all(np.abs(terms.mean(axis=0) - _flat(g)) < 4.5 * standard_error + 1e-12)  # + : entries fixed at 0


def test_mixture_has_no_closed_form_fisher():
    p = EXAMPLES["mix-normal"](np.float64)
    with pytest.raises(NotImplementedError, match="MixNormal has no closed-form Fisher"):
        p.natural_gradient({"mus": np.zeros_like(p.mus)})


def test_weighted_score_validates_w(example):
    x = example.sample(4, rng=0)
    with pytest.raises(ValueError, match=r"w has shape \(3,\) but x has 4 samples; expected w of shape \(4,\)"):
        example.weighted_score(np.ones(3), x)
    with pytest.raises(ValueError, match="w must be finite, got 1 non-finite"):
        example.weighted_score(np.array([1.0, np.nan, 0.0, 1.0]), x)


def test_natural_gradient_validates_grad():
    p = ng.Normal(np.zeros(3), 1.0, learn_sigma=True)
    with pytest.raises(ValueError, match=r"grad must be a dict with keys \['mu', 'sigma'\], got \['mu'\]"):
        p.natural_gradient({"mu": np.zeros(3)})
    with pytest.raises(ValueError, match=r"grad\['mu'\] must have shape \(3,\), got \(2,\)"):
        p.natural_gradient({"mu": np.zeros(2), "sigma": np.zeros(())})


def test_sample_count_is_validated(example):
    with pytest.raises(ValueError, match="n must be >= 1, got 0"):
        example.sample(0)
    with pytest.raises(TypeError, match="n must be an int, got float"):
        example.sample(2.0)
    with pytest.raises(TypeError, match="rng must be a numpy Generator, RandomState, int seed or None, got str"):
        example.sample(2, rng="seed")


def test_ndarray_subclasses_are_read_as_plain_arrays():
    """A masked array goes through np.asarray, like any array-like: plain arrays come out."""
    p = ng.Normal(np.zeros(2), 1.0)
    x = p.sample(5, rng=0)
    w = np.arange(5.0)
    got = p.weighted_score(np.ma.masked_array(w), np.ma.masked_array(x))["mu"]
    assert type(got) is np.ndarray
    np.testing.assert_array_equal(got, p.weighted_score(w, x)["mu"])
