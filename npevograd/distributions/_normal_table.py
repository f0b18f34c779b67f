r"""The noise-table half of ``Normal``: samples encoded as table windows, decoded and contracted.

With a shared noise table T (``npevograd.NoiseTable``; Salimans et al. 2017) a sample is
the window start k_i and a sign s_i, :math:`x_i = \mu + s_i \sigma \odot T[k_i : k_i + d]`.
``Normal`` (and ``PairedNormal``) inherit this mixin; it uses their ``mu``, ``sigma``,
``dim``, ``learn_sigma``, ``isotropic`` and ``check_x``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._checks import RNGLike
from ..noise import EncodedSamples, NoiseTable
from ._base import Grad


class TableEncoding:
    """Encode, decode and contract samples drawn as windows of a noise table."""

    mu: Any
    sigma: Any
    dim: Any
    learn_sigma: bool
    isotropic: Any
    check_x: Any

    def decode(self, encoded: EncodedSamples) -> np.ndarray:
        r"""The samples :math:`x_i = \mu + s_i \sigma \odot T[k_i : k_i + d]`, shape (n, d).

        Computed as ``mu + (s_i * sigma) * T[k_i : k_i + d]`` in the parameters' dtype,
        the order of operations of EvoGrad's ``decode``.
        """
        if not isinstance(encoded, EncodedSamples):
            raise TypeError(f"encoded must be EncodedSamples, got {type(encoded).__name__}")
        self.check_x(encoded)
        return decode_windows(self.mu, self.sigma, encoded)

    def _encode(self, n: int, table: NoiseTable, rng: RNGLike) -> EncodedSamples:
        indices = table.sample_index(rng, self.dim, n)
        return EncodedSamples(indices, np.ones(n, dtype=np.int8), self.dim, table)

    def _weighted_score_encoded(self, w: np.ndarray, x: EncodedSamples) -> Grad:
        r"""The same contraction on encoded samples, streamed over the noise table.

        With :math:`x_i - \mu = s_i \sigma \epsilon_i`, :math:`\epsilon_i = T[k_i : k_i + d]`:

        .. math::

            \sum_i w_i \frac{x_i - \mu}{\sigma^2} = \frac{1}{\sigma} \sum_i (w_i s_i)\, \epsilon_i

            \sum_i w_i \Big(\frac{(x_i - \mu)^2}{\sigma^3} - \frac{1}{\sigma}\Big)
              = \frac{1}{\sigma}\Big(\sum_i w_i \epsilon_i^2 - \sum_i w_i\Big)
              \;\text{(diagonal; isotropic: } \|\epsilon_i\|^2 \text{ and } d \sum_i w_i)
        """
        sigma = self.sigma
        signed_w = w * x.signs  # the sign folded into the weight: w_i s_i
        eps_sum, eps2_sum = x.table.contract(x.indices, self.dim, signed_w, w if self.learn_sigma else None)
        grad = {"mu": eps_sum / sigma}
        if self.learn_sigma and eps2_sum is not None:
            w_sum = w.sum()
            if self.isotropic:
                grad["sigma"] = (eps2_sum.sum() - self.dim * w_sum) / sigma
            else:
                grad["sigma"] = (eps2_sum - w_sum) / sigma
        return grad


def decode_windows(mu: np.ndarray, sigma: np.ndarray, encoded: EncodedSamples) -> np.ndarray:
    """mu + (s_i * sigma) * T[k_i : k_i + d] for each encoded sample, in mu's dtype: (n, d)."""
    x = encoded.table.rows(encoded.indices, encoded.dim).astype(mu.dtype, copy=False)
    x *= sigma  # |s_i| sigma eps_i; negating afterwards is exact, so this equals (s_i sigma) eps_i
    np.negative(x, out=x, where=(encoded.signs < 0)[:, None])
    x += mu
    return x
