"""What ``peers.py`` and ``peers_small.py`` share: block-alternating timing and the optional peers."""

from __future__ import annotations

import statistics
import time
from typing import Any, Callable

from _timing import quartiles


def alternate(
    fns: dict[str, Callable[[], object]],
    repeats: int,
    block: int | dict[str, int] = 1,
    warm: int = 0,
    baselines: tuple[str, ...] = ("npevograd",),
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Median seconds per call of each callable; the callables take turns in blocks of calls.

    After one warm-up call each, every repeat runs each callable in turn: ``warm`` untimed
    calls, then ``block`` timed consecutive calls (an int, or a count per name), whose
    time / ``block`` is that repeat's time per call.  Ratios are medians over the repeats of
    the per-repeat ratios: ``{name}_ratio`` = t_name / t_npevograd (the first baseline),
    ``{name}_over_{base}`` = t_name / t_base for any further baseline; each with its
    quartiles over the repeats under the same key plus ``_iqr``.
    """
    blocks = {name: block[name] if isinstance(block, dict) else block for name in fns}
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            for _ in range(warm):
                fn()
            t0 = clock()
            for _ in range(blocks[name]):
                fn()
            times[name].append((clock() - t0) / blocks[name])
    out = {f"{name}_s": statistics.median(ts) for name, ts in times.items()}
    for k, base in enumerate(baselines):
        suffix = "_ratio" if k == 0 else f"_over_{base}"
        for name in fns:
            if name != base:
                ratios = [t / b for t, b in zip(times[name], times[base])]
                out[f"{name}{suffix}"] = statistics.median(ratios)
                out[f"{name}{suffix}_iqr"] = quartiles(ratios)
    return out


def load_jax() -> Any:
    """(jax, jax.numpy, evosax.algorithms), or None when evosax/jax is not installed."""
    try:
        import jax
        import jax.numpy as jnp
        from evosax import algorithms
    except ImportError:
        return None
    return jax, jnp, algorithms


def load_evotorch() -> Any:
    """(torch, evotorch), or None when evotorch/torch is not installed."""
    try:
        import evotorch
        import torch
    except ImportError:
        return None
    return torch, evotorch
