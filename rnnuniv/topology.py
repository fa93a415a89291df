"""Topology of the fixed points: graphs of the dynamical skeleton, and distances between them.

The claim tested here (Maheswaranathan et al. 2019): the geometry of the dynamics differs by
architecture, the *topology* of the fixed points -- which exist, their stability, how trajectories
move between them, their linearisation -- is universal. Each network's fixed points become a
``networkx.MultiDiGraph``; graphs are compared across the population.

Nodes
-----
A node is something that means something: one isolated fixed point, or one manifold (all points
of a network with the same condition and ``cluster >= 0`` label are ONE node), never each of the
hundreds of points of a continuum. Slow points (``q >= tol_q``) are left out unless
``include_slow``. Node attributes: ``kind`` (point/manifold), ``condition``, ``index`` (position of
the representative point in the network's point list; a manifold is represented by its medoid,
the member nearest its centroid), ``size``, ``n_unstable`` (manifold: median over members),
``stability`` (stable: no ``|lambda| > 1``; saddle; source: all unstable; manifold), ``q``,
``eig_modulus`` = ``|lambda_1|``, ``eigenvalues`` (leading ones as ``[re, im]``), ``frequency`` =
``|arg lambda_c| / 2 pi`` of the leading complex eigenvalue, and for the flip-flop ``code``: the
readout's sign pattern at the node (``"+-+"``: ``y_i > 0`` is ``+``), the same convention
for every network, so graphs can be matched by meaning as well as by shape.

Flip-flop graph (:func:`flipflop_graphs`)
-----------------------------------------
Nodes: the zero-input fixed points. Edges, each found by a rollout under the autonomous map
``h_{t+1} = F(h_t, 0)`` until the state first comes within ``match_tol`` of a node (within
``match_tol + s/2`` of a manifold's member points, ``s`` = its largest nearest-neighbour spacing):

* unstable-manifold edges (``kind="unstable"``): from every saddle ``h*`` start at
  ``h* +/- eps v`` for each unstable direction ``v`` (unit-norm real eigenvector; a complex pair
  gives ``Re v`` and ``Im v``); the edge carries ``mode`` (rank of the eigenvalue) and ``sign``.
  The start node only counts once the trajectory has left it (farther than ``leave_tol``), so a
  return is a homoclinic loop (a self-edge).
* input edges (``kind="input"``): from every stable node apply one step of pulse ``+/- e_k``
  (``h_1 = F(h*, +/- e_k)``, as in the task), then relax under zero input; edge ``(channel=k, sign)``.

All rollouts of a shard (every start of every network) run as one batched loop ``[N, K, S]``.
The *input graph* is the undirected simple graph of input edges between distinct stable nodes;
for an ideal 3-bit memory it is the 3-cube ``Q_3``, and *ideal* means moreover that the 8 stable
codes are distinct and every pulse ``(k, s)`` from code ``c`` lands on code ``c`` with bit ``k`` set
to ``s``.

Sine and CDI graphs (:func:`bifurcation_graphs`)
-----------------------------------------------
Nodes are ``(condition, fixed point)`` at every condition of the grid. Conditions are ordered into
chains along the grid (sine: by command ``x``; CDI: per context by the relevant stream's value
``u``). Nodes at consecutive grid values are matched by the assignment that minimises the total
distance between representative states (Hungarian algorithm); matched pairs are edges
(``kind="continuation"``, attribute ``distance``); an unmatched node is a birth or a death (a
bifurcation).

Distances
---------
Flip-flop (:func:`flipflop_distance`), Weisfeiler-Lehman with an exact isomorphism check. Every
node starts with its label ``l_0(v)`` (stable: ``S<code>``; saddle: ``U<n_unstable>``; manifold:
``M<codes>``); every edge has a label (input: ``in<k><sign>``; unstable: ``unstable`` -- the
eigenvector's sign and the order of near-equal eigenvalues are arbitrary, so they are not used).
WL refines ``l_{i+1}(v) = hash(l_i(v), sorted{(out, e, l_i(u)) : v ->e u},
sorted{(in, e, l_i(u)) : u ->e v})`` for ``i < h`` (default ``h = 3``). The feature vector
``phi(G)`` counts each label of each iteration. For two graphs, with ``L1 = ||phi(A) - phi(B)||_1``
and ``T = ||phi(A)||_1 + ||phi(B)||_1``, the weighted Jaccard (Ruzicka) distance is

    d_WL(A, B) = 1 - sum_l min(phi_l(A), phi_l(B)) / sum_l max(phi_l(A), phi_l(B)) = 2 L1 / (T + L1),

a metric in [0, 1], computed for all pairs at once from one ``cdist(p=1)``. Then
``d(A, B) = 0`` exactly when ``A`` and ``B`` are isomorphic as labelled multigraphs (VF2 with node
and edge label matching, run only inside groups of equal WL histograms, since an isomorphism
preserves them); non-isomorphic pairs that WL cannot separate (``L1 = 0``) get
``d = 1 / (T + 1)``, below the smallest distance WL can resolve (``L1 >= 1`` gives
``d >= 2 / (T + 1)``).

Sine and CDI (:func:`signature_distance`): each network has a per-condition signature
``s[c, f]`` (conditions in the task's order) with features ``f`` = (number of stable nodes, of
nodes with one unstable direction, with more, of manifolds, ``|lambda_1|`` and linearised
frequency of the principal node; 0 where there is none). The principal node of a condition is,
for the sine task, the node of largest ``|lambda_1|`` among those with a complex leading pair (the
centre of the oscillation), for CDI the node with ``|lambda_1|`` nearest 1 (the slowest). The
distance is the feature-averaged Bray-Curtis dissimilarity

    d(a, b) = (1 / F) sum_f [ sum_c |s_a[c, f] - s_b[c, f]| / sum_c (|s_a[c, f]| + |s_b[c, f]|) ]

(a term 0/0 counts 0), in [0, 1], 0 for equal signatures. Every quantity is invariant to
permutations and orthogonal changes of the hidden coordinates, so both distances are too.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import networkx as nx
import numpy as np
import torch
from networkx.algorithms import isomorphism as nx_iso
from scipy.optimize import linear_sum_assignment

from .cells import Cell, Params
from .fixedpoints import FixedPoints, linearized_frequency, n_marginal

__all__ = [
    "Dynamics",
    "cell_dynamics",
    "points_from_fixed_points",
    "points_from_shard",
    "add_outputs",
    "skeleton_nodes",
    "flipflop_graphs",
    "relax_to_nodes",
    "input_graph",
    "isomorphism_classes",
    "flipflop_summary",
    "bifurcation_graphs",
    "condition_chains",
    "sine_summary",
    "cdi_summary",
    "signature",
    "SIGNATURE_FEATURES",
    "graph_to_json",
    "graph_from_json",
    "wl_features",
    "flipflop_distance",
    "signature_distance",
    "universality_summary",
]

SIGNATURE_FEATURES = (
    "n_stable", "n_one_unstable", "n_multi_unstable", "n_manifolds", "principal_modulus",
    "principal_frequency",
)  # fmt: skip

Points = dict[str, np.ndarray]


# ----------------------------------------------------------------------------------------------
# The maps: one batched step and readout for a population of networks
# ----------------------------------------------------------------------------------------------
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


# ----------------------------------------------------------------------------------------------
# Per-network point sets
# ----------------------------------------------------------------------------------------------
_POINT_KEYS = ("points", "inputs", "q", "is_fixed", "eigenvalues", "n_unstable", "cluster")


def points_from_fixed_points(
    results: Sequence[Sequence[FixedPoints]], dynamics: Dynamics | None = None
) -> list[Points]:
    """Per-network point dicts from ``results[network][condition]`` (as from ``find_fixed_points``).

    Each dict holds numpy arrays over the network's ``P`` points (all conditions): ``points [P, S]``,
    ``inputs [P, m]``, ``q``, ``is_fixed``, ``eigenvalues [P, S]``, ``n_unstable``, ``cluster``,
    ``condition_index [P]`` and, when ``dynamics`` is given, ``outputs [P, p]`` (the readout).
    """
    per_network = []
    for by_condition in results:
        parts = {k: [] for k in (*_POINT_KEYS, "condition_index")}
        for c, fp in enumerate(by_condition):
            arrays = fp.to_arrays()
            for key in _POINT_KEYS:
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

    Returns one dict per entry of ``arrays["network_ids"]``, in that order, with the keys of
    :func:`points_from_fixed_points` (``outputs`` when the file has them).
    """
    network_index = np.asarray(arrays["network_index"])
    keys = [k for k in (*_POINT_KEYS, "condition_index", "outputs") if k in arrays]
    order = np.argsort(network_index, kind="stable")
    bounds = np.searchsorted(network_index[order], np.arange(len(arrays["network_ids"]) + 1))
    return [
        {k: np.asarray(arrays[k])[order[bounds[i] : bounds[i + 1]]] for k in keys}
        for i in range(len(arrays["network_ids"]))
    ]


