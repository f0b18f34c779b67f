"""Testing: assertions of npevograd's results against torch autograd and against the complex step.

The top wing beside ``algorithms``: it builds on ``distributions`` and ``estimators``.  torch is
imported inside the functions only, so ``import npevograd.testing`` works without it;
``assertions`` holds the public checks, ``_torch_distributions`` and ``_torch_objectives`` the torch
forms, ``_complex_step`` the NumPy-only check of an estimator's weights.
"""

from ._complex_step import CannotDecide, assert_weights_close
from ._torch_distributions import torch_distribution, torch_log_prob, torch_params, torch_score
from ._torch_objectives import TorchEstimate, torch_estimate, torch_gradient, torch_objective
from .assertions import assert_distribution_close, assert_gradient_close, default_tolerance

__all__ = [
    "CannotDecide",
    "TorchEstimate",
    "assert_distribution_close",
    "assert_gradient_close",
    "assert_weights_close",
    "default_tolerance",
    "torch_distribution",
    "torch_estimate",
    "torch_gradient",
    "torch_log_prob",
    "torch_objective",
    "torch_params",
    "torch_score",
]
