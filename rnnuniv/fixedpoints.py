"""Fixed points and slow points of a one-step map, with their linearisation and manifold structure.

The method of Sussillo & Barak (2013) as packaged by FixedPointFinder (Golub & Sussillo 2018),
made fast and exact. For a one-step map ``h' = F(h, x)`` held at a constant input ``x``, the speed

    q(h) = 0.5 * ||F(h, x) - h||^2

is zero exactly at fixed points and small at slow points. From many initial states at once:

1. **Adam** minimises ``sum_k q(h_k)`` for a modest number of iterations (every point moves
   independently: Adam is elementwise and the schedule is fixed, so results do not depend on the
   other points in the batch).
2. **Damped Newton** refines in float64: with ``A = dF/dh - I`` it solves ``A dh = -(F(h) - h)``
   (batched LU), tries the steps ``alpha * dh`` for a few ``alpha``, and where they fail or ``A``
   is ill-conditioned also Levenberg-Marquardt (least-squares) steps
   ``-(A^T A + mu I)^{-1} A^T (F(h) - h)``, which stay short where ``A`` is singular or nearly so
   (e.g. on a continuum of fixed points); it keeps per point the candidate of lowest ``q`` if it
   lowers ``q``. Points that come within ``tol_unique / 2`` of a converged point stop early.
   True fixed points converge quadratically to ``q`` at float64 round-off (``q < 1e-20``).
   Jacobians come from an analytic formula when the caller has one (``jacobian=``, e.g.
   :meth:`rnnuniv.cells.Cell.jacobian`, which :func:`shard_fixed_points` passes), else batched
   from ``torch.func.jacrev``: because rows of ``F`` are independent, the Jacobian of
   ``sum_k F(h_k)`` with respect to ``h`` holds every per-point Jacobian, so one reverse pass
   vmapped over the ``n`` output directions gives all of them (the same result as
   ``vmap(jacrev(F))`` point by point, and it also works with a network axis).
3. **Clean-up**: drop points far from the initial states (FixedPointFinder's rule: distance to the
   centroid of the initial states over their mean distance to it ``>= outlier_distance_scale``),
   drop points whose ``q`` stays above ``max_q_slow``, and de-duplicate: points (with their inputs)
   closer than ``tol_unique`` in 2-norm are one point, the lowest-``q`` one is kept (greedy in
   order of increasing ``q``). Points with ``q < tol_q`` are fixed points, the others slow points.
4. **Linearise**: Jacobian ``J = dF/dh`` and input Jacobian ``dF/dx`` at every point, eigenvalues
   sorted by modulus (largest first), right eigenvectors (columns, ``J R = R diag(lambda)``) and
   left eigenvectors (rows, ``L J = diag(lambda) L`` with ``L R = I``; they differ from ``R^H``
   when ``J`` is non-normal). Stability class ``n_unstable = #{i : |lambda_i| > 1}``.
5. **Manifolds**: trained gated networks often store memory in a continuum of marginally stable
   points (leading ``| |lambda_1| - 1 | < marginal_tol``) and the finder then returns hundreds of
   distinct points. Marginal points are clustered by single linkage at a length scale (a fraction
   of the RMS spread of the probe trajectories); connected groups of at least
   ``min_manifold_points`` are manifolds, every other point is isolated (``cluster == -1``).
   :func:`summarize` counts isolated fixed points and manifolds, never a continuum point by point.

All tensors in a result are float64 (complex128 for eigen-quantities) on the device of ``h0``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from typing import Callable, Sequence

import numpy as np
import torch
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial.distance import cdist

__all__ = [
    "FixedPoints",
    "Manifold",
    "find_fixed_points",
    "sample_initial_states",
    "rms_spread",
    "summarize",
    "linearized_frequency",
    "n_marginal",
    "probe_scales",
]

Step = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Jacobian = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]

# Newton line-search fractions, tried at every refinement iteration, and Levenberg-Marquardt
# dampings (relative to ||A||_F^2 / n), tried where those fail (see _refine); the lowest q wins.
_NEWTON_ALPHAS = (1.0, 0.5, 0.25, 0.1)
_LM_DAMPINGS = (1e-12, 1e-6, 1e-3, 1e-1)
# A = J - I counts as ill-conditioned (near a continuum of fixed points) when its smallest LU pivot
# is below this times its largest; Levenberg-Marquardt steps are then tried as well.
_ILL_CONDITIONED = 1e-4


# ----------------------------------------------------------------------------------------------
# Results
# ----------------------------------------------------------------------------------------------
@dataclass
class Manifold:
    """One connected cluster of marginally stable points (a continuous attractor or slow manifold).

    ``dimension`` is the tangent dimension: the median over the cluster's points of the number of
    eigenvalues with ``| |lambda| - 1 | < marginal_tol`` (1 for a line or a ring). ``pca_dimension``
    is the number of principal components holding ``manifold_variance`` (default 90 %) of the
    variance of the points (2 for a ring in a plane), ``participation_ratio`` is
    ``(sum_i s_i)^2 / sum_i s_i^2`` over the PCA variances ``s_i``, and ``extent`` the largest
    distance between two of its points.
    """

    label: int
    size: int
    n_fixed: int
    dimension: int
    pca_dimension: int
    participation_ratio: float
    extent: float
    centroid: torch.Tensor  # [n]


@dataclass
class FixedPoints:
    """Fixed and slow points of one network, ``P`` points in an ``n``-dimensional state space.

    Points are sorted by increasing ``q``.
    """

    points: torch.Tensor  # [P, n] states h* (float64)
    inputs: torch.Tensor  # [P, m] constant input at which h* was found
    q: torch.Tensor  # [P] 0.5 * ||F(h*, x) - h*||^2
    is_fixed: torch.Tensor  # [P] bool, q < tol_q (else a slow point)
    jacobians: torch.Tensor  # [P, n, n] dF/dh at h*
    input_jacobians: torch.Tensor  # [P, n, m] dF/dx at h*
    eigenvalues: torch.Tensor  # [P, n] complex, sorted by modulus, largest first
    right_eigenvectors: torch.Tensor  # [P, n, n] complex, column i belongs to eigenvalue i
    left_eigenvectors: torch.Tensor  # [P, n, n] complex, row i belongs to eigenvalue i, L R = I
    n_unstable: torch.Tensor  # [P] int64, eigenvalues with modulus > 1
    cluster: torch.Tensor  # [P] int64, manifold label, -1 for isolated points
    initial_index: torch.Tensor  # [P] int64, index of the initial state that produced the point
    manifolds: list[Manifold] = field(default_factory=list)
    length_scale: float = float("nan")  # single-linkage length used for the manifolds
    tol_q: float = 1e-12
    n_initial: int = 0

    def __len__(self) -> int:
        return int(self.points.shape[0])

    @property
    def is_marginal(self) -> torch.Tensor:
        """[P] bool: points belonging to a manifold cluster."""
        return self.cluster >= 0

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Plain numpy arrays (complex for eigen-quantities) for ``np.savez`` without pickle."""
        names = (
            "points", "inputs", "q", "is_fixed", "jacobians", "input_jacobians", "eigenvalues",
            "right_eigenvectors", "left_eigenvectors", "n_unstable", "cluster", "initial_index",
        )  # fmt: skip
        return {name: getattr(self, name).detach().cpu().numpy() for name in names}


