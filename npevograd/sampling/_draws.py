r"""Fresh Gaussian sample rows, drawn, scaled and shifted a cache-sized piece at a time on every core.

``normal_rows`` builds ``mu + sigma * z`` (and the mirrored ``mu - sigma * z``) for large
sample matrices in the row blocks of ``_blocks`` (one child stream per block, so the draw
does not depend on the number of threads); each block is drawn in pieces that stay in a
core's L2 cache, and scaled, shifted and mirrored there, so the (n, d) result is written
once and no temporary of its size is built.  float32 pieces use ``box_muller``.
``standard_normal`` and ``uniform`` are the draws every distribution makes, from either kind
of rng (a Generator or a legacy RandomState).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from .._checks import RNGLike, as_rng
from . import _blocks


def normal_rows(
    rng: np.random.Generator,
    shape: tuple[int, int],
    dtype: np.dtype,
    scale: np.ndarray | None = None,
    shift: np.ndarray | None = None,
    mirror: bool = False,
) -> np.ndarray:
    r"""``shift + scale * z`` for standard normal rows z of ``shape`` (n, d), scaled while in cache.

    With ``mirror`` the result has 2n rows: :math:`s + c z_i` for the first n, then
    :math:`s - c z_i` in the same order (antithetic pairs).  ``scale`` and ``shift`` are
    scalars or of shape (d,); without them the result is z itself (and -z).

    Below ``_blocks.PARALLEL_MIN_ENTRIES`` entries z is ``rng.standard_normal(shape, dtype)``.
    From there the rows are cut into blocks of ``fill_block_rows`` rows, and block k is
    drawn from child stream k of ``SeedSequence(entropy drawn from rng).spawn(blocks)``,
    in pieces of at most ``_blocks.PIECE_ENTRIES`` entries that are scaled, shifted (and mirrored)
    while in cache: the draw depends on the rng and the shape only, never on the number of
    threads.  In that path float64 z is the child's ziggurat ``standard_normal``, and float32
    z is Box-Muller (``box_muller``, 2-3 times faster than the float32 ziggurat).
    """
    n, d = shape
    out = np.empty((2 * n if mirror else n, d), dtype=dtype)
    if n * d < _blocks.PARALLEL_MIN_ENTRIES:
        rng.standard_normal(dtype=dtype, out=out[:n])  # the same numbers as rng.standard_normal(shape)
        _place(out, 0, n, slice(0, d), scale, shift, mirror)
        return out
    blocks = _blocks.row_blocks(n, _blocks.fill_block_rows(d))
    entropy = rng.integers(0, 2**32, size=4, dtype=np.uint64)  # advances rng: the next draw is fresh
    bit_generator = type(rng.bit_generator)
    children = [np.random.Generator(bit_generator(s)) for s in np.random.SeedSequence(entropy).spawn(len(blocks))]
    fast = np.dtype(dtype) == np.float32

    def fill(k: int, start: int, stop: int) -> None:
        child = children[k]
        scratch = _box_muller_scratch(_blocks.PIECE_ENTRIES) if fast else None
        for r0, r1, cols in _pieces(start, stop, d):
            piece = out[r0:r1, cols]
            if scratch is not None:
                box_muller(child, piece.reshape(-1), *scratch)
            else:
                child.standard_normal(dtype=dtype, out=piece)
            _place(out, r0, r1, cols, scale, shift, mirror)

    for _ in _blocks.map_blocks(fill, blocks):
        pass
    return out


def standard_normal_fill(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Standard normals of ``shape`` in ``dtype``: ``normal_rows`` on rows of shape[1:], the same draw.

    Below ``_blocks.PARALLEL_MIN_ENTRIES`` entries this is ``rng.standard_normal(shape, dtype)``.
    """
    size = math.prod(shape)
    if size < _blocks.PARALLEL_MIN_ENTRIES or len(shape) == 0:
        return rng.standard_normal(shape, dtype=dtype)
    return normal_rows(rng, (shape[0], size // shape[0]), dtype).reshape(shape)


def _pieces(start: int, stop: int, d: int) -> Iterator[tuple[int, int, slice]]:
    """Contiguous pieces (rows r0:r1, columns) of at most ``_blocks.PIECE_ENTRIES`` entries covering rows start:stop.

    Whole rows when a row fits, else each row in near-equal column ranges; fixed by the shape.
    """
    if d <= _blocks.PIECE_ENTRIES:
        step = _blocks.PIECE_ENTRIES // d
        for r0 in range(start, stop, step):
            yield r0, min(r0 + step, stop), slice(0, d)
        return
    parts = -(-d // _blocks.PIECE_ENTRIES)
    bounds = [d * j // parts for j in range(parts + 1)]
    for row in range(start, stop):
        for c0, c1 in zip(bounds[:-1], bounds[1:]):
            yield row, row + 1, slice(c0, c1)


def _place(
    out: np.ndarray, r0: int, r1: int, cols: slice, scale: np.ndarray | None, shift: np.ndarray | None, mirror: bool
) -> None:
    """Standard normals z in out[r0:r1, cols] become shift + scale z (and out[n + r0 : n + r1, cols] = shift - scale z).

    ``(-z) * c + s`` and ``s - z * c`` are the same floats, so the mirror is exact.
    """
    piece = out[r0:r1, cols]
    c = scale if scale is None or np.ndim(scale) == 0 else scale[cols]
    s = shift if shift is None or np.ndim(shift) == 0 else shift[cols]
    if c is not None:
        piece *= c
    if mirror:
        n = out.shape[0] // 2
        if s is None:
            np.negative(piece, out=out[n + r0 : n + r1, cols])
        else:
            np.subtract(s, piece, out=out[n + r0 : n + r1, cols])
    if s is not None:
        piece += s


def _box_muller_scratch(entries: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three work arrays of ``box_muller`` for up to ``entries`` outputs (float64, float32, float32)."""
    pairs = (entries + 1) // 2
    return np.empty(pairs), np.empty(pairs, dtype=np.float32), np.empty(pairs, dtype=np.float32)


def box_muller(rng: np.random.Generator, out: np.ndarray, u: np.ndarray, radius: np.ndarray, angle: np.ndarray) -> None:
    r"""Fill the 1-D float32 ``out`` (m entries) with Box-Muller normals; ``u``, ``radius``, ``angle`` are work arrays.

    With h = ceil(m / 2) pairs, entry i < h is :math:`r_i \cos\theta_i` and entry h + i is
    :math:`r_i \sin\theta_i`, where

    .. math::

        r_i = \sqrt{-2 \ln(1 - k_i 2^{-53})}, \qquad \theta_i = 2\pi\, j_i 2^{-24},

    :math:`k_i` uniform on :math:`0 .. 2^{53}-1` (``rng.random()``, float64: all h first) and
    :math:`j_i` uniform on :math:`0 .. 2^{24}-1` (``rng.random(dtype=float32)``: then h of them).
    The radius is computed in float64 and rounded once to float32; angle, cos, sin and the
    products are float32.  So the radius, hence every |entry|, is at most
    :math:`\sqrt{106 \ln 2} = 8.57` (an exact normal passes it with probability 1e-17), and
    the radius takes the :math:`2^{53}` values above: at r = 7 consecutive values are
    7e-7 apart, at r = 8 2e-4, everywhere else finer than float32 resolves.  The angle is on
    a grid of :math:`2^{24}` points, the resolution of float32 at :math:`2\pi`.  As
    :math:`1 - k 2^{-53}` runs over (0, 1], :math:`r \cos\theta` and :math:`r \sin\theta` are
    independent standard normals up to these two discretisations and float32 rounding
    (Box and Muller 1958).
    """
    m = out.shape[0]
    h = (m + 1) // 2
    u, radius, angle = u[:h], radius[:h], angle[:h]
    rng.random(out=u)
    np.subtract(1.0, u, out=u)  # (0, 1]: exact in float64
    np.log(u, out=u)
    np.multiply(u, -2.0, out=u)
    np.sqrt(u, out=u)
    radius[...] = u  # rounded once to float32
    rng.random(dtype=np.float32, out=angle)
    np.multiply(angle, np.float32(2 * np.pi), out=angle)
    cos_part, sin_part = out[:h], out[h:]
    np.cos(angle, out=cos_part)
    cos_part *= radius
    np.sin(angle[: m - h], out=sin_part)
    sin_part *= radius[: m - h]


def standard_normal(rng: RNGLike, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Standard normal draws of ``shape`` in ``dtype`` from either kind of rng.

    A Generator fills arrays of at least ``_blocks.PARALLEL_MIN_ENTRIES`` entries in
    threaded row blocks, each from its own child stream (the same draw whatever the
    number of threads).  A RandomState draws its legacy float64 stream in order, cast a
    block of rows at a time, so its samples are exactly ``standard_normal(shape).astype``.
    """
    rng = as_rng(rng)
    if isinstance(rng, np.random.Generator):
        return standard_normal_fill(rng, shape, np.dtype(dtype))
    if np.dtype(dtype) == np.float64 or len(shape) == 0 or math.prod(shape) <= _blocks.FILL_BLOCK_ENTRIES:
        return rng.standard_normal(shape).astype(dtype, copy=False)
    out = np.empty(shape, dtype=dtype)
    for start, stop in _blocks.row_blocks(shape[0], _blocks.fill_block_rows(math.prod(shape[1:]))):
        out[start:stop] = rng.standard_normal((stop - start, *shape[1:]))  # no float64 (n, d) temporary
    return out


def uniform(rng: RNGLike, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform draws on [0, 1) from either kind of rng."""
    rng = as_rng(rng)
    if isinstance(rng, np.random.Generator):
        return rng.random(shape)
    return rng.random_sample(shape)
