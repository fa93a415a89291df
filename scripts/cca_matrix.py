"""CCA-matrix stage: the [N, N] distance matrix between all kept networks of a task.

Reads the probe states of every shard (``states/{shard}.npz``: ``network_ids`` [N] unicode,
``hidden`` [N, trials, time, n] float32, optional ``cell`` for LSTMs) and the population table
(``networks.csv``), whose order, restricted to networks with ``status == "kept"`` that have states,
is the order of the matrix. Writes ``--output`` (.npy, float64 [N, N]) and ``--index`` (CSV: one
row per matrix row, ``network_id`` and the label columns), both atomically.

Example:
    python scripts/cca_matrix.py --states states/0.npz states/1.npz --networks networks.csv \\
        --metric svcca --n-components 10 --output cca/distance.npy --index cca/index.csv
"""

from __future__ import annotations

import argparse
import sys
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from rnnuniv.io import CorruptFileError, atomic_path, load_npz, read_csv, setup_logging, write_csv
from rnnuniv.runtime import set_threads
from rnnuniv.similarity import METRICS, distance_matrix

log = logging.getLogger("rnnuniv")

LABEL_COLUMNS = ("architecture", "activation", "n_hidden", "l2", "seed_index", "trained", "status")


def parse_n_components(text: str) -> int | float | None:
    """'all' -> None (every component), '10' -> 10 components, '0.99' -> variance fraction."""
    if text.lower() in ("all", "none"):
        return None
    try:
        return float(text) if any(c in text for c in ".eE") else int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected 'all', an int or a fraction, got {text!r}"
        ) from None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--states", nargs="+", required=True, type=Path, help="states .npz files (one per shard)"
    )
    parser.add_argument(
        "--networks",
        required=True,
        type=Path,
        help="networks.csv: network_id, architecture, activation, status, ...",
    )
    parser.add_argument(
        "--statuses",
        nargs="+",
        default=["kept"],
        help="network statuses compared (default: kept; add 'untrained' for the untrained twins)",
    )
    parser.add_argument(
        "--metric", choices=METRICS, default="svcca", help="distance (default: svcca)"
    )
    parser.add_argument(
        "--n-components",
        type=parse_n_components,
        default=None,
        help="svcca: 'all' (default), a count k, or a variance fraction; procrustes: PCA dimension",
    )
    parser.add_argument("--procrustes-kind", choices=("angular", "euclidean"), default="angular")
    parser.add_argument(
        "--n-delays", type=int, default=10, help="dsa: delays in the Hankel embedding"
    )
    parser.add_argument(
        "--rank", type=int, default=10, help="dsa: rank of the delay-embedded DMD operator"
    )
    parser.add_argument(
        "--include-cell", action="store_true", help="append the LSTM cell state to the hidden state"
    )
    parser.add_argument(
        "--block-size", type=int, default=None, help="networks per block (default: automatic)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (the rule's threads; default: torch's)",
    )
    parser.add_argument("--output", required=True, type=Path, help="distance matrix .npy [N, N]")
    parser.add_argument(
        "--index", required=True, type=Path, help="CSV naming the networks of the matrix rows"
    )
    parser.add_argument("--log", type=Path, default=None, help="log file (also logs to stderr)")
    return parser.parse_args(argv)


def load_states(paths: list[Path], include_cell: bool) -> dict[str, np.ndarray]:
    """network_id -> states [trials, time, units] from all shards (ids must be unique)."""
    states: dict[str, np.ndarray] = {}
    for path in paths:
        arrays = load_npz(path, required=("network_ids", "hidden"))
        ids, hidden = arrays["network_ids"].astype(str), arrays["hidden"]
        if hidden.ndim != 4 or hidden.shape[0] != len(ids):
            raise CorruptFileError(
                path, f"hidden has shape {hidden.shape}, expected [{len(ids)}, trials, time, n]"
            )
        if include_cell and "cell" in arrays:
            hidden = np.concatenate([hidden, arrays["cell"]], axis=-1)
        for network_id, network_states in zip(ids, hidden):
            if network_id in states:
                raise CorruptFileError(
                    path, f"network {network_id} also appears in an earlier states file"
                )
            states[network_id] = network_states
    return states


def kept_networks(
    networks: pd.DataFrame, available: set[str], statuses: tuple[str, ...] = ("kept",)
) -> pd.DataFrame:
    """Rows whose status is one of ``statuses`` that have states, in the table's order."""
    kept = networks[networks["status"].astype(str).isin(statuses)]
    missing = sorted(set(kept["network_id"]) - available)
    if missing:
        log.warning(
            "%d selected network(s) have no states and are left out: %s", len(missing), missing[:10]
        )
    return kept[kept["network_id"].isin(available)].reset_index(drop=True)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setup_logging(args.log)
    set_threads(args.threads)
    networks = read_csv(args.networks, required_columns=("network_id", "status"))
    networks["network_id"] = networks["network_id"].astype(str)
    states = load_states(args.states, args.include_cell)
    order = kept_networks(networks, set(states), tuple(args.statuses))
    n_networks = len(order)
    log.info(
        "%s distance between %d kept networks (%d with states)",
        args.metric,
        n_networks,
        len(states),
    )

    selected = [states[network_id] for network_id in order["network_id"]]
    if n_networks < 2:
        log.warning(
            "only %d kept network(s): writing a %dx%d matrix", n_networks, n_networks, n_networks
        )
        distance = np.zeros((n_networks, n_networks), dtype=np.float64)
    else:
        options: dict = {"block_size": args.block_size, "progress": not args.no_progress}
        if args.metric == "svcca":
            options["n_components"] = args.n_components
        elif args.metric == "procrustes":
            options.update(n_components=args.n_components, kind=args.procrustes_kind)
        elif args.metric == "dsa":
            options.update(n_delays=args.n_delays, rank=args.rank)
        distance = distance_matrix(selected, args.metric, **options)
    if np.isnan(distance).any():
        log.warning(
            "%d distances are nan (networks with zero variance)", int(np.isnan(distance).sum())
        )

    with atomic_path(args.output, suffix=".npy") as tmp:
        np.save(tmp, distance)
    labels = [c for c in LABEL_COLUMNS if c in order.columns]
    write_csv(args.index, order[["network_id", *labels]])
    log.info("wrote %s and %s", args.output, args.index)


if __name__ == "__main__":
    sys.exit(main())
