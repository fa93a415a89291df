"""Distances between scaffolds, isomorphism classes, and the population numbers.

Flip-flop (:func:`flipflop_distance`): Weisfeiler-Lehman with an exact isomorphism check on the
scaffold graphs of :mod:`.flipflop`. Nodes start with their label ``l_0(v)`` (``S<code>``), edges
have labels (``saddle``, ``in<k><sign>``). WL refines
``l_{i+1}(v) = hash(l_i(v), sorted{(out, e, l_i(u))}, sorted{(in, e, l_i(u))})``; ``phi(G)``
counts each label of iterations ``0..h``. With ``L1 = ||phi(A) - phi(B)||_1`` and
``T = ||phi(A)||_1 + ||phi(B)||_1`` the weighted Jaccard (Ruzicka) distance is

    d_WL(A, B) = 1 - sum_l min(phi_l(A), phi_l(B)) / sum_l max(phi_l(A), phi_l(B)) = 2 L1 / (T + L1),

a metric in [0, 1]. ``d(A, B) = 0`` exactly when ``A`` and ``B`` are isomorphic as labelled
multigraphs (a canonical certificate when the stable WL colouring is discrete, else VF2 with
label matching, only inside groups of equal WL histograms); non-isomorphic pairs WL cannot
separate get ``1 / (T + 1)``, below the smallest distance WL resolves. With
``higher_saddles=True`` each saddle of index ``k >= 2`` adds an isolated node ``U<k>``, so the
counts by index take part; by default they do not (the finder's recall of high-index saddles
depends on its initial states, and the scaffold is the memories and their links).

Sine and CDI (:func:`signature_distance`): signatures ``s[c, f]`` (integers, see
:mod:`.signatures`); the feature-averaged Bray-Curtis dissimilarity

    d(a, b) = (1 / F) sum_f [ sum_c |s_a[c, f] - s_b[c, f]| / sum_c (|s_a[c, f]| + |s_b[c, f]|) ]

(a term 0/0 counts 0), in [0, 1], exactly 0 for equal signatures; the class of a network is its
signature. Every quantity is invariant to permutations and orthogonal changes of the state.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from typing import Sequence

import networkx as nx
import numpy as np
import torch
from networkx.algorithms import isomorphism as nx_iso


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


def _with_higher_saddles(graph: nx.MultiDiGraph) -> nx.MultiDiGraph:
    out = graph.copy()
    n = max(out.nodes, default=-1) + 1
    for index, count in sorted(graph.graph.get("saddles_by_index", {}).items()):
        for _ in range(int(count)):
            out.add_node(n, label=f"U{index}", stability="saddle")
            n += 1
    return out


def _wl_colourings(graph: nx.MultiDiGraph, iterations: int) -> list[dict]:
    """WL colourings ``0..``: at least ``iterations`` refinements, then on until the partition is
    stable (the number of colours stops growing), for the isomorphism certificate."""
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


def _wl_histogram(colourings: list[dict], iterations: int) -> Counter:
    counts: Counter = Counter()
    for it, label in enumerate(colourings[: iterations + 1]):
        counts.update(f"{it}:{lab}" for lab in label.values())
    return counts


def wl_labels(graph: nx.MultiDiGraph, iterations: int = 3) -> Counter:
    """Histogram of WL labels of iterations ``0..iterations`` (strings, identical across processes)."""
    return _wl_histogram(_wl_colourings(graph, iterations), iterations)


def _certificate(graph: nx.MultiDiGraph, colouring: dict) -> tuple | None:
    """Canonical form of a graph whose stable WL colouring is discrete (None otherwise): colours
    are preserved by every isomorphism, so the only candidate map is colour to colour."""
    if len(set(colouring.values())) != graph.number_of_nodes():
        return None
    nodes = tuple(sorted((colouring[v], str(d["label"])) for v, d in graph.nodes(data=True)))
    edges = tuple(sorted((colouring[u], colouring[v], str(d["label"])) for u, v, d in graph.edges(data=True)))
    return nodes, edges


def _feature_matrix(histograms: list[Counter]) -> tuple[np.ndarray, list[str]]:
    vocabulary = sorted(set().union(*histograms)) if histograms else []
    column = {lab: j for j, lab in enumerate(vocabulary)}
    features = np.zeros((len(histograms), len(vocabulary)))
    for i, hist in enumerate(histograms):
        for lab, count in hist.items():
            features[i, column[lab]] = count
    return features, vocabulary


def wl_features(graphs: Sequence[nx.MultiDiGraph], iterations: int = 3) -> tuple[np.ndarray, list[str]]:
    """WL label counts of every graph as a matrix ``[N, L]`` over the joint vocabulary ``[L]``."""
    return _feature_matrix([wl_labels(g, iterations) for g in graphs])


_NODE_MATCH = nx_iso.categorical_node_match("label", None)
_EDGE_MATCH = nx_iso.categorical_multiedge_match("label", None)


def isomorphism_classes(
    graphs: Sequence[nx.MultiDiGraph], features: np.ndarray, certificates: Sequence[tuple | None] | None = None
) -> np.ndarray:
    """Class index ``[N]``: equal exactly when two graphs are isomorphic as labelled multigraphs."""
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
    return by_frequency(classes)


def by_frequency(classes: np.ndarray) -> np.ndarray:
    """Relabel classes ``0..``: 0 the most frequent, ties by first appearance."""
    classes = np.asarray(classes)
    if classes.size == 0:
        return classes.astype(np.int64)
    labels, first, counts = np.unique(classes, return_index=True, return_counts=True)
    order = labels[np.lexsort((first, -counts))]
    rank = {lab: r for r, lab in enumerate(order.tolist())}
    return np.array([rank[c] for c in classes.tolist()], dtype=np.int64)


def flipflop_distance(
    graphs: Sequence[nx.MultiDiGraph], iterations: int = 3, higher_saddles: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """All-pairs WL/isomorphism distance ``[N, N]`` and isomorphism classes ``[N]`` (0 = modal)."""
    if len(graphs) == 0:
        return np.zeros((0, 0)), np.zeros(0, np.int64)
    if higher_saddles:
        graphs = [_with_higher_saddles(g) for g in graphs]
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
    raw = np.nan_to_num(np.asarray(signatures, dtype=np.float64))
    n = raw.shape[0]
    if n == 0:
        return np.zeros((0, 0))
    sig = np.abs(raw)
    values = torch.from_numpy(raw)
    distance = np.zeros((n, n))
    for f in range(raw.shape[2]):
        l1 = torch.cdist(values[None, :, :, f], values[None, :, :, f], p=1)[0].numpy()
        mass = sig[:, :, f].sum(1)
        denominator = mass[:, None] + mass[None, :]
        distance += np.where(denominator > 0, l1 / np.where(denominator > 0, denominator, 1.0), 0.0)
    distance /= raw.shape[2]
    np.fill_diagonal(distance, 0.0)
    return distance


def signature_classes(signatures: np.ndarray) -> np.ndarray:
    """Class ``[N]`` of each signature ``[N, C, F]``: equal signatures, one class (0 = modal)."""
    if len(signatures) == 0:  # no kept network: reshape(0, -1) of an empty array fails
        return np.zeros(0, np.int64)
    flat = np.asarray(signatures).reshape(len(signatures), -1)
    _, inverse = np.unique(flat, axis=0, return_inverse=True)
    return by_frequency(inverse.ravel())


def _mean(values) -> float:
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    return float(values.mean()) if values.size else float("nan")


def universality_summary(task_name: str, table, distance: np.ndarray) -> dict:
    """Population numbers from the per-network table (pandas, one row per kept network, with
    ``architecture``, ``activation``, ``scaffold_class``, ``in_modal_class``).

    Fraction in the modal scaffold class overall, per architecture and per architecture x
    activation; number of classes; mean topology distance within and between architectures and
    their ratio (within / between: near 1 when architectures share the scaffold); and the task's
    headline fractions or medians.
    """
    n = len(table)
    summary: dict = {"task": task_name, "n_networks": n}
    if n == 0:
        summary["status"] = "no networks kept"
        return summary
    summary["status"] = "ok"
    headline = {"flipflop": ("has_8_memories", "cube_scaffold", "input_ideal", "saddle_cube"),
                "sine": ("frac_oscillatory", "freq_median_rel_error", "freq_correlation"),
                "cdi": ("line_attractor", "n_slow_modes")}.get(task_name, ())

    def numbers(group) -> dict:
        out = {"n_networks": int(len(group)), "fraction_in_modal_class": _mean(group["in_modal_class"])}
        for column in headline:
            if column in group:
                values = group[column].to_numpy(dtype=float)
                finite = values[np.isfinite(values)]
                out[f"mean_{column}"] = _mean(values)
                out[f"median_{column}"] = float(np.median(finite)) if finite.size else float("nan")
        return out

    summary.update(numbers(table))
    summary["n_classes"] = int(table["scaffold_class"].nunique())
    summary["by_architecture"] = {str(a): numbers(g) for a, g in table.groupby("architecture", sort=True)}
    summary["by_architecture_activation"] = {
        f"{a}/{b}": numbers(g) for (a, b), g in table.groupby(["architecture", "activation"], sort=True)
    }
    arch = table["architecture"].to_numpy()
    same = arch[:, None] == arch[None, :]
    off = ~np.eye(n, dtype=bool)
    within = float(distance[same & off].mean()) if (same & off).any() else float("nan")
    between = float(distance[~same].mean()) if (~same).any() else float("nan")
    summary["mean_distance"] = float(distance[off].mean()) if off.any() else float("nan")
    summary["mean_distance_within_architecture"] = within
    summary["mean_distance_between_architectures"] = between
    summary["within_between_ratio"] = within / between if between > 0 else float("nan")
    return summary
