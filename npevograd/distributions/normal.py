"""Gaussian search distributions: ``Normal`` and its antithetic ``PairedNormal``.

Their noise-table sampling (encode, decode, the streamed contraction) is ``_normal_table``'s.
"""

from __future__ import annotations

import math
from typing import Literal, overload

import numpy as np

from .._checks import (
    SMALL_SIZE,
    RNGLike,
    all_finite,
    as_float_array,
    as_rng,
    cast_sigma,
    check_bool,
    check_params,
    check_positive,
    check_sample_bytes,
    check_sample_count,
    check_sigma,
    float_dtype,
    sample_rows,
)
from ..noise import EncodedSamples, NoiseTable
from ..sampling import normal_rows, standard_normal
from ._base import Distribution, Grad, beyond_limit, checked_after
from ._normal_contraction import weighted_deviations
from ._normal_table import TableEncoding, decode_windows


class Normal(TableEncoding, Distribution):
    r"""Gaussian N(mu, diag(sigma^2)) with isotropic or diagonal sigma.

    .. math::

        \log p(x) = -\sum_j \frac{(x_j - \mu_j)^2}{2\sigma_j^2} - \sum_j \log\sigma_j
                    - \frac{d}{2}\log 2\pi

    Score, with :math:`\epsilon = x - \mu`:

    .. math::

        \partial_{\mu} \log p = \epsilon / \sigma^2, \qquad
        \partial_{\sigma_j} \log p = \epsilon_j^2/\sigma_j^3 - 1/\sigma_j \;\text{(diagonal)},
        \qquad
        \partial_{\sigma} \log p = \|\epsilon\|^2/\sigma^3 - d/\sigma \;\text{(isotropic)}.

    Fisher information: :math:`1/\sigma^2` per coordinate of mu, :math:`2/\sigma^2`
    per coordinate of a diagonal sigma and :math:`2d/\sigma^2` for an isotropic one
    (Wierstra et al. 2014, JMLR 15, section 3.2).

    Parameters
    ----------
    mu : array (d,)
        Mean; copied, then updated in place through ``params["mu"]``.
    sigma : float or array (d,)
        Standard deviation, scalar (isotropic) or per coordinate (diagonal).
    learn_sigma : bool
        If true, ``params`` holds ``sigma`` too and every score includes it.
        A fixed sigma is ``p.sigma`` (not in ``params``).  Either is checked finite
        and > 0 wherever it is used, so one changed in place (or driven there by an
        optimizer step) raises the same error as a bad constructor argument.
    noise : NoiseTable, optional
        Draw every sample from this shared noise table, as
        :math:`x_i = \mu + s_i \sigma \odot T[k_i : k_i + d]` (Salimans et al. 2017);
        ``sample(n, rng, encode=True)`` then returns the (index, sign) encoding,
        which ``decode``, ``weighted_score`` and the estimators accept.  With
        ``NoiseTable.evograd()``, float32 parameters and the same
        ``RandomState(seed)``, the samples are EvoGrad's, bit for bit.
    """

    def __init__(
        self,
        mu: object,
        sigma: object = 1.0,
        learn_sigma: bool = False,
        noise: NoiseTable | None = None,
    ):
        mu_arr = as_float_array("mu", mu)
        if mu_arr.ndim != 1 or mu_arr.shape[0] == 0:
            raise ValueError(f"mu must be a 1-D array of shape (d,) with d >= 1, got shape {mu_arr.shape}")
        sigma_arr = as_float_array("sigma", sigma)
        dtype = float_dtype(mu_arr)
        d = mu_arr.shape[0]
        if sigma_arr.shape not in ((), (d,)):
            raise ValueError(f"sigma must be a scalar or have shape ({d},) to match mu, got shape {sigma_arr.shape}")
        check_positive("sigma", sigma_arr)
        learn_sigma = check_bool("learn_sigma", learn_sigma)
        if noise is not None:
            if not isinstance(noise, NoiseTable):
                raise TypeError(f"noise must be a NoiseTable or None, got {type(noise).__name__}")
            if noise.size < d:
                raise ValueError(f"noise table has {noise.size} entries, fewer than the dimension d={d}")
        self.noise = noise
        self.learn_sigma = learn_sigma
        self.params = {"mu": np.array(mu_arr, dtype=dtype)}
        self._sigma = cast_sigma(sigma_arr, dtype)  # checked after the cast: 1e39 is inf in float32
        if self.learn_sigma:
            self.params["sigma"] = self._sigma
        check_params(self)  # records the shapes and dtype that params entries keep

    @property
    def mu(self) -> np.ndarray:
        return self.params["mu"]

    @property
    def sigma(self) -> np.ndarray:
        """Current sigma (``params["sigma"]`` when learned), checked finite and > 0 at every use."""
        return check_sigma(self.params["sigma"] if self.learn_sigma else self._sigma)

    @property
    def dim(self) -> int:
        return self.mu.shape[0]

    @property
    def isotropic(self) -> bool:
        return self._sigma.ndim == 0

    @overload
    def sample(self, n: int, rng: RNGLike = None, encode: Literal[False] = False) -> np.ndarray: ...

    @overload
    def sample(self, n: int, rng: RNGLike = None, *, encode: Literal[True]) -> EncodedSamples: ...

    def sample(self, n: int, rng: RNGLike = None, encode: bool = False) -> np.ndarray | EncodedSamples:
        """Draw ``n`` samples (n, d); with ``encode=True`` their (index, sign) encoding instead.

        Encoding needs a noise table (``noise=``); with one, the unencoded samples
        are the decoded windows of the table, so both forms are the same draw.
        """
        n = check_sample_count("n", n)
        check_sample_bytes(n, check_params(self))
        if encode or self.noise is not None:
            if self.noise is None:
                raise ValueError(
                    "encode=True needs a noise table: build the distribution with "
                    f"{type(self).__name__}(mu, sigma, noise=NoiseTable(size, seed))"
                )
            encoded = self._encode(n, self.noise, rng)
            if self._may_overflow():
                with checked_after():
                    self._check_sample(self.decode(encoded))
            return encoded if encode else self.decode(encoded)
        return self._checked_sample(n, rng)

    def _may_overflow(self) -> bool:
        sigma = self.sigma
        return beyond_limit(self.mu, sigma.item() if sigma.size == 1 else float(np.max(sigma)))

    def _scale_text(self) -> str:
        sigma, mu = float(np.max(self.sigma)), float(np.max(np.abs(self.mu)))
        return f"x = mu + sigma * eps with largest sigma {sigma:.4g} and largest |mu| {mu:.4g}: lower sigma or mu"

    def check_x(self, x: object) -> np.ndarray:
        check_params(self)
        if isinstance(x, EncodedSamples):
            if x.dim != self.dim:
                raise ValueError(f"x encodes samples of dimension {x.dim}, expected {self.dim}")
            return x  # type: ignore[return-value]  # array-like: has shape (n, d) and len n
        mu = self.params["mu"]
        return sample_rows(x, mu.shape[0], mu.dtype)

    def _sample(self, n: int, rng: RNGLike) -> np.ndarray:
        """``mu + sigma * eps`` for n fresh standard normal rows eps, built in place.

        A Generator's large draws are scaled and shifted a piece at a time while in cache
        (``sampling._draws.normal_rows``); a RandomState keeps its legacy stream.
        """
        rng, sigma, mu = as_rng(rng), self.sigma, self.mu
        if isinstance(rng, np.random.Generator):
            return normal_rows(rng, (n, self.dim), self.dtype, sigma, mu)
        x = standard_normal(rng, (n, self.dim), self.dtype)  # in place: no temporary of x's size
        x *= sigma
        x += mu
        return x

    def _log_prob(self, x: np.ndarray) -> np.ndarray:
        if isinstance(x, EncodedSamples):
            x = decode_windows(self.mu, self.sigma, x)
        sigma = self.sigma
        z = (x - self.mu) / sigma
        log_det = self.dim * np.log(sigma) if self.isotropic else np.sum(np.log(sigma))
        return -0.5 * np.einsum("ij,ij->i", z, z) - log_det - 0.5 * self.dim * math.log(2 * math.pi)

    def _score(self, x: np.ndarray) -> Grad:
        if isinstance(x, EncodedSamples):
            x = decode_windows(self.mu, self.sigma, x)
        sigma = self.sigma
        eps = x - self.mu
        z = eps / sigma  # divided before squaring: sigma**2 under- or overflows first
        z_over_sigma = z / sigma
        scores = {"mu": z_over_sigma}
        if self.learn_sigma:  # z^2 / sigma as z (z / sigma): z^2 may overflow where the score does not
            if self.isotropic:
                scores["sigma"] = np.einsum("ij,ij->i", z, z_over_sigma) - self.dim / sigma
            else:
                scores["sigma"] = z * z_over_sigma - 1 / sigma
        return scores

    def _weighted_score(self, w: np.ndarray, x: np.ndarray) -> Grad:
        if isinstance(x, EncodedSamples):
            return self._weighted_score_encoded(w, x)
        return weighted_deviations(w, x, self.mu, self.sigma, self.learn_sigma, self.isotropic)

    def natural_gradient(self, grad: Grad) -> Grad:
        r"""F^{-1} g: mu: sigma^2 g; sigma: sigma^2 g / 2 (diagonal), sigma^2 g / (2d) (isotropic)."""
        return self._natural(self.check_grad(grad))

    def _natural(self, grad: Grad) -> Grad:
        """``natural_gradient`` of a gradient that matches ``params`` (``weighted_score``'s, for SNES)."""
        sigma = self.sigma
        if sigma.dtype == np.float64 and sigma.ndim == 1 and sigma.size <= SMALL_SIZE:
            natural = _small_natural(sigma.tolist(), grad, self.learn_sigma)
        else:
            with np.errstate(over="ignore"):  # checked just below
                natural = {"mu": sigma * (sigma * grad["mu"])}  # sigma^2 g, without forming sigma^2
                if self.learn_sigma:
                    natural["sigma"] = sigma * (sigma * grad["sigma"]) / (2 * self.dim if self.isotropic else 2)
        for name, value in natural.items():
            if not all_finite(value):
                raise ValueError(
                    f"the natural gradient sigma^2 grad[{name!r}] overflows {value.dtype} "
                    f"(largest |grad| {float(np.max(np.abs(grad[name])))}, largest sigma {float(np.max(sigma))})"
                )
        return natural


