"""The flip-flop's fixed-point scaffold: memories, the saddles between them, and the input pulses.

The compared graph depends on no choice of basis. For each network at zero input:

* **Nodes** are the memories: stable fixed points (and stable manifolds, when the finder found
  a continuum), labelled by their readout code ``S+-+`` (manifold: ``M`` and its codes).
* **Saddle edges** (``kind="unstable"``, label ``saddle``): an index-1 saddle ``h*`` has a 1-D
  unstable manifold, the two branches started at ``h* +/- eps v`` (``v`` the one unstable
  eigenvector, read from the finder's stored eigen-decomposition); when both relax to memories
  ``a`` and ``b``, the saddle links them (edges ``a -> b`` and ``b -> a``; ``a = b``: a self-loop).
* **Input edges** (``kind="input"``, label ``in<k><sign>``): from every memory, one step of the
  pulse ``+/- pulse_amplitude e_k`` (as in the task), then relaxation at zero input; an edge
  from the memory to the memory reached.
* **Saddles of index >= 2** enter only as counts by index (graph attribute
  ``saddles_by_index``); no eigenvector of a 2-D or larger unstable subspace is ever followed.

Every rollout iterates ``h_{t+1} = F(h_t, 0)`` and ends only when it comes within ``match_tol``
of a memory's point (a manifold adds half its largest nearest-neighbour spacing): passing near
a saddle never ends it. Rollouts that reach no memory within ``max_steps`` add no edge and are
counted (``n_unresolved``). Each (source, target, label) edge appears once (``count`` holds how
many starts produced it), so the graph is a labelled simple digraph. All rollouts of a shard run
as one batched loop ``[N, K, S]``.

For an ideal 3-bit memory the graph has the 8 codes, the 12 saddle links between codes at
Hamming distance 1 and the input edges ``(c, in<k><s>) -> c`` with bit ``k`` set to ``s``.
"""

from __future__ import annotations

import math
from itertools import combinations
from typing import Sequence

import networkx as nx
import numpy as np
import torch

from .points import Dynamics, Points, add_nodes, skeleton_nodes


def _pad(rows: list[np.ndarray], width: int, fill, tail=(), dtype=np.float64) -> np.ndarray:
    out = np.full((len(rows), max(width, 1), *tail), fill, dtype=dtype)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def relax_to_memories(
    step,
    starts: torch.Tensor,
    valid: torch.Tensor,
    memory_points: torch.Tensor,
    point_node: torch.Tensor,
    point_tol: torch.Tensor,
    n_inputs: int,
    max_steps: int = 2000,
    check_every: int = 5,
) -> torch.Tensor:
    """Run ``h_{t+1} = F(h_t, 0)`` from every start until it first comes near a memory.

    starts ``[N, K, S]``, valid ``[N, K]`` (padding rows False); memory_points ``[N, P, S]`` the
    member points of every memory, point_node ``[N, P]`` their memory (-1: padding), point_tol
    ``[N, P]`` the arrival radius. Returns the memory reached ``[N, K]`` (-1: none in ``max_steps``).
    """
    zero = starts.new_zeros(n_inputs)
    state = starts
    target = torch.full(valid.shape, -1, dtype=torch.long, device=starts.device)
    tol = torch.where(point_node >= 0, point_tol, -math.inf).unsqueeze(1)  # [N, 1, P]
    with torch.no_grad():
        for t in range(max_steps + 1):
            if t % check_every == 0 or t == max_steps:
                dist = torch.nan_to_num(torch.cdist(state, memory_points), nan=math.inf)  # [N, K, P]
                best, where = torch.where(dist <= tol, dist, math.inf).min(-1)
                hit = torch.isfinite(best) & (target < 0) & valid
                target = torch.where(hit, torch.gather(point_node, 1, where), target)
                if bool(((target >= 0) | ~valid).all()):
                    break
            if t < max_steps:
                state = step(state, zero)
    return target


def _unstable_direction(points: Points, index: int, dynamics: Dynamics) -> np.ndarray:
    """Unit real eigenvector of the single unstable eigenvalue of an index-1 saddle.

    Read from the shard's stored right eigenvectors (sorted by modulus: the unstable one is first);
    recomputed by autodiff only for point sets without them.
    """
    if "right_eigenvectors" in points:
        v = np.asarray(points["right_eigenvectors"][index])[:, 0]
    else:
        h = torch.as_tensor(points["points"][index], dtype=dynamics.dtype, device=dynamics.device)
        x = h.new_zeros(dynamics.n_inputs)
        jac = torch.func.jacrev(lambda s: dynamics.step(s.view(1, 1, -1), x).view(-1))(h)
        values, vectors = np.linalg.eig(jac.detach().double().cpu().numpy())
        v = vectors[:, int(np.argmax(np.abs(values)))]
    v = np.real(v).astype(np.float64)
    return v / max(np.linalg.norm(v), 1e-300)


def _is_memory(node: dict) -> bool:
    return node["stability"] == "stable" or (node["stability"] == "manifold" and node["n_unstable"] == 0)


