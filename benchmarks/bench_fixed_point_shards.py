"""Fixed-point stage on real shards of a finished run: this checkout against a baseline commit.

The fixed-points stage is the default study's largest item (sine and CDI shards of 8 networks of
64 units, 256 initial states at 10-11 conditions). For each named shard of ``--run`` (a directory
where the workflow has run: its trained weights, probe states and ``networks.csv``):

1. the stage's exact command, from ``snakemake -n -p -f`` with this checkout's Snakefile and
   config in that directory;
2. that command with this checkout's ``scripts/fixed_points.py`` and package, and with the
   baseline's (a ``git worktree`` of ``--baseline``), alternately ``--repeats`` times, one at a
   time, writing to a scratch directory (the run's results are not touched);
3. per shard: median wall time of each, the ratio (this / baseline), peak RSS of the child, and
   the points found by each (all points, fixed points with q < tol_q, and the largest difference
   of the per-network-condition lowest-q point's leading eigenvalue modulus).

Prints the load average before and after. Run one at a time on a quiet machine:

    python benchmarks/bench_fixed_point_shards.py --run /path/to/run [--baseline acb60a7]
        [--shard sine/gru-tanh-h64-000 --shard cdi/lstm-tanh-h64-000] [--repeats 1]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SHARDS = ("sine/gru-tanh-h64-000", "cdi/lstm-tanh-h64-000")


def stage_command(run: Path, shard: str) -> list[str]:
    """The fixed-points command Snakemake would run for ``task/shard`` in ``run``."""
    task, name = shard.split("/")
    target = f"results/{task}/fixed_points/{name}.npz"
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "-n", "-p", "-f", target, "--cores", "1",
         "--snakefile", str(ROOT / "Snakefile"), "--configfile", str(ROOT / "config.yaml"),
         "--directory", str(run)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    match = re.search(r"(python3 scripts/fixed_points\.py .*?) > \S+ 2>&1", out)
    if match is None:
        raise SystemExit(f"no fixed_points command for {shard} in {run}: is the run finished?")
    return shlex.split(match.group(1))


def run_once(checkout: Path, command: list[str], run: Path, out_prefix: Path) -> tuple[float, float]:
    """Wall seconds and peak child RSS (MB) of ``command`` with ``checkout``'s script and package."""
    args = [sys.executable, str(checkout / command[1])] + command[2:]
    for flag, suffix in (("--output-npz", ".npz"), ("--output-csv", ".csv")):
        args[args.index(flag) + 1] = str(out_prefix.with_suffix(suffix))
    env = {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1"}
    started = time.perf_counter()
    process = subprocess.Popen(args, cwd=run, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(args)} failed: {process.stderr.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024


def points_found(prefix: Path) -> dict[str, float]:
    arrays = np.load(prefix.with_suffix(".npz"), allow_pickle=False)
    table = pd.read_csv(prefix.with_suffix(".csv"))
    return {"points": int(arrays["q"].size), "fixed": int(arrays["is_fixed"].sum()),
            "leading": table["leading_modulus"].to_numpy()}  # fmt: skip


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="directory of a finished default run")
    parser.add_argument("--baseline", default="acb60a7", help="git commit to compare against")
    parser.add_argument("--shard", action="append", help=f"task/shard (default: {', '.join(DEFAULT_SHARDS)})")
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args(argv)
    shards = args.shard or list(DEFAULT_SHARDS)
    run = args.run.resolve()
    print(f"load average at the start: {os.getloadavg()}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        baseline = Path(tmp) / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", str(baseline), args.baseline], cwd=ROOT,
                       check=True, capture_output=True)  # fmt: skip
        try:
            for shard in shards:
                command = stage_command(run, shard)
                times = {"now": [], "baseline": []}
                peaks = {"now": 0.0, "baseline": 0.0}
                prefixes = {k: Path(tmp) / f"{k}-{shard.replace('/', '-')}" for k in times}
                for _ in range(args.repeats):
                    for kind, checkout in (("baseline", baseline), ("now", ROOT)):
                        wall, peak = run_once(checkout, command, run, prefixes[kind])
                        times[kind].append(wall)
                        peaks[kind] = max(peaks[kind], peak)
                found = {kind: points_found(prefix) for kind, prefix in prefixes.items()}
                now, then = statistics.median(times["now"]), statistics.median(times["baseline"])
                rows.append((shard, then, now, peaks, found))
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(baseline)], cwd=ROOT, check=False)
    print(f"load average at the end: {os.getloadavg()}")
    print(f"{'shard':28s} {'baseline s':>10s} {'now s':>8s} {'ratio':>6s} {'peak MB b/n':>13s} "
          f"{'points b/n':>12s} {'fixed b/n':>10s} {'max |d lead|':>12s}")  # fmt: skip
    for shard, then, now, peaks, found in rows:
        b, n = found["baseline"], found["now"]
        lead = np.nanmax(np.abs(b["leading"] - n["leading"])) if len(b["leading"]) == len(n["leading"]) else np.nan
        print(f"{shard:28s} {then:10.1f} {now:8.1f} {now / then:6.2f} "
              f"{peaks['baseline']:6.0f}/{peaks['now']:<6.0f} {b['points']:5d}/{n['points']:<6d} "
              f"{b['fixed']:4d}/{n['fixed']:<5d} {lead:12.2e}")  # fmt: skip
    total_then, total_now = sum(r[1] for r in rows), sum(r[2] for r in rows)
    print(f"all shards: {total_then:.1f} s at {args.baseline}, {total_now:.1f} s now, ratio {total_now / total_then:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
