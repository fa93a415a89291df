"""DSA (Ostrow et al. 2023), eigenvalue variant: per-network delay-embedded DMD, pairwise Wasserstein.

Per network (once): the delay-embedded DMD operator A_i (:func:`fit_delay_dmd`) and its eigenvalues
(:func:`dsa_eigenvalues`). Pairwise: the p-Wasserstein distance between eigenvalue sets
(:func:`wasserstein_eigenvalue_matrix`), which needs nothing but the eigenvalues.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from rnnuniv.similarity.metrics import _block_ranges, _device_of, _numerical_rank, _resolve_block_size

def delay_embed(trajectories, n_delays: int) -> torch.Tensor:
    """Hankel (delay) embedding: [trials, time, units] -> [trials, time - d + 1, d * units].

    Row t of a trial is h_t = [x_{t+d-1}; x_{t+d-2}; ...; x_t] (newest first), d = ``n_delays``.
    """
    x = torch.as_tensor(trajectories)
    if x.ndim != 3:
        raise ValueError(f"trajectories must be [trials, time, units], got shape {tuple(x.shape)}")
    if isinstance(n_delays, bool) or int(n_delays) != n_delays or not 1 <= n_delays <= x.shape[1]:
        raise ValueError(f"n_delays must be an int in [1, time={x.shape[1]}], got {n_delays!r}")
    windows = x.unfold(1, int(n_delays), 1)  # [trials, time-d+1, units, d], window oldest first
    return windows.flip(-1).transpose(-2, -1).reshape(x.shape[0], windows.shape[1], -1)


def fit_delay_dmd(trajectories, n_delays: int, rank: int) -> torch.Tensor:
    """Delay-embedded DMD of one network (HAVOK-style, as in DSA): the r x r linear operator A.

    H [trials * (time - d + 1), d * units] stacks the delay vectors h_t (:func:`delay_embed`).
    With its SVD H = U S V^T, reduced coordinates z_t = V_r^T h_t (top ``rank`` directions), and
    A is the least-squares one-step map within each trial,

        A = argmin_A sum_t ||z_{t+1} - A z_t||^2.

    Changing coordinates of the states by an invertible map changes A only by a similarity
    transform, so its eigenvalues are coordinate-free. Returns float64 [rank, rank].
    """
    hankel = delay_embed(torch.as_tensor(trajectories).to(torch.float64), n_delays)
    n_trials, n_steps, width = hankel.shape
    if isinstance(rank, bool) or int(rank) != rank or not 1 <= rank <= width:
        raise ValueError(f"rank must be an int in [1, n_delays * units = {width}], got {rank!r}")
    if n_steps < 2:
        raise ValueError("need at least n_delays + 1 time steps per trial to fit a one-step map")
    # V and S^2 from the eigendecomposition of the (d n) x (d n) Gram matrix H^T H: a quarter of
    # the cost of the SVD of the tall H. Its rounding (~ d n eps S_1^2) only blurs directions far
    # below the top ``rank``, so the rank test uses the Gram's own tolerance, d n eps S_1^2.
    flat = hankel.reshape(-1, width)
    squared, vectors = torch.linalg.eigh(flat.T @ flat)  # ascending
    squared, vectors = squared.flip(0), vectors.flip(1)
    if _numerical_rank(squared, (width, width), None) < rank:
        warnings.warn(
            f"DSA rank {rank} exceeds the numerical rank of the Hankel matrix; the extra directions are noise",
            RuntimeWarning,
            stacklevel=2,
        )
    z = hankel @ vectors[:, :rank]  # [trials, steps, r]
    before = z[:, :-1].reshape(-1, rank)
    after = z[:, 1:].reshape(-1, rank)
    return torch.linalg.lstsq(before, after).solution.T  # after ~ before @ A^T


def dsa_distance_matrix(
    trajectories: Sequence,
    n_delays: int = 10,
    rank: int = 10,
    *,
    p: float = 1.0,
    block_size: int | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Dynamical similarity (DSA, Ostrow et al. 2023; eigenvalue/Wasserstein variant), shape [N, N].

    trajectories: N arrays [trials, time, units_i]. Per network, A_i = :func:`fit_delay_dmd` and
    its eigenvalues lambda_i (r complex numbers). Between two networks, the p-Wasserstein distance
    between the uniform measures on the eigenvalue sets in the complex plane,

        W_p(lambda, mu) = ( min_{permutation pi} (1/r) sum_k |lambda_k - mu_pi(k)|^p )^{1/p},

    solved exactly by linear assignment (scipy.optimize.linear_sum_assignment). The DSA package's
    ``score_method="wasserstein"`` reports W_2^2. Cost matrices are built for blocks of pairs at
    once; the assignment itself is the one per-pair step. Diagonal is 0.
    """
    if not p >= 1.0:
        raise ValueError(f"p must be >= 1, got {p!r}")
    device = _device_of(trajectories)
    operators = [fit_delay_dmd(torch.as_tensor(t).to(device), n_delays, rank) for t in trajectories]
    if len(operators) < 2:
        return np.zeros((len(operators), len(operators)), dtype=np.float64)
    eigenvalues = torch.linalg.eigvals(torch.stack(operators))  # [N, r] complex
    return wasserstein_eigenvalue_matrix(eigenvalues, p=p, block_size=block_size, progress=progress)


