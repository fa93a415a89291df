#!/usr/bin/env python3
"""Turn the fixed points of every analysed network of a shard into a topology graph.

Flip-flop: the scaffold graph (memories labelled by their readout code, links through index-1
saddles, input-pulse transitions; higher-index saddles as counts). Sine and CDI: the fixed points
over the grid of conditions as a continuation graph, with a topological signature per condition;
CDI also line attractors from slow points (the shard's dense slow-manifold samples when it
has them, else the finder's points). See ``rnnuniv.topology``. The finder's stored
eigen-decomposition, marginal tolerance and probe speeds are read from the shard, not recomputed.

Writes ``topology/{shard}.json``: ``{"task", "shard", "condition_names", "condition_inputs",
"signature_features", "n_steps", "networks": {network_id: {"summary": {...}, "graph": <networkx
node-link data, edges="edges">}}}``; sine/CDI summaries hold ``signature`` ([C][F] integers) and
``smooth`` (per condition: principal_modulus, linearized_frequency).
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import numpy as np
import torch

from rnnuniv import io, topology
from rnnuniv.cells import make_cell
from rnnuniv.fixedpoints import read_shard
from rnnuniv.probes import subset
from rnnuniv.runtime import json_argument, resolve_device, set_threads
from rnnuniv.tasks import make_task

REQUIRED = (
    "network_ids", "condition_names", "condition_inputs", "network_index", "condition_index",
    "points", "q", "is_fixed", "eigenvalues", "right_eigenvectors", "n_unstable", "cluster",
    "marginal_tol",
)  # fmt: skip

FLIPFLOP_OPTIONS = ("eps", "match_tol", "max_steps", "check_every", "include_slow", "n_eigenvalues",
                    "pulse_amplitude")
GRID_OPTIONS = ("include_slow", "n_eigenvalues", "continuation_tol", "tau_factor")
CDI_OPTIONS = tuple(topology.LINE_DEFAULTS)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", required=True, help="task name (flipflop, sine, cdi)")
    parser.add_argument("--task-params", type=json_argument, default={}, help="task parameters as JSON")
    parser.add_argument("--weights", required=True, help="weights.safetensors of the shard")
    parser.add_argument("--fixed-points", required=True, help="fixed_points/{shard}.npz of the shard")
    parser.add_argument(
        "--options",
        type=json_argument,
        default={},
        help="JSON; flip-flop: eps [1e-3], match_tol [0.02], max_steps [2000], check_every [5], "
        "include_slow [false], n_eigenvalues [4], pulse_amplitude [1.0]; sine/cdi: include_slow, "
        "n_eigenvalues, continuation_tol [null], tau_factor [1.0]; cdi: slow_speed_fraction [0.01], "
        "min_line_points [5], line_variance [0.9], line_extent [0.5], line_gap [0.25]",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--output", required=True, help="output: topology/{shard}.json")
    return parser.parse_args(argv)


def _pick(options: dict, allowed: tuple[str, ...]) -> dict:
    return {k: v for k, v in options.items() if k in allowed}


def cdi_slow_samples(arrays, condition_inputs) -> tuple[list, float | None]:
    """Per network the shard's slow-manifold samples (``None`` each when it has none: the line test
    then uses the finder's points), and the speed cap they were kept at."""
    shard = read_shard(arrays)  # checks the samples' version
    if shard.slow_conditions is None:
        logging.getLogger(__name__).warning("no slow-manifold samples in the shard: line test on the finder's points")
        return [None] * len(shard.networks), None
    needed = [c for c in topology.cdi_contexts(condition_inputs) if c is not None]
    if not set(needed) <= set(shard.slow_conditions):
        raise io.CorruptFileError(
            "fixed points", f"slow-manifold samples at conditions {shard.slow_conditions}, the line test needs {needed}"
        )
    return [network.slow for network in shard.networks], shard.slow_speed_cap


