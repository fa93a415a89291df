"""Line attractors of the context-dependent integration task, from slow points.

At the condition of each context whose stream inputs are zero, three criteria, all fixed in
advance (config ``topology.graph``, documented in the schema):

(a) **Slow points.** Point ``h`` is slow when its speed ``||F(h) - h|| = sqrt(2 q)`` is below
    ``slow_speed_fraction * v_typ``, with ``v_typ`` the network's median per-step speed
    ``||s_{t+1} - s_t||`` over its probe trajectories (stored by the fixed-points stage as
    ``probe_speed``).
(b) **A 1-D manifold.** At least ``min_line_points`` slow points; their first principal component
    holds at least ``line_variance`` of their variance; their extent along it (max - min of the
    projections) is at least ``line_extent`` times the RMS spread of the probe states
    (``probe_spread``); and, ordered along it, no gap between neighbours exceeds ``line_gap``
    times that extent (connected in order).
(c) **Slow modes.** An eigenvalue is a slow mode when its time constant
    ``tau = 1 / |ln |lambda||`` is at least ``tau_factor * T`` (``T`` the task's trial length):
    ``|ln |lambda|| <= 1 / (tau_factor T)``; ``lambda = 1`` gives ``tau = inf``. The number of slow
    modes of a context is the median over its slow points (over all its points if none is slow;
    0 without points). Fast unstable modes (``ln |lambda| > 1 / (tau_factor T)``) must be absent
    (median 0): a line *attractor* attracts.

The context has a line attractor when (a), (b) and (c) hold with at least one slow mode.
Gated networks may spread integration over several slow modes (Maheswaranathan et al. 2019,
Fig. 3f): they are counted, not required to be one.

**Which points.** The finder converges every search to an exact fixed point where it can, so
along a slow line it returns the few isolated points the line drifts towards, not the line. When
the fixed-point shard holds dense slow-manifold samples at the context's condition
(:mod:`rnnuniv.fixedpoints.slow`: probe states relaxed onto the slow manifold, kept below a speed
cap, thinned to a spacing relative to ``probe_spread``, with their eigenvalues), the criteria are
applied to those (:func:`cdi_summary` with ``slow``); ``slow_speed_fraction`` must then not exceed
the cap they were kept at. Without them, to the finder's points (which keep only
``q <= fixed_points.max_q_slow``, so that cap, not ``slow_speed_fraction``, can decide which slow
points exist).
"""

from __future__ import annotations

import numpy as np

from rnnuniv.tasks import ContextIntegration

LINE_DEFAULTS = {
    "slow_speed_fraction": 0.01,
    "min_line_points": 5,
    "line_variance": 0.9,
    "line_extent": 0.5,
    "line_gap": 0.25,
    "tau_factor": 1.0,
}


