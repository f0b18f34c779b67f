"""Live comparisons with torch and EvoGrad, run when they are importable (skipped otherwise).

- The committed reference file is regenerated case by case and must equal what
  torch and EvoGrad say now (so it cannot drift from them).
- Fresh cases (new seeds, same grids) against EvoGrad 0.1.2 and against
  torch.distributions in float64, through tests/reference/check.py.
- ``npevograd.testing`` against the independent torch code of generate.py, and
  ``assert_gradient_close`` / ``assert_distribution_close`` over the EXAMPLES registry.
- 200 steps of EvoGrad's max-entropy interference demo beside npevograd's, fed
  EvoGrad's samples: mu stays within 2e-3.

With ``-s`` the module prints how many comparisons ran and the largest errors.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import EXAMPLES, load_reference_script

import npevograd as ng

torch = pytest.importorskip("torch")
from npevograd import testing  # noqa: E402  (after the skip: the helper needs torch)

check = load_reference_script("check")
generate = load_reference_script("generate")
META, ARRAYS = check.load()
FRESH = 20_000  # seed offset of the fresh cases (the committed ones use 0)
TALLY: dict[str, list[float]] = {}  # what was compared -> error of each comparison (err/scale unless named)


def _record(reference: str, scaled: list[float]) -> None:
    TALLY.setdefault(reference, []).extend(scaled)


@pytest.fixture(scope="module", autouse=True)
def _report():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small tensors: a second thread only adds contention on a shared machine
    yield
    torch.set_num_threads(threads)
    total = sum(len(v) for v in TALLY.values())
    print(f"\n[test_live_torch] {total} live comparisons")
    for reference, errors in sorted(TALLY.items()):
        print(f"  {reference}: {len(errors)} comparisons, largest {max(errors):.3g}")


@pytest.fixture(scope="module")
def evograd():
    module = pytest.importorskip("evograd")
    pytest.importorskip("evograd.distributions")  # builds EvoGrad's 40 MB noise table, once
    return module


def _assert_passed(comparisons: list) -> None:
    failed = [str(c) for c in comparisons if not c.passed]
    assert not failed, f"{len(failed)} of {len(comparisons)} comparisons failed:\n" + "\n".join(failed)


def _scaled_close(label: str, actual, expected, scale, rtol: float) -> float:
    """max |a - b| / scale, asserted <= rtol; returned for the tally."""
    err = np.abs(np.asarray(actual, np.float64) - np.asarray(expected, np.float64))
    worst = float(np.max(err / np.asarray(scale, np.float64), initial=0.0))
    assert worst <= rtol, f"{label}: max |a - b| / scale = {worst:.3g} > {rtol:g}"
    return worst


# --------------------------------------------------------------------------- drift of the committed file

INPUTS = ("x", "mu", "fitness", "behaviours", "values2")


@pytest.mark.parametrize("i", range(len(META["torch_cases"])), ids=[c["name"] for c in META["torch_cases"]])
def test_committed_torch_values_equal_a_fresh_torch_run(i):
    case = META["torch_cases"][i]
    spec = next(s for s in generate.TORCH_SPECS if s["name"] == case["name"])
    _, fresh = generate.torch_case(spec, seed=case["seed"], n=case["n"])
    stored = check.case_arrays(ARRAYS, "torch", i)
    assert sorted(fresh) == sorted(stored)
    for key in fresh:
        if key in INPUTS or key.startswith("param_"):
            np.testing.assert_array_equal(fresh[key], stored[key], err_msg=key)
    scaled = [
        _scaled_close("log_prob", fresh["log_prob"], stored["log_prob"], np.abs(stored["log_prob"]).max(), 1e-12),
        _scaled_close("score", fresh["score"], stored["score"], np.abs(stored["score"]).max(), 1e-12),
        _scaled_close("values", fresh["values"], stored["values"], stored["value_scale"], 1e-12),
        _scaled_close("grads", fresh["grads"], stored["grads"], stored["scale"], 1e-12),
        _scaled_close("scale", fresh["scale"], stored["scale"], stored["scale"], 1e-12),
    ]
    _record("committed torch file vs torch now, err/scale", scaled)


@pytest.mark.parametrize(
    "i", range(len(META["evograd_cases"])),
    ids=[f"d{c['d']}-n{c['n']}-s{c['sigma']:g}" for c in META["evograd_cases"]],
)
def test_committed_evograd_values_equal_a_fresh_evograd_run(evograd, i):
    case = META["evograd_cases"][i]
    grid_point = {k: case[k] for k in ("d", "n", "sigma")}
    _, fresh = generate.evograd_case(grid_point, seed=case["seed"])
    stored = check.case_arrays(ARRAYS, "evograd", i)
    for key in ("x", "mu", "fitness", "behaviours"):  # EvoGrad's samples, bit for bit
        np.testing.assert_array_equal(fresh[key], stored[key], err_msg=key)
    # float32 sums may be reordered by another BLAS or thread count: 1e-6 of the term scale
    scaled = [
        _scaled_close("values", fresh["values"], stored["values"], stored["value_scale"], 1e-6),
        _scaled_close("grads", fresh["grads"], stored["grads"], stored["scale"], 1e-6),
    ]
    _record("committed EvoGrad file vs EvoGrad now, err/scale", scaled)


# --------------------------------------------------------------------------- fresh cases


@pytest.mark.parametrize("j", range(len(generate.EVOGRAD_GRID)),
                         ids=[f"d{c['d']}-n{c['n']}-s{c['sigma']:g}" for c in generate.EVOGRAD_GRID])
def test_fresh_evograd_case(evograd, j):
    meta, arrays = generate.evograd_case(generate.EVOGRAD_GRID[j], seed=FRESH + j)
    comparisons = [c for dtype in check.DTYPES for c in check.evograd_comparisons(meta, arrays, dtype)]
    _record("EvoGrad (fresh), err/scale", [c.max_scaled for c in comparisons])
    _assert_passed(comparisons)


@pytest.mark.parametrize("n", [40, 300])
@pytest.mark.parametrize("spec", generate.TORCH_SPECS, ids=[s["name"] for s in generate.TORCH_SPECS])
def test_fresh_torch_case(spec, n):
    meta, arrays = generate.torch_case(spec, seed=FRESH + n + generate.TORCH_SPECS.index(spec), n=n)
    comparisons = [c for dtype in check.DTYPES for c in check.torch_comparisons(meta, arrays, dtype)]
    _record("torch.distributions (fresh), err/scale", [c.max_scaled for c in comparisons])
    _assert_passed(comparisons)


# --------------------------------------------------------------------------- npevograd.testing


def _estimator(obj: dict):
    """The npevograd estimator and the values of an objective spec (as check.run_objective)."""
    kind = obj["kind"]
    if kind in ("mean", "mean_z", "mean_ranks"):
        shaping = {"mean": None, "mean_z": ng.zscore, "mean_ranks": ng.centered_ranks}[kind]
        return ng.Mean(shaping=shaping), "fitness"
    if kind == "expect":
        return ng.expectation, "values2"
    if kind == "var":
        return ng.Variance(), "behaviours"
    return ng.Entropy(bandwidth=obj["h"]), "behaviours"


@pytest.mark.parametrize("i", range(len(META["torch_cases"])), ids=[c["name"] for c in META["torch_cases"]])
def test_testing_helper_equals_the_independent_torch_reference(i):
    """npevograd.testing's torch forms and distribution mapping vs generate.py's own torch code."""
    case = META["torch_cases"][i]
    a = check.case_arrays(ARRAYS, "torch", i)
    p = check.make_distribution(case, a, "float64")
    layout = case["params"]
    scaled = [
        _scaled_close("log_prob", testing.torch_log_prob(p, a["x"]), a["log_prob"], np.abs(a["log_prob"]).max(), 1e-12)
    ]
    score = testing.torch_score(p, a["x"])
    stored_score = check._split(a["score"], layout)
    for name, _ in layout:
        n = a["x"].shape[0]
        scaled.append(_scaled_close(f"score[{name}]", score[name].reshape(n, -1), stored_score[name],
                                    np.abs(stored_score[name]).max(), 1e-12))
    row = 0
    for obj in case["objectives"]:
        m = obj.get("m", 1)
        estimator, which = _estimator(obj)
        values = a[which]
        values = values[:, : obj["k"]] if "k" in obj else values[:, : obj["m"]] if "m" in obj else values
        ref = testing.torch_estimate(p, estimator, values, a["x"])
        rows = slice(row, row + m)
        scaled.append(_scaled_close(f"{obj} value", np.atleast_1d(ref.value), a["values"][rows],
                                    a["value_scale"][rows], 1e-12))
        grads, scales = check._split(a["grads"][rows], layout), check._split(a["scale"][rows], layout)
        for name, _ in layout:
            got = ref.grad[name].reshape(m, -1)
            scaled.append(_scaled_close(f"{obj} grad[{name}]", got, grads[name], scales[name], 1e-12))
            scaled.append(_scaled_close(f"{obj} scale[{name}]", ref.scale[name].reshape(m, -1), scales[name],
                                        scales[name], 1e-12))
        row += m
    _record("npevograd.testing vs generate.py torch code, err/scale", scaled)


ESTIMATORS = {
    "mean": (ng.Mean(), "fitness"),
    "mean-zscore": (ng.Mean(shaping=ng.zscore), "fitness"),
    "mean-nes-utilities": (ng.Mean(shaping=ng.nes_utilities), "fitness"),
    "variance": (ng.Variance(), "behaviours"),
    "entropy": (ng.Entropy(bandwidth=0.7), "behaviours"),
    "entropy-blocked": (ng.Entropy(bandwidth=1.3, block_size=16), "behaviours"),
    "expectation": (ng.expectation, "matrix"),
}


@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_assert_gradient_close_on_every_example(name, estimator, dtype):
    p = EXAMPLES[name](dtype)
    rng = np.random.default_rng([7, sorted(EXAMPLES).index(name), sorted(ESTIMATORS).index(estimator)])
    n = 60
    x = p.sample(n, rng=rng)
    inputs = {
        "fitness": (3.0 + rng.standard_normal(n)).astype(dtype),  # an offset: cancellation in the sum
        "behaviours": rng.standard_normal((n, 2)).astype(dtype),
        "matrix": rng.standard_normal((n, 3)).astype(dtype),
    }
    est, which = ESTIMATORS[estimator]
    result = testing.assert_gradient_close(p, est, inputs[which], x)
    assert {k: v.shape for k, v in result.grad.items()} == {
        k: (3, *v.shape) if which == "matrix" else v.shape for k, v in p.params.items()
    }
    testing.assert_distribution_close(p, x)
    ref = testing.torch_estimate(p, est, inputs[which], x)  # for the tally: err / scale per quantity
    _record(f"assert_gradient_close, {np.dtype(dtype).name}, err/scale", [
        _max_relative(result.grad[k] - ref.grad[k], ref.scale[k]) for k in ref.grad
    ] + [float(np.max(np.abs(result.value - ref.value) / ref.value_scale))])


def _max_relative(err: np.ndarray, scale: np.ndarray) -> float:
    """max |err| / scale over the entries with a nonzero scale (entries fixed at 0, such as
    MultivariateNormal's upper triangle, have scale 0 and error 0)."""
    err, scale = np.abs(np.asarray(err, dtype=float)), np.asarray(scale, dtype=float)
    assert np.all(err[scale == 0] == 0)
    return float(np.max(err[scale > 0] / scale[scale > 0], initial=0.0))


# --------------------------------------------------------------------------- trajectory


def test_max_entropy_demo_trajectory_follows_evograd(evograd):
    """EvoGrad's demos/max_ent_interference.py for 200 steps, npevograd's update beside it.

    EvoGrad draws each population (its Normal, its noise table, a seeded RandomState)
    and steps its own mu; npevograd takes the same noise eps_i = table[index_i] and
    forms its samples x_i = mu_np + sigma eps_i from its own mu, then steps mu_np by
    its own entropy gradient.  The two trajectories differ only by float32 rounding.
    """
    import scipy.spatial
    from evograd import expectation
    from evograd.distributions import Normal
    from evograd.noise import noise

    npop, std, k_sigma, alpha, steps = 500, 0.5, 1.0, 0.10, 200

    def fun(x):
        return 5 * torch.sin(0.2 * x) * torch.sin(20 * x)

    mu = torch.tensor([1.0], requires_grad=True)
    p = Normal(mu, std, random_state=np.random.RandomState(0))
    q = ng.Normal(np.array([1.0]), std)
    entropy = ng.Entropy(bandwidth=k_sigma)
    gaps = []
    for t in range(steps):
        descriptors = p.sample(npop, encode=True)
        index = np.array([i for i, _ in descriptors])
        with torch.no_grad():
            sample = mu + std * torch.as_tensor(noise.noise[index])[:, None]  # p.decode, vectorised
        if t % 50 == 0:  # the same samples EvoGrad's own decode gives, bit for bit
            assert torch.equal(sample, torch.stack([p.decode(d) for d in descriptors]))
        novelties = fun(sample)
        novelties = (novelties - novelties.mean()) / novelties.std()
        dists = scipy.spatial.distance.squareform(scipy.spatial.distance.pdist(novelties, "sqeuclidean"))
        kernel = torch.tensor(np.exp(-dists / k_sigma**2), dtype=torch.float32)
        p_x = expectation(kernel, sample, p=p)
        expectation(-torch.log(p_x), sample, p=p).backward()
        with torch.no_grad():
            mu += alpha * mu.grad
            mu.grad.zero_()

        x = q.params["mu"] + std * noise.noise[index].astype(np.float64)[:, None]
        q.params["mu"] += alpha * entropy(5 * np.sin(0.2 * x) * np.sin(20 * x), x, q).grad["mu"]
        gaps.append(abs(float(q.params["mu"][0]) - float(mu.detach()[0])))
    _record("max-entropy trajectory, |mu_np - mu_evograd| per step", gaps)
    assert max(gaps) < 2e-3, f"max |mu_np - mu_evograd| over {steps} steps = {max(gaps):.3g}"
    assert float(mu.detach()[0]) > 3.0  # the run went somewhere: mu climbed from 1.0
