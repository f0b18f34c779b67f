"""Write tests/data/pre_wings.pickle: distributions, estimators and strategies pickled by the flat layout.

Run once on the code before the wings (commit 1136f40, every module in one folder) from the
repository root: ``PYTHONPATH=$PWD python tests/data/generate_pre_wings_pickle.py``.  The pickle
names the old module paths (``npevograd.normal.Normal``, ``npevograd.shaping.centered_ranks``, ...);
tests/test_layout.py loads it with today's code and continues each object, which must give the
``expected`` arrays stored beside it, computed here before pickling, bit for bit.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

import npevograd as ng
from npevograd import algorithms


def objects() -> dict[str, object]:
    """Each class whose pickle names a module the wings move, in a state past its start."""
    table = ng.NoiseTable(size=4096, seed=3)
    out: dict[str, object] = {
        "normal": ng.Normal(np.array([0.3, -1.2, 2.0]), 0.7),
        "normal-learn-f32": ng.Normal(np.array([1.0, -0.5], dtype=np.float32), np.array([0.5, 2.0]), learn_sigma=True),
        "normal-table": ng.Normal(np.zeros(5), 0.4, noise=table),
        "paired": ng.PairedNormal(np.array([0.5, 0.1]), 1.5, learn_sigma=True),
        "mix": ng.MixNormal(np.array([[0.0, 0.0], [1.0, 0.5]]), 0.8),
        "bernoulli": ng.Bernoulli(np.array([-1.0, 0.5, 2.0])),
        "categorical": ng.Categorical(np.array([[0.0, 1.0, -1.0], [2.0, 0.5, 0.0]])),
        "mvn": ng.MultivariateNormal(np.array([0.5, -1.0]), np.array([[1.2, 0.0], [-0.7, 0.4]]), learn_scale=True),
        "mean-ranks": ng.Mean(shaping=ng.centered_ranks, baseline="loo"),
        "entropy": ng.Entropy(bandwidth=0.8),
        "snes": algorithms.SNES(np.ones(4), 0.5, rng=1),
        "xnes": algorithms.XNES(np.ones(3), 0.5, rng=2),
        "pgpe": algorithms.PGPE(np.ones(4), 0.5, rng=3, optimizer="clipup"),
        "open-es": algorithms.OpenES(np.ones(4), 0.1, rng=4, noise=table),
        "evolvability": algorithms.EvolvabilityES(np.ones(2), 0.5, popsize=20, rng=5, kind="entropy"),
    }
    for name, obj in out.items():
        if isinstance(obj, algorithms.Strategy):
            advance(name, obj, 3)
    return out


def fitness(name: str, x: np.ndarray) -> np.ndarray:
    return x[:, :2] if name == "evolvability" else -np.sum((x - 0.25) ** 2, axis=1)


def advance(name: str, es: algorithms.Strategy, generations: int) -> None:
    for _ in range(generations):
        es.tell(fitness(name, es.ask()))


def continuation(name: str, obj: object) -> np.ndarray:
    """What each object does next: samples and scores, an estimate's gradient, or three more generations."""
    if isinstance(obj, algorithms.Strategy):
        advance(name, obj, 3)
        return np.concatenate([obj.mean.ravel(), *(v.ravel() for v in obj.distribution.params.values())])
    if isinstance(obj, ng.Estimator):
        p = ng.Normal(np.array([0.2, -0.4]), 0.9, learn_sigma=True)
        x = p.sample(12, rng=6)
        r = obj(np.sin(3 * x[:, 0]), x, p)
        return np.concatenate([r.weights, r.grad["mu"], np.ravel(r.grad["sigma"])])
    x = obj.sample(8, rng=7)
    return np.concatenate([np.ravel(x).astype(np.float64), *(np.ravel(s) for s in obj.score(x).values())])


def main() -> None:
    made = objects()
    blob = pickle.dumps(made)
    expected = {name: continuation(name, obj) for name, obj in pickle.loads(blob).items()}
    path = Path(__file__).with_name("pre_wings.pickle")
    path.write_bytes(pickle.dumps({"objects": blob, "expected": expected}))
    print(f"wrote {path} ({path.stat().st_size} bytes, {len(made)} objects)")


if __name__ == "__main__":
    main()
