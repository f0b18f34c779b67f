"""Compare npevograd with the reference values (committed, or computed live) and report the errors.

    python tests/reference/check.py           # the committed values: NumPy + npevograd only
    python tests/reference/check.py --live    # also fresh cases from torch and EvoGrad

Every comparison is one array (a value, one parameter's gradient, log_prob or one
parameter's score) of npevograd against the reference on the same samples.  It
passes when max |a - b| / scale <= rtol, where scale is the term scale
S = sum_i |w_i| |s_i| for gradients, max(|J|, sum_i |w_i|) for values (see
npevograd/testing.py), and max |b| over the array for log_prob and score.

Tolerances: EvoGrad computes in float32, so npevograd (float64 and float32 runs)
must agree with it to rtol 1e-4 of the term scale; torch.distributions is float64,
so the float64 run must agree to 1e-9 and the float32 run to 1e-4.  Also printed:
the largest elementwise relative error |a - b| / |b| over the entries with
|b| >= 1e-3 * scale (an entry below that is a near-total cancellation of its terms,
e.g. the value of a mean of z-scores, exactly 0 in exact arithmetic, where a
relative error means nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass

import numpy as np

import npevograd as ng

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PATH = os.path.join(HERE, "reference.npz")
EVOGRAD_RTOL = 1e-4
TORCH_RTOL = {"float64": 1e-9, "float32": 1e-4}
DTYPES = ("float64", "float32")
REL_FLOOR = 1e-3  # max rel err is reported over entries with |b| >= REL_FLOOR * scale


@dataclass(frozen=True)
class Comparison:
    reference: str  # "evograd" or "torch"
    dtype: str  # dtype npevograd ran in
    case: str
    quantity: str
    max_abs: float  # max |a - b|
    max_rel: float  # max |a - b| / |b| over entries with |b| >= REL_FLOOR * scale
    max_scaled: float  # max |a - b| / scale: the figure the tolerance applies to
    rtol: float

    @property
    def passed(self) -> bool:
        return bool(self.max_scaled <= self.rtol)

    def __str__(self) -> str:
        return (f"[{self.reference} {self.dtype}] {self.case} {self.quantity}: max abs err {self.max_abs:.3g}, "
                f"max rel err {self.max_rel:.3g}, err/scale {self.max_scaled:.3g} (rtol {self.rtol:g})")


def compare(reference: str, dtype: str, case: str, quantity: str, actual, expected, scale, rtol: float) -> Comparison:
    a = np.asarray(actual, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    if a.shape != b.shape:
        raise AssertionError(f"{case} {quantity}: npevograd shape {a.shape}, reference shape {b.shape}")
    err = np.abs(a - b)
    scale = np.broadcast_to(np.asarray(scale, dtype=np.float64), b.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(err == 0, 0.0, err / scale)
        # elementwise relative error, only where the entry is not a near-total cancellation
        rel = np.where(np.abs(b) >= REL_FLOOR * scale, err / np.abs(b), 0.0)
    return Comparison(reference, dtype, case, quantity, float(np.max(err, initial=0.0)),
                      float(np.max(rel, initial=0.0)), float(np.max(scaled, initial=0.0)), rtol)


def load(path: str = DEFAULT_PATH) -> tuple[dict, dict]:
    """(meta, arrays) from a reference file; arrays keyed ``evograd/<i>/<name>`` and ``torch/<i>/<name>``."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return json.loads(str(arrays.pop("meta"))), arrays


def case_arrays(arrays: dict, reference: str, i: int) -> dict:
    prefix = f"{reference}/{i}/"
    return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}


def objective_label(obj: dict) -> str:
    return " ".join([obj["kind"]] + [f"{k}={obj[k]:g}" for k in ("k", "h", "m") if k in obj])


