"""Dense samples of the slow manifold at one condition, for the line-attractor test.

The finder (:func:`find_fixed_points`) refines every initial state until it converges, so along a
slow line its points slide to the few isolated exact fixed points and the line itself is barely
sampled. A line attractor is a set of *slow points*, not only of fixed points: Sussillo & Barak
(2013) define slow points as states of small speed ``q(h) = 0.5 ||F(h) - h||^2``, and Mante et al.
(2013) and Maheswaranathan et al. (2019, Fig. 3b) read the line from slow points found from the
hidden states the probe inputs visit. Here each network's probe states are relaxed onto the slow
manifold, and no further:

1. **Seeds.** ``n_seeds`` probe states per network, evenly strided over its trials and steps
   (:func:`seed_states`): the integration drives them along the line, so they cover it.
2. **Fast-slow relaxation.** ``iterations`` truncated Gauss-Newton steps on ``F(h) = h``: with
   ``A = dF/dh - I = U diag(sigma) V^T`` and ``r = F(h) - h``, ``dh = -sum_{sigma_i > s_T} v_i (u_i . r)
   / sigma_i``, where ``s_T = 1 - exp(-1 / (tau_factor T))`` is ``|1 - lambda|`` of a mode at the
   slow-mode boundary of :mod:`rnnuniv.topology.lines` (``tau = tau_factor T``). The step solves
   for the fast directions only and never moves along a direction whose ``sigma`` is below the
   boundary: the state lands on the slow manifold (one step for a linear map) and stays where the
   probe put it along a slow line instead of sliding to the line's isolated fixed points, as a
   converging finder does. A damped (Levenberg-Marquardt) step would be a soft filter
   ``sigma^2 / (sigma^2 + mu)`` that either leaves modes of a few to ``T`` steps uncollapsed or lets
   points slide along the line; gated networks have many such modes. Per point the longest of the
   steps ``alpha dh`` (``alpha`` = 1, 1/2, 1/4) that lowers q is taken; a point none of them
   improves is done.
3. **Keep and thin.** Points with speed ``sqrt(2 q) < speed_cap * probe_speed`` are kept (the
   line criterion's own ``slow_speed_fraction`` is applied later, by the topology stage, and may
   be anything up to ``speed_cap`` without rerunning this), then thinned greedily in order of
   increasing q to a spacing ``spacing * probe_spread`` (the finder's de-duplication rule at a
   coarser scale), so the line is covered uniformly whatever the density of the seeds.
4. **Linearise.** The Jacobian's eigenvalues at every kept point, sorted by modulus (largest
   first), computed once and stored in the fixed-point shard (``slow_*`` arrays,
   :data:`SLOW_VERSION`).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .finder import _expand_inputs, _select_points
from .linearise import Jacobian, Step, _jacobians, modulus_order
from .optimise import _pad_rows, _speed, _take

__all__ = ["SLOW_DEFAULTS", "SLOW_VERSION", "seed_states", "slow_boundary", "sample_slow_manifold"]

SLOW_VERSION = 1  # layout of the shard's slow_* arrays; readers refuse other versions
SLOW_DEFAULTS = {
    "n_seeds": 256,
    "iterations": 5,
    "tau_factor": 1.0,
    "speed_cap": 0.1,
    "spacing": 0.02,
}
_STEP_FRACTIONS = (1.0, 0.5, 0.25)  # fractions of the truncated Gauss-Newton step tried per iteration


def _truncated_step(a: torch.Tensor, residual: torch.Tensor, boundary: float) -> torch.Tensor:
    """``-A_s^+ r`` for ``A [B, n, n]``, ``r [B, n]``: the pseudo-inverse of ``A`` restricted to its
    singular values above ``boundary`` (from the eigen-decomposition of ``A^T A``), ``[B, n]``."""
    gram = a.transpose(-1, -2) @ a
    values, vectors = torch.linalg.eigh(gram)  # ascending sigma^2, right singular vectors
    inverse = torch.where(values > boundary**2, 1.0 / values.clamp_min(1e-300), 0.0)
    coords = (vectors.transpose(-1, -2) @ (a.transpose(-1, -2) @ residual.unsqueeze(-1))).squeeze(-1)
    return torch.nan_to_num(-(vectors @ (inverse * coords).unsqueeze(-1)).squeeze(-1), nan=0.0, posinf=0.0, neginf=0.0)


def seed_states(trajectories: torch.Tensor, n_seeds: int) -> torch.Tensor:
    """``[N, K, T, S] -> [N, n, S]``: probe states at evenly strided positions of the flattened
    ``K T`` states (all of them if there are fewer than ``n_seeds``); deterministic."""
    if n_seeds < 1:
        raise ValueError(f"n_seeds must be >= 1, got {n_seeds}")
    flat = trajectories.reshape(trajectories.shape[0], -1, trajectories.shape[-1])
    index = np.unique(np.linspace(0, flat.shape[1] - 1, min(n_seeds, flat.shape[1])).round().astype(np.int64))
    return flat[:, torch.as_tensor(index, device=flat.device)]


def slow_boundary(n_steps: int, tau_factor: float) -> float:
    """``s_T = 1 - exp(-1 / (tau_factor T))``: ``|1 - lambda|`` of a real mode with ``tau = tau_factor T``."""
    if n_steps < 1 or tau_factor <= 0:
        raise ValueError(f"need n_steps >= 1 and tau_factor > 0, got {n_steps}, {tau_factor}")
    return 1.0 - math.exp(-1.0 / (tau_factor * n_steps))


def sample_slow_manifold(
    step: Step,
    x: torch.Tensor,
    seeds: torch.Tensor,
    probe_speed,
    probe_spread,
    n_steps: int,
    *,
    jacobian: Jacobian | None = None,
    iterations: int = 5,
    tau_factor: float = 1.0,
    speed_cap: float = 0.1,
    spacing: float = 0.02,
    jacobian_batch: int = 4096,
) -> list[dict[str, torch.Tensor]]:
    """Slow points of ``N`` networks at the constant input ``x [m]`` (module docstring).

    step: batched one-step map ``step(h [N, K, S], x [N, K, m]) -> [N, K, S]`` in float64;
        jacobian: its analytic ``(dF/dh, dF/dx)`` when known (else autodiff).
    seeds: ``[N, K, S]`` start states (e.g. :func:`seed_states` of the probe trajectories).
    probe_speed, probe_spread: ``[N]`` (:func:`probe_scales`): the speed cap and the spacing are
        relative to them. n_steps: the task's trial length ``T``.
    Returns per network ``{"points" [P, S], "q" [P], "eigenvalues" [P, S]}`` (sorted by q).
    """
    if iterations < 0:
        raise ValueError(f"iterations must be >= 0, got {iterations}")
    h = seeds.to(torch.float64).clone()
    n_networks, n_seeds, n = h.shape
    inputs = _expand_inputs(x, n_networks, n_seeds, True, h)
    speed = torch.as_tensor(np.asarray(probe_speed, dtype=np.float64), device=h.device)
    spread = np.asarray(probe_spread, dtype=np.float64)
    jacobians = lambda states, u: _jacobians(step, states, u, jacobian_batch, analytic=jacobian)[0]  # noqa: E731
    boundary = slow_boundary(n_steps, tau_factor)
    with torch.no_grad():
        q = _speed(step(h, inputs), h)
    active = torch.ones(n_networks * n_seeds, dtype=torch.bool, device=h.device)
    for _ in range(iterations):
        rows = active.nonzero().squeeze(1)
        if rows.numel() == 0:
            break
        a = jacobians(h, inputs)
        with torch.no_grad():
            a = a.reshape(-1, n, n)[rows]
            a.diagonal(dim1=-2, dim2=-1).sub_(1.0)  # A = J - I
            residual = (step(h, inputs) - h).reshape(-1, n)[rows]
            move = torch.zeros(n_networks * n_seeds, n, dtype=h.dtype, device=h.device)
            move[rows] = _truncated_step(a, residual, boundary)
            move = move.view_as(h)
            del a
            best_h, best_q = h, q
            for fraction in _STEP_FRACTIONS:
                trial = h + fraction * move
                trial_q = torch.nan_to_num(_speed(step(trial, inputs), trial), nan=math.inf)
                better = trial_q < best_q
                best_h = torch.where(better.unsqueeze(-1), trial, best_h)
                best_q = torch.where(better, trial_q, best_q)
            active &= (best_q < q).reshape(-1)  # a point that no step improves is done
            h, q = best_h, best_q
    slow = (2.0 * q).sqrt() < speed_cap * speed.unsqueeze(1)
    keep = [
        _select_points(seeds[i], h[i], inputs[i], torch.where(slow[i], q[i], math.inf), spacing * spread[i], None, None)
        for i in range(n_networks)
    ]
    padded, kept = _pad_rows(keep, h.device)
    points, point_inputs = _take(h, padded), _take(inputs, padded)
    values = torch.linalg.eigvals(jacobians(points, point_inputs)[kept])  # [P, n], kept points only
    values = torch.gather(values, -1, modulus_order(values)).split([int(k.numel()) for k in keep])
    return [
        {"points": points[i, : k.numel()], "q": q[i, k], "eigenvalues": values[i]}
        for i, k in enumerate(keep)
    ]
