"""npevograd against the committed torch and EvoGrad reference values (no torch needed).

tests/reference/reference.npz holds samples, values and the outputs of EvoGrad 0.1.2
(float32) and of torch.distributions autograd (float64), written by
tests/reference/generate.py; tests/reference/check.py makes the comparisons (its
docstring states the tolerances).  npevograd runs on the same samples in float64 and
in float32.  ``python tests/reference/check.py`` prints the counts and largest errors;
with ``-s`` this module prints them too.
"""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest
from conftest import load_reference_script

check = load_reference_script("check")
META, ARRAYS = check.load()
SEEN: list = []  # every Comparison made in this module, for the summary printed at the end


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    if SEEN:
        print("\n" + check.summary(SEEN, "[test_reference] committed reference values"))


def _assert_passed(comparisons: list) -> None:
    SEEN.extend(comparisons)
    failed = [str(c) for c in comparisons if not c.passed]
    assert not failed, f"{len(failed)} of {len(comparisons)} comparisons failed:\n" + "\n".join(failed)


def _evograd_id(case: dict) -> str:
    return f"d{case['d']}-n{case['n']}-s{case['sigma']:g}{'-paired' if case['paired'] else ''}"


@pytest.mark.parametrize("dtype", check.DTYPES)
@pytest.mark.parametrize("i", range(len(META["evograd_cases"])), ids=[_evograd_id(c) for c in META["evograd_cases"]])
def test_matches_evograd(i, dtype):
    """Mean (raw, z-scored), MaxVar and MaxEnt gradients in mu on EvoGrad's own samples."""
    arrays = check.case_arrays(ARRAYS, "evograd", i)
    _assert_passed(check.evograd_comparisons(META["evograd_cases"][i], arrays, dtype))


@pytest.mark.parametrize("dtype", check.DTYPES)
@pytest.mark.parametrize("i", range(len(META["torch_cases"])), ids=[c["name"] for c in META["torch_cases"]])
def test_matches_torch_distributions(i, dtype):
    """log_prob, per-sample score, and every objective's value and gradient (float64 torch)."""
    arrays = check.case_arrays(ARRAYS, "torch", i)
    _assert_passed(check.torch_comparisons(META["torch_cases"][i], arrays, dtype))


def test_committed_file_covers_the_grids_of_issue_3():
    """The grids the issue asks for are the ones on file, so a regeneration cannot shrink them."""
    grid = {(c["d"], c["n"], c["sigma"]) for c in META["evograd_cases"]}
    assert grid == set(itertools.product((1, 4, 16), (20, 200), (0.05, 0.5, 2.0)))
    assert {c["paired"] for c in META["evograd_cases"]} == {False, True}  # Normal and PairedNormal
    assert {"mean", "mean_z"} <= {o["kind"] for o in META["evograd_cases"][0]["objectives"]}
    assert {o["k"] for o in META["evograd_cases"][0]["objectives"] if o["kind"] == "var"} == {1, 2, 3}
    entropy = [o for o in META["evograd_cases"][0]["objectives"] if o["kind"] == "ent"]
    assert {o["k"] for o in entropy} == {1, 2, 3} and len({o["h"] for o in entropy}) >= 3

    kinds = {(c["type"], c.get("learn_sigma"), isinstance(c.get("sigma"), list)) for c in META["torch_cases"]}
    for needed in [("normal", True, False), ("normal", True, True), ("mix", None, False),
                   ("bernoulli", None, False), ("categorical", None, False)]:
        assert needed in kinds, needed
    learned = [c for c in META["torch_cases"] if c.get("learn_sigma")]
    assert learned and all(any(o["kind"] == "ent" for o in c["objectives"]) for c in learned)


def test_stored_inputs_are_float32_exact_and_the_file_is_small():
    """Every input is representable in float32 (the float32 runs see the same inputs)."""
    for key, value in ARRAYS.items():
        name = key.rsplit("/", 1)[1]
        if name in ("x", "fitness", "behaviours", "values2", "mu") or name.startswith("param_"):
            if np.issubdtype(value.dtype, np.floating):
                np.testing.assert_array_equal(value.astype(np.float32).astype(value.dtype), value, err_msg=key)
    assert os.path.getsize(check.DEFAULT_PATH) < 512 * 1024
