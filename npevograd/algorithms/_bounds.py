r"""Box bounds by repair and penalty (the idea of pycma's ``BoundPenalty``).

A strategy with ``bounds=(lower, upper)`` hands out the repaired samples
:math:`\pi(x_i)`, the projection onto the box, so the fitness is only ever evaluated inside
it; it keeps the unrepaired :math:`x_i` and tells the search distribution the penalised
fitness (in the minimisation sense)

.. math::

    \tilde f(x_i) = f(\pi(x_i)) + \gamma \sum_j \frac{(x_{ij} - \pi(x_i)_j)^2}{s_j^2},
    \qquad \gamma = \frac{2\, \mathrm{IQR}_i f(\pi(x_i))}{d}

with :math:`s_j` the search width along coordinate j (``Strategy._widths()``).  The x_i are
the distribution's own samples, so the score-function gradient of the ranks of
:math:`\tilde f` is the gradient of the expected penalised objective: the penalty pushes the
distribution back inside, and a sample one width outside in every coordinate costs twice the
fitness' interquartile range (pycma's initial weight).  :math:`\gamma` is fixed within a
generation (1 when the fitness' interquartile range is zero).
"""

from __future__ import annotations

import numpy as np

from .._checks import as_float_array

SIDES = ("lower", "upper")


class Box:
    """``lower <= x <= upper`` per coordinate; ``lower``/``upper`` scalars or (d,) arrays, -inf/inf allowed."""

    def __init__(self, bounds: object, dim: int) -> None:
        if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
            raise TypeError(f"bounds must be a pair (lower, upper) of scalars or ({dim},) arrays, got {bounds!r}")
        lower, upper = (np.broadcast_to(self._side(side, b, dim), (dim,)).copy() for side, b in zip(SIDES, bounds))
        if not np.all(lower < upper):
            i = int(np.argmin(upper - lower))
            raise ValueError(f"bounds must have lower < upper in every coordinate, got {lower[i]} >= {upper[i]} at {i}")
        self.lower, self.upper = lower, upper

    @staticmethod
    def _side(name: str, value: object, dim: int) -> np.ndarray:
        arr = as_float_array(f"bounds' {name}", value, finite=False)
        if arr.shape not in ((), (dim,)):
            raise ValueError(f"bounds' {name} must be a scalar or of shape ({dim},), got shape {arr.shape}")
        if np.any(np.isnan(arr)):
            raise ValueError(f"bounds' {name} must not be nan")
        return arr

    def repair(self, x: np.ndarray) -> np.ndarray:
        """The projection of each row onto the box (a new array in x's dtype, the sides rounded inward to it)."""
        lower, upper = self._sides(x.dtype)
        return np.clip(x, lower, upper)

    def _sides(self, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
        """lower and upper in ``dtype``, each rounded towards the inside of the box (float32 samples stay inside)."""
        if dtype == self.lower.dtype:
            return self.lower, self.upper
        with np.errstate(over="ignore"):
            lower, upper = self.lower.astype(dtype), self.upper.astype(dtype)
        lower = np.where(lower < self.lower, np.nextafter(lower, np.inf, dtype=dtype), lower)
        upper = np.where(upper > self.upper, np.nextafter(upper, -np.inf, dtype=dtype), upper)
        return lower, upper

    def penalty(self, x: np.ndarray, repaired: np.ndarray, costs: np.ndarray, widths: np.ndarray) -> np.ndarray:
        """gamma * sum_j ((x - repaired) / width)^2 per row, gamma from the finite costs' interquartile range."""
        finite = costs[np.isfinite(costs)].astype(np.float64)
        q1, q3 = np.percentile(finite, [25, 75]) if finite.size else (0.0, 0.0)
        outside = np.any(x != repaired, axis=1)
        with np.errstate(over="ignore"):  # in float64; an overflow is inf, which the strategy ranks worst
            gamma = 2 * (q3 / 2 - q1 / 2) * 2 / x.shape[1] if q3 > q1 else 1.0
            distance = np.sum(((x.astype(np.float64) - repaired) / widths.astype(np.float64)) ** 2, axis=1)
            return np.where(outside, gamma * distance, 0.0)  # 0 inside, even when gamma is inf
