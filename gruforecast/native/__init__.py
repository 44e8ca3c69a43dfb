"""Build, cache and load the C loops of the GRU (gru.c); None when they cannot be had.

The library is compiled at first use with the system's C compiler (about a second) into a
per-user cache folder, keyed by the source, the flags, the CPU and torch's BLAS, and loaded
with ctypes. Loading a library runs its code, so nothing is loaded from a place another
user could write: the cache folder must be a real folder (not a link) owned by this user
with no group or other write bit (it is made 0700), the library a regular file owned by
this user, and its SHA-256 must match the digest recorded when it was built (else it is
rebuilt there). A folder that fails these checks is not used: the library is built in a
fresh private temporary folder for this process instead (`_private_build`). Its matrix products call the BLAS `sgemm_`/`dgemm_` exported by torch's own
libtorch_cpu (MKL in the official builds), so it runs at torch's thread count. Anything
missing (no compiler, a torch without those symbols, GRUFORECAST_NATIVE=0) means None,
and FusedGRUFunction uses its plain torch path, which computes the same function.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import stat
import subprocess
import tempfile
from functools import cache
from pathlib import Path

import torch

log = logging.getLogger(__name__)
SOURCE = Path(__file__).with_name("gru.c")
FLAGS = ["-O3", "-march=native", "-fno-math-errno", "-fPIC", "-shared"]


@cache
def library() -> ctypes.CDLL | None:
    """The loaded library with gru_init done, or None (the torch path is used then)."""
    if os.environ.get("GRUFORECAST_NATIVE", "1") == "0":
        return None
    try:
        blas = _torch_blas()
        lib = ctypes.CDLL(str(_build()))
    except (OSError, subprocess.CalledProcessError, RuntimeError) as exc:
        log.info("native GRU loops unavailable (%s); using the torch path", exc)
        return None
    lib.gru_init(ctypes.cast(blas.sgemm_, ctypes.c_void_p), ctypes.cast(blas.dgemm_, ctypes.c_void_p))
    i, p, lng = ctypes.c_int, ctypes.c_void_p, ctypes.c_long
    for suffix in ("f32", "f64"):
        fwd, bwd = getattr(lib, f"gru_forward_{suffix}"), getattr(lib, f"gru_backward_{suffix}")
        fwd.argtypes, fwd.restype = [i, i, i, p, p, p, p, p, i, p], None
        bwd.argtypes = [i, i, i, p, p, p, p, p, lng, lng, p, p, p, p, p, p, p]
        bwd.restype = None
    return lib


def _torch_blas() -> ctypes.CDLL:
    path = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"
    blas = ctypes.CDLL(str(path))
    if not (hasattr(blas, "sgemm_") and hasattr(blas, "dgemm_")):
        raise RuntimeError(f"{path.name} exports no sgemm_/dgemm_")
    return blas


def _cache_dir() -> Path:
    root = os.environ.get("GRUFORECAST_CACHE") or os.environ.get("XDG_CACHE_HOME")
    if root:
        return Path(root) / "gruforecast"
    home = os.environ.get("HOME")
    if home and os.access(home, os.W_OK):
        return Path(home) / ".cache" / "gruforecast"
    return Path(tempfile.gettempdir()) / f"gruforecast-{os.getuid()}"


def _cpu() -> str:
    try:
        return next((line for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("flags")), "")
    except OSError:
        return ""


def _compiler() -> str:
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise RuntimeError("no C compiler on PATH")
    return cc


def _key() -> str:
    return hashlib.sha256(b"\0".join([SOURCE.read_bytes(), " ".join(FLAGS).encode(),
                                      _cpu().encode(), torch.__version__.encode()])).hexdigest()[:16]


def _build() -> Path:
    """The cached library, built if missing; in a private folder if the cache is unsafe."""
    folder = _cache_dir()
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError:
        return _private_build()
    if not _safe(folder, is_dir=True):
        log.warning("gruforecast: cache folder %s is not this user's alone; building privately", folder)
        return _private_build()
    key = _key()
    target, digest = folder / f"gru-{key}.so", folder / f"gru-{key}.sha256"
    if os.path.lexists(target):
        if _safe(target, is_dir=False) and _digest_ok(target, digest):
            return target
        # Not what was built here (an older build without a digest, a damaged file, a
        # planted one): only this user can write the folder, so build over it.
        log.info("gruforecast: %s does not match its digest; rebuilding it", target)
        os.unlink(target)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=folder)
    os.close(fd)
    try:
        _compile(tmp)
        Path(str(tmp) + ".sha256").write_text(_sha256(Path(tmp)))
        os.replace(str(tmp) + ".sha256", digest)
        os.replace(tmp, target)  # atomic: a concurrent build leaves one whole file
    finally:
        Path(tmp).unlink(missing_ok=True)
        Path(str(tmp) + ".sha256").unlink(missing_ok=True)
    return target


def _private_build() -> Path:
    """Build into a new 0700 temporary folder that only this process knows."""
    folder = Path(tempfile.mkdtemp(prefix="gruforecast-"))
    target = folder / "gru.so"
    _compile(str(target))
    return target


def _compile(out: str) -> None:
    subprocess.run([_compiler(), *FLAGS, str(SOURCE), "-o", out, "-lm"], check=True,
                   capture_output=True, timeout=120)


def _safe(path: Path, is_dir: bool) -> bool:
    """A real folder or file (lstat: a link is not followed), owned by this user, with no
    group or other write permission."""
    try:
        st = os.lstat(path)
    except OSError:
        return False
    kind_ok = stat.S_ISDIR(st.st_mode) if is_dir else stat.S_ISREG(st.st_mode)
    return kind_ok and st.st_uid == os.getuid() and not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _digest_ok(target: Path, digest: Path) -> bool:
    try:
        return _safe(digest, is_dir=False) and digest.read_text().strip() == _sha256(target)
    except OSError:
        return False


def _sha256(path: Path) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def ptr(t: torch.Tensor | None) -> ctypes.c_void_p | None:
    return None if t is None else ctypes.c_void_p(t.data_ptr())
