r"""The two kernel sums of the entropy estimator, kept for small n, recomputed in tiles for large n.

With :math:`K_{ij} = \exp(-\|z_i - z_j\|^2 / h^2)` the entropy estimator needs

.. math::

    \text{density}_j = \frac1n \sum_i K_{ij} \quad (\hat p_j), \qquad
    \text{nested}_i  = \frac1n \sum_j K_{ij} / \text{density}_j

K is symmetric with :math:`K_{ii} = 1`, so only the strict upper triangle is ever
exponentiated.  It is cut into row strips, rows I by all columns from I on, and each
strip into tiles, rows I by columns J; in the tile that meets the diagonal the exponents
on and below it are set to -inf before the exponential, so those entries come out
exactly 0.  Each tile feeds the sums of its rows and, by symmetry, of its columns:

.. math::

    n\,\text{density}_I \mathrel{+}= T \mathbf 1, \quad
    n\,\text{density}_J \mathrel{+}= T^\top \mathbf 1, \qquad
    n\,\text{nested}_I \mathrel{+}= T\, u_J, \quad
    n\,\text{nested}_J \mathrel{+}= T^\top u_I, \qquad u = 1/\text{density}

and the diagonal adds 1 to n density and u to n nested.

**Kept** (the strict upper triangle fits in ``KEEP_BYTES``): one tile per strip, all
computed before the first sum and kept for the second; each of the n(n-1)/2
exponentials is computed exactly once.

**Recomputed** (larger n, or a ``block`` given): tiles of about ``TILE_MADDS / (k + 2)``
entries, computed for the first sum, dropped, and computed again for the second, since
the second needs all of the first.  Each exponential is computed exactly twice; peak
extra memory is a tile per thread plus O(n k).

From ``PARALLEL_MIN_PAIRS`` pairs on, the strips run in ``_blocks.map_blocks`` threads
(NumPy releases the GIL in ``np.exp``, ``np.matmul`` and ``np.dot``): each strip yields its row sums
and its column sums, and these are added in strip order, so the sums are the same,
bit for bit, whatever the number of threads.  Below it, one thread adds each tile's
sums straight into the totals, as they come (fewer small arrays: 5 to 10% faster there).

A tile's exponents come from one small matrix product.  With the behaviours centred and
scaled, :math:`c_i = (z_i - \bar z)/h`,

.. math::

    -\|c_i - c_j\|^2 = [2c_i,\, -\|c_i\|^2,\, -1] \cdot [c_j,\, 1,\, \|c_j\|^2]

so a tile is one GEMM with inner dimension k + 2, written once and exponentiated in
place.  Its rounding error in the exponent is at most about 8 eps max_i ||c_i||^2; while
that bound is under ``GRAM_MAX_ERROR`` for the dtype the GEMM form is used, otherwise
the exponents are built from per-coordinate differences of the behaviours as given,
which have no cancellation.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from ..sampling._blocks import map_blocks, row_blocks

# Keep the kernel when its strict upper triangle needs at most this many bytes
# (n <= 2048 in float64, n <= 2896 in float32).
KEEP_BYTES = 16 * 2**20
# Rows per strip of the kept kernel (one tile per strip).
PANEL = 64
# Multiply-adds of one recomputed tile's GEMM, rows x cols x (k + 2), the tile about square:
# 256 x 256 for k = 2 (512 KB in float64, in a core's L2).  OpenBLAS runs a GEMM this small on
# the calling thread (so strips in threads start no BLAS threads), and for inner dimension 4
# it is fastest near square: 0.45 ns an entry in float64 at 256 x 256, 0.8 at 32 x 2048.
TILE_MADDS = 1 << 18
# The recomputed tile's side for k = 2 (benchmarks/scaling.py forces ``block_size=BLOCK``).
BLOCK = 256
# Strips run in threads only from this many pairs on (n >= 5794): below, two threads measured
# slower than one on the 2-core test machine (thread start, small strips; issue 15).
PARALLEL_MIN_PAIRS = 1 << 24
# Largest tolerated bound on the exponent's rounding error for the GEMM form: 1e-12 in
# float64; in float32 the project's float32 tolerance, 1e-4 (typically 1e-6 is reached).
GRAM_MAX_ERROR = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 1e-4}
# Bandwidths whose square and inverse square are normal float64 numbers (Entropy checks them).
MIN_BANDWIDTH = float(np.sqrt(np.finfo(np.float64).tiny))  # 1.5e-154
MAX_BANDWIDTH = float(np.sqrt(np.finfo(np.float64).max))  # 1.3e154


def keeps_kernel(n: int, dtype: np.dtype) -> bool:
    """True when ``kernel_sums`` keeps the kernel (each exponential once) for n samples."""
    return n * (n - 1) // 2 * np.dtype(dtype).itemsize <= KEEP_BYTES


def kernel_sums(z: np.ndarray, bandwidth: float, block: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return (density, nested) for behaviours ``z`` of shape (n, k), in z's dtype.

    ``block`` forces the recomputed path with b x b tiles; by default the kernel is kept
    when it fits in ``KEEP_BYTES`` and recomputed in tiles of ``TILE_MADDS`` multiply-adds
    otherwise.
    """
    n, dtype = z.shape[0], z.dtype
    if bandwidth**-2 > float(np.finfo(dtype).max):  # 1/h^2 overflows the dtype (float32: h < 1e-19): use float64
        z = z.astype(np.float64)
    with far_apart():
        density, nested = _two_passes(_Strips(_Tiles(z, bandwidth), block), n, z.dtype)
    return density.astype(dtype), nested.astype(dtype)


