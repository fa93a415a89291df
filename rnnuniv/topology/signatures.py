"""Sine and CDI: fixed points over a grid of conditions, as counts and stability types.

Nodes are ``(condition, fixed point)`` at every condition of the grid. The task orders conditions
into chains (``Task.condition_chains``; sine: by the command ``x``; CDI: per context by the
relevant stream's value ``u``). Nodes
at consecutive grid values are matched by the assignment of least total distance between their
representative states (Hungarian algorithm): matched pairs are edges (``kind="continuation"``),
an unmatched node is a birth or a death (a bifurcation).

The compared **signature** is topological, integers per condition ``c`` (``SIGNATURE_FEATURES``):

* ``n_stable``: points with no ``|lambda| > 1`` and no marginal eigenvalue;
* ``n_unstable``: points with at least one ``|lambda| > 1`` (saddles and sources);
* ``n_marginal``: manifolds, and points with a marginal but no unstable eigenvalue
  (``| |lambda| - 1 | < marginal_tol``, the finder's one tolerance);
* ``principal_spiral``: 1 when the principal node is an oscillatory unstable or marginal spiral
  (leading eigenvalue complex, and ``n_unstable >= 1`` or a marginal mode);
* ``n_slow_modes``: slow modes of the principal node, ``tau = 1 / |ln |lambda|| >= tau_factor T``.

The principal node is, for the sine task, the node of largest ``|lambda_1|`` among those whose
leading complex pair rotates (the centre of the oscillation), for CDI the node with ``|lambda_1|``
nearest 1 (the slowest). Nothing in the signature varies smoothly with the weights; the smooth
quantities (principal ``|lambda_1|``, linearised frequency ``|arg lambda| / 2 pi``) are reported
per condition by :func:`smooth_rows` and never compared by the distance.
"""

from __future__ import annotations

from typing import Sequence

import networkx as nx
import numpy as np
from scipy.optimize import linear_sum_assignment

from .lines import slow_mode_counts
from .points import Points, add_nodes, skeleton_nodes

SIGNATURE_FEATURES = ("n_stable", "n_unstable", "n_marginal", "principal_spiral", "n_slow_modes")


def condition_chains(task, condition_inputs: np.ndarray) -> tuple[list[list[int]], np.ndarray]:
    """``task.condition_chains(condition_inputs)`` for a task object or a registered task's name
    (the chains depend on the input layout only, never on task parameters)."""
    if isinstance(task, str):
        from rnnuniv.tasks import make_task

        task = make_task(task)
    return task.condition_chains(condition_inputs)


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
    marginal_tol: float = 1e-3,
    n_steps: int = 1,
    tau_factor: float = 1.0,
) -> list[nx.MultiDiGraph]:
    """Nodes ``(condition, fixed point)``, continued between neighbouring grid values.

    Every node also gets ``n_slow_modes`` (time constant at least ``tau_factor * n_steps``) from
    its full eigenvalue list. Pairs farther than ``continuation_tol`` (if given) are not continued.
    """
    graphs = []
    for i, p in enumerate(points):
        nodes = skeleton_nodes(p, None, include_slow, n_eigenvalues, marginal_tol=marginal_tol)
        slow, _ = slow_mode_counts(p["eigenvalues"], n_steps, tau_factor) if len(p["q"]) else (np.zeros(0), None)
        for node in nodes:
            node["value"] = float(values[node["condition"]])
            node["n_slow_modes"] = int(slow[node["index"]])
            node["label"] = _node_class(node)
            if condition_names is not None:
                node["condition_name"] = str(condition_names[node["condition"]])
        graph = nx.MultiDiGraph(network_id=None if network_ids is None else str(network_ids[i]),
                                kind="bifurcation")
        add_nodes(graph, nodes)
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


def _node_class(node: dict) -> str:
    """stable, unstable or marginal (signature module docstring)."""
    if node["stability"] == "manifold":
        return "marginal"
    if node["n_unstable"] >= 1:
        return "unstable"
    return "marginal" if node["n_marginal"] > 0 else "stable"