# ----------------------------------------------------------------------------------------------
# Nodes
# ----------------------------------------------------------------------------------------------
def _code(output: np.ndarray) -> str:
    return "".join("+" if y > 0 else "-" for y in np.asarray(output).ravel())


def skeleton_nodes(
    points: Points,
    conditions: Sequence[int] | None = None,
    include_slow: bool = False,
    n_eigenvalues: int = 4,
    with_codes: bool = False,
) -> list[dict]:
    """Nodes of one network: isolated fixed points and manifolds (one node per cluster).

    Returns per node a dict of attributes (see the module docstring) plus ``members``: the
    indices of its points in ``points`` (not written to the graph).
    """
    keep = points["is_fixed"].astype(bool) if not include_slow else np.ones(len(points["q"]), bool)
    condition = points["condition_index"]
    if conditions is not None:
        keep &= np.isin(condition, np.asarray(conditions))
    size = points["points"].shape[1]
    eig = torch.as_tensor(points["eigenvalues"])
    frequency = linearized_frequency(eig).numpy() if len(eig) else np.zeros(0)
    marginal = n_marginal(eig, 0.01).numpy() if len(eig) else np.zeros(0, np.int64)
    cluster = points["cluster"]
    groups: list[np.ndarray] = []
    isolated = np.flatnonzero(keep & (cluster < 0))
    groups += [np.array([i]) for i in isolated]
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
            node["code"] = _code(points["outputs"][medoid])
            node["codes"] = sorted({_code(y) for y in points["outputs"][members]})
        node["label"] = _node_label(node)
        nodes.append(node)
    return nodes


def _node_label(node: dict) -> str:
    """The categorical label used for matching: stability class and, where meaningful, code."""
    if node["stability"] == "manifold":
        return "M" + ",".join(node.get("codes", []))
    if node["stability"] == "stable":
        return "S" + node.get("code", "")
    return f"U{node['n_unstable']}"


def _add_nodes(graph: nx.MultiDiGraph, nodes: list[dict]) -> None:
    for i, node in enumerate(nodes):
        graph.add_node(i, **{k: v for k, v in node.items() if k != "members"})


