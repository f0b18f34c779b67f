"""Speed and memory of npevograd against EvoGrad 0.1.2, dense torch, and the hardware floor.

    python benchmarks/run.py --quick      # under a minute on 2 cores
    python benchmarks/run.py              # full sizes (a few minutes)

Four sections (issue 6):

1. ``demo``: one generation of EvoGrad's interference demos at population 500, d = 1
   (sample, evaluate 5 sin(0.2x) sin(20x), estimate, plain step), npevograd against
   EvoGrad, for the z-scored mean, the variance and the entropy objectives.
2. ``gradient``: ``Mean`` at n = 1000, d = 100,000, float32, against the floor (one
   BLAS ``w @ x`` on the same array) and against EvoGrad on the same samples; fixed
   and learned sigma; samples encoded in a noise table where npevograd has one.
3. ``entropy``: ``Entropy`` on 2-D behaviours, n = 1000 .. 16000, against the floor of
   n(n-1)/2 kernel exponentials in the same dtype, its peak extra memory (tracemalloc),
   and a dense torch float64 version (cdist, exp, autograd) where it fits in memory.
4. ``scaling``: time against n and d, log-log, written to ``benchmarks/results/``.

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
import gc
import json
import logging
import math
import os
import platform
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS")

# Sizes per mode.  Quick keeps every section but shrinks the arrays.
SIZES: dict[str, dict[str, Any]] = {
    "quick": {
        "demo_repeats": 7,
        "demo_inner": {"npevograd": 20, "evograd": 2},
        "gradient_shape": (1000, 10_000),
        "gradient_repeats": 5,
        "entropy_n": [1000, 3000],
        "entropy_repeats": 3,
        "torch_max_bytes": 1.5e9,
        "scaling_nd": {
            "n": [250, 500, 1000, 2000],
            "d": [2_500, 5_000, 10_000, 20_000],
            "fixed_n": 500,
            "fixed_d": 5_000,
        },
        "scaling_entropy_n": [500, 1000, 2000],
        "scaling_k": [1, 2, 8],
        "scaling_repeats": 3,
    },
    "full": {
        "demo_repeats": 15,
        "demo_inner": {"npevograd": 50, "evograd": 3},
        "gradient_shape": (1000, 100_000),
        "gradient_repeats": 7,
        "entropy_n": [1000, 2000, 4000, 8000, 16000],
        "entropy_repeats": 5,
        "torch_max_bytes": 6e9,
        "scaling_nd": {
            "n": [250, 500, 1000, 2000, 4000],
            "d": [6_250, 12_500, 25_000, 50_000, 100_000],
            "fixed_n": 1000,
            "fixed_d": 25_000,
        },
        "scaling_entropy_n": [1000, 2000, 4000, 8000, 16000],
        "scaling_k": [1, 2, 8],
        "scaling_repeats": 3,
    },
}

# Goals of issue 6, as (comparison key, goal, kind): "min" = ratio must reach goal,
# "max" = ratio (or MB) must stay at or under it.
GOALS = {
    "demo/mean": (100.0, "min"),
    "demo/variance": (100.0, "min"),
    "demo/entropy": (10.0, "min"),
    "gradient/fixed_sigma": (1.3, "max"),
    "gradient/learned_sigma": (3.0, "max"),
    "gradient/encoded": (2.0, "max"),
    "entropy/floor": (3.0, "max"),
    "entropy/peak_mb_16000": (64.0, "max"),
}


# --------------------------------------------------------------------------- timing


def _now() -> float:
    return time.perf_counter()


def time_pair(
    first: Callable[[], object], second: Callable[[], object], repeats: int, inner: tuple[int, int] = (1, 1)
) -> dict[str, float]:
    """Alternate ``first`` and ``second`` ``repeats`` times; per-call medians and the median ratio.

    ``inner`` calls of each are timed together (for calls far shorter than the timer's
    resolution and scheduling noise).  ``ratio`` = median over repeats of second / first.
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
    return {"first_s": _median(a_times), "second_s": _median(b_times), "ratio": _median(ratios), "repeats": repeats}


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


# --------------------------------------------------------------------------- 1. demo