def _by_condition(graph: nx.MultiDiGraph) -> dict[int, list[dict]]:
    out: dict[int, list[dict]] = {}
    for _, d in graph.nodes(data=True):
        out.setdefault(int(d["condition"]), []).append(d)
    return out


def principal_node(nodes: list[dict], task_name: str) -> dict | None:
    """The node that carries the task's computation at one condition (module docstring)."""
    if not nodes:
        return None
    if task_name == "sine":
        rotating = [n for n in nodes if n["frequency"] > 0]
        return max(rotating, key=lambda n: n["eig_modulus"]) if rotating else None
    return min(nodes, key=lambda n: abs(n["eig_modulus"] - 1.0))


def _is_spiral(node: dict | None) -> bool:
    if node is None or not node["eigenvalues"]:
        return False
    oscillates = abs(node["eigenvalues"][0][1]) > 1e-9
    return bool(oscillates and (node["n_unstable"] >= 1 or node["n_marginal"] >= 1))


def signature(graph: nx.MultiDiGraph, n_conditions: int, task_name: str) -> np.ndarray:
    """Per-condition topological signature ``[C, F]`` (integers; features SIGNATURE_FEATURES)."""
    out = np.zeros((n_conditions, len(SIGNATURE_FEATURES)), dtype=np.int64)
    for c, nodes in _by_condition(graph).items():
        classes = [n["label"] for n in nodes]
        out[c, 0] = classes.count("stable")
        out[c, 1] = classes.count("unstable")
        out[c, 2] = classes.count("marginal")
        lead = principal_node(nodes, task_name)
        out[c, 3] = int(_is_spiral(lead))
        out[c, 4] = lead["n_slow_modes"] if lead is not None else 0
    return out


def smooth_rows(graph: nx.MultiDiGraph, n_conditions: int, task_name: str) -> list[dict]:
    """Per condition the smooth quantities of its principal node (NaN where there is none):
    ``principal_modulus`` = ``|lambda_1|``, ``linearized_frequency`` (cycles per step)."""
    by_condition = _by_condition(graph)
    rows = []
    for c in range(n_conditions):
        lead = principal_node(by_condition.get(c, []), task_name)
        rows.append({"condition": c,
                     "principal_modulus": lead["eig_modulus"] if lead else float("nan"),
                     "linearized_frequency": lead["frequency"] if lead else float("nan")})
    return rows


def sine_summary(graph: nx.MultiDiGraph, commands: np.ndarray, frequency_of) -> dict:
    """Oscillatory conditions and linearised vs commanded frequency of a sine network.

    commands: ``x`` per condition ``[C]``; frequency_of: ``x -> w`` (``task.frequency``).
    frac_oscillatory: conditions whose principal node is an unstable (or marginal) spiral;
    over conditions with a rotating principal node, freq_correlation is the Pearson r of
    linearised and commanded frequency (NaN with fewer than 3 or no spread) and
    freq_median_rel_error the median of ``|f - w| / w``.
    """
    commands = np.asarray(commands, dtype=np.float64)
    by_condition = _by_condition(graph)
    leads = [principal_node(by_condition.get(c, []), "sine") for c in range(len(commands))]
    commanded = np.asarray(frequency_of(commands), dtype=np.float64)
    linear = np.array([n["frequency"] if n else 0.0 for n in leads])
    has = linear > 0
    corr = float("nan")
    if has.sum() >= 3 and np.std(linear[has]) > 0 and np.std(commanded[has]) > 0:
        corr = float(np.corrcoef(linear[has], commanded[has])[0, 1])
    rel = np.abs(linear[has] - commanded[has]) / np.maximum(commanded[has], 1e-12)
    return {
        "n_conditions": len(commands),
        "frac_oscillatory": float(np.mean([_is_spiral(n) for n in leads])) if leads else float("nan"),
        "freq_median_rel_error": float(np.median(rel)) if rel.size else float("nan"),
        "freq_correlation": corr,
        "linearized_frequency": linear.tolist(),
        "commanded_frequency": commanded.tolist(),
    }
