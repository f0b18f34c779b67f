r"""Importance ratios for sample reuse, computed in log space, and their effective sample size.

Samples x_i drawn from a proposal q are reweighted to the current p by

.. math::

    \rho_i = \frac{p(x_i)}{q(x_i)} = \exp\big(\log p(x_i) - \log q(x_i)\big), \qquad
    \mathrm{ESS} = \frac{(\sum_i \rho_i)^2}{\sum_i \rho_i^2}

(Kong 1992; Owen, *Monte Carlo theory, methods and examples*, 2013, section 9.3).
The difference of log-densities is taken in float64 and exponentiated only after it
is checked against the largest ratio the dtype can hold, so a ratio never overflows
to inf and a sum of ratios never becomes NaN: a proposal too far from p is reported.
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import as_float_array
from ..distributions import Distribution


def importance_ratios(p: Distribution, x: np.ndarray, proposal: object, log_proposal: object) -> np.ndarray:
    """rho_i = p(x_i) / q(x_i) in p's dtype, q given as a distribution or as log q(x_i)."""
    if proposal is not None and log_proposal is not None:
        raise ValueError("give proposal or log_proposal, not both")
    log_p = p.log_prob(x).astype(np.float64)
    n = log_p.shape[0]
    if proposal is not None:
        if not isinstance(proposal, Distribution):
            raise TypeError(f"proposal must be an npevograd Distribution, got {type(proposal).__name__}")
        log_q = proposal.log_prob(x).astype(np.float64)
    else:
        log_q = as_float_array("log_proposal", log_proposal, dtype=np.dtype(np.float64))
        if log_q.shape != (n,):
            raise ValueError(
                f"log_proposal has shape {log_q.shape} but x has {n} samples; expected log_proposal of shape ({n},)"
            )
    log_rho = log_p - log_q
    dtype = p.dtype if p.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    finfo = np.finfo(dtype)
    largest = int(np.argmax(log_rho))
    limit = math.log(float(finfo.max) / n)  # a sum of n ratios stays finite
    if log_rho[largest] > limit:
        raise ValueError(
            f"importance ratios overflow {dtype}: log p(x_i) - log q(x_i) = {log_rho[largest]:.6g} at sample "
            f"{largest}, above the limit log(max/n) = {limit:.6g}; p has moved too far from the proposal: "
            "draw fresh samples or reuse fewer generations"
        )
    if log_rho[largest] < math.log(float(finfo.tiny)):
        raise ValueError(
            f"every importance ratio underflows to 0 in {dtype} (largest log p(x_i) - log q(x_i) = "
            f"{log_rho[largest]:.6g}): p puts no weight on these samples; draw fresh samples"
        )
    return np.exp(log_rho).astype(dtype)


def effective_sample_size(ratios: np.ndarray) -> float:
    """(sum rho)^2 / sum rho^2, computed on rho / max(rho) so that it cannot overflow."""
    scaled = ratios / ratios.max()
    return float(scaled.sum() ** 2 / (scaled @ scaled))


def check_min_ess(ess: float, n: int, min_ess: object) -> None:
    """ValueError naming ``min_ess`` when the effective sample size is below it."""
    if min_ess is None:
        return
    if isinstance(min_ess, bool) or not isinstance(min_ess, (int, float, np.integer, np.floating)) or not min_ess > 0:
        raise ValueError(f"min_ess must be a positive number or None, got {min_ess!r}")
    if ess < min_ess:
        raise ValueError(
            f"effective sample size {ess:.4g} of {n} samples is below min_ess={float(min_ess):g}: the importance "
            "ratios are degenerate (p has moved too far from the proposal); draw fresh samples or reuse "
            "fewer generations"
        )


def check_ratios(ratios: object, n: int, allow_complex: bool = False) -> np.ndarray:
    """Validate ratios r of shape (n,): finite, >= 0 with one > 0 (complex allowed for the complex step)."""
    if allow_complex and np.iscomplexobj(np.asarray(ratios)):
        r = np.asarray(ratios)
        if r.shape != (n,) or not np.isfinite(r).all():
            raise ValueError(f"ratios must be a finite array of shape ({n},), got shape {r.shape}")
        return r
    r = as_float_array("ratios", ratios)
    if r.shape != (n,):
        raise ValueError(f"ratios has shape {r.shape} but values has {n} samples; expected ratios of shape ({n},)")
    if (r < 0).any() or not (r > 0).any():
        raise ValueError(f"ratios must be >= 0 with at least one > 0, got minimum {r.min():g}, maximum {r.max():g}")
    return r


def reuse_weights(dj_dr: np.ndarray, ratios: np.ndarray) -> np.ndarray:
    """w_i = rho_i dJ/dr_i at r = rho; exactly 0 where rho_i = 0 (the sample carries no weight)."""
    w = np.zeros(dj_dr.shape, dtype=np.result_type(dj_dr, ratios))
    with np.errstate(over="ignore"):  # an overflowing weight is named by the estimator (Estimator._gradient)
        np.multiply(dj_dr, ratios, out=w, where=ratios > 0)
    return w
