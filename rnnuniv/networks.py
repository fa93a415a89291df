"""The keep rule, and loading a shard's networks by status.

Training records facts (:mod:`rnnuniv.training`); this module decides. The keep rule, applied
per network in a cheap step of its own (``scripts/manifest.py``, rule ``manifest``)::

    normalised_error = validation MSE / Var(target)        (= 1 - R^2)
    status = "untrained"        if the network was never trained
             "diverged"         if training hit a non-finite loss or gradient (diverged_step set),
                                or the validation MSE is not finite
             "kept"             if normalised_error <= max_normalised_error
             "above-threshold"  otherwise
             "surplus"          a network that would be kept, beyond the first
                                max_kept_per_group kept ones (by seed index) of its
                                hyperparameter combination
             "not-needed"       an oversampled seed whose shard was never trained: earlier
                                shards of its group had already passed max_kept_per_group
                                networks (:func:`rnnuniv.population.needed_shards`)

The cap serves oversampled groups (:mod:`rnnuniv.population`): they train more seeds, shard by
shard in seed order and only until enough pass (so with the cap, a later shard could only add
surplus networks), and the cap (population.n_seeds) keeps every group's analysed sample the same size,
so that no group weighs more in a mean over networks (silhouettes, medians). It depends on seed
order only, never on what a network's analysis would show; for a group of n_seeds seeds it never
binds.

``Var(target)`` is the variance of the target over the network's own validation trials, pooled
over trials, time steps and outputs around its grand mean, so a network whose output is that
grand mean scores exactly 1, whatever the task's scale. One threshold then means the same thing
for every task: 0.05 keeps networks that explain at least 95 % of the target's variance.

:func:`load_shard_networks` is the one way later stages select networks: it reads the manifest
``networks.csv``, never the training records.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import pandas as pd

from . import io

if TYPE_CHECKING:  # torch is imported by the loaders only: manifest and embed jobs never need it
    import torch

    from .cells import Cell, Params

STATUSES = ("kept", "above-threshold", "diverged", "untrained", "surplus", "not-needed")
# the columns that describe a network in every per-network output (matrix indices, embeddings,
# topology and dynamics tables), after network_id, in this order, those the source table has
LABEL_COLUMNS = (
    "architecture",
    "activation",
    "n_hidden",
    "l2",
    "learning_rate",
    "seed_index",
    "trained",
    "status",
    "shard",
)
MANIFEST_COLUMNS = (
    "status",
    "validation_loss",
    "target_variance",
    "normalised_error",
    "final_train_loss",
    "diverged_step",
    "n_rollbacks",
    "steps_completed",
    "shard_wall_time_s",
)
# the facts a training record gives (train.json), from which the manifest derives the rest
RECORD_COLUMNS = tuple(c for c in MANIFEST_COLUMNS if c not in ("status", "normalised_error"))


def labels(table: pd.DataFrame, networks: pd.DataFrame | None = None) -> pd.DataFrame:
    """``network_id`` and the :data:`LABEL_COLUMNS` of ``table``'s rows, in its order; labels it
    lacks are taken from ``networks`` (e.g. networks.csv) by ``network_id`` when given."""
    if networks is not None:
        missing = [c for c in LABEL_COLUMNS if c not in table.columns and c in networks.columns]
        if missing:
            table = table.merge(networks[["network_id", *missing]], on="network_id", how="left")
    return table[["network_id", *[c for c in LABEL_COLUMNS if c in table.columns]]].reset_index(drop=True)


def normalised_error(mse, target_variance):
    """``MSE / Var(target)``, elementwise (NaN where the variance is not positive)."""
    mse = np.asarray(mse, dtype=np.float64)
    variance = np.asarray(target_variance, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(variance > 0, mse / variance, np.nan)


#: the columns that name a hyperparameter combination (a seed set) of the population
COMBINATION_COLUMNS = ("architecture", "activation", "n_hidden", "l2", "learning_rate")


def keep_status(
    table: pd.DataFrame, max_normalised_error: float, max_kept_per_group: int | None = None
) -> pd.DataFrame:
    """Add ``normalised_error`` and ``status`` (see the module docstring) to a table with
    columns ``trained``, ``validation_loss``, ``target_variance`` and ``diverged_step``, and
    with ``max_kept_per_group`` also ``seed_index`` and :data:`COMBINATION_COLUMNS`."""
    if not max_normalised_error > 0:
        raise ValueError(f"max_normalised_error must be > 0, got {max_normalised_error!r}")
    if max_kept_per_group is not None and max_kept_per_group < 1:
        raise ValueError(f"max_kept_per_group must be >= 1, got {max_kept_per_group!r}")
    table = table.copy()
    error = normalised_error(table["validation_loss"], table["target_variance"])
    table["normalised_error"] = error
    trained = table["trained"].astype(bool).to_numpy()
    diverged = table["diverged_step"].notna().to_numpy() | ~np.isfinite(error)
    status = np.where(error <= max_normalised_error, "kept", "above-threshold")
    status = np.where(diverged, "diverged", status)
    table["status"] = np.where(trained, status, "untrained")
    if max_kept_per_group is not None:
        kept = table[table["status"] == "kept"].sort_values("seed_index", kind="stable")
        rank = kept.groupby(list(COMBINATION_COLUMNS), sort=False).cumcount()
        table.loc[rank.index[rank.to_numpy() >= max_kept_per_group], "status"] = "surplus"
    return table


def read_training_records(paths: Sequence[str | Path]) -> pd.DataFrame:
    """The per-network training records of ``train.json`` files (written by ``scripts/train.py``):
    ``network_id`` and the facts of :data:`MANIFEST_COLUMNS` (all but the keep decision), one row
    per network in file order. A file without them is an error naming it."""
    rows = []
    for path in paths:
        record = io.read_json(path)
        if "networks" not in record:
            raise io.CorruptFileError(path, "no 'networks' list")
        for network in record["networks"]:
            missing = [c for c in ("network_id", *RECORD_COLUMNS) if c not in network]
            if missing:
                raise io.CorruptFileError(path, f"training record without {missing} (rerun training)")
            rows.append({c: network[c] for c in ("network_id", *RECORD_COLUMNS)})
    return pd.DataFrame(rows, columns=["network_id", *RECORD_COLUMNS])


def passed_networks(records: pd.DataFrame, max_normalised_error: float) -> set[str]:
    """Ids of the trained networks of ``records`` (:func:`read_training_records`) under the keep
    threshold: finite, not diverged, ``normalised_error <= max_normalised_error`` (kept or surplus
    in the manifest)."""
    table = keep_status(records.assign(trained=True), max_normalised_error)
    return set(table.loc[table["status"] == "kept", "network_id"].astype(str))


def load_shard_networks(
    weights_path: str | Path,
    networks_csv: str | Path,
    shard: str | None = None,
    statuses: tuple[str, ...] = ("kept",),
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
) -> tuple[Cell, Params, list[str], pd.DataFrame, dict]:
    """The networks of one shard whose manifest status is in ``statuses``.

    Returns ``(cell, params, ids, rows, meta)``: the shard's cell, the stacked parameters of the
    selected networks in manifest order (cast to ``dtype`` and moved to ``device`` when given),
    their ids, their manifest rows (same order) and the weights file's metadata. ``shard``
    defaults to the one named in the weights file. A selected network missing from the weights
    file, or a status not in :data:`STATUSES`, is an error naming the file.
    """
    unknown = sorted(set(statuses) - set(STATUSES))
    if unknown:
        raise ValueError(f"unknown statuses {unknown}; valid: {', '.join(STATUSES)}")
    params, meta = io.load_weights(weights_path)
    shard = shard if shard is not None else meta.get("shard")
    table = io.read_csv(networks_csv, required_columns=("network_id", "shard", "status"))
    rows = table[(table["shard"] == shard) & table["status"].isin(statuses)].reset_index(drop=True)
    ids = rows["network_id"].astype(str).tolist()
    cell, chosen, meta = load_networks(weights_path, ids, dtype, device, (params, meta), f" (listed in {networks_csv})")
    return cell, chosen, ids, rows, meta


def load_networks(
    weights_path: str | Path,
    ids: list[str],
    dtype: torch.dtype | None = None,
    device: torch.device | str | None = None,
    loaded: tuple[Params, dict] | None = None,
    source: str = "",
) -> tuple[Cell, Params, dict]:
    """``(cell, params, meta)``: the stacked parameters of the networks ``ids`` of a weights file,
    in that order, cast to ``dtype`` and moved to ``device`` when given. An id missing from the file
    is an error naming it (and ``source``, where the ids came from)."""
    from .cells import make_cell
    from .probes import subset

    params, meta = loaded if loaded is not None else io.load_weights(weights_path)
    try:
        chosen = subset(params, meta["network_ids"], ids)
    except KeyError as missing:
        raise io.CorruptFileError(weights_path, f"{missing.args[0]}{source}") from None
    if dtype is not None or device is not None:
        chosen = {k: v.to(device=device, dtype=dtype) for k, v in chosen.items()}
    return make_cell(meta["architecture"], meta["activation"]), chosen, meta
