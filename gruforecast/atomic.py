"""Atomic file writes: a crash at any moment leaves the old file or the new one, never half.

The new content goes to a temporary file in the target's folder (same file system), is
flushed and fsynced, then renamed over the target; the folder is fsynced so the rename
itself survives a power cut. `check_output_path` refuses, before any work, an output
that could not be written.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import InputError, NoSpaceError

_PENDING: list[tuple[Path, Path]] | None = None  # inside all_or_nothing: renames held back


@contextmanager
def all_or_nothing() -> Iterator[None]:
    """The writes inside happen together or not at all: each goes to its temporary file
    as usual, and the renames onto the targets wait until the block ends without an
    error (an error, Ctrl-C included, removes every temporary file and replaces nothing)."""
    global _PENDING
    _PENDING = []
    try:
        yield
        for tmp, path in _PENDING:
            os.replace(tmp, path)
            _fsync_dir(path.parent)
    except BaseException:
        for tmp, _ in _PENDING:
            tmp.unlink(missing_ok=True)
        raise
    finally:
        _PENDING = None


def _fsync_dir(folder: Path) -> None:
    dir_fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp_path)` to produce the file, then move it to `path` atomically (at
    the end of the enclosing `all_or_nothing` block, if there is one)."""
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
        if _PENDING is not None:
            _PENDING.append((tmp_path, path))
            return path
        os.replace(tmp_path, path)
    except BaseException as exc:
        tmp_path.unlink(missing_ok=True)
        if _out_of_space(exc, path.parent):
            raise NoSpaceError(f"no space left on the device of {str(path.parent)!r} while writing "
                               f"{path.name!r}; free some space and run again (nothing was replaced)") from None
        raise
    _fsync_dir(path.parent)
    return path


def _out_of_space(exc: BaseException, folder: Path) -> bool:
    """ENOSPC, or a writer's own error (torch.save says "unexpected pos") on a full disk."""
    import errno
    import shutil

    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if isinstance(exc, (OSError, RuntimeError)):
        try:
            return shutil.disk_usage(folder).free < (1 << 20)
        except OSError:
            return False
    return False


def _test_pause() -> None:
    """Tests kill a run in the middle of a write: GRUFORECAST_TEST_PAUSE_WRITE=SECONDS holds
    every write between its temporary file and the rename."""
    pause = os.environ.get("GRUFORECAST_TEST_PAUSE_WRITE")
    if pause:
        import time

        time.sleep(float(pause))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda p: p.write_text(text, encoding="utf-8"))


MODEL_SUFFIXES = (".gruf", ".pt")  # what `train --out` and a batch job's `model` may be named
FORECAST_SUFFIXES = (".csv", ".parquet")  # a forecast's output, wherever it is written


def check_output_path(path: str | Path, suffixes: tuple[str, ...], create: bool = False,
                      inputs: tuple = ()) -> Path:
    """Fail before any work when an output path cannot be written, or is one of the
    command's `inputs` (a data or model file, or another output already checked): an
    output never replaces what the command reads.

    A missing folder is an error (a typo in a path should not scatter files), unless
    `create`: batch jobs name their output folders in the job file and get them made.
    """
    path = Path(path)
    for given in inputs:
        if given is not None and _same_file(path, Path(given)):
            raise InputError(f"output {str(path)!r} is also {str(given)!r}, an input or output of this "
                             "command; write it to another path")
    if path.suffix.lower() not in suffixes:
        raise InputError(f"output {path.name!r} has an unknown extension; use {' or '.join(suffixes)}")
    if path.is_dir():
        raise InputError(f"output {str(path)!r} is a folder; give a file path")
    folder = path.parent
    if not create and not folder.exists():
        raise InputError(f"cannot write {str(path)!r}: folder {str(folder)!r} does not exist; create it first")
    while not folder.exists() and folder != folder.parent:  # it will be created: check its parent
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        raise InputError(f"cannot write {str(path)!r}: folder {str(folder)!r} is not writable; choose another path")
    return path


def check_output_folder(folder: str | Path) -> Path:
    """A folder outputs go into (--report-dir): refused when it is a file or not writable."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise InputError(f"--report-dir {str(folder)!r} is a file, not a folder; give a folder")
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not os.access(probe, os.W_OK):
        raise InputError(f"cannot write into {str(folder)!r}: {str(probe)!r} is not writable; choose another folder")
    return folder


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: the same file on disk, or the same resolved path."""
    try:
        if a.exists() and b.exists():
            return os.path.samefile(a, b)
    except OSError:
        pass
    return a.resolve() == b.resolve()
