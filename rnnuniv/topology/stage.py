"""The topology stages' work per task: graphs of one shard, then distances and tables of a task.

Which analysis a task gets:

* ``flipflop``: the scaffold graph (:mod:`.flipflop`), needs the network weights (relaxation and
  input pulses); compared by a Weisfeiler-Lehman distance (:mod:`.distance`).
* every other task: fixed points over its condition grid as a continuation graph with a
  topological signature per condition (:mod:`.signatures`), compared by Bray-Curtis. ``sine``
  adds its frequency numbers (:func:`.signatures.sine_summary`), ``cdi`` its line attractors
  (:mod:`.lines`, on the shard's dense slow-manifold samples when it has them, else on the
  finder's points); a task registered in neither gets the signature alone (its conditions
  chained as :func:`.signatures.condition_chains` says), so a new task runs through the stage
  without code here.

:data:`TASK_COLUMNS` names the per-network numbers a task's summary adds to ``networks.csv`` of
the topology stage; :func:`shard_record` writes the per-shard JSON's content,
:func:`task_tables` the task's outputs (see scripts/topology_graph.py, topology_distance.py).
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from .. import io
from ..fixedpoints import read_shard
from ..networks import labels, load_networks
from .distance import flipflop_distance, signature_classes, signature_distance, universality_summary
from .flipflop import flipflop_graphs, flipflop_summary
from .lines import LINE_DEFAULTS, cdi_contexts, cdi_summary
from .points import add_outputs, cell_dynamics, graph_from_json, graph_to_json, points_from_shard
from .signatures import SIGNATURE_FEATURES, bifurcation_graphs, condition_chains, signature, sine_summary, smooth_rows

log = logging.getLogger("rnnuniv")

__all__ = ["OPTIONS", "SHARD_ARRAYS", "TASK_COLUMNS", "check_options", "shard_record", "task_tables"]

# arrays of the fixed-point shard the graphs are built from
SHARD_ARRAYS = (
    "network_ids", "condition_names", "condition_inputs", "network_index", "condition_index",
    "points", "q", "is_fixed", "eigenvalues", "right_eigenvectors", "n_unstable", "cluster",
    "marginal_tol",
)  # fmt: skip
FLIPFLOP_OPTIONS = ("eps", "match_tol", "max_steps", "check_every", "include_slow", "n_eigenvalues",
                    "pulse_amplitude")  # fmt: skip
GRID_OPTIONS = ("include_slow", "n_eigenvalues", "continuation_tol", "tau_factor")
CDI_OPTIONS = tuple(LINE_DEFAULTS)
OPTIONS = tuple(dict.fromkeys(FLIPFLOP_OPTIONS + GRID_OPTIONS + CDI_OPTIONS))

# per-network summary numbers each task adds to the topology networks table (none for others)
TASK_COLUMNS = {
    "flipflop": ("n_stable", "n_distinct_codes", "has_8_memories", "cube_scaffold", "n_saddles_index1",
                 "n_saddles_higher", "saddle_cube", "input_ideal", "n_manifolds", "n_unresolved"),
    "sine": ("n_conditions", "frac_oscillatory", "freq_median_rel_error", "freq_correlation"),
    "cdi": ("line_attractor", "line_attractor_ctx0", "line_attractor_ctx1", "n_slow_modes",
            "n_slow_modes_ctx0", "n_slow_modes_ctx1"),
}  # fmt: skip
SMOOTH_COLUMNS = ("network_id", "condition", "condition_name", "principal_modulus", "linearized_frequency",
                  "commanded_frequency")  # fmt: skip


def check_options(options: dict) -> dict:
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise ValueError(f"unknown topology options {unknown}; valid: {sorted(OPTIONS)}")
    return dict(options)


def _pick(options: dict, allowed: tuple[str, ...]) -> dict:
    return {k: v for k, v in options.items() if k in allowed}


def _cdi_slow_samples(arrays, condition_inputs) -> tuple[list, float | None]:
    """Per network the shard's slow-manifold samples (``None`` each when it has none: the line test
    then uses the finder's points), and the speed cap they were kept at."""
    shard = read_shard(arrays)  # checks the samples' version
    if shard.slow_conditions is None:
        log.warning("no slow-manifold samples in the shard: line test on the finder's points")
        return [None] * len(shard.networks), None
    needed = [c for c in cdi_contexts(condition_inputs) if c is not None]
    if not set(needed) <= set(shard.slow_conditions):
        raise io.CorruptFileError(
            "fixed points", f"slow-manifold samples at conditions {shard.slow_conditions}, the line test needs {needed}"
        )
    return [network.slow for network in shard.networks], shard.slow_speed_cap


