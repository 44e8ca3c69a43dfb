"""Build, cache and load the C loops of the GRU (gru.c); None when they cannot be had.

The library is compiled at first use with the system's C compiler (about a second) into a
per-user cache folder, keyed by the source, the flags, the CPU and torch's BLAS, and loaded
with ctypes. Its matrix products call the BLAS `sgemm_`/`dgemm_` exported by torch's own
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


def _build() -> Path:
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise RuntimeError("no C compiler on PATH")
    key = hashlib.sha256(b"\0".join([SOURCE.read_bytes(), " ".join(FLAGS).encode(),
                                     _cpu().encode(), torch.__version__.encode()])).hexdigest()[:16]
    folder = _cache_dir()
    target = folder / f"gru-{key}.so"
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=folder)
    os.close(fd)
    try:
        subprocess.run([cc, *FLAGS, str(SOURCE), "-o", tmp, "-lm"], check=True,
                       capture_output=True, timeout=120)
        os.replace(tmp, target)  # atomic: a concurrent build leaves one whole file
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target


def ptr(t: torch.Tensor | None) -> ctypes.c_void_p | None:
    return None if t is None else ctypes.c_void_p(t.data_ptr())
