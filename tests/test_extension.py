"""README's "Extending" is true: a new task and a new metric, added only where it says, run through
the whole workflow.

A copy of the repository gets, as README's Extending section names and nothing else:

* a task ``echo`` (1 input, 1 output: the output repeats the previous step's input), a subclass of
  ``rnnuniv.tasks.Task`` defining only the abstract parts, registered in ``TASKS``, and its
  parameter block in ``schemas/config.schema.yaml`` under ``tasks``;
* a metric ``dimension`` (distance = difference of the two networks' participation ratios
  (sum lambda)^2 / sum lambda^2 of their centred probe states' covariance eigenvalues), one
  ``Metric`` entry in ``rnnuniv.similarity.registry.EXTRA_METRICS`` with a per-network part and
  a pairwise part.

Then the tiny config with ``echo`` as the only task and ``dimension`` among the metrics runs to
completion, and the outputs are checked: networks trained, the metric's matrix equal to the
participation-ratio differences recomputed from the stored states, the summary has the task with
the metric's space.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, TINY_CONFIG, snakemake_env

TOY_TASK = '''

@dataclass(frozen=True)
class Echo(Task):
    """Echo: the output repeats the previous step's input (a toy task of tests/test_extension.py)."""

    name: ClassVar[str] = "echo"
    n_inputs: ClassVar[int] = 1
    n_outputs: ClassVar[int] = 1
    n_steps: int = 20

    def _sample_inputs(self, batch_size, generator):
        shape = (batch_size, self.n_steps, 1)
        signs = torch.randint(0, 2, shape, generator=generator, device=generator.device)
        return (2.0 * signs - 1.0).float()

    def targets(self, inputs):
        return torch.cat([torch.zeros_like(inputs[:, :1]), inputs[:, :-1]], dim=1)

    def probe(self, seed=0):
        inputs, targets = self.sample(16, torch.Generator().manual_seed(seed))
        return Probe(inputs, targets, {"first_input": inputs[:, 0, 0].numpy()}, "16 random trials")

    def fixed_point_conditions(self, n_grid=None):
        return [("zero", np.zeros(1, dtype=np.float32))]


TASKS[Echo.name] = Echo
'''

TOY_TASK_SCHEMA = {
    "description": "Echo (toy task of tests/test_extension.py).",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "params": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"n_steps": {"type": "integer", "minimum": 2, "description": "trial length T"}},
        },
        "training": {"$ref": "#/$defs/training"},
        "keep": {"$ref": "#/$defs/keep"},
        "fixed_points": {"$ref": "#/$defs/fixed_points_override"},
    },
}

TOY_METRIC = '''

def _participation_ratio(states, options):
    import torch

    x = states.reshape(-1, states.shape[-1]).to(torch.float64)
    eigenvalues = torch.linalg.eigvalsh((x - x.mean(0)).T @ (x - x.mean(0)))
    return np.array([float(eigenvalues.sum() ** 2 / (eigenvalues**2).sum())])


