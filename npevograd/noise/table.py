r"""A shared table of Gaussian noise, and samples encoded as (index, sign) into it.

Salimans et al. (2017, "Evolution Strategies as a Scalable Alternative to
Reinforcement Learning", section 2.1) let every worker build the same large
table :math:`T` of standard normal numbers from one seed.  A perturbation of
dimension d is then a window of the table, and a Gaussian sample travels as two
integers:

.. math::

    \epsilon_i = T[k_i : k_i + d], \qquad
    x_i = \mu + s_i\, \sigma \odot \epsilon_i, \qquad s_i \in \{+1, -1\}

so only the indices :math:`k_i`, the signs :math:`s_i` and the fitness values
cross the wire.  Because :math:`x_i - \mu = s_i \sigma \epsilon_i`, a weighted
sum of scores is a weighted sum of table windows,

.. math::

    \sum_i w_i (x_i - \mu) = \sigma \odot \sum_i (w_i s_i)\, T[k_i : k_i + d],

which :meth:`NoiseTable.contract` streams over the table a block of windows at a
time, never building the (n, d) sample matrix.

``NoiseTable(10_000_000, 42)`` (``NoiseTable.evograd()``) is EvoGrad's table
``np.random.RandomState(42).randn(10_000_000).astype(float32)``; with EvoGrad's
index draw ``random_state.randint(0, len(table) - d + 1)`` it reproduces
EvoGrad's samples bit for bit.

The table is built lazily, on first use, never at import.  In the process that
created it, it lives in a POSIX shared-memory segment (``multiprocessing.
shared_memory``); a copy pickled to another process on the same machine attaches
to that segment read-only instead of building its own, and a process on another
machine rebuilds it from the seed, once per process.  The owner unlinks the
segment on :meth:`NoiseTable.close`, when the table is garbage collected, and at
interpreter exit; if the owner is killed, the ``multiprocessing`` resource
tracker unlinks it.  That memory and its lifetime are ``_table_memory.TableMemory``'s
job; this module is the table's sampling, indexing, contraction and pickling.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._checks import RNGLike, as_float_array, as_rng, check_sample_count
from ..sampling._blocks import weighted_row_sums
from ._shared_memory import SEGMENT_PREFIX, TableMemory

__all__ = ["SEGMENT_PREFIX", "EncodedSamples", "NoiseTable"]

_Key = tuple[int, int, str]
# Tables alive in this process, by (size, seed, dtype): unpickling reuses them.
_LIVE: weakref.WeakValueDictionary[_Key, NoiseTable] = weakref.WeakValueDictionary()
# Tables this process received by pickle, kept so that a worker builds (or attaches)
# each table once, not once per task; oldest first.  Bounded: a table attached to a
# segment its owner has unlinked (closed) is dropped when the next table arrives, and
# at most _RECEIVED_MAX are kept.  A dropped table stays usable by the tasks holding it.
_RECEIVED: dict[_Key, NoiseTable] = {}
_RECEIVED_MAX = 4


class NoiseTable:
    r"""``size`` standard normal numbers drawn from ``np.random.RandomState(seed)``, cast to ``dtype``.

    .. math::

        T = \mathrm{cast}_{\mathrm{dtype}}\big(\mathrm{RandomState(seed).randn(size)}\big)

    Parameters
    ----------
    size : int
        Number of entries; a window of d entries needs ``size >= d``.
    seed : int
        Seed of the legacy ``RandomState`` generator, in [0, 2**32).
    dtype : float32 (default) or float64
        Storage type; float32 halves memory and bandwidth, as in Salimans et al.
    shared : bool
        Build the table in a POSIX shared-memory segment that copies pickled to
        other local processes attach to (default); ``False`` keeps it private.

    The table is built on first use of :attr:`array` (or anything reading it) and
    reused after that.  Pickling sends only ``(size, seed, dtype)`` and the
    segment's name.
    """

    def __init__(self, size: int, seed: int, dtype: Any = np.float32, shared: bool = True):
        self._size = check_sample_count("size", size)
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        if not 0 <= seed < 2**32:
            raise ValueError(f"seed must be in [0, 2**32) (a RandomState seed), got {seed}")
        self._seed = int(seed)
        try:
            dt = np.dtype(dtype)
        except TypeError as err:
            raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from err
        if dt not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dt}")
        self._dtype = dt
        self._shared = bool(shared)
        self._memory = TableMemory(self._size, self._seed, dt, self._shared)
        _LIVE.setdefault(self._key, self)

    @classmethod
    def evograd(cls, shared: bool = True) -> NoiseTable:
        """EvoGrad's table: ``RandomState(42).randn(10_000_000)`` in float32 (``evograd/noise.py``)."""
        return cls(10_000_000, 42, np.float32, shared=shared)

    @property
    def size(self) -> int:
        return self._size

    @property
    def seed(self) -> int:
        return self._seed

    @property
    def dtype(self) -> np.dtype:
        return self._dtype

    @property
    def shared(self) -> bool:
        return self._shared

    @property
    def nbytes(self) -> int:
        return self._size * self._dtype.itemsize

    @property
    def built(self) -> bool:
        """Whether this process holds the table's numbers (built or attached)."""
        return self._memory.array is not None

    @property
    def segment_name(self) -> str | None:
        """Name of the shared-memory segment this process owns (None if private or not built)."""
        return self._memory.segment_name

    @property
    def array(self) -> np.ndarray:
        """The table, read-only, shape (size,); built on first access."""
        arr = self._memory.array
        return arr if arr is not None else self._memory.build()

    def __len__(self) -> int:
        return self._size

    @property
    def _key(self) -> _Key:
        return (self._size, self._seed, self._dtype.str)

    def check_dim(self, dim: int) -> int:
        """Validate a window length: 1 <= dim <= size."""
        dim = check_sample_count("dim", dim)
        if dim > self._size:
            raise ValueError(f"dim must be <= the table size {self._size}, got {dim}")
        return dim

    def sample_index(self, rng: RNGLike, dim: int, n: int) -> np.ndarray:
        """n window starts, uniform on {0, ..., size - dim}, as int64 array (n,).

        A ``RandomState`` draws ``randint(0, size - dim + 1, size=n)``: the same
        numbers as EvoGrad's n calls of ``randint(0, size - dim + 1)``.  A
        ``Generator`` draws ``integers(0, size - dim + 1, size=n)``.
        """
        dim = self.check_dim(dim)
        n = check_sample_count("n", n)
        rng = as_rng(rng)
        high = self._size - dim + 1
        if isinstance(rng, np.random.RandomState):
            return rng.randint(0, high, size=n).astype(np.int64, copy=False)
        return rng.integers(0, high, size=n, dtype=np.int64)

    def get(self, index: int, dim: int) -> np.ndarray:
        """The window ``T[index : index + dim]`` (a read-only view)."""
        dim = self.check_dim(dim)
        self._check_indices(np.asarray([index]), dim)
        return self.array[int(index) : int(index) + dim]

    def rows(self, indices: object, dim: int) -> np.ndarray:
        """The windows ``T[k : k + dim]`` for each k in ``indices``, stacked: a new array (m, dim)."""
        dim = self.check_dim(dim)
        idx = self._check_indices(np.asarray(indices), dim)
        return self._windows(dim)[idx]

    def contract(
        self, indices: object, dim: int, a: object, b: object | None = None
    ) -> tuple[np.ndarray, np.ndarray | None]:
        r"""Weighted sums of windows and of squared windows, streamed a block at a time.

        .. math::

            A = \sum_i a_i\, T[k_i : k_i + d], \qquad
            B = \sum_i b_i\, T[k_i : k_i + d]^2 \;\text{(elementwise square; if b is given)}

        Only a block of windows (``_blocks.BLOCK_BYTES``) is gathered at a time; the
        (m, d) matrix of windows is never built.  Sums are in the dtype of ``a``.
        """
        dim = self.check_dim(dim)
        idx = self._check_indices(np.asarray(indices), dim)
        a_arr = as_float_array("a", a)
        m = idx.shape[0]
        if a_arr.shape != (m,):
            raise ValueError(f"a has shape {a_arr.shape} but there are {m} indices; expected ({m},)")
        b_arr = None if b is None else as_float_array("b", b, dtype=a_arr.dtype)
        if b_arr is not None and b_arr.shape != (m,):
            raise ValueError(f"b has shape {b_arr.shape} but there are {m} indices; expected ({m},)")
        windows = self._windows(dim)

        def gather(start: int, stop: int) -> np.ndarray:
            return windows[idx[start:stop]].astype(a_arr.dtype, copy=False)

        return weighted_row_sums(gather, m, dim, a_arr.dtype, a_arr, b_arr)

    def close(self) -> None:
        """Release the table's memory; the owner unlinks its shared-memory segment.

        The table is rebuilt if used again.  Views returned by :meth:`get` keep the
        memory mapped until they are deleted, but the segment's name is gone at once.
        """
        self._memory.close()

    def __enter__(self) -> NoiseTable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return (_restore, (self._size, self._seed, self._dtype.str, self._memory.pickled_name()))

    def __dask_tokenize__(self) -> tuple[Any, ...]:
        return ("npevograd.NoiseTable", *self._key)

    def __repr__(self) -> str:
        return f"NoiseTable(size={self._size}, seed={self._seed}, dtype={self._dtype}, {self._memory.where})"

    def _windows(self, dim: int) -> np.ndarray:
        """All windows of length dim as a strided view (size - dim + 1, dim): no copy."""
        return np.lib.stride_tricks.sliding_window_view(self.array, dim)

    def _check_indices(self, idx: np.ndarray, dim: int) -> np.ndarray:
        if idx.ndim != 1 or not np.issubdtype(idx.dtype, np.integer):
            raise ValueError(f"indices must be a 1-D integer array, got shape {idx.shape} dtype {idx.dtype}")
        high = self._size - dim
        if idx.size and (idx.min() < 0 or idx.max() > high):
            raise ValueError(
                f"indices must lie in [0, {high}] (table size {self._size}, dim {dim}), "
                f"got range [{idx.min()}, {idx.max()}]"
            )
        return idx