def _grid_summaries(task, points, arrays, ids, options, marginal_tol) -> tuple[list, list]:
    """Graphs and per-network summaries (signature, smooth table, the task's numbers) on the grid."""
    names = [str(n) for n in arrays["condition_names"].tolist()]
    condition_inputs = np.asarray(arrays["condition_inputs"], dtype=np.float64)
    chains, values = condition_chains(task, condition_inputs)
    graphs = bifurcation_graphs(
        points, chains, values, ids, names, marginal_tol=marginal_tol, n_steps=task.n_steps,
        **_pick(options, GRID_OPTIONS),
    )  # fmt: skip
    if task.name == "sine":
        summaries = [sine_summary(g, values, task.frequency) for g in graphs]
    elif task.name == "cdi":
        for key in ("probe_speed", "probe_spread"):
            if key not in arrays:
                raise io.CorruptFileError("fixed points", f"no '{key}' (rerun the fixed-points stage)")
        slow, cap = _cdi_slow_samples(arrays, condition_inputs)
        summaries = [
            cdi_summary(p, condition_inputs, float(arrays["probe_speed"][i]), float(arrays["probe_spread"][i]),
                        task.n_steps, slow=slow[i], slow_speed_cap=cap, **_pick(options, CDI_OPTIONS))
            for i, p in enumerate(points)
        ]  # fmt: skip
    else:
        summaries = [{} for _ in graphs]
    for g, s in zip(graphs, summaries):
        s["signature"] = signature(g, len(names), task.name).tolist()
        s["smooth"] = smooth_rows(g, len(names), task.name)
    return graphs, summaries


def shard_record(task, arrays: dict, weights_path, shard: str, options: dict, device="cpu") -> dict:
    """The topology JSON of one shard (scripts/topology_graph.py) from its fixed-point arrays."""
    options = check_options(options)
    ids = [str(i) for i in arrays["network_ids"].tolist()]
    names = [str(n) for n in arrays["condition_names"].tolist()]
    condition_inputs = np.asarray(arrays["condition_inputs"], dtype=np.float64)
    marginal_tol = float(arrays["marginal_tol"])
    points = points_from_shard(arrays)
    record = {
        "task": task.name,
        "shard": shard,
        "condition_names": names,
        "condition_inputs": condition_inputs.tolist(),
        "signature_features": list(SIGNATURE_FEATURES),
        "n_steps": task.n_steps,
        "networks": {},
    }
    if not ids:
        return record
    cell, chosen, meta = load_networks(weights_path, ids, torch.float64, device, source=" (in the fixed-point shard)")
    if task.name == "flipflop":
        dynamics = cell_dynamics(cell, chosen, int(meta["n_hidden"]))
        if "outputs" not in arrays:
            add_outputs(points, dynamics)
        zero = np.flatnonzero(~condition_inputs.any(1))
        graphs = flipflop_graphs(
            dynamics, points, ids, condition=int(zero[0]) if zero.size else 0,
            marginal_tol=marginal_tol, **_pick(options, FLIPFLOP_OPTIONS),
        )  # fmt: skip
        summaries = [flipflop_summary(g) for g in graphs]
    else:
        graphs, summaries = _grid_summaries(task, points, arrays, ids, options, marginal_tol)
    for nid, graph, summary in zip(ids, graphs, summaries):
        graph.graph.update(architecture=meta["architecture"], activation=meta["activation"])
        record["networks"][nid] = {"summary": summary, "graph": graph_to_json(graph)}
    return record


