#!/usr/bin/env python3
"""Topology distance between every pair of kept networks of a task, and the universality numbers.

Reads the per-shard graphs of ``topology_graph.py``. Rows of the matrix are the networks of
``networks.csv`` with status ``kept``, in the table's order (the order of the CCA matrix); kept
networks without a graph are left out with a warning. Distances (see ``rnnuniv.topology``):
flip-flop, a Weisfeiler-Lehman distance between the labelled graphs that is exactly 0 for
isomorphic graphs; sine and CDI, a normalised L1 (Bray-Curtis) distance between the per-condition
signatures.

Writes ``--output-distance`` (.npy, float64 [N, N]), ``--output-index`` (CSV, one row per matrix
row: network id, labels and per-network topology numbers) and ``--output-summary`` (JSON:
fractions with 8 stable points / the cube input graph (flip-flop), median correlation of
linearised and commanded frequency (sine), fraction with line attractors (CDI); overall and per
architecture).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd

from rnnuniv import io, topology

LABEL_COLUMNS = ("architecture", "activation", "n_hidden", "shard")
INDEX_NUMBERS = {
    "flipflop": ("n_nodes", "n_stable", "n_saddles", "n_manifolds", "n_stable_codes", "n_memory_codes",
                 "eight_stable", "eight_memory", "input_cube", "input_ideal", "saddles_linking",
                 "n_unresolved"),
    "sine": ("n_nodes", "n_conditions_with_oscillation", "frequency_correlation",
             "frequency_median_relative_error"),
    "cdi": ("n_nodes", "line_attractor"),
}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True, choices=sorted(INDEX_NUMBERS), help="task name")
    parser.add_argument("--networks", required=True, help="results/{task}/networks.csv")
    parser.add_argument("--graphs", nargs="*", default=[], help="topology/{shard}.json of every shard")
    parser.add_argument("--wl-iterations", type=int, default=3, help="Weisfeiler-Lehman iterations")
    parser.add_argument("--output-distance", required=True, help="output: distance.npy")
    parser.add_argument("--output-index", required=True, help="output: index.csv")
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

    classes = None
    if args.task == "flipflop":
        graphs = [topology.graph_from_json(r["graph"]) for r in selected]
        distance, classes = topology.flipflop_distance(graphs, args.wl_iterations)
    else:
        n_conditions = len(names or [])
        signatures = np.array(
            [r["summary"]["signature"] for r in selected], dtype=np.float64
        ).reshape(len(selected), n_conditions, len(topology.SIGNATURE_FEATURES))
        distance = topology.signature_distance(signatures)

    index = order[["network_id", *[c for c in LABEL_COLUMNS if c in order.columns]]].copy()
    for column in INDEX_NUMBERS[args.task]:
        index[column] = [r["summary"].get(column) for r in selected]
    if classes is not None:
        index["isomorphism_class"] = classes
    summary = topology.universality_summary(args.task, index, distance, classes)
    summary["n_kept_without_graph"] = len(missing)
    if args.task == "cdi":
        for k in (1, 2):
            index[f"context{k}_line_points"] = [r["summary"]["contexts"][k - 1]["n_line_points"] for r in selected]
            index[f"context{k}_line_eigenvalue"] = [
                r["summary"]["contexts"][k - 1]["line_eigenvalue"] for r in selected
            ]

    with io.atomic_path(args.output_distance, suffix=".npy") as tmp:
        np.save(tmp, np.asarray(distance, dtype=np.float64))
    io.write_csv(args.output_index, pd.DataFrame(index))
    io.write_json(args.output_summary, summary)
    log.info("%s: %d kept networks; %s", args.task, len(order),
             {k: v for k, v in summary.items() if not isinstance(v, dict)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
