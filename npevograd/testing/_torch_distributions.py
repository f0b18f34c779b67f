"""The torch.distributions equivalent of each npevograd distribution, and its log_prob and score by autograd.

Part of :mod:`npevograd.testing` (re-exported there): the float64 torch rebuilding of
a distribution that its reference values are computed from.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..distributions import Bernoulli, Categorical, Distribution, Grad, MixNormal, MultivariateNormal, Normal

# distribution(params) -> torch.distributions.Distribution, params: name -> float64 tensor
TorchDistributionFactory = Callable[[dict], Any]


def _torch():
    try:
        import torch
    except ImportError as err:  # pragma: no cover - exercised only without torch
        raise ImportError(
            "npevograd.testing needs PyTorch for its reference values: pip install torch "
            "(in pytest, guard the test with pytest.importorskip('torch'))"
        ) from err
    return torch


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
