"""Files every stage reads and writes: atomic writes, safe formats, clear errors.

Every output is written to a temporary file beside its destination and renamed into place
(``os.replace`` is atomic on POSIX), so an interrupted job never leaves a half-written file that
looks complete. Readers check what they load and raise :class:`CorruptFileError` naming the file
and what is wrong. No pickle anywhere: weights in safetensors, arrays in ``.npz`` without object
arrays, tables in CSV, records and graphs in JSON.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

log = logging.getLogger("rnnuniv")


class CorruptFileError(RuntimeError):
    """An input file is missing, truncated, or does not hold what the stage expects."""

    def __init__(self, path: str | Path, problem: str):
        super().__init__(f"{path}: {problem}. Delete it and rerun to rebuild it.")
        self.path = Path(path)


@contextlib.contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the destination's directory; rename it into place on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=f".{path.name}.", suffix=suffix or "".join(path.suffixes)
    )
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp makes the file 0600; give it the mode a plain open() would (0666 less umask), so
        # results in a shared (cluster) directory stay readable by the group
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _umask() -> int:
    """The process umask (read by setting and restoring it; not thread-safe, so tests and scripts
    call it from the main thread only, where atomic writes happen)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_json(path: str | Path, obj: Any) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=1, allow_nan=True, default=_json_default) + "\n")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON-serialisable: {type(obj).__name__}")


def read_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.exists():
        raise CorruptFileError(path, "file is missing")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CorruptFileError(path, f"not valid JSON ({err})") from err


def write_csv(path: str | Path, table: pd.DataFrame) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)


def read_csv(path: str | Path, required_columns: tuple[str, ...] = ()) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise CorruptFileError(path, "file is missing")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise CorruptFileError(path, f"not a readable CSV table ({err})") from err
    missing = [c for c in required_columns if c not in table.columns]
    if missing:
        raise CorruptFileError(path, f"missing columns {missing}")
    return table


def save_npz(path: str | Path, **arrays: np.ndarray) -> None:
    """Compressed ``.npz``; string arrays are stored as fixed-width unicode, never as objects."""
    clean = {}
    for key, value in arrays.items():
        value = np.asarray(value)
        if value.dtype == object:
            value = value.astype(str)
        clean[key] = value
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **clean)


def load_npz(path: str | Path, required: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """All arrays of an ``.npz`` (loaded eagerly, without pickle), checking the required keys."""
    path = Path(path)
    if not path.exists():
        raise CorruptFileError(path, "file is missing")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as err:
        raise CorruptFileError(path, f"not a readable .npz archive ({err})") from err
    missing = [k for k in required if k not in arrays]
    if missing:
        raise CorruptFileError(path, f"missing arrays {missing}")
    return arrays


# torch and safetensors are imported where weights are read or written: most jobs (tables,
# matrices, figures) never touch weights and start seconds faster without them.


def save_weights(path: str | Path, params: dict, metadata: dict[str, Any]) -> None:
    """Stacked network weights in safetensors, with JSON metadata (ids, architecture, ...)."""
    from safetensors.torch import save_file
    tensors = {k: v.detach().contiguous().cpu() for k, v in params.items()}
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file(tensors, str(tmp), metadata={"rnnuniv": json.dumps(metadata)})


def load_weights(path: str | Path) -> tuple[dict, dict[str, Any]]:
    """Inverse of :func:`save_weights`: ``(params, metadata)``."""
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load
    path = Path(path)
    if not path.exists():
        raise CorruptFileError(path, "file is missing")
    try:
        # read the whole file, not a memory map: a file truncated or rewritten in place while
        # its tensors are alive must not change (or crash) them
        params = load(path.read_bytes())
        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads((handle.metadata() or {}).get("rnnuniv", "{}"))
    except (SafetensorError, OSError, json.JSONDecodeError, ValueError) as err:
        raise CorruptFileError(path, f"not a readable safetensors file ({err})") from err
    if not params:
        raise CorruptFileError(path, "holds no tensors")
    return params, meta


def setup_logging(log_path: str | Path | None = None, level: int = logging.INFO) -> logging.Logger:
    """Log to stderr and, when given, to the rule's log file; record where the job ran.

    The first line names the SLURM job (``slurm_job_id=...``, empty outside SLURM), so a run
    on a cluster can be checked to have executed inside scheduler jobs.
    """
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path is not None:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)s %(message)s", handlers=handlers, force=True
    )
    log.info(
        "slurm_job_id=%s host=%s pid=%d",
        os.environ.get("SLURM_JOB_ID", ""),
        os.uname().nodename,
        os.getpid(),
    )
    return log
