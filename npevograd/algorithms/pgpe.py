r"""PGPE: policy gradients with parameter-based exploration (Sehnke et al. 2010), ClipUp optional.

"Parameter-exploring policy gradients", Neural Networks 23(4), section 2.3
(symmetric sampling), with ClipUp (Toklu, Liskowski and Srivastava 2020,
"ClipUp: a simple and powerful optimizer for distribution-based policy
evolution", PPSN XVI) as an option for the mean.

Distribution: ``PairedNormal(mu, sigma (d,), learn_sigma=True)``: pairs
x_k^± = mu ± eps_k.  Estimator: ``Mean(shaping=centered_ranks)``; the shaped
fitness f^± has mean zero, so it is its own baseline b = 0.  PGPE's gradients are
Mean's gradients times sigma^2 (m = n/2 pairs):

.. math::

    g_\mu = \frac1m \sum_k \epsilon_k \frac{f_k^+ - f_k^-}{2}, \qquad
    g_\sigma = \frac1m \sum_k \Big(\frac{f_k^+ + f_k^-}{2} - b\Big)\frac{\epsilon_k^2 - \sigma^2}{\sigma}

Updates: :math:`\mu \leftarrow \mu + \alpha_\mu g_\mu` (``optimizer="sgd"``) or by ClipUp
(``optimizer="clipup"``):

.. math::

    v \leftarrow \beta v + \alpha_\mu \frac{g_\mu}{\|g_\mu\|}, \quad
    v \leftarrow v \min\Big(1, \frac{v_{\max}}{\|v\|}\Big), \quad \mu \leftarrow \mu + v

and :math:`\sigma \leftarrow \sigma + \alpha_\sigma g_\sigma`, each coordinate's change
clipped to ``sigma_max_change`` times its sigma (Toklu et al. 2020, section 4).

Defaults: alpha_mu = 0.2, alpha_sigma = 0.1 (the step sizes of Sehnke et al. 2010's experiments);
sigma_max_change = 0.2, ClipUp momentum beta = 0.9 and v_max = 2 alpha_mu (Toklu et al.
2020); fitness shaped by centered ranks (Toklu et al. 2020) in place of the
paper's max-reward normalisation.  popsize 4 + floor(3 ln d), rounded up to even.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._checks import RNGLike, as_float_array, check_sample_count
from ..distributions import PairedNormal
from ..estimators import Estimate, Mean, centered_ranks
from ..noise import NoiseTable
from ._strategy import Samples, Strategy, default_popsize, positive, write_params
from .snes import diagonal_sigma


class ClipUp:
    r"""ClipUp (Toklu et al. 2020): heavy-ball on the normalised gradient, speed clipped at ``max_speed``."""

    def __init__(self, dim: int, step_size: float, max_speed: float, momentum: float = 0.9) -> None:
        self.dim = check_sample_count("dim", dim)
        self.step_size = positive("step_size", step_size)
        self.max_speed = positive("max_speed", max_speed)
        if isinstance(momentum, bool) or not isinstance(momentum, (int, float, np.integer, np.floating)):
            raise TypeError(f"momentum must be a real number in [0, 1), got {type(momentum).__name__}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {momentum!r}")
        self.momentum = float(momentum)
        self.velocity = np.zeros(self.dim)

    def step(self, grad: object) -> np.ndarray:
        """The new velocity (the ascent step) for a finite gradient of shape (dim,); ``velocity`` is updated.

        A gradient that is not finite or not of shape (dim,) is a ValueError and changes nothing.
        """
        g = as_float_array("grad", grad)
        if g.shape != (self.dim,):
            raise ValueError(f"grad must have shape ({self.dim},), got shape {g.shape}")
        self.velocity = self.next_velocity(g.astype(np.float64))
        return self.velocity

    def next_velocity(self, grad: np.ndarray) -> np.ndarray:
        """The velocity ``step`` would set, without setting it (so a caller can commit it last)."""
        norm = _norm(grad)
        velocity = self.momentum * self.velocity + (self.step_size * (grad / norm) if norm > 0 else 0.0)
        speed = _norm(velocity)
        if speed > self.max_speed:
            velocity = velocity * (self.max_speed / speed)
        return velocity


def _norm(v: np.ndarray) -> float:
    """||v||, scaled by max |v_i| first so that squaring cannot overflow (a gradient of 1e200)."""
    largest = float(np.max(np.abs(v))) if np.size(v) else 0.0
    return largest * float(np.linalg.norm(v / largest)) if largest > 0 else 0.0


class PGPE(Strategy):
    """PGPE with symmetric sampling: ``es = PGPE(mu, sigma)``; ``x = es.ask()``; ``es.tell(fitness)``."""

    distribution: PairedNormal

    def __init__(
        self,
        mu: object,
        sigma: object = 1.0,
        popsize: int | None = None,
        rng: RNGLike = None,
        lr_mu: float = 0.2,
        lr_sigma: float = 0.1,
        optimizer: str = "sgd",
        max_speed: float | None = None,
        momentum: float | None = None,
        sigma_max_change: float = 0.2,
        noise: NoiseTable | None = None,
        **options: Any,
    ) -> None:
        p = PairedNormal(mu, diagonal_sigma(mu, sigma), learn_sigma=True, noise=noise)
        if popsize is None:
            popsize = default_popsize(p.dim) + default_popsize(p.dim) % 2
        super().__init__(p, popsize, rng, **options)
        if self.popsize % 2:
            raise ValueError(f"popsize must be even for PGPE (symmetric pairs), got {self.popsize}")
        self.lr_mu = positive("lr_mu", lr_mu)
        self.lr_sigma = positive("lr_sigma", lr_sigma)
        self.sigma_max_change = positive("sigma_max_change", sigma_max_change)
        if self.sigma_max_change >= 1:
            raise ValueError(
                f"sigma_max_change must be in (0, 1) (a change of a whole sigma could make it <= 0), "
                f"got {sigma_max_change!r}"
            )
        if optimizer not in ("sgd", "clipup"):
            raise ValueError(f"optimizer must be 'sgd' or 'clipup', got {optimizer!r}")
        self.clipup = None
        if optimizer == "clipup":
            speed = 2 * self.lr_mu if max_speed is None else max_speed
            self.clipup = ClipUp(p.dim, self.lr_mu, speed, 0.9 if momentum is None else momentum)
        else:
            given = [name for name, value in (("max_speed", max_speed), ("momentum", momentum)) if value is not None]
            if given:
                raise ValueError(f"{' and '.join(given)} apply to optimizer='clipup' only, got optimizer='sgd'")
        self.estimator = Mean(shaping=centered_ranks)

    @property
    def sigma(self) -> np.ndarray:
        """One step size per coordinate, shape (d,) (a copy)."""
        return self.distribution.params["sigma"].copy()

    def _widths(self) -> np.ndarray:
        return self.distribution.params["sigma"]

    def _update(self, x: Samples, f: np.ndarray) -> Estimate:
        p = self.distribution
        mu, sigma = p.params["mu"], p.params["sigma"]
        estimate = self.estimator(f, x, p)
        grad = estimate.grad
        with np.errstate(over="ignore", invalid="ignore"):  # write_params checks the result
            # PGPE's g = sigma^2 * Mean's, as sigma (sigma g): sigma^2 alone overflows float32 at sigma = 1e30
            g_mu, g_sigma = sigma * (sigma * grad["mu"]), sigma * (sigma * grad["sigma"])
            velocity = None if self.clipup is None else self.clipup.next_velocity(g_mu.astype(np.float64))
            mu_step = self.lr_mu * g_mu if velocity is None else velocity
            max_change = self.sigma_max_change * sigma
            new_sigma = sigma + np.clip(self.lr_sigma * g_sigma, -max_change, max_change)
            new_mu = mu + mu_step
        write_params("PGPE", p.params, {"mu": new_mu, "sigma": new_sigma}, "lr_mu, lr_sigma, max_speed")
        if self.clipup is not None and velocity is not None:
            self.clipup.velocity = velocity  # ClipUp's state changes only with the parameters
        return estimate