def bench_demo(size: dict[str, Any], threads: int) -> dict[str, Any]:
    import numpy as np

    import npevograd as ng

    out: dict[str, Any] = {}
    torch = import_torch(threads)
    evo = import_evograd() if torch is not None else None
    npop, sigma = 500, 0.5
    rates = {"mean": 0.03, "variance": 0.03, "entropy": 0.10}  # EvoGrad's demo settings

    def fun_np(x: Any) -> Any:
        return 5 * np.sin(0.2 * x) * np.sin(20 * x)

    estimators = {"mean": ng.Mean(shaping=ng.zscore), "variance": ng.Variance(), "entropy": ng.Entropy(1.0)}

    for name, estimator in estimators.items():
        rng = np.random.default_rng(0)
        p = ng.Normal(np.array([1.0]), sigma)
        lr = rates[name]

        def ours(p=p, rng=rng, estimator=estimator, lr=lr) -> None:
            x = p.sample(npop, rng)
            est = estimator(fun_np(x), x, p)
            p.params["mu"] += lr * est.grad["mu"]

        if evo is None:
            t = time_one(ours, size["demo_repeats"])
            out[name] = {"npevograd_s": t, "note": "EvoGrad or torch not importable: no comparison"}
            continue
        theirs = _evograd_generation(name, evo, torch, npop, sigma, lr)
        r = time_pair(
            theirs, ours, size["demo_repeats"], (size["demo_inner"]["evograd"], size["demo_inner"]["npevograd"])
        )
        out[name] = {"evograd_s": r["first_s"], "npevograd_s": r["second_s"], "speedup": 1 / r["ratio"]}
    return out


def _evograd_generation(name: str, evo: tuple[Any, Any], torch: Any, npop: int, sigma: float, lr: float) -> Any:
    """One generation of EvoGrad's demo ``name``, written as its demos write it."""
    import numpy as np
    import scipy.spatial

    expectation, Normal = evo
    mu = torch.tensor([1.0], requires_grad=True)
    p = Normal(mu, sigma, random_state=np.random.RandomState(0))

    def fun(x: Any) -> Any:
        return 5 * torch.sin(0.2 * x) * torch.sin(20 * x)

    def generation() -> None:
        sample = p.sample(npop)
        values = fun(sample)
        values = (values - values.mean()) / values.std()
        if name == "mean":
            objective = expectation(values, sample, p=p)
        elif name == "variance":
            objective = expectation(values**2, sample, p=p)
        else:  # max_ent_interference.py (its scipy.exp is np.exp, removed from SciPy since)
            dists = scipy.spatial.distance.squareform(scipy.spatial.distance.pdist(values, "sqeuclidean"))
            kernel = torch.tensor(np.exp(-dists / 1.0**2), dtype=torch.float32)
            p_x = expectation(kernel, sample, p=p)
            objective = expectation(-torch.log(p_x), sample, p=p)
        objective.backward()
        with torch.no_grad():
            mu.add_(lr * mu.grad)
            mu.grad.zero_()

    return generation


# --------------------------------------------------------------------------- 2. gradient


