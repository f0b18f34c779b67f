"""Input validation and random-state handling shared by the public API.

Every public function validates its arguments here, once, and raises a
``ValueError``/``TypeError`` that names the argument, what was expected and
what was received.
"""

from __future__ import annotations

import math
from typing import Any, Union

import numpy as np

RNGLike = Union[np.random.Generator, np.random.RandomState, int, None]


def as_rng(rng: RNGLike) -> np.random.Generator | np.random.RandomState:
    """Return a NumPy random source; never the global ``np.random`` state."""
    if isinstance(rng, (np.random.Generator, np.random.RandomState)):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        if rng is not None and rng < 0:
            raise ValueError(f"rng as an int seed must be >= 0, got {rng}")
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be a numpy Generator, RandomState, int seed or None, got {type(rng).__name__}")


def float_dtype(*arrays: np.ndarray) -> np.dtype:
    """float32 when every floating input is float32, else float64."""
    floats = [a.dtype for a in arrays if np.issubdtype(a.dtype, np.floating)]
    if floats and all(dt == np.float32 for dt in floats):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


def as_float_array(name: str, a: object, dtype: np.dtype | None = None, finite: bool = True) -> np.ndarray:
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
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
    if dtype is None:
        dtype = arr.dtype if arr.dtype in _FLOATS else np.dtype(np.float64)
    return as_dtype(name, arr, np.dtype(dtype))  # float64 values beyond float32 are named, not warned about


# Arrays of at most this many entries are checked as Python floats: on a few entries that
# is several times cheaper than the NumPy calls (each about a microsecond of overhead).
SMALL_SIZE = 16


def all_finite(arr: np.ndarray) -> bool:
    """True when every entry of the float array ``arr`` is finite (exactly ``np.isfinite(arr).all()``)."""
    if arr.size <= SMALL_SIZE:  # a finite sum has finite terms; a sum that overflowed is scanned
        values = arr.tolist() if arr.ndim == 1 else arr.ravel().tolist()
        return math.isfinite(sum(values)) or all(map(math.isfinite, values))
    return bool(np.count_nonzero(np.isfinite(arr)) == arr.size)  # counted: no reduction's Python wrapper


def all_true(mask: np.ndarray) -> bool:
    """``mask.all()`` for a boolean array, as one C call."""
    return bool(np.count_nonzero(mask) == mask.size)


def all_positive(arr: np.ndarray) -> bool:
    """True when every entry of the float array ``arr`` is > 0 (exactly ``(arr > 0).all()``; NaN is not)."""
    if arr.size <= SMALL_SIZE:
        values = arr.tolist() if arr.ndim == 1 else arr.ravel().tolist()
        return all(map((0.0).__lt__, values))  # 0 < v, False for NaN
    return all_true(np.greater(arr, 0))


