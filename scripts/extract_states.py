#!/usr/bin/env python3
"""Run the kept (and untrained) networks of a shard (statuses from networks.csv) on the task's shared probe set; save states.

Writes ``states/{shard}.npz`` (float32, no pickle): ``network_ids`` [N], ``hidden`` [N, K, T, n],
``cell`` (LSTM only), ``outputs`` [N, K, T, p], ``probe_loss`` [N], and the probe's ``inputs``
[K, T, m] and per-trial ``condition_*`` labels [K].
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from rnnuniv import io
from rnnuniv.networks import load_shard_networks
from rnnuniv.probes import ANALYSED, probe_states
from rnnuniv.runtime import json_argument, resolve_device, set_threads
from rnnuniv.tasks import make_task


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", required=True, help="weights.safetensors of the shard")
    parser.add_argument("--networks", required=True, help="networks.csv of the task (statuses, written by rule manifest)")
    parser.add_argument("--task", required=True, help="task name")
    parser.add_argument("--task-params", type=json_argument, default={}, help="task parameters as JSON")
    parser.add_argument("--probe-seed", type=int, default=0, help="seed of the shared probe set")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, ...")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--output", required=True, help="output: states .npz")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    log = io.setup_logging()
    set_threads(args.threads)
    device = resolve_device(args.device)
    cell, chosen, ids, _, meta = load_shard_networks(args.weights, args.networks, statuses=ANALYSED, device=device)
    task = make_task(args.task, **args.task_params)
    probe = task.probe(seed=args.probe_seed)
    conditions = {f"condition_{k}": np.asarray(v) for k, v in probe.conditions.items()}
    n_hidden = int(meta["n_hidden"])
    if not ids:
        log.warning("shard %s: no network with status in %s; writing an empty states file", meta['shard'], ANALYSED)
        empty = np.zeros((0, *probe.inputs.shape[:2], n_hidden), np.float32)
        io.save_npz(args.output, network_ids=np.array([], dtype=str), hidden=empty,
                    outputs=np.zeros((0, *probe.targets.shape), np.float32),
                    probe_loss=np.zeros(0, np.float32), inputs=probe.inputs.numpy(), **conditions)
        return 0
    states = probe_states(cell, chosen, probe, n_hidden)
    io.save_npz(args.output, network_ids=np.array(ids), inputs=probe.inputs.numpy(), **states, **conditions)
    mb = sum(a.nbytes for a in states.values()) / 1e6
    log.info("shard %s: %d networks, %.2f MB of states (%.3f MB per network)", meta['shard'], len(ids), mb, mb / len(ids))
    return 0


if __name__ == "__main__":
    sys.exit(main())
