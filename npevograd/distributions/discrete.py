"""Discrete search distributions: independent ``Bernoulli`` bits and ``Categorical`` choices."""

from __future__ import annotations

import numpy as np

from .._checks import RNGLike, as_dtype, as_float_array, check_params, float_dtype
from ..sampling import uniform
from ._base import Distribution, Grad


def _logits(name: str, logits: object, ndim: int, shape_text: str) -> np.ndarray:
    arr = as_float_array(name, logits)
    if arr.ndim != ndim or 0 in arr.shape:
        raise ValueError(f"{name} must have shape {shape_text}, got shape {arr.shape}")
    return np.array(arr, dtype=float_dtype(arr))


class Bernoulli(Distribution):
    r"""Independent bits x_j ~ Bernoulli(pi_j), pi = sigmoid(logits), logits shape (d,).

    .. math::

        \log p(x) = \sum_j \big[x_j \ell_j - \log(1 + e^{\ell_j})\big], \qquad
        \partial_{\ell} \log p(x) = x - \operatorname{sigmoid}(\ell)

    Fisher information :math:`\pi_j(1 - \pi_j)` per logit, so the natural gradient is
    :math:`g_j / (\pi_j(1 - \pi_j))`.  Samples are floats (0.0 / 1.0) in the logits' dtype.
    """

    def __init__(self, logits: object):
        self.params = {"logits": _logits("logits", logits, 1, "(d,) with d >= 1")}
        check_params(self)  # records the shape and dtype that params entries keep

    @property
    def logits(self) -> np.ndarray:
        return self.params["logits"]

    @property
    def probs(self) -> np.ndarray:
        from scipy.special import expit  # scipy.special is imported when first used: import npevograd stays light

        return expit(self.logits)

    def check_x(self, x: object) -> np.ndarray:
        check_params(self)
        arr = as_float_array("x", x, dtype=self.dtype)
        d = self.logits.shape[0]
        if arr.ndim != 2 or arr.shape[1] != d or arr.shape[0] == 0:
            raise ValueError(f"x must have shape (n, {d}) with n >= 1, got shape {arr.shape}")
        if not np.all((arr == 0) | (arr == 1)):
            raise ValueError("x must hold only 0 and 1 for Bernoulli, got other values")
        return arr

    def _sample(self, n: int, rng: RNGLike) -> np.ndarray:
        return (uniform(rng, (n, self.logits.shape[0])) < self.probs).astype(self.dtype)

    def _log_prob(self, x: np.ndarray) -> np.ndarray:
        return x @ self.logits - np.logaddexp(0, self.logits).sum()

    def _score(self, x: np.ndarray) -> Grad:
        return {"logits": x - self.probs}

    def _weighted_score(self, w: np.ndarray, x: np.ndarray) -> Grad:
        # sum_i w_i (x_i - s) = w @ x - sum(w) s
        return {"logits": w @ x - w.sum() * self.probs}

    def natural_gradient(self, grad: Grad) -> Grad:
        r"""g / F with :math:`F = s(1 - s) = \sigma(\ell)\sigma(-\ell)`, clamped below at the dtype's eps.

        Where :math:`s(1 - s) <` eps (:math:`|\ell| > 36` in float64, 16 in float32) the
        gradient's entries :math:`x - s` are themselves at the rounding level of the
        weights, so the clamp maps them to the order of the true natural gradient
        (:math:`\sum_i w_i / s` or :math:`-\sum_i w_i / (1 - s)`) instead of dividing
        rounding noise, or 0, by an underflowed 0.
        """
        from scipy.special import expit

        grad = self.check_grad(grad)
        fisher = expit(self.logits) * expit(-self.logits)  # s (1 - s), accurate on both tails
        return {"logits": _divide_clamped(grad, self.dtype, fisher)}


