"""Write tests/data/xnes_lower_factor.pickle: XNES pickled while it kept a lower-triangular factor L.

Run once on the code before issue 24, section 3 (commit ff5500f, ``MultivariateNormal`` as the XNES distribution)
from the repository root: ``PYTHONPATH=$PWD python tests/data/generate_xnes_lower_factor_pickle.py``.  Three
states: ``told`` (a tell whose estimate was not read yet), ``asked`` (a population asked, not told: its z kept) and
``separable`` (told, estimate pending); beside them what the old code computed from them: the estimates (value,
weights, mu gradient) and the asked population.  tests/test_xnes_factor.py loads them with today's code.
"""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import numpy as np

from npevograd import algorithms


def fitness(x: np.ndarray) -> np.ndarray:
    return -np.sum(np.arange(1, x.shape[1] + 1) * (x - 0.25) ** 2, axis=1)


def main() -> None:
    told = algorithms.XNES(np.ones(4), 0.5, rng=11, lr_B=0.5)
    for _ in range(3):
        told.tell(fitness(told.ask()))
    asked = copy.deepcopy(told)
    population = asked.ask()
    separable = algorithms.XNES(np.ones(4), 0.5, rng=12, separable=True)
    for _ in range(3):
        separable.tell(fitness(separable.ask()))
    blob = pickle.dumps({"told": told, "asked": asked, "separable": separable})
    expected = {
        name: (es.estimate.value, es.estimate.weights, es.estimate.grad["mu"])
        for name, es in pickle.loads(blob).items()
        if name != "asked"
    }
    path = Path(__file__).with_name("xnes_lower_factor.pickle")
    path.write_bytes(pickle.dumps({"objects": blob, "estimates": expected, "population": population}))
    print(f"wrote {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
