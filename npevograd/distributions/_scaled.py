r"""Sums of products in a scaled form: mantissas near 1 times a power of 2, the exponents added once.

An array is split exactly as :math:`a = m\, 2^{e}` with :math:`\max|m| \in [0.5, 1)`.  A product
sum :math:`a \cdot b = (m_a \cdot m_b)\, 2^{e_a + e_b}` is then formed from numbers near 1, so it
overflows (or underflows) only if the result itself does, not because a term or a partial
sum does (1e300 * e^700 terms summing to a representable value).  Scaling by a power of 2 is
exact, so where the plain product sum neither overflows nor underflows the scaled one has the
same bits.  The multivariate normal's weighted score and the estimators' values under
importance ratios are summed this way.
"""

from __future__ import annotations

import math

import numpy as np


def split(a: np.ndarray) -> tuple[np.ndarray, int]:
    """a = m * 2**e exactly, with max |m| in [0.5, 1) (a all zero or not finite: m = a, e = 0)."""
    largest = float(np.max(np.abs(a))) if a.size else 0.0
    if largest == 0 or not math.isfinite(largest):
        return a, 0
    exponent = math.frexp(largest)[1]
    return np.ldexp(a, -exponent).astype(a.dtype, copy=False), exponent


def scaled(mantissa: float, exponent: int) -> float:
    """mantissa * 2**exponent as a float; inf (not OverflowError) when it exceeds float64."""
    try:
        return math.ldexp(mantissa, exponent)
    except OverflowError:
        return math.copysign(math.inf, mantissa)
