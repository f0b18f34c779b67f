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
arrays that optimizers update in place).  Memory is O(k n): the k generations' samples,
values and snapshots, nothing per pair of generations.  ``log_proposal`` evaluates the k
stored log-densities on the N pooled samples when first asked after an ``add`` (k calls
per block of samples, k N evaluations in all) in blocks of at most ``BLOCK_ENTRIES``
log-densities (16 MB), and keeps the result until the next ``add``.  Measured at k = 600,
n = 50, d = 5 (``python tests/test_hardening_round3.py``, loaded machine): the k x N matrix
of log p_g(x_h) kept before held 198 MB, and log_proposal peaked at 1.2 GB in all; now the
buffer holds 2.4 MB and log_proposal adds at most 17 MB to it (tracemalloc).
``add`` evaluates the new distribution on the stored samples and the stored distributions
on the new samples (O(N) evaluations, discarded), so that a sample outside a density's
range raises there, before the buffer changes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from .._checks import as_float_array, check_sample_count
from ..distributions import Distribution
from ..noise import EncodedSamples, NoiseTable

# Largest block of log-densities log p_g(x_i) that log_proposal holds at once (16 MB in float64).
BLOCK_ENTRIES = 1 << 21


@dataclass
class _Generation:
    x: np.ndarray
    values: np.ndarray
    p: Distribution


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
        self._log_proposal: np.ndarray | None = None  # computed when first asked after an add

    def __setstate__(self, state: dict) -> None:
        """Load a buffer pickled before defect 8's fix: drop its per-pair log-densities (recomputed on demand)."""
        for stale in ("_ids", "_next_id"):
            state.pop(stale, None)
        for g in state.get("_generations", []):
            vars(g).pop("log_p", None)
        state.setdefault("_log_proposal", None)
        self.__dict__.update(state)

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
        kept = self._generations[1 if full else 0 :]
        frozen = snapshot(p)
        # every log-density that log_proposal will need for the new pairs, evaluated (and dropped) now:
        # log_prob may raise (x far out in float32), and the buffer changes only after
        if kept:
            frozen.log_prob(np.concatenate([g.x for g in kept]))
        for g in kept:
            g.p.log_prob(x)
        frozen.log_prob(x)
        if full:
            self._generations.pop(0)
        self._generations.append(_Generation(x, v, frozen))
        self._log_proposal = None

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
        """log q(x_i) = logsumexp_g (log p_g(x_i) + log n_g) - log N for each pooled sample: (N,).

        Computed on first use after an ``add``, in blocks of whole generations holding at most
        ``BLOCK_ENTRIES`` log-densities (one generation at a time if larger), then kept.
        """
        self._check_nonempty()
        if self._log_proposal is None:
            self._log_proposal = self._mixture_log_density()
        return self._log_proposal.copy()

    def _mixture_log_density(self) -> np.ndarray:
        """log q for the pooled samples, a block of whole generations at a time (see ``log_proposal``)."""
        generations = self._generations
        k = len(generations)
        counts = np.array([g.x.shape[0] for g in generations], dtype=np.float64)
        log_share = np.log(counts) - np.log(counts.sum())  # log (n_g / N)
        pieces = []
        start = 0
        while start < k:
            stop, rows = start + 1, generations[start].x.shape[0]
            while stop < k and (rows + generations[stop].x.shape[0]) * k <= BLOCK_ENTRIES:
                rows += generations[stop].x.shape[0]
                stop += 1
            x = np.concatenate([g.x for g in generations[start:stop]])
            terms = np.empty((k, rows))  # log p_g(x_i) + log(n_g / N), then exponentiated in place
            for row, g in enumerate(generations):
                terms[row] = g.p.log_prob(x)
                terms[row] += log_share[row]
            pieces.append(_logsumexp_columns(terms))
            del terms  # before the next block is allocated: one block alive at a time
            start = stop
        return np.concatenate(pieces)


def _logsumexp_columns(terms: np.ndarray) -> np.ndarray:
    """log sum_g exp(terms[g, i]) for each column i, overwriting ``terms`` (no copy of the block)."""
    largest = terms.max(axis=0)
    largest[~np.isfinite(largest)] = 0  # a column of -inf: log(0) = -inf below
    terms -= largest
    np.exp(terms, out=terms)
    with np.errstate(divide="ignore"):  # a sample no stored density reaches: log q = -inf, as logsumexp gives
        return np.log(terms.sum(axis=0)) + largest
