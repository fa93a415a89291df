"""Representational and dynamical similarity between networks (SVCCA, CKA, Procrustes, DSA).

* :mod:`~rnnuniv.similarity.metrics`: in-memory all-pairs matrices from the states.
* :mod:`~rnnuniv.similarity.dsa`: DSA, per-network eigenvalues and the pairwise Wasserstein part.
* :mod:`~rnnuniv.similarity.features`: the per-network part of every metric, stored per shard.
* :mod:`~rnnuniv.similarity.streaming`: the pairwise part, streamed from stored features in
  bounded memory (the CCA-matrix stage).
* :mod:`~rnnuniv.similarity.registry`: the supplementary metrics (``EXTRA_METRICS``), which every
  stage, rule and figure reads: adding a metric is one entry there.
* :mod:`~rnnuniv.similarity.matrices`: every matrix of the CCA-matrix stage for one task.

Names are imported from their modules on first use, so ``rnnuniv.similarity.registry`` can be read
(by the rules, at every workflow parse) without importing torch.
"""

from __future__ import annotations

import importlib
from typing import Sequence

import numpy as np

from rnnuniv.similarity.registry import EXTRA_METRICS, Metric, Option, check_metric_names

# every metric with an in-memory all-pairs function (distance_matrix)
METRICS = ("svcca", *(name for name, metric in EXTRA_METRICS.items() if metric.reference))

_LAZY = {
    "dsa": ("delay_embed", "dsa_distance_matrix", "dsa_eigenvalues", "fit_delay_dmd",
            "wasserstein_eigenvalue_matrix"),
    "features": ("load_feature_arrays", "network_svd", "save_features", "shard_features"),
    "matrices": ("task_matrices",),
    "metrics": ("cca_correlations", "cka_distance_matrix", "procrustes_distance_matrix",
                "svcca_basis", "svcca_distance_matrix"),
    "streaming": ("CKA", "SVCCA", "FeatureStore", "Procrustes", "streamed_distance_matrices"),
}  # fmt: skip
_MODULE_OF = {name: module for module, names in _LAZY.items() for name in names}

__all__ = sorted(
    ["EXTRA_METRICS", "METRICS", "Metric", "Option", "check_metric_names", "distance_matrix", *_MODULE_OF]
)


def __getattr__(name: str):
    if name in _MODULE_OF:
        return getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    if name in _LAZY:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def distance_matrix(states: Sequence, metric: str = "svcca", **options) -> np.ndarray:
    """[N, N] distance matrix under ``metric`` in METRICS; options go to the metric's function.

    "svcca" -> :func:`svcca_distance_matrix`; any other name -> its registry entry's ``reference``
    (cka: :func:`cka_distance_matrix`, procrustes: :func:`procrustes_distance_matrix`, states
    [samples, units_i]; dsa: :func:`dsa_distance_matrix`, trajectories [trials, time, units_i]).
    """
    from rnnuniv.similarity.metrics import svcca_distance_matrix

    functions = {"svcca": svcca_distance_matrix}
    functions.update({name: m.reference for name, m in EXTRA_METRICS.items() if m.reference})
    if metric not in functions:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    return functions[metric](states, **options)
