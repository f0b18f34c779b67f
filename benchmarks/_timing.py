"""What every section shares: side-by-side timing, peak memory, the load average, the optional peers.

Every figure is the median over repeats; a comparison alternates its two callables
within each repeat and reports the median of the per-repeat ratios (``time_pair``).
"""

from __future__ import annotations

import gc
import logging
import os
import platform
import statistics
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]

RESULTS = ROOT / "benchmarks" / "results"

def machine() -> str:
    """The CPU and the SIMD level NumPy dispatches to, e.g. ``AMD EPYC (family 25 model 1), AVX2, no AVX-512``.

    Ratios against a floor of exponentials or logarithms, and the float32 sampling, move
    with it: in cache, float32 ``np.exp`` took 0.4 to 0.5 ns an entry on the host of the
    README's run and 2.8 ns on a Zen 3 host without AVX-512 (issue 15).
    """
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    name = fields.get("model name") or platform.processor() or "unknown CPU"
    if "cpu family" in fields and "model" in fields:
        name += f" (family {fields['cpu family']} model {fields['model']})"
    import importlib

    try:
        umath = importlib.import_module("numpy._core._multiarray_umath")
    except ImportError:  # numpy < 2
        umath = importlib.import_module("numpy.core._multiarray_umath")
    features: dict[str, bool] = umath.__cpu_features__
    simd = "AVX-512" if features.get("AVX512F") else "AVX2, no AVX-512" if features.get("AVX2") else "no AVX2"
    return f"{name}, {simd}"


def _now() -> float:
    return time.perf_counter()

def time_pair(
    first: Callable[[], object], second: Callable[[], object], repeats: int, inner: tuple[int, int] = (1, 1)
) -> dict[str, float]:
    """Alternate ``first`` and ``second`` ``repeats`` times; per-call medians and the median ratio.

    ``inner`` calls of each are timed together (for calls far shorter than the timer's
    resolution and scheduling noise).  ``ratio`` = median over repeats of second / first,
    ``ratio_iqr`` = their quartiles, the spread over repeats.
    """
    first()
    second()  # warm-up: caches, lazy imports, allocator
    a_times, b_times = [], []
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            t0 = _now()
            for _ in range(inner[0]):
                first()
            t1 = _now()
            for _ in range(inner[1]):
                second()
            t2 = _now()
            a_times.append((t1 - t0) / inner[0])
            b_times.append((t2 - t1) / inner[1])
    finally:
        if gc_was_enabled:
            gc.enable()
    ratios = [b / a for a, b in zip(a_times, b_times)]
    return {
        "first_s": _median(a_times),
        "second_s": _median(b_times),
        "ratio": _median(ratios),
        "ratio_iqr": quartiles(ratios),
        "repeats": repeats,
    }


def quartiles(values: list[float]) -> list[float]:
    """[first, third] quartile of ``values`` (both the value itself for one)."""
    if len(values) < 2:
        return [values[0], values[0]]
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return [q1, q3]


def fmt_iqr(iqr: list[float]) -> str:
    """A ratio's spread over repeats, as printed beside it: ``[1.02, 1.10]``."""
    return f"[{iqr[0]:.3g}, {iqr[1]:.3g}]"

def time_one(fn: Callable[[], object], repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = _now()
        fn()
        times.append(_now() - t0)
    return _median(times)

def _median(values: list[float]) -> float:
    s = sorted(values)
    m = len(s) // 2
    return s[m] if len(s) % 2 else 0.5 * (s[m - 1] + s[m])

def peak_extra_bytes(fn: Callable[[], object]) -> int:
    """Peak memory traced by tracemalloc during ``fn()`` above what was allocated before."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        fn()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return peak - before

def load() -> float:
    return os.getloadavg()[0]

# --------------------------------------------------------------------------- optional parts

def import_torch(threads: int) -> Any:
    try:
        import torch
    except ImportError:
        return None
    torch.set_num_threads(threads)
    return torch

def import_evograd() -> tuple[Any, Any] | None:
    try:
        logging.getLogger("evograd.noise").setLevel(logging.WARNING)  # it logs at import
        from evograd import expectation
        from evograd.distributions import Normal
    except ImportError:
        return None
    return expectation, Normal

def noise_table_api() -> Any:
    """npevograd's NoiseTable, if this version has the encoded samples (issue 4)."""
    try:
        from npevograd.noise import NoiseTable
    except ImportError:
        return None
    import inspect

    import npevograd as ng

    if "noise" not in inspect.signature(ng.Normal).parameters:
        return None
    return NoiseTable
