"""Per-network point sets read from a fixed-point shard, and the nodes built from them.

A fixed-point shard ``.npz`` (written and read by :mod:`rnnuniv.fixedpoints.shard`) holds
every point of every network concatenated; :func:`points_from_shard` splits it into one dict of
numpy arrays per network (``points [P, S]``, ``inputs``, ``q``, ``is_fixed``, ``eigenvalues
[P, S]`` sorted by modulus, ``right_eigenvectors [P, S, k]``, ``n_unstable``, ``cluster``,
``condition_index``, ``outputs [P, p]`` and, when stored, ``n_marginal``). The finder's stored
linearisation is read back here, never recomputed.

Nodes (:func:`skeleton_nodes`): one isolated fixed point, or one manifold (all points of a
network with the same condition and ``cluster >= 0`` label), never each point of a continuum.
Node attributes: ``kind`` (point/manifold), ``condition``, ``index`` (the representative point;
for a manifold its medoid), ``size``, ``n_unstable`` (manifold: median over members),
``stability`` (stable: no ``|lambda| > 1``; saddle; source: all unstable; manifold), ``q``,
``eig_modulus`` = ``|lambda_1|``, ``eigenvalues`` (leading ones as ``[re, im]``), ``frequency``
= ``|arg lambda_c| / 2 pi`` of the leading complex eigenvalue, ``n_marginal`` (eigenvalues with
``| |lambda| - 1 | < marginal_tol``, the finder's one tolerance, stored in the shard) and, with
codes, ``code``: the readout's sign pattern (``"+-+"``: ``y_i > 0`` is ``+``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import networkx as nx
import numpy as np
import torch

from ..cells import Cell, Params
from ..fixedpoints import FixedPoints, linearized_frequency, n_marginal, read_shard

Points = dict[str, np.ndarray]

_POINT_KEYS = ("points", "inputs", "q", "is_fixed", "eigenvalues", "n_unstable", "cluster")
_OPTIONAL_KEYS = ("condition_index", "outputs", "right_eigenvectors", "n_marginal")


@dataclass(frozen=True)
class Dynamics:
    """``N`` networks with a common state size ``S``, as batched maps.

    step: ``step(state [N, K, S], x [m] or [N, K, m]) -> [N, K, S]``.
    readout: ``readout(state [N, K, S]) -> [N, K, p]``.
    """

    step: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    readout: Callable[[torch.Tensor], torch.Tensor]
    n_inputs: int
    device: torch.device = torch.device("cpu")
    dtype: torch.dtype = torch.float64


def cell_dynamics(cell: Cell, params: Params, n_hidden: int) -> Dynamics:
    """The batched maps of stacked ``params`` (leading network axis ``N``), in their dtype."""

    def step(state: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return cell.step(params, state, x.to(state.dtype))

    def readout(state: torch.Tensor) -> torch.Tensor:
        return cell.readout(params, cell.hidden(state, n_hidden))

    w_in = params["w_in"]
    return Dynamics(step, readout, int(w_in.shape[-2]), w_in.device, w_in.dtype)


def points_from_fixed_points(
    results: Sequence[Sequence[FixedPoints]], dynamics: Dynamics | None = None
) -> list[Points]:
    """Per-network point dicts from ``results[network][condition]`` (as from ``find_fixed_points``).

    Same keys as :func:`points_from_shard` (all right eigenvectors are kept); ``outputs`` only when
    ``dynamics`` is given.
    """
    per_network = []
    for by_condition in results:
        parts = {k: [] for k in (*_POINT_KEYS, "right_eigenvectors", "condition_index")}
        for c, fp in enumerate(by_condition):
            arrays = fp.to_arrays()
            for key in (*_POINT_KEYS, "right_eigenvectors"):
                parts[key].append(arrays[key])
            parts["condition_index"].append(np.full(len(fp), c, dtype=np.int64))
        per_network.append({k: np.concatenate(v) for k, v in parts.items()})
    if dynamics is not None:
        add_outputs(per_network, dynamics)
    return per_network


def add_outputs(points: Sequence[Points], dynamics: Dynamics) -> None:
    """Set ``outputs [P, p]``, the readout at every point, for each network (one batched call)."""
    if not points:
        return
    width = max(len(p["q"]) for p in points)
    size = points[0]["points"].shape[1]
    states = np.zeros((len(points), max(width, 1), size))
    for i, p in enumerate(points):
        states[i, : len(p["q"])] = p["points"]
    with torch.no_grad():
        outputs = dynamics.readout(torch.from_numpy(states).to(dynamics.device, dynamics.dtype))
    outputs = outputs.double().cpu().numpy()
    for i, p in enumerate(points):
        p["outputs"] = outputs[i, : len(p["q"])]


def points_from_shard(arrays: Mapping[str, np.ndarray]) -> list[Points]:
    """Split a fixed-points ``.npz`` of a shard (all networks concatenated) by network.

    Returns one dict per entry of ``arrays["network_ids"]``, in that order, read with the shard's
    one reader (:func:`rnnuniv.fixedpoints.read_shard`).
    """
    keys = (*_POINT_KEYS, *_OPTIONAL_KEYS)
    return [network.arrays(keys) for network in read_shard(arrays).networks]


def code(output: np.ndarray) -> str:
    """Readout sign pattern: ``"+"`` where ``y_i > 0``, else ``"-"``."""
    return "".join("+" if y > 0 else "-" for y in np.asarray(output).ravel())


def skeleton_nodes(
    points: Points,
    conditions: Sequence[int] | None = None,
    include_slow: bool = False,
    n_eigenvalues: int = 4,
    with_codes: bool = False,
    marginal_tol: float = 1e-3,
) -> list[dict]:
    """Nodes of one network: isolated fixed points and manifolds (one node per cluster).

    Returns per node a dict of attributes (module docstring) plus ``members``: the indices of its
    points in ``points`` (not written to graphs). ``n_marginal`` is read from the shard when
    stored there, else counted at ``marginal_tol``.
    """
    keep = points["is_fixed"].astype(bool) if not include_slow else np.ones(len(points["q"]), bool)
    condition = points["condition_index"]
    if conditions is not None:
        keep &= np.isin(condition, np.asarray(conditions))
    size = points["points"].shape[1]
    eig = torch.as_tensor(points["eigenvalues"])
    frequency = linearized_frequency(eig).numpy() if len(eig) else np.zeros(0)
    if "n_marginal" in points:
        marginal = np.asarray(points["n_marginal"])
    else:
        marginal = n_marginal(eig, marginal_tol).numpy() if len(eig) else np.zeros(0, np.int64)
    cluster = points["cluster"]
    groups: list[np.ndarray] = [np.array([i]) for i in np.flatnonzero(keep & (cluster < 0))]
    in_manifold = keep & (cluster >= 0)
    for c, label in sorted(set(zip(condition[in_manifold].tolist(), cluster[in_manifold].tolist()))):
        groups.append(np.flatnonzero(in_manifold & (condition == c) & (cluster == label)))
    groups.sort(key=lambda g: (int(condition[g[0]]), len(g) > 1, int(g[0])))

    nodes = []
    for members in groups:
        states = points["points"][members]
        medoid = members[np.argmin(((states - states.mean(0)) ** 2).sum(1))]
        is_manifold = len(members) > 1
        n_unstable = int(np.round(np.median(points["n_unstable"][members])))
        if is_manifold:
            stability = "manifold"
        else:
            stability = "stable" if n_unstable == 0 else ("source" if n_unstable == size else "saddle")
        lead = points["eigenvalues"][medoid][:n_eigenvalues]
        node = {
            "kind": "manifold" if is_manifold else "point",
            "condition": int(condition[medoid]),
            "index": int(medoid),
            "size": int(len(members)),
            "n_unstable": n_unstable,
            "stability": stability,
            "q": float(points["q"][medoid]),
            "is_fixed": bool(points["is_fixed"][medoid]),
            "eig_modulus": float(np.abs(lead[0])) if len(lead) else float("nan"),
            "eigenvalues": [[float(z.real), float(z.imag)] for z in lead],
            "frequency": float(frequency[medoid]),
            "n_marginal": int(marginal[medoid]),
            "members": members,
        }
        if with_codes and "outputs" in points:
            node["code"] = code(points["outputs"][medoid])
            node["codes"] = sorted({code(y) for y in points["outputs"][members]})
        nodes.append(node)
    return nodes


def add_nodes(graph: nx.MultiDiGraph, nodes: list[dict]) -> None:
    """Add ``nodes`` (dicts of :func:`skeleton_nodes`) as graph nodes ``0..``, without members."""
    for i, node in enumerate(nodes):
        graph.add_node(i, **{k: v for k, v in node.items() if k != "members"})


def graph_to_json(graph: nx.MultiDiGraph) -> dict:
    """networkx node-link data (edges under ``"edges"``), readable with networkx alone."""
    return nx.node_link_data(graph, edges="edges")


def graph_from_json(data: dict) -> nx.MultiDiGraph:
    """Inverse of :func:`graph_to_json`."""
    return nx.node_link_graph(data, edges="edges")
