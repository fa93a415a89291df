"""Shared fixtures: a copy of the workflow in a temporary directory, run on the tiny config."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

# One torch thread per test process: tiny tensors gain nothing from two, and on a shared machine
# oversubscribed threads make small ops many times slower.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_FILES = ["Snakefile", "rules", "scripts", "schemas", "config.yaml", "configs", "envs", "profiles", "report"]
TINY_CONFIG = REPO / "tests" / "data" / "tiny.yaml"


def snakemake_env() -> dict[str, str]:
    """The environment of this interpreter's venv, so the rules' `python3` finds rnnuniv."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def copy_workflow(destination: Path) -> Path:
    destination.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, destination / name, dirs_exist_ok=True)
        elif source.exists():
            shutil.copy2(source, destination / name)
    (destination / "tests" / "data").mkdir(parents=True, exist_ok=True)
    shutil.copy2(TINY_CONFIG, destination / "tests" / "data" / "tiny.yaml")
    return destination


def run_snakemake(workdir: Path, *args: str, timeout: float = 1200) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).parent / "snakemake"), *args]
    return subprocess.run(
        command, cwd=workdir, env=snakemake_env(), capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="session")
def tiny_workflow(tmp_path_factory) -> Path:
    """The whole workflow run once on the tiny config; tests read its outputs."""
    workdir = copy_workflow(tmp_path_factory.mktemp("workflow"))
    result = run_snakemake(workdir, "--cores", "2", "--configfile", "tests/data/tiny.yaml")
    if result.returncode != 0:
        logs = "\n".join(
            f"--- {p}\n{p.read_text()[-2000:]}" for p in sorted((workdir / "logs").rglob("*.log"))
        )
        pytest.fail(f"tiny workflow failed:\n{result.stderr[-4000:]}\n{logs[-8000:]}")
    return workdir
