r"""An estimator's weights against the derivative of its own objective, in NumPy only.

Every estimator states its objective J(values, r) (``objective``) beside its
hand-derived weights.  The derivative of J in each ratio is taken by the complex step
(Squire and Trapp 1998; Martins et al. 2003),

.. math::

    \frac{\partial J}{\partial r_i} = \frac{\operatorname{Im} J(r + \mathrm{i} h e_i)}{h}
    + O(h^2), \qquad h = 10^{-20},

exact to rounding for a J that is real-analytic in r: there is no subtraction, so no
cancellation, whatever h.  It is not valid where J is not complex-analytic in r (abs,
sorting or ranking the ratios, max, a cast to float).  That is detected (the objective
raises on complex input, returns a real number for it, or its complex-step derivative
disagrees with a central difference along a random direction), and then every
derivative is taken by central differences,

.. math::

    \frac{\partial J}{\partial r_i} \approx \frac{J(r + h e_i) - J(r - h e_i)}{2h}, \qquad
    h = \epsilon^{1/3} \max(1, |r_i|),

with a looser tolerance (rtol 1e-6 in float64, 1e-2 in float32), and the failure
message says so.  Shapings of the values (ranks, z-scores) are not a problem: they
depend on the values only, and J stays linear in r.

An entry passes when :math:`|w_i - \partial J/\partial r_i| \le \mathrm{atol} +
\mathrm{rtol}\max(\max_j |\partial J/\partial r_j|, |J| / \sum_j r_j)` (the second term: the
rounding of J itself, relative to the ratios, where every derivative is about 0, e.g. the
self-normalised mean at n = 1); the value when :math:`|v - J| \le
\mathrm{atol} + \mathrm{rtol}\max(|J|, \sum_j |\partial J/\partial r_j|)`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

COMPLEX_STEP = 1e-20
SUBNORMAL_SAFE = float(np.finfo(np.float64).tiny) * 2.0**53  # below this, h dJ/dr_i has lost bits
COMPLEX_STEP_RTOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-9}
CENTRAL_RTOL = {np.dtype(np.float32): 1e-2, np.dtype(np.float64): 1e-6}


def _as_scalar(j: Any, what: str) -> complex:
    arr = np.asarray(j)
    if arr.shape != () or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"objective must return a scalar number {what}, got {type(j).__name__} of shape {arr.shape}")
    return complex(arr)


def complex_step_gradient(objective: Any, values: object, r: np.ndarray) -> tuple[np.ndarray | None, str]:
    """dJ/dr by the complex step, or (None, reason) when J is not complex-analytic in r."""
    n = r.shape[0]
    grad = np.empty(n)
    for i in range(n):
        step = COMPLEX_STEP
        for _ in range(2):
            shifted = r.astype(np.complex128)
            shifted[i] += 1j * step
            try:
                j = objective(values, shifted)
            except (TypeError, ValueError) as err:
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
    # an abs() or a sort of complex numbers gives a wrong Im silently: probe one random direction,
    # relative to each r_i so that the probe keeps r >= 0 (the objective rejects negative ratios; entries
    # with r_i = 0 are not probed)
    direction = np.random.default_rng(0).standard_normal(n) * np.where(r > 0, r, 0.0)
    step = np.finfo(np.float64).eps ** (1 / 3)
    plus = _as_scalar(objective(values, r + step * direction), "").real
    minus = _as_scalar(objective(values, r - step * direction), "").real
    central = (plus - minus) / (2 * step)
    along = float(grad @ direction)
    scale = float(np.abs(grad) @ np.abs(direction)) + abs(central)
    if not abs(along - central) <= 1e-5 * scale + 1e-12:
        return None, (
            f"its complex-step derivative along a random direction, {along:.6g}, disagrees with a central "
            f"difference, {central:.6g}"
        )
    return grad, ""


def central_gradient(objective: Any, values: object, r: np.ndarray) -> np.ndarray:
    """dJ/dr by central differences, h = eps^(1/3) max(1, |r_i|).

    Where r_i < h the step down would make a ratio negative (which the objective rejects):
    there the one-sided difference of the same order, (-3 J(r) + 4 J(r + h e_i) - J(r + 2h e_i)) / 2h.
    """
    grad = np.empty(r.shape[0])
    at_r = None
    for i in range(r.shape[0]):
        step = np.finfo(np.float64).eps ** (1 / 3) * max(1.0, abs(float(r[i])))
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


def _mismatch(label: str, actual: np.ndarray, expected: np.ndarray, scale: float, rtol: float, atol: float,
              reference: str) -> str | None:
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
        rel = np.nanmax(np.where(err == 0, 0.0, err / np.abs(b)))
    return (
        f"{label}: {int(bad.sum())} of {b.size} entries differ; max abs err {np.nanmax(err):.3g}, max rel err "
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
    reference, reason = complex_step_gradient(objective, values, r)
    if reference is None:
        reference = central_gradient(objective, values, r)
        method = f"central differences (objective is not complex-analytic in r: {reason})"
        default_rtol = CENTRAL_RTOL[dtype]
    else:
        method = "the complex step"
        default_rtol = COMPLEX_STEP_RTOL[dtype]
    rtol_ = default_rtol if rtol is None else float(rtol)
    atol_ = 0.0 if atol is None else float(atol)
    j = _as_scalar(objective(values, r), "").real
    # |J| / sum r: the size of dJ/dr_i that the rounding of J alone produces (all derivatives may be ~0)
    weight_scale = max(float(np.max(np.abs(reference))), abs(j) / max(float(np.abs(r).sum()), 1e-300))
    failures = [
        _mismatch("weights", w, reference, weight_scale, rtol_, atol_, "dJ/dr"),
        _mismatch("value", np.asarray(value), np.asarray(j), max(abs(j), float(np.abs(reference).sum())),
                  rtol_, atol_, "objective"),
    ]
    found = [f for f in failures if f is not None]
    if found:
        at = "r = 1" if ratios is None else "r = ratios"
        raise AssertionError(
            f"{type(estimator).__name__} at {at}: {len(found)} of 2 quantities differ from dJ/dr of its objective "
            f"by {method} (rtol={rtol_:g}, atol={atol_:g}; allowed abs err = atol + rtol * max_i |dJ/dr_i| "
            "(value: max(|J|, sum_i |dJ/dr_i|)))\n  " + "\n  ".join(found)
        )
    return value, w
