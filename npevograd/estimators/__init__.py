"""Estimators: the weights w_i = dJ/dr_i of each objective, importance ratios, reuse, error bars, shaping.

Builds on ``distributions``: an estimator computes one weight per sample and hands them to the
distribution's ``weighted_score``.  ``objectives`` holds Mean, Variance, Entropy and ``expectation``;
``_kde`` and ``_ratio_kde`` the kernel sums of the entropy; ``_ratios`` the importance ratios of
sample reuse (``reuse``); ``stderr`` the gradients' standard errors; ``shaping`` fitness shaping.
"""

from .objectives import Entropy, Estimate, Estimator, Mean, Variance, expectation
from .reuse import ReuseBuffer
from .shaping import centered_ranks, cma_weights, nes_utilities, zscore
from .stderr import gradient_stderr

__all__ = [
    "Entropy",
    "Estimate",
    "Estimator",
    "Mean",
    "ReuseBuffer",
    "Variance",
    "centered_ranks",
    "cma_weights",
    "expectation",
    "gradient_stderr",
    "nes_utilities",
    "zscore",
]
