"""The shared noise table (Salimans et al. 2017): one seed, a table of normals, samples as (index, sign).

Builds on ``sampling`` (its row-block sums).  ``table`` holds ``NoiseTable`` and ``EncodedSamples``;
``_shared_memory`` decides where a table's numbers live (a POSIX shared-memory segment or private
memory) and when that memory is released.
"""

from .table import EncodedSamples, NoiseTable, _restore  # noqa: F401  (pickles made before the wings name npevograd.noise._restore)

__all__ = ["EncodedSamples", "NoiseTable"]