def run_objective(obj: dict, p: ng.Distribution, x, fitness, behaviours, values2) -> ng.Estimate:
    """npevograd's estimate for one objective spec (the same spec the generator used)."""
    kind = obj["kind"]
    if kind == "mean":
        return ng.Mean()(fitness, x, p)
    if kind == "mean_z":
        return ng.Mean(shaping=ng.zscore)(fitness, x, p)
    if kind == "mean_ranks":
        return ng.Mean(shaping=ng.centered_ranks)(fitness, x, p)
    if kind == "expect":
        return ng.expectation(values2[:, : obj["m"]], x, p)
    b = behaviours[:, 0] if obj["k"] == 1 else behaviours[:, : obj["k"]]  # (n,) and (n, k) both
    if kind == "var":
        return ng.Variance()(b, x, p)
    if kind == "ent":
        return ng.Entropy(bandwidth=obj["h"])(b, x, p)
    raise ValueError(f"unknown objective kind {kind!r}")


def _rows(estimate: ng.Estimate, names: list[str], m: int) -> tuple[np.ndarray, dict]:
    """Value as (m,), gradient as name -> (m, size): the stored packing."""
    value = np.atleast_1d(np.asarray(estimate.value, dtype=np.float64))
    return value, {k: np.asarray(estimate.grad[k]).reshape(m, -1) for k in names}


def _split(flat: np.ndarray, layout: list) -> dict:
    """Columns of a packed (rows, P) array split by parameter: name -> (rows, size)."""
    out, start = {}, 0
    for name, shape in layout:
        size = int(np.prod(shape, dtype=int))
        out[name] = flat[..., start : start + size]
        start += size
    return out


def evograd_comparisons(meta: dict, a: dict, dtype: str) -> list[Comparison]:
    """npevograd on EvoGrad's samples against EvoGrad's float32 values and mu-gradients."""
    dt = np.dtype(dtype)
    cls = ng.PairedNormal if meta["paired"] else ng.Normal
    p = cls(a["mu"].astype(dt), sigma=meta["sigma"])
    x, fitness, behaviours = (a[k].astype(dt) for k in ("x", "fitness", "behaviours"))
    case = f"d={meta['d']} n={meta['n']} sigma={meta['sigma']:g}{' paired' if meta['paired'] else ''}"
    out = []
    for j, obj in enumerate(meta["objectives"]):
        est = run_objective(obj, p, x, fitness, behaviours, None)
        label = objective_label(obj)
        out.append(compare("evograd", dtype, case, f"{label} value", est.value, a["values"][j],
                           a["value_scale"][j], EVOGRAD_RTOL))
        out.append(compare("evograd", dtype, case, f"{label} grad['mu']", est.grad["mu"], a["grads"][j],
                           a["scale"][j], EVOGRAD_RTOL))
    return out


def make_distribution(meta: dict, a: dict, dtype: str) -> ng.Distribution:
    """The npevograd distribution of a torch case, parameters cast to ``dtype`` (exact)."""
    dt = np.dtype(dtype)
    params = {name: a[f"param_{name}"].astype(dt) for name, _ in meta["params"]}
    fixed = meta["fixed"]
    kind = meta["type"]
    if kind in ("normal", "paired"):
        cls = ng.PairedNormal if kind == "paired" else ng.Normal
        sigma = params["sigma"] if meta["learn_sigma"] else np.asarray(fixed["sigma"], dtype=dt)
        return cls(params["mu"], sigma=sigma, learn_sigma=meta["learn_sigma"])
    if kind == "mix":
        return ng.MixNormal(params["mus"], sigma=np.asarray(fixed["sigma"], dtype=dt))
    if kind == "bernoulli":
        return ng.Bernoulli(params["logits"])
    if kind == "categorical":
        return ng.Categorical(params["logits"])
    raise ValueError(f"unknown distribution type {kind!r}")


