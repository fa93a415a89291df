"""Per-network similarity features: computed once per shard, stored, read back by the pairwise stage.

The per-network part of every metric (netrep's fit/score split) is one thin SVD of the network's
centred probe states X_i [S samples, n_i units] (float64 of the stored float32 states),

    X_i - mean = U_i diag(s_i) V_i^T,

of which the pairwise metrics need only U_i and s_i (V_i drops out of every cross product):

* SVCCA at k components: the basis Q_i = U_i[:, :k_i], k_i = min(k, rank_i) (or the fewest
  components reaching a variance fraction), so one stored U at the largest k serves every k;
* linear CKA: ||X_i^T X_j||_F = ||diag(s_i) U_i^T U_j diag(s_j)||_F and ||X_i^T X_i||_F = ||s_i^2||_2;
* Procrustes: ||X_i^T X_j||_* = ||diag(s_i) U_i^T U_j diag(s_j)||_* over the rank_i leading columns;
* metrics with a per-network part of their own (:mod:`rnnuniv.similarity.registry`), e.g. DSA:
  the eigenvalues of the delay-embedded DMD operator (:mod:`rnnuniv.similarity.dsa`).

Stored per shard (``.npz``, no pickle; every array indexed like ``network_ids``):

    network_ids [n] str; left [n, R, S] float64 = U[:, :R]^T (zero rows beyond min(S, n_i); rows
    so that a block of networks is one contiguous [n R, S] matrix for the pairwise product);
    singular_values [n, M] float64 = all of s_i (zero-padded); rank [n] int64 = numerical rank
    (s_a > max(S, n_i) eps(float32) s_1, as :func:`rnnuniv.similarity.metrics._numerical_rank`);
    units [n]; n_samples, width (= R) scalars; cka_truncation, procrustes_truncation [n] (below);
    per metric with a per-network part, its array ``metric.key`` [n, ...] (DSA: dsa_eigenvalues
    [n, r] complex128) and its feature options as scalars (DSA: dsa_n_delays, dsa_rank).

Truncation. With R >= min(S, n_i) the features are lossless. Otherwise the pairwise CKA and
Procrustes use the leading R components, and their errors are bounded by e_i + e_j with

    CKA:        e_i = sum_{a > R} s_a^2 / (sum_a s_a^4)^{1/2}
    Procrustes: e_i = (sum_{R < a <= rank} s_a^2 / sum_{a <= rank} s_a^2)^{1/2}

(split X_i into its leading and trailing singular directions; ||A^T B||_F <= ||A||_F ||B||_2 and
||A^T B||_* <= ||A||_F ||B||_F). Both bounds are stored per network and logged by the pairwise stage.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from rnnuniv.io import CorruptFileError, atomic_path
from rnnuniv.similarity.metrics import _centred, _numerical_rank
from rnnuniv.similarity.registry import feature_metrics, metric_options

__all__ = ["load_feature_arrays", "network_svd", "save_features", "shard_features"]

SMALL_KEYS = ("network_ids", "singular_values", "rank", "units", "n_samples", "width")


def network_svd(states, width: int, device: str | torch.device | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """One network's (U[:, :width] zero-padded to ``width`` columns, all s, numerical rank).

    states: [..., units] (leading axes flattened into samples). U comes from X = Q R, R = U_R S V^T
    (as :func:`rnnuniv.similarity.metrics._principal_scores`, so bases agree to rounding).
    Computed on ``device`` (default: that of ``states``); returned as numpy arrays.
    """
    tensor = torch.as_tensor(states, device=device)
    x = _centred(tensor.to(torch.float64).reshape(-1, tensor.shape[-1]))
    q, r = torch.linalg.qr(x)
    u_r, s, _ = torch.linalg.svd(r, full_matrices=False)
    rank = _numerical_rank(s, tuple(x.shape), None, tensor.dtype)
    kept = min(width, s.shape[0])
    left = np.zeros((x.shape[0], width), dtype=np.float64)
    left[:, :kept] = (q @ u_r[:, :kept]).cpu().numpy()
    return left, s.cpu().numpy(), rank


def _truncation_bounds(s: np.ndarray, rank: int, width: int) -> tuple[float, float]:
    squares = s**2
    fourth = float(np.sqrt((squares**2).sum()))
    cka = float(squares[width:].sum()) / fourth if fourth > 0 else 0.0
    leading = float(squares[:rank].sum())
    procrustes = float(np.sqrt(squares[width:rank].sum() / leading)) if leading > 0 else 0.0
    return cka, procrustes


def shard_features(
    network_ids,
    hidden: np.ndarray,
    width: int,
    metrics: Sequence[str] = (),
    options: dict | None = None,
    device: str | torch.device | None = None,
) -> dict[str, np.ndarray]:
    """Features of every network of a shard; hidden [n, trials, time, units] (the states file).

    width: columns R of U stored (the largest k of any configured analysis, or the CKA/Procrustes
    rank). metrics: names in :data:`~rnnuniv.similarity.registry.EXTRA_METRICS`; those with a
    per-network part (DSA) get it stored, computed with ``options`` (their feature options, e.g.
    ``{"dsa_n_delays": 5, "dsa_rank": 10}``; missing keys take the option's default). device:
    where the SVDs and per-network fits run, one network at a time (None: CPU).
    """

    if isinstance(width, bool) or int(width) != width or width < 1:
        raise ValueError(f"width must be an int >= 1, got {width!r}")
    if hidden.ndim != 4 or hidden.shape[0] != len(network_ids):
        raise ValueError(
            f"hidden has shape {hidden.shape}, expected [{len(network_ids)}, trials, time, units]"
        )
    n, trials, steps, units = hidden.shape
    n_samples = trials * steps
    lefts = np.zeros((n, width, n_samples), dtype=np.float64)
    singular = np.zeros((n, min(n_samples, units)), dtype=np.float64)
    ranks = np.zeros(n, dtype=np.int64)
    bounds = np.zeros((n, 2), dtype=np.float64)
    for i, states in enumerate(hidden):
        left, s, ranks[i] = network_svd(states, width, device)
        lefts[i] = left.T
        singular[i, : len(s)] = s
        bounds[i] = _truncation_bounds(s, int(ranks[i]), width)
    arrays = {
        "network_ids": np.asarray(network_ids).astype(str),
        "left": lefts,
        "singular_values": singular,
        "rank": ranks,
        "units": np.full(n, units, dtype=np.int64),
        "n_samples": np.int64(n_samples),
        "width": np.int64(width),
        "cka_truncation": bounds[:, 0],
        "procrustes_truncation": bounds[:, 1],
    }
    for metric in feature_metrics(metrics):
        chosen = metric_options([metric.name], options or {}, "feature_options")
        values = [np.asarray(metric.per_network(torch.as_tensor(states, device=device), chosen)) for states in hidden]
        arrays[metric.key] = np.stack(values) if values else np.zeros(0)  # a shard of no analysed network
        arrays.update({key: np.asarray(value) for key, value in chosen.items()})
    return arrays


def save_features(path: str | Path, arrays: dict[str, np.ndarray]) -> None:
    """Write atomically and uncompressed (the pairwise stage rereads ``left`` once per row block;
    float64 singular vectors do not compress, and inflating them would dominate the reads)."""
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, **arrays)


def load_feature_arrays(path: str | Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Only ``keys`` of a features file (an .npz member is read when asked for), checked.

    A missing, truncated or inconsistent file raises CorruptFileError naming it.
    """
    path = Path(path)
    if not path.exists():
        raise CorruptFileError(path, "features file is missing")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in (*keys, "network_ids") if k not in data.files]
            if missing:
                raise CorruptFileError(path, f"features file lacks arrays {missing}")
            arrays = {k: data[k] for k in {*keys, "network_ids"}}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as err:
        raise CorruptFileError(path, f"not a readable features .npz ({err})") from err
    n = len(arrays["network_ids"])
    for key, value in arrays.items():
        if value.ndim >= 1 and value.shape[0] != n and key != "network_ids":
            raise CorruptFileError(
                path, f"{key} has {value.shape[0]} rows but there are {n} network_ids"
            )
    return arrays
