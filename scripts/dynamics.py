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
(numbers null for fewer than 3 networks or a constant column).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import pandas as pd
import torch
from rnnuniv import io
from rnnuniv.connectivity import CONNECTIVITY, DYNAMICS, best_predictors, correlation_records
from rnnuniv.dynamics import (
    CONNECTIVITY_METRICS,
    connectivity_metrics,
    network_lyapunov_spectra,
    participation_ratio,
)
from rnnuniv.networks import labels, load_shard_networks
from rnnuniv.probes import state_rows
from rnnuniv.runtime import json_argument, resolve_device, set_threads

DEFAULT_OPTIONS = {"n_exponents": 8, "n_trials": 4, "warmup_fraction": 0.25, "qr_every": 1, "seed": 0,
                   "pr_blocks": 4, "n_bootstrap": 1000, "bootstrap_seed": 0, "interval_level": 0.95}


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


def trial_indices(n_available: int, n_trials: int) -> np.ndarray:
    """``n_trials`` probe trials spread evenly over the probe set (which is ordered by condition)."""
    return np.unique(np.linspace(0, n_available - 1, min(n_trials, n_available)).round().astype(int))


def shard_table(args, log) -> pd.DataFrame:
    options = {**DEFAULT_OPTIONS, **args.options}
    unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
    if unknown:
        raise SystemExit(f"unknown dynamics options {unknown}; valid: {sorted(DEFAULT_OPTIONS)}")
    device = resolve_device(args.device)
    cell, chosen, ids, rows, meta = load_shard_networks(args.weights, args.networks, statuses=("kept",), device=device)
    states = io.load_npz(args.states, required=("network_ids", "hidden", "inputs"))
    hidden = states["hidden"][state_rows(states, ids, args.states)]  # [N, K, T, n]
    probe_inputs = states["inputs"]  # [K, T, m]
    if hidden.shape[1:3] != probe_inputs.shape[:2]:
        raise io.CorruptFileError(
            args.states, f"hidden {hidden.shape} and inputs {probe_inputs.shape} disagree"
        )

    table = labels(rows.assign(network_id=ids))
    n_exponents = min(int(options["n_exponents"]), cell.state_size(int(meta["n_hidden"])))
    columns = [*table.columns, "participation_ratio", "participation_ratio_cross", *CONNECTIVITY_METRICS]
    columns += [f"lyapunov_{i + 1}" for i in range(n_exponents)]
    if not ids:
        return table.reindex(columns=columns)

    table["participation_ratio"] = participation_ratio(hidden, batch_dims=1).numpy()
    table["participation_ratio_cross"] = cross_block_ratio(hidden, int(options["pr_blocks"]))
    for name, values in connectivity_metrics(chosen["w_rec"], cell.architecture).items():
        table[name] = values.cpu().numpy()

    trials = trial_indices(probe_inputs.shape[0], int(options["n_trials"]))
    n_steps = probe_inputs.shape[1]
    n_warmup = min(int(options["warmup_fraction"] * n_steps), n_steps - 1)
    exponents = network_lyapunov_spectra(
        cell,
        {k: v.to(torch.float64) for k, v in chosen.items()},
        torch.as_tensor(probe_inputs[trials], device=device, dtype=torch.float64),
        n_exponents=n_exponents,
        n_warmup=n_warmup,
        qr_every=int(options["qr_every"]),
        seed=int(options["seed"]),
    )  # [N, trials, k]
    mean_exponents = exponents.mean(dim=1).cpu().numpy()
    for i in range(n_exponents):
        table[f"lyapunov_{i + 1}"] = mean_exponents[:, i]
    log.info(
        "%d kept networks: %d exponents over %d trials x %d steps (%d warm-up)",
        len(ids),
        n_exponents,
        len(trials),
        n_steps,
        n_warmup,
    )
    return table.reindex(columns=columns)


def cross_block_ratio(hidden: np.ndarray, n_blocks: int) -> np.ndarray:
    """Cross-block participation ratio of ``hidden`` ``[N, K, T, n]``, blocks of interleaved trials
    (block ``a`` = trials ``a, a + B, ...``: the probe set is ordered by condition, so contiguous
    blocks would differ systematically); NaN for every network if there are fewer than 2 trials."""
    n_trials = hidden.shape[1]
    n_blocks = min(int(n_blocks), n_trials)
    if n_blocks < 2:
        return np.full(hidden.shape[0], np.nan)
    order = np.concatenate([np.arange(a, n_trials, n_blocks) for a in range(n_blocks)])
    return participation_ratio(hidden[:, order], batch_dims=1, n_blocks=n_blocks).numpy()


def main(argv=None) -> int:
    args = parse_args(argv)
    log = io.setup_logging()
    if args.command == "shard":
        set_threads(args.threads)
        io.write_csv(args.output, shard_table(args, log))
        return 0
    options = {**DEFAULT_OPTIONS, **args.options}
    required = ("network_id", "architecture") + CONNECTIVITY + DYNAMICS
    tables = [io.read_csv(path, required_columns=required) for path in args.tables]
    summary = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=list(required))
    duplicated = summary["network_id"][summary["network_id"].duplicated()].tolist()
    if duplicated:
        raise SystemExit(f"networks appear in more than one shard table: {duplicated}")
    io.write_csv(args.output_summary, summary)
    bootstrap = {
        "n_bootstrap": int(options["n_bootstrap"]),
        "seed": int(options["bootstrap_seed"]),
        "level": float(options["interval_level"]),
    }
    records = correlation_records(summary, bootstrap["n_bootstrap"], bootstrap["seed"], bootstrap["level"])
    io.write_json(
        args.output_correlations,
        {
            "task": args.task,
            "method": "spearman",
            "n_networks": len(summary),
            "bootstrap": bootstrap,
            "correlations": records,
            "best_predictor": best_predictors(records),
        },
    )
    log.info("task %s: %d networks from %d shard tables", args.task, len(summary), len(tables))
    return 0


if __name__ == "__main__":
    sys.exit(main())
