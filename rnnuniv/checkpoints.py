"""Training checkpoints: the one writer and reader of ``results/{task}/checkpoints/{shard}.safetensors``.

A checkpoint is a :class:`rnnuniv.training.ShardState` as safetensors (no pickle): tensors
``param.<k>``, ``<moment>.<k>`` (``m``, ``v``), ``rng`` (one generator state per network),
``diverged_step``, ``lr_scale``, ``rollbacks``, ``previous.<param|moment>.<k>`` (the state before
the last update, for rollbacks) and the loss curve; metadata ``step``, ``wall_time`` and
``fingerprint``, the JSON of :func:`shard_fingerprint`. A checkpoint whose fingerprint differs
from the current one is not resumed (the log names the differing fields).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from .cells import Cell
from .io import CorruptFileError, atomic_path
from .tasks import Task, task_to_dict

if TYPE_CHECKING:
    from .training import ShardState, TrainingConfig

# TrainingConfig fields that change no weight: excluded from the checkpoint fingerprint and from
# the train rule's params (rules/train.smk), so changing them neither resumes afresh nor retrains.
BOOKKEEPING_KEYS = ("log_every", "checkpoint_every")
log = logging.getLogger(__name__)


def shard_fingerprint(
    cell: Cell,
    task: Task,
    n_hidden: int,
    seeds: list[int],
    l2: list[float],
    learning_rates: list[float],
    config: TrainingConfig,
    network_ids: list[str] | None = None,
) -> dict[str, Any]:
    """Everything a shard's weights depend on (bookkeeping fields left out), as plain JSON."""
    training = {k: v for k, v in asdict(config).items() if k not in BOOKKEEPING_KEYS}
    return json.loads(
        json.dumps(
            {
                "training": training,
                "task": task_to_dict(task),
                "cell": [cell.architecture, cell.activation, int(n_hidden)],
                "network_ids": list(network_ids) if network_ids is not None else None,
                "seeds": [int(s) for s in seeds],
                "l2": [float(x) for x in l2],
                "learning_rates": [float(x) for x in learning_rates],
            },
            sort_keys=True,
        )
    )


def save_checkpoint(path: str | Path, state: ShardState, fingerprint: dict | None = None) -> None:
    """Write the full training state and its fingerprint atomically (safetensors, no pickle)."""
    tensors = {f"param.{k}": v.detach().cpu().contiguous() for k, v in state.params.items()}
    for name, moment in state.moments.items():
        tensors.update({f"{name}.{k}": v.cpu().contiguous() for k, v in moment.items()})
    tensors["rng"] = torch.stack([g.get_state() for g in state.generators])
    tensors["diverged_step"] = state.diverged_step.cpu()
    tensors["lr_scale"] = state.lr_scale.cpu()
    tensors["rollbacks"] = state.rollbacks.cpu()
    for name, snapshot in (state.previous or {}).items():
        tensors.update({f"previous.{name}.{k}": v.detach().cpu().contiguous() for k, v in snapshot.items()})
    if state.curve:
        tensors["curve"] = torch.stack(state.curve, dim=1)
        tensors["curve_steps"] = torch.tensor(state.curve_steps, dtype=torch.int64)
    meta = {"step": str(state.step), "wall_time": repr(state.wall_time)}
    meta["fingerprint"] = json.dumps(fingerprint, sort_keys=True)
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file(tensors, str(tmp), metadata=meta)


def load_checkpoint(path: str | Path, state: ShardState, fingerprint: dict | None = None) -> bool:
    """Restore ``state`` in place from a checkpoint written by :func:`save_checkpoint`.

    Returns False, leaving ``state`` untouched and logging the differing fields, when the
    checkpoint was written under another fingerprint (or none) than ``fingerprint``.
    """
    try:
        with safe_open(str(path), framework="pt") as handle:
            meta = handle.metadata() or {}
            recorded = json.loads(meta.get("fingerprint", "null"))
            if fingerprint is not None and recorded != fingerprint:
                differing = _differing_fields(recorded, fingerprint)
                log.warning(
                    "checkpoint %s was written under another config or seeds (differs in: %s); "
                    "starting the shard afresh",
                    path,
                    ", ".join(differing),
                )
                return False
            tensors = {k: handle.get_tensor(k) for k in handle.keys()}
    except (SafetensorError, OSError, json.JSONDecodeError) as err:
        raise CorruptFileError(path, f"unreadable training checkpoint ({err})") from err
    device = state.diverged_step.device
    expected = {f"param.{k}" for k in state.params} | {"rng", "diverged_step"}
    if not expected <= tensors.keys() or tensors["rng"].shape[0] != len(state.generators):
        raise CorruptFileError(path, "checkpoint does not match this shard's networks")
    state.params = {k: tensors[f"param.{k}"].to(device) for k in state.params}
    for name, moment in state.moments.items():
        state.moments[name] = {k: tensors[f"{name}.{k}"].to(device) for k in moment}
    for generator, rng in zip(state.generators, tensors["rng"]):
        generator.set_state(rng.clone())
    state.diverged_step = tensors["diverged_step"].to(device)
    if "lr_scale" in tensors:
        state.lr_scale = tensors["lr_scale"].to(device)
        state.rollbacks = tensors["rollbacks"].to(device)
    names = ["param", *state.moments]
    if all(f"previous.{name}.{k}" in tensors for name in names for k in state.params):
        state.previous = {
            name: {k: tensors[f"previous.{name}.{k}"].to(device) for k in state.params} for name in names
        }
    if "curve" in tensors:
        state.curve = list(tensors["curve"].unbind(dim=1))
        state.curve_steps = tensors["curve_steps"].tolist()
    state.step = int(meta["step"])
    state.wall_time = float(meta["wall_time"])
    return True


def _differing_fields(recorded: Any, current: dict) -> list[str]:
    if not isinstance(recorded, dict):
        return ["no fingerprint recorded"]
    fields = []
    for key in sorted(set(recorded) | set(current)):
        a, b = recorded.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            fields += [f"{key}.{k}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        elif a != b:
            fields.append(key)
    return fields