# ----------------------------------------------------------------------------------------------
# Initial states and small helpers
# ----------------------------------------------------------------------------------------------
def sample_initial_states(
    trajectories: torch.Tensor,
    n_inits: int = 1024,
    noise_scale: float = 0.5,
    generator: torch.Generator | None = None,
    batched: bool = False,
) -> torch.Tensor:
    """States drawn from a network's own trajectories plus isotropic Gaussian noise.

    ``h0_k = s_k + noise_scale * eps_k``, ``s_k`` drawn uniformly (with replacement) from all states
    of ``trajectories``, ``eps_k ~ N(0, I)``. Defaults follow FixedPointFinder (1024, 0.5).

    trajectories: ``[..., n]`` states of one network (any leading axes, e.g. ``[B, T, n]``), or with
        ``batched=True`` ``[N, ..., n]`` for ``N`` networks (each samples its own states).
    generator: torch generator on the device of ``trajectories``, for reproducible draws.
    Returns ``[n_inits, n]``, or ``[N, n_inits, n]`` if ``batched``.
    """
    if n_inits < 1:
        raise ValueError(f"n_inits must be >= 1, got {n_inits}")
    if noise_scale < 0:
        raise ValueError(f"noise_scale must be >= 0, got {noise_scale}")
    n = trajectories.shape[-1]
    lead = trajectories.shape[0] if batched else 1
    flat = trajectories.reshape(lead, -1, n)  # [N, S, n]
    index = torch.randint(
        flat.shape[1], (lead, n_inits), generator=generator, device=flat.device
    )  # [N, n_inits]
    picked = torch.gather(flat, 1, index.unsqueeze(-1).expand(lead, n_inits, n))
    noise = torch.randn(
        picked.shape, generator=generator, device=flat.device, dtype=flat.dtype
    )
    states = picked + noise_scale * noise
    return states if batched else states[0]


