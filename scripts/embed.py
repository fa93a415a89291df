#!/usr/bin/env python3
"""Embed a network-by-network distance matrix in 2-D by metric MDS.

Reads ``--distance`` (.npy, [N, N]) and ``--index`` (CSV, one row per matrix row: network_id and
label columns), fills in labels missing from the index from ``--networks`` (networks.csv), drops
networks with non-finite distances (logged), and writes ``--output`` (CSV: network_id, the label
columns of rnnuniv.networks.LABEL_COLUMNS, class (networks at distance 0 share a class, 0 = the largest), class_size, x, y). An empty matrix (no kept networks) gives a header-only table.

Example:
    python3 scripts/embed.py --distance results/flipflop/cca/distance.npy \\
        --index results/flipflop/cca/index.csv --networks results/flipflop/networks.csv \\
        --seed 0 --output results/flipflop/embedding/cca.csv
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from rnnuniv import io
from rnnuniv.embedding import identical_classes, mds
from rnnuniv.networks import labels
from rnnuniv.summary import finite_subset


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--distance", required=True, help="distance matrix .npy [N, N]")
    parser.add_argument("--index", required=True, help="CSV naming the matrix rows (network_id, ...)")
    parser.add_argument("--networks", required=True, help="networks.csv (labels of every network)")
    parser.add_argument("--seed", type=int, default=0, help="MDS random seed")
    parser.add_argument("--output", required=True, help="output CSV: network_id, labels, x, y")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    log = io.setup_logging()
    distance = np.load(args.distance, allow_pickle=False)
    index = io.read_csv(args.index, required_columns=("network_id",))
    networks = io.read_csv(args.networks, required_columns=("network_id",))
    if distance.shape != (len(index), len(index)):
        raise io.CorruptFileError(args.distance, f"shape {distance.shape} does not match the "
                                  f"{len(index)} rows of {args.index}")
    index = labels(index, networks)
    keep = finite_subset(distance)
    if (~keep).any():
        log.warning("dropping %d network(s) with non-finite distances: %s",
                    int((~keep).sum()), index["network_id"][~keep].tolist())
    table = index[keep].reset_index(drop=True)
    finite = distance[np.ix_(keep, keep)]
    coordinates = mds(finite, n_components=2, seed=args.seed)
    classes = identical_classes(finite)
    table["class"] = classes
    table["class_size"] = np.bincount(classes)[classes] if classes.size else classes
    table["x"], table["y"] = coordinates[:, 0], coordinates[:, 1]
    io.write_csv(args.output, table)
    log.info("embedded %d networks into %s", len(table), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