def torch_comparisons(meta: dict, a: dict, dtype: str) -> list[Comparison]:
    """npevograd against the float64 torch.distributions reference on the stored samples."""
    dt = np.dtype(dtype)
    rtol = TORCH_RTOL[dtype]
    p = make_distribution(meta, a, dtype)
    x = a["x"] if a["x"].dtype == np.int64 else a["x"].astype(dt)
    fitness, behaviours, values2 = (a[k].astype(dt) for k in ("fitness", "behaviours", "values2"))
    names = [name for name, _ in meta["params"]]
    case = meta["name"]
    n = x.shape[0]
    out = []
    lp = a["log_prob"]
    out.append(compare("torch", dtype, case, "log_prob", p.log_prob(x), lp, np.max(np.abs(lp)), rtol))
    score = p.score(x)
    for name, ref in _split(a["score"], meta["params"]).items():
        out.append(compare("torch", dtype, case, f"score[{name!r}]", score[name].reshape(n, -1), ref,
                           np.max(np.abs(ref)), rtol))
    row = 0
    for obj in meta["objectives"]:
        m = obj.get("m", 1)
        est = run_objective(obj, p, x, fitness, behaviours, values2)
        value, grad = _rows(est, names, m)
        label = objective_label(obj)
        rows = slice(row, row + m)
        out.append(compare("torch", dtype, case, f"{label} value", value, a["values"][rows],
                           a["value_scale"][rows], rtol))
        expected, scale = _split(a["grads"][rows], meta["params"]), _split(a["scale"][rows], meta["params"])
        for name in names:
            out.append(compare("torch", dtype, case, f"{label} grad[{name!r}]", grad[name], expected[name],
                               scale[name], rtol))
        row += m
    return out


def all_comparisons(meta: dict, arrays: dict, dtypes: tuple[str, ...] = DTYPES) -> list[Comparison]:
    out = []
    for dtype in dtypes:
        for i, case in enumerate(meta["evograd_cases"]):
            out += evograd_comparisons(case, case_arrays(arrays, "evograd", i), dtype)
        for i, case in enumerate(meta["torch_cases"]):
            out += torch_comparisons(case, case_arrays(arrays, "torch", i), dtype)
    return out


def summary(comparisons: list[Comparison], title: str) -> str:
    lines = [title, f"{'reference':<10}{'dtype':<9}{'compared':>9}{'failed':>8}"
                    f"{'max err/scale':>15}{'max rel err':>13}{'rtol':>8}"]
    for ref in ("evograd", "torch"):
        for dtype in DTYPES:
            group = [c for c in comparisons if c.reference == ref and c.dtype == dtype]
            if not group:
                continue
            failed = sum(not c.passed for c in group)
            lines.append(f"{ref:<10}{dtype:<9}{len(group):>9}{failed:>8}"
                         f"{max(c.max_scaled for c in group):>15.3g}{max(c.max_rel for c in group):>13.3g}"
                         f"{group[0].rtol:>8g}")
    lines.append(f"total: {len(comparisons)} comparisons, {sum(not c.passed for c in comparisons)} failed")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", default=DEFAULT_PATH, help="reference file (default: %(default)s)")
    parser.add_argument("--live", action="store_true", help="also compare with fresh torch/EvoGrad cases")
    parser.add_argument("--worst", type=int, default=3, help="list the worst comparisons of each reference")
    args = parser.parse_args(argv)
    meta, arrays = load(args.path)
    groups = [("committed reference values (run without torch)", all_comparisons(meta, arrays))]
    if args.live:
        sys.path.insert(0, HERE)
        import generate

        fresh_meta, fresh_arrays = generate.build(seed_offset=10_000)
        groups.append(("fresh cases computed now by torch and EvoGrad", all_comparisons(fresh_meta, fresh_arrays)))
    failed = 0
    for title, comps in groups:
        print(summary(comps, title))
        for ref in ("evograd", "torch"):
            worst = sorted((c for c in comps if c.reference == ref), key=lambda c: -c.max_scaled / c.rtol)
            for c in worst[: args.worst]:
                print("  worst:", c)
        failed += sum(not c.passed for c in comps)
        print()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