def _restore(size: int, seed: int, dtype: str, segment: str | None) -> NoiseTable:
    """Unpickle: the table already alive in this process, else one that attaches to ``segment``."""
    key: _Key = (size, seed, np.dtype(dtype).str)
    for old_key, old in list(_RECEIVED.items()):
        if old._memory.attached_to_closed():
            del _RECEIVED[old_key]
    table = _LIVE.get(key)
    if table is None or (table._memory.attached_to_closed() and segment != table._memory.attach_name):
        table = NoiseTable(size, seed, dtype, shared=False)
        _LIVE[key] = _RECEIVED[key] = table
    elif key in _RECEIVED:
        _RECEIVED[key] = _RECEIVED.pop(key)  # the most recently received last
    while len(_RECEIVED) > _RECEIVED_MAX:
        del _RECEIVED[next(iter(_RECEIVED))]
    memory = table._memory
    if not table.built and memory.segment_name is None and memory.attach_name is None and segment:
        memory.attach_name = segment
    return table


@dataclass(frozen=True, eq=False)
class EncodedSamples:
    r"""n samples of dimension ``dim`` encoded as windows of a noise table.

    .. math::

        x_i = \mu + s_i\, \sigma \odot T[k_i : k_i + d]

    ``indices`` (int64, (n,)) are the :math:`k_i`, ``signs`` (int8, (n,)) the
    :math:`s_i`; both are read-only.  The distribution that drew them supplies
    :math:`\mu` and :math:`\sigma` when decoding (``p.decode(encoded)``).  Like a
    sample array it has ``shape == (n, dim)`` and ``len() == n``, so estimators take
    it wherever they take x.
    """

    indices: np.ndarray
    signs: np.ndarray
    dim: int
    table: NoiseTable

    def __post_init__(self) -> None:
        if not isinstance(self.table, NoiseTable):
            raise TypeError(f"table must be a NoiseTable, got {type(self.table).__name__}")
        dim = self.table.check_dim(self.dim)
        idx = np.asarray(self.indices)
        if idx.ndim != 1 or idx.shape[0] == 0:
            raise ValueError(f"indices must have shape (n,) with n >= 1, got shape {idx.shape}")
        idx = self.table._check_indices(idx, dim).astype(np.int64)
        signs = np.asarray(self.signs)
        if signs.shape != idx.shape:
            raise ValueError(f"signs has shape {signs.shape} but indices has {idx.shape}; expected equal shapes")
        if not np.all((signs == 1) | (signs == -1)):
            raise ValueError("signs must all be +1 or -1")
        signs = signs.astype(np.int8)
        idx.flags.writeable = False
        signs.flags.writeable = False
        object.__setattr__(self, "indices", idx)
        object.__setattr__(self, "signs", signs)
        object.__setattr__(self, "dim", dim)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.indices.shape[0], self.dim)

    def __len__(self) -> int:
        return self.indices.shape[0]

    def __getitem__(self, item: slice) -> EncodedSamples:
        """A contiguous range of the samples (slices only)."""
        if not isinstance(item, slice):
            raise TypeError(f"EncodedSamples can be indexed by slices only, got {type(item).__name__}")
        return EncodedSamples(self.indices[item], self.signs[item], self.dim, self.table)

    def __repr__(self) -> str:
        return f"EncodedSamples(n={len(self)}, dim={self.dim}, table={self.table!r})"
