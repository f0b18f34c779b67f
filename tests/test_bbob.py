"""benchmarks/bbob.py: the COCO/BBOB harness records targets, precisions and ECDF areas correctly, and runs.

Needs ``ioh`` (the BBOB functions); the pycma rows need ``cma``; evosax's row needs evosax and jax.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

ioh = pytest.importorskip("ioh")

ROOT = Path(__file__).resolve().parents[1]


def _load_bbob():
    spec = importlib.util.spec_from_file_location("_npevograd_bbob", ROOT / "benchmarks" / "bbob.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # the worker pool pickles run_one by module name
    spec.loader.exec_module(module)
    return module


bbob = _load_bbob()
NUMPY_ALGORITHMS = [a for a in bbob.ALGORITHMS if not a.startswith("evosax") and bbob.ALGORITHMS[a][0]()]


def test_targets_are_cocos_51():
    assert bbob.TARGETS.size == 51
    assert bbob.TARGETS[0] == 100.0 and math.isclose(bbob.TARGETS[-1], 1e-8, rel_tol=1e-12)
    np.testing.assert_allclose(np.diff(np.log10(bbob.TARGETS)), -0.2, rtol=1e-12)
    assert sorted(f for group in bbob.GROUPS.values() for f in group) == list(range(1, 25))


def test_precision_is_f_minus_ioh_optimum():
    # f1 is the sphere: f(x) - f_opt = ||x - x_opt||^2, so the recorder's precision is a closed form
    problem = bbob.get_problem(1, 2, 5)
    recorder = bbob.Recorder(problem, budget=100, trace=True)
    x_opt = np.array(problem.optimum.x)
    x = np.random.default_rng(3).uniform(-4, 4, (7, 5))
    f = recorder(x)
    np.testing.assert_allclose(np.asarray(recorder.trace), ((x - x_opt) ** 2).sum(1), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(f - recorder.f_opt, recorder.trace, rtol=0, atol=0)
    assert recorder.f_opt == problem.optimum.y
    near = x_opt + np.array([1e-3, 0, 0, 0, 2e-3])  # a single point: a float back, precision 5e-6
    assert math.isclose(recorder(near) - recorder.f_opt, 5e-6, rel_tol=1e-6)


@pytest.mark.parametrize("fid", [1, 8, 15])
def test_recorded_hits_are_the_first_crossings_and_monotone(fid):
    problem = bbob.get_problem(fid, 1, 3)
    recorder = bbob.Recorder(problem, budget=10_000, trace=True)
    rng = np.random.default_rng(fid)
    x_opt = np.array(problem.optimum.x)
    # populations closing in on the optimum, mixed with single points, so that many targets are crossed
    with pytest.raises(bbob.Done):  # the final target ends the run
        for scale in np.geomspace(3, 1e-6, 40):
            recorder(x_opt + scale * rng.standard_normal((int(rng.integers(1, 9)), 3)))
            recorder(x_opt + scale * rng.standard_normal(3))
    hits = recorder.hits
    np.testing.assert_array_equal(hits, bbob.hits_from_trace(recorder.trace))
    reached = hits[hits > 0]
    assert reached.size == recorder.reached == 51
    assert np.all(hits[: recorder.reached] > 0) and np.all(hits[recorder.reached :] == -1)
    assert np.all(np.diff(reached) >= 0)  # a smaller target is never reached earlier
    assert recorder.best_delta == min(recorder.trace)


def test_budget_cuts_the_population_and_ends_the_run():
    problem = bbob.get_problem(10, 1, 2)
    recorder = bbob.Recorder(problem, budget=25)
    x = np.zeros((10, 2))
    recorder(x)
    recorder(x)
    with pytest.raises(bbob.Done):
        recorder(x)  # 5 of these 10 rows fit the budget: evaluated, then the run ends
    assert recorder.evaluations == 25 == problem.state.evaluations
    with pytest.raises(bbob.Done):
        recorder(x[0])
    assert problem.state.evaluations == 25


def test_final_target_ends_the_run_at_its_evaluation():
    problem = bbob.get_problem(1, 1, 2)
    recorder = bbob.Recorder(problem, budget=1000)
    x = np.vstack([np.full(2, 3.0), np.array(problem.optimum.x), np.full(2, 1.0)])
    with pytest.raises(bbob.Done):
        recorder(x)
    assert recorder.reached == 51 and np.all(recorder.hits[-20:] == 2)  # every small target at evaluation 2


def test_ecdf_area_equals_the_hand_computation():
    # d = 2, budget 100 d: T = log10(100) = 2.  One problem: targets 0-9 reached at r = 2 (log10(r/d) = 0:
    # the whole interval, 1 each), targets 10-19 at r = 20 (t = 1: half of it, 0.5 each), target 20 at
    # r = 1 (< d: counted from t = 0, 1), target 21 at r = 200 (t = 2 = T: 0), the rest missed (0).
    hits = np.full(51, -1)
    hits[:10], hits[10:20], hits[20], hits[21] = 2, 20, 1, 200
    expected = (10 * 1.0 + 10 * 0.5 + 1.0 + 0.0) / 51
    assert math.isclose(bbob.ecdf_area(hits[None, :], 2, 100), expected, rel_tol=1e-12)
    # the same area as the integral of the ECDF curve (a fine Riemann sum of the step function)
    grid = np.linspace(0, 2, 200_001)
    curve = bbob.ecdf_curve(hits[None, :], 2, grid)
    assert abs(np.trapezoid(curve, grid) / 2 - expected) < 1e-4
    # two problems: the mean of their areas; all missed: 0; all within d evaluations: 1
    other = np.full(51, -1)
    both = np.vstack([hits, other])
    assert math.isclose(bbob.ecdf_area(both, 2, 100), expected / 2, rel_tol=1e-12)
    assert bbob.ecdf_area(np.full((3, 51), 2), 2, 100) == 1.0


def test_summary_solved_fraction_area_and_instance_spread():
    solved, missed = np.full(51, 2), np.full(51, -1)
    records = {
        "A|2|1|1": {"hits": solved.tolist()},
        "A|2|1|2": {"hits": missed.tolist()},
        "A|2|15|1": {"hits": solved.tolist()},
        "A|2|15|2": {"hits": solved.tolist()},
    }
    table = bbob.summarise(records, 100)["A"]["2"]
    assert table["all"]["problems"] == 4 and table["all"]["solved"] == 0.75
    assert table["all"]["solved_range"] == [0.5, 1.0]  # instance 2 solved one of its two problems
    assert table["all"]["area"] == 0.75 and table["all"]["area_range"] == [0.5, 1.0]
    assert table["separable"]["solved"] == 0.5 and table["multimodal"]["solved"] == 1.0
    assert "moderate" not in table


@pytest.mark.parametrize("algorithm", NUMPY_ALGORITHMS)
def test_each_algorithm_runs_within_the_budget(algorithm):
    if algorithm.startswith("pycma"):
        pytest.importorskip("cma")
    saved = bbob.run([algorithm], [2], [1, 15], [1], budget_per_dim=100, workers=1, log=lambda _: None)
    assert len(saved["runs"]) == 2
    for record in saved["runs"].values():
        hits = np.asarray(record["hits"])
        assert 0 < record["evaluations"] <= 200
        assert np.all(hits[hits > 0] <= record["evaluations"]) and np.all(np.diff(hits[hits > 0]) >= 0)
        assert record["runs"] == len(record["stops"]) >= 1 and all(record["stops"])
        assert record["stops"][-1] in (["budget"], ["target"]) or record["evaluations"] < 200
    # the sphere from [-4, 4]^2: every one of these reaches the 1e-2 target within 200 evaluations
    assert saved["runs"][f"{algorithm}|2|1|1"]["hits"][20] > 0


def test_pycma_and_cmaes_solve_the_sphere_and_rerun_identically():
    pytest.importorskip("cma")
    algorithms = [a for a in ("pycma IPOP", "npevograd CMAES-IPOP") if a in NUMPY_ALGORITHMS]
    first = bbob.run(algorithms, [3], [1, 6], [1], budget_per_dim=400, seed=5, workers=1, log=lambda _: None)
    again = bbob.run(algorithms, [3], [1, 6], [1], budget_per_dim=400, seed=5, workers=1, log=lambda _: None)
    other = bbob.run(algorithms, [3], [1, 6], [1], budget_per_dim=400, seed=6, workers=1, log=lambda _: None)

    def strip(saved):
        return {k: {n: v for n, v in r.items() if n != "seconds"} for k, r in saved["runs"].items()}

    assert strip(first) == strip(again)  # the seed fixes every start and every sample
    assert strip(first) != strip(other)
    for algorithm in algorithms:
        sphere = first["runs"][f"{algorithm}|3|1|1"]
        assert sphere["hits"][-1] > 0 and sphere["stops"][-1] == ["target"]  # 1e-8 within 1200 evaluations


def test_quick_main_writes_results_resumes_and_refuses_another_budget(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "bbob_quick.json"
    algorithms = NUMPY_ALGORITHMS[:2]
    saved = bbob.main(["--quick", "--algorithms", *algorithms, "--out", str(out), "--workers", "1"])
    quick = bbob.QUICK
    assert len(saved["runs"]) == len(algorithms) * len(quick["dims"]) * len(quick["functions"])
    on_disk = json.loads(out.read_text())
    assert on_disk["runs"] == saved["runs"] and set(on_disk["summary"]) == set(algorithms)
    assert out.with_suffix(".png").stat().st_size > 10_000
    assert "\nd = 2, budget 100·d: solved to 1e-8" in out.with_suffix(".md").read_text()
    lines: list[str] = []
    bbob.run(algorithms, quick["dims"], quick["functions"], [1], 100, out=out, workers=1, log=lines.append)
    assert lines[-1].startswith(f"0 runs to do ({len(saved['runs'])} already in")  # resumed: nothing repeated
    with pytest.raises(ValueError, match="budget_per_dim=100, this run asks budget_per_dim=200"):
        bbob.run(algorithms, [2], [1], [1], 200, out=out, workers=1, log=lines.append)


@pytest.mark.slow
def test_evosax_cma_es_runs_when_installed():
    if not bbob.evosax_available():
        pytest.skip("evosax and jax are not installed")
    saved = bbob.run(["evosax CMA_ES"], [2], [1], [1], budget_per_dim=30, workers=1, log=lambda _: None)
    record = saved["runs"]["evosax CMA_ES|2|1|1"]
    assert record["evaluations"] == 60 and record["hits"][0] > 0 and record["stops"] == [["budget"]]


README_RESULTS = ["bbob_b1e3.json", "bbob_b1e4.json"]


@pytest.mark.parametrize("name", README_RESULTS)
def test_readme_tables_are_the_committed_runs(name):
    # the README's COCO/BBOB tables are recomputed from the committed runs, digit for digit
    saved = json.loads((ROOT / "benchmarks" / "results" / name).read_text())
    table = bbob.summarise(saved["runs"], saved["meta"]["budget_per_dim"])
    readme = (ROOT / "README.md").read_text()
    assert bbob.readme_tables(table) in readme
    assert bbob.stops_markdown(bbob.stop_reasons(saved["runs"])) in readme
