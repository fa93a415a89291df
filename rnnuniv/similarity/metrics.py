"""Representational similarity between networks held in memory, for all pairs at once.

Every metric compares networks through their probe states: one array per network with rows =
samples (trials x time, identical across networks) and columns = units (may differ between
networks). Each metric splits into a per-network part, computed once and cached as a feature
block ``F_i`` of shape [width, samples], and a pairwise part that only needs the cross products
``F_i F_j^T``. All cross products of a block of networks against another block come out of one
matrix product; the per-pair reductions (singular values, Frobenius norms) are batched. The block
size bounds memory, so N in the thousands fits in a few hundred MB beyond the cached features.

Metrics (distance = 0 for identical representations):

* SVCCA (Raghu et al. 2017, as used by Maheswaranathan et al. 2019): centre, keep the top-k
  principal components, CCA between the two reduced sets; distance = 1 - mean canonical correlation.
* Linear CKA (Kornblith et al. 2019): distance = 1 - CKA.
* Procrustes shape distance (Williams et al. 2021): angular or Euclidean, after centring and
  normalisation, optionally after PCA to a common dimension.
* DSA (Ostrow et al. 2023), eigenvalue variant: delay-embedded DMD per network, Wasserstein
  distance between the eigenvalue sets of the fitted operators.

All functions accept numpy arrays or torch tensors (on any device; the computation runs on the
device of the first network's tensor, CPU for numpy) and return numpy float64.
"""

from __future__ import annotations

import logging
import math
from typing import Callable, Literal, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

log = logging.getLogger("rnnuniv")

__all__ = [
    "cca_correlations",
    "cka_distance_matrix",
    "procrustes_distance_matrix",
    "svcca_basis",
    "svcca_distance_matrix",
]

# Largest pairwise block, in float64 elements ([block*width]^2 cross products): 2**24 = 128 MB.
_BLOCK_ELEMENTS = 2**24


# ---------------------------------------------------------------------------------------------
# input handling


def _device_of(states: Sequence) -> torch.device:
    first = states[0] if len(states) else None
    return first.device if isinstance(first, torch.Tensor) else torch.device("cpu")


def _as_samples_by_units(x, device: torch.device) -> torch.Tensor:
    """One network's states as float64 [samples, units]; leading axes (trials, time) are flattened."""
    tensor = torch.as_tensor(x)
    if tensor.ndim < 2:
        raise ValueError(
            f"states must have at least 2 axes [samples, units], got shape {tuple(tensor.shape)}"
        )
    return tensor.to(device=device, dtype=torch.float64).reshape(-1, tensor.shape[-1])


def _centred(x: torch.Tensor) -> torch.Tensor:
    return x - x.mean(dim=0, keepdim=True)


def _check_equal_samples(matrices: Sequence[torch.Tensor]) -> int:
    counts = {m.shape[0] for m in matrices}
    if len(counts) > 1:
        raise ValueError(f"all networks need the same number of samples, got {sorted(counts)}")
    return counts.pop() if counts else 0


def _check_n_components(n_components: int | float | None) -> None:
    if n_components is None:
        return
    if isinstance(n_components, bool) or not isinstance(
        n_components, (int, float, np.integer, np.floating)
    ):
        raise ValueError(
            f"n_components must be None, an int >= 1 or a float in (0, 1], got {n_components!r}"
        )
    if isinstance(n_components, (int, np.integer)):
        if n_components < 1:
            raise ValueError(f"n_components must be >= 1, got {n_components}")
    elif not 0.0 < n_components <= 1.0:
        raise ValueError(
            f"a float n_components is a variance fraction in (0, 1], got {n_components}"
        )


def _numerical_rank(
    singular_values: torch.Tensor,
    shape: tuple[int, int],
    rtol: float | None,
    input_dtype: torch.dtype = torch.float64,
) -> int:
    """Count of singular values above ``rtol * s_max``.

    Default rtol = max(shape) * eps of the input's precision (numpy's matrix_rank rule), so
    float32 states are not credited with components that are float32 rounding noise.
    """
    if singular_values.numel() == 0 or singular_values[0] <= 0:
        return 0
    if rtol is None:
        eps_dtype = input_dtype if input_dtype.is_floating_point else torch.float64
        rtol = max(shape) * torch.finfo(eps_dtype).eps
    return int((singular_values > rtol * singular_values[0]).sum())


