"""Regenerate the committed reference values of tests/reference/reference.npz.

    python tests/reference/generate.py            # needs torch==2.13.0 and evograd==0.1.2

Two references, both written here without npevograd, on samples stored with them:

1. EvoGrad 0.1.2 itself (float32): its ``Normal``/``PairedNormal`` draw the samples
   (from its noise table, with a seeded ``RandomState``) and its ``expectation`` with
   autograd gives the gradient in mu, for the objectives exactly as its README and
   demos write them: mean fitness (raw and z-scored), MaxVar
   ``expectation((z**2).sum(1), sample, p)`` and MaxEnt
   ``p_x = expectation(kernel, sample, p); expectation(-log(p_x), sample, p)`` with the
   kernel from scipy's ``pdist`` as in ``demos/max_ent_interference.py``.  Grid: d in
   {1, 4, 16}, n in {20, 200}, sigma in {0.05, 0.5, 2.0}; behaviours of 1 to 3
   dimensions; bandwidths 0.5, 1 and 2.
2. torch.distributions in float64 with the ratio r = exp(log_prob - log_prob.detach())
   (value 1, gradient the score), so that autograd builds the score-function estimator:
   Normal (isotropic and diagonal sigma, fixed and learned), antithetic Normal,
   MixtureSameFamily (equal weights, shared sigma; one case with components 1e3 apart),
   Bernoulli(logits), Categorical(logits (d, m)) as Independent; log_prob, per-sample
   score (autograd of each sample's log_prob), and the objectives mean (raw, z-scored,
   centred ranks), variance, entropy (with its nested term, sigma learned where the
   case learns it) and expectation of an (n, 2) array (a Jacobian).

For every gradient the file also holds its term scale S = sum_i |w_i| |s_i| (torch
float64; w_i = dJ/dr_i, s_i the score), against which the tests set their tolerance
(see npevograd/testing.py).  Every stored input (samples, parameters, values) is
exactly representable in float32, so a float32 run sees the same inputs.

The file stores packed arrays under ``<reference>/<case>/<name>`` keys and one JSON
string ``meta`` describing the cases; tests/reference/check.py reads it.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PATH = os.path.join(HERE, "reference.npz")

# --------------------------------------------------------------------------- the grids

EVOGRAD_GRID = [
    {"d": d, "n": n, "sigma": sigma}
    for d in (1, 4, 16)
    for n in (20, 200)
    for sigma in (0.05, 0.5, 2.0)
]
BANDWIDTHS = (0.5, 1.0, 2.0)
EVOGRAD_OBJECTIVES = (
    [{"kind": "mean"}, {"kind": "mean_z"}]
    + [{"kind": "var", "k": k} for k in (1, 2, 3)]
    + [{"kind": "ent", "k": k, "h": h} for k in (1, 2, 3) for h in BANDWIDTHS]
)

TORCH_SPECS = [
    {"name": "normal-iso", "type": "normal", "d": 3, "sigma": 0.7, "learn_sigma": False},
    {"name": "normal-iso-learn", "type": "normal", "d": 4, "sigma": 0.3, "learn_sigma": True},
    {"name": "normal-diag", "type": "normal", "d": 2, "sigma": [0.5, 2.0], "learn_sigma": False},
    {"name": "normal-diag-learn", "type": "normal", "d": 3, "sigma": [0.5, 2.0, 1.125], "learn_sigma": True},
    {"name": "paired-normal-learn", "type": "paired", "d": 2, "sigma": 1.5, "learn_sigma": True},
    {"name": "mix-normal", "type": "mix", "K": 3, "d": 2, "sigma": 0.8},
    {"name": "mix-normal-far", "type": "mix", "K": 2, "d": 1, "sigma": 0.01, "spread": 1000.0},
    {"name": "bernoulli", "type": "bernoulli", "d": 5},
    {"name": "categorical", "type": "categorical", "d": 3, "m": 4},
]
TORCH_N = 40
TORCH_OBJECTIVES = [
    {"kind": "mean"},
    {"kind": "mean_z"},
    {"kind": "mean_ranks"},
    {"kind": "var", "k": 1},
    {"kind": "var", "k": 3},
    {"kind": "ent", "k": 1, "h": 1.0},
    {"kind": "ent", "k": 2, "h": 0.5},
    {"kind": "ent", "k": 3, "h": 2.0},
    {"kind": "expect", "m": 2},
]


def f32(a: Any) -> np.ndarray:
    """Round to the nearest float32 and hold the result in float64 (exact both ways)."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


# --------------------------------------------------------------------------- torch forms


def _zscore(b: Any) -> Any:
    return (b - b.mean(0)) / b.std(0)  # per column, ddof=1 (torch's default, as EvoGrad's demos)


