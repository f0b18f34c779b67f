r"""npevograd beside PyTorch autograd: reference gradients and assertions for pytest.

The reference is built the way EvoGrad builds its estimators.  For samples
x_1..x_n and a torch.distributions equivalent of the distribution ``p``, the
probability ratios

.. math::

    r_i = \exp\big(\log p_\theta(x_i) - \operatorname{stop\_grad}(\log p_\theta(x_i))\big)

are all equal to 1, and their gradient is the score,
:math:`\nabla_\theta r_i = \nabla_\theta \log p_\theta(x_i)`.  Any objective
written in torch as a function of the values and of these ratios, J(v, r), then
differentiates under autograd into the score-function estimator

.. math::

    \nabla_\theta J = \sum_i \frac{\partial J}{\partial r_i}\Big|_{r=1}
                      \nabla_\theta \log p_\theta(x_i) = \sum_i w_i\, s_i ,

which is what npevograd writes out by hand.  The reference runs in float64
whatever the dtype of ``p``, so it also serves as the exact value against which
a float32 npevograd result is judged.

Tolerance.  A gradient is a sum of n terms w_i s_i that often cancel (a fitness
with a large constant offset, z-scored fitness), so its rounding error scales
with the size of the terms, not with the size of the sum.  An entry passes when

.. math::

    |a - b| \le \mathrm{atol} + \mathrm{rtol}\, S, \qquad
    S = \sum_i |w_i|\,|s_i| \;\ge\; |b|,

a the npevograd entry, b the torch entry, w_i and s_i taken from torch.  For
the objective's value the scale is :math:`\max(|J|, \sum_i |w_i|)`; for
``log_prob`` and ``score`` it is the largest magnitude in the compared array.
Default rtol: 1e-9 for float64 results, 1e-4 for float32 (about 2**-13, room
for a sum of a few thousand float32 terms); default atol 0.

Usage, in a pytest test (``pytest.importorskip("torch")`` first)::

    assert_gradient_close(p, ng.Entropy(bandwidth=1.0), behaviours, x)   # built-in
    assert_gradient_close(p, MyEstimator(), values, x)   # defines torch_objective(values, ratio)
    assert_gradient_close(p, MyEstimator(), values, x,
                          objective=lambda v, r: torch.log(torch.mean(torch.exp(v) * r)))

torch is imported inside the functions only: ``import npevograd.testing`` is
cheap and works without torch until a function that needs it is called.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Union

import numpy as np
from numpy.typing import DTypeLike

from ._base import Distribution, Grad
from ._checks import as_float_array
from ._weights_check import assert_weights_close
from .discrete import Bernoulli, Categorical
from .estimators import Entropy, Estimate, Estimator, Mean, Variance, expectation
from .mixture import MixNormal
from .multivariate import MultivariateNormal
from .normal import Normal

__all__ = [
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

# objective(values, ratio) -> torch scalar (or tensor, for expectation's Jacobian)
TorchObjective = Callable[[Any, Any], Any]
# distribution(params) -> torch.distributions.Distribution, params: name -> float64 tensor
TorchDistributionFactory = Callable[[dict], Any]
EstimatorLike = Union[Estimator, Callable[..., Estimate]]

_DEFAULT_RTOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-9}


def _torch():
    try:
        import torch
    except ImportError as err:  # pragma: no cover - exercised only without torch
        raise ImportError(
            "npevograd.testing needs PyTorch for its reference values: pip install torch "
            "(in pytest, guard the test with pytest.importorskip('torch'))"
        ) from err
    return torch


def default_tolerance(dtype: DTypeLike) -> tuple[float, float]:
    """(rtol, atol) for a result of ``dtype``: (1e-4, 0) for float32, (1e-9, 0) for float64."""
    dt = np.dtype(dtype)
    if dt not in _DEFAULT_RTOL:
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return _DEFAULT_RTOL[dt], 0.0


# --------------------------------------------------------------------------- distributions


def torch_params(p: Distribution) -> dict:
    """float64 leaf tensors (``requires_grad=True``) copied from ``p.params``."""
    torch = _torch()
    return {
        name: torch.tensor(np.asarray(value, dtype=np.float64), dtype=torch.float64, requires_grad=True)
        for name, value in p.params.items()
    }


def torch_distribution(p: Distribution, params: dict | None = None) -> Any:
    r"""The torch.distributions equivalent of ``p``, with parameters taken from ``params``.

    ``params`` maps each name of ``p.params`` to a float64 tensor (default:
    :func:`torch_params`); fixed quantities (a sigma that is not learned) come from ``p``.

    - ``Normal`` / ``PairedNormal`` (same density): ``Independent(Normal(mu, sigma), 1)``,
      an isotropic scalar sigma expanded to (d,), so its gradient sums over coordinates.
    - ``MixNormal``: ``MixtureSameFamily(Categorical(equal weights),
      Independent(Normal(mus, sigma), 1))``, :math:`p(x) = \frac1K \sum_k N(x; \mu_k, \sigma^2 I)`.
    - ``Bernoulli``: ``Independent(Bernoulli(logits=logits), 1)``.
    - ``Categorical``: ``Independent(Categorical(logits=logits), 1)``, logits (d, m).
    - ``MultivariateNormal``: ``MultivariateNormal(mu, scale_tril=tril(L))``; the ``tril``
      makes the gradient above the diagonal exactly zero, as npevograd's.

    A distribution of your own: pass ``distribution=`` to the functions of this module,
    a callable ``params -> torch.distributions.Distribution`` over the same event.
    """
    torch = _torch()
    dist = torch.distributions
    if params is None:
        params = torch_params(p)

    def const(value: np.ndarray) -> Any:
        return torch.tensor(np.asarray(value, dtype=np.float64), dtype=torch.float64)

    if isinstance(p, Normal):
        mu = params["mu"]
        sigma = params["sigma"] if p.learn_sigma else const(p.sigma)
        return dist.Independent(dist.Normal(mu, sigma.expand(mu.shape)), 1)
    if isinstance(p, MixNormal):
        mus = params["mus"]
        n_components = mus.shape[0]
        weights = dist.Categorical(logits=torch.zeros(n_components, dtype=torch.float64))
        components = dist.Independent(dist.Normal(mus, const(p.sigma).expand(mus.shape)), 1)
        return dist.MixtureSameFamily(weights, components)
    if isinstance(p, Bernoulli):
        return dist.Independent(dist.Bernoulli(logits=params["logits"]), 1)
    if isinstance(p, Categorical):
        return dist.Independent(dist.Categorical(logits=params["logits"]), 1)
    if isinstance(p, MultivariateNormal):
        scale = params["scale_tril"] if p.learn_scale else const(p.scale_tril)
        return dist.MultivariateNormal(params["mu"], scale_tril=torch.tril(scale))
    raise TypeError(
        f"no torch.distributions equivalent is known for {type(p).__name__}; pass "
        "distribution=callable(params) returning a torch.distributions.Distribution, "
        "params being a dict of float64 tensors named as p.params"
    )


def _torch_x(p: Distribution, x: object) -> Any:
    """The samples as a torch tensor: int64 for Categorical, float64 otherwise (exact casts)."""
    torch = _torch()
    x = p.check_x(x)
    if np.issubdtype(x.dtype, np.integer):
        return torch.as_tensor(np.asarray(x, dtype=np.int64))
    return torch.as_tensor(np.asarray(x, dtype=np.float64))


def _build(p: Distribution, distribution: TorchDistributionFactory | None) -> tuple[dict, Any]:
    params = torch_params(p)
    made = torch_distribution(p, params) if distribution is None else distribution(params)
    return params, made


def torch_log_prob(p: Distribution, x: object, distribution: TorchDistributionFactory | None = None) -> np.ndarray:
    """log p_theta(x_i) from torch.distributions in float64, shape (n,)."""
    _, made = _build(p, distribution)
    return made.log_prob(_torch_x(p, x)).detach().numpy()


def _per_sample_grads(outputs: Any, inputs: list, chunk: int = 256) -> list[np.ndarray]:
    """Jacobian of a vector ``outputs`` (n,) w.r.t. each tensor of ``inputs``: (n, *shape) each."""
    torch = _torch()
    n = outputs.shape[0]
    rows: list[list[np.ndarray]] = [[] for _ in inputs]
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        eye = torch.zeros((stop - start, n), dtype=outputs.dtype)
        eye[torch.arange(stop - start), torch.arange(start, stop)] = 1
        try:  # one vectorised backward per chunk of samples
            grads = torch.autograd.grad(
                outputs, inputs, grad_outputs=eye, retain_graph=True, allow_unused=True, is_grads_batched=True
            )
        except (RuntimeError, NotImplementedError):  # an op without a batching rule: one backward per sample
            per_row = [
                torch.autograd.grad(outputs, inputs, grad_outputs=row, retain_graph=True, allow_unused=True)
                for row in eye
            ]
            grads = tuple(
                None if per_row[0][k] is None else torch.stack([g[k] for g in per_row]) for k in range(len(inputs))
            )
        for k, (g, t) in enumerate(zip(grads, inputs)):
            rows[k].append(np.zeros((stop - start, *t.shape)) if g is None else g.detach().numpy())
    return [np.concatenate(r, axis=0) for r in rows]


def torch_score(p: Distribution, x: object, distribution: TorchDistributionFactory | None = None) -> Grad:
    r"""Per-sample score :math:`\nabla_\theta \log p_\theta(x_i)` by autograd: name -> (n, *shape)."""
    params, made = _build(p, distribution)
    log_p = made.log_prob(_torch_x(p, x))
    names = list(params)
    return dict(zip(names, _per_sample_grads(log_p, [params[k] for k in names])))


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


# --------------------------------------------------------------------------- assertions


def _mismatch(label: str, actual: object, expected: object, scale: object, rtol: float, atol: float) -> str | None:
    """None if |a - b| <= atol + rtol * scale everywhere, else one line describing the worst entry."""
    a = np.asarray(actual, dtype=np.float64)
    b = np.asarray(expected, dtype=np.float64)
    if a.shape != b.shape:
        return f"{label}: npevograd shape {a.shape}, torch shape {b.shape}"
    err = np.abs(a - b)
    allowed = atol + rtol * np.broadcast_to(np.asarray(scale, dtype=np.float64), b.shape)
    bad = ~(err <= allowed)  # NaN counts as bad
    if not bad.any():
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(err == 0, 0.0, err / np.abs(b))
        excess = np.where(bad, err / np.where(allowed > 0, allowed, np.inf), 0)
    worst = np.unravel_index(int(np.nanargmax(np.where(np.isnan(excess), np.inf, excess))), b.shape)
    where = f"[{', '.join(map(str, worst))}]" if b.ndim else ""
    return (
        f"{label}: {int(bad.sum())} of {b.size} entries differ; max abs err {np.nanmax(err):.3g}, "
        f"max rel err {np.nanmax(rel):.3g}; worst {label}{where}: npevograd {a[worst]:.10g}, "
        f"torch {b[worst]:.10g}, allowed abs err {allowed[worst]:.3g}"
    )


def _raise(
    header: str, failures: list[str | None], checked: int, rtol: float, atol: float, scale_text: str
) -> None:
    found = [f for f in failures if f is not None]
    if found:
        raise AssertionError(
            f"{header}: {len(found)} of {checked} quantities differ from torch autograd "
            f"(rtol={rtol:g}, atol={atol:g}; allowed abs err = atol + rtol * {scale_text})\n  "
            + "\n  ".join(found)
        )


def _tolerance(dtype: np.dtype, rtol: float | None, atol: float | None) -> tuple[float, float]:
    default_rtol, default_atol = default_tolerance(dtype if dtype in _DEFAULT_RTOL else np.float64)
    return (default_rtol if rtol is None else float(rtol)), (default_atol if atol is None else float(atol))


def assert_gradient_close(
    p: Distribution,
    estimator: EstimatorLike,
    values: object,
    x: object,
    rtol: float | None = None,
    atol: float | None = None,
    *,
    objective: TorchObjective | None = None,
    distribution: TorchDistributionFactory | None = None,
    check_value: bool = True,
    log_proposal: object = None,
) -> Estimate:
    r"""Assert that npevograd's ``estimator(values, x, p)`` matches torch autograd.

    Every gradient entry must satisfy :math:`|a - b| \le \mathrm{atol} + \mathrm{rtol}
    \sum_i |w_i|\,|s_i|` (a npevograd, b torch; see the module docstring), and with
    ``check_value`` the value :math:`|a - b| \le \mathrm{atol} + \mathrm{rtol}\max(|J|,
    \sum_i|w_i|)`.  Defaults from :func:`default_tolerance` for the dtype of
    npevograd's gradient (float32: rtol 1e-4, float64: rtol 1e-9).

    ``estimator`` is an ``Estimator`` (built-in or your own subclass) or
    :func:`npevograd.expectation`; for your own, define ``torch_objective(values, ratio)``
    on it or pass ``objective=`` (see :func:`torch_objective`).

    With ``log_proposal`` (log q(x_i)) both sides reweight the samples by rho_i = p(x_i)/q(x_i)
    (sample reuse): npevograd's ``estimator(values, x, p, log_proposal=...)`` against autograd
    of J at r_i = rho_i exp(log p_theta(x_i) - stop_grad(log p_theta(x_i))).

    Raises ``AssertionError`` listing each parameter that differs with its max abs and
    max rel error and its worst entry.  Returns npevograd's ``Estimate``.
    """
    # first: npevograd's own input validation gives the clearer errors
    result = estimator(values, x, p) if log_proposal is None else estimator(values, x, p, log_proposal=log_proposal)
    reference = torch_estimate(
        p, estimator, values, x, objective=objective, distribution=distribution, log_proposal=log_proposal
    )
    if not isinstance(result, Estimate):
        raise TypeError(f"estimator must return an npevograd Estimate, got {type(result).__name__}")
    dtypes = [np.asarray(g).dtype for g in result.grad.values()]
    dtype = np.dtype(np.float32) if dtypes and all(d == np.float32 for d in dtypes) else np.dtype(np.float64)
    rtol_, atol_ = _tolerance(dtype, rtol, atol)
    failures: list[str | None] = []
    for name in reference.grad:
        if name not in result.grad:
            failures.append(f"grad[{name!r}]: missing from npevograd's gradient")
            continue
        failures.append(
            _mismatch(f"grad[{name!r}]", result.grad[name], reference.grad[name], reference.scale[name], rtol_, atol_)
        )
    failures += [f"grad[{name!r}]: not a parameter of p" for name in result.grad if name not in reference.grad]
    if check_value:
        failures.append(_mismatch("value", result.value, reference.value, reference.value_scale, rtol_, atol_))
    name = getattr(estimator, "__name__", type(estimator).__name__)
    _raise(
        f"{name} on {p!r}",
        failures,
        len(reference.grad) + int(check_value),
        rtol_,
        atol_,
        "sum_i |w_i| |score_i| (value: max(|J|, sum_i |w_i|))",
    )
    return result


def assert_distribution_close(
    p: Distribution,
    x: object,
    rtol: float | None = None,
    atol: float | None = None,
    *,
    distribution: TorchDistributionFactory | None = None,
) -> None:
    """Assert ``p.log_prob(x)`` and ``p.score(x)`` match torch.distributions and per-sample autograd.

    An array passes when every entry has :math:`|a - b| \\le \\mathrm{atol} + \\mathrm{rtol}\\max|b|`.
    """
    rtol_, atol_ = _tolerance(p.dtype, rtol, atol)
    failures: list[str | None] = []
    expected_lp = torch_log_prob(p, x, distribution)
    failures.append(_mismatch("log_prob", p.log_prob(x), expected_lp, np.max(np.abs(expected_lp)), rtol_, atol_))
    expected = torch_score(p, x, distribution)
    actual = p.score(x)
    for name, b in expected.items():
        failures.append(_mismatch(f"score[{name!r}]", actual[name], b, np.max(np.abs(b), initial=0.0), rtol_, atol_))
    _raise(f"{p!r}", failures, 1 + len(expected), rtol_, atol_, "max |torch value| of the array")
