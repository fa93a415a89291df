"""Similarity-features stage: the per-network part of every similarity metric, for one shard.

Reads a states file (``states/{shard}.npz``: ``network_ids`` [n] unicode, ``hidden``
[n, trials, time, units] float32, optional ``cell``) and writes ``--output`` (.npz, no pickle),
one row per network in the states file's order (layout in rnnuniv.similarity.features):
``network_ids``, ``left`` [n, width, samples] (left singular vectors of the centred states, as rows),
``singular_values``, ``rank``, ``units``, ``cka_truncation``, ``procrustes_truncation``,
``n_samples``, ``width`` and, for every ``--extra-metrics`` metric with a per-network part of
its own (rnnuniv.similarity.registry), its array (DSA: ``dsa_eigenvalues`` [n, rank]) and options.

Example:
    python scripts/similarity_features.py --states states/gru-000.npz --width 20 \\
        --extra-metrics dsa --dsa-n-delays 5 --dsa-rank 10 --output similarity/gru-000.npz
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from rnnuniv.io import CorruptFileError, load_npz, setup_logging
from rnnuniv.runtime import resolve_device, set_threads
from rnnuniv.similarity import save_features, shard_features
from rnnuniv.similarity.registry import EXTRA_METRICS, add_option_arguments

log = logging.getLogger("rnnuniv")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--states", required=True, type=Path, help="states .npz of one shard")
    parser.add_argument(
        "--width",
        required=True,
        type=int,
        help="left singular vectors stored per network (largest k any analysis needs)",
    )
    parser.add_argument(
        "--extra-metrics",
        nargs="*",
        choices=tuple(EXTRA_METRICS),
        default=[],
        help="metrics whose per-network part to store (those without one are ignored)",
    )
    add_option_arguments(parser, "feature_options")
    parser.add_argument(
        "--include-cell", action="store_true", help="append the LSTM cell state to the hidden state"
    )
    parser.add_argument("--device", default="auto", help="where the SVDs run: auto, cpu, cuda, ...")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--output", required=True, type=Path, help="features .npz")
    parser.add_argument("--log", type=Path, default=None, help="log file (also logs to stderr)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    setup_logging(args.log)
    set_threads(args.threads)
    arrays = load_npz(args.states, required=("network_ids", "hidden"))
    ids, hidden = arrays["network_ids"].astype(str), arrays["hidden"]
    if hidden.ndim != 4 or hidden.shape[0] != len(ids):
        raise CorruptFileError(
            args.states, f"hidden has shape {hidden.shape}, expected [{len(ids)}, trials, time, n]"
        )
    if args.include_cell and "cell" in arrays:
        hidden = np.concatenate([hidden, arrays["cell"]], axis=-1)
    features = shard_features(
        ids, hidden, args.width, args.extra_metrics, vars(args), device=resolve_device(args.device)
    )
    worst = max(features["cka_truncation"].max(initial=0), features["procrustes_truncation"].max(initial=0))
    log.info(
        "%d networks, %d samples, %d units: stored %d columns (largest truncation bound %.2e)",
        len(ids), hidden.shape[1] * hidden.shape[2], hidden.shape[3], args.width, worst,
    )
    save_features(args.output, features)
    log.info("wrote %s", args.output)


if __name__ == "__main__":
    sys.exit(main())
