r"""The entropy estimator's two kernel sums with importance ratios r_i (sample reuse).

With :math:`K_{ij} = \exp(-\|z_i - z_j\|^2 / h^2)` and ratios r,

.. math::

    \hat p_j = \frac1n \sum_i K_{ij} r_i, \qquad
    \text{nested}_i = \frac1n \sum_j K_{ij} \frac{r_j}{\hat p_j}

the sums of ``_kde`` with the ones vector replaced by r and 1/density by
r/density.  The same strips of the strict upper triangle (``_kde._Strips``) are
used, kept or recomputed as for ``estimators._kde.kernel_sums``.  Where :math:`r_j = 0` the
sample adds nothing, so r/density is 0 there even if its density is 0.
"""

from __future__ import annotations

import numpy as np

from . import _kde


def weighted_kernel_sums(
    z: np.ndarray, bandwidth: float, ratios: np.ndarray, block: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Return (density, nested) above for behaviours ``z`` (n, k) and ratios (n,), in z's dtype."""
    n = z.shape[0]
    with _kde.far_apart():
        strips = _kde._Strips(_kde._Tiles(z, bandwidth), block)
        r = ratios.astype(np.float64)
        density = (strips.sums(r.astype(z.dtype)) + r) / n  # the diagonal: K_jj r_j
        r_over_density = np.zeros(n)
        np.divide(r, density, out=r_over_density, where=r > 0)
        nested = (strips.sums(r_over_density.astype(z.dtype)) + r_over_density) / n
    return density.astype(z.dtype), nested.astype(z.dtype)
