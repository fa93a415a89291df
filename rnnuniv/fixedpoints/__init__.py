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

Modules: ``finder`` (:func:`find_fixed_points`, clean-up and de-duplication), ``optimise`` (steps
1-2), ``linearise`` (step 4, :func:`n_marginal`, :func:`linearized_frequency`), ``manifolds``
(step 5), ``results`` (:class:`FixedPoints`, :class:`Manifold`, :func:`summarize`), ``initial``
(:func:`sample_initial_states`, :func:`network_initial_states` from each network's own stream,
:func:`probe_scales`), ``slow`` (:func:`sample_slow_manifold`: dense
slow points along a slow manifold, for the line-attractor test), and ``shard``: the one writer
(:func:`shard_fixed_points`, :func:`write_shard`) and reader (:func:`read_shard`,
:func:`load_shard`) of the fixed-point shard ``.npz``.

All tensors in a result are float64 (complex128 for eigen-quantities) on the device of ``h0``.
"""

from __future__ import annotations

from .finder import _select_points, find_fixed_points
from .initial import network_generator, network_initial_states, probe_scales, rms_spread, sample_initial_states
from .linearise import Jacobian, Step, linearized_frequency, n_marginal
from .results import FixedPoints, Manifold, summarize
from .slow import SLOW_DEFAULTS, SLOW_VERSION, sample_slow_manifold, seed_states, slow_boundary
from .shard import (
    SLOW_ARRAYS,
    FixedPointShard,
    NetworkPoints,
    load_shard,
    read_shard,
    shard_fixed_points,
    write_shard,
)

__all__ = [
    "FixedPoints",
    "Manifold",
    "find_fixed_points",
    "sample_initial_states",
    "network_generator",
    "network_initial_states",
    "rms_spread",
    "summarize",
    "linearized_frequency",
    "n_marginal",
    "probe_scales",
    "shard_fixed_points",
    "write_shard",
    "read_shard",
    "load_shard",
    "FixedPointShard",
    "NetworkPoints",
    "SLOW_ARRAYS",
    "SLOW_DEFAULTS",
    "SLOW_VERSION",
    "sample_slow_manifold",
    "seed_states",
    "slow_boundary",
]
