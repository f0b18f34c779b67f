"""Shared fixtures: one registry of distribution examples that every generic test runs over."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Callable

import numpy as np
import pytest

import npevograd as ng

# name -> factory(dtype) building a distribution with non-trivial parameters
EXAMPLES: dict[str, Callable[[type], ng.Distribution]] = {
    "normal-iso": lambda dt: ng.Normal(np.array([0.3, -1.2, 2.0], dtype=dt), sigma=0.7),
    "normal-iso-learn": lambda dt: ng.Normal(np.array([0.3, -1.2, 2.0], dtype=dt), 0.7, learn_sigma=True),
    "normal-diag": lambda dt: ng.Normal(np.array([1.0, -0.5], dtype=dt), np.array([0.5, 2.0])),
    "normal-diag-learn": lambda dt: ng.Normal(
        np.array([1.0, -0.5, 0.25, 3.0], dtype=dt), np.array([0.5, 2.0, 1.0, 0.1]), learn_sigma=True
    ),
    "paired-normal": lambda dt: ng.PairedNormal(np.array([0.5, 0.1], dtype=dt), 1.5, learn_sigma=True),
    "mix-normal": lambda dt: ng.MixNormal(np.array([[0.0, 0.0], [1.0, 0.5], [-1.0, 2.0]], dtype=dt), 0.8),
    "bernoulli": lambda dt: ng.Bernoulli(np.array([-1.0, 0.0, 0.5, 2.0, -3.0], dtype=dt)),
    "categorical": lambda dt: ng.Categorical(np.array([[0.0, 1.0, -1.0], [2.0, 0.5, 0.0]], dtype=dt)),
    "mvn": lambda dt: ng.MultivariateNormal(
        np.array([0.5, -1.0], dtype=dt), np.array([[1.2, 0.0], [-0.7, 0.4]])
    ),
    "mvn-learn": lambda dt: ng.MultivariateNormal(
        np.array([0.5, -1.0, 2.0], dtype=dt),
        np.array([[1.2, 0.0, 0.0], [-0.7, 0.4, 0.0], [0.3, 0.9, 2.0]]),
        learn_scale=True,
    ),
}


@pytest.fixture(params=sorted(EXAMPLES))
def example(request) -> ng.Distribution:
    """Each registered distribution, float64."""
    return EXAMPLES[request.param](np.float64)


@pytest.fixture(params=[np.float32, np.float64], ids=["float32", "float64"])
def dtype(request) -> type:
    return request.param


def load_reference_script(name: str) -> ModuleType:
    """Import ``tests/reference/<name>.py`` (check or generate) by path."""
    path = Path(__file__).parent / "reference" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_npevograd_reference_{name}", path)
    assert spec is not None and spec.loader is not None, path
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses in the script look their module up here
    spec.loader.exec_module(module)
    return module
