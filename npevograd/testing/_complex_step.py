r"""An estimator's weights against the derivative of its own objective, in NumPy only.

Every estimator states its objective J(values, r) (``objective``) beside its
hand-derived weights.  The derivative of J in each ratio is taken by the complex step
(Squire and Trapp 1998; Martins et al. 2003),

.. math::

    \frac{\partial J}{\partial r_i} = \frac{\operatorname{Im} J(r + \mathrm{i} h e_i)}{h}
    + O(h^2), \qquad h = 10^{-20},

exact to rounding for a J that is real-analytic in r: there is no subtraction, so no
cancellation, whatever h.  It is not valid where J is not complex-analytic in r (abs,
sorting or ranking the ratios, max, a cast to float, a conjugate).  That is detected when
the objective raises on complex input or returns a real number for it, and otherwise by a
probe: along a random direction :math:`\delta` (:math:`\delta_i = \pm u_i r_i`,
:math:`u_i \in [1/2, 1]`) the complex-step derivative :math:`\sum_i \delta_i\,\partial J/\partial r_i`
is compared with Cauchy's integral over a circle of radius :math:`\rho = 1/4` in the complex
plane of t, evaluated by the trapezoidal rule on N = 32 points (Lyness and Moler 1967),

.. math::

    \frac{d}{dt} J(r + t\delta)\Big|_{t=0} \approx \frac{1}{N\rho}\sum_{k=0}^{N-1}
    J(r + \rho\,\omega^k \delta)\,\omega^{-k}, \qquad \omega = e^{2\pi\mathrm{i}/N},

exact to :math:`(\rho/R)^N` (R >= 1 here: the ratios keep a positive real part) for an
analytic J, and accurate to about eps |J| / rho: far finer than a central difference, so a
non-analytic term of any size the comparison could see is caught.  The probe's own
resolution is measured (the integral at rho and rho/2); when it, or the disagreement it
finds, is above a tenth of the tolerance along :math:`\delta`, every derivative is taken by
central differences instead,

.. math::

    \frac{\partial J}{\partial r_i} \approx \frac{J(r + h e_i) - J(r - h e_i)}{2h}, \qquad
    h = \epsilon^{1/3} \max(1, |r_i|),

with a looser tolerance (rtol 1e-6 in float64, 1e-2 in float32), and the failure message
says so.  Their error is estimated from the same difference at step 2h; when it is above
half the tolerance, or the objective is not finite, no verdict is given: ``CannotDecide``
(an ``AssertionError``) says why, instead of a pass or a fail that could be wrong.  Shapings of
the values (ranks, z-scores) are not a problem: they depend on the values only, and J stays
linear in r.

An entry passes when :math:`|w_i - \partial J/\partial r_i| \le \mathrm{atol} +
\mathrm{rtol}\max(\max_j |\partial J/\partial r_j|, |J| / \sum_j r_j)` (the second term: the
rounding of J itself, relative to the ratios, where every derivative is about 0, e.g. the
self-normalised mean at n = 1); the value when :math:`|v - J| \le
\mathrm{atol} + \mathrm{rtol}\max(|J|, \sum_j |\partial J/\partial r_j|)`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..estimators import Estimator

COMPLEX_STEP = 1e-20
SUBNORMAL_SAFE = float(np.finfo(np.float64).tiny) * 2.0**53  # below this, h dJ/dr_i has lost bits
COMPLEX_STEP_RTOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-9}
CENTRAL_RTOL = {np.dtype(np.float32): 1e-2, np.dtype(np.float64): 1e-6}


def _as_scalar(j: Any, what: str) -> complex:
    arr = np.asarray(j)
    if arr.shape != () or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"objective must return a scalar number {what}, got {type(j).__name__} of shape {arr.shape}")
    return complex(arr)


class CannotDecide(AssertionError):
    """``assert_weights_close`` cannot tell right weights from wrong ones here (the message says why)."""


# The probe: Cauchy's integral on PROBE_POINTS points of a circle of radius PROBE_RADIUS (and half of it).
PROBE_POINTS = 32
PROBE_RADIUS = 0.25
# A probe disagreement, or resolution, above this fraction of the tolerance along the direction rules out
# the complex step; a central-difference error estimate above this fraction of the tolerance, any verdict.
PROBE_FRACTION = 0.1
CENTRAL_FRACTION = 0.5


def complex_step_gradient(objective: Any, values: object, r: np.ndarray) -> tuple[np.ndarray | None, str]:
    """dJ/dr by the complex step, or (None, reason) when J visibly is not complex-analytic in r.

    Visibly: the objective raises on complex ratios or returns a real number for them.  A silent
    failure (abs, a conjugate) is for ``_probe`` to find.
    """
    n = r.shape[0]
    grad = np.empty(n)
    for i in range(n):
        step = COMPLEX_STEP
        for _ in range(2):
            shifted = r.astype(np.complex128)
            shifted[i] += 1j * step
            try:
                j = objective(values, shifted)
            except Exception as err:  # any error on complex input: NotImplementedError, ZeroDivisionError, ...
                return None, f"it raises on complex ratios ({type(err).__name__}: {err})"
            if not np.iscomplexobj(np.asarray(j)):
                return None, "it returns a real number for complex ratios (abs, a cast or a comparison drops Im)"
            imag = _as_scalar(j, "").imag
            if abs(imag) >= SUBNORMAL_SAFE or step > COMPLEX_STEP:
                break
            # h dJ/dr_i is subnormal or 0 (dJ/dr_i ~ 1e-300): it has lost bits, so take a step that brings
            # it back toward normal numbers, h <= 1e-6 |r_i| (an O((h/r_i)^2) = 1e-12 relative error)
            largest = 1e-6 * (abs(float(r[i])) if r[i] != 0 else max(float(np.abs(r).max()), 1e-300))
            step = min(step * SUBNORMAL_SAFE / abs(imag), largest) if imag else largest
        grad[i] = imag / step
    return grad, ""


def _cauchy_derivative(
    objective: Any, values: object, r: np.ndarray, direction: np.ndarray, radius: float
) -> tuple[float, float]:
    """(d/dt J(r + t direction) at t = 0 by Cauchy's integral on a circle of ``radius``, max |J| on it)."""
    roots = np.exp(2j * np.pi * np.arange(PROBE_POINTS) / PROBE_POINTS)
    on_circle = np.array([_as_scalar(objective(values, r + radius * w * direction), "") for w in roots])
    return float((on_circle @ roots.conj()).real) / (PROBE_POINTS * radius), float(np.max(np.abs(on_circle)))


NOT_ANALYTIC = "objective is not complex-analytic in r"
UNCONFIRMED = "the complex step cannot be confirmed"


def _probe(objective: Any, values: object, r: np.ndarray, grad: np.ndarray, allowed: float) -> tuple[str, str]:
    """("", "") if the complex-step ``grad`` is confirmed along a random direction to ``PROBE_FRACTION`` of
    ``allowed`` (the per-entry tolerance), else (``NOT_ANALYTIC`` or ``UNCONFIRMED``, why)."""
    rng = np.random.default_rng(0)
    direction = rng.choice([-1.0, 1.0], r.shape[0]) * rng.uniform(0.5, 1.0, r.shape[0]) * r
    along = float(grad @ direction)
    try:
        contour, largest = _cauchy_derivative(objective, values, r, direction, PROBE_RADIUS)
        half, _ = _cauchy_derivative(objective, values, r, direction, PROBE_RADIUS / 2)
    except Exception as err:
        return NOT_ANALYTIC, f"it raises on the probe's complex ratios ({type(err).__name__}: {err})"
    # resolution: the two radii's difference, and the rounding of J on the circle
    resolution = abs(contour - half) + 64 * np.finfo(np.float64).eps * largest / PROBE_RADIUS
    limit = PROBE_FRACTION * allowed * float(np.sqrt(direction @ direction))
    if not abs(along - contour) <= max(limit, resolution):
        return NOT_ANALYTIC, (
            f"its complex-step derivative along a random direction, {along:.6g}, disagrees with Cauchy's "
            f"integral, {contour:.6g}"
        )
    if not resolution <= limit:
        return (
            UNCONFIRMED,
            f"the probe resolves derivatives only to {resolution:.3g} along its direction, not {limit:.3g}",
        )
    return "", ""


def central_gradient(objective: Any, values: object, r: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """dJ/dr by central differences, h = scale eps^(1/3) max(1, |r_i|).

    Where r_i < h the step down would make a ratio negative (which the objective rejects):
    there the one-sided difference of the same order, (-3 J(r) + 4 J(r + h e_i) - J(r + 2h e_i)) / 2h.
    """
    grad = np.empty(r.shape[0])
    at_r = None
    for i in range(r.shape[0]):
        step = scale * np.finfo(np.float64).eps ** (1 / 3) * max(1.0, abs(float(r[i])))
        up, down = r.astype(np.float64), r.astype(np.float64)
        up[i] += step
        plus = _as_scalar(objective(values, up), "").real
        if r[i] >= step:
            down[i] -= step
            minus = _as_scalar(objective(values, down), "").real
            grad[i] = (plus - minus) / (2 * step)
            continue
        if at_r is None:
            at_r = _as_scalar(objective(values, r.astype(np.float64)), "").real
        up[i] += step
        twice = _as_scalar(objective(values, up), "").real
        grad[i] = (-3 * at_r + 4 * plus - twice) / (2 * step)
    return grad


def _largest(a: np.ndarray) -> float:
    """The largest entry ignoring NaN, or NaN when every entry is NaN (np.nanmax warns there)."""
    kept = np.asarray(a)[~np.isnan(a)]
    return float(kept.max()) if kept.size else math.nan


def _mismatch(
    label: str, actual: np.ndarray, expected: np.ndarray, scale: float, rtol: float, atol: float, reference: str
) -> str | None:
    """None if every entry is within atol + rtol * scale, else one line about the worst entry."""
    a = np.asarray(actual, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    if a.shape != b.shape:
        return f"{label}: estimator shape {a.shape}, objective shape {b.shape}"
    err = np.abs(a - b)
    allowed = atol + rtol * scale
    bad = ~(err <= allowed)
    if not bad.any():
        return None
    worst = np.unravel_index(int(np.argmax(np.where(np.isnan(err), np.inf, err))), b.shape)
    where = f"[{', '.join(map(str, worst))}]" if b.ndim else ""
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = _largest(np.where(err == 0, 0.0, err / np.abs(b)))
    return (
        f"{label}: {int(bad.sum())} of {b.size} entries differ; max abs err {_largest(err):.3g}, max rel err "
        f"{rel:.3g}; worst {label}{where}: estimator {a[worst]:.10g}, {reference} {b[worst]:.10g}, "
        f"allowed abs err {allowed:.3g}"
    )


def assert_weights_close(
    estimator: Any,
    values: object,
    ratios: object = None,
    rtol: float | None = None,
    atol: float | None = None,
) -> tuple[float, np.ndarray]:
    r"""Assert that an estimator's weights are the derivative of its objective: NumPy only, no torch.

    Without ``ratios`` (r = 1): ``estimator.weights(values, n)`` against dJ/dr_i of
    ``estimator.objective(values, r)`` at r = 1.  With ``ratios`` (shape (n,)):
    ``estimator.ratio_weights(values, ratios)``, the dJ/dr_i at r = ratios that sample
    reuse multiplies by rho_i, against the same derivative there.  The values are
    compared too.

    The derivative is taken by the complex step (exact to rounding; default rtol 1e-9
    in float64, 1e-4 in float32) where J is complex-analytic in r, otherwise by central
    differences (default rtol 1e-6 in float64, 1e-2 in float32), as the module docstring
    describes; atol defaults to 0.  Raises ``AssertionError`` naming the quantities that
    differ, their max abs and rel errors and the worst entry.  Returns the estimator's
    (value, weights).
    """
    objective = getattr(estimator, "objective", None)
    if not callable(objective):
        raise TypeError(f"estimator must have a method objective(values, ratios), got {type(estimator).__name__}")
    if getattr(type(estimator), "objective", None) is Estimator.objective:  # the base's, which raises
        raise TypeError(
            f"{type(estimator).__name__} has no objective(values, ratios): define J(values, r) in NumPy to check "
            "its weights with npevograd.testing.assert_weights_close"
        )
    rtol_given, atol_ = _tolerance_argument("rtol", rtol), _tolerance_argument("atol", atol) or 0.0
    shape = np.shape(values)  # type: ignore[call-overload]
    if not shape:
        raise ValueError(f"values must have one entry per sample along axis 0, got shape {shape}")
    n = shape[0]
    if ratios is None:
        r = np.ones(n)
        value, w = estimator.weights(values, n)
    else:
        r = np.asarray(ratios, dtype=np.float64)
        value, w = estimator.ratio_weights(values, ratios)
    w = np.asarray(w)
    dtype = w.dtype if w.dtype in COMPLEX_STEP_RTOL else np.dtype(np.float64)
    if ratios is not None and np.asarray(ratios).dtype == np.float32:
        dtype = np.dtype(np.float32)  # float32 ratios (those of float32 parameters): float32 sums
    at = "r = 1" if ratios is None else "r = ratios"
    name = type(estimator).__name__
    j = _as_scalar(objective(values, r), "").real
    if not math.isfinite(j):
        raise CannotDecide(f"{name} at {at}: cannot decide: its objective J(values, r) is {j}")
    reference, reason = complex_step_gradient(objective, values, r)
    why = NOT_ANALYTIC
    if reference is not None and not np.isfinite(reference).all():
        reference, reason = None, "its complex-step derivative is not finite"
    if reference is not None:
        rtol_ = COMPLEX_STEP_RTOL[dtype] if rtol_given is None else rtol_given
        why, reason = _probe(objective, values, r, reference, atol_ + rtol_ * _weight_scale(reference, j, r))
    if reference is not None and not reason:
        method = "the complex step"
    else:
        method = f"central differences ({why}: {reason})"
        rtol_ = CENTRAL_RTOL[dtype] if rtol_given is None else rtol_given
        reference = central_gradient(objective, values, r)
        coarse = central_gradient(objective, values, r, scale=2.0)  # the same at step 2h: an error estimate
        allowed = atol_ + rtol_ * _weight_scale(reference, j, r)
        error = float(np.max(np.abs(reference - coarse))) if np.isfinite(reference).all() else math.inf
        if not error <= CENTRAL_FRACTION * allowed:
            raise CannotDecide(
                f"{name} at {at}: cannot decide: the complex step does not apply ({reason}) and central "
                f"differences change by {error:.3g} between steps h and 2h, more than half the allowed error "
                f"{allowed:.3g} (rtol={rtol_:g}, atol={atol_:g}); loosen rtol or atol, or rescale the values"
            )
    weight_scale = _weight_scale(reference, j, r)
    failures = [
        _mismatch("weights", w, reference, weight_scale, rtol_, atol_, "dJ/dr"),
        _mismatch(
            "value",
            np.asarray(value),
            np.asarray(j),
            max(abs(j), float(np.abs(reference).sum())),
            rtol_,
            atol_,
            "objective",
        ),
    ]
    found = [f for f in failures if f is not None]
    if found:
        raise AssertionError(
            f"{name} at {at}: {len(found)} of 2 quantities differ from dJ/dr of its objective "
            f"by {method} (rtol={rtol_:g}, atol={atol_:g}; allowed abs err = atol + rtol * max_i |dJ/dr_i| "
            "(value: max(|J|, sum_i |dJ/dr_i|)))\n  " + "\n  ".join(found)
        )
    return value, w


def _weight_scale(reference: np.ndarray, j: float, r: np.ndarray) -> float:
    """max_i |dJ/dr_i|, or |J| / sum r when larger: the size of dJ/dr_i that the rounding of J alone produces."""
    return max(float(np.max(np.abs(reference))), abs(j) / max(float(np.abs(r).sum()), 1e-300))


def _tolerance_argument(name: str, value: object) -> float | None:
    """rtol or atol: None, or a finite number >= 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number >= 0 or None, got {type(value).__name__} {value!r}")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number >= 0 or None, got {value!r}")
    return float(value)
