"""Where a noise table's numbers live, and when that memory goes.

A :class:`TableMemory` holds the numbers of one table in this process in one of three
places: a POSIX shared-memory segment this process created and owns, another process's
segment mapped read-only, or private memory.  The owner unlinks its segment on
:meth:`TableMemory.close`, when the table is garbage collected, and at interpreter exit;
if the owner is killed, the ``multiprocessing`` resource tracker unlinks it.
:class:`npevograd.NoiseTable` asks it only for ``build()`` and ``close()``.
"""

from __future__ import annotations

import mmap
import os
import sys
import threading
import warnings
import weakref
from typing import Any

import numpy as np

# Numbers drawn from the seeded generator per step while filling the table.
_FILL_CHUNK = 1 << 20
# Leading values compared against the seed before an attached segment is trusted.
_CHECK_VALUES = 16
# Shared-memory names start with this (short: macOS allows 31 characters).
SEGMENT_PREFIX = "npeg_"


class TableMemory:
    """The memory of ``RandomState(seed).randn(size)`` cast to ``dtype``, built on first use."""

    def __init__(self, size: int, seed: int, dtype: np.dtype, shared: bool):
        self.size, self.seed, self.dtype, self.shared = size, seed, dtype, shared
        self.nbytes = size * dtype.itemsize
        self.array: np.ndarray | None = None
        self.attach_name: str | None = None  # another process's segment to map when built
        self._lock = threading.Lock()
        self._segment: Any = None  # SharedMemory, when this process owns the table's segment
        self._mapping: Any = None  # the segment's mapping (own or another process's)
        self._finalizer: weakref.finalize | None = None
        self._creator_pid = os.getpid()

    @property
    def segment_name(self) -> str | None:
        """Name of the segment this process owns (None if private, attached or not built)."""
        return None if self._segment is None else self._segment.name

    @property
    def attached(self) -> bool:
        """Whether the numbers are another process's segment, mapped here."""
        return self._mapping is not None and self._segment is None

    @property
    def where(self) -> str:
        if self._segment is not None:
            return f"shared segment {self.segment_name!r}"
        return "attached" if self._mapping is not None else "private" if self.array is not None else "not built"

    def pickled_name(self) -> str | None:
        """The segment a copy in another process should attach to: owned or attached, else None."""
        return self.segment_name or (self.attach_name if self._mapping is not None else None)

    def build(self) -> np.ndarray:
        with self._lock:
            if self.array is not None:
                return self.array
            arr = self._attach() if self.attach_name is not None else None
            if arr is None and self.shared and os.getpid() == self._creator_pid and _room_in_shm(self.nbytes):
                arr = self._create_segment()
            if arr is None:
                arr = np.empty(self.size, dtype=self.dtype)
                _fill(arr, self.seed)
            arr.flags.writeable = False
            self.array = arr
            return arr

    def close(self) -> None:
        with self._lock:
            self.array = None
            self._mapping = None
            self._segment = None
            if self._finalizer is not None:
                self._finalizer()
                self._finalizer = None

    def attached_to_closed(self) -> bool:
        """Whether this maps another process's segment that its owner has since unlinked (closed)."""
        name = self.attach_name
        if self._mapping is None or name is None or sys.platform == "win32":
            return False  # (Windows: named mappings are reference-counted, gone with their last user)
        import _posixshmem

        try:
            os.close(_posixshmem.shm_open("/" + name, os.O_RDONLY, mode=0o600))
        except FileNotFoundError:
            return True
        return False

    def _create_segment(self) -> np.ndarray:
        import secrets
        from multiprocessing import shared_memory

        segment = shared_memory.SharedMemory(
            name=SEGMENT_PREFIX + secrets.token_hex(6), create=True, size=self.nbytes
        )  # registered with the resource tracker, which unlinks it if this process is killed
        self._finalizer = weakref.finalize(self, _unlink_segment, segment, os.getpid())
        try:
            # Our own mapping: arrays and views hold it, so it outlives every view handed out;
            # SharedMemory's mapping would be unmapped under live views by its close().
            mapping = _map_segment(segment.name, self.nbytes, writable=True)
        finally:
            segment.close()
        arr: np.ndarray = np.frombuffer(mapping, dtype=self.dtype, count=self.size)
        _fill(arr, self.seed)
        self._segment = segment
        self._mapping = mapping
        return arr

    def _attach(self) -> np.ndarray | None:
        """Map another process's segment read-only; None if it is gone or not this table."""
        name = self.attach_name
        if name is None:
            return None
        try:
            mapping = _map_segment(name, self.nbytes)
        except (OSError, ValueError):
            return None
        arr: np.ndarray = np.frombuffer(mapping, dtype=self.dtype, count=self.size)
        head = min(_CHECK_VALUES, self.size)
        expected = np.random.RandomState(self.seed).randn(head).astype(self.dtype)
        if not np.array_equal(arr[:head], expected):
            return None
        self._mapping = mapping
        return arr


def _fill(out: np.ndarray, seed: int) -> None:
    """out[:] = RandomState(seed).randn(len(out)), a chunk at a time (the legacy stream is chunk-invariant)."""
    rs = np.random.RandomState(seed)
    for start in range(0, out.shape[0], _FILL_CHUNK):
        stop = min(start + _FILL_CHUNK, out.shape[0])
        out[start:stop] = rs.randn(stop - start)


def _room_in_shm(nbytes: int) -> bool:
    """False (with a warning) when /dev/shm is too small for the table: writing it would SIGBUS."""
    if not os.path.isdir("/dev/shm"):
        return True
    import shutil

    free = shutil.disk_usage("/dev/shm").free
    if free >= nbytes:
        return True
    warnings.warn(
        f"NoiseTable: /dev/shm has {free} bytes free, the table needs {nbytes}; "
        "building it in private memory (one copy per process)",
        stacklevel=4,
    )
    return False


def _unlink_segment(segment: Any, owner_pid: int) -> None:
    """Unlink the owner's segment; a forked child inherits this finalizer but skips it.

    The memory itself is unmapped when the last array viewing it is collected.
    """
    if os.getpid() != owner_pid:
        return
    try:
        segment.unlink()
    except FileNotFoundError:
        pass


def _map_segment(name: str, nbytes: int, writable: bool = False) -> Any:
    """Map an existing POSIX shared-memory segment (read-only unless ``writable``), unregistered.

    ``SharedMemory(name)`` would register the segment with this process's resource
    tracker before Python 3.13 (CPython issue 82300), and the tracker would unlink
    the owner's segment when this process exits; only the owner may unlink it.
    """
    if sys.platform == "win32":  # named mappings there are reference-counted; nothing to unlink
        return mmap.mmap(-1, nbytes, tagname=name, access=mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ)
    import _posixshmem  # CPython's own backend of multiprocessing.shared_memory

    fd = _posixshmem.shm_open("/" + name, os.O_RDWR if writable else os.O_RDONLY, mode=0o600)
    try:
        if os.fstat(fd).st_size < nbytes:
            raise ValueError(f"segment {name!r} is smaller than the table ({nbytes} bytes)")
        prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
        return mmap.mmap(fd, nbytes, prot=prot)
    finally:
        os.close(fd)
