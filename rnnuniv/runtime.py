"""Where and how computations run: device choice, threads, and stage configuration helpers."""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when a GPU is present, else the CPU; otherwise the named device."""
    import torch  # here, not at the top: figure and table scripts use this module without torch

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def set_threads(threads: int | None) -> None:
    """Use exactly the cores the scheduler granted (results are bit-identical per thread count)."""
    import torch

    if threads:
        torch.set_num_threads(int(threads))


# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory for reuse instead of handing it back to the kernel.

    torch's CPU allocator mallocs and frees every tensor. By default glibc serves large blocks with
    ``mmap`` and unmaps them on free, and trims the heap top, so a training step that allocates a few
    hundred MB of activations page-faults and zero-fills all of it again at every step (a quarter of
    the step time measured here, mostly system time). With ``mmap`` off and trimming off the
    process keeps its peak footprint and reuses it. Returns whether the setting took (False off
    glibc, e.g. on macOS, where nothing changes).
    """
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    took = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    if not took:
        logging.getLogger(__name__).warning("mallopt refused the allocator settings")
    return took


def json_argument(text: str) -> Any:
    """Parse a JSON command-line argument (rules pass config sections this way)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise SystemExit(f"not valid JSON: {text!r} ({err})") from err
