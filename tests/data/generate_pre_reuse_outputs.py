"""Generate tests/data/pre_reuse_outputs.npz with the code before issue 10 (commit 2f7abc5)."""
import sys
import numpy as np
sys.path.insert(0, "tests")
from conftest import EXAMPLES
import npevograd as ng

ESTIMATORS = {
    "mean": ng.Mean(), "mean-zscore": ng.Mean(ng.zscore), "mean-ranks": ng.Mean(ng.centered_ranks),
    "mean-nes": ng.Mean(ng.nes_utilities), "variance": ng.Variance(), "entropy": ng.Entropy(0.8),
    "entropy-blocked": ng.Entropy(0.8, block_size=7),
}
out = {}
for ex in sorted(EXAMPLES):
    for dt in (np.float64, np.float32):
        p = EXAMPLES[ex](dt)
        x = p.sample(24, rng=11)
        rng = np.random.default_rng(5)
        for name, est in ESTIMATORS.items():
            v = rng.standard_normal(24) if name.startswith("mean") else rng.standard_normal((24, 2))
            v = v.astype(dt)
            r = est(v, x, p)
            key = f"{ex}|{np.dtype(dt).name}|{name}"
            out[key + "|values"] = v
            out[key + "|x"] = x
            out[key + "|value"] = np.asarray(r.value)
            out[key + "|weights"] = r.weights
            for k, g in r.grad.items():
                out[key + f"|grad|{k}"] = g
np.savez_compressed("tests/data/pre_reuse_outputs.npz", **out)
print(len(out))