def _components_kept(
    singular_values: torch.Tensor, rank: int, n_components: int | float | None
) -> int:
    """Number k of leading principal components: all (None), a count, or a variance fraction."""
    if n_components is None or rank == 0:
        return rank
    if isinstance(n_components, (int, np.integer)):
        return min(int(n_components), rank)
    variance = singular_values[:rank] ** 2
    explained = torch.cumsum(variance, 0) / variance.sum()
    # smallest k whose leading components explain at least the fraction (tolerant to rounding)
    target = torch.tensor(n_components - 1e-12, dtype=explained.dtype, device=explained.device)
    return min(int(torch.searchsorted(explained, target)) + 1, rank)


def _principal_scores(
    states, device: torch.device, n_components: int | float | None, rtol: float | None
):
    """SVD of one network's centred states, X - mean = U S V^T, truncated to the kept components.

    Returns (U_k [samples, k], s_k [k]) in float64. The PC scores are U_k diag(s_k).
    """
    input_dtype = torch.as_tensor(states).dtype
    x = _centred(_as_samples_by_units(states, device))
    # X = Q R, R = U_R S V^T  =>  X = (Q U_R) S V^T: as accurate as a direct SVD of the tall X,
    # and faster (the SVD runs on the small R; only k columns of Q U_R are formed).
    q, r = torch.linalg.qr(x)
    u_r, s, _ = torch.linalg.svd(r, full_matrices=False)
    rank = _numerical_rank(s, tuple(x.shape), rtol, input_dtype)
    k = _components_kept(s, rank, n_components)
    return q @ u_r[:, :k], s[:k]


# ---------------------------------------------------------------------------------------------
# blocked all-pairs engine