def check_finite(name: str, arr: np.ndarray) -> None:
    if not all_finite(arr if type(arr) is np.ndarray else np.asarray(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise ValueError(f"{name} must be finite, got {bad} non-finite value(s) (NaN or inf)")


def check_positive(name: str, arr: np.ndarray) -> None:
    positive = np.greater(arr, 0)
    if np.count_nonzero(positive) != np.size(positive):
        raise ValueError(f"{name} must be > 0, got minimum {float(np.min(arr))}")


# Largest count of anything numpy can index: one array may hold at most this many bytes.
MAX_COUNT = int(np.iinfo(np.intp).max)


def check_sample_count(name: str, n: object, minimum: int = 1) -> int:
    """An int of any integer type (bool excluded) in [minimum, MAX_COUNT], returned as a Python int."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(n).__name__}")
    count = int(n)  # before comparing: numpy integer scalars wrap around in their own type
    if count < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {count}")
    if count > MAX_COUNT:
        raise ValueError(f"{name} must be <= {MAX_COUNT} (the largest array numpy can index), got {count}")
    return count


def check_sample_bytes(n: int, per_sample: int) -> None:
    """Raise a ValueError naming n when n samples cannot fit one numpy array.

    Bounded by n times ``per_sample``, the parameters' total size in bytes (``check_params``
    returns it): every sample of these distributions (and its sampling scratch) has at
    most that many entries per parameter entry.
    """
    if n > MAX_COUNT // per_sample:
        raise ValueError(
            f"n={n} samples need about {n * per_sample} bytes, more than one numpy array can hold "
            f"({MAX_COUNT}); draw them in smaller batches"
        )


def check_sigma(sigma: np.ndarray) -> np.ndarray:
    """sigma finite and > 0 (checked wherever it is used: it may be changed in place)."""
    if sigma.size <= SMALL_SIZE:  # a few entries: both checks below on Python floats
        values = sigma.tolist() if sigma.ndim == 1 else sigma.ravel().tolist()
        if math.isfinite(sum(values)) and (not values or min(values) > 0):  # finite sum: finite terms
            return sigma
    check_finite("sigma", sigma)
    check_positive("sigma", sigma)
    return sigma


def cast_sigma(sigma: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """A validated copy of sigma in the parameters' dtype, checked after the cast (1e39 and 1e-46 fail in float32)."""
    with np.errstate(over="ignore", under="ignore"):  # checked just below, in the target dtype
        cast = np.array(sigma, dtype=dtype)
    if not np.isfinite(cast).all() or not (cast > 0).all():
        raise ValueError(
            f"sigma must be finite and > 0 in {np.dtype(dtype)}, the parameters' dtype: "
            f"{sigma.tolist()} becomes {cast.tolist()} there"
        )
    return cast


def check_bool(name: str, value: object) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def sample_rows(x: object, dim: int, dtype: np.dtype) -> np.ndarray:
    """Continuous samples ``x`` of shape (n, dim), n >= 1, in the parameters' ``dtype``.

    Finiteness is left to the caller, who checks its (much smaller) result instead.
    """
    arr = as_float_array("x", x, finite=False)
    if arr.ndim != 2 or arr.shape[1] != dim or arr.shape[0] == 0:
        raise ValueError(f"x must have shape (n, {dim}) with n >= 1, got shape {arr.shape}")
    return as_dtype("x", arr, dtype)  # results in the parameters' dtype


def as_dtype(name: str, arr: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``arr`` cast to ``dtype`` (the parameters'); a ValueError naming ``name`` if finite values overflow there."""
    if arr.dtype == dtype:
        return arr
    with np.errstate(over="ignore"):  # checked just below
        cast = arr.astype(dtype)
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(cast).all():
        check_finite(name, arr)
        raise ValueError(
            f"{name} has values beyond the range of {np.dtype(dtype)}, the parameters' dtype "
            f"(largest magnitude {float(np.max(np.abs(arr)))}); rescale {name}"
        )
    return cast


def check_params(dist: Any) -> int:
    """Every entry of ``dist.params`` is still a finite array of the shape and dtype it was built with.

    The rule for ``params``: entries may be updated in place or replaced by an array of
    the same shape and dtype; the distribution reads them from ``params`` at every call.
    Adding or removing entries, or replacing one by something else, raises here, at the
    next call, naming the entry.  The first call records the spec (constructors make it).
    Returns the entries' total size in bytes (at least 1), fixed by the spec.
    """
    params = dist.params
    spec: dict[str, tuple[tuple[int, ...], np.dtype]] | None = getattr(dist, "_param_spec", None)
    if spec is None:
        spec = dist._param_spec = {name: (np.shape(v), np.asarray(v).dtype) for name, v in params.items()}
        dist._param_bytes = max(1, sum(math.prod(shape) * dtype.itemsize for shape, dtype in spec.values()))
    if not isinstance(params, dict) or params.keys() != spec.keys():
        got = sorted(params) if isinstance(params, dict) else type(params).__name__
        raise ValueError(
            f"params must keep the keys {sorted(spec)}, got {got}: update or replace entries, never add or remove them"
        )
    for name, (shape, dtype) in spec.items():
        value = params[name]
        if not isinstance(value, np.ndarray) or value.shape != shape or value.dtype != dtype:
            is_array = isinstance(value, np.ndarray)
            got = f"{value.dtype} array of shape {value.shape}" if is_array else type(value).__name__
            raise ValueError(
                f"params[{name!r}] was replaced by a {got}; expected a {dtype} array of shape {shape} "
                "(replace an entry only by an array of the same shape and dtype)"
            )
        if not all_finite(value):  # the name is formatted only for the error
            check_finite(f"params[{name!r}]", value)
    return dist._param_bytes  # type: ignore[no-any-return]


def per_sample(name: str, values: object, n: int, max_ndim: int | None = None) -> np.ndarray:
    """Validate an array whose first axis runs over the ``n`` samples."""
    arr = as_float_array(name, values)
    if arr.ndim == 0 or arr.shape[0] != n:
        raise ValueError(f"{name} has shape {arr.shape} but x has {n} samples; expected {name} of shape ({n}, ...)")
    if max_ndim is not None and arr.ndim > max_ndim:
        raise ValueError(f"{name} must have at most {max_ndim} dimension(s), got shape {arr.shape}")
    return arr


def fitness_vector(name: str, values: object, n: int) -> np.ndarray:
    """Fitness of shape (n,) or (n, 1), returned as (n,)."""
    if type(values) is np.ndarray and values.dtype in _FLOATS and values.shape == (n,):
        check_finite(name, values)  # the usual fitness vector: per_sample's checks, decided at once
        return values
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
    if not isinstance(grad, dict) or grad.keys() != params.keys():
        got = sorted(grad) if isinstance(grad, dict) else type(grad).__name__
        raise ValueError(f"grad must be a dict with keys {sorted(params)}, got {got}")
    out = {}
    for name, value in grad.items():
        if type(value) is np.ndarray and value.dtype in _FLOATS:
            arr = value  # as_float_array's fast path, without formatting the name
        else:
            arr = _as_float(f"grad[{name!r}]", value, None)
        if not all_finite(arr):
            check_finite(f"grad[{name!r}]", arr)
        if arr.shape != params[name].shape:
            raise ValueError(f"grad[{name!r}] must have shape {params[name].shape}, got {arr.shape}")
        out[name] = arr
    return out