# ----------------------------------------------------------------------------------------------
# Flip-flop graphs: batched rollouts
# ----------------------------------------------------------------------------------------------
def _pad(rows: list[np.ndarray], width: int, fill: float, shape_tail=(), dtype=np.float64) -> np.ndarray:
    out = np.full((len(rows), max(width, 1), *shape_tail), fill, dtype=dtype)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def _jacobians(step, states: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``dF/dh`` at every state ``[N, K, S] -> [N, K, S, S]`` (rows of F are independent)."""
    jac = torch.func.jacrev(lambda h: step(h, x).sum(dim=(0, 1)))(states)  # [S, N, K, S]
    return jac.permute(1, 2, 0, 3)


def _unstable_directions(jac: np.ndarray, margin: float = 1e-9) -> list[tuple[int, np.ndarray]]:
    """``(mode rank, unit direction)`` for every unstable direction of one Jacobian ``[S, S]``.

    Real eigenvalue: its eigenvector; complex pair (one of each conjugate pair): Re v and Im v.
    """
    values, vectors = np.linalg.eig(jac)
    order = np.argsort(-np.abs(values), kind="stable")
    out = []
    for rank, j in enumerate(order):
        if np.abs(values[j]) <= 1.0 + margin:
            break
        v = vectors[:, j]
        if abs(values[j].imag) <= 1e-12:
            parts = [v.real]
        elif values[j].imag > 0:
            parts = [v.real, v.imag]
        else:
            continue
        out += [(rank, p / np.linalg.norm(p)) for p in parts if np.linalg.norm(p) > 0]
    return out


def relax_to_nodes(
    step,
    starts: torch.Tensor,
    valid: torch.Tensor,
    node_points: torch.Tensor,
    point_node: torch.Tensor,
    point_tol: torch.Tensor,
    start_node: torch.Tensor,
    leave_tol: float,
    n_inputs: int,
    max_steps: int = 2000,
    check_every: int = 5,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run ``h_{t+1} = F(h_t, 0)`` from every start until it first comes near a node.

    starts ``[N, K, S]``, valid ``[N, K]`` (padding rows are False); node_points ``[N, P, S]`` the
    member points of every node, point_node ``[N, P]`` their node (-1: padding), point_tol ``[N, P]``
    the arrival radius; start_node ``[N, K]`` the node a start leaves (-1: none), eligible as a
    target only after the trajectory was farther than ``leave_tol`` from it.
    Returns target node ``[N, K]`` (-1: none reached within ``max_steps``) and arrival step ``[N, K]``.
    """
    zero = starts.new_zeros(n_inputs)
    state = starts
    target = torch.full(valid.shape, -1, dtype=torch.long, device=starts.device)
    arrival = torch.full_like(target, -1)
    left = start_node < 0
    own = point_node.unsqueeze(1) == start_node.unsqueeze(-1)  # [N, K, P]
    tol = torch.where(point_node >= 0, point_tol, -math.inf).unsqueeze(1)  # [N, 1, P]
    with torch.no_grad():
        for t in range(max_steps + 1):
            if t % check_every == 0 or t == max_steps:
                dist = torch.nan_to_num(torch.cdist(state, node_points), nan=math.inf)  # [N, K, P]
                left |= torch.where(own, dist, math.inf).amin(-1) > leave_tol
                eligible = (dist <= tol) & (~own | left.unsqueeze(-1))
                best, where = torch.where(eligible, dist, math.inf).min(-1)
                hit = torch.isfinite(best) & (target < 0) & valid
                target = torch.where(hit, torch.gather(point_node, 1, where), target)
                arrival = torch.where(hit, t, arrival)
                if bool(((target >= 0) | ~valid).all()):
                    break
            if t < max_steps:
                state = step(state, zero)
    return target, arrival


def flipflop_graphs(
    dynamics: Dynamics,
    points: Sequence[Points],
    network_ids: Sequence[str] | None = None,
    *,
    eps: float = 1e-3,
    match_tol: float = 0.02,
    leave_tol: float | None = None,
    max_steps: int = 2000,
    check_every: int = 5,
    include_slow: bool = False,
    n_eigenvalues: int = 4,
    pulse_amplitude: float = 1.0,
    condition: int = 0,
) -> list[nx.MultiDiGraph]:
    """Fixed-point graphs of ``N`` flip-flop networks (module docstring), all rollouts batched.

    dynamics: the ``N`` networks' batched maps (float64 weights recommended).
    points: per network, the dict of :func:`points_from_shard` / :func:`points_from_fixed_points`
        (needs ``outputs`` for the codes).
    eps: distance of the unstable-manifold starts from the saddle.
    match_tol: arrival radius around an isolated node (a manifold adds half its point spacing).
    leave_tol: distance a trajectory must reach from its start node before returning to it
        counts (a homoclinic loop); default ``max(2 match_tol, 2 eps)``.
    max_steps, check_every: rollout length and how often arrival is tested.
    condition: the condition index holding the zero-input fixed points.
    Returns one graph per network; graph attributes ``network_id``, ``n_unresolved`` (starts that
    reached no node) and ``n_bits``.
    """
    n_networks = len(points)
    leave = max(2 * match_tol, 2 * eps) if leave_tol is None else leave_tol
    m = dynamics.n_inputs
    nodes = [
        skeleton_nodes(p, [condition], include_slow, n_eigenvalues, with_codes=True) for p in points
    ]
    graphs = []
    for i in range(n_networks):
        graph = nx.MultiDiGraph(network_id=None if network_ids is None else str(network_ids[i]),
                                n_bits=m, kind="flipflop")
        _add_nodes(graph, nodes[i])
        graphs.append(graph)
    if n_networks == 0 or not any(nodes):
        for g in graphs:
            g.graph["n_unresolved"] = 0
        return graphs
    size = points[0]["points"].shape[1]

    def tensor(array: np.ndarray) -> torch.Tensor:
        array = torch.from_numpy(array)
        dtype = dynamics.dtype if array.is_floating_point() else array.dtype
        return array.to(dynamics.device, dtype)

    # node member points, padded: [N, P, S], their node [N, P] and arrival radius [N, P]
    member_states, member_node, member_tol = [], [], []
    for p, net_nodes in zip(points, nodes):
        rows, owner, tols = [np.zeros((0, size))], [np.zeros(0, np.int64)], [np.zeros(0)]
        for v, node in enumerate(net_nodes):
            states = p["points"][node["members"]]
            spacing = 0.0
            if len(states) > 1:
                d = np.sqrt(((states[:, None] - states[None]) ** 2).sum(-1))
                np.fill_diagonal(d, np.inf)
                spacing = float(d.min(1).max())
            rows.append(states)
            owner.append(np.full(len(states), v))
            tols.append(np.full(len(states), match_tol + spacing / 2))
        member_states.append(np.concatenate(rows))
        member_node.append(np.concatenate(owner))
        member_tol.append(np.concatenate(tols))
    width = max(len(r) for r in member_node)
    node_points = tensor(_pad(member_states, width, 0.0, (size,)))
    point_node = tensor(_pad(member_node, width, -1, dtype=np.int64))
    point_tol = tensor(_pad(member_tol, width, -math.inf))

    # Jacobians at every saddle, batched: [N, Ks, S, S]
    saddles = [[v for v, n in enumerate(net) if n["stability"] in ("saddle", "source")] for net in nodes]
    ks = max(len(s) for s in saddles)
    starts, start_node, edge_info = [], [], []  # per network lists
    for i in range(n_networks):
        starts.append([])
        start_node.append([])
        edge_info.append([])
    if ks > 0:
        saddle_states = tensor(_pad(
            [points[i]["points"][[nodes[i][v]["index"] for v in saddles[i]]].reshape(-1, size)
             for i in range(n_networks)], ks, 0.0, (size,)))  # fmt: skip
        jac = _jacobians(dynamics.step, saddle_states, saddle_states.new_zeros(m))
        jac = jac.detach().double().cpu().numpy()
        saddle_states = saddle_states.double().cpu()
        for i in range(n_networks):
            for j, v in enumerate(saddles[i]):
                h = saddle_states[i, j].numpy()
                for rank, direction in _unstable_directions(jac[i, j]):
                    for sign in (1, -1):
                        starts[i].append(h + sign * eps * direction)
                        start_node[i].append(v)
                        edge_info[i].append((v, {"kind": "unstable", "mode": rank, "sign": sign,
                                                 "label": "unstable"}))

    # input pulses from every stable node and manifold: one step of +/- e_k, batched
    stable = [[v for v, n in enumerate(net) if n["stability"] in ("stable", "manifold")] for net in nodes]
    kp = max(len(s) for s in stable) * 2 * m
    if kp > 0:
        pulse_states, pulse_inputs = [], []
        for i in range(n_networks):
            rows, xs = [], []
            for v in stable[i]:
                h = points[i]["points"][nodes[i][v]["index"]]
                for k in range(m):
                    for sign in (1, -1):
                        x = np.zeros(m)
                        x[k] = sign * pulse_amplitude
                        rows.append(h)
                        xs.append(x)
                        edge_info[i].append((v, {"kind": "input", "channel": k, "sign": sign,
                                                 "label": f"in{k}{'+' if sign > 0 else '-'}"}))
            pulse_states.append(np.array(rows).reshape(-1, size))
            pulse_inputs.append(np.array(xs).reshape(-1, m))
        with torch.no_grad():
            kicked = dynamics.step(
                tensor(_pad(pulse_states, kp, 0.0, (size,))),
                tensor(_pad(pulse_inputs, kp, 0.0, (m,))),
            ).double().cpu().numpy()
        for i in range(n_networks):
            for j in range(len(pulse_states[i])):
                starts[i].append(kicked[i, j])
                start_node[i].append(-1)

    k_all = max(len(s) for s in starts)
    if k_all == 0:
        for g in graphs:
            g.graph["n_unresolved"] = 0
        return graphs
    valid = tensor(_pad([np.ones(len(s), bool) for s in starts], k_all, False, dtype=bool))
    target, _ = relax_to_nodes(
        dynamics.step,
        tensor(_pad([np.array(s).reshape(-1, size) for s in starts], k_all, 0.0, (size,))),
        valid,
        node_points,
        point_node,
        point_tol,
        tensor(_pad([np.array(s, dtype=np.int64) for s in start_node], k_all, -1, dtype=np.int64)),
        leave,
        m,
        max_steps,
        check_every,
    )
    target = target.cpu().numpy()
    for i, graph in enumerate(graphs):
        unresolved = 0
        for j, (source, attrs) in enumerate(edge_info[i]):
            if target[i, j] < 0:
                unresolved += 1
                continue
            graph.add_edge(source, int(target[i, j]), **attrs)
        graph.graph["n_unresolved"] = unresolved
    return graphs


def input_graph(graph: nx.MultiDiGraph) -> nx.Graph:
    """Undirected simple graph of input edges between distinct stable nodes (and manifolds)."""
    memory = [v for v, d in graph.nodes(data=True) if d["stability"] in ("stable", "manifold")]
    simple = nx.Graph()
    simple.add_nodes_from(memory)
    simple.add_edges_from(
        (u, v) for u, v, d in graph.edges(data=True)
        if d["kind"] == "input" and u != v and v in simple and u in simple
    )  # fmt: skip
    return simple


def flipflop_summary(graph: nx.MultiDiGraph) -> dict:
    """Per-network numbers of a flip-flop graph.

    n_stable: isolated stable fixed points; n_stable_codes: distinct readout codes among them;
    n_memory_codes: distinct codes of stable points and manifold members (memory realised by
    manifolds counted too); eight_stable: ``n_stable == 2^bits`` with distinct codes;
    eight_memory: ``n_memory_codes == 2^bits``; input_cube: input graph isomorphic to the
    ``bits``-cube; input_ideal: the cube with every pulse ``(k, s)`` setting bit ``k`` to ``s``;
    saddles_linking: 1-saddles whose two unstable branches reach two different stable nodes
    whose codes differ in exactly one bit.
    """
    bits = int(graph.graph.get("n_bits", 3))
    data = dict(graph.nodes(data=True))
    stable = [v for v, d in data.items() if d["stability"] == "stable"]
    manifolds = [v for v, d in data.items() if d["stability"] == "manifold"]
    stable_codes = {data[v]["code"] for v in stable}
    memory_codes = stable_codes | {c for v in manifolds for c in data[v]["codes"]}
    one_saddles = [v for v, d in data.items() if d["stability"] == "saddle" and d["n_unstable"] == 1]
    linking = 0
    for v in one_saddles:
        ends = {w for _, w, d in graph.out_edges(v, data=True) if d["kind"] == "unstable"}
        codes = [data[w].get("code", "") for w in ends if data[w]["stability"] == "stable"]
        if len(ends) == 2 and len(codes) == 2 and sum(a != b for a, b in zip(*codes)) == 1:
            linking += 1
    simple = input_graph(graph)
    is_cube = nx.is_isomorphic(simple, nx.hypercube_graph(bits))
    ideal = is_cube and len(stable) == 2**bits and len(stable_codes) == 2**bits and not manifolds
    if ideal:
        for u, v, d in graph.edges(data=True):
            if d["kind"] != "input" or u not in stable:
                continue
            expected = list(data[u]["code"])
            expected[d["channel"]] = "+" if d["sign"] > 0 else "-"
            if data[v].get("code") != "".join(expected) or data[v]["stability"] != "stable":
                ideal = False
                break
    return {
        "n_nodes": graph.number_of_nodes(),
        "n_stable": len(stable),
        "n_saddles": sum(d["stability"] in ("saddle", "source") for d in data.values()),
        "n_manifolds": len(manifolds),
        "n_stable_codes": len(stable_codes),
        "n_memory_codes": len(memory_codes),
        "eight_stable": len(stable) == 2**bits and len(stable_codes) == 2**bits,
        "eight_memory": len(memory_codes) == 2**bits,
        "input_cube": bool(is_cube),
        "input_ideal": bool(ideal),
        "n_one_saddles": len(one_saddles),
        "saddles_linking": linking,
        "n_unresolved": int(graph.graph.get("n_unresolved", 0)),
    }


# ----------------------------------------------------------------------------------------------
# Sine and CDI: bifurcation graphs over a grid of conditions
# ----------------------------------------------------------------------------------------------
def condition_chains(task_name: str, condition_inputs: np.ndarray) -> tuple[list[list[int]], np.ndarray]:
    """Conditions ordered along the grid, and each one's grid value.

    sine: one chain sorted by the command ``x``; cdi: one chain per context (the one-hot input
    channels 2, 3) sorted by the relevant stream ``u``; flip-flop: each condition alone.
    Conditions repeating an earlier input vector are left out of the chains.
    Returns ``(chains, value [C])``.
    """
    inputs = np.asarray(condition_inputs, dtype=np.float64)
    n = len(inputs)
    unique = [c for c in range(n) if not any(np.array_equal(inputs[c], inputs[d]) for d in range(c))]
    if task_name == "sine":
        value = inputs[:, 0]
        return [sorted(unique, key=lambda c: value[c])], value
    if task_name == "cdi":
        context = inputs[:, 2:4].argmax(1)
        value = inputs[np.arange(n), context]
        chains = [sorted((c for c in unique if context[c] == k), key=lambda c: value[c]) for k in (0, 1)]
        return [ch for ch in chains if ch], value
    return [[c] for c in unique], np.zeros(n)


def bifurcation_graphs(
    points: Sequence[Points],
    chains: list[list[int]],
    values: np.ndarray,
    network_ids: Sequence[str] | None = None,
    condition_names: Sequence[str] | None = None,
    *,
    include_slow: bool = False,
    n_eigenvalues: int = 4,
    continuation_tol: float | None = None,
) -> list[nx.MultiDiGraph]:
    """Nodes ``(condition, fixed point)``; edges continue nodes between neighbouring grid values.

    Between consecutive conditions ``a, b`` of a chain, node sets are matched by the assignment of
    least total distance between representative states (``scipy linear_sum_assignment``); pairs
    farther than ``continuation_tol`` (if given) are not continued.
    """
    graphs = []
    for i, p in enumerate(points):
        nodes = skeleton_nodes(p, None, include_slow, n_eigenvalues)
        for node in nodes:
            node["value"] = float(values[node["condition"]])
            if condition_names is not None:
                node["condition_name"] = str(condition_names[node["condition"]])
        graph = nx.MultiDiGraph(network_id=None if network_ids is None else str(network_ids[i]),
                                kind="bifurcation")
        _add_nodes(graph, nodes)
        by_condition: dict[int, list[int]] = {}
        for v, node in enumerate(nodes):
            by_condition.setdefault(node["condition"], []).append(v)
        for chain in chains:
            for a, b in zip(chain[:-1], chain[1:]):
                va, vb = by_condition.get(a, []), by_condition.get(b, [])
                if not va or not vb:
                    continue
                xa = p["points"][[nodes[v]["index"] for v in va]]
                xb = p["points"][[nodes[v]["index"] for v in vb]]
                dist = np.sqrt(((xa[:, None] - xb[None]) ** 2).sum(-1))
                for r, c in zip(*linear_sum_assignment(dist)):
                    if continuation_tol is None or dist[r, c] <= continuation_tol:
                        graph.add_edge(va[r], vb[c], kind="continuation", label="continuation",
                                       distance=float(dist[r, c]))
        graphs.append(graph)
    return graphs


def _principal(nodes: list[dict], task_name: str) -> dict | None:
    if not nodes:
        return None
    if task_name == "sine":
        rotating = [n for n in nodes if n["frequency"] > 0]
        return max(rotating, key=lambda n: n["eig_modulus"]) if rotating else None
    return min(nodes, key=lambda n: abs(n["eig_modulus"] - 1.0))


def signature(graph: nx.MultiDiGraph, n_conditions: int, task_name: str) -> np.ndarray:
    """Per-condition signature ``[C, F]`` of a bifurcation graph (features: SIGNATURE_FEATURES)."""
    out = np.zeros((n_conditions, len(SIGNATURE_FEATURES)))
    by_condition: dict[int, list[dict]] = {}
    for _, d in graph.nodes(data=True):
        by_condition.setdefault(d["condition"], []).append(d)
    for c, nodes in by_condition.items():
        out[c, 0] = sum(n["stability"] == "stable" for n in nodes)
        out[c, 1] = sum(n["stability"] != "manifold" and n["n_unstable"] == 1 for n in nodes)
        out[c, 2] = sum(n["stability"] != "manifold" and n["n_unstable"] > 1 for n in nodes)
        out[c, 3] = sum(n["stability"] == "manifold" for n in nodes)
        lead = _principal(nodes, task_name)
        if lead is not None:
            out[c, 4] = lead["eig_modulus"]
            out[c, 5] = lead["frequency"]
    return out


def sine_summary(graph: nx.MultiDiGraph, commands: np.ndarray, frequency_of) -> dict:
    """Linearised vs commanded frequency of a sine network.

    commands: ``x`` per condition ``[C]``; frequency_of: ``x -> w`` (``task.frequency``).
    Per condition the principal node's linearised frequency ``f_c`` is compared with
    ``w_c = w_min + (w_max - w_min) x_c``: Pearson correlation over conditions with a principal
    node (NaN with fewer than 3 or no spread), median relative error ``|f - w| / w``.
    """
    sig = signature(graph, len(commands), "sine")
    commanded = np.asarray(frequency_of(np.asarray(commands, dtype=np.float64)), dtype=np.float64)
    linear = sig[:, 5]
    has = linear > 0
    corr = float("nan")
    if has.sum() >= 3 and np.std(linear[has]) > 0 and np.std(commanded[has]) > 0:
        corr = float(np.corrcoef(linear[has], commanded[has])[0, 1])
    rel = np.abs(linear[has] - commanded[has]) / np.maximum(commanded[has], 1e-12)
    return {
        "n_nodes": graph.number_of_nodes(),
        "n_conditions_with_oscillation": int(has.sum()),
        "frequency_correlation": corr,
        "frequency_median_relative_error": float(np.median(rel)) if rel.size else float("nan"),
        "linearized_frequency": linear.tolist(),
        "commanded_frequency": commanded.tolist(),
    }


def cdi_summary(
    points: Points,
    condition_inputs: np.ndarray,
    graph: nx.MultiDiGraph,
    line_tol: float = 0.01,
    min_line_points: int = 5,
    line_variance: float = 0.9,
) -> dict:
    """Line attractors of a CDI network, one check per context at zero stream input.

    At the condition of each context whose stream inputs are (closest to) zero, line points are
    the fixed points with exactly one eigenvalue with ``| |lambda| - 1 | < line_tol`` and none with
    ``|lambda| > 1 + line_tol``. The context has a line attractor if there are at least
    ``min_line_points`` of them and their first principal component holds ``line_variance`` of
    their variance. ``line_eigenvalue`` is the median real part of the near-1 eigenvalue.
    """
    inputs = np.asarray(condition_inputs, dtype=np.float64)
    context = inputs[:, 2:4].argmax(1)
    stream = np.abs(inputs[:, :2]).sum(1)
    per_context = []
    for k in (0, 1):
        candidates = np.flatnonzero(context == k)
        record = {"context": k + 1, "condition": None, "n_line_points": 0, "line_variance": float("nan"),
                  "line_eigenvalue": float("nan"), "line_attractor": False}
        if candidates.size:
            c = int(candidates[np.argmin(stream[candidates])])
            record["condition"] = c
            eig = points["eigenvalues"]
            at = (points["condition_index"] == c) & points["is_fixed"].astype(bool)
            near = np.abs(np.abs(eig) - 1.0) < line_tol
            line = at & (near.sum(1) == 1) & ~(np.abs(eig) > 1.0 + line_tol).any(1)
            rows = np.flatnonzero(line)
            record["n_line_points"] = int(rows.size)
            if rows.size >= 2:
                centred = points["points"][rows] - points["points"][rows].mean(0)
                var = np.linalg.svd(centred, compute_uv=False) ** 2
                record["line_variance"] = float(var[0] / max(var.sum(), 1e-300))
                record["line_eigenvalue"] = float(np.median(eig[rows][near[rows]].real))
            record["line_attractor"] = bool(
                rows.size >= min_line_points and record["line_variance"] >= line_variance
            )
        per_context.append(record)
    return {
        "n_nodes": graph.number_of_nodes(),
        "line_attractor": all(r["line_attractor"] for r in per_context),
        "contexts": per_context,
    }


# ----------------------------------------------------------------------------------------------
# JSON
# ----------------------------------------------------------------------------------------------
def graph_to_json(graph: nx.MultiDiGraph) -> dict:
    """networkx node-link data (edges under ``"edges"``), readable with networkx alone."""
    return nx.node_link_data(graph, edges="edges")


def graph_from_json(data: dict) -> nx.MultiDiGraph:
    """Inverse of :func:`graph_to_json`."""
    return nx.node_link_graph(data, edges="edges")


# ----------------------------------------------------------------------------------------------
# Distances
# ----------------------------------------------------------------------------------------------
def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _wl_colourings(graph: nx.MultiDiGraph, iterations: int) -> list[dict]:
    """WL colourings of iterations ``0..`` : at least ``iterations`` refinements, and on until the
    partition is stable (the number of colours stops growing), for the isomorphism certificate."""
    label = {v: str(d["label"]) for v, d in graph.nodes(data=True)}
    colourings = [label]
    out_edges = {v: [(str(d["label"]), u) for _, u, d in graph.out_edges(v, data=True)] for v in graph}
    in_edges = {v: [(str(d["label"]), u) for u, _, d in graph.in_edges(v, data=True)] for v in graph}
    n_colours = len(set(label.values()))
    for it in range(1, max(iterations, graph.number_of_nodes()) + 1):
        label = {
            v: _digest(label[v] + "|" + ";".join(sorted(f"o{e}>{label[u]}" for e, u in out_edges[v]))
                       + "|" + ";".join(sorted(f"i{e}<{label[u]}" for e, u in in_edges[v])))
            for v in graph
        }
        colourings.append(label)
        grown = len(set(label.values())) > n_colours
        n_colours = len(set(label.values()))
        if it >= iterations and not grown:
            break
    return colourings


def wl_labels(graph: nx.MultiDiGraph, iterations: int = 3) -> Counter:
    """Histogram of Weisfeiler-Lehman labels of all iterations ``0..iterations`` of one graph.

    Labels are strings (iteration-prefixed digests), identical across processes.
    """
    return _wl_histogram(_wl_colourings(graph, iterations), iterations)


def _wl_histogram(colourings: list[dict], iterations: int) -> Counter:
    counts: Counter = Counter()
    for it, label in enumerate(colourings[: iterations + 1]):
        counts.update(f"{it}:{lab}" for lab in label.values())
    return counts


def _certificate(graph: nx.MultiDiGraph, colouring: dict) -> tuple | None:
    """Canonical form of a graph whose stable WL colouring is discrete (None otherwise).

    WL colours are preserved by every isomorphism, so with all colours distinct the only candidate
    map is colour to colour: two such graphs are isomorphic exactly when their node labels and
    labelled edge multisets, written in colours, are equal.
    """
    if len(set(colouring.values())) != graph.number_of_nodes():
        return None
    nodes = tuple(sorted((colouring[v], str(d["label"])) for v, d in graph.nodes(data=True)))
    edges = tuple(sorted((colouring[u], colouring[v], str(d["label"])) for u, v, d in graph.edges(data=True)))
    return nodes, edges


def wl_features(graphs: Sequence[nx.MultiDiGraph], iterations: int = 3) -> tuple[np.ndarray, list[str]]:
    """WL label counts of every graph as a matrix ``[N, L]`` over the joint vocabulary ``[L]``."""
    histograms = [wl_labels(g, iterations) for g in graphs]
    return _feature_matrix(histograms)


def _feature_matrix(histograms: list[Counter]) -> tuple[np.ndarray, list[str]]:
    vocabulary = sorted(set().union(*histograms)) if histograms else []
    column = {lab: j for j, lab in enumerate(vocabulary)}
    features = np.zeros((len(histograms), len(vocabulary)))
    for i, hist in enumerate(histograms):
        for lab, count in hist.items():
            features[i, column[lab]] = count
    return features, vocabulary


_NODE_MATCH = nx_iso.categorical_node_match("label", None)
_EDGE_MATCH = nx_iso.categorical_multiedge_match("label", None)


def isomorphism_classes(
    graphs: Sequence[nx.MultiDiGraph],
    features: np.ndarray,
    certificates: Sequence[tuple | None] | None = None,
) -> np.ndarray:
    """Class index ``[N]``: equal exactly when two graphs are isomorphic as labelled multigraphs.

    Only graphs with identical WL histograms are compared (an isomorphism preserves them): by their
    canonical certificates when both have one (:func:`_certificate`), else by VF2 against each
    class's first member.
    """
    if certificates is None:
        certificates = [None] * len(graphs)
    classes = np.full(len(graphs), -1, dtype=np.int64)
    groups: dict[bytes, list[int]] = {}
    for i in range(len(graphs)):
        groups.setdefault(features[i].tobytes(), []).append(i)
    n_classes = 0
    for members in groups.values():
        by_certificate: dict[tuple, int] = {}
        representatives: list[int] = []
        for i in members:
            cert = certificates[i]
            if cert is not None and cert in by_certificate:
                classes[i] = classes[by_certificate[cert]]
                continue
            for r in representatives:
                if cert is not None and certificates[r] is not None:
                    continue  # different certificates: not isomorphic
                if nx.is_isomorphic(graphs[i], graphs[r], node_match=_NODE_MATCH, edge_match=_EDGE_MATCH):
                    classes[i] = classes[r]
                    break
            else:
                representatives.append(i)
                classes[i] = n_classes
                n_classes += 1
            if cert is not None:
                by_certificate[cert] = i
    return classes


def flipflop_distance(
    graphs: Sequence[nx.MultiDiGraph], iterations: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """All-pairs WL/isomorphism distance ``[N, N]`` (module docstring) and isomorphism classes ``[N]``."""
    n = len(graphs)
    if n == 0:
        return np.zeros((0, 0)), np.zeros(0, np.int64)
    colourings = [_wl_colourings(g, iterations) for g in graphs]
    features, _ = _feature_matrix([_wl_histogram(c, iterations) for c in colourings])
    certificates = [_certificate(g, c[-1]) for g, c in zip(graphs, colourings)]
    classes = isomorphism_classes(graphs, features, certificates)
    f = torch.from_numpy(features)
    l1 = torch.cdist(f.unsqueeze(0), f.unsqueeze(0), p=1)[0].numpy()  # [N, N]
    total = features.sum(1)
    t = total[:, None] + total[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        distance = np.where(t + l1 > 0, 2 * l1 / (t + l1), 0.0)
    same = classes[:, None] == classes[None, :]
    distance = np.where(same, 0.0, np.where(l1 > 0, distance, 1.0 / (t + 1.0)))
    return distance, classes


def signature_distance(signatures: np.ndarray) -> np.ndarray:
    """Feature-averaged Bray-Curtis distance ``[N, N]`` between signatures ``[N, C, F]``."""
    sig = np.abs(np.nan_to_num(np.asarray(signatures, dtype=np.float64)))
    n = sig.shape[0]
    if n == 0:
        return np.zeros((0, 0))
    raw = torch.from_numpy(np.nan_to_num(np.asarray(signatures, dtype=np.float64)))
    distance = np.zeros((n, n))
    for f in range(sig.shape[2]):
        l1 = torch.cdist(raw[None, :, :, f], raw[None, :, :, f], p=1)[0].numpy()
        mass = sig[:, :, f].sum(1)
        denominator = mass[:, None] + mass[None, :]
        distance += np.where(denominator > 0, l1 / np.where(denominator > 0, denominator, 1.0), 0.0)
    distance /= sig.shape[2]
    np.fill_diagonal(distance, 0.0)
    return distance


# ----------------------------------------------------------------------------------------------
# Universality numbers
# ----------------------------------------------------------------------------------------------
def _fraction(values) -> float:
    values = np.asarray(values, dtype=float)
    return float(values.mean()) if values.size else float("nan")


def _median(values) -> float:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else float("nan")


def universality_summary(task_name: str, index, distance: np.ndarray, classes: np.ndarray | None = None) -> dict:
    """Population numbers from the per-network index table (pandas, one row per kept network).

    flipflop: fractions with 8 stable points (eight_stable), with 8 memory codes counting manifolds
    (eight_memory), with the cube input graph (input_cube) and the ideal labelled cube
    (input_ideal); sine: median correlation of linearised and commanded frequency; cdi: fraction
    with a line attractor in both contexts. Overall and by architecture; with the number of
    isomorphism classes and the mean distance within and between architectures.
    """
    n = len(index)
    summary: dict = {"task": task_name, "n_networks": n}
    if n == 0:
        summary["status"] = "no networks kept"
        return summary
    summary["status"] = "ok"
    metrics = {
        "flipflop": {"fraction_eight_stable": ("eight_stable", _fraction),
                     "fraction_eight_memory_codes": ("eight_memory", _fraction),
                     "fraction_input_cube": ("input_cube", _fraction),
                     "fraction_input_ideal": ("input_ideal", _fraction)},
        "sine": {"median_frequency_correlation": ("frequency_correlation", _median),
                 "median_frequency_relative_error": ("frequency_median_relative_error", _median)},
        "cdi": {"fraction_line_attractor": ("line_attractor", _fraction)},
    }[task_name]

    def numbers(table) -> dict:
        return {name: fn(table[column].to_numpy()) for name, (column, fn) in metrics.items()}

    summary.update(numbers(index))
    summary["by_architecture"] = {
        str(arch): {"n_networks": int(len(group)), **numbers(group)}
        for arch, group in index.groupby("architecture", sort=True)
    }
    if classes is not None and len(classes):
        _, counts = np.unique(classes, return_counts=True)
        summary["n_isomorphism_classes"] = int(counts.size)
        summary["fraction_in_largest_isomorphism_class"] = float(counts.max() / n)
    arch = index["architecture"].to_numpy()
    same = arch[:, None] == arch[None, :]
    off = ~np.eye(n, dtype=bool)
    summary["mean_distance"] = float(distance[off].mean()) if off.any() else float("nan")
    summary["mean_distance_within_architecture"] = (
        float(distance[same & off].mean()) if (same & off).any() else float("nan"))
    summary["mean_distance_between_architectures"] = (
        float(distance[~same].mean()) if (~same).any() else float("nan"))
    return summary
