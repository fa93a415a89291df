"""CCA-matrix stage: all-pairs distances between a task's networks, streamed from stored features.

Reads the per-network features of every shard (``similarity/{shard}.npz``, written by
scripts/similarity_features.py) and the population table (``networks.csv``), whose order,
restricted to networks with ``status`` "kept" or "untrained" that have features, is the order of
the matrices. One pass over the features gives SVCCA at ``--n-components`` and at every
``--sensitivity-components`` k, CKA and Procrustes, over kept networks and untrained twins at once;
the kept-only matrices are sliced from it. DSA compares the stored eigenvalues of kept networks.
The metrics and their options come from rnnuniv.similarity.registry; the matrices from
rnnuniv.similarity.matrices.task_matrices.

Writes under ``--output-dir`` (each .npy float64 [N, N], each index.csv one row per matrix row:
``network_id`` and rnnuniv.networks.LABEL_COLUMNS), atomically:

    distance.npy + index.csv                  SVCCA, kept networks (the paper's CCA matrix)
    untrained/distance.npy + index.csv        SVCCA, kept networks and their untrained twins
    {metric}/distance.npy + index.csv         each --extra-metrics metric, kept networks
    sensitivity/k{k}/distance.npy + index.csv SVCCA at k components, kept networks (same index)

Example:
    python scripts/cca_matrix.py --features similarity/*.npz --networks networks.csv \\
        --n-components 10 --sensitivity-components 3 5 10 20 --extra-metrics cka procrustes dsa \\
        --output-dir results/flipflop/cca
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from rnnuniv.io import atomic_path, read_csv, setup_logging, write_csv
from rnnuniv.networks import labels
from rnnuniv.runtime import resolve_device, set_threads
from rnnuniv.similarity.matrices import task_matrices
from rnnuniv.similarity.registry import EXTRA_METRICS, add_option_arguments

log = logging.getLogger("rnnuniv")


def parse_n_components(text: str) -> int | float:
    """'10' -> 10 components, '0.99' -> a variance fraction."""
    try:
        return float(text) if any(c in text for c in ".eE") else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int or a fraction, got {text!r}") from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--features", nargs="+", required=True, type=Path, help="features .npz (one per shard)"
    )
    parser.add_argument(
        "--networks", required=True, type=Path, help="networks.csv: network_id, status, labels"
    )
    parser.add_argument(
        "--n-components",
        type=parse_n_components,
        default=10,
        help="SVCCA components per network: a count k or a variance fraction (default 10)",
    )
    parser.add_argument(
        "--sensitivity-components",
        type=int,
        nargs="*",
        default=[],
        help="also SVCCA at each of these k (sensitivity/k{k}/)",
    )
    parser.add_argument(
        "--extra-metrics",
        nargs="*",
        choices=tuple(EXTRA_METRICS),
        default=[],
        help="supplementary metrics (rnnuniv.similarity.registry)",
    )
    add_option_arguments(parser, "options")
    parser.add_argument(
        "--block-memory-mb",
        type=float,
        default=1024.0,
        help="memory for the row block of features held at once (default 1024)",
    )
    parser.add_argument("--device", default="auto", help="where the pairwise products run: auto, cpu, cuda, ...")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--output-dir", required=True, type=Path, help="the task's cca/ directory")
    parser.add_argument("--log", type=Path, default=None, help="log file (also logs to stderr)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setup_logging(args.log)
    set_threads(args.threads)
    networks = read_csv(args.networks, required_columns=("network_id", "status"))
    matrices = task_matrices(
        args.features,
        networks,
        args.n_components,
        args.sensitivity_components,
        args.extra_metrics,
        options=vars(args),
        block_memory_mb=args.block_memory_mb,
        device=resolve_device(args.device),
    )
    for subdirectory, (distance, rows) in matrices.items():
        directory = args.output_dir / subdirectory
        with atomic_path(directory / "distance.npy", suffix=".npy") as tmp:
            np.save(tmp, distance)
        write_csv(directory / "index.csv", labels(rows))
    log.info("wrote %s", args.output_dir)


if __name__ == "__main__":
    sys.exit(main())
