"""Training cost of a shard whose networks mostly diverge, now vs a named baseline commit.

Since diverged networks leave the batched forward/backward pass (``rnnuniv.training``), a shard
costs in proportion to its live network-steps, and a shard whose networks all diverged stops. The
case is the default study's sine LSTM-ReLU group (64 units, T = 120, batch 32, lr 0.0015, Glorot
weights, 3 rollbacks), where most seeds diverge within 50-150 steps.

Trains the same shard (seeds named as in the default study) with this checkout and with the
baseline commit's code (checked out with ``git worktree``), alternately, ``--repeats`` times, each
in a fresh child process with ``--threads`` torch threads. Prints per run the median wall and CPU
seconds, the ratio now / baseline, the children's peak RSS, the load average, the number of
networks that diverged, and whether the two give identical weights (NaN compared as equal). Prints
only; never asserts timing.

Run: python benchmarks/bench_diverged.py [--baseline 40a3e50] [--networks 32] [--steps 300]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(args) -> None:
    """Train the shard once and print timing, fates and a hash of the weights as JSON."""
    import torch

    torch.set_num_threads(args.threads)
    from rnnuniv.cells import make_cell
    from rnnuniv.population import network_id, network_seed
    from rnnuniv.tasks import make_task
    from rnnuniv.training import TrainingConfig, train_shard

    task = make_task("sine", n_steps=120, n_freqs=51, w_min=0.01, w_max=0.05)
    ids = [network_id("lstm", "relu", 64, 1e-5, i) for i in range(args.networks)]
    seeds = [network_seed(0, "sine", name) for name in ids]
    config = TrainingConfig(
        n_steps=args.steps, batch_size=32, lr_decay_rate=0.3, lr_decay_steps=1200, grad_clip=1.0,
        max_rollbacks=3, init="glorot", validation_batch_size=256, checkpoint_every=0,
    )  # fmt: skip
    n = len(seeds)
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    params, records = train_shard(
        make_cell("lstm", "relu"), task, 64, seeds, [1e-5] * n, [0.0015] * n, config, progress=False
    )
    wall, cpu = time.perf_counter() - start_wall, time.process_time() - start_cpu
    digest = hashlib.sha256()
    for key in sorted(params):
        digest.update(torch.nan_to_num(params[key], nan=0.0).numpy().tobytes())
    print(json.dumps({
        "wall": wall, "cpu": cpu, "digest": digest.hexdigest(),
        "diverged": sum(r["diverged_step"] is not None for r in records),
    }))  # fmt: skip


def run_child(pythonpath: Path, args) -> dict:
    command = [sys.executable, __file__, "--worker", "--networks", str(args.networks),
               "--steps", str(args.steps), "--threads", str(args.threads)]  # fmt: skip
    environment = {**os.environ, "PYTHONPATH": str(pythonpath)}
    out = subprocess.run(command, env=environment, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", default="40a3e50", help="commit before diverged networks left the batch")
    parser.add_argument("--networks", type=int, default=32, help="networks in the shard")
    parser.add_argument("--steps", type=int, default=300, help="training steps")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0

    with tempfile.TemporaryDirectory() as scratch:
        baseline = Path(scratch) / "baseline"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(baseline), args.baseline],
                       check=True, capture_output=True)  # fmt: skip
        try:
            runs = {"now": [], "baseline": []}
            for _ in range(args.repeats):
                runs["now"].append(run_child(ROOT, args))
                runs["baseline"].append(run_child(baseline, args))
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(baseline)],
                           capture_output=True)  # fmt: skip
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"sine LSTM-ReLU shard: {args.networks} networks x {args.steps} steps, {args.threads} thread(s), "
          f"{args.repeats} repeats, load {os.getloadavg()[0]:.2f} (1 min)")  # fmt: skip
    for name in ("now", "baseline"):
        wall = statistics.median(r["wall"] for r in runs[name])
        cpu = statistics.median(r["cpu"] for r in runs[name])
        label = name if name == "now" else f"baseline {args.baseline}"
        print(f"  {label:<20} median wall {wall:7.1f} s  CPU {cpu:7.1f} s  diverged {runs[name][0]['diverged']}")
    ratio = statistics.median(r["wall"] for r in runs["now"]) / statistics.median(r["wall"] for r in runs["baseline"])
    print(f"  ratio now / baseline (median wall): {ratio:.3f}")
    same = {r["digest"] for r in runs["now"]} == {r["digest"] for r in runs["baseline"]}
    print(f"  weights identical to the baseline's: {same}")
    print(f"  peak RSS of a child: {peak_mb:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
