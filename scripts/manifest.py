#!/usr/bin/env python3
"""Apply the keep rule to the training records of every shard of a task: the manifest ``networks.csv``.

One row per network, in population order: every column of population.csv, then ``status`` (kept,
above-threshold, diverged, untrained, surplus), ``validation_loss``, ``target_variance``,
``normalised_error`` (= validation_loss / target_variance), ``final_train_loss``,
``diverged_step``, ``steps_completed`` and ``shard_wall_time_s``. The keep rule is
``rnnuniv.networks.keep_status``; later stages select networks from this file only.
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from rnnuniv import io
from rnnuniv.networks import MANIFEST_COLUMNS, keep_status

RECORD_COLUMNS = [c for c in MANIFEST_COLUMNS if c not in ("status", "normalised_error")]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--population", required=True, help="population.csv of the task")
    parser.add_argument("--records", nargs="+", required=True, help="train.json of every shard")
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
    population = io.read_csv(args.population, required_columns=("network_id", "trained"))
    rows = []
    for path in args.records:
        record = io.read_json(path)
        if "networks" not in record:
            raise io.CorruptFileError(path, "no 'networks' list")
        for network in record["networks"]:
            missing = [c for c in ("network_id", *RECORD_COLUMNS) if c not in network]
            if missing:
                raise io.CorruptFileError(path, f"training record without {missing} (rerun training)")
            rows.append({c: network[c] for c in ("network_id", *RECORD_COLUMNS)})
    results = pd.DataFrame(rows, columns=["network_id", *RECORD_COLUMNS])
    table = population.merge(results, on="network_id", how="left", validate="one_to_one")
    missing = table["validation_loss"].isna() & table["steps_completed"].isna()
    if missing.any():
        raise SystemExit(f"{int(missing.sum())} networks of {args.population} have no training record")
    table = keep_status(table, args.max_normalised_error, args.max_kept_per_group)
    table = table[[*population.columns, *MANIFEST_COLUMNS]]
    io.write_csv(args.output, table)
    counts = table["status"].value_counts().to_dict()
    log.info("%d networks, max normalised error %g: %s", len(table), args.max_normalised_error, counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
