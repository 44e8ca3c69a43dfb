"""Atomic file writes: a crash at any moment leaves the old file or the new one, never half.

The new content goes to a temporary file in the target's folder (same file system), is
flushed and fsynced, then renamed over the target; the folder is fsynced so the rename
itself survives a power cut.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp_path)` to produce the file, then move it to `path` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        _test_pause()
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp_path, 0o644)
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def _test_pause() -> None:
    """Tests kill a run in the middle of a write: GRUFORECAST_TEST_PAUSE_WRITE=SECONDS holds
    every write between its temporary file and the rename."""
    pause = os.environ.get("GRUFORECAST_TEST_PAUSE_WRITE")
    if pause:
        import time

        time.sleep(float(pause))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))
