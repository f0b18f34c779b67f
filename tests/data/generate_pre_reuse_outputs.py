"""Write tests/data/pre_reuse_outputs.npz: every estimator on every example distribution, both dtypes.

Run once on the code before sample reuse (commit 2f7abc5) from the repository root:
``PYTHONPATH=$PWD python tests/data/generate_pre_reuse_outputs.py``.  The stored samples,
values, weights and gradients are what tests/test_objectives.py compares the
current code with, bit for bit, when no proposal is given.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS))

from conftest import EXAMPLES  # noqa: E402

import npevograd as ng  # noqa: E402

ESTIMATORS = {
    "mean": ng.Mean(), "mean-zscore": ng.Mean(ng.zscore), "mean-ranks": ng.Mean(ng.centered_ranks),
    "mean-nes": ng.Mean(ng.nes_utilities), "variance": ng.Variance(), "entropy": ng.Entropy(0.8),
    "entropy-blocked": ng.Entropy(0.8, block_size=7),
}


def main() -> None:
    out = {}
    for example in sorted(EXAMPLES):
        for dt in (np.float64, np.float32):
            p = EXAMPLES[example](dt)
            x = p.sample(24, rng=11)
            rng = np.random.default_rng(5)
            for name, estimator in ESTIMATORS.items():
                v = rng.standard_normal(24) if name.startswith("mean") else rng.standard_normal((24, 2))
                v = v.astype(dt)
                r = estimator(v, x, p)
                key = f"{example}|{np.dtype(dt).name}|{name}"
                out[key + "|values"], out[key + "|x"] = v, x
                out[key + "|value"], out[key + "|weights"] = np.asarray(r.value), r.weights
                for param, g in r.grad.items():
                    out[f"{key}|grad|{param}"] = g
    np.savez_compressed(TESTS / "data" / "pre_reuse_outputs.npz", **out)
    print(f"{len(out)} arrays written")


if __name__ == "__main__":
    main()
