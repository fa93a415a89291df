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
2. **Fast-slow relaxation.** ``iterations`` Levenberg-Marquardt steps with a damping ``mu`` fixed
   in advance, ``dh = -(A^T A + mu I)^{-1} A^T r`` (``A = dF/dh - I``, ``r = F(h) - h``); per
   point the step at ``mu`` is taken if it lowers q, else the one at ``10 mu``, else ``100 mu``.
   For a linear map a mode with ``|1 - lambda| = s`` keeps the fraction ``mu / (s^2 + mu)`` of
   its offset per step: fast modes collapse (the state lands on the slow manifold) while slow
   modes barely move (the state stays where the probe put it along the line). ``mu`` is set so
   that over all iterations a mode at the slow-mode boundary of
   :mod:`rnnuniv.topology.lines` (``tau = tau_factor T``, ``s_T = 1 - exp(-1 / (tau_factor T))``)
   slides by at most ``max_slide`` of its offset: ``(1 + s_T^2 / mu)^(-iterations) >= 1 - max_slide``,
   i.e. ``mu = iterations s_T^2 / -ln(1 - max_slide)`` (:func:`slow_damping`).
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
from .linearise import Jacobian, Step, _jacobians
from .optimise import _speed

__all__ = ["SLOW_DEFAULTS", "SLOW_VERSION", "seed_states", "slow_damping", "sample_slow_manifold"]

SLOW_VERSION = 1  # layout of the shard's slow_* arrays; readers refuse other versions
SLOW_DEFAULTS = {
    "n_seeds": 256,
    "iterations": 8,
    "max_slide": 0.1,
    "tau_factor": 1.0,
    "speed_cap": 0.1,
    "spacing": 0.02,
}
_DAMPING_STEPS = (1.0, 10.0, 100.0)  # multiples of mu tried per iteration (longest step first)


def _damped_step(gram: torch.Tensor, grad: torch.Tensor, damping: float, eye: torch.Tensor) -> torch.Tensor:
    """``-(G + damping I)^{-1} g`` for ``G [B, n, n]`` (symmetric >= 0), ``g [B, n, 1]``: ``[B, n]``.

    Cholesky and two triangular solves (``G + damping I`` is positive definite); a failed
    factorisation gives a zero step."""
    chol, info = torch.linalg.cholesky_ex(gram + damping * eye)
    half = torch.linalg.solve_triangular(chol, grad, upper=False)
    move = -torch.linalg.solve_triangular(chol.transpose(-1, -2), half, upper=True).squeeze(-1)
    move[info != 0] = 0.0
    return torch.nan_to_num(move, nan=0.0, posinf=0.0, neginf=0.0)


def seed_states(trajectories: torch.Tensor, n_seeds: int) -> torch.Tensor:
    """``[N, K, T, S] -> [N, n, S]``: probe states at evenly strided positions of the flattened
    ``K T`` states (all of them if there are fewer than ``n_seeds``); deterministic."""
    if n_seeds < 1:
        raise ValueError(f"n_seeds must be >= 1, got {n_seeds}")
    flat = trajectories.reshape(trajectories.shape[0], -1, trajectories.shape[-1])
    index = np.unique(np.linspace(0, flat.shape[1] - 1, min(n_seeds, flat.shape[1])).round().astype(np.int64))
    return flat[:, torch.as_tensor(index, device=flat.device)]


def slow_damping(n_steps: int, tau_factor: float, iterations: int, max_slide: float) -> float:
    """The damping ``mu`` of step 2 (module docstring)."""
    if not 0 < max_slide < 1:
        raise ValueError(f"max_slide must be in (0, 1), got {max_slide}")
    boundary = 1.0 - math.exp(-1.0 / (tau_factor * n_steps))
    return iterations * boundary**2 / -math.log1p(-max_slide)


def sample_slow_manifold(
    step: Step,
    x: torch.Tensor,
    seeds: torch.Tensor,
    probe_speed,
    probe_spread,
    n_steps: int,
    *,
    jacobian: Jacobian | None = None,
    iterations: int = 8,
    max_slide: float = 0.1,
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
    mu = slow_damping(n_steps, tau_factor, iterations, max_slide)
    eye = torch.eye(n, dtype=h.dtype, device=h.device)
    with torch.no_grad():
        q = _speed(step(h, inputs), h)
    for _ in range(iterations):
        a = jacobians(h, inputs)
        with torch.no_grad():
            a.diagonal(dim1=-2, dim2=-1).sub_(1.0)  # A = J - I
            residual = step(h, inputs) - h
            gram = (a.transpose(-1, -2) @ a).reshape(-1, n, n)
            grad = (a.transpose(-1, -2) @ residual.unsqueeze(-1)).reshape(-1, n, 1)
            del a
            todo = torch.ones(gram.shape[0], dtype=torch.bool, device=h.device)
            for factor in _DAMPING_STEPS:  # longer steps first; shorter only where they failed
                rows = todo.nonzero().squeeze(1)
                if rows.numel() == 0:
                    break
                move = torch.zeros(gram.shape[0], n, dtype=h.dtype, device=h.device)
                move[rows] = _damped_step(gram[rows], grad[rows], factor * mu, eye)
                trial = h + move.view_as(h)
                trial_q = torch.nan_to_num(_speed(step(trial, inputs), trial), nan=math.inf)
                better = (trial_q < q) & todo.view_as(q)
                h = torch.where(better.unsqueeze(-1), trial, h)
                q = torch.where(better, trial_q, q)
                todo &= ~better.reshape(-1)
    slow = (2.0 * q).sqrt() < speed_cap * speed.unsqueeze(1)
    keep = [
        _select_points(seeds[i], h[i], inputs[i], torch.where(slow[i], q[i], math.inf), spacing * spread[i], None, None)
        for i in range(n_networks)
    ]
    width = max([int(k.numel()) for k in keep] + [1])
    padded = torch.zeros(n_networks, width, dtype=torch.long, device=h.device)
    for i, k in enumerate(keep):
        padded[i, : k.numel()] = k
    points = torch.gather(h, 1, padded.unsqueeze(-1).expand(-1, -1, n))
    values = torch.linalg.eigvals(jacobians(points, torch.gather(inputs, 1, padded.unsqueeze(-1).expand(-1, -1, inputs.shape[-1]))))
    values = torch.gather(values, -1, torch.argsort(values.abs(), dim=-1, descending=True, stable=True))
    return [
        {"points": points[i, : k.numel()], "q": q[i, k], "eigenvalues": values[i, : k.numel()]}
        for i, k in enumerate(keep)
    ]