def _resolve_block_size(block_size: int | None, width: int) -> int:
    if block_size is None:
        return max(1, int(math.isqrt(_BLOCK_ELEMENTS)) // max(width, 1))
    if isinstance(block_size, bool) or int(block_size) != block_size or block_size < 1:
        raise ValueError(f"block_size must be a positive int or None, got {block_size!r}")
    return int(block_size)


def _block_ranges(n: int, block: int) -> list[tuple[int, int, int, int]]:
    """Upper-triangular block pairs (i0, i1, j0, j1) with j0 >= i0 covering every pair i <= j."""
    starts = list(range(0, n, block))
    return [
        (i0, min(i0 + block, n), j0, min(j0 + block, n))
        for i0 in starts
        for j0 in starts
        if j0 >= i0
    ]


def _symmetric_from_upper(upper: torch.Tensor) -> np.ndarray:
    """Mirror the strict upper triangle; the diagonal is exactly 0."""
    strict = torch.triu(upper, diagonal=1)
    return (strict + strict.T).cpu().numpy().astype(np.float64)


def _blocked_cross_products(
    features: torch.Tensor,
    pair_distance: Callable[[torch.Tensor, slice, slice], torch.Tensor],
    block_size: int | None,
    progress: bool,
    desc: str,
) -> np.ndarray:
    """Symmetric [N, N] matrix D_ij = pair_distance(F_i F_j^T) for features F of shape [N, W, S].

    For a block I x J of networks the cross products come from one matrix product,
    [|I| W, S] @ [S, |J| W], reshaped to [|I|, |J|, W, W] and reduced by ``pair_distance`` (which
    also receives the global index slices of I and J). Only blocks with J >= I are computed.
    """
    n_networks, width, n_samples = features.shape
    distance = torch.zeros(n_networks, n_networks, dtype=torch.float64, device=features.device)
    if n_networks < 2:
        return _symmetric_from_upper(distance)
    block = _resolve_block_size(block_size, width)
    for i0, i1, j0, j1 in tqdm(
        _block_ranges(n_networks, block), desc=desc, unit="block", disable=not progress
    ):
        rows = features[i0:i1].reshape(-1, n_samples)  # [|I| W, S]
        cols = features[j0:j1].reshape(-1, n_samples)  # [|J| W, S]
        cross = rows @ cols.T  # [|I| W, |J| W]: all cross products F_i F_j^T of the block
        cross = cross.reshape(i1 - i0, width, j1 - j0, width).transpose(1, 2)  # [|I|, |J|, W, W]
        distance[i0:i1, j0:j1] = pair_distance(cross, slice(i0, i1), slice(j0, j1))
    return _symmetric_from_upper(distance)


def _stack_padded(
    blocks: Sequence[torch.Tensor], n_samples: int, device: torch.device
) -> torch.Tensor:
    """Stack per-network [samples, width_i] matrices as [N, W, samples], zero-padding to W = max width.

    Zero columns add only zero rows/columns to every cross product, which changes neither its
    nonzero singular values nor its Frobenius norm.
    """
    width = max((b.shape[1] for b in blocks), default=0)
    features = torch.zeros(len(blocks), width, n_samples, dtype=torch.float64, device=device)
    for i, b in enumerate(blocks):
        features[i, : b.shape[1]] = b.T
    return features


# ---------------------------------------------------------------------------------------------
# SVCCA


def svcca_basis(
    states, n_components: int | float | None = None, rtol: float | None = None
) -> np.ndarray:
    """Orthonormal basis Q [samples, k] of the span of the top-k principal components of one network.

    With X - mean(X) = U S V^T (samples x units), Q = U[:, :k]. ``n_components``: None keeps every
    component above the rank tolerance ``rtol * s_max`` (default rtol = max(samples, units) * eps
    of the input's dtype, so float32 rounding noise is not a component), an int keeps that many (at most the rank), a float in (0, 1] keeps the fewest whose variance
    sum_{i<=k} s_i^2 / sum_i s_i^2 reaches that fraction.
    """
    _check_n_components(n_components)
    basis, _ = _principal_scores(states, _device_of([states]), n_components, rtol)
    return basis.cpu().numpy()


def cca_correlations(
    A, B, n_components: int | float | None = None, rtol: float | None = None
) -> np.ndarray:
    """Canonical correlations of one pair of networks (SVCCA), sorted descending.

    A: [samples, units_a], B: [samples, units_b] (leading axes beyond the last are flattened into
    samples). Each is centred and reduced to the orthonormal basis Q of its top principal
    components (:func:`svcca_basis`); the canonical correlations between the reduced data are
    then the singular values of Q_A^T Q_B,

        rho = svd(Q_A^T Q_B),  length min(k_A, k_B),

    which equals the covariance form svd(C_aa^{-1/2} C_ab C_bb^{-1/2}) on the PC scores.
    """
    _check_n_components(n_components)
    device = _device_of([A])
    qa, _ = _principal_scores(A, device, n_components, rtol)
    qb, _ = _principal_scores(B, device, n_components, rtol)
    _check_equal_samples([qa, qb])
    rho = torch.linalg.svdvals(qa.T @ qb)[: min(qa.shape[1], qb.shape[1])]
    return rho.clamp(0.0, 1.0).cpu().numpy().astype(np.float64)


def svcca_distance_matrix(
    states: Sequence,
    n_components: int | float | None = None,
    *,
    rtol: float | None = None,
    block_size: int | None = None,
    progress: bool = True,
) -> np.ndarray:
    """SVCCA distance between every pair of networks: D_ij = 1 - mean(rho_ij), shape [N, N].

    states: N arrays [samples, units_i] (same samples). Network i is reduced once to Q_i
    [samples, k_i] (:func:`svcca_basis`); the canonical correlations of pair (i, j) are the
    singular values of the k x k block Q_i^T Q_j, and the mean runs over the min(k_i, k_j) of them.
    Bases are zero-padded to K = max k_i, all blocks Q_I^T Q_J come from one product per block of
    ``block_size`` networks (auto: (block_size * K)^2 <= 2^24), and singular values are batched.
    A network with zero variance (k = 0) has nan distance to the others. Diagonal is 0.
    """
    _check_n_components(n_components)
    device = _device_of(states)
    bases = []
    for x in states:
        basis, _ = _principal_scores(x, device, n_components, rtol)
        bases.append(basis)
    n_samples = _check_equal_samples(bases)
    kept = torch.tensor([b.shape[1] for b in bases], dtype=torch.int64, device=device)
    features = _stack_padded(bases, n_samples, device)
    del bases
    if int((kept == 0).sum()):
        log.warning(
            "SVCCA: %d network(s) have zero variance; their distances are nan",
            int((kept == 0).sum()),
        )

    def pair_distance(cross: torch.Tensor, rows: slice, cols: slice) -> torch.Tensor:
        rho = torch.linalg.svdvals(cross)  # [|I|, |J|, K], descending
        count = torch.minimum(kept[rows, None], kept[None, cols])  # [|I|, |J|]
        used = torch.arange(rho.shape[-1], device=rho.device) < count[..., None]
        mean_rho = (rho.clamp(0.0, 1.0) * used).sum(-1) / count  # 0/0 = nan for zero variance
        return 1.0 - mean_rho

    return _blocked_cross_products(features, pair_distance, block_size, progress, "SVCCA")


# ---------------------------------------------------------------------------------------------
# linear CKA


def cka_distance_matrix(
    states: Sequence, *, block_size: int | None = None, progress: bool = True
) -> np.ndarray:
    """Linear-CKA distance between every pair of networks: D_ij = 1 - CKA(X_i, X_j), shape [N, N].

    With centred X [samples, units_x], Y [samples, units_y] (Kornblith et al. 2019, the Gram-free
    form of HSIC(XX^T, YY^T) normalised):

        CKA(X, Y) = ||X^T Y||_F^2 / (||X^T X||_F ||Y^T Y||_F).

    Cached per network: X~ = X / ||X^T X||_F^{1/2}, so CKA_ij = ||X~_i^T X~_j||_F^2. Zero-variance
    networks give nan. Diagonal is 0.
    """
    device = _device_of(states)
    scaled = []
    for x in states:
        x = _centred(_as_samples_by_units(x, device))
        scaled.append(x / torch.linalg.matrix_norm(x.T @ x).sqrt())
    n_samples = _check_equal_samples(scaled)
    features = _stack_padded(scaled, n_samples, device)
    del scaled

    def pair_distance(cross: torch.Tensor, rows: slice, cols: slice) -> torch.Tensor:
        return 1.0 - cross.square().sum(dim=(-2, -1))

    return _blocked_cross_products(features, pair_distance, block_size, progress, "CKA")


# ---------------------------------------------------------------------------------------------
# Procrustes shape distance


def procrustes_distance_matrix(
    states: Sequence,
    n_components: int | None = None,
    *,
    kind: Literal["angular", "euclidean"] = "angular",
    block_size: int | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Procrustes shape distance (Williams et al. 2021) between every pair, shape [N, N].

    Each network: centre, optionally project onto its top ``n_components`` principal components
    (PC scores U_k S_k, a common dimension), normalise to ||X||_F = 1, zero-pad to a common width.
    Over orthogonal Q, max_Q tr(X^T Y Q) = ||X^T Y||_* (nuclear norm), hence

        angular:   theta(X, Y) = arccos(||X^T Y||_*)             in [0, pi/2]
        euclidean: d(X, Y) = min_Q ||X - Y Q||_F = sqrt(2 - 2 ||X^T Y||_*).

    Both are metrics (symmetric, triangle inequality) on shapes modulo rotation/reflection,
    translation and (after normalisation) scale. Without ``n_components`` the full centred states
    are used, replaced losslessly by their PC scores (same nuclear norms). Diagonal is 0.
    """
    if kind not in ("angular", "euclidean"):
        raise ValueError(f"kind must be 'angular' or 'euclidean', got {kind!r}")
    if n_components is not None and (
        isinstance(n_components, bool)
        or not isinstance(n_components, (int, np.integer))
        or n_components < 1
    ):
        raise ValueError(
            f"n_components for Procrustes must be None or an int >= 1, got {n_components!r}"
        )
    device = _device_of(states)
    normalised = []
    for x in states:
        basis, s = _principal_scores(x, device, n_components, None)
        scores = basis * s  # [samples, k] PC scores: same shape up to rotation
        normalised.append(scores / torch.linalg.matrix_norm(scores))
    n_samples = _check_equal_samples(normalised)
    features = _stack_padded(normalised, n_samples, device)
    del normalised

    def pair_distance(cross: torch.Tensor, rows: slice, cols: slice) -> torch.Tensor:
        nuclear = torch.linalg.svdvals(cross).sum(-1).clamp(0.0, 1.0)
        if kind == "angular":
            return torch.arccos(nuclear)
        return (2.0 - 2.0 * nuclear).clamp_min(0.0).sqrt()

    return _blocked_cross_products(
        features, pair_distance, block_size, progress, f"Procrustes ({kind})"
    )