def memory_label(node: dict) -> str:
    """``S<code>`` for a stable point, ``M<codes>`` for a stable manifold."""
    if node["stability"] == "manifold":
        return "M" + ",".join(node.get("codes", []))
    return "S" + node.get("code", "")


def flipflop_graphs(
    dynamics: Dynamics,
    points: Sequence[Points],
    network_ids: Sequence[str] | None = None,
    *,
    eps: float = 1e-3,
    match_tol: float = 0.02,
    max_steps: int = 2000,
    check_every: int = 5,
    include_slow: bool = False,
    n_eigenvalues: int = 4,
    pulse_amplitude: float = 1.0,
    condition: int = 0,
    marginal_tol: float = 1e-3,
) -> list[nx.MultiDiGraph]:
    """Scaffold graphs of ``N`` flip-flop networks (module docstring), all rollouts batched.

    points: per network, the dict of :func:`points_from_shard` (needs ``outputs`` for the codes).
    condition: the condition index holding the zero-input fixed points.
    Returns one graph per network; graph attributes ``network_id``, ``n_bits``,
    ``n_saddles_index1``, ``saddles_by_index`` ({index: count} for index >= 2, as strings),
    ``n_unresolved``.
    """
    m = dynamics.n_inputs
    nodes = [skeleton_nodes(p, [condition], include_slow, n_eigenvalues, True, marginal_tol) for p in points]
    graphs, memories, saddles = [], [], []
    for i, net in enumerate(nodes):
        memory = [n for n in net if _is_memory(n)]
        for n in memory:
            n["label"] = memory_label(n)
        unstable = [n for n in net if not _is_memory(n) and n["stability"] != "manifold"]
        higher: dict[str, int] = {}
        for n in unstable:
            if n["n_unstable"] >= 2:
                higher[str(n["n_unstable"])] = higher.get(str(n["n_unstable"]), 0) + 1
        graph = nx.MultiDiGraph(network_id=None if network_ids is None else str(network_ids[i]),
                                n_bits=m, kind="flipflop", n_saddles_index1=0,
                                saddles_by_index=dict(sorted(higher.items())), n_unresolved=0)
        add_nodes(graph, memory)
        graphs.append(graph)
        memories.append(memory)
        saddles.append([n for n in unstable if n["n_unstable"] == 1])
        graph.graph["n_saddles_index1"] = len(saddles[-1])
    if not graphs or not any(memories):
        return graphs
    size = points[0]["points"].shape[1]

    def tensor(array: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(array)
        return t.to(dynamics.device, dynamics.dtype if t.is_floating_point() else t.dtype)

    # memory member points, padded: [N, P, S], their memory [N, P], arrival radius [N, P]
    states, owner, tols = [], [], []
    for p, memory in zip(points, memories):
        rows, own, tol = [np.zeros((0, size))], [np.zeros(0, np.int64)], [np.zeros(0)]
        for v, node in enumerate(memory):
            member = p["points"][node["members"]]
            spacing = 0.0
            if len(member) > 1:
                d = np.sqrt(((member[:, None] - member[None]) ** 2).sum(-1))
                np.fill_diagonal(d, np.inf)
                spacing = float(d.min(1).max())
            rows.append(member)
            own.append(np.full(len(member), v))
            tol.append(np.full(len(member), match_tol + spacing / 2))
        states.append(np.concatenate(rows))
        owner.append(np.concatenate(own))
        tols.append(np.concatenate(tol))
    width = max(len(o) for o in owner)

    # starts: two branches per index-1 saddle, then one pulse per memory, channel and sign
    starts, inputs, origin = [], [], []  # per network: states, one-step input, (kind, node, k, s)
    for i, p in enumerate(points):
        rows, xs, info = [], [], []
        for j, node in enumerate(saddles[i]):
            h = p["points"][node["index"]]
            v = _unstable_direction(p, node["index"], dynamics)
            for sign in (1, -1):
                rows.append(h + sign * eps * v)
                xs.append(np.zeros(m))
                info.append(("saddle", j, 0, sign))
        for v, node in enumerate(memories[i]):
            for k in range(m):
                for sign in (1, -1):
                    x = np.zeros(m)
                    x[k] = sign * pulse_amplitude
                    rows.append(p["points"][node["index"]])
                    xs.append(x)
                    info.append(("input", v, k, sign))
        starts.append(np.array(rows).reshape(-1, size))
        inputs.append(np.array(xs).reshape(-1, m))
        origin.append(info)
    k_all = max(len(s) for s in starts)
    if k_all == 0:
        return graphs
    with torch.no_grad():
        start = tensor(_pad(starts, k_all, 0.0, (size,)))
        pulse = tensor(_pad(inputs, k_all, 0.0, (m,)))
        kicked = dynamics.step(start, pulse)
        is_pulse = tensor(_pad([np.array([o[0] == "input" for o in info], bool) for info in origin],
                               k_all, False, dtype=bool))
        start = torch.where(is_pulse.unsqueeze(-1), kicked, start)  # saddle branches start in place
    valid = tensor(_pad([np.ones(len(s), bool) for s in starts], k_all, False, dtype=bool))
    target = relax_to_memories(
        dynamics.step, start, valid, tensor(_pad(states, width, 0.0, (size,))),
        tensor(_pad(owner, width, -1, dtype=np.int64)), tensor(_pad(tols, width, -math.inf)),
        m, max_steps, check_every,
    ).cpu().numpy()  # fmt: skip

    for i, graph in enumerate(graphs):
        ends: dict[int, list[int]] = {}
        unresolved = 0
        for j, (kind, node, k, sign) in enumerate(origin[i]):
            end = int(target[i, j])
            unresolved += end < 0
            if kind == "saddle":
                ends.setdefault(node, []).append(end)
            elif end >= 0:
                _add_edge(graph, node, end, "input", f"in{k}{'+' if sign > 0 else '-'}", channel=k, sign=sign)
        for pair in ends.values():
            a, b = pair
            if a >= 0 and b >= 0:
                _add_edge(graph, a, b, "unstable", "saddle")
                if a != b:
                    _add_edge(graph, b, a, "unstable", "saddle")
        graph.graph["n_unresolved"] = int(unresolved)
    return graphs


def _add_edge(graph: nx.MultiDiGraph, u: int, v: int, kind: str, label: str, **attrs) -> None:
    """One edge per (u, v, label); repeated arrivals raise its ``count``."""
    if graph.has_edge(u, v, key=label):
        graph.edges[u, v, label]["count"] += 1
    else:
        graph.add_edge(u, v, key=label, kind=kind, label=label, count=1, **attrs)


def input_graph(graph: nx.MultiDiGraph) -> nx.Graph:
    """Undirected simple graph of input edges between distinct memories."""
    return _undirected(graph, "input")


def saddle_graph(graph: nx.MultiDiGraph) -> nx.Graph:
    """Undirected simple graph of saddle links between distinct memories."""
    return _undirected(graph, "unstable")


def _undirected(graph: nx.MultiDiGraph, kind: str) -> nx.Graph:
    simple = nx.Graph()
    simple.add_nodes_from(graph.nodes)
    simple.add_edges_from((u, v) for u, v, d in graph.edges(data=True) if d["kind"] == kind and u != v)
    return simple


def _is_hamming_cube(simple: nx.Graph, code_of: dict, bits: int) -> bool:
    """Edges are exactly the pairs of codes at Hamming distance 1 (codes all distinct)."""
    want = {frozenset((a, b)) for a, b in combinations(code_of, 2)
            if sum(x != y for x, y in zip(code_of[a], code_of[b])) == 1}  # fmt: skip
    have = {frozenset(e) for e in simple.edges}
    return len(code_of) == 2**bits and have == want


def flipflop_summary(graph: nx.MultiDiGraph) -> dict:
    """Per-network numbers of a flip-flop scaffold graph.

    n_stable: stable fixed points; n_distinct_codes: distinct readout codes among them;
    has_8_memories: ``2^bits`` stable points with ``2^bits`` distinct codes; cube_scaffold: that,
    and the input graph's edges are exactly the pairs of codes at Hamming distance 1;
    saddle_cube: the same for the saddle links; input_ideal: every pulse ``(k, s)`` from code ``c``
    lands on ``c`` with bit ``k`` set to ``s``; n_saddles_index1, n_saddles_higher (index >= 2),
    n_manifolds, n_unresolved.
    """
    bits = int(graph.graph.get("n_bits", 3))
    data = dict(graph.nodes(data=True))
    stable = [v for v, d in data.items() if d["stability"] == "stable"]
    codes = {data[v]["code"] for v in stable}
    eight = len(stable) == 2**bits and len(codes) == 2**bits
    code_of = {v: data[v]["code"] for v in stable} if eight else {}
    ideal = eight
    for u, v, d in graph.edges(data=True):
        if ideal and d["kind"] == "input":
            expected = list(data[u]["code"])
            expected[d["channel"]] = "+" if d["sign"] > 0 else "-"
            ideal = data[v].get("code") == "".join(expected) and data[v]["stability"] == "stable"
    n_inputs = sum(d["kind"] == "input" for *_, d in graph.edges(data=True))
    return {
        "n_nodes": graph.number_of_nodes(),
        "n_stable": len(stable),
        "n_distinct_codes": len(codes),
        "n_manifolds": sum(d["stability"] == "manifold" for d in data.values()),
        "has_8_memories": bool(eight),
        "cube_scaffold": bool(eight and _is_hamming_cube(input_graph(graph), code_of, bits)),
        "saddle_cube": bool(eight and _is_hamming_cube(saddle_graph(graph), code_of, bits)),
        "input_ideal": bool(ideal and n_inputs == len(stable) * 2 * bits),
        "n_saddles_index1": int(graph.graph.get("n_saddles_index1", 0)),
        "n_saddles_higher": int(sum(graph.graph.get("saddles_by_index", {}).values())),
        "n_unresolved": int(graph.graph.get("n_unresolved", 0)),
    }