class Categorical(Distribution):
    r"""Independent choices x_j in {0..m-1} with probabilities softmax(logits[j]), logits (d, m).

    .. math::

        \log p(x) = \sum_j \log\operatorname{softmax}(\ell_j)_{x_j}, \qquad
        \partial_{\ell_j} \log p(x) = \operatorname{onehot}(x_j) - \operatorname{softmax}(\ell_j)

    Fisher information per row :math:`F_j = \operatorname{diag}(\pi_j) - \pi_j\pi_j^T`
    is singular (logits are defined up to a constant per row).  Every score-function
    gradient sums to zero over each row, and for such g the vector :math:`g / \pi`
    solves :math:`F_j\,\delta = g_j`, so ``natural_gradient`` returns ``g / pi``.
    """

    def __init__(self, logits: object):
        self.params = {"logits": _logits("logits", logits, 2, "(d, m) with d, m >= 1")}
        check_params(self)  # records the shape and dtype that params entries keep

    @property
    def logits(self) -> np.ndarray:
        return self.params["logits"]

    @property
    def probs(self) -> np.ndarray:
        from scipy.special import softmax

        return softmax(self.logits, axis=1)

    def check_x(self, x: object) -> np.ndarray:
        check_params(self)
        arr = np.asarray(x)
        d, m = self.logits.shape
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"x must hold integer category indices, got dtype {arr.dtype}")
        if arr.ndim != 2 or arr.shape[1] != d or arr.shape[0] == 0:
            raise ValueError(f"x must have shape (n, {d}) with n >= 1, got shape {arr.shape}")
        if arr.min() < 0 or arr.max() >= m:
            raise ValueError(f"x must hold categories in [0, {m - 1}], got range [{arr.min()}, {arr.max()}]")
        return arr

    def _sample(self, n: int, rng: RNGLike) -> np.ndarray:
        d, m = self.logits.shape
        cdf = np.cumsum(self.probs, axis=1)
        u = uniform(rng, (n, d))
        # inverse CDF: the category is the number of cumulative probabilities below u
        counts = (u[:, :, None] >= cdf[None, :, :]).sum(axis=2)
        return np.minimum(counts, m - 1)

    def _log_prob(self, x: np.ndarray) -> np.ndarray:
        from scipy.special import log_softmax

        log_pi = log_softmax(self.logits, axis=1)
        return log_pi[np.arange(x.shape[1]), x].sum(axis=1)

    def _score(self, x: np.ndarray) -> Grad:
        d, m = self.logits.shape
        onehot = np.eye(m, dtype=self.dtype)[x]
        return {"logits": onehot - self.probs}

    def _weighted_score(self, w: np.ndarray, x: np.ndarray) -> Grad:
        _n, (d, m) = x.shape[0], self.logits.shape
        # sum_i w_i onehot(x_ij): one weighted count over the flattened (dimension, category) cells
        cells = (x + m * np.arange(d)).ravel()
        counts = np.bincount(cells, weights=np.repeat(w, d), minlength=d * m).reshape(d, m)
        return {"logits": (counts - w.sum() * self.probs).astype(self.dtype, copy=False)}

    def natural_gradient(self, grad: Grad) -> Grad:
        """g / pi, with pi clamped below at the dtype's eps (as for ``Bernoulli``: rounding-level entries of g)."""
        grad = self.check_grad(grad)
        return {"logits": _divide_clamped(grad, self.dtype, self.probs)}


def _divide_clamped(grad: Grad, dtype: np.dtype, fisher: np.ndarray) -> np.ndarray:
    """grad["logits"] / max(fisher, eps) in the parameters' dtype; a ValueError naming grad if it overflows."""
    g = as_dtype("grad['logits']", grad["logits"], dtype)
    with np.errstate(over="ignore"):  # checked just below
        natural = g / np.maximum(fisher, np.finfo(dtype).eps)
    if not np.isfinite(natural).all():
        raise ValueError(
            f"grad['logits'] (largest magnitude {float(np.max(np.abs(g)))}) divided by the Fisher "
            f"information overflows {np.dtype(dtype)}; rescale the gradient"
        )
    return natural