EXTRA_METRICS["dimension"] = Metric(
    "dimension",
    "Dimension",
    per_network=_participation_ratio,
    pairwise=lambda ratios, options: np.abs(ratios[:, :1] - ratios[:, :1].T),
)
'''


def copy_repository(destination: Path) -> Path:
    """The tracked files of the repository (everything but results, caches and the venv)."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True)
    if listed.returncode == 0 and listed.stdout:
        for name in filter(None, listed.stdout.split("\0")):
            source = REPO / name
            if source.is_file():
                (destination / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, destination / name)
    else:  # not a git checkout (an unpacked archive)
        ignored = shutil.ignore_patterns(".git", ".venv", "results", "logs", ".snakemake", "__pycache__")
        shutil.copytree(REPO, destination, ignore=ignored, dirs_exist_ok=True)
    return destination


def add_toy_task_and_metric(root: Path) -> None:
    """Only the places README's "Extending" names."""
    with (root / "rnnuniv" / "tasks.py").open("a") as f:
        f.write(TOY_TASK)
    schema_path = root / "schemas" / "config.schema.yaml"
    schema = yaml.safe_load(schema_path.read_text())
    schema["properties"]["tasks"]["properties"]["echo"] = TOY_TASK_SCHEMA
    schema_path.write_text(yaml.safe_dump(schema, sort_keys=False))
    with (root / "rnnuniv" / "similarity" / "registry.py").open("a") as f:
        f.write(TOY_METRIC)


def participation_ratio(states: np.ndarray) -> float:
    x = states.reshape(-1, states.shape[-1]).astype(np.float64)
    eigenvalues = np.linalg.eigvalsh(np.cov(x, rowvar=False))
    return float(eigenvalues.sum() ** 2 / (eigenvalues**2).sum())


@pytest.mark.slow
def test_toy_task_and_metric_run_through_the_workflow(tmp_path):
    root = copy_repository(tmp_path / "repo")
    add_toy_task_and_metric(root)
    config = yaml.safe_load(TINY_CONFIG.read_text())
    config["tasks"] = {"echo": {"params": {"n_steps": 15}, "keep": {"max_normalised_error": 1.0}}}
    config["similarity"]["extra_metrics"] = ["cka", "dimension"]
    (root / "config.yaml").write_text(yaml.safe_dump(config))  # --configfile would merge in the default tasks
    env = snakemake_env()
    env["PYTHONPATH"] = f"{root}{os.pathsep}{env.get('PYTHONPATH', '')}"  # the copy's rnnuniv, everywhere
    env["RNNUNIV_NATIVE"] = "0"  # the torch path: no kernel build for this checkout (a minute, not under test)
    result = subprocess.run(
        [str(Path(sys.executable).parent / "snakemake"), "--cores", "2"],
        cwd=root, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    if result.returncode != 0:
        logs = "\n".join(f"--- {p}\n{p.read_text()[-1500:]}" for p in sorted((root / "logs").rglob("*.log")))
        pytest.fail(f"workflow with the toy task failed:\n{result.stderr[-3000:]}\n{logs[-6000:]}")

    results = root / "results" / "echo"
    networks = pd.read_csv(results / "networks.csv")
    trained = networks[networks["trained"]]
    assert len(trained) == 4 and trained["steps_completed"].eq(config["training"]["n_steps"]).all()
    kept = networks.loc[networks["status"] == "kept", "network_id"].tolist()
    assert len(kept) >= 2, networks[["network_id", "status", "normalised_error"]]

    distance = np.load(results / "cca" / "dimension" / "distance.npy", allow_pickle=False)
    index = pd.read_csv(results / "cca" / "dimension" / "index.csv")
    assert index["network_id"].tolist() == kept and distance.shape == (len(kept), len(kept))
    states = {}
    for path in sorted((results / "states").glob("*.npz")):
        with np.load(path, allow_pickle=False) as arrays:
            states.update(zip(arrays["network_ids"].astype(str), arrays["hidden"]))
    ratios = np.array([participation_ratio(states[i]) for i in kept])
    assert np.ptp(ratios) > 1e-3  # the networks differ: a real comparison
    np.testing.assert_allclose(distance, np.abs(ratios[:, None] - ratios[None, :]), rtol=1e-6, atol=1e-9)
    assert np.all(np.diag(distance) == 0)

    summary = json.loads((root / "results" / "summary.json").read_text())
    assert set(summary["tasks"]) == {"echo"}
    assert {"cca", "cka", "dimension", "topology"} <= set(summary["tasks"]["echo"]["silhouettes"])
    embedding = pd.read_csv(results / "embedding" / "dimension.csv")
    assert sorted(embedding["network_id"]) == sorted(kept)
    assert (root / "results" / "figures" / "figS_metrics" / "a.png").stat().st_size > 0