def dsa_eigenvalues(trajectories, n_delays: int, rank: int) -> np.ndarray:
    """Per-network part of DSA: the r eigenvalues of :func:`fit_delay_dmd`, complex128 [r]."""
    operator = fit_delay_dmd(torch.as_tensor(trajectories), n_delays, rank)
    return torch.linalg.eigvals(operator[None])[0].cpu().numpy().astype(np.complex128)


def wasserstein_eigenvalue_matrix(
    eigenvalues, *, p: float = 1.0, block_size: int | None = None, progress: bool = False
) -> np.ndarray:
    """Pairwise part of DSA: W_p between the eigenvalue sets of every pair, shape [N, N].

    eigenvalues: [N, r] complex (one row per network). Cost matrices |lambda_k - mu_l|^p are built
    for blocks of pairs at once; each pair's optimal assignment is solved exactly
    (scipy.optimize.linear_sum_assignment), W_p = (mean matched cost)^{1/p}. Diagonal is 0.
    """
    from scipy.optimize import linear_sum_assignment  # here: per-network features never need it

    if not p >= 1.0:
        raise ValueError(f"p must be >= 1, got {p!r}")
    eigenvalues = torch.as_tensor(eigenvalues)
    n_networks = eigenvalues.shape[0]
    distance = np.zeros((n_networks, n_networks), dtype=np.float64)
    if n_networks < 2:
        return distance
    rank = eigenvalues.shape[1]
    block = _resolve_block_size(block_size, rank)
    for i0, i1, j0, j1 in tqdm(
        _block_ranges(n_networks, block), desc="DSA", unit="block", disable=not progress
    ):
        gaps = (
            eigenvalues[i0:i1, None, :, None] - eigenvalues[None, j0:j1, None, :]
        ).abs() ** p  # [|I|, |J|, r, r]
        gi, gj = torch.meshgrid(torch.arange(i0, i1), torch.arange(j0, j1), indexing="ij")
        upper = (gj > gi).reshape(-1)
        costs = gaps.reshape(-1, rank, rank)[upper.to(gaps.device)].cpu().numpy()
        values = np.empty(len(costs))
        for k, cost in enumerate(costs):
            matched_rows, matched_cols = linear_sum_assignment(cost)
            values[k] = cost[matched_rows, matched_cols].mean()
        distance[gi.reshape(-1)[upper].numpy(), gj.reshape(-1)[upper].numpy()] = values ** (1.0 / p)
    return distance + distance.T
