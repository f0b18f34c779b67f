"""The demos: each runs, prints labelled progress, reaches its end state; run_all's summary."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import npevograd as ng

DEMOS_DIR = Path(__file__).resolve().parent.parent / "demos"


def _needs(name: str) -> None:
    """Skip a run of a demo whose simulator is not installed (the CartPole demos need gymnasium)."""
    if name.startswith("cartpole"):
        pytest.importorskip("gymnasium")


def _load(name: str):
    if str(DEMOS_DIR) not in sys.path:  # the demos import their shared helpers as ``_common``
        sys.path.append(str(DEMOS_DIR))
    spec = importlib.util.spec_from_file_location(f"_test_demo_{name}", DEMOS_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


run_all = _load("run_all")
ALL = run_all.ONE_D + run_all.EXTRAS
TINY = {name: tiny for name, (_, tiny) in run_all.ARGS.items()}


@pytest.mark.parametrize("name", ALL)
def test_every_demo_runs_a_few_steps_and_reports_its_own_history(name):
    _needs(name)
    result = _load(name).main(TINY[name] + ["--seed", "3", "--print-every", "0"])
    assert result["name"] == name and result["seed"] == 3
    history = result["history"]
    steps = result["steps"]
    assert len(history["objective"]) == steps and result["objective"] == history["objective"][-1]
    if "mu" in history and name != "cartpole":
        final = np.sort(history["mu"][-1]) if name == "mixture_interference" else history["mu"][-1]
        np.testing.assert_array_equal(result["final"], final)
        assert len(history["mu"]) == steps + 1
    assert np.all(np.isfinite(np.asarray(history["objective"], dtype=float)))
    assert result["seconds"] > 0


@pytest.mark.parametrize("name", ALL)
def test_every_demo_has_help_with_steps_and_seed(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _load(name).main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--steps" in out and "--seed" in out and "usage:" in out


@pytest.mark.parametrize("name", ["standard_quadratic", "max_ent_interference", "snes_rastrigin", "cartpole"])
def test_same_seed_same_run_other_seed_other_run(name):
    _needs(name)
    demo = _load(name)
    args = TINY[name] + ["--print-every", "0"]
    a, b, c = (demo.main(args + ["--seed", s]) for s in ("0", "0", "1"))
    np.testing.assert_array_equal(a["history"]["objective"], b["history"]["objective"])
    assert not np.array_equal(a["history"]["objective"], c["history"]["objective"])


def test_quadratic_first_step_is_the_zscored_score_function_step():
    # mu_1 = mu_0 + lr * (1/n) sum_i z_i (x_i - mu_0) / sigma^2 on the same draws.
    result = _load("standard_quadratic").main(["--steps", "1", "--seed", "7", "--print-every", "0"])
    x = 1.0 + 0.5 * np.random.default_rng(7).standard_normal((500, 1))[:, 0]
    f = -((x - 5.0) ** 2)
    z = (f - f.mean()) / f.std(ddof=1)
    mu1 = 1.0 + 0.03 * np.mean(z * (x - 1.0)) / 0.25
    assert result["final"] == pytest.approx(mu1, rel=1e-12)
    assert result["objective"] == pytest.approx(f.mean(), rel=1e-12)


@pytest.mark.parametrize(
    "name, label",
    [
        ("standard_quadratic", "mean f(x)"),
        ("standard_interference", "mean f(x)"),
        ("max_var_interference", "var b(x)"),
        ("max_ent_interference", "entropy J"),
    ],
)
def test_progress_lines_label_mu_and_the_objective(name, label, capsys):
    result = _load(name).main(["--steps", "4", "--population", "40", "--print-every", "2"])
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(f"[{name}]")]
    assert len(lines) == 2
    last = lines[-1].split()
    assert last[1:3] == ["step", "4"] and last[3] == "mu"
    assert float(last[4]) == pytest.approx(result["final"], abs=5e-5)
    assert " ".join(last[5:-1]) == label
    assert float(last[-1]) == pytest.approx(result["objective"], abs=5e-5)


def test_max_ent_demo_objective_is_the_entropy_estimate_of_its_samples():
    # Re-draw the first generation's samples and check the reported J and the step.
    result = _load("max_ent_interference").main(["--steps", "1", "--population", "60", "--print-every", "0"])
    x = 1.0 + 0.5 * np.random.default_rng(0).standard_normal((60, 1))
    p = ng.Normal(np.array([1.0]), 0.5)
    est = ng.Entropy(1.0)(5 * np.sin(0.2 * x[:, 0]) * np.sin(20 * x[:, 0]), x, p)
    assert result["objective"] == pytest.approx(est.value, rel=1e-12)
    assert result["final"] == pytest.approx(1.0 + 0.10 * est.grad["mu"][0], rel=1e-12)


def test_run_all_tiny_summary_numbers_come_from_the_runs(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    _needs("cartpole")
    out = tmp_path / "demos.png"
    summary = run_all.main(["--tiny", "--seeds", "2", "--out", str(out)])
    printed = capsys.readouterr().out
    results, rows = summary["results"], summary["rows"]
    assert [r["demo"] for r in rows] == ALL
    for row in rows:
        runs = results[row["demo"]]
        expected_seeds = [0, 1] if row["demo"] in run_all.ONE_D + ["cartpole"] else [0]
        assert row["seeds"] == expected_seeds == [r["seed"] for r in runs]
        assert row["final"] == [r["final"] for r in runs]
        assert row["objective"] == pytest.approx(np.mean([r["objective"] for r in runs]))
        assert row["seconds"] == pytest.approx(sum(r["seconds"] for r in runs))
        line = next(ln for ln in summary["table"].splitlines() if ln.startswith(f"| {row['demo']} |"))
        for value in row["final"]:
            assert run_all._fmt(value) in line
        assert f"{row['objective_label']} = {run_all._fmt(row['objective'])} |" in line
    assert summary["table"] in printed
    assert summary["png"] == str(out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000
    assert f"picture written to {out}" in printed


def test_run_all_without_matplotlib_skips_the_png(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    out = tmp_path / "never.png"
    summary = run_all.main(["--tiny", "--seeds", "1", "--only", "standard_quadratic", "--out", str(out)])
    assert summary["png"] is None and not out.exists()
    assert "matplotlib is not installed: PNG skipped" in capsys.readouterr().out


# ---- end states on a fixed seed (reduced steps where the outcome is already clear) ----


@pytest.mark.slow
def test_quadratic_ends_at_five():
    result = _load("standard_quadratic").main(["--steps", "600", "--print-every", "0"])
    assert result["final"] == pytest.approx(5.0, abs=0.1)


@pytest.mark.slow
def test_plain_es_on_interference_stays_near_its_start_while_maxvar_climbs():
    plain = _load("standard_interference").main(["--print-every", "0"])
    assert abs(plain["final"] - 1.0) < 0.5
    assert np.max(np.abs(plain["history"]["mu"] - 1.0)) < 0.6
    maxvar = _load("max_var_interference").main(["--print-every", "0"])
    assert maxvar["final"] == pytest.approx(2.5 * np.pi, abs=0.25)


@pytest.mark.slow
def test_max_ent_climbs_to_the_envelope_peak():
    result = _load("max_ent_interference").main(["--steps", "1500", "--print-every", "0"])
    assert result["final"] == pytest.approx(2.5 * np.pi, abs=0.35)


@pytest.mark.slow
def test_cartpole_reaches_the_maximum_return():
    _needs("cartpole")
    result = _load("cartpole").main(["--steps", "300", "--stop-at", "200", "--print-every", "0"])
    assert result["final"] == 200.0  # the mean policy, on 100 fresh episodes
    assert result["history"]["objective"][0] < 199


@pytest.mark.slow
def test_snes_finds_the_rastrigin_optimum_and_sigma_adapts():
    result = _load("snes_rastrigin").main(["--print-every", "0"])
    sigma = result["history"]["sigma"]
    assert result["final"] > -1e-6  # global maximum is 0
    np.testing.assert_allclose(result["mu"], 0.0, atol=1e-4)
    assert np.all(sigma[0] == 3.0) and np.all(sigma[-1] < 1e-4)
    assert len(np.unique(np.round(np.log10(sigma[-1]), 2))) > 1  # each coordinate at its own pace


@pytest.mark.slow
def test_onemax_is_solved():
    result = _load("onemax_bernoulli").main(["--print-every", "0"])
    assert result["final"] == 100.0 and result["first_solved"] is not None
    assert result["objective"] > 95


@pytest.mark.slow
def test_mixture_components_spread_and_beat_a_single_gaussian():
    demo = _load("mixture_interference")
    mixture = demo.main(["--steps", "1000", "--print-every", "0"])
    single = demo.main(["--steps", "1000", "--mu0", "1.0", "--print-every", "0"])
    assert np.min(np.diff(mixture["final"])) > 1.5  # three distinct places
    assert np.mean(mixture["history"]["objective"][-200:]) > np.mean(single["history"]["objective"][-200:])


# ---- sample reuse (demos/reuse_quadratic.py, demos/reuse_max_ent.py) ----


def test_reuse_demo_with_k_1_is_the_plain_z_scored_step():
    plain = _load("standard_quadratic").main(["--steps", "2", "--seed", "7", "--print-every", "0"])
    pooled = _load("reuse_quadratic").main(
        ["--steps", "2", "--seed", "7", "--reuse", "1", "--population", "500", "--lr", "0.03", "--print-every", "0"]
    )
    np.testing.assert_allclose(pooled["history"]["mu"], plain["history"]["mu"], rtol=1e-12)
    np.testing.assert_array_equal(pooled["history"]["ess"], [500.0, 500.0])


@pytest.mark.parametrize("name", ["reuse_quadratic", "reuse_max_ent"])
def test_reuse_demo_pools_k_generations_and_reports_ess_and_evaluations(name):
    result = _load(name).main(["--steps", "4", "--population", "30", "--reuse", "3", "--print-every", "0"])
    ess = result["history"]["ess"]
    assert ess[0] == 30.0  # one generation: rho = 1
    assert np.all(ess[2:] <= 90) and np.all(ess[2:] > 30)  # three generations pooled, ratios spread a little
    assert result["evaluations"] == 4 * 30


def test_reuse_demo_compare_runs_three_settings(capsys):
    result = _load("reuse_quadratic").main(["--steps", "3", "--population", "20", "--compare", "2", "--print-every",
                                            "0", "--target", "10"])
    settings = [row["setting"] for row in result["comparison"]]
    assert settings == ["plain ES, 500 samples", "plain ES, 20 samples", "reuse k=10, 20 new samples"]
    assert [row["median_evaluations"] for row in result["comparison"]] == [500.0, 20.0, 20.0]  # first step
    assert "target reached in 2/2 seeds" in capsys.readouterr().out


def test_reuse_quadratic_needs_half_the_evaluations_of_plain_es_with_no_worse_end_state():
    demo = _load("reuse_quadratic")
    reused = demo.main(["--print-every", "0"])
    plain = demo.main(["--print-every", "0", "--reuse", "1", "--population", "500"])
    assert reused["evaluations_to_target"] <= plain["evaluations_to_target"] / 2
    assert reused["end_error"] <= 1.1 * plain["end_error"]
    assert reused["final"] == pytest.approx(5.0, abs=0.1)
