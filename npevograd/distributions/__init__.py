"""Distributions: ``sample``, ``log_prob``, ``score``, ``weighted_score`` and natural gradients.

Builds on ``sampling`` (fresh normals) and ``noise`` (samples as windows of a shared table).
Each distribution owns its parameters and turns per-sample weights into a parameter gradient
with one contraction; the Normal's large contractions and table encoding sit in its private
``_normal_contraction`` and ``_normal_table`` modules.
"""

from ._base import Distribution, Grad
from .discrete import Bernoulli, Categorical
from .factor import FactorNormal
from .mixture import MixNormal
from .multivariate import MultivariateNormal
from .normal import Normal, PairedNormal

__all__ = [
    "Bernoulli",
    "Categorical",
    "Distribution",
    "FactorNormal",
    "Grad",
    "MixNormal",
    "MultivariateNormal",
    "Normal",
    "PairedNormal",
]
