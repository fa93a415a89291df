"""Manifolds: single-linkage clusters of marginally stable points.

Trained gated networks often store memory in a continuum of marginally stable points (leading
``| |lambda_1| - 1 | < marginal_tol``) and the finder then returns hundreds of distinct points.
Marginal points closer than a length scale (a fraction of the RMS spread of the probe
trajectories) are joined; connected groups of at least ``min_manifold_points`` are manifolds,
every other point is isolated (``cluster == -1``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import cdist

from .initial import rms_spread
from .linearise import n_marginal
from .results import FixedPoints, Manifold


def _length_scales(
    scale: float | Sequence[float] | None, fraction: float, h0: torch.Tensor, n_networks: int
) -> list[float]:
    if scale is None:
        return [fraction * rms_spread(h0[i]) for i in range(n_networks)]
    if isinstance(scale, (int, float)):
        return [float(scale)] * n_networks
    scales = [float(s) for s in scale]
    if len(scales) != n_networks:
        raise ValueError(f"manifold_length_scale has {len(scales)} values for {n_networks} networks")
    return scales


def _label_manifolds(
    result: FixedPoints, marginal_tol: float, length_scale: float, min_points: int, variance: float
) -> None:
    """Single-linkage clusters of marginal points; fills ``result.cluster`` and ``result.manifolds``."""
    if len(result) == 0:
        return
    leading = result.eigenvalues[:, 0].abs()
    marginal = ((leading - 1.0).abs() < marginal_tol).cpu().numpy()
    where = np.flatnonzero(marginal)
    if where.size < min_points:
        return
    points = result.points.detach().cpu().numpy()[where]
    dist = cdist(points, points)
    _, component = connected_components(csr_matrix(dist <= length_scale), directed=False)
    labels, sizes = np.unique(component, return_counts=True)
    big = labels[sizes >= min_points]
    big = big[np.argsort(-sizes[sizes >= min_points], kind="stable")]  # largest first
    cluster = np.full(len(result), -1, dtype=np.int64)
    tangent = n_marginal(result.eigenvalues, marginal_tol).cpu().numpy()
    is_fixed = result.is_fixed.cpu().numpy()
    for label, comp in enumerate(big):
        members = component == comp
        rows = where[members]
        cluster[rows] = label
        centred = points[members] - points[members].mean(0)
        var = np.linalg.svd(centred, compute_uv=False) ** 2
        cumulative = np.cumsum(var) / max(var.sum(), 1e-300)
        result.manifolds.append(
            Manifold(
                label=label,
                size=int(members.sum()),
                n_fixed=int(is_fixed[rows].sum()),
                dimension=int(np.round(np.median(tangent[rows]))),
                pca_dimension=int(np.searchsorted(cumulative, variance) + 1),
                participation_ratio=float(var.sum() ** 2 / max((var**2).sum(), 1e-300)),
                extent=float(dist[np.ix_(members, members)].max()),
                centroid=result.points[torch.from_numpy(rows).to(result.points.device)].mean(0),
            )
        )
    result.cluster = torch.from_numpy(cluster).to(result.points.device)

