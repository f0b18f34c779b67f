"""Property-based fuzzing of the public API (issue 13).

Every public constructor and call gets finite inputs across 1e-300..1e300, NaN/inf,
wrong shapes and dtypes, n in {1, 2, 3}, float32 and float64.  The property, for each call:

* either a ValueError/TypeError whose message names one of the call's arguments,
* or a finite result in the parameters' dtype that agrees with a reference computed in
  ``np.longdouble`` (80-bit on x86: 1e300 squared is representable), to within the
  rounding error of the terms it sums (``magnitude``: the sum of their absolute values);
  where the reference itself is finite and clear of the dtype's limits, an error is a defect;
* the inputs (arrays and the distribution's parameters) are never mutated;
* no RuntimeWarning escapes.

The example budget is small by default (a few seconds in total, derandomized, so the
normal suite is deterministic).  ``NPEVOGRAD_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz.py``
runs a longer, randomized search.
"""

from __future__ import annotations

import os
import warnings
from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import npevograd as ng
from npevograd.algorithms import PGPE, SNES, XNES, EvolvabilityES, OpenES
from npevograd.optim import SGD, Adam
from npevograd.parallel import FitnessError, evaluate
from npevograd.testing import assert_weights_close

L = np.longdouble
_LONG = int(os.environ.get("NPEVOGRAD_FUZZ_EXAMPLES", "0"))
FUZZ = settings(
    max_examples=_LONG or 25,
    derandomize=not _LONG,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
SCALES = [1e-300, 1e-200, 1e-100, 1e-30, 1e-8, 1.0, 1e8, 1e30, 1e100, 1e200, 1e300]
SCALES32 = [1e-30, 1e-8, 1.0, 1e8, 1e30]


# --- input strategies ---------------------------------------------------------------------------


@st.composite
def arrays(draw, shape: tuple[int, ...], dtype, special: bool = True, positive: bool = False) -> np.ndarray:
    """Moderate values times one extreme scale; sometimes a NaN or inf at one entry."""
    scales = SCALES32 if dtype == np.float32 else SCALES
    scale = draw(st.sampled_from(scales))
    size = int(np.prod(shape))
    base = draw(st.lists(st.floats(0.1 if positive else -4, 4, allow_nan=False), min_size=size, max_size=size))
    arr = (np.array(base, dtype=np.float64) * scale).astype(dtype).reshape(shape)
    if special and size and draw(st.integers(0, 9)) == 0:
        arr.flat[draw(st.integers(0, size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return arr


def wrong(draw, good: np.ndarray) -> Any:
    """Sometimes replace a good argument by one of the wrong shape or type."""
    kind = draw(st.integers(0, 14))
    if kind == 0:
        return good.reshape(good.shape + (1,))
    if kind == 1:
        return good.ravel()[:-1] if good.size > 1 else np.zeros((2, 2, 2))
    if kind == 2:
        return good.astype(complex)
    if kind == 3:
        return "abc"
    return good


# --- the property -------------------------------------------------------------------------------


class Outcome:
    def __init__(self, value: Any = None, error: Exception | None = None):
        self.value, self.error = value, error


def run(call: Callable[[], Any], names: list[str], inputs: list[Any]) -> Outcome:
    """Run ``call``: no RuntimeWarning, inputs unmutated, errors only ValueError/TypeError naming an argument."""
    before = [np.array(a, copy=True) if isinstance(a, np.ndarray) else a for a in inputs]
    with warnings.catch_warnings(), np.errstate(all="warn", under="ignore"):  # numpy's defaults
        warnings.simplefilter("error", RuntimeWarning)
        try:
            outcome = Outcome(value=call())
        except (ValueError, TypeError) as exc:
            message = str(exc)
            assert any(name in message for name in names), (names, repr(exc))
            outcome = Outcome(error=exc)
    for old, new in zip(before, inputs):
        if isinstance(old, np.ndarray):
            np.testing.assert_array_equal(old, new, err_msg="an input was mutated")
    COUNTER["calls"] += 1
    return outcome


COUNTER = {"calls": 0}


def agrees(ours: np.ndarray, ref: np.ndarray, magnitude: np.ndarray, dtype, what: str) -> None:
    """ours (dtype) equals the longdouble reference to within the rounding of the summed terms."""
    ours = np.asarray(ours)
    assert ours.dtype == dtype, (what, ours.dtype, dtype)
    assert np.isfinite(ours).all(), (what, ours)
    finfo = np.finfo(dtype)
    # results below the smallest normal number are underflow: finite, but no agreement is claimed
    tol = 64 * float(finfo.eps) * np.asarray(magnitude, dtype=L) + L(64) * L(float(finfo.tiny))
    err = np.abs(ours.astype(L) - ref)
    assert (err <= tol).all(), (what, ours, ref, magnitude)


def representable(ref: np.ndarray, magnitude: np.ndarray, dtype) -> bool:
    """The reference and its terms are clear of the dtype's overflow limit (an error there is a defect)."""
    limit = L(float(np.finfo(dtype).max)) / L(2**12)
    return bool(np.isfinite(ref).all() and (np.abs(np.asarray(magnitude, dtype=L)) < limit).all())


def check(outcome: Outcome, ref: np.ndarray | None, magnitude: np.ndarray | None, dtype, what: str,
          terms: np.ndarray | None = None) -> None:
    """``terms``: the per-sample scores of a weighted sum; an error is allowed if one of them overflows."""
    if outcome.error is not None:
        allowed = terms is not None and not representable(terms, terms, dtype)
        if ref is not None and magnitude is not None and representable(ref, magnitude, dtype) and not allowed:
            raise AssertionError(f"{what}: error {outcome.error!r} though the reference is finite: {ref}")
        return
    if ref is None:
        value = np.asarray(outcome.value)
        assert np.isfinite(value).all(), (what, value)
        return
    if not np.isfinite(ref).all() or (np.abs(ref) > L(float(np.finfo(dtype).max))).any():
        raise AssertionError(f"{what}: finite result {outcome.value} where the reference overflows: {ref}")
    agrees(outcome.value, ref, magnitude, dtype, what)


# --- longdouble references ---------------------------------------------------------------------------


def ref_normal_score(mu, sigma, x, learn, isotropic):
    eps = x.astype(L) - mu.astype(L)
    s = sigma.astype(L)
    score = {"mu": eps / s**2}
    # (|x| + |mu|) / sigma^2 bounds the rounding of the fixed-sigma form (w @ x - sum(w) mu) / sigma^2
    mags = {"mu": (np.abs(x.astype(L)) + np.abs(mu.astype(L))) / s**2}
    if learn:
        if isotropic:
            score["sigma"] = (eps**2).sum(axis=1) / s**3 - x.shape[1] / s
            mags["sigma"] = (eps**2).sum(axis=1) / s**3 + x.shape[1] / s
        else:
            score["sigma"] = eps**2 / s**3 - 1 / s
            mags["sigma"] = eps**2 / s**3 + 1 / s
    d = x.shape[1]
    log_det = d * np.log(s) if isotropic else np.log(s).sum()
    quad = 0.5 * ((eps / s) ** 2).sum(axis=1)
    log_prob = -quad - log_det - L(0.5) * d * np.log(L(2) * L(np.pi))
    log_mag = quad + np.abs(log_det) + d
    return score, mags, log_prob, log_mag


def ref_mix_score(mus, sigma, x):
    eps = x.astype(L)[:, None, :] - mus.astype(L)[None]
    s = L(sigma)
    log_k = -0.5 * (eps**2).sum(axis=2) / s**2
    gamma = np.exp(log_k - log_k.max(axis=1, keepdims=True))
    gamma /= gamma.sum(axis=1, keepdims=True)
    score = gamma[:, :, None] * eps / s**2
    # gamma = exp(log_k - ...) carries the rounding of log_k, about eps ||z||^2, as a relative error
    sensitivity = 1 + (eps**2).sum(axis=2, keepdims=True) / s**2
    return {"mus": score}, {"mus": np.abs(score) * sensitivity}


def ref_discrete_score(p, x):
    logits = p.logits.astype(L)
    if isinstance(p, ng.Bernoulli):
        s = 1 / (1 + np.exp(-logits))
        score = x.astype(L) - s
        return {"logits": score}, {"logits": np.abs(x.astype(L)) + s}
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    pi = e / e.sum(axis=1, keepdims=True)
    onehot = np.eye(p.logits.shape[1], dtype=L)[x]
    return {"logits": onehot - pi}, {"logits": onehot + pi}


def ref_score(p, x):
    if isinstance(p, ng.Normal):
        score, mags, _, _ = ref_normal_score(p.mu, p.sigma, x, p.learn_sigma, p.isotropic)
        return score, mags
    if isinstance(p, ng.MixNormal):
        return ref_mix_score(p.mus, p.sigma, x)
    return ref_discrete_score(p, x)


def ref_weighted(p, w, x):
    """The weighted score, its magnitude, and the per-sample terms' magnitudes."""
    score, mags = ref_score(p, x)
    wl = w.astype(L)
    ref = {k: np.tensordot(wl, v, axes=(0, 0)) for k, v in score.items()}
    mag = {k: np.tensordot(np.abs(wl), v, axes=(0, 0)) for k, v in mags.items()}
    return ref, mag, mags


def ref_encoded(p, w, encoded):
    """The weighted score of encoded samples from the windows themselves: x_i - mu = s_i sigma T_i exactly."""
    z = encoded.signs.astype(L)[:, None] * encoded.table.rows(encoded.indices, encoded.dim).astype(L)
    s, wl = p.sigma.astype(L), w.astype(L)
    score = {"mu": z / s, "sigma": ((z**2).sum(axis=1) - z.shape[1]) / s if p.isotropic else (z**2 - 1) / s}
    mags = {"mu": np.abs(z) / s, "sigma": ((z**2).sum(axis=1) + z.shape[1]) / s if p.isotropic else (z**2 + 1) / s}
    ref = {k: np.tensordot(wl, v, axes=(0, 0)) for k, v in score.items()}
    mag = {k: np.tensordot(np.abs(wl), v, axes=(0, 0)) for k, v in mags.items()}
    return ref, mag, mags


def ref_zscore(f):
    fl = f.astype(L)
    centred = fl - fl.mean(axis=0)
    return centred / np.sqrt((centred**2).sum(axis=0) / (fl.shape[0] - 1))


# --- distributions -----------------------------------------------------------------------------------


@st.composite
def distributions(draw):
    """(name, constructor thunk, constructor inputs, the arguments' names, dtype)."""
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    kind = draw(st.sampled_from(["normal", "normal-diag", "paired", "mix", "bernoulli", "categorical"]))
    d = draw(st.integers(1, 3))
    if kind.startswith("normal") or kind == "paired":
        mu = wrong(draw, draw(arrays((d,), dtype)))
        sigma_shape = (d,) if kind == "normal-diag" else ()
        sigma = wrong(draw, draw(arrays(sigma_shape, np.float64, positive=draw(st.booleans()))))
        learn = draw(st.sampled_from([True, False, True, "yes"]))
        cls = ng.PairedNormal if kind == "paired" else ng.Normal
        return kind, lambda: cls(mu, sigma, learn_sigma=learn), [mu, sigma], ["mu", "sigma", "learn_sigma"], dtype
    if kind == "mix":
        mus = wrong(draw, draw(arrays((draw(st.integers(1, 3)), d), dtype)))
        sigma = draw(arrays((), np.float64, positive=True))
        return kind, lambda: ng.MixNormal(mus, sigma), [mus, sigma], ["mus", "sigma"], dtype
    shape = (d,) if kind == "bernoulli" else (d, draw(st.integers(1, 3)))
    logits = wrong(draw, draw(arrays(shape, dtype)))
    cls = ng.Bernoulli if kind == "bernoulli" else ng.Categorical
    return kind, lambda: cls(logits), [logits], ["logits"], dtype


def samples_for(draw, p, n):
    """x for p: drawn from p (n samples) or, for the continuous ones, extreme values of p's shape."""
    if isinstance(p, (ng.Normal, ng.MixNormal)) and draw(st.booleans()):
        xdtype = draw(st.sampled_from([np.float32, np.float64]))
        return draw(arrays((n, p.dim), xdtype, special=draw(st.booleans())))
    if isinstance(p, ng.PairedNormal):
        n = 2 * n
    return p.sample(n, draw(st.integers(0, 2**32)))


@FUZZ
@given(st.data())
@np.errstate(all="ignore")  # the references; each public call runs under numpy's defaults
def test_distributions_and_their_calls(data):
    draw = data.draw
    kind, make, inputs, names, dtype = draw(distributions())
    built = run(make, names, inputs)
    if built.error is not None:
        return
    p = built.value
    assert p.dtype == dtype
    params_before = {k: v.copy() for k, v in p.params.items()}
    n = draw(st.integers(1, 3))
    sampled = run(lambda: p.sample(n, draw(st.integers(0, 2**32))), ["n"], [])
    if isinstance(p, ng.PairedNormal) and n % 2:
        assert sampled.error is not None
    else:
        check(sampled, None, None, dtype, "sample")
        assert sampled.value.dtype == (np.int64 if isinstance(p, ng.Categorical) else dtype) or isinstance(
            p, ng.Categorical)
    try:
        x = samples_for(draw, p, n)
    except ValueError:  # sampling an extreme distribution can overflow: checked above
        return
    n = x.shape[0]
    score_ref, score_mag = ref_score(p, x.astype(p.dtype) if x.dtype.kind == "f" else x)
    outcome = run(lambda: p.score(x), ["x", "params", "sigma"], [x])
    whole = np.concatenate([np.ravel(v) for v in score_mag.values()])  # one entry overflowing fails the call
    for name in score_ref:
        check(Outcome(outcome.value[name]) if outcome.error is None else outcome, score_ref[name],
              score_mag[name], dtype, f"{kind}.score[{name}]", whole)
    if isinstance(p, ng.Normal):
        _, _, lp_ref, lp_mag = ref_normal_score(p.mu, p.sigma, x.astype(p.dtype), p.learn_sigma, p.isotropic)
        outcome = run(lambda: p.log_prob(x), ["x", "params", "sigma"], [x])
        check(outcome, lp_ref, lp_mag, dtype, f"{kind}.log_prob")
    w = draw(arrays((n,), draw(st.sampled_from([np.float32, np.float64]))))
    ws_ref, ws_mag, ws_terms = ref_weighted(p, w.astype(p.dtype) if np.isfinite(w).all() else w,
                                            x.astype(p.dtype) if x.dtype.kind == "f" else x)
    ws_terms = {name: np.concatenate([whole, *[np.ravel(v) for v in ws_mag.values()]]) for name in ws_terms}
    outcome = run(lambda: p.weighted_score(w, x), ["x", "w", "params", "sigma"], [w, x])
    for name in ws_ref:
        check(Outcome(outcome.value[name]) if outcome.error is None else outcome,
              ws_ref[name] if np.isfinite(w).all() else np.full(1, np.nan, dtype=L),
              ws_mag[name], dtype, f"{kind}.weighted_score[{name}]", ws_terms[name])
    estimators_on(draw, p, x, dtype, kind)
    for name, value in p.params.items():
        np.testing.assert_array_equal(value, params_before[name], err_msg=f"params[{name!r}] mutated")


def estimators_on(draw, p, x, dtype, kind):
    n = x.shape[0]
    values = draw(arrays((n,) if draw(st.booleans()) else (n, draw(st.integers(1, 2))), np.float64))
    values = wrong(draw, values) if draw(st.integers(0, 4)) == 0 else values
    names = ["values", "behaviours", "f", "shaping(values)", "x", "params", "sigma", "bandwidth", "mean overflows"]
    finite = (
        isinstance(values, np.ndarray) and values.dtype.kind == "f" and np.isfinite(values).all()
        and values.ndim in (1, 2) and values.shape[0] == n and (x.dtype.kind != "f" or np.isfinite(x).all())
    )
    xr = x.astype(p.dtype) if x.dtype.kind == "f" else x
    shaping = draw(st.sampled_from([None, ng.zscore, ng.centered_ranks, ng.nes_utilities]))
    outcome = run(lambda: ng.Mean(shaping=shaping)(values, x, p), names, [values, x])
    if finite and values.ndim == 1 and shaping in (None, ng.zscore):
        f = values.astype(L) if shaping is None else (ref_zscore(values) if n > 1 else None)
        if f is not None and (shaping is None or np.ptp(values) > 0):
            ws_ref, ws_mag, ws_terms = ref_weighted(p, (f / n).astype(np.float64).astype(p.dtype), xr)
            ws_terms = {name: np.concatenate([np.ravel(v) for v in ws_terms.values()]) for name in ws_terms}
            for name in ws_ref:
                check(Outcome(outcome.value.grad[name]) if outcome.error is None else outcome,
                      ws_ref[name], ws_mag[name], dtype, f"{kind}.Mean({shaping}).grad[{name}]", ws_terms[name])
            if outcome.error is None:
                assert np.isfinite(outcome.value.value)
                np.testing.assert_allclose(float(outcome.value.value), float(f.mean()), rtol=1e-6,
                                           atol=1e-12 * float(np.abs(f).max()))
    if outcome.error is None and hasattr(p, "natural_gradient") and not isinstance(p, ng.MixNormal):
        grad = outcome.value.grad
        natural = run(lambda: p.natural_gradient(grad), ["grad", "params", "sigma"], [*grad.values()])
        if natural.error is None:
            for value in natural.value.values():
                assert value.dtype == dtype and np.isfinite(value).all()
    outcome = run(lambda: ng.Variance()(values, x, p), names, [values, x])
    if finite and n > 1 and values.ndim <= 2 and (np.ptp(values, axis=0) > 0).all():
        z = ref_zscore(values.reshape(n, -1))
        w_ref = (z**2).sum(axis=1) / n
        ws_ref, ws_mag, ws_terms = ref_weighted(p, w_ref.astype(np.float64).astype(p.dtype), xr)
        ws_terms = {name: np.concatenate([np.ravel(v) for v in ws_terms.values()]) for name in ws_terms}
        for name in ws_ref:  # an error is a defect only if the gradient is representable
            check(Outcome(outcome.value.grad[name]) if outcome.error is None else outcome,
                  ws_ref[name], ws_mag[name], dtype, f"{kind}.Variance.grad[{name}]", ws_terms[name])
        if outcome.error is None:
            np.testing.assert_allclose(outcome.value.weights, w_ref.astype(np.float64), rtol=1e-5,
                                       atol=1e-6 * float(np.abs(w_ref).max()))  # z = 0 has weight ~ eps
    bandwidth = draw(st.sampled_from([1e-300, 1e-150, 1e-30, 0.1, 1.0, 1e30, 1e150, 1e300]))
    standardize = draw(st.booleans())
    run(lambda: ng.Entropy(bandwidth=bandwidth, standardize=standardize)(values, x, p), names, [values, x])
    run(lambda: ng.expectation(values, x, p), names, [values, x])


# --- optimizers -----------------------------------------------------------------------------------------


@FUZZ
@given(st.data())
@np.errstate(all="ignore")  # the references; each public call runs under numpy's defaults
def test_optimizers(data):
    draw = data.draw
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    d = draw(st.integers(1, 3))
    theta = draw(arrays((d,), dtype, special=False))
    lr = draw(st.sampled_from([1e-300, 1e-8, 0.1, 1.0, 1e8, 1e300, -1.0, np.nan]))
    cls = draw(st.sampled_from([SGD, Adam]))
    built = run(lambda: cls({"theta": theta}, lr=lr), ["lr", "params"], [])
    if built.error is not None:
        return
    opt = built.value
    ref_theta, m, v = theta.astype(L), np.zeros(d, dtype=L), np.zeros(d, dtype=L)
    m_abs = np.zeros(d, dtype=L)  # the first moment of |g|: the rounding scale of m, which may cancel
    path = np.abs(theta.astype(L))  # |theta_0| + the sizes of all steps so far: the rounding scale of theta
    for t in range(1, draw(st.integers(1, 3)) + 1):
        g = wrong(draw, draw(arrays((d,), np.float64)))
        before = theta.copy()
        outcome = run(lambda g=g: opt.step({"theta": g}), ["grad", "params"], [g])
        if outcome.error is not None:
            np.testing.assert_array_equal(theta, before, err_msg="a failed step changed the parameters")
            return
        gl = g.astype(L)
        if (np.abs(g[g != 0]) < np.finfo(np.float64).tiny).any():
            return  # subnormal gradient entries carry fewer bits: no agreement to claim
        if cls is SGD:
            step = L(lr) * gl
            step_mag = np.abs(step)
        else:
            m = L(0.9) * m + L(0.1) * gl
            m_abs = L(0.9) * m_abs + L(0.1) * np.abs(gl)
            v = L(0.999) * v + L(0.001) * gl**2
            denominator = (1 - L(0.9) ** t) * (np.sqrt(v / (1 - L(0.999) ** t)) + L(1e-8))
            step, step_mag = L(lr) * m / denominator, L(lr) * m_abs / denominator
        ref_theta = ref_theta + step.astype(np.float64).astype(dtype).astype(L)
        path = path + step_mag
        agrees(theta, ref_theta, path + t * step_mag, dtype, f"{cls.__name__} step {t}")


# --- noise table and encoded samples ---------------------------------------------------------------------

TABLE = ng.NoiseTable(200, 11, shared=False)
INTEGER_TYPES = [np.uint8, np.int8, np.uint16, np.int32, np.uint64, np.int64, int]


@FUZZ
@given(st.data())
@np.errstate(all="ignore")  # the references; each public call runs under numpy's defaults
def test_noise_table_and_encoded_samples(data):
    draw = data.draw
    kind = draw(st.sampled_from(INTEGER_TYPES))
    dim = draw(st.sampled_from([kind(1), kind(3), kind(7), 0, 201, 2.0, True]))
    m = draw(st.integers(1, 3))
    index_kind = draw(st.sampled_from([np.int16, np.uint16, np.int64, np.float64]))
    indices = np.array([draw(st.integers(-2, 200)) for _ in range(m)]).astype(index_kind)
    names = ["dim", "indices", "a", "b", "n", "rng", "signs", "table"]
    rows = run(lambda: TABLE.rows(indices, dim), names, [indices])
    if rows.error is None:
        k = int(dim)
        expected = np.stack([TABLE.array[i : i + k] for i in indices.astype(np.int64)])
        np.testing.assert_array_equal(rows.value, expected)
    a = draw(arrays((m,), draw(st.sampled_from([np.float32, np.float64]))))
    b = draw(arrays((m,), np.float64)) if draw(st.booleans()) else None
    contracted = run(lambda: TABLE.contract(indices, dim, a, b), names, [indices, a])
    b_fits = b is None or (np.isfinite(b).all() and np.abs(b).max() <= np.finfo(a.dtype).max)
    if rows.error is None and np.isfinite(a).all() and b_fits:
        windows = rows.value.astype(L)
        ref_a = np.tensordot(a.astype(L), windows, axes=(0, 0))
        check(Outcome(contracted.value[0]) if contracted.error is None else contracted, ref_a,
              np.tensordot(np.abs(a.astype(L)), np.abs(windows), axes=(0, 0)), a.dtype, "contract a")
    n = draw(st.sampled_from([kind(1), kind(3), 0]))
    run(lambda: TABLE.sample_index(draw(st.integers(-1, 5)), dim, n), names, [])
    signs = np.array([draw(st.sampled_from([1, -1, 1, 0])) for _ in range(m)])
    encoded = run(lambda: ng.EncodedSamples(indices, signs, dim, TABLE), names, [indices, signs])
    if encoded.error is None:
        enc = encoded.value
        dtype = draw(st.sampled_from([np.float32, np.float64]))
        mu = draw(arrays((int(dim),), dtype, special=False))
        sigma = draw(arrays((int(dim),), np.float64, special=False, positive=True))
        p = run(lambda: ng.Normal(mu, sigma, learn_sigma=True, noise=TABLE), ["sigma"], [mu])
        if p.error is not None:
            return
        dist = p.value
        w = draw(arrays((m,), np.float64, special=False))
        decoded = run(lambda: dist.decode(enc), ["x", "params", "sigma"], [])
        if decoded.error is None:
            assert decoded.value.dtype == dtype and np.isfinite(decoded.value).all()
        outcome = run(lambda: dist.weighted_score(w, enc), ["x", "w", "params", "sigma"], [w])
        ref, mag, terms = ref_encoded(dist, w.astype(dtype), enc)
        w_cast = np.abs(w.astype(dtype))
        if (w_cast[w_cast > 0] < np.finfo(dtype).tiny).any():
            return  # subnormal weights carry fewer bits than the dtype: no agreement to claim
        terms = {name: np.concatenate([np.ravel(v) for v in terms.values()]) for name in terms}
        for name in ref:
            check(Outcome(outcome.value[name]) if outcome.error is None else outcome, ref[name], mag[name],
                  dtype, f"encoded weighted_score[{name}]", terms[name])


# --- parallel.evaluate, serially -------------------------------------------------------------------------


@FUZZ
@given(st.data())
@np.errstate(all="ignore")  # the references; each public call runs under numpy's defaults
def test_evaluate_serially(data):
    draw = data.draw
    n = draw(st.integers(1, 6))
    out = draw(arrays((n,), np.float64))
    p = ng.Normal(np.zeros(2), 1.0)

    def fitness(x: np.ndarray) -> np.ndarray:
        return out[START[0] : START[0] + x.shape[0]]

    batch = draw(st.sampled_from([None, 1, 2, 4, 0]))
    START[0] = 0

    def counting(x: np.ndarray) -> np.ndarray:
        values = fitness(x)
        START[0] += x.shape[0]
        return values

    try:
        result = evaluate(counting, p, n, 0, batch_size=batch)
    except FitnessError as exc:
        bad = np.flatnonzero(~np.isfinite(out))
        assert bad.size and exc.index == bad[0], (exc, out)
        return
    except ValueError as exc:
        assert batch == 0 and "batch_size" in str(exc)
        return
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(result.fitness, out)


START = [0]


@pytest.fixture(autouse=True, scope="module")
def _report_count():
    yield
    print(f"\nfuzz: {COUNTER['calls']} public calls checked")


# --- MultivariateNormal (full covariance) ------------------------------------------------------------


def solve_lower_long(L, b):
    """L^{-1} b by forward substitution in longdouble, b (d, m)."""
    tril, b = L.astype(np.longdouble), b.astype(np.longdouble)
    out = np.zeros_like(b)
    for j in range(tril.shape[0]):
        out[j] = (b[j] - tril[j, :j] @ out[:j]) / tril[j, j]
    return out


def ref_mvn(mu, tril, x, w):
    """log p, weighted score of MultivariateNormal in longdouble, and a rounding bound for each."""
    Ll = tril.astype(L)
    d = mu.shape[0]
    inv = solve_lower_long(Ll, np.eye(d, dtype=L))  # L^{-1}
    eps = (x.astype(L) - mu.astype(L)).T  # (d, n)
    u = inv @ eps
    skeel = float(np.max(np.abs(inv) @ np.abs(Ll)))  # the solve's conditioning (Skeel)
    u_mag = np.abs(inv) @ (np.abs(x.astype(L)) + np.abs(mu.astype(L))).T * skeel * d
    log_det = np.log(np.diagonal(Ll)).sum()
    log_prob = -0.5 * (u**2).sum(axis=0) - log_det - L(0.5) * d * np.log(L(2) * L(np.pi))
    log_mag = ((np.abs(u) + u_mag) ** 2).sum(axis=0) + np.abs(log_det) + d
    wl = w.astype(L)
    g_mu = inv.T @ (u @ wl)
    mu_mag = np.abs(inv.T) @ ((np.abs(u) + u_mag) @ np.abs(wl)) * skeel * d
    # the scale_tril terms w_i v_i u_i^T: allowed to overflow (then an error is right)
    u_bound = np.abs(u) + u_mag
    score_terms = np.abs(inv.T) @ u_bound * skeel * d  # |v_i|: the per-sample scores may overflow too
    terms = np.concatenate([np.ravel((score_terms * np.abs(wl)) @ u_bound.T), np.ravel(score_terms[:, :, None]
                                                                                     * u_bound.T[None])])
    return log_prob, log_mag, g_mu, mu_mag, terms


@FUZZ
@given(st.data())
@np.errstate(all="ignore")  # the references; each public call runs under numpy's defaults
def test_multivariate_normal(data):
    draw = data.draw
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    d = draw(st.integers(1, 3))
    mu = wrong(draw, draw(arrays((d,), dtype)))
    scale = draw(st.sampled_from(SCALES32 if dtype == np.float32 else SCALES))
    diagonal = np.array(draw(st.lists(st.floats(0.5, 2), min_size=d, max_size=d)))
    lower = np.tril(np.array(draw(st.lists(st.floats(-1, 1), min_size=d * d, max_size=d * d))).reshape(d, d), -1)
    tril = (np.diag(diagonal) + lower) * scale
    kind = draw(st.integers(0, 12))
    if kind == 0:
        tril[0, 0] = draw(st.sampled_from([0.0, -1.0, np.nan, np.inf, 1e39 if dtype == np.float32 else 1e-320]))
    elif kind == 1 and d > 1:
        tril[0, 1] = 1.0  # not lower triangular
    elif kind == 2:
        tril = wrong(draw, tril)
    learn = draw(st.sampled_from([True, False, "False", np.True_]))
    built = run(lambda: ng.MultivariateNormal(mu, tril, learn_scale=learn), ["mu", "scale_tril", "learn_scale"],
                [mu, tril])
    if built.error is not None:
        return
    p = built.value
    assert p.dtype == dtype
    stored = p.scale_tril.astype(np.float64)
    assert np.all(np.diagonal(stored) > 0) and np.isfinite(stored).all()
    params_before = {k: v.copy() for k, v in p.params.items()}
    n = draw(st.integers(1, 3))
    sampled = run(lambda: p.sample(n, draw(st.integers(0, 2**32))), ["n", "x", "params", "scale_tril"], [])
    if sampled.error is None:
        assert sampled.value.dtype == dtype and np.isfinite(sampled.value).all()
        x = sampled.value if draw(st.booleans()) else draw(arrays((n, d), draw(st.sampled_from([np.float32, dtype]))))
    else:
        x = draw(arrays((n, d), dtype))
    w = draw(arrays((n,), np.float64, special=False))
    xr = x.astype(dtype)
    lp_ref, lp_mag, g_ref, g_mag, l_terms = ref_mvn(p.mu, p.scale_tril, xr, w.astype(dtype))
    outcome = run(lambda: p.log_prob(x), ["x", "params", "scale_tril"], [x])
    if np.isfinite(x).all():
        check(outcome, lp_ref, lp_mag, dtype, "mvn.log_prob")
    else:
        assert outcome.error is not None
    ws = run(lambda: p.weighted_score(w, x), ["x", "w", "params", "scale_tril"], [w, x])
    if np.isfinite(x).all() and (np.abs(w.astype(dtype))[w != 0] >= np.finfo(dtype).tiny).all():
        # learned: C = sum_i w_i u_i u_i^T and (sum_i w_i) / L_jj may overflow where g_mu does not
        terms = np.concatenate([np.ravel(g_mag), np.ravel(l_terms)])
        check(Outcome(ws.value["mu"]) if ws.error is None else ws, g_ref, g_mag, dtype, "mvn.weighted_score[mu]",
              terms)
    score = run(lambda: p.score(x), ["x", "params", "scale_tril"], [x])
    if score.error is None:
        assert all(v.dtype == dtype and np.isfinite(v).all() for v in score.value.values())
        natural = run(lambda: p.natural_gradient(score.value and {k: v[0] for k, v in score.value.items()}),
                      ["grad", "params", "scale_tril", "natural"], [])
        if natural.error is None:
            assert all(v.dtype == dtype and np.isfinite(v).all() for v in natural.value.values())
    for name, value in p.params.items():
        np.testing.assert_array_equal(value, params_before[name], err_msg=f"params[{name!r}] mutated")
    # parameters changed after construction are checked at every use
    name = draw(st.sampled_from(sorted(p.params)))
    bad = draw(st.sampled_from(["nan", "replace-shape", "negative-diagonal", "replace-ok"]))
    if bad == "nan":
        p.params[name].flat[0] = np.nan
    elif bad == "replace-shape":
        p.params[name] = np.zeros(p.params[name].shape + (1,), dtype=dtype)
    elif bad == "negative-diagonal":
        if name != "scale_tril":
            return
        p.params[name][0, 0] = -1.0
    else:
        p.params[name] = (params_before[name] * 2).astype(dtype)  # a valid replacement is used
    xr = np.zeros((1, d), dtype)
    for call in (lambda: p.sample(2, 0), lambda: p.log_prob(xr), lambda: p.score(xr),
                 lambda: p.natural_gradient({k: np.zeros_like(v) for k, v in params_before.items()})):
        outcome = run(call, [f"params[{name!r}]", "scale_tril", "rescale", "n"], [])
        if bad == "replace-ok":
            if name == "scale_tril":
                np.testing.assert_array_equal(p.scale_tril, np.tril(p.params["scale_tril"]))
        else:
            assert outcome.error is not None, (bad, name)


# --- sample reuse: importance ratios, baselines, standard errors, the reuse buffer -------------------------

MIN_ESS = [None, None, 0.5, 1, 2.5, 3, 4, 0, -1.0, np.nan, "2", True]


def reuse_estimators(draw):
    kind = draw(st.sampled_from(["mean", "mean", "mean-mean", "mean-loo", "normalize", "variance", "entropy"]))
    if kind == "variance":
        return kind, ng.Variance()
    if kind == "entropy":
        return kind, ng.Entropy(bandwidth=draw(st.sampled_from([0.1, 1.0, 1e30])))
    baseline = {"mean-mean": "mean", "mean-loo": "loo"}.get(kind)
    return kind, ng.Mean(baseline=baseline, normalize=kind == "normalize")


def ref_stderr(score, w, g):
    """sqrt(n/(n-1) sum_i (w_i s_i - g/n)^2) in longdouble, and a rounding bound."""
    n = w.shape[0]
    wl = w.astype(L).reshape((-1,) + (1,) * (score.ndim - 1))
    t = n * wl * score
    ref = np.sqrt(((t - g) ** 2).sum(axis=0) / (n * (n - 1)))
    mag = np.sqrt(((np.abs(t) + np.abs(g)) ** 2).sum(axis=0) / (n * (n - 1)))
    return ref, mag


@FUZZ
@given(st.data())
@np.errstate(all="ignore")  # the references; each public call runs under numpy's defaults
def test_sample_reuse(data):
    draw = data.draw
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    d, n = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    p = ng.Normal(draw(arrays((d,), dtype, special=False)), draw(st.sampled_from([1e-3, 1.0, 1e3])),
                  learn_sigma=draw(st.booleans()))
    x = p.sample(n, draw(st.integers(0, 2**32))) if draw(st.booleans()) else draw(arrays((n, d), dtype))
    values = draw(arrays((n,), np.float64))
    values = wrong(draw, values) if draw(st.integers(0, 5)) == 0 else values
    mode = draw(st.sampled_from(["log_proposal", "log_proposal", "proposal", "both", "bad-proposal"]))
    log_q = draw(arrays((n,), np.float64)) * draw(st.sampled_from([1.0, -1.0]))
    log_q = wrong(draw, log_q) if draw(st.integers(0, 5)) == 0 else log_q
    q = ng.Normal(draw(arrays((d,), dtype, special=False)), draw(st.sampled_from([1e-3, 1.0, 1e3])))
    kwargs: dict[str, Any] = {"log_proposal": log_q} if mode == "log_proposal" else {"proposal": q}
    if mode == "both":
        kwargs["log_proposal"] = log_q
    elif mode == "bad-proposal":
        kwargs["proposal"] = draw(st.sampled_from([np.zeros(n), "q", p.params]))
    min_ess = draw(st.sampled_from(MIN_ESS))
    kind, estimator = reuse_estimators(draw)
    names = ["values", "behaviours", "shaping(values)", "x", "params", "sigma", "proposal", "log_proposal",
             "min_ess", "baseline", "importance ratios", "mean overflows"]
    outcome = run(lambda: estimator(values, x, p, min_ess=min_ess, **kwargs), names, [values, x, log_q])
    finite_inputs = (
        isinstance(values, np.ndarray) and values.dtype.kind == "f" and values.shape in ((n,), (n, 1))
        and np.isfinite(values).all() and np.isfinite(x).all()
    )
    if mode in ("both", "bad-proposal") or not finite_inputs:
        assert outcome.error is not None
        return
    values = values.reshape(n)  # (n, 1) fitness is (n,)
    if mode == "log_proposal":
        if not (isinstance(log_q, np.ndarray) and log_q.dtype.kind == "f" and log_q.shape == (n,)
                and np.isfinite(log_q).all()):
            assert outcome.error is not None
            return
        lq = log_q.astype(L)
    else:
        lq = ref_normal_score(q.mu, q.sigma, x.astype(q.dtype), False, True)[2]
    xr = x.astype(dtype)
    lp, lp_mag = ref_normal_score(p.mu, p.sigma, xr, p.learn_sigma, True)[2:]
    rho = np.exp(lp - lq)
    finfo = np.finfo(dtype)
    ratios_fit = bool(np.isfinite(rho).all() and n * rho.max() < L(float(finfo.max)) / 2
                      and rho.max() > L(float(finfo.tiny)) * 2)
    ess = rho.sum() ** 2 / (rho**2).sum() if ratios_fit else L(0)
    bad_min_ess = min_ess is not None and (isinstance(min_ess, (str, bool)) or not min_ess > 0)
    if outcome.error is not None:
        degenerate = min_ess is not None and not bad_min_ess and float(ess) < float(min_ess) * (1 + 1e-6)
        small = kind in ("mean-loo", "variance") and n < 2 or kind == "variance" and np.ptp(values) == 0
        if ratios_fit and not bad_min_ess and not degenerate and not small and kind in ("mean", "mean-mean",
                                                                                        "mean-loo", "normalize"):
            # an error is a defect only where every weighted term is representable
            score, mags = ref_score(p, xr)
            w_mag = np.abs(values.astype(L)) * rho / n + rho.max()
            terms = np.concatenate([np.tensordot(w_mag, m, axes=(0, 0)).ravel() for m in mags.values()])
            log_densities_fit = representable(lp, lp_mag, dtype) and representable(lq, lq, dtype)
            if (log_densities_fit and representable(terms, terms * n, dtype)
                    and representable(rho * n, values.astype(L) * rho, np.float64)):
                raise AssertionError(f"{kind}: error {outcome.error!r} though every term is representable")
        return
    est = outcome.value
    if float(64 * np.finfo(dtype).eps * (lp_mag.max() + np.abs(lq).max())) > 1e-3:
        # log p is computed in p's dtype: at |log p| ~ 1e6 in float32 its rounding exceeds 1, so log p - log q
        # (and each ratio) has no correct digit; only finiteness is claimed (noted in the f1 report)
        assert all(np.isfinite(g).all() and g.dtype == dtype for g in est.grad.values())
        return
    assert not bad_min_ess and ratios_fit
    assert est.ratios.dtype == dtype and est.weights.dtype.kind == "f"
    agrees(est.ratios, rho, rho * (lp_mag + np.abs(lq) + 1), dtype, f"{kind} ratios")
    assert 1 - 1e-4 <= est.ess <= n * (1 + 1e-4) and abs(est.ess - float(ess)) <= 1e-3 * float(ess)
    if min_ess is not None:
        assert est.ess >= float(min_ess)
    for name, g in est.grad.items():
        assert g.dtype == dtype and np.isfinite(g).all(), (kind, name, g)
    if kind == "mean":  # w_i = f_i rho_i / n exactly
        w_ref = values.astype(L) * rho / n
        ws_ref, ws_mag, _ = ref_weighted(p, w_ref, xr)
        rel = lp_mag + np.abs(lq) + 1  # rho carries the rounding of log p - log q, relatively
        for name in ws_ref:
            _, mag_w, _ = ref_weighted(p, np.abs(w_ref) * rel, xr)
            agrees(est.grad[name], ws_ref[name], ws_mag[name] + mag_w[name], dtype, f"Mean reuse grad[{name}]")
        assert np.isfinite(est.value)
    # standard errors of the same estimate
    se = run(lambda: ng.gradient_stderr(est, x, p), ["n =", "estimate", "x", "p", "overflow"], [x])
    if n < 2:
        assert se.error is not None
    else:
        score, _ = ref_score(p, xr)
        for name, s in score.items():
            ref, mag = ref_stderr(s, est.weights, est.grad[name].astype(L))
            check(Outcome(se.value[name]) if se.error is None else se, ref, mag, dtype, f"{kind} stderr[{name}]")
    # the estimator's ratio weights against the derivative of its own objective; not for Entropy with a ratio
    # near 0: there phat_j can be ~1e-128 and J = (1/n) sum_j -log(phat_j) r_j is too curved at r_j = 0 for any
    # numerical derivative (the complex step needs h << phat_j, differences need r_j + h >= 0)
    if kind == "entropy" and est.ratios.min() < 1e-8 * est.ratios.max():
        return
    checked = run(lambda: assert_weights_close(estimator, values, est.ratios), ["values", "ratios", "behaviours"],
                  [values])
    assert checked.error is None or kind in ("variance", "entropy"), checked.error


@FUZZ
@given(st.data())
@np.errstate(all="ignore")  # the references; each public call runs under numpy's defaults
def test_reuse_buffer(data):
    draw = data.draw
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    d = draw(st.integers(1, 2))
    k = draw(st.sampled_from([1, 2, 3, 3, 0, -1, "2", 2.0]))
    built = run(lambda: ng.ReuseBuffer(k), ["k"], [])
    if built.error is not None:
        return
    buffer = built.value
    p = ng.Normal(draw(arrays((d,), dtype, special=False)), draw(st.sampled_from([1e-3, 1.0, 1e3])),
                  learn_sigma=True)
    stored: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # x, values, mu, sigma
    for _ in range(draw(st.integers(1, 4))):
        n = draw(st.integers(1, 3))
        x = p.sample(n, draw(st.integers(0, 2**32))) if draw(st.booleans()) else draw(arrays((n, d), dtype))
        values = draw(arrays((n,) if draw(st.booleans()) else (n, 2), np.float64))
        values = wrong(draw, values) if draw(st.integers(0, 5)) == 0 else values
        before = (len(buffer), buffer.x.copy(), buffer.values.copy(), buffer.log_proposal.copy()) if stored else None
        names = ["x", "values", "p", "params", "sigma", "generation", "log_prob", "rescale"]
        added = run(lambda x=x, values=values: buffer.add(x, values, p), names, [x, values])
        if added.error is not None:
            if before is None:
                assert len(buffer) == 0
            else:  # a failed add changes nothing
                assert len(buffer) == before[0]
                np.testing.assert_array_equal(buffer.x, before[1])
                np.testing.assert_array_equal(buffer.values, before[2])
                np.testing.assert_array_equal(buffer.log_proposal, before[3])
        else:
            stored.append((x.astype(dtype), np.asarray(values), p.mu.copy(), p.sigma.copy()))
            stored = stored[-int(k):]
        # the live distribution moves (an optimizer step): the snapshots must not follow it
        p.params["mu"] += draw(st.sampled_from([0.0, 1.0, 1e3])) * p.sigma
    if not stored:
        run(lambda: buffer.x, ["ReuseBuffer is empty"], [])
        return
    np.testing.assert_array_equal(buffer.x, np.concatenate([g[0] for g in stored]))
    xs = np.concatenate([g[0] for g in stored])
    counts = np.array([g[0].shape[0] for g in stored], dtype=L)
    log_p = np.stack([ref_normal_score(mu, sigma, xs, True, sigma.ndim == 0)[2] for _, _, mu, sigma in stored])
    mags = np.stack([ref_normal_score(mu, sigma, xs, True, sigma.ndim == 0)[3] for _, _, mu, sigma in stored])
    shifted = log_p + np.log(counts / counts.sum())[:, None]
    top = shifted.max(axis=0)
    ref = top + np.log(np.exp(shifted - top).sum(axis=0))
    outcome = run(lambda: buffer.log_proposal, ["log_proposal", "rescale"], [])
    assert outcome.error is None and outcome.value.dtype == np.float64 and np.isfinite(outcome.value).all()
    # each log p_g was computed in the parameters' dtype: rounding relative to its terms, in that dtype
    tol = 64 * float(np.finfo(dtype).eps) * (mags.max(axis=0) + np.abs(ref) + 1)
    assert (np.abs(outcome.value.astype(L) - ref) <= tol).all(), (outcome.value, ref, tol)


# --- algorithms: ask/tell, a failed tell changes nothing ------------------------------------------------

BAD_HYPER = [0, -1.0, np.nan, np.inf, 1e300, 1e-300, "0.1", True, None]
HYPER = {
    "OpenES": {"lr": [0.01, 1.0], "weight_decay": [0.0, 0.005], "beta1": [0.9], "beta2": [0.999]},
    "SNES": {"lr_mu": [1.0, 0.1], "lr_sigma": [None, 0.1, 10.0]},
    "XNES": {"lr_mu": [1.0], "lr_sigma": [None, 0.1, 10.0], "lr_B": [None, 0.1], "separable": [False, True]},
    "PGPE": {"lr_mu": [0.2], "lr_sigma": [0.1], "optimizer": ["sgd", "clipup"], "max_speed": [None, 0.4],
             "momentum": [0.9, 0.0], "sigma_max_change": [0.2]},
    "EvolvabilityES": {"kind": ["variance", "entropy"], "lr": [None, 0.1], "bandwidth": [1.0, 0.1]},
}
ALGORITHMS = {cls.__name__: cls for cls in (OpenES, SNES, XNES, PGPE, EvolvabilityES)}


def state_of(obj: Any, seen: set[int] | None = None) -> Any:
    """Everything an algorithm holds, as plain nested values (arrays copied), to compare before and after."""
    seen = set() if seen is None else seen
    if isinstance(obj, np.ndarray):
        return ("array", obj.dtype.str, obj.shape, obj.tobytes())
    if isinstance(obj, (np.random.Generator, np.random.RandomState)):
        return ("rng", repr(obj.bit_generator.state if isinstance(obj, np.random.Generator) else obj.get_state()))
    if isinstance(obj, (int, float, str, bool, type(None), np.generic)):
        return ("value", repr(obj))
    if id(obj) in seen:
        return ("seen",)
    seen.add(id(obj))
    if isinstance(obj, dict):
        return ("dict", tuple((k, state_of(v, seen)) for k, v in obj.items()))
    if isinstance(obj, (list, tuple)):
        return (type(obj).__name__, tuple(state_of(v, seen) for v in obj))
    if hasattr(obj, "__dict__") and type(obj).__module__.startswith("npevograd"):
        return (type(obj).__name__, state_of(vars(obj), seen))
    return ("object", type(obj).__name__)


@FUZZ
@given(st.data())
@np.errstate(all="ignore")  # the references; each public call runs under numpy's defaults
def test_algorithms_ask_tell(data):
    draw = data.draw
    name = draw(st.sampled_from(sorted(ALGORITHMS)))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    d = draw(st.integers(1, 3))
    mu = wrong(draw, draw(arrays((d,), dtype))) if draw(st.integers(0, 3)) == 0 else draw(arrays((d,), dtype, False))
    sigma = draw(st.sampled_from([0.02, 1.0, 1e-30, 1e30, 1e-300, 1e300, 0.0, -1.0, np.nan, "1"]))
    popsize = draw(st.sampled_from([None, 2, 3, 4, 6, 1, 0, 2.0, "4", True]))
    if name == "EvolvabilityES" and popsize is None:
        popsize = 6  # its default (500) is for real runs
    hyper = {key: draw(st.sampled_from(options)) for key, options in HYPER[name].items()}
    if draw(st.integers(0, 3)) == 0:
        hyper[draw(st.sampled_from(sorted(hyper)))] = draw(st.sampled_from(BAD_HYPER))
    names = ["mu", "sigma", "popsize", "rng", "scale_tril", *hyper]
    built = run(lambda: ALGORITHMS[name](mu, sigma, popsize=popsize, rng=draw(st.integers(0, 2**32)), **hyper),
                names, [mu])
    if built.error is not None:
        return
    es = built.value
    assert es.distribution.dtype == dtype, (name, es.distribution.dtype)
    for _ in range(draw(st.integers(1, 3))):
        asked = run(es.ask, ["n", "sigma", "scale_tril", "params"], [])
        if asked.error is not None:
            return
        x = asked.value
        assert x.shape == (es.popsize, es.distribution.dim) and x.dtype == dtype and np.isfinite(x).all()
        width = (draw(st.integers(1, 2)),) if name == "EvolvabilityES" and draw(st.booleans()) else ()
        fitness = draw(arrays((es.popsize, *width), np.float64))
        if draw(st.integers(0, 5)) == 0:
            fitness = wrong(draw, fitness)
        for _attempt in range(2):  # a failed tell keeps the population: tell again without ask
            before = state_of(es)
            told = run(lambda f=fitness: es.tell(f), ["fitness", "behaviours", "lr", "sigma", "scale_tril",
                                                        "params", "rescale", "values", "natural gradient"], [fitness])
            if told.error is None:
                break
            assert state_of(es) == before, f"{name}: a failed tell changed the state ({told.error!r})"
            fitness = np.linspace(-1.0, 1.0, es.popsize)  # an ordinary fitness must then work
        if told.error is not None:
            return  # e.g. an update that would overflow sigma: reported, state kept
        assert es.generation >= 1
        for key, value in es.distribution.params.items():
            assert value.dtype == dtype and np.isfinite(value).all(), (name, key, value)
        assert es.best is not None and np.isfinite(es.best.fitness)
