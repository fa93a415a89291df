#!/usr/bin/env python3
"""The paper's claims for a run: results/summary.json and results/summary.md.

Per task, one row per claim (statistic, 95 % bootstrap interval, permutation p, n, verdict and why),
every silhouette of every distance space, the within/between distance ratios, the modal scaffold
class per architecture, the kept fraction per architecture x activation and the individuality
verdict at each SVCCA dimension k (``rnnuniv.summary.task_summary``).

Matrices are given task-major, space-minor: for ``--tasks A B --spaces cca topology`` the order
of ``--distances`` (and ``--indices``) is A/cca, A/topology, B/cca, B/topology. Sensitivity
matrices likewise task-major, k-minor (``--sensitivity-k``). ``--networks`` and
``--topology-networks`` give one CSV per task; a missing column of them gives a "not available"
row, a missing file is an error naming it.

Example:
    python3 scripts/summary.py --tasks flipflop --spaces cca topology \\
        --distances results/flipflop/cca/distance.npy results/flipflop/topology/distance.npy \\
        --indices results/flipflop/cca/index.csv results/flipflop/topology/index.csv \\
        --untrained-distances results/flipflop/cca/untrained/distance.npy \\
        --untrained-indices results/flipflop/cca/untrained/index.csv \\
        --topology-summaries results/flipflop/topology/summary.json \\
        --networks results/flipflop/networks.csv \\
        --topology-networks results/flipflop/topology/networks.csv \\
        --options '{"n_bootstrap": 1000, "n_permutations": 1000, "seed": 0, "alpha": 0.05}' \\
        --output-json results/summary.json --output-md results/summary.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from rnnuniv import io
from rnnuniv.connectivity import connectivity_summary
from rnnuniv.runtime import json_argument
from rnnuniv.summary import DEFAULT_OPTIONS, task_summary
from rnnuniv.summary_markdown import to_markdown


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
    parser.add_argument("--networks", nargs="*", default=[], help="per task: networks.csv (status column)")
    parser.add_argument("--topology-networks", nargs="*", default=[],
                        help="per task: topology/networks.csv (per-network scaffold table); optional")
    parser.add_argument("--sensitivity-k", nargs="*", type=int, default=[], help="SVCCA dimensions k")
    parser.add_argument("--sensitivity-distances", nargs="*", default=[], help="task-major, k-minor")
    parser.add_argument("--sensitivity-indices", nargs="*", default=[], help="same order")
    parser.add_argument("--options", type=json_argument, default={},
                        help="JSON: n_bootstrap, n_permutations, seed, alpha, min_networks_per_group, "
                        "separated, mixed, majority, frequency_correlation")
    parser.add_argument("--connectivity", nargs="*", default=[],
                        help="optional, per task: dynamics/correlations.json (connectivity vs dynamics)")
    parser.add_argument("--random-mode", default=None, help="optional: random_mode/table.csv")
    parser.add_argument("--output-json", required=True, help="output: summary.json")
    parser.add_argument("--output-md", required=True, help="output: summary.md")
    args = parser.parse_args(argv)
    n_tasks = len(args.tasks)
    for name in ("distances", "indices"):
        if len(getattr(args, name)) != n_tasks * len(args.spaces):
            parser.error(f"--{name} needs {n_tasks * len(args.spaces)} paths (tasks x spaces)")
    for name in ("untrained_distances", "untrained_indices", "topology_summaries"):
        if len(getattr(args, name)) != n_tasks:
            parser.error(f"--{name.replace('_', '-')} needs one path per task")
    for name in ("networks", "topology_networks"):
        if getattr(args, name) and len(getattr(args, name)) != n_tasks:
            parser.error(f"--{name.replace('_', '-')} needs one path per task (or none)")
    for name in ("sensitivity_distances", "sensitivity_indices"):
        if len(getattr(args, name)) != n_tasks * len(args.sensitivity_k):
            parser.error(f"--{name.replace('_', '-')} needs tasks x sensitivity-k paths")
    unknown = set(args.options) - set(DEFAULT_OPTIONS)
    if unknown:
        parser.error(f"unknown --options keys: {sorted(unknown)}")
    return args


def _require(path: str) -> str:
    if not Path(path).is_file():
        raise FileNotFoundError(f"required input {path} does not exist")
    return path


def load_matrix(distance_path, index_path):
    distance = np.load(_require(distance_path), allow_pickle=False)
    index = io.read_csv(_require(index_path), required_columns=("network_id",))
    if distance.shape != (len(index), len(index)):
        raise io.CorruptFileError(distance_path, f"shape {distance.shape} does not match the "
                                  f"{len(index)} rows of {index_path}")
    return distance, index


def main(argv=None) -> int:
    args = parse_args(argv)
    log = io.setup_logging()
    options = {**DEFAULT_OPTIONS, **args.options}
    tasks = {}
    for number, task in enumerate(args.tasks):
        spaces = {space: load_matrix(args.distances[number * len(args.spaces) + s],
                                     args.indices[number * len(args.spaces) + s])
                  for s, space in enumerate(args.spaces)}
        untrained = load_matrix(args.untrained_distances[number], args.untrained_indices[number])
        networks = io.read_csv(_require(args.networks[number])) if args.networks else None
        topology = io.read_csv(_require(args.topology_networks[number])) if args.topology_networks else None
        if topology is None:
            log.warning("%s: no topology/networks.csv given: scaffold and task claims are 'not available'", task)
        n_k = len(args.sensitivity_k)
        sensitivity = {k: load_matrix(args.sensitivity_distances[number * n_k + i],
                                      args.sensitivity_indices[number * n_k + i])
                       for i, k in enumerate(args.sensitivity_k)}
        tasks[task] = task_summary(task, spaces, untrained, networks, topology, sensitivity,
                                   io.read_json(_require(args.topology_summaries[number])), options)
        for row in tasks[task]["claims"]:
            log.info("%s: %s: %s (%s)", task, row["claim"], row["verdict"], row["reason"])
    summary = {"options": options, "tasks": tasks}
    markdown = to_markdown(summary)
    if args.connectivity or args.random_mode:  # beyond the paper: rnnuniv.connectivity
        summary["connectivity"], lines = connectivity_summary(
            {content["task"]: content for content in map(io.read_json, args.connectivity)},
            io.read_csv(args.random_mode) if args.random_mode else None)
        markdown = markdown.rstrip("\n") + "\n\n" + "\n".join(lines) + "\n"
    io.write_json(args.output_json, summary)
    with io.atomic_path(args.output_md) as tmp:
        tmp.write_text(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
