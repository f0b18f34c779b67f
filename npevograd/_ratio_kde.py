r"""The entropy estimator's two kernel sums with importance ratios r_i (sample reuse).

With :math:`K_{ij} = \exp(-\|z_i - z_j\|^2 / h^2)` and ratios r,

.. math::

    \hat p_j = \frac1n \sum_i K_{ij} r_i, \qquad
    \text{nested}_i = \frac1n \sum_j K_{ij} \frac{r_j}{\hat p_j}

the sums of ``_kde`` with the ones vector replaced by r and 1/density by
r/density.  The same tiles of the strict upper triangle (``_kde._Tiles``) are
used, always recomputed (each exponential computed twice; peak extra memory one
tile).  Where :math:`r_j = 0` the sample adds nothing, so r/density is 0 there even
if its density is 0.  (Hook for ``_kde``: a ``ratios`` argument to
``kernel_sums`` would let the kept path serve this too.)
"""

from __future__ import annotations

import numpy as np

from . import _kde


def weighted_kernel_sums(
    z: np.ndarray, bandwidth: float, ratios: np.ndarray, block: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return (density, nested) above for behaviours ``z`` (n, k) and ratios (n,), in z's dtype."""
    n = z.shape[0]
    side = block or _kde.BLOCK
    tiles = _kde._Tiles(z, bandwidth)
    bounds = [(i0, min(i0 + side, n), j0, min(j0 + side, n)) for i0 in range(0, n, side) for j0 in range(i0, n, side)]
    buffer = np.empty(side * side, dtype=tiles.dtype)
    r = ratios.astype(np.float64)

    def pass_over_tiles(u: np.ndarray) -> np.ndarray:
        sums = u.copy()  # the diagonal: K_ii u_i
        u_tiles = u.astype(tiles.dtype)
        for b in bounds:
            _kde._accumulate(sums, tiles(*b, out=buffer), *b, u_tiles)
        return sums / n

    density = pass_over_tiles(r)
    r_over_density = np.zeros(n)
    np.divide(r, density, out=r_over_density, where=r > 0)
    nested = pass_over_tiles(r_over_density)
    return density.astype(z.dtype), nested.astype(z.dtype)
