"""Start-up cost of the workflow's jobs: how much of the default study's CPU time is spent starting
Python and importing, per script, against a named baseline commit (issue 11, part 4).

1. Jobs per script: ``snakemake -n -p`` on the config (default config.yaml) in a scratch
   directory, counting the ``python3 scripts/<name>.py`` commands it would run.
2. Start-up CPU per script: ``python scripts/<name>.py --help`` (every script imports at module
   top, so ``--help`` pays the whole import and nothing else), CPU seconds (user + system) of the
   child, median of ``--repeats`` runs; the same for the baseline commit's scripts, checked out
   with ``git worktree`` and run alternately with this checkout's, so load drifts hit both.
3. The share: sum over jobs of start-up CPU, over the summed ``cpu_time`` of a finished run's
   benchmark files (``--run-benchmarks``, a ``benchmarks/results`` directory), when given.

Prints one row per script (jobs, median start-up CPU now and at the baseline, ratio) and the
totals, with the load average. CPU seconds, not wall time, so a busy machine biases less.

Run: python benchmarks/bench_startup.py [--baseline 467db3f] [--repeats 5]
     [--run-benchmarks /path/to/run/benchmarks/results]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def jobs_per_script(configfile: Path) -> Counter:
    with tempfile.TemporaryDirectory() as scratch:
        out = subprocess.run(
            [sys.executable, "-m", "snakemake", "-n", "-p", "--cores", "2", "--configfile", str(configfile),
             "--directory", scratch, "--snakefile", str(ROOT / "Snakefile")],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    return Counter(re.findall(r"python3 scripts/(\w+)\.py", out))


def startup_cpu(checkout: Path, script: str) -> float:
    """CPU seconds (user + system) of ``python scripts/<script>.py --help`` in ``checkout``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    env = {**os.environ, "PYTHONPATH": str(checkout), "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, f"scripts/{script}.py", "--help"], cwd=checkout, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run_cpu_seconds(benchmarks: Path) -> tuple[float, int]:
    total, files = 0.0, 0
    for tsv in benchmarks.rglob("*.tsv"):
        lines = tsv.read_text().splitlines()
        if len(lines) >= 2 and "cpu_time" in lines[0]:
            row = dict(zip(lines[0].split("\t"), lines[1].split("\t")))
            total, files = total + float(row["cpu_time"]), files + 1
    return total, files


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=ROOT / "config.yaml")
    parser.add_argument("--baseline", default="467db3f", help="git commit to compare against")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--run-benchmarks", type=Path, help="benchmarks/results of a finished run")
    args = parser.parse_args(argv)

    jobs = jobs_per_script(args.config)
    with tempfile.TemporaryDirectory() as tmp:
        baseline = Path(tmp) / "baseline"
        subprocess.run(["git", "worktree", "add", "--detach", str(baseline), args.baseline], cwd=ROOT,
                       check=True, capture_output=True)  # fmt: skip
        try:
            now, then = {}, {}
            for script in sorted(jobs):
                a, b = [], []
                for _ in range(args.repeats):
                    a.append(startup_cpu(ROOT, script))
                    if (baseline / "scripts" / f"{script}.py").exists():
                        b.append(startup_cpu(baseline, script))
                now[script] = statistics.median(a)
                then[script] = statistics.median(b) if b else float("nan")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(baseline)], cwd=ROOT, check=False)

    print(f"load average at the end: {os.getloadavg()}")
    print(f"{'script':22s} {'jobs':>5s} {'now CPU-s':>10s} {'baseline':>10s} {'ratio':>6s}")
    total_now = total_then = 0.0
    for script in sorted(jobs):
        total_now += jobs[script] * now[script]
        total_then += jobs[script] * then[script]
        print(f"{script:22s} {jobs[script]:5d} {now[script]:10.2f} {then[script]:10.2f} "
              f"{now[script] / then[script]:6.2f}")  # fmt: skip
    print(f"start-up CPU of the study ({sum(jobs.values())} jobs): {total_now:.0f} s now, "
          f"{total_then:.0f} s at {args.baseline} (ratio {total_now / total_then:.2f})")  # fmt: skip
    if args.run_benchmarks:
        cpu, files = run_cpu_seconds(args.run_benchmarks)
        print(f"CPU of the measured run: {cpu:.0f} s over {files} jobs; start-up share "
              f"{total_now / cpu:.1%} (now) / {total_then / cpu:.1%} (baseline)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