def far_apart() -> np.errstate:
    """The floating-point state of the kernel sums: an exponent -||z_i - z_j||^2 / h^2 that overflows is -inf.

    K_ij = exp(-inf) = 0 is then exact: a tiny bandwidth, or behaviours far apart, give the
    identity kernel, not a warning (and ||c_i||^2 = inf only rules out the GEMM form).
    """
    return np.errstate(over="ignore")


def _centre(z: np.ndarray) -> np.ndarray:
    """The behaviours' mean per coordinate, or the midpoint of their range where the mean's sum overflows."""
    with np.errstate(over="ignore", invalid="ignore"):
        mean = z.mean(axis=0)
    if np.isfinite(mean).all():
        return mean
    return z.max(axis=0) / 2 + z.min(axis=0) / 2  # within range: no sum of large values


def _exp(tile: np.ndarray) -> None:
    """exp in place: every kernel exponential goes through here.

    Entries outside the strict upper triangle arrive as -inf and come out exactly 0;
    only the finite entries are kernel exponentials.
    """
    np.exp(tile, out=tile)


class _Tiles:
    """Tiles of the strict upper triangle of K, from centred, scaled behaviours."""

    def __init__(self, z: np.ndarray, bandwidth: float):
        self.dtype = dtype = z.dtype
        self.n, k = z.shape
        self.width = k + 2  # inner dimension of the GEMM form
        z64 = z.astype(np.float64, copy=False)
        c = (z64 - _centre(z64)) / bandwidth  # translation leaves K unchanged
        sq = np.einsum("ij,ij->i", c, c)  # inf for behaviours near the float64 limit: then not the GEMM form
        self.gram = 8 * np.finfo(dtype).eps * float(sq.max()) <= GRAM_MAX_ERROR[dtype]
        if self.gram:
            ones = np.ones_like(sq)
            self.left = np.column_stack([2 * c, -sq, -ones]).astype(dtype)
            self.right = np.ascontiguousarray(np.column_stack([c, ones, sq]).T, dtype=dtype)
        else:
            self.coords = np.ascontiguousarray(z.T)  # (k, n), as given: differences stay exact
            self.scale = dtype.type(-1 / bandwidth**2)
        self._masks: dict[int, np.ndarray] = {}

    def __call__(self, i0: int, i1: int, j0: int, j1: int, out: np.ndarray | None = None) -> np.ndarray:
        """K[i0:i1, j0:j1] with j0 >= i0; entries on or below the diagonal are zero."""
        shape = (i1 - i0, j1 - j0)
        tile = np.empty(shape, self.dtype) if out is None else out[: shape[0] * shape[1]].reshape(shape)
        self._exponents(i0, i1, j0, j1, tile)
        if j0 == i0:  # the leading side x side block straddles the diagonal
            side = i1 - i0
            head = tile[:, :side]
            head += self._below_diagonal(side)  # -inf on and below it: exp gives exactly 0
        _exp(tile)
        return tile

    def _exponents(self, i0: int, i1: int, j0: int, j1: int, tile: np.ndarray) -> None:
        """-||z_i - z_j||^2 / h^2 = -||c_i - c_j||^2 into ``tile``."""
        if self.gram:
            np.matmul(self.left[i0:i1], self.right[:, j0:j1], out=tile)
            return
        scratch = np.empty_like(tile) if len(self.coords) > 1 else tile
        for row, coord in enumerate(self.coords):
            part = tile if row == 0 else scratch
            np.subtract.outer(coord[i0:i1], coord[j0:j1], out=part)
            np.multiply(part, part, out=part)
            if row:
                tile += scratch
        np.multiply(tile, self.scale, out=tile)

    def _below_diagonal(self, side: int) -> np.ndarray:
        """side x side: 0 above the diagonal, -inf on and below it (cached per side)."""
        if side not in self._masks:
            self._masks[side] = np.where(np.triu(np.ones((side, side), dtype=bool), 1), 0, -np.inf).astype(self.dtype)
        return self._masks[side]


