#!/usr/bin/env python3
"""Train one shard of networks (one batched computation) and write weights and records.

Reads the task's population table, trains the networks of ``--shard`` together, and writes
``weights.safetensors`` (stacked weights, network ids in the metadata) and ``train.json`` (one
record per network: hyperparameters, seed, validation MSE, target variance on the same validation
trials, final train loss, loss curve, diverged step, steps completed, wall time). No keep
decision is made here: scripts/manifest.py applies the keep rule. A killed run resumes from
``--checkpoint`` (when it was written under the same config and seeds) and gives the same weights
as an uninterrupted one. ``--log-every`` and ``--checkpoint-every`` change no weight and are kept
out of ``--training`` so that the workflow does not retrain when they change.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import replace

import torch

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
    parser.add_argument("--log-every", type=int, default=None, help="loss-curve subsampling (steps)")
    parser.add_argument("--checkpoint-every", type=int, default=None, help="steps between checkpoints")
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
    if "loss_threshold" in args.training:
        raise SystemExit(
            "training.loss_threshold was replaced by keep.max_normalised_error "
            "(applied by scripts/manifest.py, not by training)"
        )
    bookkeeping = {
        k: v
        for k, v in (("log_every", args.log_every), ("checkpoint_every", args.checkpoint_every))
        if v is not None
    }
    config = TrainingConfig(**{**args.training, **bookkeeping})
    device = resolve_device(args.device)
    trained = networks["trained"].astype(bool).to_numpy()
    log.info(
        "training shard %s: %d networks and %d untrained twins on %s",
        args.shard, int(trained.sum()), int((~trained).sum()), device,
    )

    # The trained networks train together; their untrained twins (same seeds, so the same initial
    # weights) are only initialised and validated (0 steps), in a second call of their own, so that
    # the trained networks' batch, and hence their weights, do not depend on include_untrained.
    parts = []
    for is_trained in (True, False):
        part = networks[trained == is_trained]
        if part.empty:
            continue
        params, records = train_shard(
            cell,
            task,
            n_hidden=int(first["n_hidden"]),
            seeds=part["seed"].tolist(),
            l2=part["l2"].tolist(),
            learning_rates=part["learning_rate"].tolist(),
            config=config if is_trained else replace(config, n_steps=0),
            device=device,
            checkpoint=args.checkpoint if is_trained else None,
            progress=not args.no_progress and is_trained,
            stop_after=args.stop_after if is_trained else None,
            network_ids=part["network_id"].tolist(),
        )
        if is_trained and args.stop_after is not None and records[0]["steps_completed"] < config.n_steps:
            log.info("stopped after %d steps (checkpoint kept)", records[0]["steps_completed"])
            return 0
        parts.append((part.index, params, records))
    networks = networks.loc[[i for index, _, _ in parts for i in index]]
    params = {key: torch.cat([p[key] for _, p, _ in parts]) for key in parts[0][1]}
    records = [record for _, _, part_records in parts for record in part_records]
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
    diverged = sum(r["diverged_step"] is not None for r in records)
    log.info("done: %d networks (%d diverged), %.1f s", len(records), diverged, records[0]["shard_wall_time_s"])
    return 0


def _plain(value):
    return value.item() if hasattr(value, "item") else value


if __name__ == "__main__":
    sys.exit(main())
