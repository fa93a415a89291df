#!/usr/bin/env python3
"""Gather the training records of every shard of a task into the manifest ``networks.csv``.

One row per network, in population order: id, hyperparameters, seed, shard, status (kept,
above-threshold, diverged, untrained) and final losses. Later stages select networks from it.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from rnnuniv import io

RECORD_COLUMNS = [
    "status",
    "validation_loss",
    "final_train_loss",
    "diverged_step",
    "steps_completed",
    "shard_wall_time_s",
]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--population", required=True, help="population.csv of the task")
    parser.add_argument("--records", nargs="+", required=True, help="train.json of every shard")
    parser.add_argument("--output", required=True, help="output: networks.csv")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    log = io.setup_logging()
    population = io.read_csv(args.population, required_columns=("network_id",))
    rows = []
    for path in args.records:
        record = io.read_json(path)
        if "networks" not in record:
            raise io.CorruptFileError(path, "no 'networks' list")
        rows += [{"network_id": r["network_id"], **{c: r.get(c) for c in RECORD_COLUMNS}} for r in record["networks"]]
    results = pd.DataFrame(rows, columns=["network_id", *RECORD_COLUMNS])
    table = population.merge(results, on="network_id", how="left", validate="one_to_one")
    missing = table["status"].isna().sum()
    if missing:
        raise SystemExit(f"{missing} networks of {args.population} have no training record")
    io.write_csv(args.output, table)
    counts = table["status"].value_counts().to_dict()
    log.info("%d networks: %s", len(table), counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
