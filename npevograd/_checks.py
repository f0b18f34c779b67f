"""Input validation and random-state handling shared by the public API.

Every public function validates its arguments here, once, and raises a
``ValueError``/``TypeError`` that names the argument, what was expected and
what was received.
"""

from __future__ import annotations

import math
from typing import Union

import numpy as np

from . import _stream

RNGLike = Union[np.random.Generator, np.random.RandomState, int, None]


def as_rng(rng: RNGLike) -> np.random.Generator | np.random.RandomState:
    """Return a NumPy random source; never the global ``np.random`` state."""
    if isinstance(rng, (np.random.Generator, np.random.RandomState)):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(rng)
    raise TypeError(
        "rng must be a numpy Generator, RandomState, int seed or None, "
        f"got {type(rng).__name__}"
    )


def standard_normal(rng: RNGLike, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Standard normal draws of ``shape`` in ``dtype`` from either kind of rng.

    A Generator fills arrays of at least ``_stream.PARALLEL_MIN_ENTRIES`` entries in
    threaded row blocks, each from its own child stream (the same draw whatever the
    number of threads).  A RandomState draws its legacy float64 stream in order, cast a
    block of rows at a time, so its samples are exactly ``standard_normal(shape).astype``.
    """
    rng = as_rng(rng)
    if isinstance(rng, np.random.Generator):
        return _stream.standard_normal_fill(rng, shape, np.dtype(dtype))
    if np.dtype(dtype) == np.float64 or len(shape) == 0 or math.prod(shape) <= _stream.FILL_BLOCK_ENTRIES:
        return rng.standard_normal(shape).astype(dtype, copy=False)
    out = np.empty(shape, dtype=dtype)
    for start, stop in _stream.row_blocks(shape[0], _stream.fill_block_rows(math.prod(shape[1:]))):
        out[start:stop] = rng.standard_normal((stop - start, *shape[1:]))  # no float64 (n, d) temporary
    return out


def uniform(rng: RNGLike, shape: tuple[int, ...]) -> np.ndarray:
    """Uniform draws on [0, 1) from either kind of rng."""
    rng = as_rng(rng)
    if isinstance(rng, np.random.Generator):
        return rng.random(shape)
    return rng.random_sample(shape)


def float_dtype(*arrays: np.ndarray) -> np.dtype:
    """float32 when every floating input is float32, else float64."""
    floats = [a.dtype for a in arrays if np.issubdtype(a.dtype, np.floating)]
    if floats and all(dt == np.float32 for dt in floats):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def as_float_array(
    name: str, a: object, dtype: np.dtype | None = None, finite: bool = True
) -> np.ndarray:
    """``a`` as a floating array (float64 unless given float32), no copy when possible.

    With ``finite=False`` the O(size) finiteness scan is left to the caller, who
    checks its (much smaller) result instead and scans only on failure.
    """
    if type(a) is np.ndarray and a.dtype in _FLOATS and dtype in (None, a.dtype):
        arr = a  # already a float array: skip the dtype inspection (the estimators' hot path)
    else:
        arr = _as_float(name, a, dtype)
    if finite:
        check_finite(name, arr)
    return arr


_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))


def _as_float(name: str, a: object, dtype: np.dtype | None) -> np.ndarray:
    try:
        arr = np.asarray(a)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be array-like of numbers, got {type(a).__name__}") from err
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if dtype is None:
        dtype = arr.dtype if arr.dtype in _FLOATS else np.dtype(np.float64)
    return arr.astype(dtype, copy=False)


def check_finite(name: str, arr: np.ndarray) -> None:
    if not np.isfinite(arr).all():
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} must be finite, got {bad} non-finite value(s) (NaN or inf)")


def check_positive(name: str, arr: np.ndarray) -> None:
    if not (arr > 0).all():
        raise ValueError(f"{name} must be > 0, got minimum {float(np.min(arr))}")


def check_sample_count(name: str, n: object, minimum: int = 1) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(n).__name__}")
    if n < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {n}")
    return int(n)


def per_sample(name: str, values: object, n: int, max_ndim: int | None = None) -> np.ndarray:
    """Validate an array whose first axis runs over the ``n`` samples."""
    arr = as_float_array(name, values)
    if arr.ndim == 0 or arr.shape[0] != n:
        raise ValueError(
            f"{name} has shape {arr.shape} but x has {n} samples; "
            f"expected {name} of shape ({n}, ...)"
        )
    if max_ndim is not None and arr.ndim > max_ndim:
        raise ValueError(
            f"{name} must have at most {max_ndim} dimension(s), got shape {arr.shape}"
        )
    return arr


def fitness_vector(name: str, values: object, n: int) -> np.ndarray:
    """Fitness of shape (n,) or (n, 1), returned as (n,)."""
    arr = per_sample(name, values, n)
    if arr.ndim == 2 and arr.shape[1] == 1:
        return arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"{name} must have shape ({n},) or ({n}, 1), got {arr.shape}")
    return arr


def behaviour_matrix(name: str, values: object, n: int) -> np.ndarray:
    """Behaviours of shape (n,) or (n, k), returned as (n, k)."""
    arr = per_sample(name, values, n, max_ndim=2)
    return arr[:, None] if arr.ndim == 1 else arr


def check_grad(params: dict[str, np.ndarray], grad: object) -> dict[str, np.ndarray]:
    """Validate a gradient dict against ``params``: the same names, each of its parameter's shape."""
    if not isinstance(grad, dict) or set(grad) != set(params):
        got = sorted(grad) if isinstance(grad, dict) else type(grad).__name__
        raise ValueError(f"grad must be a dict with keys {sorted(params)}, got {got}")
    out = {}
    for name, value in grad.items():
        arr = as_float_array(f"grad[{name!r}]", value)
        if arr.shape != params[name].shape:
            raise ValueError(f"grad[{name!r}] must have shape {params[name].shape}, got {arr.shape}")
        out[name] = arr
    return out
