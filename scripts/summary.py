#!/usr/bin/env python3
"""The headline numbers of a run: results/summary.json and results/summary.md.

Per task and per distance space (SVCCA, the other geometry metrics, the fixed-point topology):
silhouette of the architecture and activation labels and mean within- vs between-group distance
(``rnnuniv.summary.separation``); the figure-4 trained/untrained similarities; the topology
universality numbers copied from topology/summary.json; and, in words, whether the paper's claim
held (architectures separate in CCA space, not in topology space) with the thresholds used.

Matrices are given task-major, space-minor: for ``--tasks A B --spaces cca topology`` the order
of ``--distances`` (and ``--indices``) is A/cca, A/topology, B/cca, B/topology.

Example:
    python3 scripts/summary.py --tasks flipflop --spaces cca topology \\
        --distances results/flipflop/cca/distance.npy results/flipflop/topology/distance.npy \\
        --indices results/flipflop/cca/index.csv results/flipflop/topology/index.csv \\
        --untrained-distances results/flipflop/cca/untrained/distance.npy \\
        --untrained-indices results/flipflop/cca/untrained/index.csv \\
        --topology-summaries results/flipflop/topology/summary.json \\
        --separated 0.25 --mixed 0.1 --output-json results/summary.json --output-md results/summary.md
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from rnnuniv import io
from rnnuniv.connectivity import connectivity_summary
from rnnuniv.summary import (
    LABELS,
    as_bool,
    separation,
    to_markdown,
    universality_verdict,
    untrained_comparison,
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", required=True, help="task names")
    parser.add_argument("--spaces", nargs="+", required=True,
                        help="distance spaces per task, e.g. cca cka procrustes dsa topology")
    parser.add_argument("--distances", nargs="+", required=True, help="distance .npy, task-major")
    parser.add_argument("--indices", nargs="+", required=True, help="index CSVs, same order")
    parser.add_argument("--untrained-distances", nargs="+", required=True,
                        help="per task: SVCCA distance over kept and untrained networks")
    parser.add_argument("--untrained-indices", nargs="+", required=True, help="per task: their index CSVs")
    parser.add_argument("--topology-summaries", nargs="+", required=True, help="per task: topology/summary.json")
    parser.add_argument("--geometry-space", default="cca", help="space whose silhouette must be high")
    parser.add_argument("--topology-space", default="topology", help="space whose silhouette must be ~0")
    parser.add_argument("--separated", type=float, default=0.25,
                        help="architecture silhouette at or above which networks separate")
    parser.add_argument("--mixed", type=float, default=0.1,
                        help="architecture silhouette below which networks do not separate")
    parser.add_argument("--connectivity", nargs="*", default=[],
                        help="optional, per task: dynamics/correlations.json (connectivity vs dynamics)")
    parser.add_argument("--random-mode", default=None, help="optional: random_mode/table.csv")
    parser.add_argument("--output-json", required=True, help="output: summary.json")
    parser.add_argument("--output-md", required=True, help="output: summary.md")
    args = parser.parse_args(argv)
    n_matrices = len(args.tasks) * len(args.spaces)
    for name in ("distances", "indices"):
        if len(getattr(args, name)) != n_matrices:
            parser.error(f"--{name} needs {n_matrices} paths (tasks x spaces), got {len(getattr(args, name))}")
    for name in ("untrained_distances", "untrained_indices", "topology_summaries"):
        if len(getattr(args, name)) != len(args.tasks):
            parser.error(f"--{name.replace('_', '-')} needs one path per task")
    for space in (args.geometry_space, args.topology_space):
        if space not in args.spaces:
            parser.error(f"space {space!r} is not among --spaces")
    return args


def load_matrix(distance_path, index_path):
    distance = np.load(distance_path, allow_pickle=False)
    index = io.read_csv(index_path, required_columns=("network_id",))
    if distance.shape != (len(index), len(index)):
        raise io.CorruptFileError(distance_path, f"shape {distance.shape} does not match the "
                                  f"{len(index)} rows of {index_path}")
    return distance, index


def task_summary(args, task_number: int) -> dict:
    spaces = {}
    for space_number, space in enumerate(args.spaces):
        k = task_number * len(args.spaces) + space_number
        distance, index = load_matrix(args.distances[k], args.indices[k])
        labels = {name: index[name].to_numpy() if name in index else np.full(len(index), "?")
                  for name in LABELS}
        spaces[space] = separation(distance, labels)

    distance, index = load_matrix(args.untrained_distances[task_number], args.untrained_indices[task_number])
    trained = as_bool(index["trained"]) if "trained" in index else np.ones(len(index), dtype=bool)
    activation = index["activation"].to_numpy() if "activation" in index else np.full(len(index), "?")
    groups = untrained_comparison(distance, trained, activation)
    untrained = {
        name: {"n_pairs": int(values.size),
               "median": float(np.median(values)) if values.size else float("nan"),
               "mean": float(values.mean()) if values.size else float("nan")}
        for name, values in groups.items()
    }
    verdict = universality_verdict(
        spaces[args.geometry_space]["architecture"]["silhouette"],
        spaces[args.topology_space]["architecture"]["silhouette"],
        separated=args.separated,
        mixed=args.mixed,
    )
    return {
        "verdict": verdict,
        "spaces": spaces,
        "untrained_similarity": untrained,
        "topology_summary": io.read_json(args.topology_summaries[task_number]),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    log = io.setup_logging()
    summary = {
        "thresholds": {"separated": args.separated, "mixed": args.mixed,
                       "geometry_space": args.geometry_space, "topology_space": args.topology_space},
        "tasks": {task: task_summary(args, i) for i, task in enumerate(args.tasks)},
    }
    markdown = to_markdown(summary)
    if args.connectivity or args.random_mode:  # beyond the paper: rnnuniv.connectivity
        summary["connectivity"], lines = connectivity_summary(
            {content["task"]: content for content in map(io.read_json, args.connectivity)},
            io.read_csv(args.random_mode) if args.random_mode else None)
        markdown = markdown.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"
    io.write_json(args.output_json, summary)
    with io.atomic_path(args.output_md) as tmp:
        tmp.write_text(markdown)
    for task, entry in summary["tasks"].items():
        log.info("%s: claim %s (%s)", task, entry["verdict"]["status"], entry["verdict"]["reason"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
