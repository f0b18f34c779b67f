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

import numpy as np
from numpy.typing import DTypeLike

from ..distributions import Distribution
from ..estimators import Estimate
from ._complex_step import _largest
from ._torch_distributions import (
    TorchDistributionFactory,
    torch_log_prob,
    torch_score,
)
from ._torch_objectives import (
    EstimatorLike,
    TorchObjective,
    torch_estimate,
)

_DEFAULT_RTOL = {np.dtype(np.float32): 1e-4, np.dtype(np.float64): 1e-9}


def default_tolerance(dtype: DTypeLike) -> tuple[float, float]:
    """(rtol, atol) for a result of ``dtype``: (1e-4, 0) for float32, (1e-9, 0) for float64."""
    dt = np.dtype(dtype)
    if dt not in _DEFAULT_RTOL:
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return _DEFAULT_RTOL[dt], 0.0


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
        f"{label}: {int(bad.sum())} of {b.size} entries differ; max abs err {_largest(err):.3g}, "
        f"max rel err {_largest(rel):.3g}; worst {label}{where}: npevograd {a[worst]:.10g}, "
        f"torch {b[worst]:.10g}, allowed abs err {allowed[worst]:.3g}"
    )


def _raise(header: str, failures: list[str | None], checked: int, rtol: float, atol: float, scale_text: str) -> None:
    found = [f for f in failures if f is not None]
    if found:
        raise AssertionError(
            f"{header}: {len(found)} of {checked} quantities differ from torch autograd "
            f"(rtol={rtol:g}, atol={atol:g}; allowed abs err = atol + rtol * {scale_text})\n  " + "\n  ".join(found)
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
