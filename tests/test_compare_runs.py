"""benchmarks/compare_runs.py finds a changed value and ignores layout and wall times."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pandas as pd

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "compare_runs.py"


def _compare():
    spec = importlib.util.spec_from_file_location("compare_runs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def _results(root: Path, value: float, extra_column: bool, wall: float) -> Path:
    (root / "t" / "cca").mkdir(parents=True)
    table = pd.DataFrame({"network_id": ["a", "b"], "loss": [0.5, value], "shard_wall_time_s": [wall, wall]})
    if extra_column:
        table["status"] = "kept"
    table.to_csv(root / "t" / "networks.csv", index=False)
    np.save(root / "t" / "cca" / "distance.npy", np.array([[0.0, value], [value, 0.0]]))
    np.savez(root / "t" / "f.npz", x=np.arange(3.0), empty=np.zeros((0, 4) if extra_column else (0,)))
    (root / "summary.json").write_text(json.dumps({"n": 2, "r": [value, float("nan")], "elapsed": wall}))
    return root


def test_equal_runs_pass_despite_layout_and_wall_time(tmp_path, capsys):
    before = _results(tmp_path / "a", 0.25, False, 1.0)
    after = _results(tmp_path / "b", 0.25, True, 9.0)
    assert _compare()([str(before), str(after)]) == 0
    out = capsys.readouterr().out
    assert "4 files compared: 4 equal" in out and "only after ['status']" in out


def test_a_changed_value_is_reported(tmp_path, capsys):
    before = _results(tmp_path / "a", 0.25, False, 1.0)
    after = _results(tmp_path / "b", 0.25 + 1e-9, False, 1.0)
    assert _compare()([str(before), str(after)]) == 1
    out = capsys.readouterr().out
    assert "DIFFERS  t/networks.csv: column loss" in out and "DIFFERS  t/cca/distance.npy" in out
    assert "DIFFERS  summary.json: /r[0]" in out and "f.npz" not in out
    assert _compare()([str(before), str(after), "--atol", "1e-8"]) == 0


def test_equal_infinities_are_equal_and_opposite_ones_differ(tmp_path, capsys):
    """A diverged network's loss is inf in both runs: equal; inf against -inf or a number is not."""
    before = _results(tmp_path / "a", float("inf"), False, 1.0)
    assert _compare()([str(before), str(_results(tmp_path / "b", float("inf"), False, 1.0))]) == 0
    assert _compare()([str(before), str(_results(tmp_path / "c", float("-inf"), False, 1.0))]) == 1
    assert _compare()([str(before), str(_results(tmp_path / "d", 1e300, False, 1.0))]) == 1
    capsys.readouterr()
