"""Low-dimensional embeddings and cluster statistics of a precomputed [N, N] distance matrix.

Used on the network-by-network distance matrices of :mod:`rnnuniv.similarity` (and of the
fixed-point topology) to show and quantify how networks group by architecture or activation.
"""

from __future__ import annotations

import numpy as np
from sklearn.manifold import MDS
from sklearn.metrics import silhouette_score

__all__ = ["mds", "silhouette", "within_between", "identical_classes"]


def _square_distance(distance) -> np.ndarray:
    d = np.asarray(distance, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"distance must be a square [N, N] matrix, got shape {d.shape}")
    if not np.isfinite(d).all():
        raise ValueError("distance contains nan or inf; drop those networks first")
    return d


def _labels_for(labels, n: int) -> np.ndarray:
    labels = np.asarray(labels)
    if labels.shape != (n,):
        raise ValueError(f"labels must have shape ({n},), got {labels.shape}")
    return labels


def mds(distance, n_components: int = 2, seed: int = 0) -> np.ndarray:
    """Metric MDS coordinates [N, n_components] whose Euclidean distances approximate ``distance``.

    Minimises the raw stress sum_{i<j} (||z_i - z_j|| - D_ij)^2 by SMACOF (scikit-learn ``MDS``
    with ``metric="precomputed"``, the 1.8+ name of ``dissimilarity="precomputed"``), started from
    classical MDS and seeded, so the result is reproducible.
    """
    d = _square_distance(distance)
    if d.shape[0] <= n_components:
        # too few points for SMACOF; classical MDS would also be degenerate. Place them trivially.
        coordinates = np.zeros((d.shape[0], n_components))
        if d.shape[0] == 2:
            coordinates[1, 0] = d[0, 1]
        return coordinates
    d = 0.5 * (d + d.T)
    model = MDS(
        n_components=n_components,
        metric_mds=True,
        metric="precomputed",
        init="random",  # ignored: the classical start is passed to fit_transform
        random_state=seed,
        n_init=1,
    )
    return model.fit_transform(d, init=classical_mds(d, n_components)).astype(np.float64)


def classical_mds(distance, n_components: int = 2) -> np.ndarray:
    """Torgerson's classical MDS: the top eigenvectors of ``B = -1/2 J D^2 J`` (``J`` the centring
    matrix) scaled by ``sqrt(max(lambda, 0))``.

    Negative eigenvalues (a distance that is not Euclidean) are clipped to 0 rather than giving
    NaN coordinates, as scikit-learn's own classical start does for such matrices.
    """
    d = np.asarray(distance, dtype=np.float64)
    n = d.shape[0]
    centring = np.eye(n) - np.full((n, n), 1.0 / n)
    gram = -0.5 * centring @ (d**2) @ centring
    eigenvalues, eigenvectors = np.linalg.eigh(0.5 * (gram + gram.T))
    order = np.argsort(eigenvalues)[::-1][:n_components]
    return eigenvectors[:, order] * np.sqrt(np.clip(eigenvalues[order], 0.0, None))


def silhouette(distance, labels) -> float:
    """Mean silhouette (s_i = (b_i - a_i) / max(a_i, b_i)) over networks, from precomputed distances.

    a_i: mean distance to the other members of i's group; b_i: smallest mean distance to another
    group. In [-1, 1]; high when groups are compact and separated. nan unless there are between
    2 and N - 1 distinct labels (where it is undefined).
    """
    d = _square_distance(distance)
    labels = _labels_for(labels, d.shape[0])
    n_labels = len(np.unique(labels))
    if not 2 <= n_labels <= d.shape[0] - 1:
        return float("nan")
    return float(silhouette_score(d, labels, metric="precomputed"))


def within_between(distance, labels) -> dict[str, float]:
    """Mean distance within groups, between groups, and their ratio (< 1: groups are clustered).

    mean_within = mean of D_ij over pairs i != j with equal labels; mean_between over pairs with
    different labels; ratio = mean_within / mean_between. Means over no pairs are nan.
    """
    d = _square_distance(distance)
    labels = _labels_for(labels, d.shape[0])
    same = labels[:, None] == labels[None, :]
    off_diagonal = ~np.eye(d.shape[0], dtype=bool)
    within = d[same & off_diagonal]
    between = d[~same]
    mean_within = float(within.mean()) if within.size else float("nan")
    mean_between = float(between.mean()) if between.size else float("nan")
    ratio = mean_within / mean_between if mean_between else float("nan")
    return {"mean_within": mean_within, "mean_between": mean_between, "ratio": float(ratio)}


def identical_classes(distance, tol: float = 1e-9) -> np.ndarray:
    """Classes [N] of networks at distance <= tol from each other (connected components).

    Numbered by size, largest first (class 0 is the modal one; ties: the class whose first
    member comes first). A topology distance of 0 means the same scaffold, so these are the
    scaffold classes as the distance sees them; MDS draws a class as one point.
    """
    d = _square_distance(distance)
    n = d.shape[0]
    parent = np.arange(n)

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(d <= tol, 1) | np.triu(d.T <= tol, 1))):
        parent[root(i)] = root(j)
    roots = np.array([root(i) for i in range(n)], dtype=int)
    names, first, counts = np.unique(roots, return_index=True, return_counts=True)
    order = sorted(range(len(names)), key=lambda k: (-counts[k], first[k]))
    rank = {names[k]: number for number, k in enumerate(order)}
    return np.array([rank[r] for r in roots], dtype=int)
