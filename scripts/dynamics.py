#!/usr/bin/env python3
"""Connectivity versus dynamics of the kept networks (beyond the paper).

Two subcommands:

``shard``: for every kept network of a shard, from its weights and its probe states
(``rnnuniv.dynamics``): the participation ratio of its probe hidden states, naive
(``participation_ratio``) and cross-block (``participation_ratio_cross``, ``pr_blocks`` blocks of
interleaved probe trials); the effective rank, participation rank, numerical rank, gain and
candidate-block spectral radius of ``w_rec``; and the top Lyapunov exponents of
its full state (LSTM: ``[h, c]``) driven by a few probe trials from the zero state (the first
``warmup_fraction`` of the steps not counted; exponents averaged over the trials, natural log per
step, ``lyapunov_1`` the largest). Writes ``dynamics/{shard}.csv``, one row per kept network.

``table``: concatenates the shard tables of a task into ``dynamics/summary.csv`` and writes the
Spearman correlations, with seeded bootstrap intervals over networks (``rnnuniv.connectivity``),
between connectivity (participation and effective rank of ``w_rec`` and of its candidate block,
gain, spectral radius) and dynamics (both participation ratios, largest Lyapunov exponent), over
all networks and per architecture, and the best predictor of dimension per architecture, to
``dynamics/correlations.json``: ``{task, method, n_networks, bootstrap: {n_bootstrap, seed,
level}, correlations: [{architecture, connectivity, dynamics, n, rho, p_value, ci_low,
ci_high}], best_predictor: {architecture: {connectivity, rho, ci_low, ci_high, n, clear}}}``
(numbers null for fewer than 3 networks or a constant column). The work is
``rnnuniv.dynamics_table``.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from rnnuniv import io
from rnnuniv.connectivity import CONNECTIVITY, DYNAMICS
from rnnuniv.dynamics_table import DEFAULT_OPTIONS, check_options, correlations_record, shard_table
from rnnuniv.networks import load_shard_networks
from rnnuniv.probes import state_rows
from rnnuniv.runtime import json_argument, resolve_device, set_threads


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)

    shard = commands.add_parser("shard", help="connectivity and dynamics of the kept networks of a shard")
    shard.add_argument("--weights", required=True, help="weights.safetensors of the shard")
    shard.add_argument("--networks", required=True, help="networks.csv of the task (statuses, written by rule manifest)")
    shard.add_argument("--states", required=True, help="states .npz of the shard (hidden, inputs)")
    shard.add_argument(
        "--options",
        type=json_argument,
        default={},
        help=f"JSON: {', '.join(DEFAULT_OPTIONS)} (defaults: {DEFAULT_OPTIONS})",
    )
    shard.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    shard.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    shard.add_argument("--output", required=True, help="output: dynamics/{shard}.csv")

    table = commands.add_parser("table", help="all shard tables of a task and the correlations")
    table.add_argument("--task", required=True, help="task name (recorded in the JSON)")
    table.add_argument("--tables", nargs="*", default=[], help="dynamics/{shard}.csv of every shard")
    table.add_argument("--options", type=json_argument, default={},
                       help="JSON: n_bootstrap, bootstrap_seed, interval_level (other keys ignored)")
    table.add_argument("--output-summary", required=True, help="output: dynamics/summary.csv")
    table.add_argument("--output-correlations", required=True, help="output: dynamics/correlations.json")
    return parser.parse_args(argv)


def shard(args) -> pd.DataFrame:
    try:
        options = check_options(args.options)
    except ValueError as error:
        raise SystemExit(str(error)) from None
    device = resolve_device(args.device)
    cell, chosen, ids, rows, _ = load_shard_networks(args.weights, args.networks, statuses=("kept",), device=device)
    states = io.load_npz(args.states, required=("network_ids", "hidden", "inputs"))
    hidden = states["hidden"][state_rows(states, ids, args.states)]  # [N, K, T, n]
    probe_inputs = states["inputs"]  # [K, T, m]
    if hidden.shape[1:3] != probe_inputs.shape[:2]:
        raise io.CorruptFileError(
            args.states, f"hidden {hidden.shape} and inputs {probe_inputs.shape} disagree"
        )
    return shard_table(cell, chosen, rows.assign(network_id=ids), hidden, probe_inputs, options, device)


def main(argv=None) -> int:
    args = parse_args(argv)
    log = io.setup_logging()
    if args.command == "shard":
        set_threads(args.threads)
        io.write_csv(args.output, shard(args))
        return 0
    required = ("network_id", "architecture") + CONNECTIVITY + DYNAMICS
    tables = [io.read_csv(path, required_columns=required) for path in args.tables]
    summary = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=list(required))
    duplicated = summary["network_id"][summary["network_id"].duplicated()].tolist()
    if duplicated:
        raise SystemExit(f"networks appear in more than one shard table: {duplicated}")
    io.write_csv(args.output_summary, summary)
    io.write_json(args.output_correlations, correlations_record(args.task, summary, args.options))
    log.info("task %s: %d networks from %d shard tables", args.task, len(summary), len(tables))
    return 0


if __name__ == "__main__":
    sys.exit(main())