def rms_spread(states: torch.Tensor) -> float:
    """RMS distance of states ``[..., n]`` from their mean, ``sqrt(mean_k ||s_k - mean||^2)``.

    ``manifold_length_scale = 0.25 * rms_spread(probe_trajectories)`` is a good single-linkage scale.
    """
    flat = states.reshape(-1, states.shape[-1]).double()
    return float((flat - flat.mean(0)).pow(2).sum(-1).mean().sqrt())


def probe_scales(trajectories: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Typical speed and spread of probe trajectories ``[N, K, T, S]``, per network ``[N]``.

    speed: median over trials and steps of the per-step displacement ``||s_{t+1} - s_t||``;
    spread: :func:`rms_spread` of all the network's states. Slow points are judged against the
    speed, the extent of a line attractor against the spread (``rnnuniv.topology.lines``).
    """
    states = trajectories.double()
    step = (states[:, :, 1:] - states[:, :, :-1]).norm(dim=-1).flatten(1)  # [N, K (T-1)]
    speed = step.median(1).values if step.shape[1] else states.new_zeros(states.shape[0])
    spread = torch.tensor([rms_spread(t) for t in states], dtype=torch.float64)
    return speed.cpu(), spread


def n_marginal(eigenvalues: torch.Tensor, tol: float = 1e-3) -> torch.Tensor:
    """Number of eigenvalues with ``| |lambda| - 1 | < tol``; ``[..., n] -> [...]`` (int64)."""
    return ((eigenvalues.abs() - 1.0).abs() < tol).sum(-1)


def linearized_frequency(eigenvalues: torch.Tensor, imag_tol: float = 1e-9) -> torch.Tensor:
    """Rotation frequency of the leading complex eigenvalue, ``|arg(lambda)| / (2 pi)`` cycles/step.

    The leading complex eigenvalue is the largest-modulus one with ``|Im lambda| > imag_tol``;
    the frequency is 0 where all eigenvalues are real. ``[..., n] -> [...]`` (float64).
    """
    eigenvalues = eigenvalues.to(torch.complex128)
    is_complex = eigenvalues.imag.abs() > imag_tol
    modulus = torch.where(is_complex, eigenvalues.abs(), torch.full_like(eigenvalues.real, -1.0))
    lead = modulus.argmax(-1, keepdim=True)
    angle = torch.gather(eigenvalues.angle().abs(), -1, lead).squeeze(-1)
    return torch.where(is_complex.any(-1), angle / (2 * math.pi), torch.zeros_like(angle))


# ----------------------------------------------------------------------------------------------
# The finder
# ----------------------------------------------------------------------------------------------
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

    h = _adam(net_step, states0, inputs, adam_iters, adam_lr, adam_lr_final, adam_eps)
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
    width = max(max(sizes), 1)
    # pad every network's survivors to one width so the Jacobians are one batched call
    padded = torch.zeros(n_networks, width, dtype=torch.long, device=h.device)
    for i, k in enumerate(keep):
        padded[i, : k.numel()] = k
    gather = padded.unsqueeze(-1)
    points = torch.gather(h, 1, gather.expand(-1, -1, n))
    point_inputs = torch.gather(inputs, 1, gather.expand(-1, -1, inputs.shape[-1]))
    jac, input_jac = jacobians(points, point_inputs, with_inputs=True)
    eig = _eigen(jac.reshape(-1, n, n))
    eig = {k: v.reshape(n_networks, width, *v.shape[1:]) for k, v in eig.items()}

    scales = _length_scales(
        manifold_length_scale, manifold_length_fraction, states0, n_networks
    )
    results = []
    for i in range(n_networks):
        p = sizes[i]
        eigenvalues = eig["values"][i, :p]
        result = FixedPoints(
            points=points[i, :p],
            inputs=point_inputs[i, :p],
            q=q[i, keep[i]],
            is_fixed=q[i, keep[i]] < tol_q,
            jacobians=jac[i, :p],
            input_jacobians=input_jac[i, :p],
            eigenvalues=eigenvalues,
            right_eigenvectors=eig["right"][i, :p],
            left_eigenvectors=eig["left"][i, :p],
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


def summarize(result: FixedPoints) -> dict:
    """Counts of the dynamical skeleton, with a continuum counted once, as a manifold.

    Returns a JSON-ready dict:
        n_points: all reported points; n_fixed / n_slow: split by ``q < tol_q``;
        n_isolated_fixed: fixed points outside any manifold;
        isolated_fixed_by_n_unstable: {n_unstable: count} over those (0 = stable attractors);
        n_isolated_slow: slow points outside any manifold;
        n_manifolds: number of manifold clusters; manifolds: per cluster size, n_fixed, dimension,
        pca_dimension, participation_ratio, extent;
        n_nodes: n_isolated_fixed + n_manifolds (the nodes of a topology graph).
    """
    isolated = result.cluster < 0
    iso_fixed = isolated & result.is_fixed
    classes, counts = torch.unique(result.n_unstable[iso_fixed], return_counts=True)
    n_iso_fixed = int(iso_fixed.sum())
    return {
        "n_points": len(result),
        "n_fixed": int(result.is_fixed.sum()),
        "n_slow": int((~result.is_fixed).sum()),
        "n_isolated_fixed": n_iso_fixed,
        "isolated_fixed_by_n_unstable": {
            int(c): int(k) for c, k in zip(classes.tolist(), counts.tolist())
        },
        "n_isolated_slow": int((isolated & ~result.is_fixed).sum()),
        "n_manifolds": len(result.manifolds),
        "manifolds": [
            {
                "size": m.size,
                "n_fixed": m.n_fixed,
                "dimension": m.dimension,
                "pca_dimension": m.pca_dimension,
                "participation_ratio": m.participation_ratio,
                "extent": m.extent,
            }
            for m in result.manifolds
        ],
        "n_nodes": n_iso_fixed + len(result.manifolds),
    }


# ----------------------------------------------------------------------------------------------
# Internals
# ----------------------------------------------------------------------------------------------
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


def _jacobians(
    net_step: Step,
    h: torch.Tensor,
    x: torch.Tensor,
    batch: int,
    with_inputs: bool = False,
    analytic: Jacobian | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-point Jacobians dF/dh ``[N, K, n, n]`` (and dF/dx ``[N, K, n, m]``), batched.

    From ``analytic(h, x)`` when given. Otherwise: rows of F are independent, so
    ``d/dh_k sum_j F(h_j)_i = dF(h_k)_i / dh_k``: jacrev of the batch-summed map (one reverse pass
    vmapped over the ``n`` outputs) gives every point's Jacobian.
    """
    n_networks, n_points, n = h.shape
    m = x.shape[-1]
    if analytic is not None and m > 0:
        chunk = max(1, batch // max(n_networks, 1))
        parts = [analytic(h[:, i : i + chunk], x[:, i : i + chunk]) for i in range(0, n_points, chunk)]
        if not parts:
            return h.new_zeros(n_networks, 0, n, n), h.new_zeros(n_networks, 0, n, m)
        if len(parts) == 1:  # no copy of a possibly large [N, K, n, n]
            return parts[0][0], (parts[0][1] if with_inputs else None)
        jac = torch.cat([p[0] for p in parts], 1)
        return jac, (torch.cat([p[1] for p in parts], 1) if with_inputs else None)
    argnums = (0, 1) if with_inputs and m > 0 else 0

    def summed(states: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        return net_step(states, inputs).sum(dim=(0, 1))  # [n]

    jac_fn = torch.func.jacrev(summed, argnums=argnums)
    chunk = max(1, batch // max(n_networks, 1))
    jac_h, jac_x = [], []
    for start in range(0, n_points, chunk):
        part = jac_fn(h[:, start : start + chunk], x[:, start : start + chunk])
        if isinstance(part, tuple):
            jac_x.append(part[1].permute(1, 2, 0, 3))  # [n, N, k, m] -> [N, k, n, m]
            part = part[0]
        jac_h.append(part.permute(1, 2, 0, 3))  # [n_out, N, k, n_in] -> [N, k, n_out, n_in]
    jac = torch.cat(jac_h, 1) if jac_h else h.new_zeros(n_networks, 0, n, n)
    if not with_inputs:
        return jac, None
    if m == 0 or not jac_x:
        return jac, h.new_zeros(n_networks, n_points, n, m)
    return jac, torch.cat(jac_x, 1)


def _lm_directions(a: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
    """Levenberg-Marquardt steps ``[L, ..., n]``: ``-(A^T A + mu s I)^{-1} A^T r`` per damping ``mu``.

    a: ``[..., n, n]`` = J - I; residual: ``[..., n]`` = F(h) - h; ``s = ||A||_F^2 / n``. They shrink
    components along near-null directions of ``A``, where the Newton step is long and arbitrary.
    """
    gram = a.transpose(-1, -2) @ a  # [..., n, n]
    grad = -(a.transpose(-1, -2) @ residual.unsqueeze(-1))  # -A^T r, [..., n, 1]
    scale = gram.diagonal(dim1=-2, dim2=-1).mean(-1).clamp_min(1e-300)  # ||A||_F^2 / n
    steps = []
    for damping in _LM_DAMPINGS:  # one system at a time: [..., n, n] temporaries, not [L, ...]
        system = gram.clone()
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

    Each iteration, for the points still refining (``A = J - I``, ``r = F(h) - h``):

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
    for _ in range(iters):
        columns = active.any(0).nonzero().squeeze(1)  # states still refining in some network
        if columns.numel() == 0:
            break
        hs, xs, qs, refining = h[:, columns], x[:, columns], q[:, columns], active[:, columns]
        a, _ = jacobians(hs, xs)
        with torch.no_grad():
            a.diagonal(dim1=-2, dim2=-1).sub_(1.0)  # A = J - I
            residual = net_step(hs, xs) - hs
            lu, pivots, info = torch.linalg.lu_factor_ex(a)
            newton = torch.linalg.lu_solve(lu, pivots, -residual.unsqueeze(-1)).squeeze(-1)
            pivot = lu.diagonal(dim1=-2, dim2=-1).abs()
            del lu
            ill = (info != 0) | ~torch.isfinite(newton).all(-1)
            ill |= pivot.amin(-1) < _ILL_CONDITIONED * pivot.amax(-1)
            newton = torch.nan_to_num(newton, nan=0.0, posinf=0.0, neginf=0.0)
            best_h, best_q = _best_candidate(net_step, hs, xs, alphas * newton)

            hard = refining & (ill | ~(best_q < min_decrease * qs))
            sub = hard.any(0).nonzero().squeeze(1)
            if sub.numel():
                lm = _lm_directions(a[:, sub], residual[:, sub])  # [L, N, k', n]
                spurious = ill[:, sub] & (newton[:, sub].norm(dim=-1) > 10 * lm[0].norm(dim=-1))
                lm_h, lm_q = _best_candidate(net_step, hs[:, sub], xs[:, sub], lm)
                newton_q = torch.where(spurious, math.inf, best_q[:, sub])
                take = lm_q < newton_q
                best_q[:, sub] = torch.where(take, lm_q, newton_q)
                best_h[:, sub] = torch.where(take.unsqueeze(-1), lm_h, best_h[:, sub])

            improved = (best_q < qs) & refining
            h[:, columns] = torch.where(improved.unsqueeze(-1), best_h, hs)
            q[:, columns] = torch.where(improved, best_q, qs)
            active[:, columns] = improved & (best_q > q_stop) & (best_q < min_decrease * qs)
            active &= ~_near_converged(h, x, q, active, q_stop, tol_merge)
    return h


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


def _eigen(jac: torch.Tensor) -> dict[str, torch.Tensor]:
    """Eigenvalues sorted by modulus (largest first), right eigenvectors (columns), left (rows)."""
    if jac.shape[0] == 0:
        n = jac.shape[-1]
        empty = jac.new_zeros(0, n, n, dtype=torch.complex128)
        return {"values": empty[:, 0], "right": empty, "left": empty}
    values, right = torch.linalg.eig(jac)
    order = torch.argsort(values.abs(), dim=-1, descending=True, stable=True)
    values = torch.gather(values, -1, order)
    right = torch.gather(right, -1, order.unsqueeze(-2).expand_as(right))
    left, info = torch.linalg.inv_ex(right)  # rows: w_i^T J = lambda_i w_i^T, W R = I
    left[info != 0] = complex(float("nan"), float("nan"))  # defective J: no eigenbasis
    return {"values": values, "right": right, "left": left}


def _length_scales(
    scale: float | Sequence[float] | None, fraction: float, h0: torch.Tensor, n_networks: int
) -> list[float]:
    if scale is None:
        return [fraction * rms_spread(h0[i]) for i in range(n_networks)]
    if isinstance(scale, (int, float)):
        return [float(scale)] * n_networks
    scales = [float(s) for s in scale]
    if len(scales) != n_networks:
        raise ValueError(f"manifold_length_scale has {len(scales)} values for {n_networks} networks")
    return scales


def _label_manifolds(
    result: FixedPoints, marginal_tol: float, length_scale: float, min_points: int, variance: float
) -> None:
    """Single-linkage clusters of marginal points; fills ``result.cluster`` and ``result.manifolds``."""
    if len(result) == 0:
        return
    leading = result.eigenvalues[:, 0].abs()
    marginal = ((leading - 1.0).abs() < marginal_tol).cpu().numpy()
    where = np.flatnonzero(marginal)
    if where.size < min_points:
        return
    points = result.points.detach().cpu().numpy()[where]
    dist = cdist(points, points)
    _, component = connected_components(csr_matrix(dist <= length_scale), directed=False)
    labels, sizes = np.unique(component, return_counts=True)
    big = labels[sizes >= min_points]
    big = big[np.argsort(-sizes[sizes >= min_points], kind="stable")]  # largest first
    cluster = np.full(len(result), -1, dtype=np.int64)
    tangent = n_marginal(result.eigenvalues, marginal_tol).cpu().numpy()
    is_fixed = result.is_fixed.cpu().numpy()
    for label, comp in enumerate(big):
        members = component == comp
        rows = where[members]
        cluster[rows] = label
        centred = points[members] - points[members].mean(0)
        var = np.linalg.svd(centred, compute_uv=False) ** 2
        cumulative = np.cumsum(var) / max(var.sum(), 1e-300)
        result.manifolds.append(
            Manifold(
                label=label,
                size=int(members.sum()),
                n_fixed=int(is_fixed[rows].sum()),
                dimension=int(np.round(np.median(tangent[rows]))),
                pca_dimension=int(np.searchsorted(cumulative, variance) + 1),
                participation_ratio=float(var.sum() ** 2 / max((var**2).sum(), 1e-300)),
                extent=float(dist[np.ix_(members, members)].max()),
                centroid=result.points[torch.from_numpy(rows).to(result.points.device)].mean(0),
            )
        )
    result.cluster = torch.from_numpy(cluster).to(result.points.device)


# ----------------------------------------------------------------------------------------------
# A whole shard of networks at every condition of a task
# ----------------------------------------------------------------------------------------------
def shard_fixed_points(
    cell,
    params: dict[str, torch.Tensor],
    trajectories: torch.Tensor,
    conditions: Sequence[tuple[str, np.ndarray]],
    n_hidden: int,
    *,
    n_inits: int = 1024,
    noise_scale: float = 0.5,
    seed: int = 0,
    n_modes: int = 8,
    manifold_length_fraction: float = 0.25,
    **finder_options,
):
    """Fixed points of ``N`` networks (one cell, stacked ``params``) at every condition.

    trajectories: ``[N, K, T, S]`` probe states of each network (LSTM: ``[h, c]``), which seed the
        search (:func:`sample_initial_states`) and set each network's manifold length scale
        (``manifold_length_fraction * rms_spread``).
    conditions: ``(name, constant input [m])`` pairs, e.g. ``Task.fixed_point_conditions()``.
    n_modes: leading eigenvectors kept per point in the arrays (enough for every unstable mode of
        a flip-flop saddle; all ``S`` Jacobian columns would not fit on disk at paper scale).

    Returns ``(arrays, table)``: per-point arrays concatenated over networks and conditions
    (``network_index``, ``condition_index``, ``points``, ``inputs``, ``q``, ``is_fixed``,
    ``eigenvalues``, ``right_eigenvectors`` [P, S, k], ``left_eigenvectors`` [P, k, S],
    ``input_jacobians``, ``n_unstable``, ``cluster``, ``outputs`` = readout at the point) plus
    ``condition_names`` and ``condition_inputs``; and a table with one row per network and
    condition from :func:`summarize`, with the lowest-q point's linearised frequency and number
    of marginal modes (within 0.01 of the unit circle).
    """
    import pandas as pd

    from .cells import ANALYTIC_JACOBIANS

    device = trajectories.device
    n_networks = trajectories.shape[0]
    k = min(n_modes, trajectories.shape[-1])
    names = [name for name, _ in conditions]
    condition_inputs = np.stack([np.asarray(x, dtype=np.float64) for _, x in conditions])
    arrays: dict[str, list] = {key: [] for key in _SHARD_ARRAYS}
    marginal_tol = float(finder_options.get("marginal_tol", 1e-3))
    rows = []
    speed, spread = probe_scales(trajectories) if n_networks else (torch.zeros(0), torch.zeros(0))
    if n_networks:
        trajectories = trajectories.to(torch.float64)
        scales = [manifold_length_fraction * rms_spread(t) for t in trajectories]

        def step(h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            return cell.step(params, h, x)

        def jacobian(h: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return cell.jacobian(params, h, x)

        analytic = jacobian if cell.architecture in ANALYTIC_JACOBIANS else None

        for c, (name, x) in enumerate(conditions):
            generator = torch.Generator(device=device).manual_seed(seed)
            h0 = sample_initial_states(trajectories, n_inits, noise_scale, generator, batched=True)
            x = torch.as_tensor(np.asarray(x), dtype=torch.float64, device=device)
            results = find_fixed_points(
                step, x, h0, manifold_length_scale=scales, jacobian=analytic, **finder_options
            )
            for i, result in enumerate(results):
                p = len(result)
                readout = {key: v[i] for key, v in params.items() if key in ("w_out", "b_out")}
                arrays["network_index"].append(np.full(p, i))
                arrays["condition_index"].append(np.full(p, c))
                arrays["points"].append(result.points)
                arrays["inputs"].append(result.inputs)
                arrays["q"].append(result.q)
                arrays["is_fixed"].append(result.is_fixed)
                arrays["eigenvalues"].append(result.eigenvalues.to(torch.complex64))
                arrays["right_eigenvectors"].append(result.right_eigenvectors[:, :, :k].to(torch.complex64))
                arrays["left_eigenvectors"].append(result.left_eigenvectors[:, :k, :].to(torch.complex64))
                arrays["input_jacobians"].append(result.input_jacobians)
                arrays["n_unstable"].append(result.n_unstable)
                arrays["cluster"].append(result.cluster)
                arrays["n_marginal"].append(n_marginal(result.eigenvalues, marginal_tol))
                arrays["outputs"].append(cell.readout(readout, result.points[:, :n_hidden]))
                rows.append({"network_index": i, "condition": name, **_table_row(result, marginal_tol)})
    out = {key: _concat(values, _SHARD_ARRAYS[key]) for key, values in arrays.items()}
    out["condition_names"] = np.array(names, dtype=str)
    out["condition_inputs"] = condition_inputs
    out["marginal_tol"] = np.float64(marginal_tol)
    out["probe_speed"] = speed.numpy()
    out["probe_spread"] = spread.numpy()
    return out, pd.DataFrame(rows, columns=["network_index", "condition", *_ROW_COLUMNS])


_SHARD_ARRAYS = {  # per-point array -> stored dtype
    "network_index": np.int64,
    "condition_index": np.int64,
    "points": np.float64,
    "inputs": np.float64,
    "q": np.float64,
    "is_fixed": np.bool_,
    "eigenvalues": np.complex64,
    "right_eigenvectors": np.complex64,
    "left_eigenvectors": np.complex64,
    "input_jacobians": np.float64,
    "n_unstable": np.int64,
    "cluster": np.int64,
    "n_marginal": np.int64,
    "outputs": np.float64,
}
_ROW_COLUMNS = [
    "n_points", "n_fixed", "n_slow", "n_isolated_fixed", "n_stable", "n_unstable_1",
    "n_unstable_2", "n_unstable_3plus", "n_manifolds", "manifold_dimensions", "n_nodes",
    "max_q", "leading_modulus", "linearized_frequency", "n_marginal",
]  # fmt: skip


def _table_row(result: FixedPoints, marginal_tol: float) -> dict:
    summary = summarize(result)
    by_class = summary["isolated_fixed_by_n_unstable"]
    best = result.eigenvalues[:1]
    return {
        "n_points": summary["n_points"],
        "n_fixed": summary["n_fixed"],
        "n_slow": summary["n_slow"],
        "n_isolated_fixed": summary["n_isolated_fixed"],
        "n_stable": by_class.get(0, 0),
        "n_unstable_1": by_class.get(1, 0),
        "n_unstable_2": by_class.get(2, 0),
        "n_unstable_3plus": sum(v for c, v in by_class.items() if c >= 3),
        "n_manifolds": summary["n_manifolds"],
        "manifold_dimensions": ";".join(str(m["dimension"]) for m in summary["manifolds"]),
        "n_nodes": summary["n_nodes"],
        "max_q": float(result.q.max()) if len(result) else float("nan"),
        "leading_modulus": float(best.abs()[0, 0]) if len(result) else float("nan"),
        "linearized_frequency": float(linearized_frequency(best)[0]) if len(result) else float("nan"),
        "n_marginal": int(n_marginal(best, marginal_tol)[0]) if len(result) else 0,
    }


def _concat(values: list, dtype) -> np.ndarray:
    if values:
        return np.concatenate([torch.as_tensor(v).detach().cpu().numpy() for v in values]).astype(dtype)
    return np.zeros(0, dtype=dtype)