def grid_summaries(task, points, arrays, ids, options, marginal_tol) -> tuple[list, list]:
    """Sine/CDI graphs and per-network summaries (signature, smooth table, task numbers)."""
    names = [str(n) for n in arrays["condition_names"].tolist()]
    condition_inputs = np.asarray(arrays["condition_inputs"], dtype=np.float64)
    chains, values = topology.condition_chains(task.name, condition_inputs)
    graphs = topology.bifurcation_graphs(
        points, chains, values, ids, names, marginal_tol=marginal_tol, n_steps=task.n_steps,
        **_pick(options, GRID_OPTIONS),
    )  # fmt: skip
    if task.name == "sine":
        summaries = [topology.sine_summary(g, values, task.frequency) for g in graphs]
    else:
        for key in ("probe_speed", "probe_spread"):
            if key not in arrays:
                raise io.CorruptFileError("fixed points", f"no '{key}' (rerun the fixed-points stage)")
        slow, cap = cdi_slow_samples(arrays, condition_inputs)
        summaries = [
            topology.cdi_summary(p, condition_inputs, float(arrays["probe_speed"][i]),
                                 float(arrays["probe_spread"][i]), task.n_steps, slow=slow[i],
                                 slow_speed_cap=cap, **_pick(options, CDI_OPTIONS))
            for i, p in enumerate(points)
        ]  # fmt: skip
    for g, s in zip(graphs, summaries):
        s["signature"] = topology.signature(g, len(names), task.name).tolist()
        s["smooth"] = topology.smooth_rows(g, len(names), task.name)
    return graphs, summaries


def main(argv=None) -> int:
    args = parse_args(argv)
    log = io.setup_logging()
    set_threads(args.threads)
    task = make_task(args.task, **args.task_params)
    options = dict(args.options)
    known = set(FLIPFLOP_OPTIONS + GRID_OPTIONS + CDI_OPTIONS)
    unknown = sorted(set(options) - known)
    if unknown:
        raise SystemExit(f"unknown topology options {unknown}; valid: {sorted(known)}")

    arrays = io.load_npz(args.fixed_points, required=REQUIRED)
    ids = [str(i) for i in arrays["network_ids"].tolist()]
    names = [str(n) for n in arrays["condition_names"].tolist()]
    condition_inputs = np.asarray(arrays["condition_inputs"], dtype=np.float64)
    marginal_tol = float(arrays["marginal_tol"])
    points = topology.points_from_shard(arrays)
    record = {
        "task": task.name,
        "shard": Path(args.output).stem,
        "condition_names": names,
        "condition_inputs": condition_inputs.tolist(),
        "signature_features": list(topology.SIGNATURE_FEATURES),
        "n_steps": task.n_steps,
        "networks": {},
    }
    started = time.perf_counter()
    if ids:
        params, meta = io.load_weights(args.weights)
        if task.name == "flipflop":
            device = resolve_device(args.device)
            chosen = {k: v.to(device, torch.float64) for k, v in subset(params, meta["network_ids"], ids).items()}
            cell = make_cell(meta["architecture"], meta["activation"])
            dynamics = topology.cell_dynamics(cell, chosen, int(meta["n_hidden"]))
            if "outputs" not in arrays:
                topology.add_outputs(points, dynamics)
            zero = np.flatnonzero(~condition_inputs.any(1))
            graphs = topology.flipflop_graphs(
                dynamics, points, ids, condition=int(zero[0]) if zero.size else 0,
                marginal_tol=marginal_tol, **_pick(options, FLIPFLOP_OPTIONS),
            )  # fmt: skip
            summaries = [topology.flipflop_summary(g) for g in graphs]
        else:
            graphs, summaries = grid_summaries(task, points, arrays, ids, options, marginal_tol)
        for nid, graph, summary in zip(ids, graphs, summaries):
            graph.graph.update(architecture=meta["architecture"], activation=meta["activation"])
            record["networks"][nid] = {"summary": summary, "graph": topology.graph_to_json(graph)}
    io.write_json(args.output, record)
    log.info("%s: %d networks, graphs in %.1f s", args.output, len(ids), time.perf_counter() - started)
    return 0


if __name__ == "__main__":
    sys.exit(main())
