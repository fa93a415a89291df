"""The finder: :func:`find_fixed_points` runs the search (``optimise``), clean-up and
de-duplication (:func:`_select_points`), linearisation (``linearise``) and manifold labelling
(``manifolds``) for one network or a batch of networks.
"""

from __future__ import annotations

from functools import partial
from typing import Sequence

import numpy as np
import torch
from scipy.spatial.distance import cdist

from .linearise import Jacobian, Step, _eigen, _jacobians
from .manifolds import _label_manifolds, _length_scales
from .optimise import _adam, _pad_rows, _refine, _speed, _take
from .results import FixedPoints


def find_fixed_points(
    step: Step,
    x: torch.Tensor | None,
    h0: torch.Tensor,
    *,
    adam_iters: int = 200,
    adam_lr: float = 0.05,
    adam_lr_final: float = 1e-3,
    adam_eps: float = 1e-8,
    newton_iters: int = 40,
    newton_q_stop: float = 1e-26,
    newton_min_decrease: float = 0.5,
    tol_q: float = 1e-12,
    max_q_slow: float | None = 1e-6,
    tol_unique: float = 1e-3,
    outlier_distance_scale: float | None = 10.0,
    marginal_tol: float = 1e-3,
    manifold_length_scale: float | Sequence[float] | None = None,
    manifold_length_fraction: float = 0.25,
    min_manifold_points: int = 5,
    manifold_variance: float = 0.9,
    unstable_margin: float = 1e-9,
    jacobian_batch: int = 4096,
    jacobian: Jacobian | None = None,
    n_settled: int = 0,
    dtype: torch.dtype = torch.float64,
) -> FixedPoints | list[FixedPoints]:
    """Fixed and slow points of ``h' = step(h, x)`` at a constant input, linearised and clustered.

    step: the one-step map. For one network ``step(h [K, n], x [K, m]) -> [K, n]``; for ``N``
        networks at once (``h0`` of shape ``[N, K, n]``) ``step(h [N, K, n], x [N, K, m]) ->
        [N, K, n]``. Rows must evolve independently (true of every RNN step). It is always called
        with ``x`` expanded to one row per state, in ``dtype`` (so its weights must be float64
        too, e.g. ``{k: v.double() for k, v in params.items()}``).
    x: the constant input: ``[m]`` shared by all, ``[K, m]`` one per initial state, or with a network
        axis ``[N, m]`` / ``[N, K, m]``; ``None`` for an autonomous map (then ``m = 0``).
    h0: initial states ``[K, n]`` (one network) or ``[N, K, n]`` (``N`` networks), e.g. from
        :func:`sample_initial_states`.

    Options (defaults in brackets):
        adam_iters [200]: Adam iterations on ``sum_k q(h_k)`` before refinement (0 skips Adam);
            the best state seen per point is kept.
        adam_lr [0.05], adam_lr_final [1e-3]: learning rate, decayed geometrically from the first to
            the second over the Adam iterations (a fixed schedule, so points stay independent).
        adam_eps [1e-8]: Adam's epsilon.
        newton_iters [40]: maximum damped-Newton iterations; a point stops refining once
            ``q < newton_q_stop`` or once the best candidate step does not lower its ``q`` below
            ``newton_min_decrease * q`` (Newton converges quadratically near a true fixed point;
            slower progress means a slow point or a local minimum of q).
        newton_q_stop [1e-26]: q at which a point counts as converged to float64 precision.
        newton_min_decrease [0.5]: see above.
        tol_q [1e-12]: points with ``q < tol_q`` are fixed points (``is_fixed``), others slow points.
        max_q_slow [1e-6]: slow points with larger ``q`` are discarded (``None`` keeps them all).
        tol_unique [1e-3]: two points whose ``[h, x]`` are closer than this (2-norm) are one point;
            the lower-``q`` one is kept (FixedPointFinder's default tolerance).
        outlier_distance_scale [10.0]: drop points whose distance to the centroid of the initial
            states, divided by the mean distance of the initial states to that centroid, is at least
            this (FixedPointFinder's rule and default); ``None`` keeps all.
        marginal_tol [1e-3]: a point is marginal if its leading eigenvalue has
            ``| |lambda_1| - 1 | < marginal_tol``; also the tolerance of a manifold's ``dimension``.
        manifold_length_scale [None]: single-linkage distance joining marginal points into a
            manifold; a float, or one per network. Pass ``0.25 * rms_spread(probe_trajectories)``.
            ``None`` uses ``manifold_length_fraction * rms_spread(h0)`` (h0 includes its noise).
            The sparsely sampled ends of a continuum can split off as small clusters or isolated
            marginal points when the scale is below their spacing (0.1 was too small in tests).
        manifold_length_fraction [0.25]: see above.
        min_manifold_points [5]: smaller connected groups of marginal points stay isolated.
        manifold_variance [0.9]: variance fraction defining a manifold's ``pca_dimension``.
        unstable_margin [1e-9]: ``n_unstable`` counts ``|lambda| > 1 + unstable_margin``, so that an
            eigenvalue of exactly 1 is not called unstable because of round-off.
        jacobian_batch [4096]: states per Jacobian evaluation (bounds memory: ``n`` vmapped reverse
            passes over this many states).
        jacobian [None]: ``jacobian(h, x) -> (dF/dh [..., n, n], dF/dx [..., n, m])``, batched like
            ``step`` (e.g. ``lambda h, x: cell.jacobian(params, h, x)``, an analytic formula, ``n``
            times cheaper than autodiff). ``None`` differentiates ``step`` with ``torch.func.jacrev``.
        n_settled [0]: the last ``n_settled`` initial states are already close to fixed points
            (e.g. states settled by the network's own dynamics, :func:`shard_fixed_points`), so
            they skip Adam and go straight to the Newton refinement.
        dtype [float64]: arithmetic precision of the whole search.

    Returns a :class:`FixedPoints` for one network, or a list of ``N`` of them.
    """
    if h0.dim() not in (2, 3):
        raise ValueError(f"h0 must be [K, n] or [N, K, n], got shape {tuple(h0.shape)}")
    if tol_unique <= 0 or tol_q <= 0:
        raise ValueError("tol_unique and tol_q must be positive")
    batched = h0.dim() == 3
    states0 = (h0 if batched else h0.unsqueeze(0)).to(dtype)  # [N, K, n]
    n_networks, n_inits, n = states0.shape
    inputs = _expand_inputs(x, n_networks, n_inits, batched, states0)  # [N, K, m]

    if batched:
        net_step, net_jacobian = step, jacobian
    else:

        def net_step(h: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
            return step(h[0], u[0]).unsqueeze(0)

        def net_jacobian(h: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return tuple(part.unsqueeze(0) for part in jacobian(h[0], u[0]))

    _check_step(net_step, states0[:, :1], inputs[:, :1], dtype)

    if not 0 <= n_settled <= n_inits:
        raise ValueError(f"n_settled must be in [0, {n_inits}], got {n_settled}")
    searched = n_inits - n_settled
    h = _adam(net_step, states0[:, :searched], inputs[:, :searched], adam_iters, adam_lr, adam_lr_final, adam_eps)
    h = torch.cat([h, states0[:, searched:]], 1) if n_settled else h
    jacobians = partial(_jacobians, net_step, batch=jacobian_batch, analytic=net_jacobian if jacobian else None)
    h = _refine(
        net_step, jacobians, h, inputs, newton_iters, newton_q_stop, newton_min_decrease, tol_unique / 2
    )
    q = _speed(net_step(h, inputs), h)  # [N, K]

    keep = [
        _select_points(
            states0[i], h[i], inputs[i], q[i], tol_unique, outlier_distance_scale, max_q_slow
        )
        for i in range(n_networks)
    ]  # per network: indices into K, sorted by q
    sizes = [int(k.numel()) for k in keep]
    # pad every network's survivors to one width so the Jacobians are one batched call
    padded, kept = _pad_rows(keep, h.device)
    points, point_inputs = _take(h, padded), _take(inputs, padded)
    jac, input_jac = jacobians(points, point_inputs, with_inputs=True)
    eig = _eigen(jac[kept])  # the kept points only, not the padding
    eig = {k: v.split(sizes) for k, v in eig.items()}

    scales = _length_scales(
        manifold_length_scale, manifold_length_fraction, states0, n_networks
    )
    results = []
    for i in range(n_networks):
        p = sizes[i]
        eigenvalues = eig["values"][i]
        result = FixedPoints(
            points=points[i, :p],
            inputs=point_inputs[i, :p],
            q=q[i, keep[i]],
            is_fixed=q[i, keep[i]] < tol_q,
            jacobians=jac[i, :p],
            input_jacobians=input_jac[i, :p],
            eigenvalues=eigenvalues,
            right_eigenvectors=eig["right"][i],
            left_eigenvectors=eig["left"][i],
            n_unstable=(eigenvalues.abs() > 1.0 + unstable_margin).sum(-1),
            cluster=torch.full((p,), -1, dtype=torch.long, device=h.device),
            initial_index=keep[i],
            length_scale=scales[i],
            tol_q=tol_q,
            n_initial=n_inits,
        )
        _label_manifolds(result, marginal_tol, scales[i], min_manifold_points, manifold_variance)
        results.append(result)
    return results if batched else results[0]



def _expand_inputs(
    x: torch.Tensor | None, n_networks: int, n_inits: int, batched: bool, like: torch.Tensor
) -> torch.Tensor:
    """Inputs as ``[N, K, m]`` (contiguous, one row per state) in the dtype/device of ``like``."""
    if x is None:
        return like.new_zeros(n_networks, n_inits, 0)
    x = x.to(dtype=like.dtype, device=like.device)
    if x.dim() == 1:  # [m]
        out = x.expand(n_networks, n_inits, -1)
    elif x.dim() == 2 and batched:  # [N, m]
        if x.shape[0] != n_networks:
            raise ValueError(f"x [N, m] has N={x.shape[0]}, h0 has N={n_networks}")
        out = x.unsqueeze(1).expand(-1, n_inits, -1)
    elif x.dim() == 2:  # [K, m]
        if x.shape[0] != n_inits:
            raise ValueError(f"x [K, m] has K={x.shape[0]}, h0 has K={n_inits}")
        out = x.unsqueeze(0)
    elif x.dim() == 3 and batched:  # [N, K, m]
        if x.shape[:2] != (n_networks, n_inits):
            raise ValueError(f"x [N, K, m] has shape {tuple(x.shape)}, h0 has N, K = {n_networks}, {n_inits}")
        out = x
    else:
        raise ValueError(f"x of shape {tuple(x.shape)} does not fit h0")
    return out.contiguous()


def _check_step(net_step: Step, h: torch.Tensor, x: torch.Tensor, dtype: torch.dtype) -> None:
    try:
        out = net_step(h, x)
    except RuntimeError as err:
        raise TypeError(
            f"step failed on {dtype} states; its weights must be {dtype} too: {err}"
        ) from err
    if out.shape != h.shape or out.dtype != dtype:
        raise TypeError(
            f"step must map states {tuple(h.shape)} ({dtype}) to the same shape and dtype, "
            f"got {tuple(out.shape)} ({out.dtype})"
        )



def _select_points(
    h0: torch.Tensor,
    h: torch.Tensor,
    x: torch.Tensor,
    q: torch.Tensor,
    tol_unique: float,
    outlier_scale: float | None,
    max_q_slow: float | None,
) -> torch.Tensor:
    """Indices (sorted by increasing q) of the unique, non-outlying, slow-enough points of one network.

    De-duplication is FixedPointFinder's greedy rule made parallel: a point is kept if no kept
    point of lower q lies within ``tol_unique``. Each round keeps every candidate that is the
    lowest-q candidate in its neighbourhood (it would be kept by the sequential rule too) and
    removes their neighbours; rounds repeat until no candidate is left, which gives exactly the
    sequential result.
    """
    ok = torch.isfinite(q) & torch.isfinite(h).all(-1)
    if outlier_scale is not None:
        centroid = h0.mean(0)
        mean_dist = (h0 - centroid).norm(dim=-1).mean().clamp_min(1e-300)
        ok &= (h - centroid).norm(dim=-1) / mean_dist < outlier_scale
    if max_q_slow is not None:
        ok &= q <= max_q_slow
    index = ok.nonzero().squeeze(1)
    index = index[torch.argsort(q[index], stable=True)]
    if index.numel() == 0:
        return index
    coords = torch.cat([h[index], x[index]], -1).cpu().numpy()
    near = cdist(coords, coords) < tol_unique  # [P, P], sorted by q: j < i means lower q
    lower = np.tril(near, -1)  # lower[i, j]: j has lower q and is within tol of i
    candidate = np.ones(len(index), dtype=bool)
    kept = np.zeros(len(index), dtype=bool)
    while candidate.any():
        winners = candidate & ~(lower & candidate[None, :]).any(1)
        kept |= winners
        candidate &= ~winners & ~(near & winners[None, :]).any(1)
    return index[torch.from_numpy(kept).to(index.device)]

