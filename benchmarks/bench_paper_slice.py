#!/usr/bin/env python3
"""Measured per-shard costs of the paper study (configs/paper.yaml) at its real sizes.

Runs one shard of the largest networks (``--hidden``, 256 in the paper; ``shard_size`` networks, 40)
per task and architecture through the per-shard stages, by calling the workflow's scripts the way
rules/*.smk call them, each under ``/usr/bin/time -v``:

    train (the shard, with its untrained twins, --train-steps optimiser steps instead of n_steps;
        and the same shard at 0 steps, the baseline)
    extract-states (trained networks and twins) -> fixed-points -> topology-graph -> dynamics

Training steps are cut and scaled linearly to the configured ``n_steps``: CPU seconds per step =
(CPU of the shard's run - CPU of its 0-step run, which does the same start-up, initialisation and
validation, twins included) / steps run; the baseline's CPU is counted once. The few-step
networks are far from trained, so their statuses are rewritten to ``kept`` before the analysis
stages (costs only: fixed points of untrained-looking networks, not results). Every row records the
1-minute load average (``uptime``): the machine may be shared, CPU seconds are the robust number.

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 python benchmarks/bench_paper_slice.py --startup
        --workdir /tmp/paper_slice --tasks cdi flipflop --architectures gru --train-steps 3 --analysed 2
    # sine at T = 500: a 40-network GRU-256 shard needs ~23 GB; on a small machine use 10 networks
    # (per-network costs x4) and analyse 1 network (x40 of shard_size)
    ... --workdir /tmp/paper_slice_sine --tasks sine --shard-size 10 --train-steps 2 --analysed 1
    ... --workdir /tmp/paper_slice_sine --tasks sine --shard-size 10 --skip-train --analysed 1
    ... --workdir /tmp/paper_slice --flops /tmp/paper_slice_sine    # FLOP bound, peak, fraction
    ... --report /tmp/paper_slice /tmp/paper_slice_sine           # markdown tables

Writes ``measurements.tsv`` (one row per stage run) in ``--workdir`` and prints it. The stage
commands are built in :data:`STAGES` (one function each): adapt them there when a script changes.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable


def _json(value) -> str:
    return json.dumps(value, sort_keys=True)


def task_params(config, task):
    return _json(config["tasks"][task].get("params", {}))


def training(config, task, steps):
    merged = {**config["training"], **config["tasks"][task].get("training", {})}
    merged["n_steps"] = steps
    return _json(merged)


# One command builder per stage (mirrors rules/*.smk); d = the shard's paths, c = config.
STAGES = {
    "population": lambda c, t, d: [
        "scripts/population.py", "--task", t, "--population", _json(c["population"]),
        "--study-seed", str(c.get("study_seed", 0)), "--output", d["population"]],
    "train": lambda c, t, d: [
        "scripts/train.py", "--population", d["population"], "--shard", d["shard"], "--task", t,
        "--task-params", task_params(c, t), "--training", training(c, t, d["steps"]),
        "--device", "cpu", "--threads", "1", "--no-progress",
        "--weights", d["weights"], "--records", d["records"]],
    "extract_states": lambda c, t, d: [
        "scripts/extract_states.py", "--weights", d["weights"], "--networks", d["networks"],
        "--task", t, "--task-params", task_params(c, t), "--device", "cpu", "--threads", "1",
        "--output", d["states"]],
    "fixed_points": lambda c, t, d: [
        "scripts/fixed_points.py", "--weights", d["weights"], "--networks", d["networks"],
        "--states", d["states"], "--task", t, "--task-params", task_params(c, t),
        "--options", _json(c["fixed_points"]), "--device", "cpu", "--threads", "1",
        "--output-npz", d["fp_npz"], "--output-csv", d["fp_csv"]],
    "topology_graph": lambda c, t, d: [
        "scripts/topology_graph.py", "--task", t, "--task-params", task_params(c, t),
        "--weights", d["weights"], "--fixed-points", d["fp_npz"],
        "--options", _json(c["topology"]["graph"]), "--device", "cpu", "--threads", "1",
        "--output", d["topology"]],
    "dynamics": lambda c, t, d: [
        "scripts/dynamics.py", "shard", "--weights", d["weights"], "--networks", d["networks"],
        "--states", d["states"], "--options", _json(c.get("dynamics", {})), "--device", "cpu",
        "--threads", "1", "--output", d["dynamics"]],
}

TIME_FIELDS = {
    "wall_s": r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)",
    "user_s": r"User time \(seconds\): (\S+)",
    "sys_s": r"System time \(seconds\): (\S+)",
    "max_rss_kb": r"Maximum resident set size \(kbytes\): (\d+)",
}


def _seconds(clock: str) -> float:
    parts = [float(p) for p in clock.split(":")]
    return sum(p * 60**i for i, p in enumerate(reversed(parts)))


def load1() -> float:
    return os.getloadavg()[0]


def measure(stage, argv, log_path) -> dict:
    """Run ``python argv`` under /usr/bin/time -v; wall, CPU and peak RSS."""
    timing = Path(str(log_path) + ".time")
    load = load1()
    with open(log_path, "w") as log:
        code = subprocess.call(["/usr/bin/time", "-v", "-o", str(timing), PY, *argv],
                               cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    if code:
        raise SystemExit(f"{stage} failed (exit {code}); see {log_path}")
    text = timing.read_text()
    row = {}
    for key, pattern in TIME_FIELDS.items():
        value = re.search(pattern, text).group(1)
        row[key] = _seconds(value) if key == "wall_s" else float(value)
    row["cpu_s"] = row["user_s"] + row["sys_s"]
    row["max_rss_mb"] = row.pop("max_rss_kb") / 1024
    row["load1"] = load
    return row


def shard_paths(work: Path, task: str, shard: str, steps: int) -> dict:
    base = work / task
    return {
        "shard": shard, "steps": steps, "population": str(base / "population.csv"),
        "networks": str(base / "networks.csv"),
        "weights": str(base / "shards" / shard / "weights.safetensors"),
        "records": str(base / "shards" / shard / "train.json"),
        "states": str(base / "states" / f"{shard}.npz"),
        "fp_npz": str(base / "fixed_points" / f"{shard}.npz"),
        "fp_csv": str(base / "fixed_points" / f"{shard}.csv"),
        "topology": str(base / "topology" / f"{shard}.json"),
        "dynamics": str(base / "dynamics" / f"{shard}.csv"),
    }


# Files each stage writes (their sizes are the stage's disk per shard).
OUTPUTS = {"train": ("weights", "records"), "extract_states": ("states",),
           "fixed_points": ("fp_npz", "fp_csv"), "topology_graph": ("topology",), "dynamics": ("dynamics",)}


def mark_kept(paths: dict, n_kept: int | None = None) -> None:
    """Costs only: the manifest (networks.csv, the file later stages select networks by) of the
    shards trained here, with the first ``n_kept`` (default all) networks of ``paths``' shard
    marked kept and the others above the threshold: the few-step networks are not trained, so the
    keep rule itself would keep none (rule ``manifest`` applies it in the workflow)."""
    import numpy as np
    import pandas as pd

    from rnnuniv.networks import MANIFEST_COLUMNS

    population = pd.read_csv(paths["population"])
    rows = [{key: network.get(key) for key in ("network_id", *MANIFEST_COLUMNS)}
            for records in sorted(Path(paths["records"]).parents[1].glob("*/train.json"))
            for network in json.loads(records.read_text())["networks"]]
    results = pd.DataFrame(rows).drop(columns=["status", "normalised_error"])
    table = population.merge(results, on="network_id", how="inner", validate="one_to_one")
    in_shard = (table["shard"] == paths["shard"]).to_numpy()
    chosen = in_shard & (np.cumsum(in_shard) <= (n_kept if n_kept is not None else in_shard.sum()))
    table["normalised_error"] = np.nan
    table["status"] = np.where(~table["trained"].astype(bool), "untrained",
                               np.where(chosen, "kept", "above-threshold"))
    table[[*population.columns, *MANIFEST_COLUMNS]].to_csv(paths["networks"], index=False)


def startup(work: Path, stage: str) -> dict:
    """Start-up of a stage's script: ``python scripts/X.py --help`` imports all it imports."""
    script = {"extract_states": "extract_states", "topology_graph": "topology_graph"}.get(stage, stage)
    argv = [f"scripts/{script}.py", *(["shard"] if stage == "dynamics" else []), "--help"]
    log = work / "logs" / f"startup-{stage}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    return measure(stage, argv, log)


