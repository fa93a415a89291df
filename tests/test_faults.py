"""Fault tolerance: killed jobs resume, corrupt files are named, config changes rerun only what
depends on them, and no half-written file ever looks complete."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from conftest import REPO, run_snakemake, snakemake_env
from rnnuniv import io
from rnnuniv.population import build_population

CONFIG = "tests/data/tiny.yaml"


def _planned_jobs(workdir: Path, config: str = CONFIG) -> dict[str, int]:
    """Rule -> number of jobs a dry run would execute."""
    result = run_snakemake(workdir, "-n", "--cores", "1", "--configfile", config, timeout=300)
    assert result.returncode == 0, result.stderr
    text = result.stdout + result.stderr
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:")[1].split("\n\n")[0]
    jobs = {}
    for line in table.splitlines():
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if match and match.group(1) != "total":
            jobs[match.group(1)] = int(match.group(2))
    return jobs


@pytest.fixture()
def finished_copy(tiny_workflow, tmp_path) -> Path:
    """A copy of the finished tiny workflow (results, logs and Snakemake's metadata included)."""
    copy = tmp_path / "copy"
    shutil.copytree(tiny_workflow, copy, symlinks=True)
    return copy


def _edit_config(workdir: Path, edit) -> None:
    path = workdir / CONFIG
    config = yaml.safe_load(path.read_text())
    edit(config)
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def test_fixed_point_tolerance_change_reruns_fixed_points_and_downstream_only(finished_copy):
    assert _planned_jobs(finished_copy) == {}
    _edit_config(finished_copy, lambda c: c["fixed_points"].update(tol_q=1e-11))
    jobs = _planned_jobs(finished_copy)
    assert jobs.get("fixed_points", 0) > 0
    assert jobs.get("topology_graph", 0) > 0
    for upstream in ("population", "train", "manifest", "extract_states", "similarity_features", "cca_matrix"):
        assert upstream not in jobs, jobs


def test_keep_threshold_change_reruns_the_status_step_and_downstream_but_no_training(finished_copy):
    """The keep rule is applied after training (rule manifest): a new threshold retrains nothing."""
    _edit_config(finished_copy, lambda c: c.setdefault("keep", {}).update(max_normalised_error=0.42))
    config = yaml.safe_load((finished_copy / CONFIG).read_text())
    following = [t for t, v in config["tasks"].items() if "keep" not in v]  # no per-task override
    jobs = _planned_jobs(finished_copy)
    assert following and jobs.get("manifest") == len(following), jobs
    for downstream in ("extract_states", "fixed_points", "dynamics", "cca_matrix", "summary"):
        assert jobs.get(downstream, 0) > 0, (downstream, jobs)
    assert "train" not in jobs and "population" not in jobs, jobs


def test_checkpoint_and_log_interval_changes_plan_nothing(finished_copy):
    """Bookkeeping settings change no weight: not train-rule params, so no job is planned."""
    def edit(config):
        config["training"]["checkpoint_every"] = config["training"]["checkpoint_every"] + 7
        config["training"]["log_every"] = config["training"]["log_every"] + 3

    _edit_config(finished_copy, edit)
    assert _planned_jobs(finished_copy) == {}


def test_figure_option_change_reruns_only_figures(finished_copy):
    config = yaml.safe_load((finished_copy / CONFIG).read_text())
    if "figures" not in config:
        pytest.skip("the workflow has no figures section yet")
    _edit_config(finished_copy, lambda c: c["figures"].update(dpi=c["figures"].get("dpi", 100) + 1))
    jobs = _planned_jobs(finished_copy)
    assert jobs, "changing a figure option must rerun the figures"
    others = sorted(rule for rule in jobs if not rule.startswith(("figure_", "all")))
    assert not others, f"a figure option reran {others}"


def test_truncated_weights_are_named_and_rebuilt_identically(finished_copy):
    networks = pd.read_csv(finished_copy / "results/flipflop/networks.csv")
    shard = networks.loc[networks["trained"], "shard"].iloc[0]
    weights = finished_copy / f"results/flipflop/shards/{shard}/weights.safetensors"
    original, _ = io.load_weights(weights)
    weights.write_bytes(weights.read_bytes()[:100])

    states = f"results/flipflop/states/{shard}.npz"
    result = run_snakemake(
        finished_copy, states, "--cores", "1", "--configfile", CONFIG, "--force", timeout=300
    )
    assert result.returncode != 0
    log = (finished_copy / f"logs/flipflop/states/{shard}.log").read_text()
    assert str(weights.relative_to(finished_copy)) in log and "safetensors" in log

    weights.unlink()
    result = run_snakemake(finished_copy, "--cores", "2", "--configfile", CONFIG, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    rebuilt, _ = io.load_weights(weights)
    for key in original:
        assert torch.equal(original[key], rebuilt[key]), key


@pytest.mark.parametrize(
    "reader,content,needle",
    [
        (lambda p: io.load_npz(p), b"PK\x03\x04 truncated", "not a readable .npz"),
        (lambda p: io.load_weights(p), b"\x08\x00\x00\x00\x00\x00\x00\x00{", "safetensors"),
        (lambda p: io.read_json(p), b'{"networks": [', "not valid JSON"),
        (lambda p: io.load_npz(p, required=("hidden",)), None, "missing arrays ['hidden']"),
    ],
)
def test_corrupt_files_raise_errors_naming_the_file(tmp_path, reader, content, needle):
    path = tmp_path / "input.bin"
    if content is None:
        io.save_npz(path, other=np.zeros(3))
    else:
        path.write_bytes(content)
    with pytest.raises(io.CorruptFileError) as error:
        reader(path)
    assert str(path) in str(error.value) and needle in str(error.value)


def test_atomic_write_leaves_no_partial_file(tmp_path):
    target = tmp_path / "table.csv"
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as tmp:
            tmp.write_text("half a ta")
            raise RuntimeError("killed")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def _train_command(workdir: Path, population: Path, shard: str, out: str, checkpoint: str) -> list[str]:
    training = '{"n_steps": 300, "batch_size": 16, "checkpoint_every": 10, "log_every": 10}'
    return [
        sys.executable, str(REPO / "scripts" / "train.py"),
        "--population", str(population), "--shard", shard, "--task", "flipflop",
        "--task-params", '{"n_steps": 20}', "--training", training, "--device", "cpu",
        "--threads", "1", "--no-progress", "--checkpoint", str(workdir / checkpoint),
        "--weights", str(workdir / out / "weights.safetensors"),
        "--records", str(workdir / out / "train.json"),
    ]  # fmt: skip


def test_sigkilled_training_resumes_to_identical_weights(tmp_path):
    population = {
        "architectures": ["gru"], "activations": ["tanh"], "hidden_sizes": [8], "l2": [1e-5],
        "learning_rates": [0.01], "n_seeds": 3, "shard_size": 3,
    }  # fmt: skip
    table = build_population("flipflop", population, study_seed=0)
    csv = tmp_path / "population.csv"
    io.write_csv(csv, table)
    shard = table["shard"].iloc[0]
    env = snakemake_env()

    reference = _train_command(tmp_path, csv, shard, "reference", "ref.safetensors")
    subprocess.run(reference, check=True, env=env, capture_output=True, timeout=600)

    command = _train_command(tmp_path, csv, shard, "killed", "ckpt.safetensors")
    process = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    checkpoint = tmp_path / "ckpt.safetensors"
    deadline = time.monotonic() + 300
    while not checkpoint.exists() and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
    assert process.poll() is None, "training finished before it could be killed"
    time.sleep(0.3)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert checkpoint.exists() and not (tmp_path / "killed" / "weights.safetensors").exists()

    subprocess.run(command, check=True, env=env, capture_output=True, timeout=600)
    assert not checkpoint.exists(), "the checkpoint is removed once the shard is done"
    expected, _ = io.load_weights(tmp_path / "reference" / "weights.safetensors")
    resumed, _ = io.load_weights(tmp_path / "killed" / "weights.safetensors")
    for key in expected:
        assert torch.equal(expected[key], resumed[key]), key


def test_population_with_no_kept_network_flows_through_every_stage(tmp_path):
    """An impossible keep threshold: every stage still finishes and says so, nothing crashes."""
    from conftest import copy_workflow

    workdir = copy_workflow(tmp_path / "wf")
    config = yaml.safe_load((workdir / CONFIG).read_text())
    config["tasks"] = {"flipflop": config["tasks"]["flipflop"]}
    config["population"].update(architectures=["vanilla"], n_seeds=1)
    config["training"].update(n_steps=2)
    config["keep"] = {"max_normalised_error": 1e-12}
    (workdir / "none_kept.yaml").write_text(yaml.safe_dump(config))

    result = run_snakemake(workdir, "--cores", "2", "--configfile", "none_kept.yaml", timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    networks = pd.read_csv(workdir / "results/flipflop/networks.csv")
    assert "kept" not in set(networks["status"])
    assert np.load(workdir / "results/flipflop/cca/distance.npy").shape == (0, 0)
    topology = io.read_json(workdir / "results/flipflop/topology/summary.json")
    assert topology["status"] == "no networks kept"
    assert "no networks kept" in (workdir / "results/summary.md").read_text().lower()
    panels = sorted((workdir / "results/figures/fig1_flipflop").glob("*.png"))
    assert len(panels) == 6 and all(p.stat().st_size > 0 for p in panels)
