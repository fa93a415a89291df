#!/usr/bin/env python3
"""Topology distance between every pair of kept networks of a task, their scaffold classes, and
the universality numbers.

Reads the per-shard graphs of ``topology_graph.py``. Rows are the networks of ``networks.csv``
with status ``kept``, in the table's order; kept networks without a graph are left out with a
warning. Flip-flop: a Weisfeiler-Lehman distance between scaffold graphs, exactly 0 for
isomorphic ones; every other task: Bray-Curtis between topological signatures (see
``rnnuniv.topology``; the work is ``rnnuniv.topology.stage.task_tables``).

Writes
  --output-distance  .npy float64 [N, N]
  --output-index     CSV per row: network_id and rnnuniv.networks.LABEL_COLUMNS
  --output-networks  CSV per row (same order): network_id, the label columns,
                     scaffold_class (0 = most frequent), in_modal_class, and the task's columns
                     (flip-flop: n_stable, n_distinct_codes, has_8_memories, cube_scaffold,
                     n_saddles_index1, n_saddles_higher, ...; sine: n_conditions, frac_oscillatory,
                     freq_median_rel_error, freq_correlation; CDI: line_attractor, line_attractor_ctx0/1,
                     n_slow_modes, n_slow_modes_ctx0/1; other tasks: none)
  --output-smooth    CSV (sine/CDI): network_id, condition, condition_name, principal_modulus,
                     linearized_frequency (+ commanded_frequency for sine); flip-flop: header only
  --output-summary   JSON: fraction in the modal class per architecture (and x activation), number
                     of classes, within/between-architecture mean distance and their ratio
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from rnnuniv import io
from rnnuniv.tasks import TASKS
from rnnuniv.topology.stage import task_tables


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True, choices=sorted(TASKS), help="task name")
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


def main(argv=None) -> int:
    args = parse_args(argv)
    log = io.setup_logging()
    networks = io.read_csv(args.networks, required_columns=("network_id", "status", "architecture"))
    contents = [(path, io.read_json(path)) for path in args.graphs]
    out = task_tables(args.task, networks, contents, args.wl_iterations, args.higher_saddles)
    with io.atomic_path(args.output_distance, suffix=".npy") as tmp:
        np.save(tmp, out["distance"])
    io.write_csv(args.output_index, out["index"])
    io.write_csv(args.output_networks, out["networks"])
    io.write_csv(args.output_smooth, out["smooth"])
    io.write_json(args.output_summary, out["summary"])
    log.info("%s: %d kept networks; %s", args.task, len(out["index"]),
             {k: v for k, v in out["summary"].items() if not isinstance(v, dict)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
