"""Connectivity and dynamics of a network: Lyapunov spectra, dimensionality, effective rank.

Beyond the paper: does the structure of the recurrent weights (connectivity) predict the dynamics
the trained network runs? Three families of numbers, all batched over a leading network axis:

- dynamics: the Lyapunov spectrum of the (input-driven) map ``h_{t+1} = F(h_t, x_t)`` by the QR
  (Benettin) method, and the participation ratio of the probe hidden states;
- connectivity: the entropy effective rank, participation rank (the random-mode model's effective
  rank, :mod:`rnnuniv.randommode`), numerical rank, gain and spectral radius of ``w_rec``.

"Connectivity" of a gated cell
------------------------------
``w_rec`` is ``[n, G n]``: ``G`` blocks of ``n x n`` (see :mod:`rnnuniv.cells`). Two views:

- the whole ``w_rec`` (``[n, G n]``, rank at most ``n``): every way ``h`` feeds back, gates included;
- the candidate block ``U_c`` (``[n, n]``): the recurrent weights inside the non-gate nonlinearity
  ``phi``, which carry the state-to-state drive (vanilla: all of ``w_rec``; UGRNN: block 1 of 2,
  ``c``; GRU: block 2 of 3, ``c``; LSTM: block 2 of 4, ``g``). The spectral radius is defined for
  this square block only.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
from torch.func import jvp, vmap

from .cells import N_BLOCKS

Step = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: Index of the candidate (non-gate) block of ``w_rec`` per architecture.
CANDIDATE_BLOCK = {"vanilla": 0, "ugrnn": 1, "gru": 2, "lstm": 2}

#: Keys of :func:`connectivity_metrics`, in order.
CONNECTIVITY_METRICS = (
    "effective_rank_w_rec",
    "numerical_rank_w_rec",
    "effective_rank_candidate",
    "numerical_rank_candidate",
    "spectral_radius_candidate",
    "participation_rank_w_rec",
    "participation_rank_candidate",
    "gain_candidate",
)


# -- Lyapunov spectrum ------------------------------------------------------------------------
def lyapunov_spectrum(
    step: Step,
    h0: torch.Tensor,
    inputs: torch.Tensor,
    n_exponents: int | None = None,
    n_steps: int | None = None,
    n_warmup: int = 0,
    qr_every: int = 1,
    seed: int = 0,
    jacobian_times: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Lyapunov exponents of ``h_{t+1} = step(h_t, x_t)`` by the QR (Benettin) method.

    With ``J_t = d step / d h (h_t, x_t)`` and an orthonormal frame ``Q_0`` (``[n, k]``, random,
    seeded), every step propagates ``Z = J_t Q_t`` and, every ``qr_every`` steps, re-orthonormalises
    ``Z = Q_{t+1} R_t``. After the first ``n_warmup`` steps (which align the trajectory and the
    frame with the attractor and the Lyapunov vectors and are not counted),

        lambda_i = (1 / (T - n_warmup)) * sum_{t >= n_warmup} log |R_t[i, i]|,   T = n_steps,

    natural log per step, sorted descending. ``J_t Q`` is ``jacobian_times(h_t, x_t, Q)`` when
    given (a closed form, such as a cell's analytic Jacobian); otherwise a batched forward-mode
    product (``torch.func.jvp`` vectorised over the ``k`` columns with ``vmap``), which costs the
    dynamics stage several times more in functorch overhead on 64-unit networks.

    step: ``step(h, x) -> h'`` keeping the shape of ``h``. Leading axes of ``h`` are independent
        trajectories (row ``b`` of ``h'`` depends only on row ``b`` of ``h``), as for
        ``rnnuniv.cells.step_function`` with unbatched (state ``[K, n]``) or stacked (state
        ``[N, K, n]``) parameters.
    h0: initial states ``[..., n]`` (e.g. ``[n]``, ``[K, n]`` or ``[N, K, n]``); its dtype is used
        throughout (use float64 for precise exponents).
    inputs: a sequence with time on axis -2, ``[T, m]`` (shared by every trajectory) or
        ``[..., T, m]`` such as ``[K, T, m]``; step ``t`` receives ``inputs[..., t, :]``. A constant
        input ``[m]`` needs ``n_steps``.
    n_exponents: ``k <= n`` leading exponents (default all ``n``).
    n_steps: steps to run; default the length of ``inputs`` (may be shorter, never longer).
    n_warmup: leading steps not counted, ``0 <= n_warmup < n_steps``.
    qr_every: steps between re-orthonormalisations (1 is safest; larger is cheaper but the frame
        may lose rank when exponents differ widely).
    seed: seed of the random initial frame.
    jacobian_times: ``(h [..., n], x, Q [..., n, k]) -> J_t Q [..., n, k]``, optional.

    Returns exponents ``[..., k]`` (leading axes of ``h0``), descending. An exponent is ``-inf``
    where the Jacobians are exactly singular along a direction (e.g. dead ReLU units).
    """
    n = h0.shape[-1]
    k = n if n_exponents is None else int(n_exponents)
    if not 1 <= k <= n:
        raise ValueError(f"n_exponents={n_exponents} must be between 1 and the state size {n}")
    if qr_every < 1:
        raise ValueError(f"qr_every={qr_every} must be at least 1")
    inputs = inputs.to(h0.device, h0.dtype)
    if inputs.dim() == 1:
        if n_steps is None:
            raise ValueError("a constant input [m] needs n_steps")
        total = int(n_steps)
    else:
        length = inputs.shape[-2]
        total = length if n_steps is None else int(n_steps)
        if total > length:
            raise ValueError(f"n_steps={n_steps} exceeds the {length} input steps")
    if not 0 <= n_warmup < total:
        raise ValueError(f"n_warmup={n_warmup} must be in [0, n_steps={total})")

    def input_at(t: int) -> torch.Tensor:
        return inputs if inputs.dim() == 1 else inputs[..., t, :]

    gen = torch.Generator().manual_seed(int(seed))
    frame0, _ = torch.linalg.qr(torch.randn(n, k, generator=gen, dtype=torch.float64))
    frame = frame0.to(h0.device, h0.dtype).expand(*h0.shape[:-1], n, k).clone()  # [..., n, k]
    log_growth = h0.new_zeros(*h0.shape[:-1], k)
    state = h0
    since_qr = 0
    for t in range(total):
        x = input_at(t)
        # no_grad: parameters that require grad must not grow an autograd graph over T steps
        # (forward-mode jvp is unaffected by it)
        with torch.no_grad():
            if jacobian_times is None:
                frame = _jacobian_times(step, state, x, frame)  # J_t Q: [..., n, k]
            else:
                frame = jacobian_times(state, x, frame)
            state = step(state, x)
        since_qr += 1
        # the frame is re-orthonormalised at the end of the warm-up so no window straddles it
        if since_qr == qr_every or t + 1 == n_warmup or t + 1 == total:
            frame, upper = torch.linalg.qr(frame)
            if t >= n_warmup:
                log_growth = log_growth + torch.diagonal(upper, dim1=-2, dim2=-1).abs().log()
            since_qr = 0
    exponents = log_growth / (total - n_warmup)
    return exponents.sort(dim=-1, descending=True).values


