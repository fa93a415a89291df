"""The in-memory result of the finder: :class:`FixedPoints` per network, its :class:`Manifold`
clusters, and :func:`summarize`, which counts the dynamical skeleton with a continuum counted once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class Manifold:
    """One connected cluster of marginally stable points (a continuous attractor or slow manifold).

    ``dimension`` is the tangent dimension: the median over the cluster's points of the number of
    eigenvalues with ``| |lambda| - 1 | < marginal_tol`` (1 for a line or a ring). ``pca_dimension``
    is the number of principal components holding ``manifold_variance`` (default 90 %) of the
    variance of the points (2 for a ring in a plane), ``participation_ratio`` is
    ``(sum_i s_i)^2 / sum_i s_i^2`` over the PCA variances ``s_i``, and ``extent`` the largest
    distance between two of its points.
    """

    label: int
    size: int
    n_fixed: int
    dimension: int
    pca_dimension: int
    participation_ratio: float
    extent: float
    centroid: torch.Tensor  # [n]


@dataclass
class FixedPoints:
    """Fixed and slow points of one network, ``P`` points in an ``n``-dimensional state space.

    Points are sorted by increasing ``q``.
    """

    points: torch.Tensor  # [P, n] states h* (float64)
    inputs: torch.Tensor  # [P, m] constant input at which h* was found
    q: torch.Tensor  # [P] 0.5 * ||F(h*, x) - h*||^2
    is_fixed: torch.Tensor  # [P] bool, q < tol_q (else a slow point)
    jacobians: torch.Tensor  # [P, n, n] dF/dh at h*
    input_jacobians: torch.Tensor  # [P, n, m] dF/dx at h*
    eigenvalues: torch.Tensor  # [P, n] complex, sorted by modulus, largest first
    right_eigenvectors: torch.Tensor  # [P, n, n] complex, column i belongs to eigenvalue i
    left_eigenvectors: torch.Tensor  # [P, n, n] complex, row i belongs to eigenvalue i, L R = I
    n_unstable: torch.Tensor  # [P] int64, eigenvalues with modulus > 1
    cluster: torch.Tensor  # [P] int64, manifold label, -1 for isolated points
    initial_index: torch.Tensor  # [P] int64, index of the initial state that produced the point
    manifolds: list[Manifold] = field(default_factory=list)
    length_scale: float = float("nan")  # single-linkage length used for the manifolds
    tol_q: float = 1e-12
    n_initial: int = 0

    def __len__(self) -> int:
        return int(self.points.shape[0])

    @property
    def is_marginal(self) -> torch.Tensor:
        """[P] bool: points belonging to a manifold cluster."""
        return self.cluster >= 0

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain numpy arrays (complex for eigen-quantities) for ``np.savez`` without pickle."""
        names = (
            "points", "inputs", "q", "is_fixed", "jacobians", "input_jacobians", "eigenvalues",
            "right_eigenvectors", "left_eigenvectors", "n_unstable", "cluster", "initial_index",
        )  # fmt: skip
        return {name: getattr(self, name).detach().cpu().numpy() for name in names}


def summarize(result: FixedPoints) -> dict:
    """Counts of the dynamical skeleton, with a continuum counted once, as a manifold.

    Returns a JSON-ready dict:
        n_points: all reported points; n_fixed / n_slow: split by ``q < tol_q``;
        n_isolated_fixed: fixed points outside any manifold;
        isolated_fixed_by_n_unstable: {n_unstable: count} over those (0 = stable attractors);
        n_isolated_slow: slow points outside any manifold;
        n_manifolds: number of manifold clusters; manifolds: per cluster size, n_fixed, dimension,
        pca_dimension, participation_ratio, extent;
        n_nodes: n_isolated_fixed + n_manifolds (the nodes of a topology graph).
    """
    isolated = result.cluster < 0
    iso_fixed = isolated & result.is_fixed
    classes, counts = torch.unique(result.n_unstable[iso_fixed], return_counts=True)
    n_iso_fixed = int(iso_fixed.sum())
    return {
        "n_points": len(result),
        "n_fixed": int(result.is_fixed.sum()),
        "n_slow": int((~result.is_fixed).sum()),
        "n_isolated_fixed": n_iso_fixed,
        "isolated_fixed_by_n_unstable": {
            int(c): int(k) for c, k in zip(classes.tolist(), counts.tolist())
        },
        "n_isolated_slow": int((isolated & ~result.is_fixed).sum()),
        "n_manifolds": len(result.manifolds),
        "manifolds": [
            {
                "size": m.size,
                "n_fixed": m.n_fixed,
                "dimension": m.dimension,
                "pca_dimension": m.pca_dimension,
                "participation_ratio": m.participation_ratio,
                "extent": m.extent,
            }
            for m in result.manifolds
        ],
        "n_nodes": n_iso_fixed + len(result.manifolds),
    }