# the row of a shard's 0-step training run (start-up, initialisation and validation only)
BASELINE = "train:0-steps"


def run_stage(config, work, task, stage, paths, rows, out, extra=None, label=None) -> dict:
    """Run one stage on one shard, measure it, append a row (stage ``label``, default the stage) to ``out``."""
    for key in ("weights", "states", "fp_npz", "topology", "dynamics"):
        Path(paths[key]).parent.mkdir(parents=True, exist_ok=True)
    label = label or stage
    log = work / "logs" / f"{task}-{paths['shard']}-{label.replace(':', '-')}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    row = {"task": task, "shard": paths["shard"], "stage": label,
           **measure(stage, STAGES[stage](config, task, paths), log)}
    row["disk_mb"] = sum(os.path.getsize(paths[k]) for k in OUTPUTS[stage]) / 1e6
    row.update(extra or {})
    row["seconds_taken"] = round(time.time() - started, 1)
    rows.append(row)
    print("\t".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()),
          flush=True)
    write_rows(rows, out)
    return row


def write_rows(rows, out: Path) -> None:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    lines = ["\t".join(keys)] + ["\t".join(str(r.get(k, "")) for k in keys) for r in rows]
    out.write_text("\n".join(lines) + "\n")


def thread_seconds(fn, repeats: int = 5, inner: int = 3) -> float:
    """Best-of-``repeats`` CPU seconds of this thread per call of ``fn``: robust to a shared machine
    (time the process waits for a core is not counted)."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.thread_time()
        for _ in range(inner):
            fn()
        best = min(best, (time.thread_time() - start) / inner)
    return best


def flops_report(config, shard_size: int, hidden: int, step_cpu: dict) -> list[dict]:
    """The physical limit: matmul FLOPs of the paper's training against this CPU's measured peak.

    Peak: float32 ``bmm`` at the shard's shapes (``[N, B, n] @ [N, n, G n]``, one thread, CPU
    seconds) and one 2048^2 matmul. ``step_cpu``: {(task, arch): measured CPU seconds per step}.
    """
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_train import model_flops

    from rnnuniv.cells import N_BLOCKS
    from rnnuniv.tasks import make_task

    torch.set_num_threads(1)
    batch = int(config["training"]["batch_size"])
    rows = []
    big = torch.randn(2048, 2048)
    square = 2 * 2048**3 / thread_seconds(lambda: big @ big)
    rows.append({"what": "peak", "shape": "2048x2048 @ 2048x2048", "gflops": square / 1e9})
    peaks = {}
    for arch, blocks in N_BLOCKS.items():
        a = torch.randn(shard_size, batch, hidden)
        b = torch.randn(shard_size, hidden, blocks * hidden)
        out = torch.empty(shard_size, batch, blocks * hidden)
        peaks[arch] = 2 * shard_size * batch * hidden * blocks * hidden / thread_seconds(
            lambda: torch.bmm(a, b, out=out), inner=20)
        rows.append({"what": "peak", "shape": f"bmm [{shard_size},{batch},{hidden}]@[{shard_size},{hidden},"
                     f"{blocks * hidden}] ({arch})", "gflops": peaks[arch] / 1e9})
    pop = config["population"]
    per_group = len(pop["l2"]) * len(pop["learning_rates"]) * pop["n_seeds"] * len(pop["activations"])
    total = 0.0
    for task_name, spec in config["tasks"].items():
        task = make_task(task_name, **spec.get("params", {}))
        n_steps = spec.get("training", {}).get("n_steps", config["training"]["n_steps"])
        for arch in pop["architectures"]:
            for n in pop["hidden_sizes"]:
                per_step = model_flops(arch, n, task.n_inputs, task.n_outputs, batch, task.n_steps)
                flops = per_step * n_steps * per_group
                total += flops
                row = {"what": "training", "task": task_name, "arch": arch, "n_hidden": n,
                       "tflop": flops / 1e12, "cpu_hours_at_peak": flops / peaks[arch] / 3600}
                if n == hidden and (task_name, arch) in step_cpu:
                    achieved = per_step * shard_size / step_cpu[(task_name, arch)]
                    row.update(shard_gflops=achieved / 1e9, fraction_of_peak=achieved / peaks[arch])
                rows.append(row)
    rows.append({"what": "training", "task": "all", "tflop": total / 1e12,
                 "cpu_hours_at_peak": total / min(peaks.values()) / 3600})
    return rows


def read_rows(path: Path) -> list[dict]:
    text = path.read_text().splitlines()
    keys = text[0].split("\t")
    return [dict(zip(keys, line.split("\t"))) for line in text[1:]]


def dag_counts(configfile: str) -> dict[str, int]:
    """Jobs per rule of the study's DAG (``snakemake -n``'s job stats)."""
    listing = subprocess.run(["snakemake", "-n", "--configfile", configfile], cwd=ROOT, text=True,
                             capture_output=True, check=True).stdout
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", listing, re.M)}


def report(config, workdirs: list[Path], configfile: str) -> str:
    """README-ready markdown: per stage and task, measured per-shard cost and the study's totals.

    Training: CPU seconds = the 0-step run's (start-up, initialisation, validation) + n_steps x the
    measured CPU seconds per step; other architectures and sizes from their matmul FLOPs at the
    fraction of peak the measured shard reached. Analysis stages: every shard costed as the measured
    256-unit shard (an upper bound; 64- and 128-unit shards are cheaper). Stages run on ``analysed``
    networks are scaled to ``shard_size``: start-up (``--help`` of the script) + the rest x scale.
    """
    # A later workdir's row replaces an earlier one of the same task, shard and stage (a rerun).
    latest = {(r["task"], r["shard"], r["stage"]): r for w in workdirs if (w / "measurements.tsv").exists()
              for r in read_rows(w / "measurements.tsv")}
    rows = list(latest.values())
    flops = next((json.loads((w / "flops.json").read_text()) for w in workdirs if (w / "flops.json").exists()), [])
    startup_cpu = {r["stage"].split(":")[1]: float(r["cpu_s"]) for r in rows if r["stage"].startswith("startup:")}
    counts = dag_counts(configfile)
    n_tasks = len(config["tasks"])
    lines = ["| stage | task | per shard: CPU s | wall s (load) | peak RSS GB | disk MB | shards | CPU-hours |",
             "|---|---|---|---|---|---|---|---|"]
    totals, disk = {}, {}
    for r in rows:
        if r["stage"].startswith("startup:"):
            continue
        stage, task, baseline = r["stage"], r["task"], r["stage"] == BASELINE
        cpu, wall, rss = float(r["cpu_s"]), float(r["wall_s"]), float(r["max_rss_mb"]) / 1024
        mb = float(r["disk_mb"])
        scale = float(r.get("scale") or 1)
        if scale != 1:
            start = startup_cpu.get(stage, 0.0)
            cpu = start + (cpu - start) * scale
            mb *= scale
        if stage == "train":
            cpu = float(r["scaled_cpu_s"])  # wall: of the run itself (steps_run steps), at its load
        shards = counts.get("train" if baseline else stage, 0) // n_tasks
        hours = 0.0 if baseline else cpu * shards / 3600  # the baseline is in the train row's CPU
        name = "train, 0 steps (start-up, initialisation, validation; in train's CPU)" if baseline else stage
        if stage == "train":
            name += f" ({r['steps_run']} steps run, scaled to {r['n_steps']})"
        note = f"{scale:.0f}x {r.get('analysed')} networks" if scale != 1 else ""
        lines.append(f"| {name} | {task} | {cpu:,.0f} | {wall:,.0f} ({float(r['load1']):.0f}) | {rss:.2f} "
                     f"| {mb:,.0f} | {shards} | {hours:,.1f} {note} |")
        if baseline:
            continue
        totals[stage] = totals.get(stage, 0.0) + hours
        disk[stage] = disk.get(stage, 0.0) + mb * shards / 1e3
    lines.append("")
    lines.append("| stage | CPU-hours, whole study (every shard at its measured 256-unit cost) | disk GB |")
    lines.append("|---|---|---|")
    for key in totals:
        lines.append(f"| {key} | {totals[key]:,.0f} | {disk[key]:,.1f} |")
    lines.append(f"| **all measured stages** | **{sum(totals.values()):,.0f}** | **{sum(disk.values()):,.0f}** |")
    if flops:
        peak = [f for f in flops if f["what"] == "peak"]
        lines += ["", "| matmul peak (float32, 1 thread, CPU seconds) | GFLOP/s |", "|---|---|"]
        lines += [f"| {f['shape']} | {f['gflops']:.0f} |" for f in peak]
        reached = [f for f in flops if "fraction_of_peak" in f]
        lines += ["", "| measured shard | GFLOP/s | fraction of peak |", "|---|---|---|"]
        lines += [f"| {f['task']} {f['arch']} n={f['n_hidden']} | {f['shard_gflops']:.0f} | "
                  f"{f['fraction_of_peak']:.0%} |" for f in reached]
        total = next(f for f in flops if f.get("task") == "all")
        lines += ["", f"Training FLOPs of the paper study (matmuls, forward + backward): "
                  f"{total['tflop'] / 1e3:,.0f} PFLOP; at this CPU's peak {total['cpu_hours_at_peak']:,.0f} "
                  "CPU-hours."]
        by_task = {}
        for f in flops:
            if f["what"] == "training" and f.get("task") != "all":
                by_task.setdefault(f["task"], []).append(f)
        for task, group in by_task.items():
            measured = [f for f in group if "fraction_of_peak" in f]
            if not measured:
                continue
            fraction = measured[0]["fraction_of_peak"]
            hours = sum(f["cpu_hours_at_peak"] for f in group) / fraction
            lines.append(f"- {task}: {sum(f['tflop'] for f in group) / 1e3:,.1f} PFLOP; at the measured "
                         f"{fraction:.0%} of peak for every architecture and size: {hours:,.0f} CPU-hours of "
                         "training steps.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(ROOT / "configs" / "paper.yaml"))
    parser.add_argument("--workdir", default="/tmp/paper_slice")
    parser.add_argument("--tasks", nargs="+", default=["flipflop", "cdi", "sine"])
    parser.add_argument("--architectures", nargs="+", default=["gru"])
    parser.add_argument("--activation", default="tanh")
    parser.add_argument("--hidden", type=int, default=None, help="default: the largest configured size")
    parser.add_argument("--train-steps", type=int, nargs="+", default=[3],
                        help="optimiser steps run per task (one value, or one per task)")
    parser.add_argument("--analysed", type=int, default=2,
                        help="kept networks the fixed-point, topology and dynamics stages run on (their "
                        "costs are per network: scaled to the shard's size)")
    parser.add_argument("--train-only", action="store_true", help="only the train stage (and its 0-step run)")
    parser.add_argument("--skip-train", action="store_true",
                        help="reuse the trained shard already in --workdir; run the analysis stages only")
    parser.add_argument("--shard-size", type=int, default=None,
                        help="networks per shard instead of the config's (to fit a shared machine's "
                        "memory; per-network costs then scale by shard_size / this)")
    parser.add_argument("--startup", action="store_true", help="also time each script's --help")
    parser.add_argument("--flops", nargs="*", metavar="WORKDIR", default=None,
                        help="only the FLOP bound (flops.json in --workdir): paper training FLOPs, matmul "
                        "peak, and the fraction of it reached by the train rows in these workdirs")
    parser.add_argument("--report", nargs="+", metavar="WORKDIR", default=None,
                        help="only write report.md (markdown) from the measurements in these workdirs")
    args = parser.parse_args(argv)
    if args.report:
        text = report(yaml.safe_load(Path(args.config).read_text()), [Path(w) for w in args.report],
                      str(Path(args.config).relative_to(ROOT)) if Path(args.config).is_absolute() else args.config)
        (Path(args.report[0]) / "report.md").write_text(text)
        print(text)
        return 0
    config = yaml.safe_load(Path(args.config).read_text())
    hidden = args.hidden or max(config["population"]["hidden_sizes"])
    shard_size = int(config["population"]["shard_size"])
    if args.shard_size:
        config["population"]["shard_size"] = args.shard_size
    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    out = work / "measurements.tsv"
    rows = read_rows(out) if out.exists() else []
    if args.flops is not None:
        for other in args.flops:
            rows += read_rows(Path(other) / "measurements.tsv")
        # per 40-network shard: a row measured with --shard-size scales by shard_size / networks
        step_cpu = {(r["task"], r["shard"].split("-")[0]):
                    float(r["step_cpu_s"]) * shard_size / float(r.get("networks") or shard_size)
                    for r in rows if r.get("stage") == "train" and r.get("step_cpu_s") not in (None, "")}
        limit = flops_report(config, shard_size, hidden, step_cpu)
        (work / "flops.json").write_text(json.dumps(limit, indent=1))
        for row in limit:
            print({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()})
        return 0
    if args.startup:
        for stage in OUTPUTS:
            rows.append({"task": "-", "shard": "-", "stage": f"startup:{stage}", **startup(work, stage)})
            print(rows[-1], flush=True)
            write_rows(rows, out)
    steps = args.train_steps * len(args.tasks) if len(args.train_steps) == 1 else args.train_steps
    for task, n_run in zip(args.tasks, steps):
        pop = shard_paths(work, task, "-", 0)["population"]
        if not Path(pop).exists():
            Path(pop).parent.mkdir(parents=True, exist_ok=True)
            subprocess.check_call([PY, *STAGES["population"](config, task, {"population": pop})], cwd=ROOT)
        n_steps = config["tasks"][task].get("training", {}).get("n_steps", config["training"]["n_steps"])
        for arch in args.architectures:
            name = f"{arch}-{args.activation}-h{hidden}"
            paths = shard_paths(work, task, f"{name}-000", n_run)
            # The same shard at n_steps = 0, into files of its own: start-up, initialisation and
            # validation (twins included), exactly what the shard's run does besides its steps.
            weights = Path(paths["weights"])
            baseline = {**paths, "steps": 0, "weights": str(weights.with_name("weights-0-steps.safetensors")),
                        "records": str(weights.with_name("train-0-steps.json"))}
            if args.skip_train:
                mark_kept(paths)
                for stage in ("extract_states",):
                    run_stage(config, work, task, stage, paths, rows, out)
                mark_kept(paths, args.analysed)
                scale = {"analysed": args.analysed, "scale": shard_size / args.analysed}
                for stage in ("fixed_points", "topology_graph", "dynamics"):
                    run_stage(config, work, task, stage, paths, rows, out, scale)
                continue
            base = run_stage(config, work, task, "train", baseline, rows, out, label=BASELINE)
            row = run_stage(config, work, task, "train", paths, rows, out)
            record = json.loads(Path(paths["records"]).read_text())["networks"][0]
            step_cpu = max(row["cpu_s"] - base["cpu_s"], 0.0) / n_run
            step_wall = float(record["shard_wall_time_s"]) / n_run
            row.update(networks=config["population"]["shard_size"], steps_run=n_run, n_steps=n_steps,
                       step_cpu_s=step_cpu, step_wall_s=step_wall,
                       scaled_cpu_s=base["cpu_s"] + step_cpu * n_steps,
                       scaled_wall_s=base["wall_s"] + step_wall * n_steps)
            write_rows(rows, out)
            if args.train_only:
                continue
            mark_kept(paths)
            run_stage(config, work, task, "extract_states", paths, rows, out)
            mark_kept(paths, args.analysed)
            scale = {"analysed": args.analysed, "scale": shard_size / args.analysed}
            for stage in ("fixed_points", "topology_graph", "dynamics"):
                run_stage(config, work, task, stage, paths, rows, out, scale)
    return 0


if __name__ == "__main__":
    sys.exit(main())
