"""Where and how computations run: device choice, threads, and stage configuration helpers."""

from __future__ import annotations

import json
from typing import Any

import torch


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when a GPU is present, else the CPU; otherwise the named device."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def set_threads(threads: int | None) -> None:
    """Use exactly the cores the scheduler granted (results are bit-identical per thread count)."""
    if threads:
        torch.set_num_threads(int(threads))


def json_argument(text: str) -> Any:
    """Parse a JSON command-line argument (rules pass config sections this way)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise SystemExit(f"not valid JSON: {text!r} ({err})") from err
