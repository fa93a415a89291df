#!/usr/bin/env python3
"""Find, linearise and cluster the fixed points of every kept network of a shard.

For each fixed-point condition of the task (flip-flop: zero input; sine: each frequency command
of a grid; CDI: each context with a ramp of constant stream inputs), initial states are drawn from
the network's own probe trajectories plus noise, and all networks of the shard are searched at
once (see ``rnnuniv.fixedpoints``).

Writes ``fixed_points/{shard}.npz`` (per point: network and condition index, state, q,
eigenvalues, leading eigenvectors, stability, manifold label, ``n_marginal``, readout; per
network ``probe_speed`` and ``probe_spread`` of its probe trajectories; the ``marginal_tol`` used)
and ``{shard}.csv`` (one row per network and condition; a continuum counts as one manifold, never
as hundreds of points). With the option ``slow_manifold`` (CDI only), the slow manifold at each
context's zero-stream condition is also sampled densely from the probe states
(``rnnuniv.fixedpoints.slow``) and stored as the shard's ``slow_*`` arrays, for the line-attractor
test of the topology stage. The topology stage reads all of these back rather than recomputing them.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import torch

from rnnuniv import io
from rnnuniv.fixedpoints import shard_fixed_points, write_shard
from rnnuniv.networks import load_shard_networks
from rnnuniv.probes import state_rows
from rnnuniv.runtime import json_argument, keep_freed_memory, resolve_device, set_threads
from rnnuniv.tasks import make_task
from rnnuniv.topology.lines import cdi_contexts


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, help="weights.safetensors of the shard")
    parser.add_argument("--networks", required=True, help="networks.csv of the task (statuses, written by rule manifest)")
    parser.add_argument("--states", required=True, help="states .npz of the shard (probe trajectories)")
    parser.add_argument("--task", required=True, help="task name")
    parser.add_argument("--task-params", type=json_argument, default={}, help="task parameters as JSON")
    parser.add_argument(
        "--options",
        type=json_argument,
        default={},
        help="JSON: n_grid, n_inits, noise_scale, seed, n_modes, manifold_length_fraction, network_chunk, "
        "slow_manifold (cdi: {n_seeds, iterations, tau_factor, speed_cap, spacing}), and any "
        "find_fixed_points option (tol_q, tol_unique, max_q_slow, adam_iters, newton_iters, ...)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--output-npz", required=True, help="output: fixed points .npz")
    parser.add_argument("--output-csv", required=True, help="output: per network and condition table")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    log = io.setup_logging()
    set_threads(args.threads)
    keep_freed_memory()
    options = dict(args.options)
    n_grid = options.pop("n_grid", None)
    slow_manifold = options.pop("slow_manifold", None)
    device = resolve_device(args.device)
    cell, chosen, ids, _, meta = load_shard_networks(
        args.weights, args.networks, statuses=("kept",), dtype=torch.float64, device=device
    )
    task = make_task(args.task, **args.task_params)
    conditions = task.fixed_point_conditions(n_grid)
    slow_conditions = []
    if slow_manifold is not None:
        if task.name != "cdi":
            raise SystemExit(f"slow_manifold sampling is defined for the cdi task's line conditions, not {task.name}")
        inputs = np.stack([np.asarray(u, dtype=np.float64) for _, u in conditions])
        slow_conditions = [c for c in cdi_contexts(inputs) if c is not None]
    states = io.load_npz(args.states, required=("network_ids", "hidden"))
    take = state_rows(states, ids, args.states)
    trajectories = states["hidden"][take]
    if "cell" in states:
        trajectories = np.concatenate([trajectories, states["cell"][take]], axis=-1)

    arrays, table = shard_fixed_points(
        cell,
        chosen,
        torch.as_tensor(trajectories, device=device),
        conditions,
        n_hidden=int(meta["n_hidden"]),
        slow_manifold=slow_manifold,
        slow_conditions=slow_conditions,
        n_steps=task.n_steps,
        network_keys=ids,
        **options,
    )
    write_shard(args.output_npz, ids, arrays)
    table.insert(0, "network_id", [ids[i] for i in table.pop("network_index")])
    io.write_csv(args.output_csv, table)
    log.info(
        "shard %s: %d kept networks x %d conditions, %d points, %d slow-manifold samples",
        meta["shard"],
        len(ids),
        len(conditions),
        len(arrays["q"]),
        len(arrays.get("slow_q", ())),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
