"""benchmarks/bench_paper_slice.py builds each stage's command the way rules/*.smk do: every
command it builds must be one its script accepts (the slice broke once when --records became
--networks)."""

import importlib.util
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("stage", ["population", "train", "extract_states", "fixed_points", "topology_graph", "dynamics"])
def test_every_stage_command_parses_with_its_script(stage, tmp_path):
    bench = _load(ROOT / "benchmarks" / "bench_paper_slice.py", "bench_paper_slice")
    config = yaml.safe_load((ROOT / "configs" / "paper.yaml").read_text())
    paths = bench.shard_paths(tmp_path, "cdi", "gru-tanh-h256-000", 3)
    argv = bench.STAGES[stage](config, "cdi", paths)
    script, arguments = argv[0], argv[1:]
    module = _load(ROOT / script, f"script_{stage}")
    args = module.parse_args(arguments)  # argparse exits (SystemExit) on an unknown or missing option
    for key in ("weights", "networks", "states", "output"):
        value = getattr(args, key, None)
        if value is not None:
            assert str(value).startswith(str(tmp_path)), (key, value)