def bench_gradient(size: dict[str, Any], threads: int) -> dict[str, Any]:
    import numpy as np

    import npevograd as ng

    n, d = size["gradient_shape"]
    repeats = size["gradient_repeats"]
    rng = np.random.default_rng(1)
    mu = (0.1 * rng.standard_normal(d)).astype(np.float32)
    fixed = ng.Normal(mu, 0.5)
    learned = ng.Normal(mu, np.full(d, 0.5, dtype=np.float32), learn_sigma=True)
    x = fixed.sample(n, rng)
    f = rng.standard_normal(n).astype(np.float32)
    w = f / n
    mean = ng.Mean()
    out: dict[str, Any] = {"n": n, "d": d, "dtype": "float32", "sample_matrix_mb": x.nbytes / 2**20}

    def floor() -> object:
        return w @ x

    r = time_pair(floor, lambda: mean(f, x, fixed), repeats)
    out["fixed_sigma"] = {"floor_s": r["first_s"], "npevograd_s": r["second_s"], "ratio_to_floor": r["ratio"]}
    r = time_pair(floor, lambda: mean(f, x, learned), repeats)
    out["learned_sigma"] = {
        "floor_s": r["first_s"],
        "npevograd_s": r["second_s"],
        "ratio_to_floor": r["ratio"],
        "note": "diagonal sigma (d,) learned: mu and sigma gradients",
    }

    torch = import_torch(threads)
    evo = import_evograd() if torch is not None else None
    if evo is None:
        out["evograd"] = {"note": "EvoGrad or torch not importable: no comparison"}
    else:
        expectation, Normal = evo
        mu_t = torch.tensor(mu, requires_grad=True)
        p_t = Normal(mu_t, 0.5)
        x_t, f_t = torch.from_numpy(x), torch.from_numpy(f)  # the same samples, no copy

        def evograd_grad() -> object:
            expectation(f_t, x_t, p=p_t).backward()
            g = mu_t.grad.clone()
            mu_t.grad = None
            return g

        def evograd_sample() -> object:
            return p_t.sample(n)

        r = time_pair(evograd_sample, lambda: fixed.sample(n, rng), max(3, repeats // 2))
        out["sampling"] = {
            "evograd_s": r["first_s"],
            "npevograd_s": r["second_s"],
            "speedup": 1 / r["ratio"],
            "note": "(n, d) float32 samples: EvoGrad copies noise-table windows, npevograd draws fresh normals",
        }
        ours = mean(f, x, fixed).grad["mu"]
        err = float(np.max(np.abs(evograd_grad().numpy() - ours)) / np.max(np.abs(ours)))
        r = time_pair(evograd_grad, lambda: mean(f, x, fixed), repeats)
        out["evograd"] = {
            "evograd_s": r["first_s"],
            "npevograd_s": r["second_s"],
            "speedup": 1 / r["ratio"],
            "max_rel_diff": err,
            "note": "fixed sigma; EvoGrad 0.1.2 has no gradient for sigma",
        }

    table_cls = noise_table_api()
    if table_cls is None:
        out["encoded"] = {"note": "skipped: this npevograd has no NoiseTable / encoded samples yet"}
    else:
        table = table_cls(10_000_000 if d <= 1_000_000 else 4 * d, 42, shared=False)
        p_enc = ng.Normal(mu, 0.5, noise=table)
        enc = p_enc.sample(n, rng, encode=True)
        x_dec = p_enc.decode(enc)
        err = float(
            np.max(np.abs(mean(f, enc, p_enc).grad["mu"] - mean(f, x_dec, p_enc).grad["mu"]))
            / np.max(np.abs(mean(f, x_dec, p_enc).grad["mu"]))
        )
        if evo is not None:
            r = time_pair(evograd_sample, lambda: p_enc.sample(n, rng), max(3, repeats // 2))
            out["sampling_table"] = {
                "evograd_s": r["first_s"],
                "npevograd_s": r["second_s"],
                "speedup": 1 / r["ratio"],
                "note": "both copy windows of a float32 noise table into an (n, d) matrix",
            }
        peak = peak_extra_bytes(lambda: mean(f, enc, p_enc))
        r = time_pair(lambda: w @ x_dec, lambda: mean(f, enc, p_enc), repeats)
        out["encoded"] = {
            "floor_s": r["first_s"],
            "npevograd_s": r["second_s"],
            "ratio_to_floor": r["ratio"],
            "peak_extra_mb": peak / 2**20,
            "max_rel_diff_vs_decoded": err,
            "note": f"{table.size:,}-entry float32 table; floor = w @ x on the decoded (n, d) matrix",
        }
        del x_dec
    return out


# --------------------------------------------------------------------------- 3. entropy


def exp_floor(exponents: Any, count: int) -> Callable[[], None]:
    """``count`` exponentials in exponents' dtype, streamed over one buffer of real exponents."""
    import numpy as np

    buf = np.empty_like(exponents)
    m = exponents.shape[0]
    full, rest = divmod(count, m)

    def run() -> None:
        for _ in range(full):
            np.exp(exponents, out=buf)
        if rest:
            np.exp(exponents[:rest], out=buf[:rest])

    return run


def pair_exponents(z: Any, count: int, rng: Any) -> Any:
    """-||z_i - z_j||^2 (bandwidth 1) for ``count`` random pairs i < j, in z's dtype."""
    import numpy as np

    n = z.shape[0]
    i = rng.integers(0, n - 1, count)
    j = i + 1 + (rng.random(count) * (n - 1 - i)).astype(np.int64)
    diff = z[i].astype(np.float64) - z[j]
    return -np.einsum("ij,ij->i", diff, diff).astype(z.dtype)


def bench_entropy(size: dict[str, Any], threads: int) -> dict[str, Any]:
    import numpy as np

    import npevograd as ng

    torch = import_torch(threads)
    rng = np.random.default_rng(2)
    rows = []
    for n in size["entropy_n"]:
        for dtype in (np.float64, np.float32):
            b = rng.standard_normal((n, 2)).astype(dtype)
            z = ng.zscore(b)
            estimator = ng.Entropy(1.0)
            pairs = n * (n - 1) // 2
            floor = exp_floor(pair_exponents(z, min(pairs, 1 << 21), rng), pairs)

            def ours(b: Any = b, n: int = n, estimator: Any = estimator) -> object:
                return estimator.weights(b, n)

            r = time_pair(floor, ours, size["entropy_repeats"])
            peak = peak_extra_bytes(ours)
            path = "kept" if _keeps_kernel(n, dtype) else "recomputed"
            row = {
                "n": n,
                "dtype": np.dtype(dtype).name,
                "path": path,
                "floor_s": r["first_s"],
                "npevograd_s": r["second_s"],
                "ratio_to_floor": r["ratio"],
                "exponentials_per_pair": 1 if path == "kept" else 2,
                "exponents": "gemm" if _uses_gemm(z) else "differences",
                "peak_extra_mb": peak / 2**20,
                "dense_kernel_mb": n * n * np.dtype(dtype).itemsize / 2**20,
            }
            if dtype == np.float64:
                row.update(_torch_entropy(torch, b, estimator, n, size))
            rows.append(row)
    return {"k": 2, "bandwidth": 1.0, "rows": rows}


def _uses_gemm(z: Any) -> bool:
    from npevograd import _kde

    return bool(_kde._Tiles(z, 1.0).gram)


def _keeps_kernel(n: int, dtype: Any) -> bool:
    from npevograd import _kde

    return _kde.keeps_kernel(n, dtype)


def _torch_entropy(torch: Any, b: Any, estimator: Any, n: int, size: dict[str, Any]) -> dict[str, Any]:
    """Dense torch float64: z-score, cdist, exp, the nested KDE objective, autograd to the ratios."""
    import numpy as np

    if torch is None:
        return {"torch_note": "torch not importable"}
    need = 6 * n * n * 8  # cdist, its square, the kernel, K * r, and autograd's saved copies
    if need > size["torch_max_bytes"]:
        return {"torch_note": f"skipped: needs about {need / 2**30:.1f} GB"}
    bt = torch.from_numpy(np.asarray(b, dtype=np.float64))

    def dense() -> Any:
        z = (bt - bt.mean(0)) / bt.std(0)
        r = torch.ones(n, dtype=torch.float64, requires_grad=True)
        kernel = torch.exp(-(torch.cdist(z, z) ** 2))
        p_hat = (kernel * r[:, None]).mean(0)
        objective = (-torch.log(p_hat) * r).mean()
        objective.backward()
        return r.grad

    w = estimator.weights(b, n)[1]
    err = float(np.max(np.abs(dense().numpy() - w)) / np.max(np.abs(w)))
    t = time_pair(dense, lambda: estimator.weights(b, n), size["entropy_repeats"])
    return {"torch_s": t["first_s"], "torch_speedup": 1 / t["ratio"], "torch_max_rel_diff": err}


# --------------------------------------------------------------------------- 4. scaling


def bench_scaling(size: dict[str, Any], threads: int) -> dict[str, Any]:
    import numpy as np

    import npevograd as ng

    rng = np.random.default_rng(3)
    repeats = size["scaling_repeats"]
    nd = size["scaling_nd"]
    mean = ng.Mean()
    grad_rows = []
    for vary, values in (("n", nd["n"]), ("d", nd["d"])):
        for v in values:
            n, d = (v, nd["fixed_d"]) if vary == "n" else (nd["fixed_n"], v)
            p = ng.Normal(np.zeros(d, dtype=np.float32), 0.5)
            x = p.sample(n, rng)
            f = rng.standard_normal(n).astype(np.float32)
            seconds = time_one(lambda f=f, x=x, p=p: mean(f, x, p), repeats)
            grad_rows.append({"vary": vary, "n": n, "d": d, "s": seconds})
    ent_rows = []
    for k in size["scaling_k"]:
        for n in size["scaling_entropy_n"]:
            b = rng.standard_normal((n, k))
            blocked = ng.Entropy(1.0, block_size=_default_block())
            seconds = time_one(lambda b=b, n=n, blocked=blocked: blocked.weights(b, n), repeats)
            ent_rows.append({"k": k, "n": n, "s": seconds})
    return {"gradient": grad_rows, "entropy": ent_rows, "entropy_note": "blocked path forced (block_size=BLOCK)"}


def _default_block() -> int:
    from npevograd import _kde

    return _kde.BLOCK


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of log y against log x."""
    lx = [math.log(v) for v in xs]
    ly = [math.log(v) for v in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def plot_scaling(scaling: dict[str, Any], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    def human(v: float, _: object = None) -> str:
        for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
            if v >= scale:
                return f"{v / scale:g}{suffix}"
        return f"{v:g}"

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.6))
    for vary, marker in (("n", "o"), ("d", "s")):
        rows = [r for r in scaling["gradient"] if r["vary"] == vary]
        xs = [r["n"] * r["d"] for r in rows]
        ys = [r["s"] * 1e3 for r in rows]
        fixed = f"d = {rows[0]['d']:,}" if vary == "n" else f"n = {rows[0]['n']:,}"
        left.loglog(xs, ys, marker + "-", label=f"vary {vary} ({fixed}): slope {slope(xs, ys):.2f}")
    xs = sorted({r["n"] * r["d"] for r in scaling["gradient"]})
    ref = [r for r in scaling["gradient"] if r["n"] * r["d"] == xs[-1]][0]["s"] * 1e3
    left.loglog(xs, [ref * v / xs[-1] for v in xs], "k:", label="slope 1: O(n d)")
    left.set_xlabel("n · d  (entries of the sample matrix)")
    left.set_ylabel("time per gradient (ms)")
    left.set_title("Mean gradient, float32, fixed sigma")
    left.legend(fontsize=8)
    left.grid(True, which="both", alpha=0.3)

    for k in sorted({r["k"] for r in scaling["entropy"]}):
        rows = [r for r in scaling["entropy"] if r["k"] == k]
        xs = [r["n"] for r in rows]
        ys = [r["s"] for r in rows]
        right.loglog(xs, ys, "o-", label=f"k = {k}: slope {slope(xs, ys):.2f}")
    rows = [r for r in scaling["entropy"] if r["k"] == min(r2["k"] for r2 in scaling["entropy"])]
    xs = [r["n"] for r in rows]
    right.loglog(xs, [rows[-1]["s"] * (v / xs[-1]) ** 2 for v in xs], "k:", label="slope 2: O(n² k)")
    right.set_xlabel("n  (population)")
    right.set_ylabel("time per estimate (s)")
    right.set_title("Entropy weights, float64, kernel recomputed in tiles")
    right.legend(fontsize=8)
    right.grid(True, which="both", alpha=0.3)
    for axis in (left.xaxis, left.yaxis, right.xaxis, right.yaxis):
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(human))
        axis.set_minor_formatter(NullFormatter())
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --------------------------------------------------------------------------- driver

SECTIONS: dict[str, Callable[[dict[str, Any], int], dict[str, Any]]] = {
    "demo": bench_demo,
    "gradient": bench_gradient,
    "entropy": bench_entropy,
    "scaling": bench_scaling,
}


def child(mode: str, threads: int, sections: list[str]) -> dict[str, Any]:
    """Run the sections at one BLAS thread count (the environment was set by the parent)."""
    sys.path.insert(0, str(ROOT))
    size = SIZES[mode]
    result: dict[str, Any] = {"threads": threads, "blas": _blas_report(), "sections": {}}
    for name in sections:
        if name == "scaling" and threads != 1:
            continue  # the picture is single-threaded
        before = load()
        t0 = _now()
        section = SECTIONS[name](size, threads)
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
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
    }
    for mod in ("torch", "evograd"):
        try:
            from importlib.metadata import version

            meta[mod] = version(mod)
        except Exception:  # noqa: BLE001 - absent is fine
            meta[mod] = None
    return meta


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


# --------------------------------------------------------------------------- report


def _fmt_s(s: float | None) -> str:
    if s is None:
        return "-"
    return f"{s * 1e3:.3g} ms" if s < 1 else f"{s:.3g} s"


def goal_rows(runs: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per comparison: figures per thread count, the goal, and whether it is met."""

    def get(run: dict[str, Any], path: list[Any]) -> Any:
        node: Any = run["sections"]
        for key in path:
            if isinstance(key, tuple):  # select from a list of rows
                node = next((r for r in node if all(r.get(k) == v for k, v in key)), None)
            else:
                node = node.get(key) if isinstance(node, dict) else None
            if node is None:
                return None
        return node

    spec: list[tuple[str, str, list[Any], str]] = [
        ("demo/mean", "demo gen. mean (z-scored): EvoGrad / npevograd", ["demo", "mean", "speedup"], "x"),
        ("demo/variance", "demo gen. variance: EvoGrad / npevograd", ["demo", "variance", "speedup"], "x"),
        ("demo/entropy", "demo gen. entropy: EvoGrad / npevograd", ["demo", "entropy", "speedup"], "x"),
        (
            "gradient/fixed_sigma",
            "gradient fixed sigma / floor w@x",
            ["gradient", "fixed_sigma", "ratio_to_floor"],
            "x",
        ),
        (
            "gradient/learned_sigma",
            "gradient learned sigma / floor w@x",
            ["gradient", "learned_sigma", "ratio_to_floor"],
            "x",
        ),
        ("gradient/evograd", "gradient: EvoGrad / npevograd", ["gradient", "evograd", "speedup"], "x"),
        ("gradient/sampling", "sampling (n, d): EvoGrad / npevograd", ["gradient", "sampling", "speedup"], "x"),
        (
            "gradient/sampling_table",
            "sampling (n, d) from noise table: EvoGrad / npevograd",
            ["gradient", "sampling_table", "speedup"],
            "x",
        ),
        ("gradient/encoded", "gradient encoded / floor w@x", ["gradient", "encoded", "ratio_to_floor"], "x"),
    ]
    rows = []
    for key, label, path, unit in spec:
        rows.append(_row(key, label, {t: get(run, path) for t, run in runs.items()}, unit))
    entropy_n = sorted({r["n"] for run in runs.values() for r in get(run, ["entropy", "rows"]) or []})
    for n in entropy_n:
        for dtype in ("float64", "float32"):
            sel = (("n", n), ("dtype", dtype))
            rows.append(
                _row(
                    "entropy/floor",
                    f"entropy n={n} {dtype} / floor n(n-1)/2 exp",
                    {t: get(run, ["entropy", "rows", sel, "ratio_to_floor"]) for t, run in runs.items()},
                    "x",
                )
            )
            peak_key = "entropy/peak_mb_16000" if n == 16000 else "entropy/peak_mb"
            rows.append(
                _row(
                    peak_key,
                    f"entropy n={n} {dtype} peak extra memory",
                    {t: get(run, ["entropy", "rows", sel, "peak_extra_mb"]) for t, run in runs.items()},
                    "MB",
                )
            )
            if dtype == "float64":
                speed = {t: get(run, ["entropy", "rows", sel, "torch_speedup"]) for t, run in runs.items()}
                if any(v is not None for v in speed.values()):
                    rows.append(_row("entropy/torch", f"entropy n={n}: dense torch f64 / npevograd", speed, "x"))
    return rows


def _row(key: str, label: str, values: dict[str, Any], unit: str) -> dict[str, Any]:
    goal = GOALS.get(key)
    met = None
    present = [v for v in values.values() if v is not None]
    if goal is not None and present:
        target, kind = goal
        met = all(v >= target for v in present) if kind == "min" else all(v <= target for v in present)
    return {"key": key, "label": label, "values": values, "unit": unit, "goal": goal, "met": met}


def format_table(rows: list[dict[str, Any]], threads: list[str]) -> str:
    head = ["comparison"] + [f"{t} BLAS thread{'s' if t != '1' else ''}" for t in threads] + ["goal", "met"]
    lines = []
    for row in rows:
        cells = [row["label"]]
        for t in threads:
            v = row["values"].get(t)
            cells.append("-" if v is None else (f"{v:.3g}x" if row["unit"] == "x" else f"{v:.3g} MB"))
        goal = row["goal"]
        if goal is None:
            cells.append("")
        else:
            unit = "x" if row["unit"] == "x" else " MB"
            cells.append(f"{'>=' if goal[1] == 'min' else '<='} {goal[0]:g}{unit}")
        cells.append("" if row["met"] is None else ("yes" if row["met"] else "NO"))
        lines.append(cells)
    widths = [max(len(c) for c in col) for col in zip(head, *lines)]
    out = ["| " + " | ".join(h.ljust(w) for h, w in zip(head, widths)) + " |"]
    out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    out += ["| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |" for cells in lines]
    return "\n".join(out)


def format_times(runs: dict[str, Any]) -> str:
    """The absolute medians behind the ratios, per thread count."""
    lines = []
    for t, run in runs.items():
        s = run["sections"]
        lines.append(f"{t} BLAS thread(s):")
        for name, r in s.get("demo", {}).items():
            if isinstance(r, dict) and "npevograd_s" in r:
                lines.append(
                    f"  demo {name:9s} npevograd {_fmt_s(r['npevograd_s'])}, EvoGrad {_fmt_s(r.get('evograd_s'))}"
                )
        g = s.get("gradient")
        if g:
            for case in ("fixed_sigma", "learned_sigma", "encoded"):
                r = g.get(case, {})
                if "npevograd_s" in r:
                    lines.append(
                        f"  gradient n={g['n']} d={g['d']} {case:13s} npevograd {_fmt_s(r['npevograd_s'])},"
                        f" floor {_fmt_s(r['floor_s'])}"
                    )
                elif "note" in r:
                    lines.append(f"  gradient {case}: {r['note']}")
            for case in ("sampling", "sampling_table"):
                r = g.get(case, {})
                if "evograd_s" in r:
                    lines.append(f"  {case:14s} EvoGrad {_fmt_s(r['evograd_s'])}, npevograd {_fmt_s(r['npevograd_s'])}")
            r = g.get("evograd", {})
            if "evograd_s" in r:
                lines.append(f"  gradient EvoGrad {_fmt_s(r['evograd_s'])} (max rel diff {r['max_rel_diff']:.1e})")
        e = s.get("entropy")
        if e:
            for r in e["rows"]:
                extra = f", torch {_fmt_s(r['torch_s'])}" if "torch_s" in r else ""
                note = f" ({r['torch_note']})" if "torch_note" in r else ""
                lines.append(
                    f"  entropy n={r['n']:5d} {r['dtype']} {r['path']:10s} {r['exponents']:11s}"
                    f" npevograd {_fmt_s(r['npevograd_s'])},"
                    f" floor {_fmt_s(r['floor_s'])}{extra}{note}"
                )
        for name, sec in s.items():
            lines.append(f"  [{name}: {sec['wall_s']:.1f} s, load average {sec['load_before_after']}]")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, under a minute on 2 cores")
    parser.add_argument("--threads", default="1,2", help="BLAS thread counts to run, comma-separated (default 1,2)")
    parser.add_argument("--sections", default=",".join(SECTIONS), help=f"subset of {','.join(SECTIONS)}")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default benchmarks/results/<mode>.json)")
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    mode = "quick" if args.quick else "full"
    sections = [s for s in args.sections.split(",") if s]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {sorted(unknown)}; choose from {list(SECTIONS)}")

    if args.child is not None:
        json.dump(child(mode, args.child, sections), sys.stdout)
        return 0

    t0 = _now()
    threads = [int(t) for t in args.threads.split(",")]
    runs = run_children(mode, threads, sections)
    rows = goal_rows(runs)
    result = {"meta": metadata(mode), "runs": runs, "goals": rows, "wall_s": None}
    print(f"npevograd benchmarks ({mode}), {result['meta']['cpu']}, {result['meta']['cores']} cores")
    print(format_table(rows, [str(t) for t in threads]))
    print()
    print(format_times(runs))
    scaling = next((run["sections"]["scaling"] for run in runs.values() if "scaling" in run["sections"]), None)
    if scaling is not None:
        png = RESULTS / ("scaling.png" if mode == "full" else "scaling-quick.png")
        try:
            plot_scaling(scaling, png, f"npevograd scaling ({mode} run, 1 BLAS thread, {result['meta']['cpu']})")
            result["png"] = str(png.relative_to(ROOT))
            print(f"\nwrote {png.relative_to(ROOT)}")
        except ImportError:
            print("\nmatplotlib not installed: no scaling picture")
    result["wall_s"] = _now() - t0
    out = args.out or RESULTS / f"{mode}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(f"wrote {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out} ({result['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