def _small_natural(sigma: list[float], grad: Grad, learn_sigma: bool) -> Grad:
    """``Normal._natural`` for a float64 diagonal sigma of a few entries: the same IEEE products on Python floats.

    Several times cheaper than the NumPy calls there, and without ``np.errstate``: a product
    of Python floats overflows to inf without raising, as NumPy's does.
    """
    natural = {"mu": np.array([s * (s * g) for s, g in zip(sigma, grad["mu"].tolist())])}
    if learn_sigma:
        natural["sigma"] = np.array([s * (s * g) / 2 for s, g in zip(sigma, grad["sigma"].tolist())])
    return natural


class PairedNormal(Normal):
    r"""Normal with antithetic (mirrored) sampling; same density and score as ``Normal``.

    For even n the samples are :math:`\mu + \sigma\epsilon_i` for the first n/2 and
    :math:`\mu - \sigma\epsilon_i` for the last n/2, with the same :math:`\epsilon` in the
    same order (EvoGrad's order).  With ``Mean``, a pair's two terms of the mu gradient
    average to :math:`(f(\mu + \sigma\epsilon) - f(\mu - \sigma\epsilon))\,\epsilon / (2\sigma)`,
    so the even terms of the fitness's Taylor expansion cancel there; the sigma gradient
    sees the pair's sum :math:`f(\mu + \sigma\epsilon) + f(\mu - \sigma\epsilon)`, so the odd
    terms cancel there (Brockhoff et al. 2010; Salimans et al. 2017, section 2.3).
    """

    def _sample(self, n: int, rng: RNGLike) -> np.ndarray:
        if n % 2:
            raise ValueError(f"n must be even for PairedNormal (antithetic pairs), got {n}")
        rng, sigma, mu = as_rng(rng), self.sigma, self.mu
        if isinstance(rng, np.random.Generator):  # mu - sigma eps written beside mu + sigma eps, in cache
            return normal_rows(rng, (n // 2, self.dim), self.dtype, sigma, mu, mirror=True)
        eps = np.empty((n, self.dim), dtype=self.dtype)
        eps[: n // 2] = standard_normal(rng, (n // 2, self.dim), self.dtype)
        np.negative(eps[: n // 2], out=eps[n // 2 :])
        eps *= sigma
        eps += mu
        return eps

    def _encode(self, n: int, table: NoiseTable, rng: RNGLike) -> EncodedSamples:
        if n % 2:
            raise ValueError(f"n must be even for PairedNormal (antithetic pairs), got {n}")
        half = table.sample_index(rng, self.dim, n // 2)
        signs = np.repeat(np.array([1, -1], dtype=np.int8), n // 2)
        return EncodedSamples(np.concatenate([half, half]), signs, self.dim, table)
