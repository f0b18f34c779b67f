r"""SNES: separable natural evolution strategy (Schaul, Glasmachers and Schmidhuber 2011).

"High dimensions and heavy tails for natural evolution strategies", GECCO 2011,
Algorithm 1; also Wierstra et al. 2014, JMLR 15, section 5.2.

Distribution: ``Normal(mu, sigma (d,), learn_sigma=True)``, x_k = mu + sigma * z_k.
Estimator: ``Mean(shaping=nes_utilities)``, weights u_k / n with the NES rank
utilities u_k (summing to zero).  Update: the closed-form natural gradient,
with an exponential step for sigma so that it stays positive:

.. math::

    \nabla_\mu = \sum_k u_k z_k, \qquad \nabla_\sigma = \sum_k u_k (z_k^2 - 1)

    \mu \leftarrow \mu + \eta_\mu\, \sigma \odot \nabla_\mu, \qquad
    \sigma \leftarrow \sigma \odot \exp\big(\tfrac{\eta_\sigma}{2} \nabla_\sigma\big)

which is ``n * natural_gradient(Mean(shaping=nes_utilities).grad)``: natural mu = sigma sum_k (u_k/n) z_k,
natural sigma = (sigma/2) sum_k (u_k/n)(z_k^2 - 1).  ``tell`` computes the closed form above on the
z_k that ``ask`` drew (kept, not recovered from x: (x - mu) / sigma loses them once sigma is below mu's
rounding step), with none of the estimator's checks of values SNES made itself; ``es.estimate`` is the
estimator's, computed when read.  Rows told with ``x=`` and large populations (drawn in threaded blocks,
no z kept) go through the estimator's contraction of x.  ``tests/test_small_loop.py``: the step is the
estimator's to the rounding of the recovered z, at each of 200 generations.

Defaults (the paper's): popsize n = 4 + floor(3 ln d), eta_mu = 1,
eta_sigma = (3 + ln d) / (5 sqrt d).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._checks import RNGLike, all_finite, as_float_array, check_params
from ..distributions import Normal
from ..distributions._normal_contraction import weighted_deviations
from ..estimators import Estimate, Mean, nes_utilities
from ..estimators.shaping import nes_utilities_of_ranked
from ..noise import EncodedSamples, NoiseTable
from ._strategy import Samples, Strategy, default_popsize, positive, write_params


def diagonal_sigma(mu: object, sigma: object) -> np.ndarray:
    """sigma as a (d,) array: a scalar repeated d times (d from mu, validated by the distribution)."""
    sigma_arr = as_float_array("sigma", sigma)
    shape = as_float_array("mu", mu).shape
    if sigma_arr.ndim == 0 and len(shape) == 1:
        return np.full(shape, sigma_arr)
    return sigma_arr


class SNES(Strategy):
    """Separable NES: ``es = SNES(mu, sigma)``; ``x = es.ask()``; ``es.tell(fitness)`` (maximised)."""

    distribution: Normal

    def __init__(
        self,
        mu: object,
        sigma: object = 1.0,
        popsize: int | None = None,
        rng: RNGLike = None,
        lr_mu: float = 1.0,
        lr_sigma: float | None = None,
        noise: NoiseTable | None = None,
        **options: Any,
    ) -> None:
        p = Normal(mu, diagonal_sigma(mu, sigma), learn_sigma=True, noise=noise)
        d = p.dim
        super().__init__(p, default_popsize(d) if popsize is None else popsize, rng, **options)
        self.lr_mu = positive("lr_mu", lr_mu)
        self.lr_sigma = positive("lr_sigma", (3 + math.log(d)) / (5 * math.sqrt(d)) if lr_sigma is None else lr_sigma)
        self.estimator = Mean(shaping=nes_utilities)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Pickles from before the estimate was computed when read keep it as ``estimate``, a plain attribute."""
        if "estimate" in state:
            state["_estimate"] = state.pop("estimate")
        super().__setstate__(state)

    @property
    def sigma(self) -> np.ndarray:
        """One step size per coordinate, shape (d,) (a copy)."""
        return self.distribution.params["sigma"].copy()

    def _widths(self) -> np.ndarray:
        return self.distribution.params["sigma"]

    def _update(self, x: Samples, f: np.ndarray) -> Estimate:
        """n * natural_gradient(Mean(shaping=nes_utilities)(f, x, p).grad): the estimator's arithmetic, not its checks.

        The fitness f and the samples x (``ask``'s, or validated by ``tell``) need none; the
        parameters are checked unless SNES wrote them last (``_checked``).  The draws ``ask`` kept
        take the closed form (``_step_from_draws``); other rows the estimator's contraction, so the
        same numbers, bit for bit; encoded samples go through the estimator.
        """
        p, n = self.distribution, self.popsize
        if isinstance(x, EncodedSamples):
            return self._update_from_estimator(x, f)
        if not p._checked:
            check_params(p)  # parameters SNES did not write last (the user's, or changed by hand): named if bad
        u = nes_utilities_of_ranked(f, *self._ranked)  # from tell's ranking of the costs -f
        if x is self._population and self._z is not None:
            return self._step_from_draws(f, u, self._z)
        mu, sigma = p.params["mu"], p.params["sigma"]
        w = u / n  # Mean's weights: u_k / n
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # checked just below
            grad = weighted_deviations(w, x, mu, sigma, True, p.isotropic)  # the contraction of Normal.weighted_score
        if not (all_finite(grad["mu"]) and all_finite(grad["sigma"])):
            return self._update_from_estimator(x, f)  # which names the input that overflowed
        estimate = Estimate(float(np.add.reduce(w, axis=None, dtype=np.float64)), grad, w)  # value: mean of u_k
        return self._step(estimate)

    def _step_from_draws(self, f: np.ndarray, u: np.ndarray, z: np.ndarray) -> None:
        """Algorithm 1's step on the draws z_k that ``ask`` kept, with the NES utilities u_k of the fitness f.

        No gradient in sigma's units is formed (it overflows where sigma is subnormal; the step does not):
        ``es.estimate`` is computed by the estimator from f, x and the parameters that drew x when it is read.
        """
        p = self.distribution
        mu, sigma = p.params["mu"], p.params["sigma"]
        with np.errstate(over="ignore", invalid="ignore"):  # write_params checks the result
            grad_mu = u.dot(z)  # sum_k u_k z_k (the method: a third of the matmul ufunc's overhead on 10 x 10)
            squares_less_one = z * z
            squares_less_one -= 1.0
            grad_sigma = u.dot(squares_less_one)  # sum_k u_k (z_k^2 - 1)
            new_mu = mu + self.lr_mu * (sigma * grad_mu)
            new_sigma = sigma * np.exp((0.5 * self.lr_sigma) * grad_sigma)
        told = (f, self._population, mu.copy(), sigma.copy())
        write_params("SNES", p.params, {"mu": new_mu, "sigma": new_sigma}, "lr_mu, lr_sigma")
        self._told = told

    @property
    def estimate(self) -> Estimate | None:
        """The last tell's ``Mean(shaping=nes_utilities)`` estimate on the distribution that drew its samples.

        After a step on the kept draws it is computed when read (its errors, e.g. a gradient beyond the
        largest float where sigma is subnormal, are raised then).
        """
        told = self.__dict__.get("_told")
        if told is not None:
            f, x, mu, sigma = told
            self._estimate = self.estimator(f, x, Normal(mu, sigma, learn_sigma=True))
            self._told = None
        return self.__dict__.get("_estimate")

    @estimate.setter
    def estimate(self, value: Estimate | None) -> None:
        self._estimate = value  # tell's record of the step's estimate: None after a step on the kept draws

    def _update_from_estimator(self, x: Samples, f: np.ndarray) -> Estimate:
        """The same update through the estimator (its checks included)."""
        return self._step(self.estimator(f, x, self.distribution))

    def _step(self, estimate: Estimate) -> Estimate:
        """mu + eta_mu n natural_mu, sigma exp(eta_sigma n natural_sigma / sigma), written by ``write_params``."""
        p, n = self.distribution, self.popsize
        natural = p._natural(estimate.grad)  # natural_gradient of a checked gradient
        mu, sigma = p.params["mu"], p.params["sigma"]
        with np.errstate(over="ignore", invalid="ignore"):  # write_params checks the result
            new_mu = mu + self.lr_mu * n * natural["mu"]  # mu + eta_mu sigma sum_k u_k z_k
            new_sigma = sigma * np.exp(self.lr_sigma * n * natural["sigma"] / sigma)  # exp(eta/2 sum u_k (z^2 - 1))
        write_params("SNES", p.params, {"mu": new_mu, "sigma": new_sigma}, "lr_mu, lr_sigma")
        self._told = None
        return estimate
