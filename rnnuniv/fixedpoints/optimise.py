"""Minimisation of the speed ``q(h) = 0.5 ||F(h, x) - h||^2``: Adam, then damped Newton with
Levenberg-Marquardt fallback steps, for all points of all networks at once.

Newton solves ``A dh = -(F(h) - h)`` with ``A = dF/dh - I`` (batched LU) and tries ``alpha dh``;
where those fail or ``A`` is ill-conditioned it also tries ``-(A^T A + mu I)^{-1} A^T (F(h) - h)``.
Per point the lowest-``q`` candidate is kept if it lowers ``q``.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from .linearise import Step


# Newton line-search fractions, tried at every refinement iteration, and Levenberg-Marquardt
# dampings (relative to ||A||_F^2 / n), tried where those fail (see _refine); the lowest q wins.
_NEWTON_ALPHAS = (1.0, 0.5, 0.25, 0.1)
_LM_DAMPINGS = (1e-12, 1e-6, 1e-3, 1e-1)
# A = J - I counts as ill-conditioned (near a continuum of fixed points) when its smallest LU pivot
# is below this times its largest; Levenberg-Marquardt steps are then tried as well.
_ILL_CONDITIONED = 1e-4


def _speed(next_h: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """q = 0.5 ||F(h) - h||^2 over the last axis."""
    return 0.5 * (next_h - h).pow(2).sum(-1)


def _adam(
    net_step: Step, h0: torch.Tensor, x: torch.Tensor, iters: int, lr: float, lr_final: float, eps: float
) -> torch.Tensor:
    """Adam on sum_k q(h_k) with a geometric learning-rate decay; returns the best state per point.

    Written out (beta1 = 0.9, beta2 = 0.999, bias-corrected) rather than via ``torch.optim``, whose
    first use imports the compiler stack (seconds). Elementwise, so points stay independent.
    """
    if iters <= 0:
        return h0.clone()
    beta1, beta2 = 0.9, 0.999
    decay = (lr_final / lr) ** (1.0 / max(iters - 1, 1))
    h = h0.clone()
    first = torch.zeros_like(h)
    second = torch.zeros_like(h)
    best_h = h0.clone()
    best_q = torch.full(h0.shape[:-1], math.inf, dtype=h0.dtype, device=h0.device)
    for it in range(iters + 1):
        h.requires_grad_(True)
        q = _speed(net_step(h, x), h)  # [N, K]
        (grad,) = torch.autograd.grad(q.sum(), h) if it < iters else (None,)
        h = h.detach()
        q = q.detach()
        better = q < best_q
        best_q = torch.where(better, q, best_q)
        best_h = torch.where(better.unsqueeze(-1), h, best_h)
        if it == iters:
            break
        first.mul_(beta1).add_(grad, alpha=1 - beta1)
        second.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step_size = lr * decay**it / (1 - beta1 ** (it + 1))
        denom = (second / (1 - beta2 ** (it + 1))).sqrt_().add_(eps)
        h = h.addcdiv(first, denom, value=-step_size)
    return best_h



def _newton_directions(
    a: torch.Tensor, residual: torch.Tensor, valid: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Newton steps ``dh`` with ``A dh = -r`` (one LU per point) and whether ``A`` is ill-conditioned.

    a: ``[N, W, n, n]`` = J - I, residual: ``[N, W, n]`` = F(h) - h, valid: ``[N, W]`` the points
    to solve for. Returns ``(dh [N, W, n], ill [N, W])``, zero and False at invalid points.
    ``A`` is ill-conditioned when its LU fails or its smallest pivot is below ``_ILL_CONDITIONED``
    times its largest. Each point's LU is independent of the others, so solving only the valid
    ones gives the same bits as solving all.
    """
    every = bool(valid.all())
    matrix = a.flatten(0, 1) if every else a[valid]  # [P, n, n]
    rhs = residual.flatten(0, 1) if every else residual[valid]
    lu, pivots, info = torch.linalg.lu_factor_ex(matrix)
    steps = torch.linalg.lu_solve(lu, pivots, -rhs.unsqueeze(-1)).squeeze(-1)
    pivot = lu.diagonal(dim1=-2, dim2=-1).abs()
    del lu
    ill_points = (info != 0) | ~torch.isfinite(steps).all(-1)
    ill_points |= pivot.amin(-1) < _ILL_CONDITIONED * pivot.amax(-1)
    steps = torch.nan_to_num(steps, nan=0.0, posinf=0.0, neginf=0.0)
    if every:
        return steps.view_as(residual), ill_points.view(valid.shape)
    newton = residual.new_zeros(residual.shape)
    newton[valid] = steps
    ill = torch.zeros_like(valid)
    ill[valid] = ill_points
    return newton, ill