def _jacobian_times(step: Step, state: torch.Tensor, x: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
    """``(d step / d h)(state, x) @ frame`` for ``frame`` ``[..., n, k]``: a jvp vmapped over columns."""

    def tangent(column: torch.Tensor) -> torch.Tensor:
        return jvp(lambda s: step(s, x), (state,), (column,))[1]

    return vmap(tangent, in_dims=-1, out_dims=-1)(frame)


def network_lyapunov_spectra(
    cell,
    params: dict[str, torch.Tensor],
    inputs: torch.Tensor,
    n_exponents: int | None = None,
    n_warmup: int = 0,
    qr_every: int = 1,
    seed: int = 0,
) -> torch.Tensor:
    """Lyapunov spectra of every network of a stacked population, driven by shared inputs.

    params: stacked parameters (leading axis ``N``); inputs: ``[K, T, m]`` probe trials, each run
    from the zero state (as the probe set is). The state is the cell's full state (LSTM:
    ``[h, c]``, size ``2 n``). Returns exponents ``[N, K, k]`` per network and trial, descending.
    """
    n_networks = params["w_rec"].shape[0]
    size = cell.state_size(params["w_rec"].shape[-2])
    h0 = params["w_rec"].new_zeros(n_networks, inputs.shape[0], size)

    def step(state: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return cell.step(params, state, x)

    def jacobian_times(state: torch.Tensor, x: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
        return cell.jacobian(params, state, x)[0] @ frame

    return lyapunov_spectrum(
        step, h0, inputs, n_exponents=n_exponents, n_warmup=n_warmup, qr_every=qr_every, seed=seed,
        jacobian_times=jacobian_times,
    )


# -- dimensionality of states -----------------------------------------------------------------
def participation_ratio(
    states: torch.Tensor | np.ndarray, batch_dims: int = 0, n_blocks: int | None = None
) -> torch.Tensor:
    """Participation ratio ``PR = (sum_i lambda_i)^2 / sum_i lambda_i^2`` of the states' covariance.

    ``lambda_i`` are the eigenvalues of the covariance ``C`` of the samples, so
    ``PR = tr(C)^2 / ||C||_F^2`` (no eigendecomposition needed); ``1 <= PR <= units``.

    The naive estimator (``n_blocks=None``) plugs in the sample covariance. It is biased upward in
    the denominator, hence downward in PR: for ``T`` white-noise samples of ``N`` units,
    ``E ||C_hat||_F^2 ~ N (1 + N / T)``, so ``PR ~ N / (1 + N / T)``. With ``n_blocks = B`` the
    samples are split into ``B`` contiguous blocks with covariances ``C_a`` (each about its own
    mean) and the cross-block estimator is

        PR_x = tr(mean_a C_a)^2 / mean_{a != b} tr(C_a C_b),

    whose denominator is unbiased for ``tr(C^2)`` because independent blocks share no sampling
    noise. With ``S = sum_a C_a``: ``sum_{a != b} tr(C_a C_b) = ||S||_F^2 - sum_a ||C_a||_F^2``.
    ``PR_x`` can exceed ``units`` by sampling noise, and is NaN when the denominator is not
    positive.

    states: ``[*batch, *samples, units]``: the first ``batch_dims`` axes index separate sets (e.g.
    networks), every other axis but the last is flattened into samples (in C order, so blocks of
    ``[K, T, n]`` states are runs of whole trials when ``B`` divides ``K``). Returns ``[*batch]``
    (a 0-d tensor for ``batch_dims=0``), float64; NaN for sets without variance.
    """
    x = torch.as_tensor(states).to(torch.float64)
    batch = x.shape[:batch_dims]
    x = x.reshape(*batch, -1, x.shape[-1])  # [*batch, samples, units]
    if n_blocks is None:
        cov = _covariance(x)  # [*batch, units, units]
        trace = torch.diagonal(cov, dim1=-2, dim2=-1).sum(-1)
        frobenius_sq = cov.pow(2).sum((-2, -1))
        return torch.where(frobenius_sq > 0, trace.pow(2) / frobenius_sq, torch.nan)
    n_blocks = int(n_blocks)
    if n_blocks < 2 or 2 * n_blocks > x.shape[-2]:
        raise ValueError(
            f"n_blocks={n_blocks} must be at least 2 and leave 2 samples per block ({x.shape[-2]} samples)"
        )
    covs = torch.stack([_covariance(b) for b in x.tensor_split(n_blocks, dim=-2)])  # [B, *batch, u, u]
    total = covs.sum(0)
    trace = torch.diagonal(total, dim1=-2, dim2=-1).sum(-1) / n_blocks
    cross = (total.pow(2).sum((-2, -1)) - covs.pow(2).sum((-2, -1)).sum(0)) / (n_blocks * (n_blocks - 1))
    return torch.where(cross > 0, trace.pow(2) / cross, torch.nan)


def _covariance(x: torch.Tensor) -> torch.Tensor:
    """Sample covariance ``[..., units, units]`` of ``x`` ``[..., samples, units]`` (``1 / (T - 1)``)."""
    x = x - x.mean(dim=-2, keepdim=True)
    return x.transpose(-1, -2) @ x / max(x.shape[-2] - 1, 1)


# -- connectivity -----------------------------------------------------------------------------
def effective_rank(matrix: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Entropy effective rank (Roy & Vetterli 2007) ``exp(H(p))`` of ``matrix`` ``[..., r, c]``.

    ``p_i = s_i / sum_j s_j`` over the singular values ``s``, ``H(p) = -sum_i p_i log p_i`` (with
    ``0 log 0 = 0``). Equals ``min(r, c)`` for a matrix with equal singular values and 1 for a
    rank-1 matrix. Returns ``[...]``, float64; NaN for a zero matrix.
    """
    s = torch.linalg.svdvals(torch.as_tensor(matrix).to(torch.float64))
    p = s / s.sum(-1, keepdim=True)
    entropy = -torch.where(p > 0, p * p.log(), torch.zeros_like(p)).sum(-1)
    return entropy.exp()


def participation_rank(matrix: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Participation ratio of the squared singular values of ``matrix`` ``[..., r, c]``.

    ``PR_D = (sum_i s_i^2)^2 / sum_i s_i^4 = ||J||_F^4 / ||J^T J||_F^2``: the effective rank of the
    random-mode model (Clark et al. 2024), which with the coupling variance fixes the dimension
    of the activity. ``min(r, c)`` for equal singular values (an orthogonal matrix: ``n``), ``k``
    for ``k`` equal non-zero ones. Returns ``[...]``, float64; NaN for a zero matrix.
    """
    s2 = torch.linalg.svdvals(torch.as_tensor(matrix).to(torch.float64)).pow(2)
    fourth = s2.pow(2).sum(-1)
    return torch.where(fourth > 0, s2.sum(-1).pow(2) / fourth, torch.nan)


def coupling_gain(matrix: torch.Tensor | np.ndarray) -> torch.Tensor:
    """``g = sqrt(r * mean_ij J_ij^2) = ||J||_F / sqrt(c)`` of ``J`` ``[..., r, c]``: the gain of an iid
    coupling of variance ``g^2 / c`` with the same Frobenius norm; ``[...]``, float64."""
    matrix = torch.as_tensor(matrix).to(torch.float64)
    return matrix.pow(2).sum((-2, -1)).div(matrix.shape[-1]).sqrt()


def numerical_rank(matrix: torch.Tensor | np.ndarray, rtol: float | None = None) -> torch.Tensor:
    """Singular values above ``rtol * s_max`` of ``matrix`` ``[..., r, c]``; returns ``[...]`` int64.

    ``rtol`` defaults to ``max(r, c) * eps`` of the matrix's own dtype (the LAPACK/NumPy rule), so
    float32 weights are judged at float32 precision.
    """
    matrix = torch.as_tensor(matrix)
    if rtol is None:
        rtol = max(matrix.shape[-2:]) * torch.finfo(matrix.dtype).eps
    s = torch.linalg.svdvals(matrix.to(torch.float64))
    return (s > rtol * s[..., :1]).sum(-1)


def spectral_radius(matrix: torch.Tensor | np.ndarray) -> torch.Tensor:
    """``max_i |mu_i|`` over the eigenvalues ``mu`` of square ``matrix`` ``[..., n, n]``; ``[...]``."""
    return torch.linalg.eigvals(torch.as_tensor(matrix).to(torch.float64)).abs().amax(-1)


def candidate_block(w_rec: torch.Tensor, architecture: str) -> torch.Tensor:
    """The ``[..., n, n]`` block of ``w_rec`` ``[..., n, G n]`` inside the candidate nonlinearity."""
    if architecture not in CANDIDATE_BLOCK:
        raise ValueError(f"unknown architecture {architecture!r}; valid: {', '.join(CANDIDATE_BLOCK)}")
    n = w_rec.shape[-2]
    if w_rec.shape[-1] != N_BLOCKS[architecture] * n:
        raise ValueError(
            f"w_rec {tuple(w_rec.shape)} is not [n, {N_BLOCKS[architecture]} n] ({architecture})"
        )
    index = CANDIDATE_BLOCK[architecture]
    return w_rec[..., index * n : (index + 1) * n]


def connectivity_metrics(w_rec: torch.Tensor, architecture: str) -> dict[str, torch.Tensor]:
    """Connectivity numbers of (stacked) recurrent weights ``w_rec`` ``[..., n, G n]``.

    Returns tensors ``[...]``: ``effective_rank_w_rec``, ``numerical_rank_w_rec`` (whole matrix),
    ``effective_rank_candidate``, ``numerical_rank_candidate``, ``spectral_radius_candidate``
    (candidate block, see the module docstring), ``participation_rank_w_rec``,
    ``participation_rank_candidate`` (:func:`participation_rank`) and ``gain_candidate``
    (:func:`coupling_gain` of the candidate block).
    """
    block = candidate_block(w_rec, architecture)
    return {
        "effective_rank_w_rec": effective_rank(w_rec),
        "numerical_rank_w_rec": numerical_rank(w_rec),
        "effective_rank_candidate": effective_rank(block),
        "numerical_rank_candidate": numerical_rank(block),
        "spectral_radius_candidate": spectral_radius(block),
        "participation_rank_w_rec": participation_rank(w_rec),
        "participation_rank_candidate": participation_rank(block),
        "gain_candidate": coupling_gain(block),
    }
