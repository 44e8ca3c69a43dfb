"""Arrays larger than a process should hold: kept in a temporary file and mapped back,
so that a large panel costs the pages in use, not its size (issue 18).

An array of at least `SPILL_MIB` (the panel's values, their scaled copy that training
cuts windows from, the stored tails) is made in an unlinked file (`O_TMPFILE` in
`$TMPDIR`: it never shows in the folder and is gone when the process ends, crash
included) and memory-mapped shared, read and written like any array. Pages read or
written stay resident only briefly: a daemon thread drops them from this process every
`DROP_EVERY` seconds (`madvise(MADV_DONTNEED)`; on a shared file mapping that unmaps the
page, its data stays in the file and the page cache and is faulted back on the next
read). So the resident size follows what the code touches, a batch of windows or a
block of series, while the kernel keeps or evicts the file's pages as memory allows.
`$TMPDIR` must be on a disk: on a tmpfs the pages live in memory anyway.

Smaller arrays are ordinary arrays: nothing changes for the panels most users have.
`$GRUFORECAST_SPILL_MIB` sets the size (`off`: every array in memory, where memory is
plenty; a mapped panel's epochs measured 1.0x-1.3x as long, within run-to-run noise).
"""

from __future__ import annotations

import errno
import mmap
import os
import tempfile
import threading
import time
import weakref

import numpy as np

from .errors import GruForecastError, InputError, NoSpaceError

SPILL_MIB = 64  # arrays from this size go to disk: 64 MiB, ~8 M float64 points
ENV = "GRUFORECAST_SPILL_MIB"  # overrides it; "off": every array in memory
DROP_EVERY = 0.02  # seconds: a full pass over a mapped panel touches tens of MiB in that

# POSIX shared mappings whose pages can be dropped (not Windows): elsewhere arrays are held.
CAN_MAP = hasattr(mmap, "MAP_SHARED") and hasattr(mmap, "MADV_DONTNEED")
_maps: weakref.WeakSet = weakref.WeakSet()
_lock = threading.Lock()
_dropper: threading.Thread | None = None


def too_large(size: int) -> bool:
    """Whether an array of `size` bytes goes to a temporary file: from `SPILL_MIB` (or
    $GRUFORECAST_SPILL_MIB) on, where mappings can be dropped."""
    text = os.environ.get(ENV, "").strip().lower()
    if text == "off" or not CAN_MAP:
        return False
    try:
        limit = float(text) if text else SPILL_MIB
    except ValueError:
        limit = -1.0
    if not limit >= 0:  # NaN too
        raise InputError(f"{ENV}={text!r} is not a size in MiB; give a number such as 64, or off")
    return size >= limit * 2**20


def empty(shape: tuple[int, ...], dtype) -> np.ndarray:
    """An uninitialised array: mapped from a temporary file when `too_large`."""
    dtype = np.dtype(dtype)
    large = too_large(int(np.prod(shape)) * dtype.itemsize)
    return mapped(shape, dtype) if large else np.empty(shape, dtype=dtype)


def mapped(shape: tuple[int, ...], dtype) -> np.ndarray:
    """An array of zeros in a temporary file, mapped: for parts of a panel that is large
    as a whole."""
    dtype = np.dtype(dtype)
    size = max(1, int(np.prod(shape)) * dtype.itemsize)
    try:
        fh = tempfile.TemporaryFile()  # unlinked; the mapping keeps its pages alive
    except OSError as exc:
        raise GruForecastError(f"cannot make a temporary file in {where()!r} ({exc.strerror}) for a panel too "
                               "large to hold in memory; set TMPDIR to a writable disk folder") from None
    with fh:
        _reserve(fh, size)
        buffer = mmap.mmap(fh.fileno(), size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    _watch(buffer)
    return np.frombuffer(buffer, dtype=dtype, count=int(np.prod(shape))).reshape(shape)


def _reserve(fh, size: int) -> None:
    """Reserve the file's blocks now: a full disk met later, through the mapping, is a
    SIGBUS. Where the system cannot (macOS; some file systems), a sparse file."""
    try:
        os.posix_fallocate(fh.fileno(), 0, size)
    except AttributeError:
        fh.truncate(size)
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            fh.truncate(size)
            return
        raise NoSpaceError(f"no space left in {where()!r} for {size / 2**20:.0f} MiB of a panel too large "
                           "to hold in memory; free space there or set TMPDIR to a disk folder with room") from None


def where() -> str:
    """The folder of the temporary files."""
    return tempfile.gettempdir()


def in_memory_folder(folder: str) -> bool:
    """Whether `folder` is on a tmpfs (Linux's /proc/mounts), where a file's pages are
    memory: spilling there saves nothing."""
    try:
        mounts = [line.split()[1:3] for line in open("/proc/mounts").read().splitlines()]
    except OSError:
        return False
    folder = os.path.realpath(folder)
    on = [(point, kind) for point, kind in mounts if folder == point or folder.startswith(point.rstrip("/") + "/")]
    return bool(on) and max(on, key=lambda m: len(m[0]))[1] == "tmpfs"


def is_mapped(array: np.ndarray) -> bool:
    """Whether `array` (or what it views) lives in a file made by `empty`."""
    while isinstance(array, np.ndarray):
        array = array.base
    return isinstance(getattr(array, "obj", None), mmap.mmap)  # frombuffer's memoryview


def _watch(buffer: mmap.mmap) -> None:
    global _dropper
    with _lock:
        _maps.add(buffer)
        if _dropper is None:
            _dropper = threading.Thread(target=_drop_pages, name="gruforecast-spill", daemon=True)
            _dropper.start()


def _after_fork() -> None:
    """In a forked child only the forking thread lives: its first mapping starts its own
    dropper, and the lock is new (the parent's dropper may have held it at the fork)."""
    global _dropper, _lock
    _dropper, _lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):  # POSIX
    os.register_at_fork(after_in_child=_after_fork)


def _drop_pages() -> None:
    """Unmap the pages of every live mapping, every `DROP_EVERY` seconds, for good."""
    while True:
        time.sleep(DROP_EVERY)
        with _lock:  # not while a mapping is added
            live = list(_maps)
        for buffer in live:
            try:
                buffer.madvise(mmap.MADV_DONTNEED)
            except (ValueError, OSError):  # closed meanwhile
                pass
