#!/usr/bin/env python3
"""Draw one panel of one figure of the study: results/figures/{figure}/{panel}.pdf and .png.

The workflow (rules/figures.smk) names each panel's ``--kind`` of plot, its ``--task`` (or
``--tasks``), its input files (``--inputs``, JSON: name -> path or list of paths), the figure
options (``--options``, JSON from the config's ``figures:`` section: dpi, width, font_size,
n_trajectories) and ``--context`` (JSON: what the kind needs from the rest of the config, e.g.
task_params, loss_thresholds). The kinds, what each draws and which inputs it reads are declared
in one registry, :mod:`rnnuniv.figures.registry`. A panel whose data are empty (no networks kept)
still produces both files, with an explicit message.

Example:
    python3 scripts/figure.py --figure fig1_flipflop --panel d --kind cca_mds --task flipflop \\
        --inputs '{"embedding": "results/flipflop/embedding/cca.csv"}' --options '{"dpi": 200}' \\
        --pdf results/figures/fig1_flipflop/d.pdf --png results/figures/fig1_flipflop/d.png
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from rnnuniv import figures, io, plots
from rnnuniv.figures.data import PanelRequest
from rnnuniv.runtime import json_argument


def parse_args(argv=None):
    kinds = "\n".join(f"  {name:24s}{kind.doc}" for name, kind in figures.KINDS.items())
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=f"kinds (rnnuniv.figures.registry):\n{kinds}")
    parser.add_argument("--figure", required=True, help="figure name, e.g. fig1_flipflop")
    parser.add_argument("--panel", required=True, help="panel letter, e.g. c")
    parser.add_argument("--kind", required=True, choices=sorted(figures.KINDS), help="what the panel shows")
    parser.add_argument("--task", default=None, help="task of a single-task panel")
    parser.add_argument("--tasks", nargs="*", default=(), help="tasks of a multi-task panel")
    parser.add_argument("--inputs", type=json_argument, required=True, help="JSON: name -> path(s)")
    parser.add_argument("--options", type=json_argument, default={}, help="JSON: figure options")
    parser.add_argument("--context", type=json_argument, default={},
                        help="JSON: task_params, loss_thresholds, ...")
    parser.add_argument("--pdf", required=True, help="output PDF")
    parser.add_argument("--png", required=True, help="output PNG")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    log = io.setup_logging()
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # PDF font subsetting is chatty
    options = plots.setup_style(args.options)
    request = PanelRequest(task=args.task, tasks=tuple(args.tasks), inputs=args.inputs, context=args.context)
    fig = figures.draw(args.kind, request, options)
    title = f"{args.figure} {args.panel}" + (f" ({args.task})" if args.task else "")
    plots.save_panel(fig, args.pdf, args.png, dpi=int(options["dpi"]), title=title)
    log.info("wrote %s and %s", args.pdf, Path(args.png).name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
