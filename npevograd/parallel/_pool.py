"""``ProcessPool``: a process pool for one machine that survives the death of a worker.

:func:`npevograd.parallel.evaluate` resubmits a lost batch through the executor it was
given, so that executor must stay usable after a worker dies; this one does, and its
workers exit when the process that owns the pool dies.
"""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import BrokenExecutor, Executor, Future, ProcessPoolExecutor
from typing import Any, Callable


class ProcessPool(Executor):
    """A ``ProcessPoolExecutor`` that replaces itself when one of its worker processes dies.

    ``concurrent.futures.ProcessPoolExecutor`` marks itself broken when a worker
    dies and fails every pending future with ``BrokenProcessPool``; after that it
    accepts no work.  This wrapper starts a fresh pool on the next ``submit``, so
    :func:`evaluate` can resubmit the lost batches through the same executor.
    ``replacements`` counts the pools started to replace broken ones.  (loky's
    executor also fails every pending future when a worker dies, and stays broken:
    only a new ``loky.get_reusable_executor()`` call gives a working one.)

    Its workers exit as soon as the process that started the pool dies (a thread in
    each polls it), so a killed owner leaves no orphans holding its tables'
    shared memory.  Same arguments as ``ProcessPoolExecutor``.
    """

    def __init__(
        self,
        max_workers: int | None = None,
        mp_context: Any = None,
        initializer: Callable[..., object] | None = None,
        initargs: tuple[Any, ...] = (),
    ):
        self._options = {
            "max_workers": max_workers,
            "mp_context": mp_context,
            "initializer": _exit_with_parent,
            "initargs": (os.getpid(), initializer, initargs),
        }
        self._lock = threading.Lock()
        self._pool = ProcessPoolExecutor(**self._options)  # type: ignore[arg-type]
        self.replacements = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        with self._lock:
            try:
                return self._pool.submit(fn, *args, **kwargs)
            except BrokenExecutor:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = ProcessPoolExecutor(**self._options)  # type: ignore[arg-type]
                self.replacements += 1
                return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


# Seconds between a pool worker's checks that the pool's owner is alive.
_PARENT_POLL = 0.2


def _exit_with_parent(owner: int, initializer: Callable[..., object] | None, initargs: tuple[Any, ...]) -> None:
    """Pool worker start: exit when the pool's owner process is gone (a thread watches), then the user's initializer.

    The owner is the worker's parent (fork, spawn) or its forkserver's client, which outlives it.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent and _alive(owner):  # a dead parent's children are re-parented at once
            time.sleep(_PARENT_POLL)
        os._exit(1)

    threading.Thread(target=watch, name="npevograd-owner-watch", daemon=True).start()
    if initializer is not None:
        initializer(*initargs)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:  # no /proc (macOS): a zombie owner counts as alive until it is reaped
        return True
