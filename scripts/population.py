#!/usr/bin/env python3
"""Write the population table of one task: every network, its hyperparameters, seed and shard."""

from __future__ import annotations

import argparse
import sys

from rnnuniv import io
from rnnuniv.population import build_population
from rnnuniv.runtime import json_argument


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--task", required=True, help="task name")
    parser.add_argument("--population", type=json_argument, required=True, help="config 'population' section as JSON")
    parser.add_argument("--study-seed", type=int, default=0, help="seed of the whole study")
    parser.add_argument("--output", required=True, help="output: population.csv")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    log = io.setup_logging()
    table = build_population(args.task, args.population, args.study_seed)
    io.write_csv(args.output, table)
    log.info("%s: %d networks in %d shards", args.task, len(table), table["shard"].nunique())
    return 0


if __name__ == "__main__":
    sys.exit(main())
