"""Representational and dynamical similarity between networks (SVCCA, CKA, Procrustes, DSA).

* :mod:`~rnnuniv.similarity.metrics`: in-memory all-pairs matrices from the states.
* :mod:`~rnnuniv.similarity.dsa`: DSA, per-network eigenvalues and the pairwise Wasserstein part.
* :mod:`~rnnuniv.similarity.features`: the per-network part of every metric, stored per shard.
* :mod:`~rnnuniv.similarity.streaming`: the pairwise part, streamed from stored features in
  bounded memory (the CCA-matrix stage).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from rnnuniv.similarity.dsa import (
    delay_embed,
    dsa_distance_matrix,
    dsa_eigenvalues,
    fit_delay_dmd,
    wasserstein_eigenvalue_matrix,
)
from rnnuniv.similarity.features import (
    load_feature_arrays,
    network_svd,
    save_features,
    shard_features,
)
from rnnuniv.similarity.metrics import (
    METRICS,
    cca_correlations,
    cka_distance_matrix,
    procrustes_distance_matrix,
    svcca_basis,
    svcca_distance_matrix,
)
from rnnuniv.similarity.streaming import (
    CKA,
    SVCCA,
    FeatureStore,
    Procrustes,
    streamed_distance_matrices,
)

__all__ = [
    "CKA",
    "METRICS",
    "SVCCA",
    "FeatureStore",
    "Procrustes",
    "cca_correlations",
    "cka_distance_matrix",
    "delay_embed",
    "distance_matrix",
    "dsa_distance_matrix",
    "dsa_eigenvalues",
    "fit_delay_dmd",
    "load_feature_arrays",
    "network_svd",
    "procrustes_distance_matrix",
    "save_features",
    "shard_features",
    "streamed_distance_matrices",
    "svcca_basis",
    "svcca_distance_matrix",
    "wasserstein_eigenvalue_matrix",
]


def distance_matrix(states: Sequence, metric: str = "svcca", **options) -> np.ndarray:
    """[N, N] distance matrix under ``metric`` in METRICS; options go to the metric's function.

    "svcca" -> :func:`svcca_distance_matrix`, "cka" -> :func:`cka_distance_matrix`,
    "procrustes" -> :func:`procrustes_distance_matrix` (states [samples, units_i]);
    "dsa" -> :func:`dsa_distance_matrix` (trajectories [trials, time, units_i]).
    """
    functions = {
        "svcca": svcca_distance_matrix,
        "cka": cka_distance_matrix,
        "procrustes": procrustes_distance_matrix,
        "dsa": dsa_distance_matrix,
    }
    if metric not in functions:
        raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
    return functions[metric](states, **options)