def _lm_directions(a: list[torch.Tensor], residual: torch.Tensor) -> torch.Tensor:
    """Levenberg-Marquardt steps ``[L, ..., n]``: ``-(A^T A + mu s I)^{-1} A^T r`` per damping ``mu``.

    a: ``[A]``, a one-element list holding ``[..., n, n]`` = J - I, emptied once ``A^T A`` is formed
    so that ``A`` is freed; residual: ``[..., n]`` = F(h) - h; ``s = ||A||_F^2 / n``. They shrink
    components along near-null directions of ``A``, where the Newton step is long and arbitrary.
    """
    matrix = a.pop()
    gram = matrix.transpose(-1, -2) @ matrix  # [..., n, n]
    grad = -(matrix.transpose(-1, -2) @ residual.unsqueeze(-1))  # -A^T r, [..., n, 1]
    del matrix  # peak: A^T A, one damped system and its factorisation, not A as well
    scale = gram.diagonal(dim1=-2, dim2=-1).mean(-1).clamp_min(1e-300)  # ||A||_F^2 / n
    steps = []
    system = torch.empty_like(gram)
    for damping in _LM_DAMPINGS:  # one system at a time, in one buffer: no [L, ...] temporaries
        system.copy_(gram)
        system.diagonal(dim1=-2, dim2=-1).add_((damping * scale).unsqueeze(-1))
        steps.append(torch.linalg.solve_ex(system, grad)[0].squeeze(-1))
    return torch.nan_to_num(torch.stack(steps), nan=0.0, posinf=0.0, neginf=0.0)