def slow_mode_counts(eigenvalues: np.ndarray, n_steps: int, tau_factor: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Per point ``[P, S] -> ([P], [P])``: slow modes and fast unstable modes (criterion (c))."""
    log_modulus = np.log(np.maximum(np.abs(np.asarray(eigenvalues)), 1e-300))
    rate = 1.0 / (tau_factor * n_steps)
    return (np.abs(log_modulus) <= rate).sum(-1), (log_modulus > rate).sum(-1)


def line_attractor(
    states: np.ndarray,
    q: np.ndarray,
    eigenvalues: np.ndarray,
    probe_speed: float,
    probe_spread: float,
    n_steps: int,
    **options,
) -> dict:
    """Criteria (a)-(c) on the points ``states [P, S]`` (speeds ``q [P]``, eigenvalues ``[P, S]``)
    of one condition. Returns a JSON-ready dict: ``n_slow_points``, ``line_variance``,
    ``line_extent`` (relative to ``probe_spread``), ``max_gap`` (relative to the extent),
    ``n_slow_modes``, ``n_fast_unstable``, ``line_attractor``, and the smooth ``slowest_tau``."""
    unknown = set(options) - set(LINE_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown line-attractor options {sorted(unknown)}")
    opt = {**LINE_DEFAULTS, **options}
    states = np.asarray(states, dtype=np.float64)
    states = states.reshape(len(q), -1) if len(q) else np.zeros((0, 1))  # no point at this condition
    eigenvalues = np.asarray(eigenvalues).reshape(len(q), -1) if len(q) else np.zeros((0, 1))
    speed = np.sqrt(2.0 * np.maximum(np.asarray(q, dtype=np.float64), 0.0))
    slow = speed < opt["slow_speed_fraction"] * probe_speed
    slow_n, fast_n = slow_mode_counts(eigenvalues, n_steps, opt["tau_factor"])
    rows = np.flatnonzero(slow) if slow.any() else np.arange(len(q))
    record = {"n_points": int(len(q)), "n_slow_points": int(slow.sum()), "line_variance": float("nan"),
              "line_extent": float("nan"), "max_gap": float("nan"),
              "n_slow_modes": int(np.median(slow_n[rows])) if rows.size else 0,
              "n_fast_unstable": int(np.median(fast_n[rows])) if rows.size else 0,
              "slowest_tau": float("nan"), "line_attractor": False}
    if rows.size:
        lead = np.abs(np.asarray(eigenvalues)[rows, 0])
        with np.errstate(divide="ignore"):
            record["slowest_tau"] = float(np.median(1.0 / np.abs(np.log(lead))))
    line = np.flatnonzero(slow)
    if line.size >= 2:
        centred = states[line] - states[line].mean(0)
        _, sv, vt = np.linalg.svd(centred, full_matrices=False)
        var = sv**2
        record["line_variance"] = float(var[0] / max(var.sum(), 1e-300))
        along = np.sort(centred @ vt[0])
        extent = float(along[-1] - along[0])
        record["line_extent"] = extent / max(probe_spread, 1e-300)
        record["max_gap"] = float(np.diff(along).max() / max(extent, 1e-300))
    record["line_attractor"] = bool(
        line.size >= opt["min_line_points"]
        and record["line_variance"] >= opt["line_variance"]
        and record["line_extent"] >= opt["line_extent"]
        and record["max_gap"] <= opt["line_gap"]
        and record["n_slow_modes"] >= 1
        and record["n_fast_unstable"] == 0
    )
    return record


def cdi_contexts(condition_inputs: np.ndarray, task=None) -> list[int | None]:
    """Per context, the condition whose non-context inputs are nearest zero, as the task lays out
    its inputs (``Task.rest_conditions``; default the CDI layout: streams 0, 1, contexts 2, 3)."""
    return (task or ContextIntegration()).rest_conditions(condition_inputs)


def cdi_summary(
    points: dict,
    condition_inputs: np.ndarray,
    probe_speed: float,
    probe_spread: float,
    n_steps: int,
    slow: dict | None = None,
    slow_speed_cap: float | None = None,
    **options,
) -> dict:
    """Line attractor per context at zero stream input (module docstring) for one CDI network.

    points: the network's finder points (``points``, ``q``, ``eigenvalues``, ``condition_index``).
    slow: its slow-manifold samples (same keys, from the shard's ``slow_*`` arrays), or ``None``
        to judge the finder's points; ``slow_speed_cap``: the speed cap they were kept at
        (``slow_speed_fraction`` above it is an error: those points were not stored).

    Returns ``line_attractor`` (both contexts), ``line_attractor_ctx0/1``, ``n_slow_modes``
    (median over contexts), ``n_slow_modes_ctx0/1``, ``line_points`` (``"slow_manifold"`` or
    ``"fixed_points"``) and ``contexts`` (the per-context records).
    """
    source = points if slow is None else slow
    if slow is not None and slow_speed_cap is not None:
        fraction = options.get("slow_speed_fraction", LINE_DEFAULTS["slow_speed_fraction"])
        if fraction > slow_speed_cap:
            raise ValueError(
                f"slow_speed_fraction {fraction} exceeds the speed cap {slow_speed_cap} the slow-manifold "
                "samples were kept at (raise the fixed-points stage's slow_manifold.speed_cap and rerun it)"
            )
    contexts = []
    for k, c in enumerate(cdi_contexts(condition_inputs)):
        at = np.zeros(len(source["q"]), bool) if c is None else source["condition_index"] == c
        record = line_attractor(source["points"][at], source["q"][at], source["eigenvalues"][at],
                                probe_speed, probe_spread, n_steps, **options)
        contexts.append({"context": k, "condition": c, **record})
    slow_modes = [r["n_slow_modes"] for r in contexts]
    return {
        "line_attractor": all(r["line_attractor"] for r in contexts),
        "line_attractor_ctx0": contexts[0]["line_attractor"],
        "line_attractor_ctx1": contexts[1]["line_attractor"],
        "n_slow_modes": float(np.median(slow_modes)),
        "n_slow_modes_ctx0": slow_modes[0],
        "n_slow_modes_ctx1": slow_modes[1],
        "line_points": "fixed_points" if slow is None else "slow_manifold",
        "contexts": contexts,
    }
