"""npevograd's threaded paths on a busy machine: loaded against idle, and against one thread (issue 24).

    python benchmarks/load.py                      # n = 1000, d = 100,000; entropy n = 16,000 (a few minutes)
    python benchmarks/load.py --quick              # smaller, about a minute
    python benchmarks/load.py --no-threadpoolctl   # the same without threadpoolctl (NPEVOGRAD_THREADPOOLCTL=0)
    python benchmarks/run.py --load [--quick]      # the same table from run.py

An evolution strategy's main process computes the gradient while worker processes on the
same machine evaluate the next population: npevograd's threads and BLAS's threads then
compete with processes that keep every core busy.  Each row is a threaded path of
npevograd: ``Normal.sample`` (float32 Box-Muller blocks), the ``Mean`` gradient with a
learned sigma, with a fixed sigma, on samples encoded in a noise table (learned sigma),
the ``w @ x`` floor (one BLAS call), and the entropy's kernel strips.

Method.  Two child processes hold the same arrays: ``default`` (the environment as given:
npevograd's threads on every usable core, BLAS's default threads) and ``single``
(``NPEVOGRAD_NUM_THREADS=1`` and the BLAS variables at 1, set before NumPy loads).  Each
repeat runs every row in both children twice: on the idle machine, then with one busy
process per core (``while True: pass``, started by this script and stopped after the
loaded half of the repeat).  The children take turns row by row, so a spike of other
load hits both.  Printed per row: the idle and loaded medians of both children, and the
medians over repeats of the per-repeat ratios loaded/idle (default) and loaded default /
loaded single, with their quartiles.  Goal (issue 24): loaded default / loaded single
<= 1.2 on every threaded row, and idle default no slower than before.  "Idle" is the
machine as it is without the busy processes: on a shared machine, read it with the load
average printed beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from _timing import ROOT, fmt_iqr, machine, quartiles
from gradient import gradient_inputs

BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")
SIZES = {
    "quick": {"shape": (200, 100_000), "entropy_n": 8_000, "repeats": 3},
    "full": {"shape": (1000, 100_000), "entropy_n": 16_000, "repeats": 7},
}
ROWS = ("sampling", "learned_sigma", "fixed_sigma", "encoded_learned", "floor_w_at_x", "entropy")
LABELS = {
    "sampling": "Normal.sample (n, d) float32",
    "learned_sigma": "Mean gradient, learned sigma",
    "fixed_sigma": "Mean gradient, fixed sigma",
    "encoded_learned": "Mean gradient, noise-table samples, learned sigma",
    "floor_w_at_x": "floor: one BLAS w @ x",
    "entropy": "Entropy (kernel strips), 2-D behaviours, float64",
}
CONFIGS = {"default": {}, "single": {"NPEVOGRAD_NUM_THREADS": "1", **{v: "1" for v in BLAS_VARIABLES}}}


# --------------------------------------------------------------------------- child: holds the arrays, times a row


def child_rows(size: dict[str, Any]) -> dict[str, Callable[[], object]]:
    import numpy as np

    import npevograd as ng
    from npevograd.noise import NoiseTable

    n, d = size["shape"]
    rng, mu, fixed, learned, x, f, w, mean = gradient_inputs(n, d)
    table = NoiseTable(10_000_000, 42, shared=False)
    encoded_p = ng.Normal(mu, np.full(d, 0.5, dtype=np.float32), learn_sigma=True, noise=table)
    encoded = encoded_p.sample(n, rng, encode=True)
    m = size["entropy_n"]
    behaviours = rng.standard_normal((m, 2))
    small = ng.Normal(np.zeros(2), 1.0)
    entropy = ng.Entropy(bandwidth=0.5)
    return {
        "sampling": lambda: learned.sample(n, rng),
        "learned_sigma": lambda: mean(f, x, learned),
        "fixed_sigma": lambda: mean(f, x, fixed),
        "encoded_learned": lambda: mean(f, encoded, encoded_p),
        "floor_w_at_x": lambda: w @ x,
        "entropy": lambda: entropy(behaviours, behaviours, small),
    }


def child(mode: str) -> None:
    """Serve ``row`` requests on stdin with one timed call each (seconds, one JSON line on stdout)."""
    sys.path.insert(0, str(ROOT))
    rows = child_rows(SIZES[mode])
    for fn in rows.values():
        fn()  # warm-up: lazy imports, the noise table, allocator
    from npevograd.sampling import _blocks

    if hasattr(_blocks, "thread_plan"):
        plan = _blocks.thread_plan()._asdict()
    else:  # an npevograd from before issue 24 (to time the same rows on it)
        plan = {"threads": _blocks.thread_count(), "note": "before issue 24: no thread_plan"}
    print(json.dumps({"ready": True, "plan": plan, "blas": _blas_threads()}), flush=True)
    for line in sys.stdin:
        name = line.strip()
        if not name:
            break
        t0 = time.perf_counter()
        rows[name]()
        print(json.dumps({name: time.perf_counter() - t0}), flush=True)


def _blas_threads() -> Any:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    return [{k: i.get(k) for k in ("internal_api", "num_threads")} for i in threadpool_info()]


# --------------------------------------------------------------------------- parent: children, busy processes, table


class Child:
    def __init__(self, mode: str, env: dict[str, str]):
        full_env = dict(os.environ, **env)
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        cmd = [sys.executable, __file__, "--child", "--quick" if mode == "quick" else "--full"]
        self.proc = subprocess.Popen(cmd, env=full_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.info = self._read()

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        while True:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError("a load.py child exited early")
            if line.startswith("{"):  # libraries may print before
                return json.loads(line)  # type: ignore[no-any-return]

    def time(self, row: str) -> float:
        assert self.proc.stdin is not None
        self.proc.stdin.write(row + "\n")
        self.proc.stdin.flush()
        return float(self._read()[row])

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


def busy_processes(count: int) -> list[subprocess.Popen[bytes]]:
    """One process per core spinning in Python: every core busy, as fitness workers keep it."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for proc in processes:
        proc.kill()
    for proc in processes:
        proc.wait()


