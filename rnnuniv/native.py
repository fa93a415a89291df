"""The compiled per-step kernels of :mod:`rnnuniv.fused` (``rnnuniv/csrc/pointwise.cpp``).

They are built on first use with ``torch.utils.cpp_extension`` (needs a C++ compiler and ninja; about
15 s, once per machine: the build is cached under ``TORCH_EXTENSIONS_DIR``, by default
``~/.cache/torch_extensions``, and concurrent jobs wait on torch's build lock). The build's name
carries the CPU's vector ISA, so nodes of a heterogeneous cluster that share a home directory never
load a build made for another instruction set, and a digest of the source's path, so two checkouts
sharing the cache each keep their own build (with one name, each load rewrote the other's
``build.ninja`` and rebuilt it each time, with every job of both waiting on the lock).

The kernels are CPU code: :func:`supports` (and :func:`runs_on`) admit CPU tensors only, so on a
GPU :mod:`rnnuniv.fused` takes its pure-torch path and never builds or calls them.

When the build is impossible (no compiler, a read-only cache) :func:`load` logs why, once, and returns
``None``; :mod:`rnnuniv.fused` then runs its pure-torch path, which computes the same quantities.
``RNNUNIV_NATIVE=0`` turns the kernels off; ``RNNUNIV_NATIVE=1`` makes a failed build an error.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import time
from pathlib import Path
from types import ModuleType

import torch

log = logging.getLogger(__name__)

SOURCE = Path(__file__).parent / "csrc" / "pointwise.cpp"
ARCH_CODES = {"vanilla": 0, "ugrnn": 1, "gru": 2, "lstm": 3}


def _flags() -> tuple[str, list[str]]:
    """Build name suffix and compiler flags for this CPU.

    ``-fno-trapping-math`` lets gcc vectorise the NaN-preserving clamps of the float tanh (torch itself
    is built with it); ``-fopenmp`` turns on ``at::parallel_for`` and the ``omp simd`` loops.
    """
    isa = torch.backends.cpu.get_cpu_capability().lower()  # "default", "avx2", "avx512", ...
    flags = ["-O3", "-fopenmp", "-fno-trapping-math", "-fno-math-errno"]
    if isa in ("avx2", "avx512"):
        flags += ["-mavx2", "-mfma"]
    return isa, flags


@functools.cache
def load() -> ModuleType | None:
    """The compiled kernels, or ``None`` when they are turned off or cannot be built here."""
    setting = os.environ.get("RNNUNIV_NATIVE", "auto").strip().lower()
    if setting in ("0", "off", "false", "no"):
        return None
    try:
        from torch.utils import cpp_extension

        name = build_name()
        _clear_stale_lock(cpp_extension, name)
        return cpp_extension.load(
            name=name,
            sources=[str(SOURCE)],
            extra_cflags=_flags()[1],
            verbose=False,
        )
    except Exception as err:  # no compiler, no ninja, a failed build: all mean "use torch"
        if setting in ("1", "on", "true", "yes"):
            raise RuntimeError(f"RNNUNIV_NATIVE={setting} but the kernels did not build: {err}") from err
        log.warning("compiled recurrence kernels unavailable (%s); using the pure-torch path", err)
        return None


def build_name() -> str:
    """``rnnuniv_pointwise_<isa>_<digest of the source path>`` (see the module doc)."""
    digest = hashlib.sha1(str(SOURCE.resolve()).encode()).hexdigest()[:8]
    return f"rnnuniv_pointwise_{_flags()[0]}_{digest}"


# A build takes 15-40 s; a lock this old was left by a build that was killed (Ctrl-C, a
# cancelled cluster job), and torch would wait on it for ever.
STALE_LOCK_SECONDS = 900


def _clear_stale_lock(cpp_extension, name: str) -> None:
    """Remove the build lock of ``name`` if it is older than :data:`STALE_LOCK_SECONDS`."""
    lock = Path(cpp_extension._get_build_directory(name, verbose=False)) / "lock"
    try:
        age = time.time() - lock.stat().st_mtime
    except FileNotFoundError:
        return
    if age > STALE_LOCK_SECONDS:
        log.warning("removing %s, left %.0f s ago by an interrupted build", lock, age)
        lock.unlink(missing_ok=True)


def runs_on(device: torch.device | str, dtype: torch.dtype) -> bool:
    """Whether the kernels can run on tensors of ``device`` and ``dtype``: CPU, float32 or float64."""
    return torch.device(device).type == "cpu" and dtype in (torch.float32, torch.float64)


def supports(tensor: torch.Tensor) -> bool:
    """The kernels handle float32 and float64 tensors on the CPU (:func:`runs_on`)."""
    return runs_on(tensor.device, tensor.dtype)
