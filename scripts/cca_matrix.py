"""CCA-matrix stage: all-pairs distances between a task's networks, streamed from stored features.

Reads the per-network features of every shard (``similarity/{shard}.npz``, written by
scripts/similarity_features.py) and the population table (``networks.csv``), whose order,
restricted to networks with ``status`` "kept" or "untrained" that have features, is the order of
the matrices. One pass over the features gives SVCCA at ``--n-components`` and at every
``--sensitivity-components`` k, CKA and Procrustes, over kept networks and untrained twins at once;
the kept-only matrices are sliced from it. DSA compares the stored eigenvalues of kept networks.

Writes under ``--output-dir`` (each .npy float64 [N, N], each index.csv one row per matrix row:
``network_id`` and the label columns), atomically:

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
import pandas as pd

from rnnuniv.io import atomic_path, read_csv, setup_logging, write_csv
from rnnuniv.runtime import resolve_device, set_threads
from rnnuniv.similarity import (
    CKA,
    SVCCA,
    FeatureStore,
    Procrustes,
    streamed_distance_matrices,
    wasserstein_eigenvalue_matrix,
)

log = logging.getLogger("rnnuniv")

LABEL_COLUMNS = ("architecture", "activation", "n_hidden", "l2", "seed_index", "trained", "status")
EXTRA_METRICS = ("cka", "procrustes", "dsa")


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
        "--extra-metrics", nargs="*", choices=EXTRA_METRICS, default=[], help="supplementary"
    )
    parser.add_argument("--procrustes-kind", choices=("angular", "euclidean"), default="angular")
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


def selected_networks(
    networks: pd.DataFrame, available: set[str], statuses: tuple[str, ...]
) -> pd.DataFrame:
    """Rows whose status is one of ``statuses`` that have features, in the table's order."""
    chosen = networks[networks["status"].astype(str).isin(statuses)]
    missing = sorted(set(chosen["network_id"]) - available)
    if missing:
        log.warning(
            "%d selected network(s) have no features and are left out: %s",
            len(missing),
            missing[:10],
        )
    return chosen[chosen["network_id"].isin(available)].reset_index(drop=True)


def write_matrix(directory: Path, distance: np.ndarray, order: pd.DataFrame) -> None:
    with atomic_path(directory / "distance.npy", suffix=".npy") as tmp:
        np.save(tmp, distance)
    labels = [c for c in LABEL_COLUMNS if c in order.columns]
    write_csv(directory / "index.csv", order[["network_id", *labels]])


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setup_logging(args.log)
    set_threads(args.threads)
    networks = read_csv(args.networks, required_columns=("network_id", "status"))
    networks["network_id"] = networks["network_id"].astype(str)
    store = FeatureStore(args.features, require_dsa="dsa" in args.extra_metrics)
    order = selected_networks(networks, set(store.location), ("kept", "untrained"))
    kept = np.flatnonzero(order["status"].astype(str).to_numpy() == "kept")
    log.info("%d networks with features: %d kept, %d untrained", len(order), len(kept), len(order) - len(kept))

    metrics = [SVCCA(args.n_components)]
    for k in sorted(set(args.sensitivity_components)):
        if k != args.n_components:
            metrics.append(SVCCA(k, name=f"k{k}"))
    if "cka" in args.extra_metrics:
        metrics.append(CKA())
    if "procrustes" in args.extra_metrics:
        metrics.append(Procrustes(args.procrustes_kind))
    if {"cka", "procrustes"} & set(args.extra_metrics):
        bounds = store.truncation_bounds(list(order["network_id"]))
        if len(bounds):
            log.info(
                "truncation to %d columns: |CKA error| <= %.2e, |Procrustes nuclear error| <= %.2e",
                store.width, 2 * bounds[:, 0].max(), 2 * bounds[:, 1].max(),
            )
    matrices = streamed_distance_matrices(
        store, list(order["network_id"]), metrics, args.block_memory_mb, device=resolve_device(args.device)
    )
    for name, matrix in matrices.items():
        if np.isnan(matrix).any():
            log.warning("%s: %d distances are nan (networks with zero variance)", name, int(np.isnan(matrix).sum()))

    kept_order = order.iloc[kept].reset_index(drop=True)
    out = args.output_dir
    write_matrix(out / "untrained", matrices["svcca"], order)
    svcca = matrices.pop("svcca")[np.ix_(kept, kept)]
    write_matrix(out, svcca, kept_order)
    for k in args.sensitivity_components:
        matrix = svcca if k == args.n_components else matrices[f"k{k}"][np.ix_(kept, kept)]
        write_matrix(out / "sensitivity" / f"k{k}", matrix, kept_order)
    for metric in ("cka", "procrustes"):
        if metric in matrices:
            write_matrix(out / metric, matrices.pop(metric)[np.ix_(kept, kept)], kept_order)
    if "dsa" in args.extra_metrics:
        eigenvalues = np.array([store.dsa[i] for i in kept_order["network_id"]], dtype=complex)
        write_matrix(out / "dsa", wasserstein_eigenvalue_matrix(eigenvalues), kept_order)
    if len(kept) < 2:
        log.warning("only %d kept network(s): the kept matrices are %dx%d", len(kept), len(kept), len(kept))
    log.info("wrote %s", out)


if __name__ == "__main__":
    sys.exit(main())
