r"""Standard errors of a score-function gradient from its per-sample terms, streamed in row blocks.

A gradient is a sum of n per-sample terms, :math:`g = \sum_i w_i \psi_i` with
:math:`\psi_i = \nabla_\theta \log p_\theta(x_i)`, i.e. the mean of :math:`t_i = n w_i \psi_i`.
Its standard error, entry by entry, is estimated from the spread of those terms:

.. math::

    \mathrm{se}(g) = \sqrt{\frac{1}{n(n-1)} \sum_i (t_i - g)^2}
                   = \sqrt{\frac{n}{n-1} \sum_i \Big(w_i \psi_i - \frac{g}{n}\Big)^2 }

What the number means:

- ``Mean`` without shaping or baseline, with or without a proposal: the t_i are
  independent and identically distributed (f_i rho_i psi_i), so this is the usual
  standard error of the estimate, unbiased in its square.
- ``Mean`` with a baseline, ``normalize=True`` or a shaping, ``Variance`` (frozen
  z-scoring) and ``Entropy``: each w_i depends on the whole batch (the batch mean, the
  z-scoring statistics, the kernel densities), so the t_i are not independent.  The
  number is the plug-in (delta-method) standard error that treats the w_i as fixed:
  it leaves out how one sample moves the other samples' weights.  For the baselines
  and ``normalize`` that part is small (measured over 400 draws of n = 100 on a
  quadratic: 0.94 to 1.01 of the spread, like the plain mean; the tests allow 15%,
  since the spread over 400 draws has a standard error of 3.5%); self-normalised with a
  proposal it under-states the spread somewhat (0.84 to 0.96 of it in the tests),
  since sum_i rho_i is random too.  For z-scored weights
  (``Mean(shaping=zscore)``, ``Variance``) and ``Entropy`` it is not: there the number
  over-states the spread over repeated draws, by 1.1 to 1.8 times in the tests
  (z-scored mean 1.1 to 1.5, ``Variance`` 1.6, ``Entropy`` 1.1 in one
  behaviour dimension and 1.8 in two; the tests assert the bands 1.3 to 1.9, 0.95
  to 1.3 and 1.4 to 2.1 for these three); read it as a conservative scale of the noise,
  not as an exact standard error.
- ``PairedNormal``: the samples i and i + n/2 share one eps, so the pair is the
  independent unit; the terms are averaged pairwise first and n becomes n/2.

Memory: :math:`\sum_i w_i^2 \psi_i^2` is not a contraction of the score with a weight
vector (weighted_score gives :math:`\sum_i w_i^2 \psi_i`, not the square), so the
distribution's own per-sample scores are computed a block of about 4 MB of rows at
a time (``p.score`` on each block), never as one (n, d) array.
"""

from __future__ import annotations

import numpy as np

from ..distributions import Distribution, Grad, PairedNormal
from ..noise import EncodedSamples
from ..sampling._blocks import BLOCK_BYTES
from .objectives import Estimate


def _rows(x: np.ndarray, start: int, stop: int) -> np.ndarray:
    if isinstance(x, EncodedSamples):
        return EncodedSamples(x.indices[start:stop], x.signs[start:stop], x.dim, x.table)  # type: ignore[return-value]
    return x[start:stop]


def gradient_stderr(estimate: Estimate, x: object, p: Distribution) -> Grad:
    """Standard error of each entry of ``estimate.grad``: name -> array of the parameter's shape.

    ``estimate`` is what an estimator returned for these samples ``x`` and distribution
    ``p`` (its ``weights`` w_i already include the ratios rho_i under sample reuse).
    See the module docstring for the formula and what it means for each estimator.
    """
    if not isinstance(estimate, Estimate):
        raise TypeError(f"estimate must be an npevograd Estimate, got {type(estimate).__name__}")
    if not isinstance(p, Distribution):
        raise TypeError(f"p must be an npevograd Distribution, got {type(p).__name__}")
    x = p.check_x(x)
    n = x.shape[0]
    w = np.asarray(estimate.weights, dtype=np.float64)
    if w.shape != (n,):
        raise ValueError(
            f"estimate.weights has shape {w.shape} but x has {n} samples; expected one weight per sample, "
            f"shape ({n},) (a multi-output expectation has no single standard error)"
        )
    grad = {name: np.asarray(g, dtype=np.float64) for name, g in p.check_grad(estimate.grad).items()}
    paired = isinstance(p, PairedNormal)
    units = n // 2 if paired else n
    if units < 2:
        raise ValueError(f"gradient_stderr needs at least 2 independent samples, got n = {n}")
    size = sum(max(1, v.size) for v in p.params.values())
    rows = max(1, BLOCK_BYTES // (8 * size * (2 if paired else 1)))
    sums = {name: _ScaledSquares(v.shape) for name, v in p.params.items()}
    with np.errstate(over="ignore", invalid="ignore"):  # a term that overflows is named below
        for start in range(0, units, rows):
            stop = min(start + rows, units)
            terms = _block_terms(p, x, w, start, stop, n)
            if paired:  # the pair (i, i + n/2) is one independent unit: its mean term
                mirror = _block_terms(p, x, w, start + units, stop + units, n)
                terms = {name: 0.5 * t + 0.5 * mirror[name] for name, t in terms.items()}
            for name, t in terms.items():
                sums[name].add(t - grad[name])  # t_i - g
        stderr = {name: s.root(units * (units - 1)).astype(p.dtype) for name, s in sums.items()}
    for name, se in stderr.items():
        if not np.isfinite(se).all():
            raise ValueError(
                f"the standard error of grad[{name!r}] overflows {p.dtype} (its per-sample terms n w_i s_i "
                "overflow): rescale the values"
            )
    return stderr


class _ScaledSquares:
    """sum_i c_i^2 kept as scale^2 * ssq with scale = max_i |c_i| (LAPACK's dnrm2), so squaring never overflows."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.scale = np.zeros(shape)
        self.ssq = np.zeros(shape)

    def add(self, centred: np.ndarray) -> None:
        scale = np.maximum(self.scale, np.abs(centred).max(axis=0))
        safe = np.where(scale > 0, scale, 1.0)
        self.ssq = self.ssq * (self.scale / safe) ** 2 + np.einsum("i...,i...->...", centred / safe, centred / safe)
        self.scale = scale

    def root(self, divisor: int) -> np.ndarray:
        """sqrt(sum_i c_i^2 / divisor), as scale * sqrt(ssq / divisor)."""
        return self.scale * np.sqrt(self.ssq / divisor)


def _block_terms(p: Distribution, x: np.ndarray, w: np.ndarray, start: int, stop: int, n: int) -> Grad:
    """t_i = n w_i psi_i for rows start..stop-1, float64."""
    scores = p.score(_rows(x, start, stop))
    t_w = n * w[start:stop]
    return {name: t_w.reshape((-1,) + (1,) * (s.ndim - 1)) * s.astype(np.float64) for name, s in scores.items()}
