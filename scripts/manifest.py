#!/usr/bin/env python3
"""Apply the keep rule to the training records of every shard of a task: the manifest ``networks.csv``.

One row per network, in population order: every column of population.csv, then ``status`` (kept,
above-threshold, diverged, untrained, surplus, not-needed), ``validation_loss``, ``target_variance``,
``normalised_error`` (= validation_loss / target_variance), ``final_train_loss``,
``diverged_step``, ``steps_completed`` and ``shard_wall_time_s``. The keep rule is
``rnnuniv.networks.keep_status``; later stages select networks from this file only. With
``--max-kept-per-group``, the shards of oversampled seeds that earlier shards made unnecessary
(``rnnuniv.population.needed_shards``) need no records: their networks are ``not-needed``.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial

import pandas as pd

from rnnuniv import io
from rnnuniv.networks import MANIFEST_COLUMNS, keep_status, passed_networks, read_training_records
from rnnuniv.population import needed_shards, shards


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--population", required=True, help="population.csv of the task")
    parser.add_argument("--records", nargs="+", required=True, help="train.json of every needed shard")
    parser.add_argument(
        "--max-normalised-error", type=float, required=True,
        help="keep a network when validation MSE / Var(target) is at most this",
    )  # fmt: skip
    parser.add_argument(
        "--max-kept-per-group", type=int, default=None,
        help="kept networks per hyperparameter combination, the first by seed index; more are 'surplus' "
        "(population.n_seeds, so that oversampled groups are analysed at the size of the others)",
    )  # fmt: skip
    parser.add_argument("--output", required=True, help="output: networks.csv")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    log = io.setup_logging()
    population = io.read_csv(args.population, required_columns=("network_id", "trained", "shard", "seed_index"))
    results = read_training_records(args.records)
    recorded = set(results["network_id"].astype(str))
    needed = set(shards(population))
    if args.max_kept_per_group is not None:
        needed = set(needed_shards(population, args.max_kept_per_group, partial(_passed, population, results, recorded, args)))
    table = population.merge(results, on="network_id", how="left", validate="one_to_one")
    in_needed = table["shard"].isin(needed).to_numpy()
    missing = in_needed & ~table["network_id"].astype(str).isin(recorded).to_numpy()
    if missing.any():
        raise SystemExit(
            f"{int(missing.sum())} networks of {args.population} have no training record "
            f"(shards {sorted(set(table.loc[missing, 'shard']))})"
        )
    table = keep_status(table, args.max_normalised_error, args.max_kept_per_group)
    table.loc[~in_needed, "status"] = "not-needed"
    integer_columns = ["n_rollbacks", "steps_completed"]  # empty for not-needed networks
    table[integer_columns] = table[integer_columns].astype("Int64")
    table = table[[*population.columns, *MANIFEST_COLUMNS]]
    io.write_csv(args.output, table)
    counts = table["status"].value_counts().to_dict()
    log.info("%d networks, max normalised error %g: %s", len(table), args.max_normalised_error, counts)
    return 0


def _passed(population: pd.DataFrame, results: pd.DataFrame, recorded: set[str], args, shard: str) -> set[str]:
    ids = set(population.loc[population["shard"] == shard, "network_id"].astype(str))
    if not ids <= recorded:
        raise SystemExit(f"shard {shard} of {args.population} has no training record (needed to decide later shards)")
    return passed_networks(results[results["network_id"].astype(str).isin(ids)], args.max_normalised_error)


if __name__ == "__main__":
    sys.exit(main())
