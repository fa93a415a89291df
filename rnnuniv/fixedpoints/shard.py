"""The fixed-point shard ``.npz``: its one writer and its one reader.

A shard file holds every point of every analysed network of a training shard, concatenated, at
every fixed-point condition of the task. Keys:

- per network ``[N]``: ``network_ids`` (str), ``probe_speed`` and ``probe_spread``
  (:func:`rnnuniv.fixedpoints.probe_scales` of its probe trajectories);
- per condition ``[C]``: ``condition_names`` (str), ``condition_inputs [C, m]``;
- scalar: ``marginal_tol``, the one tolerance at which ``n_marginal`` and manifolds were decided;
- per point ``[P]`` (:data:`SHARD_ARRAYS`, with their stored dtypes): ``network_index``,
  ``condition_index``, ``points [P, S]``, ``inputs [P, m]``, ``q``, ``is_fixed``, ``eigenvalues
  [P, S]`` sorted by modulus, ``right_eigenvectors [P, S, k]`` and ``left_eigenvectors [P, k, S]``
  of the ``k`` leading modes, ``input_jacobians [P, S, m]``, ``n_unstable``, ``cluster``
  (manifold label, -1 isolated), ``n_marginal``, ``outputs [P, p]`` (readout at the point);
- optionally, dense slow-manifold samples (:mod:`rnnuniv.fixedpoints.slow`) at some conditions,
  per sample ``[R]`` (:data:`SLOW_ARRAYS`): ``slow_network_index``, ``slow_condition_index``,
  ``slow_points [R, S]``, ``slow_q``, ``slow_eigenvalues [R, S]`` sorted by modulus; scalars
  ``slow_version`` (:data:`SLOW_VERSION`; a reader refuses another), ``slow_speed_cap`` and
  ``slow_spacing`` (the options they were kept and thinned at), and ``slow_conditions`` (the
  condition indices sampled). A reader gets them per network as :attr:`NetworkPoints.slow`.

:func:`shard_fixed_points` computes these arrays and :func:`write_shard` writes them;
:func:`read_shard` / :func:`load_shard` split a file back into one :class:`NetworkPoints` per
network (a :class:`FixedPointShard`). Readers take the stored linearisation; they never recompute it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import torch

from .finder import _expand_inputs, find_fixed_points
from .initial import network_initial_states, probe_scales, rms_spread
from .linearise import linearized_frequency, n_marginal
from .results import FixedPoints, summarize
from .slow import SLOW_DEFAULTS, SLOW_VERSION, sample_slow_manifold, seed_states

__all__ = ["shard_fixed_points", "write_shard", "read_shard", "load_shard", "FixedPointShard",
           "NetworkPoints", "SHARD_ARRAYS", "SLOW_ARRAYS"]


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
    network_chunk: int | None = None,
    slow_manifold: Mapping | None = None,
    slow_conditions: Sequence[int] = (),
    n_steps: int | None = None,
    network_keys: Sequence[str] | None = None,
    n_settled: int = 0,
    settle_steps: int = 1000,
    **finder_options,
):
    """Fixed points of ``N`` networks (one cell, stacked ``params``) at every condition.

    trajectories: ``[N, K, T, S]`` probe states of each network (LSTM: ``[h, c]``), which seed the
        search (:func:`sample_initial_states`) and set each network's manifold length scale
        (``manifold_length_fraction * rms_spread``).
    conditions: ``(name, constant input [m])`` pairs, e.g. ``Task.fixed_point_conditions()``.
    n_modes: leading eigenvectors kept per point in the arrays (enough for every unstable mode of
        a flip-flop saddle; all ``S`` Jacobian columns would not fit on disk at paper scale).
    network_chunk: networks searched at once (``None``: all). The finder's memory grows with it
        (per network and Newton step ``n_inits`` float64 ``[S, S]`` Jacobians, their LU and the
        Levenberg-Marquardt systems; per point complex eigenvectors), so a chunk bounds the peak
        of a large shard. Each network's search is independent of the others, so the result does
        not depend on it beyond LAPACK's batch-dependent round-off.
    network_keys: one distinct name per network (its id): network ``i`` draws its ``n_inits``
        initial states from its own stream, seeded by ``(seed, network_keys[i])``
        (:func:`network_initial_states`), the same draws at every condition. A network's initial
        states are thus the same whatever other networks share its shard. ``None``: the networks'
        positions ``"0"``, ``"1"``, ...
    n_settled, settle_steps: besides the ``n_inits`` noisy states, ``n_settled`` probe states per
        network (evenly strided, :func:`seed_states`) run ``settle_steps`` steps of the network at
        the condition's constant input, ``h <- F(h, x)``, and join the search as initial states that
        skip Adam (:func:`find_fixed_points`' ``n_settled``). A stable fixed point is an attractor:
        every state of its basin settles into it, so each attractor whose basin the probe states
        visit is found, where the noisy states, which Adam carries to the nearest minimum of q,
        can miss it. A state that settles to a non-finite value starts from its probe state.
    slow_manifold: options of :func:`sample_slow_manifold` (``n_seeds``, ``iterations``,
        ``tau_factor``, ``speed_cap``, ``spacing``; :data:`SLOW_DEFAULTS`), or
        ``None`` (no slow samples). Then also ``slow_conditions`` (indices into ``conditions``
        where the slow manifold is sampled, e.g. CDI's zero-stream conditions) and ``n_steps``
        (the task's trial length, which sets the fast-slow boundary) are needed.

    Returns ``(arrays, table)``: per-point arrays concatenated over networks and conditions
    (``network_index``, ``condition_index``, ``points``, ``inputs``, ``q``, ``is_fixed``,
    ``eigenvalues``, ``right_eigenvectors`` [P, S, k], ``left_eigenvectors`` [P, k, S],
    ``input_jacobians``, ``n_unstable``, ``cluster``, ``outputs`` = readout at the point) plus
    ``condition_names`` and ``condition_inputs``; and a table with one row per network and
    condition from :func:`summarize`, with the lowest-q point's linearised frequency and number
    of marginal modes (at ``marginal_tol``). :func:`write_shard` writes them.
    """
    import pandas as pd

    from ..cells import ANALYTIC_JACOBIANS

    device = trajectories.device
    n_networks = trajectories.shape[0]
    k = min(n_modes, trajectories.shape[-1])
    names = [name for name, _ in conditions]
    condition_inputs = np.stack([np.asarray(x, dtype=np.float64) for _, x in conditions])
    arrays: dict[str, list] = {key: [] for key in _SHARD_ARRAYS}
    marginal_tol = float(finder_options.get("marginal_tol", 1e-3))
    rows: list[dict] = []
    chunk = n_networks if network_chunk is None else int(network_chunk)
    if chunk < 1:
        raise ValueError(f"network_chunk must be >= 1, got {network_chunk}")
    if n_settled < 0 or settle_steps < 0:
        raise ValueError(f"n_settled and settle_steps must be >= 0, got {n_settled}, {settle_steps}")
    speed, spread = probe_scales(trajectories) if n_networks else (torch.zeros(0), torch.zeros(0))
    slow_options = _slow_options(slow_manifold, slow_conditions, n_steps, len(conditions))
    slow_parts: dict[str, list] = {key: [] for key in _SLOW_ARRAYS}
    slow_seconds = 0.0
    if n_networks:
        trajectories = trajectories.to(torch.float64)
        scales = [manifold_length_fraction * rms_spread(t) for t in trajectories]
        keys = [str(i) for i in range(n_networks)] if network_keys is None else [str(k) for k in network_keys]
        h0 = network_initial_states(trajectories, keys, n_inits, noise_scale, seed)
        settle_from = seed_states(trajectories, n_settled) if n_settled else None
        for c, (name, x) in enumerate(conditions):
            x = torch.as_tensor(np.asarray(x), dtype=torch.float64, device=device)
            for start in range(0, n_networks, chunk):  # independent searches, bounded memory
                part = slice(start, min(start + chunk, n_networks))
                chunk_params = {key: v[part] for key, v in params.items()}
                step = partial(cell.step, chunk_params)
                analytic = partial(cell.jacobian, chunk_params) if cell.architecture in ANALYTIC_JACOBIANS else None
                starts = h0[part]
                if settle_from is not None:
                    settled = _settle(step, settle_from[part], x, settle_steps)
                    starts = torch.cat([starts, settled], 1)
                results = find_fixed_points(
                    step, x, starts, manifold_length_scale=scales[part], jacobian=analytic,
                    n_settled=0 if settle_from is None else settle_from.shape[1], **finder_options,
                )  # fmt: skip
                for i, result in enumerate(results, start):
                    readout = {key: v[i] for key, v in params.items() if key in ("w_out", "b_out")}
                    _append_points(arrays, result, i, c, k, marginal_tol, cell.readout(readout, result.points[:, :n_hidden]))
                    rows.append({"network_index": i, "condition": name, **_table_row(result, marginal_tol)})
                if slow_options is not None and c in slow_conditions:
                    started = time.perf_counter()
                    samples = sample_slow_manifold(
                        step, x, seed_states(trajectories[part], slow_options["n_seeds"]), speed[part].numpy(),
                        spread[part].numpy(), int(n_steps), jacobian=analytic,
                        **{k: v for k, v in slow_options.items() if k != "n_seeds"},
                    )  # fmt: skip
                    for i, sample in enumerate(samples, start):
                        _append_slow(slow_parts, sample, i, c)
                    slow_seconds += time.perf_counter() - started
    out = {key: _concat(values, _SHARD_ARRAYS[key]) for key, values in arrays.items()}
    out["condition_names"] = np.array(names, dtype=str)
    out["condition_inputs"] = condition_inputs
    out["marginal_tol"] = np.float64(marginal_tol)
    out["probe_speed"] = speed.numpy()
    out["probe_spread"] = spread.numpy()
    if slow_options is not None:
        out.update({key: _concat(values, _SLOW_ARRAYS[key]) for key, values in slow_parts.items()})
        out["slow_version"] = np.int64(SLOW_VERSION)
        out["slow_speed_cap"] = np.float64(slow_options["speed_cap"])
        out["slow_spacing"] = np.float64(slow_options["spacing"])
        out["slow_conditions"] = np.asarray(sorted(set(int(c) for c in slow_conditions)), dtype=np.int64)
        logging.getLogger(__name__).info(
            "slow-manifold samples: %d in %.1f s", len(out["slow_q"]), slow_seconds
        )
    return out, pd.DataFrame(rows, columns=["network_index", "condition", *_ROW_COLUMNS])


def _settle(step, states: torch.Tensor, x: torch.Tensor, n_steps: int) -> torch.Tensor:
    """``F^n_steps(h)`` at the constant input ``x [m]`` for states ``[N, K, S]``; a state that
    becomes non-finite is returned as it started."""
    inputs = _expand_inputs(x, states.shape[0], states.shape[1], True, states)
    h = states
    with torch.no_grad():
        for _ in range(n_steps):
            h = step(h, inputs)
    return torch.where(torch.isfinite(h).all(-1, keepdim=True), h, states)


def _append_points(arrays: dict[str, list], result: FixedPoints, i: int, c: int, k: int, marginal_tol: float, outputs) -> None:
    """Append one network's points at one condition to the per-point lists of ``arrays``."""
    p = len(result)
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
    arrays["outputs"].append(outputs)


def _slow_options(options: Mapping | None, conditions: Sequence[int], n_steps: int | None, n_conditions: int):
    """Checked slow-manifold options (defaults filled in), or ``None`` when not sampling."""
    if options is None:
        return None
    unknown = sorted(set(options) - set(SLOW_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown slow_manifold options {unknown}; valid: {sorted(SLOW_DEFAULTS)}")
    if n_steps is None or int(n_steps) < 1:
        raise ValueError(f"slow_manifold sampling needs the task's trial length n_steps, got {n_steps}")
    bad = [c for c in conditions if not 0 <= int(c) < n_conditions]
    if bad or not len(conditions):
        raise ValueError(f"slow_conditions must be indices into the {n_conditions} conditions, got {list(conditions)}")
    return {**SLOW_DEFAULTS, **options}


def _append_slow(parts: dict[str, list], sample: dict, i: int, c: int) -> None:
    p = len(sample["q"])
    parts["slow_network_index"].append(np.full(p, i))
    parts["slow_condition_index"].append(np.full(p, c))
    parts["slow_points"].append(sample["points"])
    parts["slow_q"].append(sample["q"])
    parts["slow_eigenvalues"].append(sample["eigenvalues"].to(torch.complex64))


_SLOW_ARRAYS = {  # per slow sample -> stored dtype
    "slow_network_index": np.int64,
    "slow_condition_index": np.int64,
    "slow_points": np.float64,
    "slow_q": np.float64,
    "slow_eigenvalues": np.complex64,
}
SLOW_ARRAYS = _SLOW_ARRAYS

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


SHARD_ARRAYS = _SHARD_ARRAYS  # public name of the per-point keys and their stored dtypes


def write_shard(path: str | Path, network_ids: Sequence[str], arrays: Mapping[str, np.ndarray]) -> None:
    """Write a shard file (atomically): ``network_ids`` and the arrays of :func:`shard_fixed_points`."""
    from .. import io

    io.save_npz(path, network_ids=np.array(list(network_ids), dtype=str), **arrays)


@dataclass
class NetworkPoints:
    """The points of one network read from a shard, in stored order (by condition, then q).

    Arrays absent from the file (older or hand-made shards) are ``None``; see the module docstring
    for shapes.
    """

    network_id: str
    points: np.ndarray | None = None
    inputs: np.ndarray | None = None
    q: np.ndarray | None = None
    is_fixed: np.ndarray | None = None
    eigenvalues: np.ndarray | None = None
    right_eigenvectors: np.ndarray | None = None
    left_eigenvectors: np.ndarray | None = None
    input_jacobians: np.ndarray | None = None
    n_unstable: np.ndarray | None = None
    cluster: np.ndarray | None = None
    n_marginal: np.ndarray | None = None
    outputs: np.ndarray | None = None
    condition_index: np.ndarray | None = None
    slow: dict[str, np.ndarray] | None = None  # points, q, eigenvalues, condition_index (slow samples)

    def arrays(self, keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """The stored per-point arrays (all, or those of ``keys``) as a dict, absent ones left out."""
        names = _PER_POINT if keys is None else keys
        return {k: getattr(self, k) for k in names if getattr(self, k) is not None}


@dataclass
class FixedPointShard:
    """A whole shard file: one :class:`NetworkPoints` per entry of ``network_ids``, in that order."""

    network_ids: list[str]
    networks: list[NetworkPoints]
    condition_names: list[str] | None = None
    condition_inputs: np.ndarray | None = None
    marginal_tol: float | None = None
    probe_speed: np.ndarray | None = None
    probe_spread: np.ndarray | None = None
    slow_speed_cap: float | None = None  # speed cap (x probe_speed) the slow samples were kept at
    slow_spacing: float | None = None
    slow_conditions: list[int] | None = None  # conditions whose slow manifold was sampled
    by_id: dict[str, NetworkPoints] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.by_id = {network.network_id: network for network in self.networks}


_PER_POINT = [f.name for f in fields(NetworkPoints) if f.name not in ("network_id", "slow")]


def read_shard(arrays: Mapping[str, np.ndarray]) -> FixedPointShard:
    """Split the arrays of a shard file (e.g. from ``io.load_npz``) by network.

    Needs ``network_ids`` and ``network_index``; every other key is optional. Points keep their
    stored order within a network.
    """
    missing = [k for k in ("network_ids", "network_index") if k not in arrays]
    if missing:
        raise ValueError(f"fixed-point shard arrays lack {missing}")
    ids = [str(i) for i in np.asarray(arrays["network_ids"]).tolist()]
    network_index = np.asarray(arrays["network_index"])
    order = np.argsort(network_index, kind="stable")
    bounds = np.searchsorted(network_index[order], np.arange(len(ids) + 1))
    present = [k for k in _PER_POINT if k in arrays]
    networks = [
        NetworkPoints(
            network_id, **{k: np.asarray(arrays[k])[order[bounds[i] : bounds[i + 1]]] for k in present}
        )
        for i, network_id in enumerate(ids)
    ]

    def optional(key):
        return np.asarray(arrays[key]) if key in arrays else None

    names = optional("condition_names")
    tol = optional("marginal_tol")
    slow = _read_slow(arrays, len(ids))
    for network, samples in zip(networks, slow or ()):
        network.slow = samples
    return FixedPointShard(
        network_ids=ids,
        networks=networks,
        condition_names=None if names is None else [str(n) for n in names.tolist()],
        condition_inputs=optional("condition_inputs"),
        marginal_tol=None if tol is None else float(tol),
        probe_speed=optional("probe_speed"),
        probe_spread=optional("probe_spread"),
        slow_speed_cap=None if slow is None else float(arrays["slow_speed_cap"]),
        slow_spacing=None if slow is None else float(arrays["slow_spacing"]),
        slow_conditions=None if slow is None else [int(c) for c in np.asarray(arrays["slow_conditions"]).tolist()],
    )


def _read_slow(arrays: Mapping[str, np.ndarray], n_networks: int) -> list[dict[str, np.ndarray]] | None:
    """Per network ``{points, q, eigenvalues, condition_index}`` of the slow samples, or ``None``.

    Any ``slow_*`` key requires all of them at :data:`SLOW_VERSION`: samples of another layout or
    meaning are refused rather than misread.
    """
    present = [k for k in arrays if str(k).startswith("slow_")]
    if not present:
        return None
    scalars = ("slow_version", "slow_speed_cap", "slow_spacing", "slow_conditions")
    missing = [k for k in (*_SLOW_ARRAYS, *scalars) if k not in arrays]
    if missing:
        raise ValueError(
            f"fixed-point shard has slow-manifold samples but lacks {missing} (rerun the fixed-points stage)"
        )
    version = int(arrays["slow_version"])
    if version != SLOW_VERSION:
        raise ValueError(
            f"fixed-point shard holds slow-manifold samples of version {version}, this code reads version "
            f"{SLOW_VERSION} (rerun the fixed-points stage)"
        )
    index = np.asarray(arrays["slow_network_index"])
    points, values = (np.asarray(arrays[k]) for k in ("slow_points", "slow_eigenvalues"))
    if points.ndim == 1:  # written with no sample at all: 1-D empty arrays
        points, values = points.reshape(0, 0), values.reshape(0, 0)
    out = []
    for i in range(n_networks):
        rows = np.flatnonzero(index == i)
        out.append({"points": points[rows], "q": np.asarray(arrays["slow_q"])[rows], "eigenvalues": values[rows],
                    "condition_index": np.asarray(arrays["slow_condition_index"])[rows]})
    return out


def load_shard(path: str | Path, required: Sequence[str] = ()) -> FixedPointShard:
    """:func:`read_shard` of a file; a missing file or missing ``required`` key is a clear error."""
    from .. import io

    keys = tuple(dict.fromkeys(("network_ids", "network_index", *required)))
    return read_shard(io.load_npz(path, required=keys))
