r"""Keep the last k generations and pool them for sample reuse (the balance heuristic).

Generation g drew n_g samples from p_g.  Pooled, the N = sum_g n_g samples are a draw
from the mixture of the stored distributions weighted by their sample counts, and
each sample's proposal density is that mixture's:

.. math::

    \log q(x) = \log \sum_g \frac{n_g}{N}\, p_g(x)
              = \operatorname{logsumexp}_g \big(\log p_g(x) + \log n_g\big) - \log N

(= logsumexp_g log p_g(x) - log k for equal counts).  This is Veach and Guibas's
balance heuristic (1995) for multiple importance sampling: every sample is weighted
as if drawn from the mixture, so the ratios rho_i = p(x_i)/q(x_i) stay bounded by N/n_g
wherever p is close to one of the p_g.  Pass ``log_proposal`` to an estimator with
the pooled ``x`` and ``values``.

Each generation's distribution is snapshotted when it is added (``params`` are live
arrays that optimizers update in place), and log p_g(x_h) is computed once per pair
of stored generations, so adding a generation costs O(k n) log-density evaluations.
Memory is bounded by k generations.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from .._checks import as_float_array, check_sample_count
from ..distributions import Distribution
from ..noise import EncodedSamples, NoiseTable


@dataclass
class _Generation:
    x: np.ndarray
    values: np.ndarray
    p: Distribution
    log_p: dict[int, np.ndarray]  # id of a stored generation h -> log p_h(x) of these samples


def snapshot(p: Distribution) -> Distribution:
    """A copy of ``p`` whose parameters no longer follow the live arrays (a shared noise table is kept)."""
    shared = {id(v): v for v in vars(p).values() if isinstance(v, NoiseTable)}
    return copy.deepcopy(p, memo=shared)


class ReuseBuffer:
    """The samples, values and distributions of the last ``k`` generations, pooled for reuse.

    ``add(x, values, p)`` stores a generation (values: fitness (n,) or behaviours
    (n, ...)); ``x``, ``values`` and ``log_proposal`` are the pooled samples, values and
    log q(x_i) under the count-weighted mixture of the stored distributions (module
    docstring), oldest generation first.  Typical use::

        buffer = ng.ReuseBuffer(k=5)
        for t in range(steps):
            x = p.sample(m, rng)
            buffer.add(x, fitness(x), p)
            r = estimator(buffer.values, buffer.x, p, log_proposal=buffer.log_proposal)
            p.params["mu"] += lr * r.grad["mu"]
    """

    def __init__(self, k: int):
        self.k = check_sample_count("k", k)
        self._generations: list[_Generation] = []
        self._ids: list[int] = []
        self._next_id = 0

    def __len__(self) -> int:
        return len(self._generations)

    def add(self, x: object, values: object, p: Distribution) -> None:
        """Store one generation's samples, values and a snapshot of ``p``; drop the oldest beyond k."""
        if not isinstance(p, Distribution):
            raise TypeError(f"p must be an npevograd Distribution, got {type(p).__name__}")
        if isinstance(x, EncodedSamples):
            raise TypeError("ReuseBuffer stores sample arrays: pass p.decode(x) for encoded samples")
        x = np.array(p.check_x(x))  # a copy: the caller may overwrite its array
        v = np.array(as_float_array("values", values))
        if v.ndim == 0 or v.shape[0] != x.shape[0]:
            raise ValueError(
                f"values has shape {v.shape} but x has {x.shape[0]} samples; expected values of shape "
                f"({x.shape[0]}, ...)"
            )
        if self._generations:
            first = self._generations[0]
            if x.shape[1:] != first.x.shape[1:] or x.dtype != first.x.dtype or v.shape[1:] != first.values.shape[1:]:
                raise ValueError(
                    f"generation has x {x.shape[1:]} {x.dtype} and values {v.shape[1:]} per sample, but the buffer "
                    f"holds x {first.x.shape[1:]} {first.x.dtype} and values {first.values.shape[1:]}"
                )
        full = len(self._generations) == self.k
        kept = list(zip(self._ids, self._generations))[1 if full else 0 :]
        frozen = snapshot(p)
        # every log-density first (log_prob may raise: x far out in float32), the state changes after
        new_log_p = [frozen.log_prob(g.x).astype(np.float64) for _, g in kept]
        log_p = {h: g.p.log_prob(x).astype(np.float64) for h, g in kept}
        new_id = self._next_id
        log_p[new_id] = frozen.log_prob(x).astype(np.float64)
        if full:
            self._generations.pop(0)
            gone = self._ids.pop(0)
            for g in self._generations:
                g.log_p.pop(gone)
        for g, value in zip(self._generations, new_log_p):
            g.log_p[new_id] = value
        self._next_id += 1
        self._generations.append(_Generation(x, v, frozen, log_p))
        self._ids.append(new_id)

    def _check_nonempty(self) -> None:
        if not self._generations:
            raise ValueError("ReuseBuffer is empty: add(x, values, p) a generation first")

    @property
    def x(self) -> np.ndarray:
        """The pooled samples, oldest generation first: (N, ...)."""
        self._check_nonempty()
        return np.concatenate([g.x for g in self._generations])

    @property
    def values(self) -> np.ndarray:
        """The pooled values, in the order of ``x``."""
        self._check_nonempty()
        return np.concatenate([g.values for g in self._generations])

    @property
    def log_proposal(self) -> np.ndarray:
        """log q(x_i) = logsumexp_g (log p_g(x_i) + log n_g) - log N for each pooled sample: (N,)."""
        from scipy.special import logsumexp

        self._check_nonempty()
        counts = np.array([g.x.shape[0] for g in self._generations], dtype=np.float64)
        log_share = np.log(counts) - np.log(counts.sum())  # log (n_g / N)
        rows = [np.stack([g.log_p[h] for h in self._ids]) for g in self._generations]  # (k, n_g) each
        return logsumexp(np.concatenate(rows, axis=1) + log_share[:, None], axis=0)
