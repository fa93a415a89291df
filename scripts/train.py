#!/usr/bin/env python3
"""Train one shard of networks (one batched computation) and write weights and records.

Reads the task's population table, trains the networks of ``--shard`` together, and writes
``weights.safetensors`` (stacked weights, network ids in the metadata) and ``train.json`` (one
record per network: hyperparameters, seed, losses, loss curve, status, wall time). A killed run
resumes from ``--checkpoint`` and gives the same weights as an uninterrupted one.
"""

from __future__ import annotations

import argparse
import os
import sys

from rnnuniv import io
from rnnuniv.cells import make_cell
from rnnuniv.runtime import json_argument, keep_freed_memory, resolve_device, set_threads
from rnnuniv.tasks import make_task, task_to_dict
from rnnuniv.training import TrainingConfig, config_record, train_shard


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--population", required=True, help="population.csv of the task")
    parser.add_argument("--shard", required=True, help="shard id to train")
    parser.add_argument("--task", required=True, help="task name (flipflop, sine, cdi)")
    parser.add_argument("--task-params", type=json_argument, default={}, help="task parameters as JSON")
    parser.add_argument("--training", type=json_argument, default={}, help="TrainingConfig fields as JSON")
    parser.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, ...")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--checkpoint", default=None, help="checkpoint to resume from and write to")
    parser.add_argument("--stop-after", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--weights", required=True, help="output: weights.safetensors")
    parser.add_argument("--records", required=True, help="output: train.json")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    log = io.setup_logging()
    set_threads(args.threads)
    keep_freed_memory()
    population = io.read_csv(args.population, required_columns=("network_id", "shard", "seed"))
    networks = population[population["shard"] == args.shard]
    if networks.empty:
        raise SystemExit(f"{args.population}: no networks in shard {args.shard!r}")
    first = networks.iloc[0]
    cell = make_cell(first["architecture"], first["activation"])
    task = make_task(args.task, **args.task_params)
    untrained = not bool(first["trained"])
    config = TrainingConfig(**{**args.training, **({"n_steps": 0} if untrained else {})})
    device = resolve_device(args.device)
    log.info("training shard %s: %d networks on %s", args.shard, len(networks), device)

    params, records = train_shard(
        cell,
        task,
        n_hidden=int(first["n_hidden"]),
        seeds=networks["seed"].tolist(),
        l2=networks["l2"].tolist(),
        learning_rates=networks["learning_rate"].tolist(),
        config=config,
        device=device,
        checkpoint=args.checkpoint,
        progress=not args.no_progress,
        stop_after=args.stop_after,
    )
    if args.stop_after is not None and records[0]["steps_completed"] < config.n_steps:
        log.info("stopped after %d steps (checkpoint kept)", records[0]["steps_completed"])
        return 0
    ids = networks["network_id"].tolist()
    metadata = {
        "shard": args.shard,
        "task": args.task,
        "architecture": cell.architecture,
        "activation": cell.activation,
        "n_hidden": int(first["n_hidden"]),
        "network_ids": ids,
    }
    io.save_weights(args.weights, params, metadata)
    rows = [
        {**{k: _plain(v) for k, v in row.items()}, **record}
        for row, record in zip(networks.to_dict("records"), records)
    ]
    io.write_json(
        args.records,
        {**metadata, "task_params": task_to_dict(task), "training": config_record(config), "networks": rows},
    )
    if args.checkpoint and os.path.exists(args.checkpoint):
        os.remove(args.checkpoint)
    kept = sum(r["status"] == "kept" for r in records)
    log.info("done: %d/%d kept, %.1f s", kept, len(records), records[0]["shard_wall_time_s"])
    return 0


def _plain(value):
    return value.item() if hasattr(value, "item") else value


if __name__ == "__main__":
    sys.exit(main())