def objective_torch(obj: dict, fitness: Any, behaviours: Any, values2: Any, ratio: Any) -> Any:
    """J(values, r) in torch for one objective spec; every term as its formula reads."""
    import torch

    kind = obj["kind"]
    if kind == "mean":
        return torch.mean(fitness * ratio)
    if kind == "mean_z":
        return torch.mean(_zscore(fitness) * ratio)
    if kind == "mean_ranks":
        # rank_i = #{j: f_j < f_i} + (#{j: f_j = f_i} - 1) / 2: 0..n-1, ties share their mean rank
        below = (fitness[None, :] < fitness[:, None]).sum(1).to(fitness.dtype)
        tied = (fitness[None, :] == fitness[:, None]).sum(1).to(fitness.dtype)
        ranks = below + (tied - 1) / 2
        return torch.mean((ranks / (fitness.shape[0] - 1) - 0.5) * ratio)
    if kind == "expect":
        return torch.mean(values2[:, : obj["m"]] * ratio[:, None], 0)
    z = _zscore(behaviours[:, : obj["k"]])
    if kind == "var":
        return torch.mean((z**2).sum(1) * ratio)
    if kind == "ent":
        kernel = torch.exp(-((z[:, None, :] - z[None, :, :]) ** 2).sum(-1) / obj["h"] ** 2)
        density = torch.mean(kernel * ratio[:, None], 0)  # phat_j = (1/n) sum_i K_ij r_i
        return torch.mean(-torch.log(density) * ratio)
    raise ValueError(f"unknown objective kind {kind!r}")


def torch_dist(spec: dict, params: dict, fixed: dict) -> Any:
    """torch.distributions object for a spec, from float64 parameter tensors."""
    import torch

    D = torch.distributions
    kind = spec["type"]
    if kind in ("normal", "paired"):
        mu = params["mu"]
        sigma = params["sigma"] if spec["learn_sigma"] else fixed["sigma"]
        return D.Independent(D.Normal(mu, sigma.expand(mu.shape)), 1)
    if kind == "mix":
        mus = params["mus"]
        mix = D.Categorical(probs=torch.full((mus.shape[0],), 1.0 / mus.shape[0], dtype=torch.float64))
        return D.MixtureSameFamily(mix, D.Independent(D.Normal(mus, fixed["sigma"].expand(mus.shape)), 1))
    if kind == "bernoulli":
        return D.Independent(D.Bernoulli(logits=params["logits"]), 1)
    if kind == "categorical":
        return D.Independent(D.Categorical(logits=params["logits"]), 1)
    raise ValueError(f"unknown distribution type {kind!r}")


def per_sample_grad(torch: Any, out: Any, inputs: list) -> list[np.ndarray]:
    """Jacobian of the vector ``out`` (n,) w.r.t. each input, one backward per sample."""
    rows = []
    for i in range(out.shape[0]):
        got = torch.autograd.grad(out[i], inputs, retain_graph=True, allow_unused=True)
        rows.append([np.zeros(tuple(t.shape)) if g is None else g.numpy() for g, t in zip(got, inputs)])
    return [np.stack([r[k] for r in rows]) for k in range(len(inputs))]


def reference_estimates(
    spec: dict, params_np: dict, fixed_np: dict, x: np.ndarray, fitness, behaviours, values2, objectives
) -> dict:
    """log_prob, per-sample scores, and each objective's value, gradient and term scale."""
    import torch

    names = list(params_np)
    params = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params_np.items()}
    fixed = {k: torch.tensor(v, dtype=torch.float64) for k, v in fixed_np.items()}
    dist = torch_dist(spec, params, fixed)
    x_t = torch.as_tensor(x if x.dtype == np.int64 else x.astype(np.float64))
    log_p = dist.log_prob(x_t)
    ratio = torch.exp(log_p - log_p.detach())  # r_i: value 1, gradient the score
    scores = per_sample_grad(torch, log_p, [params[k] for k in names])
    n = x.shape[0]
    score_flat = np.concatenate([s.reshape(n, -1) for s in scores], axis=1)  # (n, P)
    as_t = {key: None if v is None else torch.as_tensor(v) for key, v in
            (("f", fitness), ("b", behaviours), ("v", values2))}
    values, grads, scale, value_scale = [], [], [], []
    for obj in objectives:
        out = objective_torch(obj, as_t["f"], as_t["b"], as_t["v"], ratio).reshape(-1)
        for k in range(out.shape[0]):
            got = torch.autograd.grad(out[k], [ratio] + [params[m] for m in names], retain_graph=True)
            w = got[0].numpy()  # w_i = dJ/dr_i
            values.append(float(out[k].detach()))
            grads.append(np.concatenate([g.numpy().reshape(-1) for g in got[1:]]))
            scale.append(np.abs(w) @ np.abs(score_flat))  # S = sum_i |w_i| |s_i|
            value_scale.append(max(abs(values[-1]), float(np.abs(w).sum())))
    return {
        "log_prob": log_p.detach().numpy(),
        "score": score_flat,
        "values": np.array(values),
        "grads": np.array(grads),
        "scale": np.array(scale),
        "value_scale": np.array(value_scale),
    }


