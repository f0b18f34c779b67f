"""The two kernel sums of the entropy estimator, dense for small n, blocked for large n.

With K_ij = exp(-||z_i - z_j||^2 / h^2) the entropy estimator needs

    density_j = (1/n) sum_i K_ij                  (the KDE, phat_j)
    nested_i  = (1/n) sum_j K_ij / density_j      (the nested-expectation term)

K is symmetric, so the blocked version visits each pair of row blocks (I, J),
I <= J, once per pass and uses the block for both row and column sums.  The
kernel cannot be kept between the passes at large n, so each off-diagonal
exponential is computed exactly twice, and peak extra memory is O(block^2).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.distance import pdist, squareform

# Dense up to this many kernel entries (2048^2 float64 = 32 MB); blocked above.
DENSE_LIMIT = 2048 * 2048
BLOCK = 1024


def kernel_sums(z: np.ndarray, bandwidth: float, block: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return (density, nested) for behaviours ``z`` of shape (n, k)."""
    n = z.shape[0]
    if block is None and n * n <= DENSE_LIMIT:
        return _dense(z, bandwidth)
    return _blocked(z, bandwidth, block or BLOCK)


def _dense(z: np.ndarray, bandwidth: float) -> tuple[np.ndarray, np.ndarray]:
    n = z.shape[0]
    # each pair's exponential once, on the condensed distance vector
    kernel = squareform(np.exp(-pdist(z, "sqeuclidean") / bandwidth**2).astype(z.dtype, copy=False))
    np.fill_diagonal(kernel, 1)
    density = kernel.sum(axis=0) / n
    nested = kernel @ (1 / density) / n
    return density, nested


def _kernel_block(zi: np.ndarray, zj: np.ndarray, bandwidth: float) -> np.ndarray:
    """K for one pair of row blocks, from per-coordinate differences (no cancellation)."""
    out = np.zeros((zi.shape[0], zj.shape[0]), dtype=zi.dtype)
    for c in range(zi.shape[1]):
        diff = np.subtract.outer(zi[:, c], zj[:, c])
        np.multiply(diff, diff, out=diff)
        out += diff
    out *= -1 / bandwidth**2
    return np.exp(out, out=out)


def _blocked(z: np.ndarray, bandwidth: float, block: int) -> tuple[np.ndarray, np.ndarray]:
    n = z.shape[0]
    starts = range(0, n, block)
    pairs = [(i, j) for i in starts for j in starts if j >= i]

    density = np.zeros(n, dtype=z.dtype)
    for i, j in pairs:
        kij = _kernel_block(z[i : i + block], z[j : j + block], bandwidth)
        density[j : j + block] += kij.sum(axis=0)
        if i != j:
            density[i : i + block] += kij.sum(axis=1)
    density /= n

    inv_density = 1 / density
    nested = np.zeros(n, dtype=z.dtype)
    for i, j in pairs:
        kij = _kernel_block(z[i : i + block], z[j : j + block], bandwidth)
        nested[i : i + block] += kij @ inv_density[j : j + block]
        if i != j:
            nested[j : j + block] += inv_density[i : i + block] @ kij
    nested /= n
    return density, nested
