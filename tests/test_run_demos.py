"""The run layer's demos (issue 21): each runs a few generations through run_all's tiny arguments, and what
each says about its run holds (evaluations, the checkpoint resume, the policy's size)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

DEMOS_DIR = Path(__file__).resolve().parent.parent / "demos"
NAMES = ["rotated_ellipsoid", "cartpole_mlp", "rastrigin_ipop"]
if str(DEMOS_DIR) not in sys.path:  # the demos import their shared helpers as ``_common``
    sys.path.append(str(DEMOS_DIR))

import run_all  # noqa: E402  (demos/run_all.py, found through the path above)

_load = run_all.load_demo


def test_run_all_runs_the_three_demos():
    assert set(NAMES) <= set(run_all.EXTRAS) and set(NAMES) <= set(run_all.ARGS)


@pytest.mark.parametrize("name", NAMES)
def test_each_demo_runs_a_few_generations_and_counts_its_evaluations(name):
    if name == "cartpole_mlp":
        pytest.importorskip("gymnasium")
    result = _load(name).main(run_all.ARGS[name][1] + ["--seed", "2", "--print-every", "0"])
    best = result["history"]["objective"]
    assert result["steps"] == len(best) == (3 if name == "cartpole_mlp" else 5)
    assert name == "cartpole_mlp" or np.all(np.diff(best) <= 0)  # the best so far (CartPole: the mean's return)
    assert result["evaluations"] > 0 and result["objective"] == best[-1]


def test_rotated_ellipsoid_is_the_rotated_ellipsoid():
    demo = _load("rotated_ellipsoid")
    f = demo.rotated_ellipsoid(4, seed=0)
    rotation, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((4, 4)))
    x = np.random.default_rng(1).standard_normal((3, 4))
    expected = [sum(1e6 ** (i / 3) * (rotation @ row)[i] ** 2 for i in range(4)) for row in x]
    np.testing.assert_allclose(f(x), expected, rtol=1e-12)
    assert f(np.zeros((1, 4)))[0] == 0


def test_rastrigin_ipop_resumes_from_its_checkpoint_bit_for_bit():
    args = ["--steps", "400", "--checkpoint-at", "150", "--dim", "4", "--verify", "--print-every", "0"]
    result = _load("rastrigin_ipop").main(args)
    assert result["resumed_identically"] is True
    assert len(result["popsizes"]) >= 2 and result["popsizes"][1] == 2 * result["popsizes"][0]


def test_cartpole_mlp_policy_has_about_a_hundred_weights_and_pools_equal_serial():
    pytest.importorskip("gymnasium")
    demo = _load("cartpole_mlp")
    assert demo.mlp_size(16) == 97
    tiny = ["--steps", "2", "--episodes", "2", "--print-every", "0", "--seed", "1"]
    serial = demo.main(tiny + ["--workers", "0"])
    pooled = demo.main(tiny + ["--workers", "2"])
    np.testing.assert_array_equal(serial["history"]["objective"], pooled["history"]["objective"])
    assert serial["final"] == pooled["final"]