def measure(mode: str, no_threadpoolctl: bool, rows: list[str], repeats: int) -> dict[str, Any]:
    extra = {"NPEVOGRAD_THREADPOOLCTL": "0"} if no_threadpoolctl else {}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    children = {name: Child(mode, {**env, **extra}) for name, env in CONFIGS.items()}
    times: dict[str, dict[str, list[float]]] = {
        row: {f"{c}_{state}": [] for c in children for state in ("idle", "loaded")} for row in rows
    }
    loads: list[float] = []
    try:
        for _ in range(repeats):
            for state in ("idle", "loaded"):
                busy = busy_processes(cores) if state == "loaded" else []
                try:
                    time.sleep(0.2 if busy else 0)  # the busy processes are running
                    loads.append(os.getloadavg()[0])
                    for row in rows:
                        for name, c in children.items():
                            times[row][f"{name}_{state}"].append(c.time(row))
                finally:
                    stop(busy)
    finally:
        for c in children.values():
            c.close()
    result: dict[str, Any] = {
        "cores": cores,
        "threadpoolctl": not no_threadpoolctl,
        "plans": {name: c.info for name, c in children.items()},
        "load_average": [min(loads), max(loads)],
        "rows": {},
    }
    for row, t in times.items():
        r: dict[str, Any] = {key: statistics.median(v) for key, v in t.items()}
        r["per_repeat_s"] = t  # every repeat's time, in the JSON: a wide quartile can be read repeat by repeat
        for key, num, den in (
            ("loaded_over_idle", "default_loaded", "default_idle"),
            ("loaded_over_single", "default_loaded", "single_loaded"),
            ("idle_over_single", "default_idle", "single_idle"),
        ):
            ratios = [a / b for a, b in zip(t[num], t[den])]
            r[key], r[key + "_iqr"] = statistics.median(ratios), quartiles(ratios)
        result["rows"][row] = r
    return result


def report(result: dict[str, Any]) -> str:
    tpc = "with threadpoolctl" if result["threadpoolctl"] else "without threadpoolctl (NPEVOGRAD_THREADPOOLCTL=0)"
    plan = result["plans"]["default"]["plan"]
    lines = [
        f"{result['cores']} cores, {tpc}; default plan {plan}; load average {result['load_average']}",
        "| row | idle: default / 1 thread | loaded: default / 1 thread | loaded / idle (default) "
        "| loaded default / loaded 1 thread (goal <= 1.2) | idle default / idle 1 thread |",
        "|---|---|---|---|---|---|",
    ]
    for row, r in result["rows"].items():
        lines.append(
            f"| {LABELS[row]} | {r['default_idle'] * 1e3:.0f} / {r['single_idle'] * 1e3:.0f} ms "
            f"| {r['default_loaded'] * 1e3:.0f} / {r['single_loaded'] * 1e3:.0f} ms "
            f"| {r['loaded_over_idle']:.2f} {fmt_iqr(r['loaded_over_idle_iqr'])} "
            f"| {r['loaded_over_single']:.2f} {fmt_iqr(r['loaded_over_single_iqr'])} "
            f"| {r['idle_over_single']:.2f} {fmt_iqr(r['idle_over_single_iqr'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n = 200 and entropy n = 8,000, 3 repeats")
    parser.add_argument("--no-threadpoolctl", action="store_true", help="run with NPEVOGRAD_THREADPOOLCTL=0")
    parser.add_argument("--rows", default=",".join(ROWS), help=f"subset of {','.join(ROWS)}")
    parser.add_argument("--repeats", type=int, default=None, help="override the repeats")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--full", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    if args.child:
        child(mode)
        return {}
    rows = [r for r in args.rows.split(",") if r]
    unknown = set(rows) - set(ROWS)
    if unknown:
        parser.error(f"unknown rows {sorted(unknown)}; choose from {list(ROWS)}")
    size = SIZES[mode]
    print(f"machine: {machine()}; shape {size['shape']}, entropy n = {size['entropy_n']}", flush=True)
    result = measure(mode, args.no_threadpoolctl, rows, args.repeats or size["repeats"])
    result.update(mode=mode, machine=machine())
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