# --------------------------------------------------------------------------- EvoGrad cases


def behaviours_torch(torch: Any, x: Any, direction: Any) -> Any:
    """Three behaviour columns of the samples (float32, as an EvoGrad user computes them).

    b0 = 5 sin(0.2 u) sin(20 u) with u the mean coordinate (EvoGrad's interference
    function), b1 the mean squared distance to 1, b2 = cos(3 v) + 0.1 v with v = x . a.
    """
    u = x.mean(1)
    v = x @ direction
    return torch.stack(
        [5 * torch.sin(0.2 * u) * torch.sin(20 * u), ((x - 1) ** 2).mean(1), torch.cos(3 * v) + 0.1 * v], 1
    )


def evograd_objective(obj: dict, sample: Any, p: Any, fitness: Any, behaviours: Any) -> Any:
    """One objective exactly as EvoGrad's README and demos write it."""
    import scipy.spatial
    import torch
    from evograd import expectation

    kind = obj["kind"]
    if kind == "mean":
        return expectation(fitness, sample, p=p)
    if kind == "mean_z":
        return expectation((fitness - fitness.mean()) / fitness.std(), sample, p=p)
    b = behaviours[:, : obj["k"]]
    z = (b - b.mean(0)) / b.std(0)
    if kind == "var":
        return expectation((z**2).sum(1), sample, p=p)
    dists = scipy.spatial.distance.squareform(scipy.spatial.distance.pdist(z.numpy(), "sqeuclidean"))
    kernel = torch.tensor(np.exp(-dists / obj["h"] ** 2), dtype=torch.float32)
    p_x = expectation(kernel, sample, p=p)
    return expectation(-torch.log(p_x), sample, p=p)


def evograd_case(case: dict, seed: int) -> tuple[dict, dict]:
    """Samples, values and EvoGrad's value and mu-gradient for every objective of one grid point."""
    import torch
    from evograd.distributions import Normal, PairedNormal

    d, n, sigma = case["d"], case["n"], case["sigma"]
    rng = np.random.RandomState(seed)
    paired = bool(seed % 2)
    mu = torch.tensor((1.5 * rng.standard_normal(d)).astype(np.float32), requires_grad=True)
    direction = rng.standard_normal(d)
    direction = torch.tensor((direction / np.linalg.norm(direction)).astype(np.float32))
    p = (PairedNormal if paired else Normal)(mu, sigma, random_state=np.random.RandomState(seed))
    sample = p.sample(n)
    with torch.no_grad():
        fitness = -((sample - 5.0) ** 2).sum(1)
        behaviours = behaviours_torch(torch, sample, direction)
    values, grads = [], []
    for obj in EVOGRAD_OBJECTIVES:
        out = evograd_objective(obj, sample, p, fitness, behaviours)
        out.backward()
        values.append(float(out.detach()))
        grads.append(mu.grad.numpy().copy())
        mu.grad = None
    x = sample.numpy().astype(np.float64)
    mu_np = mu.detach().numpy().astype(np.float64)
    spec = {"type": "normal", "learn_sigma": False}
    ref = reference_estimates(
        spec, {"mu": mu_np}, {"sigma": np.float64(sigma)}, x,
        fitness.numpy().astype(np.float64), behaviours.numpy().astype(np.float64), None, EVOGRAD_OBJECTIVES,
    )
    meta = dict(case, seed=seed, paired=paired, objectives=EVOGRAD_OBJECTIVES)
    arrays = {
        "x": sample.numpy(),
        "mu": mu.detach().numpy(),
        "fitness": fitness.numpy(),
        "behaviours": behaviours.numpy(),
        "values": np.array(values, dtype=np.float32),
        "grads": np.array(grads, dtype=np.float32),
        "scale": ref["scale"],
        "value_scale": ref["value_scale"],
    }
    return meta, arrays


# --------------------------------------------------------------------------- torch cases


