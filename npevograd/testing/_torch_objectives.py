"""The torch form of each estimator's objective, and the reference estimate by autograd.

Part of :mod:`npevograd.testing` (re-exported there): an objective J(values, ratio)
written in torch, differentiated through the probability ratios (see that module).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Union

import numpy as np

from .._checks import as_float_array
from ..distributions import Distribution, Grad
from ..estimators import Entropy, Estimate, Estimator, Mean, Variance, expectation
from ._torch_distributions import (
    TorchDistributionFactory,
    _build,
    _per_sample_grads,
    _torch,
    _torch_x,
)

# objective(values, ratio) -> torch scalar (or tensor, for expectation's Jacobian)
TorchObjective = Callable[[Any, Any], Any]
EstimatorLike = Union[Estimator, Callable[..., Estimate]]


# --------------------------------------------------------------------------- objectives


def _zscore_columns(b: Any) -> Any:
    """(b - mean) / std per column, std with ddof=1 (torch's default), as EvoGrad's demos."""
    b = b.reshape(b.shape[0], -1)
    return (b - b.mean(0)) / b.std(0)


def _mean_objective(estimator: Mean) -> TorchObjective:
    def objective(values: Any, ratio: Any) -> Any:
        torch = _torch()
        f = values.reshape(values.shape[0])  # (n,) or (n, 1) -> (n,)
        if estimator.shaping is not None:
            # the shaping depends on the values only, not on theta: applied outside autograd
            shaped = np.asarray(estimator.shaping(f.detach().numpy()), dtype=np.float64)
            f = torch.as_tensor(shaped.reshape(f.shape[0]))
        if estimator.normalize:
            return torch.sum(f * ratio) / torch.sum(ratio)  # J = sum_i r_i f_i / sum_i r_i
        if estimator.baseline is None:
            return torch.mean(f * ratio)  # J = (1/n) sum_i f_i r_i
        b = torch.as_tensor(estimator._baselines(f.detach().numpy()))  # b_i, held constant
        return torch.mean(f * ratio - b * (ratio - 1))  # J = (1/n) sum_i f_i r_i - b_i (r_i - 1)

    return objective


def _variance_objective(values: Any, ratio: Any) -> Any:
    torch = _torch()
    z = _zscore_columns(values)
    return torch.mean((z**2).sum(1) * ratio)  # J = (1/n) sum_i ||z_i||^2 r_i


def _entropy_objective(estimator: Entropy) -> TorchObjective:
    def objective(values: Any, ratio: Any) -> Any:
        torch = _torch()
        z = _zscore_columns(values) if estimator.standardize else values.reshape(values.shape[0], -1)
        sq_dist = ((z[:, None, :] - z[None, :, :]) ** 2).sum(-1)
        kernel = torch.exp(-sq_dist / estimator.bandwidth**2)  # K_ij
        density = torch.mean(kernel * ratio[:, None], 0)  # phat_j = (1/n) sum_i K_ij r_i
        return torch.mean(-torch.log(density) * ratio)  # J = (1/n) sum_j -log(phat_j) r_j

    return objective


def _expectation_objective(values: Any, ratio: Any) -> Any:
    torch = _torch()
    r = ratio.reshape((ratio.shape[0],) + (1,) * (values.dim() - 1))
    return torch.mean(values * r, 0)  # J = (1/n) sum_i v_i r_i, one entry per output


def torch_objective(estimator: EstimatorLike) -> TorchObjective:
    r"""The torch form J(values, ratio) of an estimator's objective.

    In order of precedence:

    1. the estimator's own method ``torch_objective(values, ratio)``, if it has one;
    2. the built-in form, for ``Mean`` (J = mean(f r), shaping applied outside autograd),
       ``Variance`` (J = mean(||z||^2 r)), ``Entropy`` (J = mean(-log(mean_i(K_ij r_i)) r_j))
       and :func:`npevograd.expectation` (J = mean over axis 0 of v r), also for
       subclasses that keep the built-in ``weights``;
    3. otherwise a ``TypeError`` saying how to supply one.

    ``values`` is a float64 tensor of the values exactly as passed to the estimator
    (e.g. (n,), (n, 1) or (n, k)); ``ratio`` is the (n,) ratio tensor described in the
    module docstring.  Writing J from the weights would be circular: write the objective.
    """
    own = getattr(estimator, "torch_objective", None)
    if callable(own):
        return own
    if estimator is expectation:
        return _expectation_objective
    # a subclass that keeps the built-in weights keeps the built-in objective
    if isinstance(estimator, Mean) and type(estimator).weights is Mean.weights:
        return _mean_objective(estimator)
    if isinstance(estimator, Variance) and type(estimator).weights is Variance.weights:
        return _variance_objective
    if isinstance(estimator, Entropy) and type(estimator).weights is Entropy.weights:
        return _entropy_objective(estimator)
    name = getattr(estimator, "__name__", type(estimator).__name__)
    raise TypeError(
        f"no torch form is known for the estimator {name}: give it a method "
        "torch_objective(self, values, ratio) returning the torch objective J, or pass "
        "objective=callable(values, ratio) to this function"
    )


# --------------------------------------------------------------------------- reference


@dataclass(frozen=True)
class TorchEstimate:
    r"""The torch-autograd reference for one objective on one set of samples (float64).

    ``value``: J at r = 1.  ``grad``: name -> :math:`\nabla_\theta J` (value.shape +
    param.shape).  ``weights``: :math:`w_i = \partial J/\partial r_i`, shape (n,) +
    value.shape.  ``scale``: name -> :math:`S = \sum_i |w_i|\,|s_i|`, the size of the
    terms the gradient sums, same shape as ``grad``.  ``value_scale``:
    :math:`\max(|J|, \sum_i |w_i|)`.
    """

    value: float | np.ndarray
    grad: Grad
    weights: np.ndarray
    scale: Grad
    value_scale: float | np.ndarray


def torch_estimate(
    p: Distribution,
    estimator: EstimatorLike,
    values: object,
    x: object,
    *,
    objective: TorchObjective | None = None,
    distribution: TorchDistributionFactory | None = None,
    log_proposal: object = None,
) -> TorchEstimate:
    """Value, gradient, weights and term scale of the objective by torch autograd, in float64.

    ``objective`` (``J(values, ratio)``) overrides :func:`torch_objective`;
    ``distribution`` (``params -> torch distribution``) overrides :func:`torch_distribution`.
    ``log_proposal`` (log q(x_i), shape (n,)): samples drawn from q, ratios
    r_i = exp(log p_theta(x_i) - log q(x_i)) = rho_i, whose gradient is rho_i times the
    score; ``weights`` are then dJ/dr_i at r = rho and the term scale uses rho_i |dJ/dr_i|.
    """
    torch = _torch()
    if not isinstance(p, Distribution):
        raise TypeError(f"p must be an npevograd Distribution, got {type(p).__name__}")
    if objective is None:
        objective = torch_objective(estimator)
    elif not callable(objective):
        raise TypeError(f"objective must be callable(values, ratio) or None, got {type(objective).__name__}")
    x_t = _torch_x(p, x)
    n = x_t.shape[0]
    v = as_float_array("values", values, dtype=np.dtype(np.float64))
    if v.ndim == 0 or v.shape[0] != n:
        raise ValueError(f"values has shape {v.shape} but x has {n} samples; expected values of shape ({n}, ...)")
    params, made = _build(p, distribution)
    names = list(params)
    log_p = made.log_prob(x_t)
    log_q = log_p.detach() if log_proposal is None else torch.as_tensor(np.asarray(log_proposal, dtype=np.float64))
    ratio = torch.exp(log_p - log_q)  # value rho (1 without a proposal), gradient: rho times the score
    out = objective(torch.as_tensor(v), ratio)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"objective must return a torch tensor, got {type(out).__name__}")
    flat = out.reshape(-1)
    grads: dict[str, list[np.ndarray]] = {k: [] for k in names}
    weights = []
    for k in range(flat.shape[0]):
        got = torch.autograd.grad(flat[k], [ratio] + [params[m] for m in names], retain_graph=True, allow_unused=True)
        weights.append(np.zeros(n) if got[0] is None else got[0].detach().numpy())
        for m, g in zip(names, got[1:]):
            grads[m].append(np.zeros(tuple(params[m].shape)) if g is None else g.detach().numpy())
    scores = dict(zip(names, _per_sample_grads(log_p, [params[k] for k in names])))
    out_shape = tuple(out.shape)
    w = np.stack(weights, axis=-1)  # (n, n_outputs)
    rho = ratio.detach().numpy()[:, None]
    grad, scale = {}, {}
    for m in names:
        s = np.abs(scores[m]).reshape(n, -1)  # (n, param size)
        grad[m] = np.stack(grads[m]).reshape(out_shape + tuple(params[m].shape))
        scale[m] = (np.abs(w * rho).T @ s).reshape(out_shape + tuple(params[m].shape))  # sum_i rho_i |w_i||s_i|
    value_arr = out.detach().numpy()
    value_scale = np.maximum(np.abs(value_arr), np.abs(w).sum(0).reshape(out_shape))
    if out_shape == ():
        return TorchEstimate(float(value_arr), grad, w[:, 0], scale, float(value_scale))
    return TorchEstimate(value_arr, grad, w.reshape((n,) + out_shape), scale, value_scale)


def torch_gradient(
    p: Distribution,
    estimator: EstimatorLike,
    values: object,
    x: object,
    *,
    objective: TorchObjective | None = None,
    distribution: TorchDistributionFactory | None = None,
) -> Grad:
    r"""The torch-autograd gradient of the estimator's objective on these samples (float64).

    :math:`\nabla_\theta J(v, r(\theta))` with :math:`r_i = \exp(\log p_\theta(x_i) -
    \operatorname{stop\_grad}\log p_\theta(x_i))`; name -> array of ``p.params[name]``'s
    shape (for ``expectation`` with values (n, m...): (m..., *param.shape)).
    """
    return torch_estimate(p, estimator, values, x, objective=objective, distribution=distribution).grad
