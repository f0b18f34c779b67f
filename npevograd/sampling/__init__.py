"""Sampling: standard normal and uniform draws, and the threaded row blocks large arrays are filled in.

The ground floor: it builds only on ``npevograd._checks`` (the rng argument).  A Generator's large
fills go in blocks of rows fixed by the shape, one child stream each, so a draw does not depend on
the thread count; ``weighted_row_sums`` streams the same blocks for the contractions above it.
"""

from ._blocks import BLOCK_BYTES, map_blocks, row_blocks, thread_count, weighted_row_sums
from ._draws import normal_rows, standard_normal, standard_normal_fill, uniform

__all__ = [
    "BLOCK_BYTES",
    "map_blocks",
    "normal_rows",
    "row_blocks",
    "standard_normal",
    "standard_normal_fill",
    "thread_count",
    "uniform",
    "weighted_row_sums",
]