def _merge_records(contents: Sequence[tuple[str, dict]], task: str) -> tuple[dict[str, dict], list[str] | None]:
    """network_id -> {"summary", "graph"} from all shard files, and the common condition names."""
    records: dict[str, dict] = {}
    names = None
    for path, data in contents:
        if not isinstance(data, dict) or "networks" not in data:
            raise io.CorruptFileError(path, "not a topology graph file (no 'networks')")
        if data.get("task") != task:
            raise io.CorruptFileError(path, f"graphs of task {data.get('task')!r}, expected {task!r}")
        if data["networks"]:
            if names is not None and data["condition_names"] != names:
                raise io.CorruptFileError(path, "condition grid differs from the other shards")
            names = data["condition_names"]
        for nid, record in data["networks"].items():
            if nid in records:
                raise io.CorruptFileError(path, f"network {nid} also appears in an earlier file")
            records[nid] = record
    return records, names


def _distances(task: str, selected: list[dict], names, iterations: int, higher: bool):
    """``(distance [N, N], class [N])`` for the selected records."""
    if task == "flipflop":
        graphs = [graph_from_json(r["graph"]) for r in selected]
        return flipflop_distance(graphs, iterations, higher)
    shape = (len(selected), len(names or []), len(SIGNATURE_FEATURES))
    signatures = np.array([r["summary"]["signature"] for r in selected], dtype=np.float64).reshape(shape)
    return signature_distance(signatures), signature_classes(signatures)


def _smooth_table(order: pd.DataFrame, selected: list[dict], names) -> pd.DataFrame:
    rows = []
    for nid, record in zip(order["network_id"], selected):
        commanded = record["summary"].get("commanded_frequency")
        for row in record["summary"].get("smooth", []):
            c = row["condition"]
            rows.append({"network_id": nid, **row, "condition_name": names[c] if names else str(c),
                         "commanded_frequency": commanded[c] if commanded else float("nan")})  # fmt: skip
    return pd.DataFrame(rows, columns=list(SMOOTH_COLUMNS))


def task_tables(
    task: str, networks: pd.DataFrame, contents: Sequence[tuple[str, dict]], iterations: int = 3, higher: bool = False
) -> dict:
    """The topology-distance outputs of a task from its networks table and its shard graph files
    (``(path, content)`` pairs): ``{"distance", "index", "networks", "smooth", "summary"}``."""
    networks = networks.assign(network_id=networks["network_id"].astype(str))
    records, names = _merge_records(contents, task)
    kept = networks[networks["status"].astype(str) == "kept"]
    missing = [nid for nid in kept["network_id"] if nid not in records]
    if missing:
        log.warning("%d kept network(s) have no graph and are left out: %s", len(missing), missing[:10])
    order = kept[kept["network_id"].isin(set(records))].reset_index(drop=True)
    selected = [records[nid] for nid in order["network_id"]]
    distance, classes = _distances(task, selected, names, iterations, higher)
    index = labels(order)
    table = index.copy()
    table["scaffold_class"] = np.asarray(classes, dtype=np.int64)
    table["in_modal_class"] = table["scaffold_class"] == 0
    for column in TASK_COLUMNS.get(task, ()):
        table[column] = [r["summary"].get(column) for r in selected]
    summary = universality_summary(task, table, distance)
    summary["n_kept_without_graph"] = len(missing)
    return {
        "distance": np.asarray(distance, dtype=np.float64),
        "index": index,
        "networks": table,
        "smooth": _smooth_table(order, selected, names),
        "summary": summary,
    }
