"""npevograd: score-function gradients of expectations, written out by hand in NumPy.

The gradient of an expected fitness, of the variance of behaviours and of their
kernel-density entropy with respect to the parameters of the sampling
distribution, as in EvoGrad (Uber Research), without an autodiff framework.
All objectives are maximised: gradients point uphill.
"""

from ._base import Distribution
from .discrete import Bernoulli, Categorical
from .estimators import Entropy, Estimate, Estimator, Mean, Variance, expectation
from .mixture import MixNormal
from .multivariate import MultivariateNormal
from .noise import EncodedSamples, NoiseTable
from .normal import Normal, PairedNormal
from .reuse import ReuseBuffer
from .shaping import centered_ranks, nes_utilities, zscore
from .stderr import gradient_stderr

__version__ = "0.1.0"


def __getattr__(name: str) -> object:
    """``ng.algorithms`` is imported on first use (PEP 562): ``import npevograd`` stays light."""
    if name == "algorithms":
        import importlib

        return importlib.import_module(".algorithms", __name__)
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
    "expectation",
    "gradient_stderr",
    "nes_utilities",
    "zscore",
]
