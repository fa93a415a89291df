#!/usr/bin/env python3
"""Topology distance between every pair of kept networks of a task, their scaffold classes, and
the universality numbers.

Reads the per-shard graphs of ``topology_graph.py``. Rows are the networks of ``networks.csv``
with status ``kept``, in the table's order; kept networks without a graph are left out with a
warning. Flip-flop: a Weisfeiler-Lehman distance between scaffold graphs, exactly 0 for
isomorphic ones; sine and CDI: Bray-Curtis between topological signatures (see
``rnnuniv.topology``).

Writes
  --output-distance  .npy float64 [N, N]
  --output-index     CSV per row: network_id, architecture, activation, hidden_size, n_hidden, shard
  --output-networks  CSV per row (same order): network_id, architecture, activation, hidden_size,
                     scaffold_class (0 = most frequent), in_modal_class, and the task's columns
                     (flip-flop: n_stable, n_distinct_codes, has_8_memories, cube_scaffold,
                     n_saddles_index1, n_saddles_higher, ...; sine: n_conditions, frac_oscillatory,
                     freq_median_rel_error, freq_correlation; CDI: line_attractor, line_attractor_ctx0/1,
                     n_slow_modes, n_slow_modes_ctx0/1)
  --output-smooth    CSV (sine/CDI): network_id, condition, condition_name, principal_modulus,
                     linearized_frequency (+ commanded_frequency for sine); flip-flop: header only
  --output-summary   JSON: fraction in the modal class per architecture (and x activation), number
                     of classes, within/between-architecture mean distance and their ratio
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

from rnnuniv import io, topology

LABEL_COLUMNS = ("architecture", "activation", "n_hidden", "shard")
TASK_COLUMNS = {
    "flipflop": ("n_stable", "n_distinct_codes", "has_8_memories", "cube_scaffold", "n_saddles_index1",
                 "n_saddles_higher", "saddle_cube", "input_ideal", "n_manifolds", "n_unresolved"),
    "sine": ("n_conditions", "frac_oscillatory", "freq_median_rel_error", "freq_correlation"),
    "cdi": ("line_attractor", "line_attractor_ctx0", "line_attractor_ctx1", "n_slow_modes",
            "n_slow_modes_ctx0", "n_slow_modes_ctx1"),
}
SMOOTH_COLUMNS = ("network_id", "condition", "condition_name", "principal_modulus", "linearized_frequency",
                  "commanded_frequency")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True, choices=sorted(TASK_COLUMNS), help="task name")
    parser.add_argument("--networks", required=True, help="results/{task}/networks.csv")
    parser.add_argument("--graphs", nargs="*", default=[], help="topology/{shard}.json of every shard")
    parser.add_argument("--wl-iterations", type=int, default=3, help="Weisfeiler-Lehman iterations")
    parser.add_argument("--higher-saddles", action="store_true",
                        help="flip-flop: saddles of index >= 2 take part in the comparison (as counts)")
    parser.add_argument("--output-distance", required=True, help="output: distance.npy")
    parser.add_argument("--output-index", required=True, help="output: index.csv")
    parser.add_argument("--output-networks", required=True, help="output: networks.csv (topology)")
    parser.add_argument("--output-smooth", required=True, help="output: smooth.csv")
    parser.add_argument("--output-summary", required=True, help="output: summary.json")
    return parser.parse_args(argv)


def load_records(paths: list[str], task: str) -> tuple[dict[str, dict], list[str] | None]:
    """network_id -> {"summary", "graph"} from all shard files, and the common condition names."""
    records: dict[str, dict] = {}
    names = None
    for path in paths:
        data = io.read_json(path)
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


def distances(task: str, selected: list[dict], names, iterations: int, higher: bool):
    """``(distance [N, N], class [N])`` for the selected records."""
    if task == "flipflop":
        graphs = [topology.graph_from_json(r["graph"]) for r in selected]
        return topology.flipflop_distance(graphs, iterations, higher)
    shape = (len(selected), len(names or []), len(topology.SIGNATURE_FEATURES))
    signatures = np.array([r["summary"]["signature"] for r in selected], dtype=np.float64).reshape(shape)
    return topology.signature_distance(signatures), topology.signature_classes(signatures)


def smooth_table(task: str, order: pd.DataFrame, selected: list[dict], names) -> pd.DataFrame:
    rows = []
    for nid, record in zip(order["network_id"], selected):
        commanded = record["summary"].get("commanded_frequency")
        for row in record["summary"].get("smooth", []):
            c = row["condition"]
            rows.append({"network_id": nid, **row, "condition_name": names[c] if names else str(c),
                         "commanded_frequency": commanded[c] if commanded else float("nan")})
    return pd.DataFrame(rows, columns=list(SMOOTH_COLUMNS))


def main(argv=None) -> int:
    args = parse_args(argv)
    log = io.setup_logging()
    networks = io.read_csv(args.networks, required_columns=("network_id", "status", "architecture"))
    networks["network_id"] = networks["network_id"].astype(str)
    records, names = load_records(args.graphs, args.task)
    kept = networks[networks["status"].astype(str) == "kept"]
    missing = [nid for nid in kept["network_id"] if nid not in records]
    if missing:
        log.warning("%d kept network(s) have no graph and are left out: %s", len(missing), missing[:10])
    order = kept[kept["network_id"].isin(set(records))].reset_index(drop=True)
    selected = [records[nid] for nid in order["network_id"]]
    distance, classes = distances(args.task, selected, names, args.wl_iterations, args.higher_saddles)

    index = order[["network_id", *[c for c in LABEL_COLUMNS if c in order.columns]]].copy()
    if "n_hidden" in index:
        index.insert(3 if "activation" in index else 2, "hidden_size", index["n_hidden"])
    table = index[[c for c in ("network_id", "architecture", "activation", "hidden_size") if c in index]].copy()
    table["scaffold_class"] = np.asarray(classes, dtype=np.int64)
    table["in_modal_class"] = table["scaffold_class"] == 0
    for column in TASK_COLUMNS[args.task]:
        table[column] = [r["summary"].get(column) for r in selected]
    summary = topology.universality_summary(args.task, table, distance)
    summary["n_kept_without_graph"] = len(missing)

    with io.atomic_path(args.output_distance, suffix=".npy") as tmp:
        np.save(tmp, np.asarray(distance, dtype=np.float64))
    io.write_csv(args.output_index, index)
    io.write_csv(args.output_networks, table)
    io.write_csv(args.output_smooth, smooth_table(args.task, order, selected, names))
    io.write_json(args.output_summary, summary)
    log.info("%s: %d kept networks; %s", args.task, len(order),
             {k: v for k, v in summary.items() if not isinstance(v, dict)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
