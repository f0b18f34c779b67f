r"""OpenAI-ES: evolution strategies as a scalable alternative to RL (Salimans, Ho, Chen, Sidor and Sutskever 2017).

arXiv:1703.03864, Algorithm 1 with mirrored sampling (section 2.3), fitness
shaping by centered ranks and Adam with L2 weight decay (their released code:
``compute_centered_ranks``, ``l2coeff``, ``optimizers.Adam``).

Distribution: ``PairedNormal(mu, sigma)`` with a fixed sigma: the first n/2 samples
mu + sigma eps_k, the last n/2 their mirror images mu - sigma eps_k.
Estimator: ``Mean(shaping=centered_ranks)``, F_i the centered ranks in [-1/2, 1/2]:

.. math::

    g = \frac{1}{n\sigma} \sum_i F_i\, \epsilon_i
      = \frac1n \sum_i F_i \frac{x_i - \mu}{\sigma^2} \quad\text{(Mean's gradient for mu)}

Update: ``Adam`` ascent on :math:`J - \tfrac{\lambda}{2}\|\mu\|^2`, i.e. on
:math:`g - \lambda \mu` (``npevograd.optim.Adam``, weight_decay = lambda).

Defaults (the paper's code, ``configurations/humanoid.json``): sigma = 0.02,
Adam stepsize 0.01 with beta1 0.9, beta2 0.999, eps 1e-8, l2coeff 0.005.
popsize: 4 + floor(3 ln d) rounded up to even (the paper uses thousands of
workers; pass ``popsize`` for a real run).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._checks import RNGLike
from ..distributions import PairedNormal
from ..estimators import Estimate, Mean, centered_ranks
from ..noise import NoiseTable
from ..optim import Adam
from ._strategy import FixedSigma, Samples, Strategy, default_popsize


class OpenES(FixedSigma, Strategy):
    """OpenAI-ES: ``es = OpenES(mu, sigma=0.02)``; ``x = es.ask()``; ``es.tell(fitness)`` (maximised)."""

    distribution: PairedNormal

    def __init__(
        self,
        mu: object,
        sigma: object = 0.02,
        popsize: int | None = None,
        rng: RNGLike = None,
        lr: float = 0.01,
        weight_decay: float = 0.005,
        beta1: float = 0.9,
        beta2: float = 0.999,
        noise: NoiseTable | None = None,
        **options: Any,
    ) -> None:
        p = PairedNormal(mu, sigma, noise=noise)
        if popsize is None:
            popsize = default_popsize(p.dim) + default_popsize(p.dim) % 2
        super().__init__(p, popsize, rng, **options)
        if self.popsize % 2:
            raise ValueError(f"popsize must be even for OpenES (mirrored pairs), got {self.popsize}")
        self.estimator = Mean(shaping=centered_ranks)
        self.optimizer = Adam(p, lr=lr, beta1=beta1, beta2=beta2, weight_decay=weight_decay)

    def _update(self, x: Samples, f: np.ndarray) -> Estimate:
        estimate = self.estimator(f, x, self.distribution)
        self.optimizer.step(estimate.grad)  # Adam on g - weight_decay * mu, g = (1/(n sigma)) sum_i F_i eps_i
        return estimate
