"""Fitness shaping: closed forms, invariances (hypothesis), ties, errors."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import npevograd as ng

fitness = arrays(np.float64, st.integers(2, 60), elements=st.floats(-1e6, 1e6), unique=True)


def test_zscore_uses_ddof_1():
    f = np.array([1.0, 2.0, 4.0, 7.0])
    np.testing.assert_allclose(ng.zscore(f), scipy.stats.zscore(f, ddof=1), rtol=1e-15)
    np.testing.assert_allclose(ng.zscore(f[:, None])[:, 0], ng.zscore(f))


def test_centered_ranks_closed_form():
    np.testing.assert_allclose(ng.centered_ranks(np.array([10.0, -3.0, 7.0])), [0.5, -0.5, 0.0])
    np.testing.assert_allclose(ng.centered_ranks(np.array([3.0, 1.0, 3.0, 2.0])), [1 / 3, -0.5, 1 / 3, -1 / 6])


def test_nes_utilities_closed_form():
    n = 6
    raw = np.maximum(0, np.log(n / 2 + 1) - np.log(np.arange(1, n + 1)))
    by_rank = raw / raw.sum() - 1 / n  # best first
    f = np.array([0.1, 5.0, -2.0, 3.0, 1.0, 0.0])
    order_best_first = np.argsort(-f)
    expected = np.empty(n)
    expected[order_best_first] = by_rank
    np.testing.assert_allclose(ng.nes_utilities(f), expected, rtol=1e-14)


def test_nes_utilities_ties_share_the_mean_utility():
    n = 5
    raw = np.maximum(0, np.log(n / 2 + 1) - np.log(np.arange(1, n + 1)))
    by_rank = raw / raw.sum() - 1 / n
    u = ng.nes_utilities(np.array([1.0, 9.0, 9.0, 0.0, 9.0]))
    np.testing.assert_allclose(u[[1, 2, 4]], by_rank[:3].mean())
    np.testing.assert_allclose(u[[0, 3]], by_rank[[3, 4]])


@settings(max_examples=60, deadline=None)
@given(f=fitness, shift=st.floats(-1e3, 1e3), log_scale=st.floats(-3, 3))
def test_rank_shapings_are_invariant_to_increasing_transforms(f, shift, log_scale):
    g = np.exp(log_scale) * np.tanh(f / 1e6) + shift  # strictly increasing in f
    if len(np.unique(g)) < len(g):  # the transform merged values in float64: no longer strictly increasing
        return
    for shaping in (ng.centered_ranks, ng.nes_utilities):
        np.testing.assert_allclose(shaping(g), shaping(f), atol=1e-14)


@settings(max_examples=60, deadline=None)
@given(f=arrays(np.float64, st.integers(2, 40), elements=st.integers(-5, 5).map(float)))
def test_shapings_sum_to_zero_and_ties_get_equal_values(f):
    for shaping in (ng.centered_ranks, ng.nes_utilities):
        if shaping is ng.centered_ranks or len(np.unique(f)) > 1:
            s = shaping(f)
            assert abs(s.sum()) < 1e-12
            for value in np.unique(f):
                assert np.ptp(s[f == value]) < 1e-14
            assert np.all(np.diff(s[np.argsort(f, kind="stable")]) >= -1e-15)  # monotone


@settings(max_examples=40, deadline=None)
@given(f=fitness, scale=st.floats(1e-3, 1e3), shift=st.floats(-1e3, 1e3))
def test_zscore_is_invariant_to_affine_transforms(f, scale, shift):
    if np.std(f) < 1e-3:  # nearly constant: scale * f + shift rounds away the differences
        return
    np.testing.assert_allclose(ng.zscore(scale * f + shift), ng.zscore(f), atol=1e-6)


def test_float32_is_kept():
    f = np.array([3.0, 1.0, 2.0], dtype=np.float32)
    for shaping in (ng.zscore, ng.centered_ranks, ng.nes_utilities):
        assert shaping(f).dtype == np.float32


@pytest.mark.parametrize("shaping", [ng.zscore, ng.centered_ranks, ng.nes_utilities])
def test_errors(shaping):
    with pytest.raises(ValueError, match=r"f needs at least 2 samples along axis 0 to .*, got shape \(1,\)"):
        shaping(np.array([1.0]))
    with pytest.raises(ValueError, match=r"f must be finite, got 1 non-finite value\(s\)"):
        shaping(np.array([1.0, np.inf]))


@pytest.mark.parametrize("value", [0.1, 0.7, 1 / 3, 5.3, -2e5, 0.0])
@pytest.mark.parametrize("n", [3, 10, 500])
def test_constant_fitness_is_an_error_even_when_its_computed_std_is_rounding_noise(value, n, dtype):
    # e.g. three 0.1s: the sample mean rounds one ulp off 0.1 and np.std gives 1.7e-17, not 0
    f = np.full(n, value, dtype=dtype)
    with pytest.raises(ValueError, match=r"f is constant \(zero standard deviation\)"):
        ng.zscore(f)
    b = np.column_stack([np.arange(n, dtype=dtype), f])
    with pytest.raises(ValueError, match=r"behaviours is constant in column\(s\) \[1\]"):
        ng.Variance()(b, np.zeros((n, 1)), ng.Normal(np.zeros(1), 1.0))


def test_nearly_constant_fitness_is_still_z_scored(dtype):
    """1, 1 + 8 ulp, 1 + 16 ulp: std is at rounding level but the values differ, so z = -1, 0, 1 exactly."""
    step = 8 * np.finfo(dtype).eps
    f = np.array([1, 1 + step, 1 + 2 * step], dtype=dtype)
    np.testing.assert_array_equal(ng.zscore(f), [-1, 0, 1])


# Ranks from one argsort (issue 15) against scipy.stats.rankdata, ties included.

tied_fitness = st.one_of(
    arrays(np.float64, st.integers(2, 40), elements=st.sampled_from([-2.0, -0.0, 0.0, 0.5, 3.0])),
    arrays(np.float64, st.tuples(st.integers(2, 30), st.integers(1, 4)), elements=st.integers(-3, 3).map(float)),
    arrays(np.float64, st.tuples(st.integers(2, 30), st.integers(1, 3)), elements=st.floats(-1e6, 1e6)),
)


def _nes_utilities_from_rankdata(f: np.ndarray) -> np.ndarray:
    """The utilities as the first round computed them, with three scipy rankdata calls."""
    n = f.shape[0]
    raw = np.maximum(0.0, np.log(n / 2 + 1) - np.log(np.arange(1, n + 1)))
    cumulative = np.concatenate([[0.0], np.cumsum(raw / raw.sum() - 1 / n)])
    best_first = (n - 1) - (scipy.stats.rankdata(f, method="average", axis=0) - 1)
    counts = scipy.stats.rankdata(f, method="max", axis=0) - scipy.stats.rankdata(f, method="min", axis=0) + 1
    lo = np.rint(best_first - (counts - 1) / 2).astype(int)
    hi = np.rint(best_first + (counts - 1) / 2).astype(int)
    return (cumulative[hi + 1] - cumulative[lo]) / counts


@settings(max_examples=120, deadline=None)
@given(f=tied_fitness)
def test_centered_ranks_equal_rankdata_average_exactly(f):
    expected = (scipy.stats.rankdata(f, method="average", axis=0) - 1) / (f.shape[0] - 1) - 0.5
    np.testing.assert_array_equal(ng.centered_ranks(f), expected)


@settings(max_examples=120, deadline=None)
@given(f=tied_fitness)
def test_nes_utilities_equal_the_rankdata_construction_exactly(f):
    np.testing.assert_array_equal(ng.nes_utilities(f), _nes_utilities_from_rankdata(f))


def test_rank_shapings_keep_float32_and_higher_dimensions():
    f = np.array([[3, 1], [1, 1], [2, 5], [3, 0]], dtype=np.float32)
    for shaping in (ng.centered_ranks, ng.nes_utilities):
        assert shaping(f).dtype == np.float32
        stacked = shaping(np.stack([f, -f], axis=2))  # (n, 2, 2): each column ranked on its own
        np.testing.assert_array_equal(stacked[:, :, 0], shaping(f))
        np.testing.assert_array_equal(stacked[:, :, 1], shaping(-f))


@settings(max_examples=80, deadline=None)
@given(f=fitness, float32=st.booleans())
def test_untied_rank_shapings_from_their_tables_equal_rankdata_exactly(f, float32):
    """Without ties the ranks are looked up in a per-n table (the fast path): the same bits as with ties' formula."""
    v = f.astype(np.float32) if float32 else f
    if np.unique(v).size < v.size:  # float32 rounding made a tie: that is the other path
        return
    dtype = v.dtype
    centred = (scipy.stats.rankdata(v, method="average") - 1) / (v.shape[0] - 1) - 0.5
    for shaping, expected in ((ng.centered_ranks, centred), (ng.nes_utilities, _nes_utilities_from_rankdata(v))):
        shaped = shaping(v)
        assert shaped.dtype == dtype and shaped.flags.writeable
        np.testing.assert_array_equal(shaped, expected.astype(dtype))


def test_rank_tables_are_read_only_and_cached_per_n():
    from npevograd.estimators.shaping import _centered_rank_table, _utility_table

    for table in (_centered_rank_table, _utility_table):
        assert table(7) is table(7) and table(7).shape == (7,) and not table(7).flags.writeable
    f = np.arange(7.0)
    out = ng.nes_utilities(f)
    out[:] = 0.0  # the caller's array, not the table
    np.testing.assert_array_equal(ng.nes_utilities(f), _nes_utilities_from_rankdata(f))
