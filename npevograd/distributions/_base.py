"""The interface every distribution implements.

A distribution owns its parameters (``params``: name -> live ndarray) and
knows its score, the gradient of ``log p_theta(x)`` with respect to each
parameter.  Estimators only ever ask it for ``weighted_score(w, x)``, the
contraction ``sum_i w[i] * score(x)[name][i]`` (``docs/derivations.md``, section 4).
"""

from __future__ import annotations

import numpy as np

from .._checks import (
    SMALL_SIZE,
    RNGLike,
    all_finite,
    as_dtype,
    as_float_array,
    check_finite,
    check_grad,
    check_params,
    check_sample_bytes,
    check_sample_count,
)

Grad = dict[str, np.ndarray]

# Standard normal draws that sampling never exceeds in magnitude: NumPy's ziggurat (Generator, float64 and
# float32) returns at most about 14, the legacy polar method (RandomState) about 12, and noise tables are
# such draws.  A distribution whose |mu| + EPS_BOUND * (its scale) is finite cannot draw an overflowing
# sample, so only distributions near the dtype's limit have their samples scanned.
EPS_BOUND = 64.0


def beyond_limit(mu: np.ndarray, spread: float) -> bool:
    """Whether max |mu| + EPS_BOUND * spread may exceed the largest number of mu's dtype.

    On Python floats (which overflow to inf without a warning): a few microseconds at most.
    """
    largest_mu = max(map(abs, mu.tolist())) if mu.size <= SMALL_SIZE else float(np.max(np.abs(mu)))
    return not largest_mu + EPS_BOUND * spread < _LIMITS[mu.dtype]


_LIMITS = {np.dtype(np.float32): float(np.finfo(np.float32).max), np.dtype(np.float64): float(np.finfo(np.float64).max)}


# Non-finite intermediates are not reported as they arise: every result is checked by
# ``_finite``, which names the input responsible (a RuntimeWarning first would be the same
# failure reported twice, and escape as a warning from a call that then raises).
def checked_after() -> np.errstate:
    """The floating-point state of a computation whose result ``_finite`` checks."""
    return np.errstate(over="ignore", invalid="ignore", divide="ignore")


class Distribution:
    """Base class: subclasses set ``params`` and implement the sampling and score."""

    params: Grad

    @property
    def dtype(self) -> np.dtype:
        return next(iter(self.params.values())).dtype

    def sample(self, n: int, rng: RNGLike = None) -> np.ndarray:
        """Draw ``n`` samples, shape (n, *event_shape); a ValueError naming the parameters if one overflows."""
        n = check_sample_count("n", n)
        check_sample_bytes(n, check_params(self))
        return self._checked_sample(n, rng)

    def _checked_sample(self, n: int, rng: RNGLike) -> np.ndarray:
        """``_sample``, scanned for overflow only when the parameters are near the dtype's limit."""
        if not self._may_overflow():
            return self._sample(n, rng)
        with checked_after():
            x = self._sample(n, rng)
        self._check_sample(x)
        return x

    def _may_overflow(self) -> bool:
        """Whether a sample could overflow the dtype (False: it cannot, and is not scanned)."""
        return False

    def _check_sample(self, x: np.ndarray) -> None:
        """Raise a ValueError naming the parameters when a sample ``x`` (n, ...) is not finite."""
        if all_finite(x):
            return
        rows = np.isfinite(x.reshape(x.shape[0], -1)).all(axis=1)
        raise ValueError(
            f"{type(self).__name__}.sample: {int(np.count_nonzero(~rows))} of {rows.size} samples overflow "
            f"{x.dtype} (first: sample {int(np.argmin(rows))}); {self._scale_text()}"
        )

    def _scale_text(self) -> str:
        """The parameters that set the samples' magnitude, for ``_check_sample``'s message."""
        sizes = ", ".join(f"largest |{name}| {float(np.max(np.abs(v))):.4g}" for name, v in self.params.items())
        return f"{sizes}: rescale the parameters"

    def log_prob(self, x: object) -> np.ndarray:
        """log p_theta(x_i) for each sample, shape (n,)."""
        x = self.check_x(x)
        with checked_after():
            log_prob = self._log_prob(x)
        return self._finite({"log_prob": log_prob}, x)["log_prob"]

    def score(self, x: object) -> Grad:
        """grad_theta log p_theta(x_i): name -> array (n, *param.shape)."""
        x = self.check_x(x)
        with checked_after():
            scores = self._score(x)
        return self._finite(scores, x)

    def weighted_score(self, w: object, x: object) -> Grad:
        """sum_i w[i] * score(x)[name][i]: name -> array param.shape."""
        return self._contract(w, self.check_x(x))

    def _contract(self, w: object, x: np.ndarray) -> Grad:
        """``weighted_score`` of samples ``check_x`` has just returned (the estimators validate x once)."""
        n = x.shape[0]
        weights = as_float_array("w", w, finite=False)  # finiteness is checked on the result
        if weights.shape != (n,):
            raise ValueError(f"w has shape {weights.shape} but x has {n} samples; expected w of shape ({n},)")
        weights = as_dtype("w", weights, self.dtype)
        with checked_after():
            grad = self._weighted_score(weights, x)
        return self._finite(grad, x, weights)

    def natural_gradient(self, grad: Grad) -> Grad:
        """The inverse Fisher information applied to ``grad`` (closed form)."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form Fisher information")

    def check_x(self, x: object) -> np.ndarray:
        """Validate a sample array against this distribution's event shape."""
        raise NotImplementedError

    def check_grad(self, grad: Grad) -> Grad:
        """Validate a gradient dict against ``params`` (same names and shapes)."""
        check_params(self)
        return check_grad(self.params, grad)

    def _finite(self, result: Grad, x: np.ndarray, w: np.ndarray | None = None) -> Grad:
        """Return ``result`` if finite; otherwise name the input that made it not."""
        for v in result.values():
            if not all_finite(v if type(v) is np.ndarray else np.asarray(v)):
                break
        else:
            return result
        if w is not None:
            check_finite("w", w)
        if isinstance(x, np.ndarray):  # encoded samples are table windows, finite by construction
            check_finite("x", x)
        for name, value in self.params.items():
            check_finite(f"params[{name!r}]", value)
        raise ValueError(
            f"{type(self).__name__}: inputs are finite but {sorted(result)} overflowed; rescale x or the parameters"
        )

    def _sample(self, n: int, rng: RNGLike) -> np.ndarray:
        raise NotImplementedError

    def _log_prob(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _score(self, x: np.ndarray) -> Grad:
        raise NotImplementedError

    def _weighted_score(self, w: np.ndarray, x: np.ndarray) -> Grad:
        scores = self._score(x)
        return {name: np.tensordot(w, s, axes=(0, 0)) for name, s in scores.items()}

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}: {v.shape}" for k, v in self.params.items())
        return f"{type(self).__name__}({shapes}, dtype={self.dtype})"
