"""`import npevograd` stays light: the heavy modules load only when a function needs them."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

HEAVY = ("scipy.special", "scipy.stats", "scipy.linalg", "scipy.spatial", "torch", "matplotlib", "dask")


def _modules_after(statement: str) -> set[str]:
    """The names in sys.modules after running ``statement`` in a fresh interpreter."""
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return set(json.loads(out.stdout.splitlines()[-1]))


def test_import_loads_no_heavy_module():
    loaded = _modules_after("import npevograd")
    assert "npevograd" in loaded
    assert "npevograd.algorithms" not in loaded  # ng.algorithms loads on first use (PEP 562 __getattr__)
    assert sorted(m for m in loaded if m.split(".")[0] in {"torch", "matplotlib", "dask"} or m in HEAVY) == []


@pytest.mark.parametrize(
    ("statement", "module"),
    [
        ("import npevograd as ng; ng.Bernoulli([0.0, 1.0]).probs", "scipy.special"),
        ("import npevograd as ng; ng.MixNormal([[0.0], [1.0]]).log_prob([[0.5]])", "scipy.special"),
        ("import npevograd as ng; ng.algorithms.SNES", "npevograd.algorithms.snes"),
    ],
)
def test_scipy_special_loads_when_first_used(statement, module):
    # the lazy import is real: the function that needs scipy.special still gets it
    assert module in _modules_after(statement)
