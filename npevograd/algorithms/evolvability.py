r"""Evolvability ES: MaxVar and MaxEnt (Gajewski, Clune, Stanley and Lehman 2019).

"Evolvability ES: scalable and direct optimization of evolvability", GECCO 2019,
section 3; the loop of EvoGrad's ``max_var_interference.py`` and
``max_ent_interference.py`` demos.

Distribution: ``Normal(mu, sigma)`` with a fixed sigma.  Estimator: ``Variance()``
(``kind="variance"``, MaxVar) or ``Entropy(bandwidth)`` (``kind="entropy"``, MaxEnt)
of the z-scored behaviours b_i (shape (n,) or (n, k)):

.. math::

    \text{MaxVar: } J = \frac1n \sum_i \|z_i\|^2 r_i, \qquad
    \text{MaxEnt: } J = \frac1n \sum_j -\log\Big(\frac1n\sum_i K_{ij} r_i\Big) r_j

Update: plain gradient ascent ``SGD(lr)``: :math:`\mu \leftarrow \mu + \eta \nabla_\mu J`.
``tell(behaviours)`` takes the behaviours, not a fitness; ``estimate`` is the last
``Estimate`` (value J, gradient, weights), and ``best`` is the mean whose
population had the highest J, with that J.

Defaults (EvoGrad's demo settings): sigma = 0.5, popsize = 500, lr = 0.03 for
MaxVar and 0.1 for MaxEnt, bandwidth h = 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._checks import RNGLike
from ..distributions import Normal
from ..estimators import Entropy, Variance
from ..noise import NoiseTable
from ..optim import SGD
from ._strategy import Best, FixedSigma, Strategy, positive

DEFAULT_LR = {"variance": 0.03, "entropy": 0.1}


class EvolvabilityES(FixedSigma, Strategy):
    """MaxVar / MaxEnt: ``es = EvolvabilityES(mu, kind="entropy")``; ``x = es.ask()``; ``es.tell(b)``.

    ``minimize=True`` descends J instead.  With ``bounds`` the behaviours are evaluated at the repaired
    samples and no penalty is added (there is no fitness to penalise): the gradient is that of J of
    b(pi(x)), the score taken at the unrepaired draws.  Its stop criteria read ``n w_i`` (the per-sample
    weights of the last estimate, in the maximised sense) as the population's fitness;
    ``nan_policy="worst"`` is refused (the estimators use the behaviours' values, not ranks).
    """

    distribution: Normal
    rank_based = False

    def __init__(
        self,
        mu: object,
        sigma: object = 0.5,
        popsize: int = 500,
        rng: RNGLike = None,
        kind: str = "variance",
        lr: float | None = None,
        bandwidth: float | None = None,
        noise: NoiseTable | None = None,
        **options: Any,
    ) -> None:
        if kind not in DEFAULT_LR:
            raise ValueError(f"kind must be 'variance' or 'entropy', got {kind!r}")
        if bandwidth is not None:
            bandwidth = positive("bandwidth", bandwidth)  # checked first: a bad value is named as such
            if kind == "variance":
                raise ValueError("bandwidth applies to kind='entropy' only (MaxEnt's kernel), got kind='variance'")
        p = Normal(mu, sigma, noise=noise)
        super().__init__(p, popsize, rng, **options)
        self.kind = kind
        self.estimator = (
            Variance() if kind == "variance" else Entropy(bandwidth=1.0 if bandwidth is None else bandwidth)
        )
        self.optimizer = SGD(p, lr=DEFAULT_LR[kind] if lr is None else lr)

    def tell(self, behaviours: object, x: object = None) -> None:  # type: ignore[override]
        """Ascend (descend with ``minimize``) the variance or entropy of ``behaviours`` ((popsize,) or (popsize, k))."""
        x = self._pending(x)
        b = self._check_values("behaviours", behaviours, allow_columns=True)
        mu_before = self.mean
        estimate = self.estimator(b, x, self.distribution)  # raises (state untouched) on constant behaviours
        if self._initial_width is None:
            self._initial_width = float(self._widths().max())
        sign = -1.0 if self.minimize else 1.0
        self.optimizer.step({name: sign * g for name, g in estimate.grad.items()})  # mu <- mu +- lr grad_mu J
        value = float(estimate.value)
        best = Best(mu_before, value) if self.best is None or self._better(value, self.best.fitness) else None
        self._commit(best, estimate, np.sort(-sign * self.popsize * estimate.weights))
