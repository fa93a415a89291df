#!/usr/bin/env python3
"""Turn the fixed points of every analysed network of a shard into a topology graph.

Flip-flop: the scaffold graph (memories labelled by their readout code, links through index-1
saddles, input-pulse transitions; higher-index saddles as counts). Sine and CDI: the fixed points
over the grid of conditions as a continuation graph, with a topological signature per condition;
CDI also line attractors from slow points (the shard's dense slow-manifold samples when it has
them, else the finder's points); any other task the signature alone. See
``rnnuniv.topology`` (the per-task choice: ``rnnuniv.topology.stage``). The finder's stored
eigen-decomposition, marginal tolerance and probe speeds are read from the shard, not recomputed.

Writes ``topology/{shard}.json``: ``{"task", "shard", "condition_names", "condition_inputs",
"signature_features", "n_steps", "networks": {network_id: {"summary": {...}, "graph": <networkx
node-link data, edges="edges">}}}``; sine/CDI summaries hold ``signature`` ([C][F] integers) and
``smooth`` (per condition: principal_modulus, linearized_frequency).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from rnnuniv import io
from rnnuniv.runtime import json_argument, resolve_device, set_threads
from rnnuniv.tasks import TASKS, make_task
from rnnuniv.topology.stage import SHARD_ARRAYS, check_options, shard_record


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True, choices=sorted(TASKS), help="task name")
    parser.add_argument("--task-params", type=json_argument, default={}, help="task parameters as JSON")
    parser.add_argument("--weights", required=True, help="weights.safetensors of the shard")
    parser.add_argument("--fixed-points", required=True, help="fixed_points/{shard}.npz of the shard")
    parser.add_argument(
        "--options",
        type=json_argument,
        default={},
        help="JSON; flip-flop: eps [1e-3], match_tol [0.02], max_steps [2000], check_every [5], "
        "include_slow [false], n_eigenvalues [4], pulse_amplitude [1.0]; other tasks: include_slow, "
        "n_eigenvalues, continuation_tol [null], tau_factor [1.0]; cdi: slow_speed_fraction [0.01], "
        "min_line_points [5], line_variance [0.9], line_extent [0.5], line_gap [0.25]",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--output", required=True, help="output: topology/{shard}.json")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    log = io.setup_logging()
    set_threads(args.threads)
    task = make_task(args.task, **args.task_params)
    try:
        options = check_options(args.options)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    arrays = io.load_npz(args.fixed_points, required=SHARD_ARRAYS)
    started = time.perf_counter()
    record = shard_record(task, arrays, args.weights, Path(args.output).stem, options, resolve_device(args.device))
    io.write_json(args.output, record)
    log.info("%s: %d networks, graphs in %.1f s", args.output, len(record["networks"]), time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
