"""npevograd: score-function gradients of expectations, written out by hand in NumPy.

The gradient of an expected fitness, of the variance of behaviours and of their
kernel-density entropy with respect to the parameters of the sampling
distribution, as in EvoGrad (Uber Research), without an autodiff framework.
All objectives are maximised: gradients point uphill.

The package is built in wings, each a folder importing only the ones below it:
``sampling`` -> ``noise`` -> ``distributions`` -> ``estimators``, ``parallel``,
``optim`` -> ``algorithms``, ``testing``.
"""

import sys

from . import distributions, estimators
from .distributions import Bernoulli, Categorical, Distribution, MixNormal, MultivariateNormal, Normal, PairedNormal
from .estimators import (
    Entropy,
    Estimate,
    Estimator,
    Mean,
    ReuseBuffer,
    Variance,
    centered_ranks,
    cma_weights,
    expectation,
    gradient_stderr,
    nes_utilities,
    zscore,
)
from .noise import EncodedSamples, NoiseTable

__version__ = "0.1.0"

# Public modules of the flat layout before the wings (0.1.0): their old paths still import,
# so code and pickles that name them (``npevograd.normal.Normal``, ...) keep working.
_MOVED = {
    "normal": distributions.normal,
    "multivariate": distributions.multivariate,
    "mixture": distributions.mixture,
    "discrete": distributions.discrete,
    "shaping": estimators.shaping,
    "stderr": estimators.stderr,
    "reuse": estimators.reuse,
}
for _old, _module in _MOVED.items():
    sys.modules.setdefault(f"{__name__}.{_old}", _module)


def __getattr__(name: str) -> object:
    """``ng.algorithms`` (and ``ng.optimize``) is imported on first use (PEP 562): ``import npevograd`` stays light."""
    if name in ("algorithms", "optimize"):
        import importlib

        algorithms = importlib.import_module(".algorithms", __name__)
        return algorithms if name == "algorithms" else algorithms.optimize
    if name in _MOVED:
        return _MOVED[name]
    raise AttributeError(f"module 'npevograd' has no attribute {name!r}")


__all__ = [
    "Bernoulli",
    "Categorical",
    "Distribution",
    "EncodedSamples",
    "Entropy",
    "Estimate",
    "Estimator",
    "Mean",
    "MixNormal",
    "MultivariateNormal",
    "NoiseTable",
    "Normal",
    "PairedNormal",
    "ReuseBuffer",
    "Variance",
    "centered_ranks",
    "cma_weights",
    "expectation",
    "gradient_stderr",
    "nes_utilities",
    "zscore",
]
