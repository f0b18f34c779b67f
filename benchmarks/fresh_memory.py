"""What a fresh sample array costs on this machine, and whether threads or page faults slow sampling under load.

    python benchmarks/fresh_memory.py            # n = 1,000, d = 100,000 float32 (400 MB), about a minute
    python benchmarks/fresh_memory.py --quick    # n = 200

Two measurements (issue 24, the sampling row of ``load.py``):

1. Allocating and touching an array of the sample's size, eight times in a row: on a VM whose freed
   memory goes back to the host, some of these take far longer than the rest (the host faults the pages
   in again), whatever npevograd does.
2. With one busy process per core (``while True: pass``), ``Normal.sample`` in two child processes,
   ``default`` (npevograd's threads on every usable core) and ``1 thread`` (``NPEVOGRAD_NUM_THREADS=1``):
   into a fresh output, as ``sample`` returns, and into one output touched beforehand (the allocation
   ``_draws.normal_rows`` makes is swapped for it).  The ratio default / 1 thread on the pre-touched
   output is the threads' own; the difference from the fresh one is the page faults'.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

SHAPES = {"full": (1000, 100_000), "quick": (200, 100_000)}


def touch_times(n: int, d: int, count: int = 8) -> list[float]:
    import numpy as np

    times = []
    for _ in range(count):
        t0 = time.perf_counter()
        a = np.ones((n, d), dtype=np.float32)
        times.append(time.perf_counter() - t0)
        del a
    return times


def child(n: int, d: int, repeats: int) -> dict[str, float]:
    """Median seconds of ``sample`` into a fresh output and into a pre-touched one, alternating."""
    import numpy as np

    import npevograd as ng
    from npevograd.sampling import _draws

    rng = np.random.default_rng(0)
    p = ng.Normal(np.zeros(d, np.float32), np.full(d, 0.5, np.float32), learn_sigma=True)
    warm = np.zeros((n, d), np.float32)

    class WarmOutput:
        """numpy for ``_draws``, except that the sample's (n, d) output is the pre-touched array."""

        def __getattr__(self, name: str) -> Any:
            return getattr(np, name)

        def empty(self, shape: Any, dtype: Any = float) -> Any:
            return warm if shape == (n, d) else np.empty(shape, dtype=dtype)

    p.sample(n, rng)
    times: dict[str, list[float]] = {"fresh": [], "pretouched": []}
    for _ in range(repeats):
        t0 = time.perf_counter()
        x = p.sample(n, rng)
        times["fresh"].append(time.perf_counter() - t0)
        del x
        _draws.np = WarmOutput()  # type: ignore[assignment]
        try:
            t0 = time.perf_counter()
            p.sample(n, rng)
            times["pretouched"].append(time.perf_counter() - t0)
        finally:
            _draws.np = np
    return {k: statistics.median(v) for k, v in times.items()}


def loaded_pair(mode: str, repeats: int) -> dict[str, dict[str, float]]:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    busy = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores)]
    single = {"NPEVOGRAD_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    out: dict[str, dict[str, float]] = {}
    try:
        time.sleep(0.3)
        for name, env in (("default", {}), ("1 thread", single)):
            cmd = [sys.executable, __file__, "--child", "--mode", mode, "--repeats", str(repeats)]
            done = subprocess.run(cmd, env=dict(os.environ, **env), capture_output=True, text=True, check=True)
            out[name] = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        for proc in busy:
            proc.kill()
            proc.wait()
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 200 instead of 1,000")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    mode = args.mode or ("quick" if args.quick else "full")
    n, d = SHAPES[mode]
    if args.child:
        print(json.dumps(child(n, d, args.repeats)))
        return
    touches = touch_times(n, d)
    print(f"allocate and touch ({n}, {d}) float32, 8 times: " + ", ".join(f"{t * 1e3:.0f}" for t in touches) + " ms")
    pair = loaded_pair(mode, args.repeats)
    print(f"one busy process per core; Normal.sample({n}, d = {d}) float32, median of {args.repeats}:")
    for name, t in pair.items():
        print(f"  {name:8s}: fresh output {t['fresh'] * 1e3:.0f} ms, pre-touched output {t['pretouched'] * 1e3:.0f} ms")
    for kind in ("fresh", "pretouched"):
        ratio = pair["default"][kind] / pair["1 thread"][kind]
        print(f"  default / 1 thread, {kind} output: {ratio:.2f} (goal <= 1.2)")


if __name__ == "__main__":
    main()
