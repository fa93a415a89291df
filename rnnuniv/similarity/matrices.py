"""The CCA-matrix stage's matrices of one task, from its stored features and its network table.

Rows are the networks of ``networks.csv`` with status "kept" or "untrained" that have features,
in the table's order. One streamed pass over the features (:mod:`.streaming`) gives SVCCA at
``n_components`` and at every sensitivity k, and every streamed metric of
:data:`~rnnuniv.similarity.registry.EXTRA_METRICS`, over kept networks and untrained twins at
once; the kept-only matrices are sliced from it. Metrics with a per-network part of their own
(DSA) compare the stored arrays of the kept networks.

:func:`task_matrices` returns ``{subdirectory: (distance [N, N] float64, rows)}`` with the
subdirectories of ``results/{task}/cca/``:

    "."              SVCCA, kept networks (the paper's CCA matrix)
    "untrained"      SVCCA, kept networks and their untrained twins
    "{metric}"       each extra metric, kept networks
    "sensitivity/k{k}"  SVCCA at k components, kept networks (same rows)
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from rnnuniv.similarity.registry import EXTRA_METRICS, check_metric_names
from rnnuniv.similarity.streaming import SVCCA, FeatureStore, streamed_distance_matrices

log = logging.getLogger("rnnuniv")

__all__ = ["selected_networks", "task_matrices"]


def selected_networks(
    networks: pd.DataFrame, available: set[str], statuses: tuple[str, ...]
) -> pd.DataFrame:
    """Rows whose status is one of ``statuses`` that have features, in the table's order."""
    chosen = networks[networks["status"].astype(str).isin(statuses)]
    missing = sorted(set(chosen["network_id"]) - available)
    if missing:
        log.warning(
            "%d selected network(s) have no features and are left out: %s", len(missing), missing[:10]
        )
    return chosen[chosen["network_id"].isin(available)].reset_index(drop=True)


def task_matrices(
    feature_paths: Sequence[str | Path],
    networks: pd.DataFrame,
    n_components: int | float,
    sensitivity_components: Sequence[int] = (),
    extra_metrics: Sequence[str] = (),
    options: dict | None = None,
    block_memory_mb: float = 1024.0,
    device: str = "cpu",
) -> dict[str, tuple[np.ndarray, pd.DataFrame]]:
    """Every matrix of the stage (module docstring). ``networks`` needs ``network_id`` and
    ``status``; ``options`` holds the metrics' options (registry), missing keys at their defaults."""
    options = dict(options or {})
    extra = [EXTRA_METRICS[name] for name in check_metric_names(extra_metrics)]
    networks = networks.assign(network_id=networks["network_id"].astype(str))
    store = FeatureStore(feature_paths, feature_keys=[m.key for m in extra if m.key])
    order = selected_networks(networks, set(store.location), ("kept", "untrained"))
    kept = np.flatnonzero(order["status"].astype(str).to_numpy() == "kept")
    log.info("%d networks with features: %d kept, %d untrained", len(order), len(kept), len(order) - len(kept))

    streamed = [SVCCA(n_components)]
    for k in sorted(set(sensitivity_components)):
        if k != n_components:
            streamed.append(SVCCA(k, name=f"k{k}"))
    for metric in extra:
        if metric.streamed is not None:
            chosen = {key: options.get(key, option.default) for key, option in metric.options.items()}
            instance = metric.streamed(chosen)
            instance.name = metric.name
            streamed.append(instance)
    ids = list(order["network_id"])
    if any(m.full_width for m in extra):
        bounds = store.truncation_bounds(ids)
        if len(bounds):
            log.info(
                "truncation to %d columns: |CKA error| <= %.2e, |Procrustes nuclear error| <= %.2e",
                store.width, 2 * bounds[:, 0].max(), 2 * bounds[:, 1].max(),
            )  # fmt: skip
    matrices = streamed_distance_matrices(store, ids, streamed, block_memory_mb, device=device)
    for name, matrix in matrices.items():
        if np.isnan(matrix).any():
            log.warning("%s: %d distances are nan (networks with zero variance)", name, int(np.isnan(matrix).sum()))

    kept_order = order.iloc[kept].reset_index(drop=True)
    only_kept = np.ix_(kept, kept)
    svcca = matrices["svcca"][only_kept]
    out = {"untrained": (matrices["svcca"], order), ".": (svcca, kept_order)}
    for k in sensitivity_components:
        matrix = svcca if k == n_components else matrices[f"k{k}"][only_kept]
        out[f"sensitivity/k{k}"] = (matrix, kept_order)
    for metric in extra:
        if metric.streamed is not None:
            out[metric.name] = (matrices[metric.name][only_kept], kept_order)
        else:
            chosen = {key: options.get(key, option.default) for key, option in metric.options.items()}
            features = store.features(metric.key, list(kept_order["network_id"]))
            out[metric.name] = (np.asarray(metric.pairwise(features, chosen), dtype=np.float64), kept_order)
    if len(kept) < 2:
        log.warning("only %d kept network(s): the kept matrices are %dx%d", len(kept), len(kept), len(kept))
    return out
