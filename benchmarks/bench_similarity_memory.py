"""Peak memory and wall time of the similarity stages at the paper's sizes, next to the rules' mem_mb.

Paper sizes (configs/paper.yaml): per task 2,880 trained networks + 2,880 untrained twins, hidden
sizes up to 256, probe sets from rnnuniv.tasks at the paper's task parameters (printed first).

1. all-pairs stage (rule cca_matrix): synthetic features files (40 networks per shard, the
   layout of rnnuniv.similarity.features: orthonormal ``left`` [width, S], decaying singular
   values, random DSA eigenvalues; half kept, half untrained) for each N in --sizes, then
   ``scripts/cca_matrix.py`` with the paper's similarity options under ``/usr/bin/time -v``.
   Prints peak RSS, wall time, the part of the peak that is not the N x N output matrices (flat in
   N for a fixed --block-memory-mb), and extrapolates both to N = 5,760.
2. features stage (rule similarity_features): one shard of --features-networks synthetic
   256-unit networks at the task's probe size, states -> features with DSA, under /usr/bin/time.
3. baseline: the previous implementation (in-memory rnnuniv.similarity.metrics functions, one
   call per output, states reloaded per call) against features + one streamed pass, at --baseline-n.

Run: python benchmarks/bench_similarity_memory.py [--task sine] [--sizes 160 320 640]
     [--block-memory-mb 2048] [--baseline-n 120] [--workdir /tmp/simbench]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rnnuniv import similarity as sim  # noqa: E402
from rnnuniv.similarity.features import _truncation_bounds  # noqa: E402
from rnnuniv.tasks import make_task  # noqa: E402

SHARD = 40
N_MATRICES = 7  # svcca (with twins), k3, k5, k20, cka, procrustes + one kept slice at a time


def rule_mem_mb(n_networks: int, block_memory_mb: float) -> int:
    """The formula of rules/common.smk cca_matrix_mem_mb (kept in step by hand)."""
    return int(1.5 * (600 + block_memory_mb + N_MATRICES * n_networks**2 * 8 / 2**20) + 500)


def paper_probe_sizes() -> dict[str, int]:
    config = yaml.safe_load((ROOT / "configs" / "paper.yaml").read_text())
    sizes = {}
    for task, spec in config["tasks"].items():
        probe = make_task(task, **spec.get("params", {})).probe()
        sizes[task] = int(probe.inputs.shape[0] * probe.inputs.shape[1])
    return sizes


def timed(command: list[str]) -> tuple[float, float, str]:
    """(peak RSS MB, wall s, stderr) of a command under /usr/bin/time -v."""
    result = subprocess.run(
        ["/usr/bin/time", "-v", *command], capture_output=True, text=True, cwd=ROOT
    )
    if result.returncode != 0:
        raise RuntimeError(f"{command[:3]} failed:\n{result.stderr[-3000:]}")
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", result.stderr).group(1))
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): ([\d:.]+)", result.stderr)
    seconds = sum(float(x) * 60**i for i, x in enumerate(reversed(wall.group(1).split(":"))))
    return rss / 1024, seconds, result.stderr


def synthetic_shard(rng, ids, n_samples, width, latent) -> dict[str, np.ndarray]:
    n = len(ids)
    left = np.empty((n, width, n_samples))
    for i in range(n):
        mixed = latent @ rng.standard_normal((latent.shape[1], width))
        left[i] = np.linalg.qr(mixed + 0.5 * rng.standard_normal((n_samples, width)))[0].T
    s = np.exp(-np.arange(256) / rng.uniform(2, 8, size=(n, 1))) * 10
    bounds = np.array([_truncation_bounds(row, 256, width) for row in s])
    radius, angle = rng.uniform(0.3, 1.0, (n, 10)), rng.uniform(-np.pi, np.pi, (n, 10))
    return {
        "network_ids": np.asarray(ids, dtype=str),
        "left": left,
        "singular_values": s,
        "rank": np.full(n, 256, dtype=np.int64),
        "units": np.full(n, 256, dtype=np.int64),
        "n_samples": np.int64(n_samples),
        "width": np.int64(width),
        "cka_truncation": bounds[:, 0],
        "procrustes_truncation": bounds[:, 1],
        "dsa_eigenvalues": radius * np.exp(1j * angle),
        "dsa_n_delays": np.int64(5),
        "dsa_rank": np.int64(10),
    }


def write_population(directory: Path, n_networks: int, n_samples: int, width: int, seed=0):
    """N synthetic networks (first half kept, second half their untrained twins) as features."""
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n_samples, 12))
    ids = [f"net{i:05d}" for i in range(n_networks)]
    paths = []
    for start in range(0, n_networks, SHARD):
        path = directory / f"shard{start // SHARD:04d}.npz"
        sim.save_features(path, synthetic_shard(rng, ids[start : start + SHARD], n_samples, width, latent))
        paths.append(path)
    status = np.where(np.arange(n_networks) < n_networks // 2, "kept", "untrained")
    pd.DataFrame({"network_id": ids, "status": status}).to_csv(directory / "networks.csv", index=False)
    return paths


def all_pairs(args, n_samples: int) -> None:
    print(f"\n## all-pairs stage (rule cca_matrix), task {args.task}: S = {n_samples} samples, "
          f"width {args.width}, block_memory_mb {args.block_memory_mb}, {args.threads} threads")
    header = f"{'N':>6} {'blocks':>6} {'peak RSS MB':>12} {'N^2 matrices MB':>16} {'peak - matrices':>16} {'wall s':>8} {'ms/pair':>8} {'rule mem_mb':>11}"
    print(header)
    flat, per_pair = [], []
    for n in args.sizes:
        directory = Path(tempfile.mkdtemp(dir=args.workdir, prefix=f"n{n}-"))
        try:
            paths = write_population(directory, n, n_samples, args.width)
            command = [
                sys.executable, "scripts/cca_matrix.py", "--features", *map(str, paths),
                "--networks", str(directory / "networks.csv"), "--n-components", "10",
                "--sensitivity-components", "3", "5", "10", "20",
                "--extra-metrics", "cka", "procrustes", "dsa",
                "--block-memory-mb", str(args.block_memory_mb), "--threads", str(args.threads),
                "--output-dir", str(directory / "cca"),
            ]
            rss, wall, _ = timed(command)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
        matrices = N_MATRICES * n * n * 8 / 2**20
        blocks = -(-n // sim.streaming.block_networks(n_samples, args.width, args.block_memory_mb))
        pairs = n * (n - 1) / 2
        flat.append(rss - matrices)
        per_pair.append(wall / pairs)
        print(f"{n:>6} {blocks:>6} {rss:>12.0f} {matrices:>16.0f} {rss - matrices:>16.0f} "
              f"{wall:>8.1f} {1e3 * wall / pairs:>8.3f} {rule_mem_mb(n, args.block_memory_mb):>11}")
    n_paper = 5760
    predicted = max(flat) + N_MATRICES * n_paper**2 * 8 / 2**20
    print(f"N = {n_paper} (2,880 + twins), extrapolated: peak RSS {predicted:.0f} MB "
          f"(largest 'peak - matrices' + {N_MATRICES} x N^2 x 8 B) vs rule mem_mb "
          f"{rule_mem_mb(n_paper, args.block_memory_mb)}; wall {per_pair[-1] * n_paper**2 / 2 / 3600:.1f} h "
          f"at the largest run's {1e3 * per_pair[-1]:.3f} ms/pair")


def features_stage(args, task: str, n_samples: int) -> None:
    config = yaml.safe_load((ROOT / "configs" / "paper.yaml").read_text())
    probe = make_task(task, **config["tasks"][task].get("params", {})).probe()
    trials, steps = probe.inputs.shape[:2]
    n, units = args.features_networks, 256
    rng = np.random.default_rng(1)
    latent = rng.standard_normal((trials, steps, 8))
    hidden = np.stack(
        [np.tanh(latent @ rng.standard_normal((8, units)) + 0.1 * rng.standard_normal((trials, steps, units)))
         for _ in range(n)]
    ).astype(np.float32)
    directory = Path(tempfile.mkdtemp(dir=args.workdir, prefix="features-"))
    try:
        np.savez(directory / "states.npz", network_ids=np.array([f"s{i}" for i in range(n)]), hidden=hidden)
        del hidden
        rss, wall, _ = timed(
            [sys.executable, "scripts/similarity_features.py", "--states", str(directory / "states.npz"),
             "--width", str(args.width), "--extra-metrics", "dsa", "--dsa-n-delays", "5", "--dsa-rank", "10", "--threads", "1",
             "--output", str(directory / "features.npz")]
        )
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    per_network_mb = n_samples * units * 4 / 2**20 + n_samples * args.width * 8 / 2**20
    full = rss + (SHARD - n) * per_network_mb
    print(f"\n## features stage (rule similarity_features), task {task}: {n} networks x {units} units, "
          f"S = {n_samples}, width {args.width}, DSA (5, 10), 1 thread")
    print(f"peak RSS {rss:.0f} MB, wall {wall:.1f} s ({wall / n:.2f} s/network incl. start-up); "
          f"a {SHARD}-network shard: ~{full:.0f} MB (+ {per_network_mb:.0f} MB per further network), "
          f"~{SHARD * wall / n / 60:.1f} min; rule mem_mb 4000, runtime 60 min")


def baseline(args, n_samples: int) -> None:
    """Previous implementation: every output its own in-memory call from the states."""
    rng = np.random.default_rng(2)
    n, units = args.baseline_n, 64
    latent = rng.standard_normal((n_samples, 8)).astype(np.float32)
    states = [
        latent @ rng.standard_normal((8, units)).astype(np.float32)
        + 0.3 * rng.standard_normal((n_samples, units)).astype(np.float32)
        for _ in range(n)
    ]
    kept = list(range(n // 2))
    ids = [f"b{i}" for i in range(n)]
    start = time.perf_counter()
    kept_states = [states[i] for i in kept]
    old = {"untrained": sim.svcca_distance_matrix(states, 10, progress=False)}
    old["svcca"] = sim.svcca_distance_matrix(kept_states, 10, progress=False)
    old["cka"] = sim.cka_distance_matrix(kept_states, progress=False)
    old["procrustes"] = sim.procrustes_distance_matrix(kept_states, progress=False)
    for k in (3, 5, 20):
        old[f"k{k}"] = sim.svcca_distance_matrix(kept_states, k, progress=False)
    old_seconds = time.perf_counter() - start

    directory = Path(tempfile.mkdtemp(dir=args.workdir, prefix="baseline-"))
    try:
        start = time.perf_counter()
        paths = []
        for s0 in range(0, n, SHARD):
            hidden = np.stack(states[s0 : s0 + SHARD])[:, None]  # [n, 1 trial, S, units]
            paths.append(directory / f"{s0}.npz")
            sim.save_features(paths[-1], sim.shard_features(ids[s0 : s0 + SHARD], hidden, units))
        features_seconds = time.perf_counter() - start
        store = sim.FeatureStore(paths)
        metrics = [sim.SVCCA(10), sim.SVCCA(3, name="k3"), sim.SVCCA(5, name="k5"),
                   sim.SVCCA(20, name="k20"), sim.CKA(), sim.Procrustes()]
        new = sim.streamed_distance_matrices(store, ids, metrics, args.block_memory_mb)
        new_seconds = time.perf_counter() - start
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    ix = np.ix_(kept, kept)
    worst = max(
        np.abs(new["svcca"] - old["untrained"]).max(),
        *(np.abs(new[name][ix] - old[name]).max() for name in ("svcca", "cka", "procrustes", "k3", "k5", "k20")),
    )
    print(f"\n## baseline at N = {n} ({n // 2} kept + {n // 2} twins), {units} units, S = {n_samples} "
          f"(lossless width {units}), {args.threads} threads")
    print(f"previous (in-memory, one call per output: SVCCA kept, SVCCA with twins, CKA, Procrustes, k = 3, 5, 20): {old_seconds:.1f} s")
    print(f"new (features {features_seconds:.1f} s + one streamed pass over kept + twins): {new_seconds:.1f} s "
          f"({old_seconds / new_seconds:.2f}x); largest difference {worst:.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="sine", help="task whose probe size is used (sine: the largest)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[160, 320, 640])
    parser.add_argument("--width", type=int, default=32, help="stored columns (paper: feature_rank 32)")
    parser.add_argument("--block-memory-mb", type=float, default=2048.0)
    parser.add_argument("--features-networks", type=int, default=4)
    parser.add_argument("--baseline-n", type=int, default=120)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()))
    parser.add_argument("--skip", nargs="*", default=[], choices=("pairs", "features", "baseline"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.workdir.mkdir(parents=True, exist_ok=True)
    print(f"load: {os.getloadavg()} (1, 5, 15 min) on {os.cpu_count()} cores")
    sizes = paper_probe_sizes()
    print("paper probe sets (samples S = trials x time):", sizes)
    for task, s in sizes.items():
        print(f"  {task}: features {s * args.width * 8 / 2**20:.1f} MB/network, "
              f"{5760 * s * args.width * 8 / 2**30:.1f} GB for 5,760 networks")
    if "pairs" not in args.skip:
        all_pairs(args, sizes[args.task])
    if "features" not in args.skip:
        features_stage(args, args.task, sizes[args.task])
    if "baseline" not in args.skip:
        baseline(args, sizes[args.task])
    print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
