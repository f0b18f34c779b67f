"""Speed and memory of npevograd against EvoGrad 0.1.2, dense torch, and the hardware floor.

    python benchmarks/run.py --quick      # under a minute on 2 cores
    python benchmarks/run.py              # full sizes (a few minutes)

Four sections (issue 6), each a module of its own in this directory:

1. ``demo`` (``demo_loop.py``): one generation of EvoGrad's interference demos at population 500, d = 1
   (sample, evaluate 5 sin(0.2x) sin(20x), estimate, plain step), npevograd against
   EvoGrad, for the z-scored mean, the variance and the entropy objectives.
2. ``gradient`` (``gradient.py``): ``Mean`` at n = 1000, d = 100,000, float32, against the floor (one
   BLAS ``w @ x`` on the same array) and against EvoGrad on the same samples; fixed
   and learned sigma; samples encoded in a noise table where npevograd has one.
3. ``entropy`` (``entropy.py``): ``Entropy`` on 2-D behaviours, n = 1000 .. 16000, against the floor of
   n(n-1)/2 kernel exponentials in the same dtype, its peak extra memory (tracemalloc),
   and a dense torch float64 version (cdist, exp, autograd) where it fits in memory.
4. ``scaling`` (``scaling.py``): time against n and d, log-log, written to ``benchmarks/results/``.

``--load`` runs ``load.py`` instead of the sections: every threaded row idle and with one
busy process per core, default threads against one thread (issue 24; ``--quick`` and
``--no-threadpoolctl`` are passed on).

Two more comparisons have entry points of their own, because they pin cores and pick
libraries themselves rather than BLAS thread counts; ``--also`` runs them after the
sections, with ``--quick`` passed on:

- ``peers`` (``peers.py``): SNES generations, sampling and import time against evosax
  (jax.jit, lax.scan) and EvoTorch, one core pinned and both cores (issue 15);
- ``quality`` (``quality.py``): evaluations to f < 1e-8 against evosax's and EvoTorch's
  SNES and xNES on four functions (issue 11; about 10 CPU minutes at full size).

A section module has ``SIZES`` (per mode), ``GOALS``, ``run(size, threads)`` (its
figures, a JSON-able dict), ``goal_rows(runs)`` and ``time_lines(sections)`` for the
report (``report.py``); adding one is adding it to ``SECTIONS`` below.  The timing
helpers they share are in ``_timing.py``.

Method.  Every figure is the median over repeats.  Every comparison is measured side
by side in one process: the two callables alternate within each repeat, and the ratio
reported is the median of the per-repeat ratios, so a load spike hits both sides.
Each BLAS thread count runs in its own subprocess with OPENBLAS_NUM_THREADS,
OMP_NUM_THREADS and MKL_NUM_THREADS set before NumPy loads (torch gets
``torch.set_num_threads``); when threadpoolctl is installed the child records what
the BLAS reports, to confirm the setting took.  The load average is recorded before
and after each section: on a shared machine read the figures with it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import demo_loop
import entropy
import gradient
import scaling
from _timing import RESULTS, ROOT, _now, load, machine
from report import format_table, format_times, goal_rows

THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")

# The sections, in the report's order: name -> module.
SECTIONS: dict[str, ModuleType] = {
    "demo": demo_loop,
    "gradient": gradient,
    "entropy": entropy,
    "scaling": scaling,
}
# Comparisons with entry points of their own (module with ``main(argv)``), run by ``--also``.
ALSO = ("peers", "quality")


def child(mode: str, threads: int, sections: list[str]) -> dict[str, Any]:
    """Run the sections at one BLAS thread count (the environment was set by the parent)."""
    sys.path.insert(0, str(ROOT))
    result: dict[str, Any] = {"threads": threads, "blas": _blas_report(), "sections": {}}
    for name in sections:
        module = SECTIONS[name]
        if getattr(module, "SINGLE_THREADED", False) and threads != 1:
            continue  # the picture is single-threaded
        before = load()
        t0 = _now()
        section = module.run(module.SIZES[mode], threads)
        section["wall_s"] = _now() - t0
        section["load_before_after"] = [before, load()]
        result["sections"][name] = section
        print(f"  [{threads} thread(s)] {name}: {section['wall_s']:.1f} s", file=sys.stderr, flush=True)
    return result


def _blas_report() -> Any:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed: set by environment variables only"
    return [{k: i.get(k) for k in ("internal_api", "num_threads", "version")} for i in threadpool_info()]


def run_children(mode: str, threads: list[int], sections: list[str]) -> dict[str, Any]:
    runs = {}
    for t in threads:
        env = dict(os.environ, **{v: str(t) for v in THREAD_VARS})
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        cmd = [sys.executable, __file__, "--child", str(t), "--sections", ",".join(sections)]
        cmd += ["--quick"] if mode == "quick" else []
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, text=True, check=True)
        runs[str(t)] = json.loads(proc.stdout)
    return runs


def metadata(mode: str) -> dict[str, Any]:
    import numpy as np
    import scipy

    meta = {
        "mode": mode,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "cpu": machine(),
        "cores": os.cpu_count(),
    }
    for mod in ("torch", "evograd"):
        try:
            from importlib.metadata import version

            meta[mod] = version(mod)
        except Exception:  # noqa: BLE001 - absent is fine
            meta[mod] = None
    return meta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute on 2 cores")
    parser.add_argument("--threads", default="1,2", help="BLAS thread counts to run, comma-separated (default 1,2)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"subset of {','.join(SECTIONS)}")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/<mode>.json)")
    parser.add_argument("--also", default="", help=f"then run these entry points too: subset of {','.join(ALSO)}")
    parser.add_argument("--load", action="store_true", help="run load.py's table (a busy machine) instead")
    parser.add_argument("--no-threadpoolctl", action="store_true", help="with --load: NPEVOGRAD_THREADPOOLCTL=0")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    if args.load:
        import load

        load.main((["--quick"] if args.quick else []) + (["--no-threadpoolctl"] if args.no_threadpoolctl else []))
        return 0
    sections = [s for s in args.sections.split(",") if s]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {sorted(unknown)}; choose from {list(SECTIONS)}")
    also = [s for s in args.also.split(",") if s]
    if set(also) - set(ALSO):
        parser.error(f"unknown --also {sorted(set(also) - set(ALSO))}; choose from {list(ALSO)}")

    if args.child is not None:
        json.dump(child(mode, args.child, sections), sys.stdout)
        return 0

    t0 = _now()
    threads = [int(t) for t in args.threads.split(",")]
    runs = run_children(mode, threads, sections)
    modules = [SECTIONS[s] for s in sections]
    rows = goal_rows(runs, modules)
    result = {"meta": metadata(mode), "runs": runs, "goals": rows, "wall_s": None}
    print(f"npevograd benchmarks ({mode}), {result['meta']['cpu']}, {result['meta']['cores']} cores")
    print(format_table(rows, [str(t) for t in threads]))
    print()
    print(format_times(runs, modules))
    for name, module in zip(sections, modules):
        drawn = next((run["sections"][name] for run in runs.values() if name in run["sections"]), None)
        if drawn is None or not hasattr(module, "picture"):
            continue
        try:
            result["png"] = module.picture(drawn, mode, result["meta"]["cpu"])
            print(f"\nwrote {result['png']}")
        except ImportError:
            print("\nmatplotlib not installed: no scaling picture")
    result["wall_s"] = _now() - t0
    out = args.out or RESULTS / f"{mode}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out} ({result['wall_s']:.0f} s)")
    for name in also:
        print(f"\n--- {name}.py ---", flush=True)
        # a process of its own: each sets its thread environment before NumPy loads
        script = str(Path(__file__).with_name(f"{name}.py"))
        subprocess.run([sys.executable, script] + (["--quick"] if args.quick else []), check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