class _Strips:
    """The strict upper triangle in row strips (rows I, columns from I on), each cut into tiles."""

    def __init__(self, tiles: _Tiles, block: int | None = None):
        self.tiles = tiles
        self.n = n = tiles.n
        keep = block is None and keeps_kernel(n, tiles.dtype)
        if block is not None:
            rows = self.cols = min(block, n)
        elif keep:
            rows, self.cols = PANEL, n
        else:
            rows = min(math.isqrt(TILE_MADDS // tiles.width), n)
            self.cols = TILE_MADDS // (rows * tiles.width)  # >= rows
        self.bounds = row_blocks(n, rows)
        self.threaded = n * (n - 1) // 2 >= PARALLEL_MIN_PAIRS
        self.kept: list[np.ndarray] | None = None
        if keep:
            sizes = [(i1 - i0) * (n - i0) for i0, i1 in self.bounds]
            storage = np.empty(sum(sizes), dtype=tiles.dtype)  # one allocation for the whole kept kernel
            starts = np.cumsum([0] + sizes)
            self.kept = [storage[start:stop] for start, stop in zip(starts, starts[1:])]
        self.filled = False

    def sums(self, u: np.ndarray) -> np.ndarray:
        """s_i = sum_{j != i} K_ij u_j (float64), summed strip by strip in strip order."""
        s = np.zeros(self.n)
        if self.kept is not None and not self.filled:  # the whole kept kernel first: measured faster than interleaved
            for (i0, i1), storage in zip(self.bounds, self.kept):
                self.tiles(i0, i1, i0, self.n, out=storage)
            self.filled = True

        def strip(k: int, i0: int, i1: int) -> tuple[np.ndarray, np.ndarray]:
            return self._strip(k, i0, i1, u)

        if self.threaded:
            for (i0, i1), (row, col) in zip(self.bounds, map_blocks(strip, self.bounds)):
                s[i0:i1] += row
                s[i0:] += col
        else:  # one thread: each tile's sums go straight into s (no per-strip arrays: measured 5-10% faster)
            for k, (i0, i1) in enumerate(self.bounds):
                for j0, j1, tile in self._tiles_of(k, i0, i1):
                    s[i0:i1] += tile @ u[j0:j1]
                    s[j0:j1] += u[i0:i1] @ tile
        return s

    def _tiles_of(self, k: int, i0: int, i1: int) -> Iterator[tuple[int, int, np.ndarray]]:
        """(j0, j1, K[i0:i1, j0:j1]) for the tiles of strip k: a kept strip as stored, others into one buffer."""
        n = self.n
        if self.kept is not None:
            yield i0, n, self.kept[k].reshape(i1 - i0, n - i0)
            return
        buffer = np.empty((i1 - i0) * self.cols, dtype=self.tiles.dtype)
        for j0 in range(i0, n, self.cols):
            j1 = min(j0 + self.cols, n)
            yield j0, j1, self.tiles(i0, i1, j0, j1, out=buffer)

    def _strip(self, k: int, i0: int, i1: int, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Row sums (float64) and column sums of strip k, rows i0:i1 by columns i0:n, weighted by u."""
        row = np.zeros(i1 - i0)
        col = np.empty(self.n - i0, dtype=u.dtype)  # one tile's sum per column: no accumulation
        for j0, j1, tile in self._tiles_of(k, i0, i1):
            row += np.dot(tile, u[j0:j1])  # np.dot, unlike @, releases the GIL for a matrix-vector product
            np.dot(u[i0:i1], tile, out=col[j0 - i0 : j1 - i0])
        return row, col


def _two_passes(strips: _Strips, n: int, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """Densities from every tile, then the nested sums from every tile again."""
    density_sum = strips.sums(np.ones(n, dtype=dtype))  # density: u = 1
    density_sum += 1  # K_ii = 1
    density = density_sum / n
    inv_density = 1 / density
    nested_sum = strips.sums(inv_density.astype(dtype))
    nested_sum += inv_density  # diagonal: K_ii / density_i
    return density, nested_sum / n