def _sample(spec: dict, params: dict, fixed: dict, n: int, rng: np.random.Generator) -> np.ndarray:
    """Samples drawn here with NumPy (independent of npevograd's samplers), float32-exact."""
    kind = spec["type"]
    if kind == "normal":
        return f32(params["mu"] + fixed.get("sigma", params.get("sigma")) * rng.standard_normal((n, spec["d"])))
    if kind == "paired":
        eps = rng.standard_normal((n // 2, spec["d"]))
        return f32(params["mu"] + params["sigma"] * np.concatenate([eps, -eps]))
    if kind == "mix":
        comp = rng.integers(0, spec["K"], n)
        return f32(params["mus"][comp] + fixed["sigma"] * rng.standard_normal((n, spec["d"])))
    if kind == "bernoulli":
        return (rng.random((n, spec["d"])) < 1 / (1 + np.exp(-params["logits"]))).astype(np.float64)
    if kind == "categorical":
        probs = np.exp(params["logits"])
        probs /= probs.sum(1, keepdims=True)
        return np.stack([rng.choice(spec["m"], size=n, p=row) for row in probs], axis=1).astype(np.int64)
    raise ValueError(kind)


def torch_case(spec: dict, seed: int, n: int = TORCH_N) -> tuple[dict, dict]:
    """Parameters, samples, values and the float64 torch reference for one distribution spec."""
    rng = np.random.default_rng(seed)
    kind, d = spec["type"], spec["d"]
    params, fixed = {}, {}
    if kind in ("normal", "paired"):
        params["mu"] = f32(rng.normal(0, 1.5, d))
        sigma = f32(spec["sigma"])
        (params if spec["learn_sigma"] else fixed)["sigma"] = sigma
    elif kind == "mix":
        mus = rng.normal(0, 1.5, (spec["K"], d))
        if "spread" in spec:
            mus = spec["spread"] * np.arange(spec["K"])[:, None] + rng.normal(0, 0.1, (spec["K"], d))
        params["mus"] = f32(mus)
        fixed["sigma"] = f32(spec["sigma"])
    elif kind == "bernoulli":
        params["logits"] = f32(rng.normal(0, 1.5, d))
    else:
        params["logits"] = f32(rng.normal(0, 1.5, (d, spec["m"])))
    x = _sample(spec, params, fixed, n, rng)
    flat = x.reshape(n, -1).astype(np.float64)
    flat = (flat - flat.mean(0)) / np.maximum(flat.std(0), 1.0)  # O(1) features, even 1e3 apart
    coef = rng.normal(size=(flat.shape[1], 6))
    fitness = f32(-np.sum((flat - 0.5) ** 2, 1) + flat @ coef[:, 0] + 0.1 * rng.standard_normal(n))
    behaviours = f32(np.tanh(flat @ coef[:, 1:4]) + 0.05 * rng.standard_normal((n, 3)))
    values2 = f32(flat @ coef[:, 4:6] + rng.standard_normal((n, 2)))
    ref = reference_estimates(spec, params, fixed, x, fitness, behaviours, values2, TORCH_OBJECTIVES)
    meta = dict(
        spec,
        seed=seed,
        n=n,
        params=[[k, list(v.shape)] for k, v in params.items()],
        fixed={k: np.asarray(v).tolist() for k, v in fixed.items()},
        objectives=TORCH_OBJECTIVES,
    )
    arrays = dict(x=x, fitness=fitness, behaviours=behaviours, values2=values2, **ref)
    arrays.update({f"param_{k}": v for k, v in params.items()})
    return meta, arrays


# --------------------------------------------------------------------------- the file


def build(seed_offset: int = 0) -> tuple[dict, dict]:
    """All cases: meta (JSON-able) and arrays keyed ``evograd/<i>/<name>``, ``torch/<i>/<name>``."""
    import evograd
    import torch

    meta: dict = {"torch": torch.__version__, "evograd": getattr(evograd, "__version__", "0.1.2"),
                  "evograd_cases": [], "torch_cases": []}
    arrays = {}
    for i, case in enumerate(EVOGRAD_GRID):
        m, a = evograd_case(case, seed=seed_offset + i)
        meta["evograd_cases"].append(m)
        arrays.update({f"evograd/{i}/{k}": v for k, v in a.items()})
    for i, spec in enumerate(TORCH_SPECS):
        m, a = torch_case(spec, seed=seed_offset + 100 + i)
        meta["torch_cases"].append(m)
        arrays.update({f"torch/{i}/{k}": v for k, v in a.items()})
    return meta, arrays


def save(path: str, meta: dict, arrays: dict) -> None:
    np.savez_compressed(path, meta=np.array(json.dumps(meta)), **arrays)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=DEFAULT_PATH, help="output .npz (default: %(default)s)")
    args = parser.parse_args(argv)
    meta, arrays = build()
    save(args.out, meta, arrays)
    print(f"wrote {args.out}: {len(meta['evograd_cases'])} EvoGrad cases, "
          f"{len(meta['torch_cases'])} torch cases, {os.path.getsize(args.out)} bytes")


if __name__ == "__main__":
    main()
