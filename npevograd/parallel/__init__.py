"""Parallel: evaluate a population on any ``concurrent.futures`` executor, retrying lost workers.

Builds on ``distributions`` and ``noise``: with a noise table only (index, sign) pairs and fitness
values cross the wire.  ``evaluation`` holds ``evaluate`` and its errors, ``_worker`` what runs on
a worker, ``_pool`` a process pool whose workers exit with their parent.
"""

from ._pool import ProcessPool
from .evaluation import Evaluation, FitnessError, RemoteTraceback, WorkerLostError, evaluate

__all__ = ["Evaluation", "FitnessError", "ProcessPool", "RemoteTraceback", "WorkerLostError", "evaluate"]