def _best_candidate(
    net_step: Step, h: torch.Tensor, x: torch.Tensor, directions: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The lowest-q state among ``h + directions[c]`` (``[C, N, k, n]``): ``(states, q)``."""
    n_candidates, n_networks, k, n = directions.shape
    trial = (h.unsqueeze(0) + directions).transpose(0, 1).reshape(n_networks, n_candidates * k, n)
    trial_x = x.unsqueeze(1).expand(-1, n_candidates, -1, -1).reshape(n_networks, n_candidates * k, -1)
    trial_q = _speed(net_step(trial, trial_x), trial).view(n_networks, n_candidates, k)
    best_q, best = torch.nan_to_num(trial_q, nan=math.inf).min(1)  # [N, k]
    index = best.view(n_networks, 1, k, 1).expand(-1, 1, -1, n)
    return torch.gather(trial.view(n_networks, n_candidates, k, n), 1, index).squeeze(1), best_q


def _refine(
    net_step: Step,
    jacobians: Callable,
    h: torch.Tensor,
    x: torch.Tensor,
    iters: int,
    q_stop: float,
    min_decrease: float,
    tol_merge: float,
) -> torch.Tensor:
    """Damped Newton on F(h) = h for every point at once; returns refined states ``[N, K, n]``.

    Each iteration, for the points still refining (``A = J - I``, ``r = F(h) - h``), each
    network's own set of them (:func:`_pack`):

    - Newton steps ``alpha dh`` with ``A dh = -r`` (one LU per point) for each ``alpha``;
    - only where none of them lowers ``q`` below ``min_decrease * q``, or where ``A`` is
      ill-conditioned (smallest LU pivot below ``_ILL_CONDITIONED`` times the largest), also the
      Levenberg-Marquardt steps (:func:`_lm_directions`). Along an exact continuum of fixed points
      ``A`` is singular and the Newton step picks up an arbitrary, huge component along it (q stays
      ~0, the point lands anywhere on the continuum): there a Newton step more than 10x longer
      than the least-damped LM step is discarded;
    - per point, the candidate of lowest ``q`` is kept if it lowers ``q``.

    A point stops refining at ``q < q_stop`` (converged), when ``q`` no longer falls by
    ``min_decrease`` (a slow point or a local minimum of q), or when it comes within ``tol_merge``
    (in ``[h, x]``) of a converged point of its network: it would be de-duplicated into it anyway.
    """
    h = h.clone()
    with torch.no_grad():
        q = _speed(net_step(h, x), h)
    active = q > q_stop  # [N, K]
    alphas = torch.tensor(_NEWTON_ALPHAS, dtype=h.dtype, device=h.device).view(-1, 1, 1, 1)
    n = h.shape[-1]
    for _ in range(iters):
        columns, refining = _pack(active)  # [N, W]: each network's refining points first
        if columns.shape[1] == 0:
            break
        hs, xs, qs = _take(h, columns), _take(x, columns), torch.gather(q, 1, columns)
        a, _ = jacobians(hs, xs)
        with torch.no_grad():
            a.diagonal(dim1=-2, dim2=-1).sub_(1.0)  # A = J - I
            residual = net_step(hs, xs) - hs
            # the per-point linear algebra runs on the refining points only, not on the padding
            newton, ill = _newton_directions(a, residual, refining)
            best_h, best_q = _best_candidate(net_step, hs, xs, alphas * newton)

            hard_mask = refining & (ill | ~(best_q < min_decrease * qs))
            sub, hard = _pack(hard_mask)  # [N, W']
            if sub.shape[1]:
                every = bool(hard_mask.all())  # then the hard points are all of a, in order
                hard_a = [a.flatten(0, 1) if every else a[hard_mask]]  # [P', n, n]; no copy when all are hard
                del a  # only the hard points' A is still needed
                lm_points = _lm_directions(hard_a, residual[hard_mask])  # [L, P', n]
                # row-major order of hard_mask is _pack's order of each network's valid slots
                lm = lm_points.new_zeros(lm_points.shape[0], *sub.shape, n)
                lm[:, hard] = lm_points  # [L, N, W', n]
                spurious = torch.gather(ill, 1, sub) & (_take(newton, sub).norm(dim=-1) > 10 * lm[0].norm(dim=-1))
                lm_h, lm_q = _best_candidate(net_step, _take(hs, sub), _take(xs, sub), lm)
                hard_q = torch.gather(best_q, 1, sub)
                newton_q = torch.where(spurious, math.inf, hard_q)
                take = lm_q < newton_q
                updated_q = torch.where(hard, torch.where(take, lm_q, newton_q), hard_q)
                updated_h = torch.where((take & hard).unsqueeze(-1), lm_h, _take(best_h, sub))
                best_q = best_q.scatter(1, sub, updated_q)
                best_h = best_h.scatter(1, sub.unsqueeze(-1).expand(-1, -1, n), updated_h)

            a = None  # free A before the next iteration forms its own
            improved = (best_q < qs) & refining
            h.scatter_(1, columns.unsqueeze(-1).expand(-1, -1, n), torch.where(improved.unsqueeze(-1), best_h, hs))
            q.scatter_(1, columns, torch.where(improved, best_q, qs))
            active.scatter_(1, columns, improved & (best_q > q_stop) & (best_q < min_decrease * qs))
            active &= ~_near_converged(h, x, q, active, q_stop, tol_merge)
    return h


def _pack(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per network (row of ``mask [N, K]``) the indices of its ``True`` points first, in order,
    then others as padding: ``(index [N, W], valid [N, W])`` with ``W`` the largest count.

    Networks' points are unrelated, so each network computes only its own selected points (not
    every column selected in any network); padding slots hold distinct unselected points whose
    results are discarded.
    """
    counts = mask.sum(1)
    width = int(counts.max()) if mask.numel() else 0
    index = torch.argsort((~mask).to(torch.uint8), dim=1, stable=True)[:, :width]
    valid = torch.arange(width, device=mask.device).unsqueeze(0) < counts.unsqueeze(1)
    return index, valid


def _pad_rows(rows: list[torch.Tensor], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-network index lists padded with 0 to one width (at least 1), for :func:`_take` to batch
    ragged selections into one call: ``(index [N, W], valid [N, W])``, ``valid`` False at the
    padding, whose results are discarded (as :func:`_pack` returns them)."""
    counts = torch.tensor([int(r.numel()) for r in rows], dtype=torch.long, device=device)
    padded = torch.zeros(len(rows), max(counts.tolist() + [1]), dtype=torch.long, device=device)
    for i, row in enumerate(rows):
        padded[i, : row.numel()] = row
    valid = torch.arange(padded.shape[1], device=device).unsqueeze(0) < counts.unsqueeze(1)
    return padded, valid


def _take(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """``values [N, K, d]`` at ``index [N, W]`` -> ``[N, W, d]``."""
    return torch.gather(values, 1, index.unsqueeze(-1).expand(-1, -1, values.shape[-1]))


def _near_converged(
    h: torch.Tensor, x: torch.Tensor, q: torch.Tensor, active: torch.Tensor, q_stop: float, tol: float
) -> torch.Tensor:
    """``[N, K]`` bool: active points within ``tol`` (``[h, x]`` 2-norm) of a converged point."""
    near = torch.zeros_like(active)
    for i in range(h.shape[0]):
        moving = active[i].nonzero().squeeze(1)
        converged = (q[i] <= q_stop).nonzero().squeeze(1)
        if moving.numel() and converged.numel():
            coords = torch.cat([h[i], x[i]], -1)
            near[i, moving] = (torch.cdist(coords[moving], coords[converged]) < tol).any(1)
    return near

