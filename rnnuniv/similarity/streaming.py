"""All-pairs distances streamed from stored per-network features, in bounded memory.

Every pairwise metric needs only the cross products C_ij = U_i^T U_j [R, R] of the stored left
singular vectors (:mod:`rnnuniv.similarity.features`), weighted per network:

    SVCCA(k):    D_ij = 1 - mean_{a < min(k_i, k_j)} sigma_a(M_i C_ij M_j), M = mask of the k_i leading
    CKA:         D_ij = 1 - ||W_i C_ij W_j||_F^2,  W_i = diag(s_i) / ||s_i^2||_2^{1/2}
    Procrustes:  D_ij = arccos ||W_i C_ij W_j||_*  (or sqrt(2 - 2 ||.||_*)),  W_i = diag(s_i[:rank]) / ||s_i[:rank]||

One metric object per output (small classes with ``weights`` per network and ``score`` per block of
pairs), so one pass over the features serves SVCCA at every k, CKA and Procrustes together.

Memory. A row block of B networks' features [B, R, S] stays in memory (B from ``block_memory_mb``);
the column networks are read one features file at a time. Only column networks at or after the
block's first row are compared; the strict upper triangle is mirrored at the end. Peak memory is
the row block + one file's ``left`` + the [rows, cols, R, R] cross products of one chunk + the
output matrices (8 N^2 bytes each), independent of how many features files there are.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from rnnuniv.io import CorruptFileError
from rnnuniv.similarity.features import load_feature_arrays
from rnnuniv.similarity.metrics import _check_n_components, _components_kept

log = logging.getLogger("rnnuniv")

__all__ = ["CKA", "FeatureStore", "Procrustes", "SVCCA", "streamed_distance_matrices"]

# rows of a row block reduced at once against one file's networks: bounds the [rows, cols, R, R]
# cross products and the batched SVD workspaces (float64 elements)
_CHUNK_ELEMENTS = 2**22


class FeatureStore:
    """The small per-network arrays of every features file, and block reads of ``left``.

    Reads ``network_ids``, ``singular_values``, ``rank`` (and the per-network arrays
    ``feature_keys`` of metrics with a part of their own) of each file once; ``left`` is read per
    file when a block needs it.
    """

    def __init__(self, paths: Sequence[str | Path], feature_keys: Sequence[str] = ()):
        self.paths = [Path(p) for p in paths]
        self.location: dict[str, tuple[int, int]] = {}
        singular, ranks, ids = [], [], []
        self.n_samples = self.width = None
        self.per_network: dict[str, dict[str, np.ndarray]] = {key: {} for key in feature_keys}
        bounds = []
        keys = (*feature_keys, "singular_values", "rank")
        keys = (*keys, "n_samples", "width", "cka_truncation", "procrustes_truncation")
        for f, path in enumerate(self.paths):
            arrays = load_feature_arrays(path, keys)
            n_samples, width = int(arrays["n_samples"]), int(arrays["width"])
            if self.n_samples is None:
                self.n_samples, self.width = n_samples, width
            elif (n_samples, width) != (self.n_samples, self.width):
                raise CorruptFileError(
                    path,
                    f"features of {n_samples} samples x {width} columns, but "
                    f"{self.paths[0]} has {self.n_samples} x {self.width}: rebuild the features",
                )
            for row, network_id in enumerate(arrays["network_ids"].astype(str)):
                if network_id in self.location:
                    raise CorruptFileError(path, f"network {network_id} is also in another file")
                self.location[network_id] = (f, row)
                ids.append(network_id)
                singular.append(arrays["singular_values"][row])
                ranks.append(int(arrays["rank"][row]))
                bounds.append((arrays["cka_truncation"][row], arrays["procrustes_truncation"][row]))
                for key in feature_keys:
                    self.per_network[key][network_id] = arrays[key][row]
        m = max((len(s) for s in singular), default=0)
        self._row = {network_id: i for i, network_id in enumerate(ids)}
        self._singular = np.zeros((len(ids), m))
        for i, s in enumerate(singular):
            self._singular[i, : len(s)] = s
        self._rank = np.asarray(ranks, dtype=np.int64)
        self._bounds = np.asarray(bounds, dtype=np.float64).reshape(-1, 2)

    def features(self, key: str, ids: Sequence[str]) -> np.ndarray:
        """The stored per-network array ``key`` (a metric's own part, e.g. dsa_eigenvalues) of ``ids``,
        stacked [len(ids), ...]; the key must have been named in ``feature_keys``."""
        if key not in self.per_network:
            raise KeyError(f"{key} was not loaded (FeatureStore(..., feature_keys=[{key!r}]))")
        rows = [self.per_network[key][i] for i in ids]
        return np.stack(rows) if rows else np.zeros((0,))

    def singular_values(self, ids: Sequence[str]) -> np.ndarray:
        return self._singular[[self._row[i] for i in ids]]

    def ranks(self, ids: Sequence[str]) -> np.ndarray:
        return self._rank[[self._row[i] for i in ids]]

    def truncation_bounds(self, ids: Sequence[str]) -> np.ndarray:
        """[n, 2]: the CKA and Procrustes per-network error bounds e_i (features module)."""
        return self._bounds[[self._row[i] for i in ids]]

    def read_left(self, file_index: int, width: int) -> np.ndarray:
        """``left`` [n, width, S] of one file (a view of the file's array when width is all of it)."""
        path = self.paths[file_index]
        left = load_feature_arrays(path, ("left",))["left"]
        if left.ndim != 3 or left.shape[1:] != (self.width, self.n_samples):
            raise CorruptFileError(
                path, f"left has shape {left.shape}, expected [n, {self.width}, {self.n_samples}]"
            )
        return left[:, :width]

    def load(self, ids: Sequence[str], width: int) -> np.ndarray:
        """``left`` of ``ids`` [len(ids), width, S], reading each file once, copying row by row."""
        block = np.empty((len(ids), width, self.n_samples), dtype=np.float64)
        by_file: dict[int, list[tuple[int, int]]] = {}
        for position, network_id in enumerate(ids):
            f, row = self.location[network_id]
            by_file.setdefault(f, []).append((position, row))
        for f, pairs in by_file.items():
            left = self.read_left(f, width)
            for position, row in pairs:
                block[position] = left[row]
            del left
        return block


# --- metrics: per-network weights [N, W] + a score of a block of cross products --------------


@dataclass
class SVCCA:
    """SVCCA with ``n_components`` (int k, or a variance fraction) per network."""

    n_components: int | float
    name: str = field(default="svcca")

    def __post_init__(self):
        _check_n_components(self.n_components)
        if self.n_components is None:
            raise ValueError("streamed SVCCA needs n_components (an int or a fraction)")

    def weights(self, singular: np.ndarray, ranks: np.ndarray, width: int) -> torch.Tensor:
        kept = [
            _components_kept(torch.as_tensor(s), int(r), self.n_components)
            for s, r in zip(singular, ranks)
        ]
        if max(kept, default=0) > width:
            raise ValueError(
                f"SVCCA keeps up to {max(kept)} components but the features store {width}: "
                "raise similarity.feature_rank and rebuild the features"
            )
        self.kept = torch.tensor(kept, dtype=torch.int64)
        self.width = max(kept, default=0)
        return (torch.arange(width)[None, :] < self.kept[:, None]).to(torch.float64)

    def score(self, cross, wi, wj, rows, cols) -> torch.Tensor:
        k = self.width
        masked = wi[:, None, :k, None] * cross[..., :k, :k] * wj[None, :, None, :k]
        rho = torch.linalg.svdvals(masked)
        kept = self.kept.to(cross.device)
        count = torch.minimum(kept[rows, None], kept[None, cols])
        used = torch.arange(k, device=count.device) < count[..., None]
        return 1.0 - (rho.clamp(0.0, 1.0) * used).sum(-1) / count


@dataclass
class CKA:
    name: str = field(default="cka")

    def weights(self, singular, ranks, width) -> torch.Tensor:
        s = torch.as_tensor(singular)
        scale = s.square().square().sum(-1).sqrt().sqrt()  # ||X^T X||_F^{1/2} = ||s^2||_2^{1/2}
        padded = torch.zeros(len(s), width, dtype=torch.float64)
        kept = min(width, s.shape[1])
        padded[:, :kept] = s[:, :kept] / scale[:, None]  # 0/0 = nan for zero variance, as in-memory
        return padded

    def score(self, cross, wi, wj, rows, cols) -> torch.Tensor:
        return 1.0 - (wi[:, None, :, None] * cross * wj[None, :, None, :]).square().sum((-2, -1))


@dataclass
class Procrustes:
    kind: str = "angular"
    name: str = field(default="procrustes")

    def __post_init__(self):
        if self.kind not in ("angular", "euclidean"):
            raise ValueError(f"kind must be 'angular' or 'euclidean', got {self.kind!r}")

    def weights(self, singular, ranks, width) -> torch.Tensor:
        s = torch.as_tensor(singular)
        lead = torch.arange(s.shape[1])[None, :] < torch.as_tensor(ranks)[:, None]
        s = torch.where(lead, s, 0.0)
        norm = torch.linalg.vector_norm(s, dim=-1, keepdim=True)
        s = torch.where(lead, s / torch.where(norm > 0, norm, 1.0), 0.0)
        padded = torch.zeros(len(s), width, dtype=torch.float64)
        kept = min(width, s.shape[1])
        padded[:, :kept] = s[:, :kept]
        return padded

    def score(self, cross, wi, wj, rows, cols) -> torch.Tensor:
        weighted = wi[:, None, :, None] * cross * wj[None, :, None, :]
        nuclear = torch.linalg.svdvals(weighted).sum(-1).clamp(0.0, 1.0)
        if self.kind == "angular":
            return torch.arccos(nuclear)
        return (2.0 - 2.0 * nuclear).clamp_min(0.0).sqrt()


# --- the streamed engine -----------------------------------------------------------------------


def block_networks(n_samples: int, width: int, block_memory_mb: float) -> int:
    """Networks per row block: B S R 8 bytes <= block_memory_mb (at least 1)."""
    per_network = n_samples * max(width, 1) * 8
    return max(1, int(block_memory_mb * 2**20 // per_network))


def streamed_distance_matrices(
    store: FeatureStore,
    ids: Sequence[str],
    metrics: Sequence,
    block_memory_mb: float = 1024.0,
    device: str | torch.device = "cpu",
) -> dict[str, np.ndarray]:
    """{metric.name: symmetric [N, N] float64} for the networks ``ids`` (matrix order), zero diagonal.

    Row blocks of ``ids`` are held in memory; for each, every features file is read once and its
    networks at or after the block's start are compared with the whole block. The products and
    scores run on ``device`` (features are read to host memory and moved there block by block).
    """
    ids = list(ids)
    n = len(ids)
    missing = [i for i in ids if i not in store.location]
    if missing:
        raise ValueError(f"{len(missing)} network(s) have no features, e.g. {missing[:5]}")
    singular, ranks = store.singular_values(ids), store.ranks(ids)
    width = store.width
    weights = [m.weights(singular, ranks, width).to(device) for m in metrics]
    used = max(
        (getattr(m, "width", width) for m in metrics), default=0
    )  # SVCCA-only runs need only k columns
    used = max(used, 1)
    out = {m.name: np.zeros((n, n), dtype=np.float64) for m in metrics}
    if n < 2 or not metrics:
        return out
    position = {network_id: p for p, network_id in enumerate(ids)}
    by_file: dict[int, list[tuple[int, int]]] = {}  # file -> (matrix position, row in file)
    for network_id in ids:
        f, row = store.location[network_id]
        by_file.setdefault(f, []).append((position[network_id], row))
    block = block_networks(store.n_samples, used, block_memory_mb)
    log.info(
        "streaming %d networks: %d row block(s) of <= %d, %d features files, width %d of %d",
        n, math.ceil(n / block), block, len(by_file), used, width,
    )
    for i0 in range(0, n, block):
        i1 = min(i0 + block, n)
        rows_flat = torch.from_numpy(store.load(ids[i0:i1], used)).reshape(-1, store.n_samples).to(device)
        for f, pairs in by_file.items():
            pairs = [(p, r) for p, r in pairs if p >= i0]
            if not pairs:
                continue
            left = store.read_left(f, used)
            cols_index = np.array([p for p, _ in pairs])
            cols_pos = torch.from_numpy(cols_index).to(device)
            in_file = [r for _, r in pairs]
            if in_file != list(range(len(left))):
                left = left[in_file]  # a copy of at most one file's features
            cols_flat = torch.from_numpy(np.ascontiguousarray(left)).reshape(-1, store.n_samples).to(device)
            del left
            n_cols = len(pairs)
            chunk = max(1, _CHUNK_ELEMENTS // max(n_cols * used * used, 1))
            for r0 in range(i0, i1, chunk):
                r1 = min(r0 + chunk, i1)
                cross = rows_flat[(r0 - i0) * used : (r1 - i0) * used] @ cols_flat.T
                cross = cross.reshape(r1 - r0, used, n_cols, used).transpose(1, 2)
                rows = slice(r0, r1)
                for metric, w in zip(metrics, weights):
                    values = metric.score(cross, w[rows, :used], w[cols_pos, :used], rows, cols_pos)
                    out[metric.name][r0:r1, cols_index] = values.cpu().numpy()
            del cols_flat
        del rows_flat
    for matrix in out.values():
        _mirror_upper(matrix, block)
    return out


def _mirror_upper(matrix: np.ndarray, block: int) -> None:
    """In place: lower triangle := upper triangle's transpose, diagonal := 0 (blockwise, no N^2 copy)."""
    n = len(matrix)
    for i0 in range(0, n, block):
        i1 = min(i0 + block, n)
        matrix[i0:i1, :i0] = matrix[:i0, i0:i1].T
        upper = np.triu(matrix[i0:i1, i0:i1], 1)
        matrix[i0:i1, i0:i1] = upper + upper.T
