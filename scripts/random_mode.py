#!/usr/bin/env python3
"""The random-mode model over a grid of gain and effective rank (``rnnuniv.randommode``).

For every spectrum kind, gain ``g`` and rank fraction ``f`` of the ``random_mode:`` config
section: a coupling ``J = U diag(d) V^T`` of ``n_units`` units whose spectrum has mean square
``g^2`` and participation rank ``f * n_units``; the flow ``dx/dt = -x + J tanh(x)`` (or the map)
simulated after a warm-up; and one row of ``results/random_mode/table.csv`` with the columns of
``rnnuniv.randommode.TABLE_COLUMNS``: kind, model, n, gain, rank_fraction, rank, overlap, seed,
participation_rank and realised_gain (of the realised J), dimension (cross-block participation
ratio of the activity; NaN when settled), dimension_naive, dimension_fraction (dimension / n),
lyapunov_max (per unit time for the flow, per step for the map), mean_square (<x^2>), variance
(temporal variance averaged over units), settled (variance below settled_variance: a fixed point).

Example:
    python3 scripts/random_mode.py --options '{"n_units": 200, "gains": [0.5, 2.0]}' \\
        --output results/random_mode/table.csv
"""

from __future__ import annotations

import argparse
import sys
import time

from rnnuniv import io
from rnnuniv.randommode import GRID_DEFAULTS, grid_table
from rnnuniv.runtime import json_argument, set_threads


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--options", type=json_argument, default={},
                        help=f"JSON: the random_mode config section (defaults: {GRID_DEFAULTS})")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--output", required=True, help="output: results/random_mode/table.csv")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    log = io.setup_logging()
    set_threads(args.threads)
    start = time.perf_counter()
    try:
        table = grid_table(args.options, log)
    except ValueError as error:
        raise SystemExit(f"random_mode: {error}") from error
    io.write_csv(args.output, table)
    log.info("%d grid points in %.1f s", len(table), time.perf_counter() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
