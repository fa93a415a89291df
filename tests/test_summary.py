"""scripts/summary.py and rnnuniv.summary on small fake result files with known structure."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
import summary as summary_script  # noqa: E402

ARCHS = ["vanilla", "ugrnn", "gru", "lstm"]
OPTIONS = {"n_bootstrap": 60, "n_permutations": 200, "seed": 0}


def fake_population(n_per_cell=6):
    arch = np.repeat(ARCHS, 2 * n_per_cell)
    act = np.tile(np.repeat(["tanh", "relu"], n_per_cell), len(ARCHS))
    ids = [f"net{i:03d}" for i in range(arch.size)]
    return pd.DataFrame({"network_id": ids, "architecture": arch, "activation": act})


def clustered(labels, spread, seed):
    rng = np.random.default_rng(seed)
    _, codes = np.unique(labels, return_inverse=True)
    points = 3.0 * np.eye(len(set(codes)))[codes] + spread * rng.standard_normal((len(codes), len(set(codes))))
    return np.linalg.norm(points[:, None] - points[None], axis=-1)


def write_task(root: Path, task: str, index: pd.DataFrame, topology_columns: dict, sensitivity=(3, 10)):
    base = root / "results" / task
    (base / "cca" / "untrained").mkdir(parents=True)
    (base / "topology").mkdir(parents=True)
    np.save(base / "cca" / "distance.npy", clustered(index["architecture"], 0.3, 0))  # separates
    index.to_csv(base / "cca" / "index.csv", index=False)
    np.save(base / "topology" / "distance.npy", np.zeros((len(index), len(index))))  # one scaffold
    index.to_csv(base / "topology" / "index.csv", index=False)
    (base / "topology" / "summary.json").write_text("{}")
    untrained = pd.concat([index.assign(trained=True), index.assign(trained=False,
                          network_id=index["network_id"] + "u")], ignore_index=True)
    np.save(base / "cca" / "untrained" / "distance.npy", clustered(untrained["activation"], 1.0, 1))
    untrained.to_csv(base / "cca" / "untrained" / "index.csv", index=False)
    index.assign(status="kept").to_csv(base / "networks.csv", index=False)
    index.assign(scaffold_class=0, in_modal_class=True, **topology_columns).to_csv(
        base / "topology" / "networks.csv", index=False)
    for k in sensitivity:
        (base / "cca" / "sensitivity" / f"k{k}").mkdir(parents=True)
        spread = 0.3 if k == 3 else 5.0  # separates at k = 3 only
        np.save(base / "cca" / "sensitivity" / f"k{k}" / "distance.npy", clustered(index["architecture"], spread, k))
        index.to_csv(base / "cca" / "sensitivity" / f"k{k}" / "index.csv", index=False)


def arguments(root: Path, task: str, ks=(3, 10), topology_networks=True):
    base = root / "results" / task
    args = ["--tasks", task, "--spaces", "cca", "topology",
            "--distances", str(base / "cca/distance.npy"), str(base / "topology/distance.npy"),
            "--indices", str(base / "cca/index.csv"), str(base / "topology/index.csv"),
            "--untrained-distances", str(base / "cca/untrained/distance.npy"),
            "--untrained-indices", str(base / "cca/untrained/index.csv"),
            "--topology-summaries", str(base / "topology/summary.json"),
            "--networks", str(base / "networks.csv"),
            "--sensitivity-k", *map(str, ks),
            "--sensitivity-distances", *[str(base / f"cca/sensitivity/k{k}/distance.npy") for k in ks],
            "--sensitivity-indices", *[str(base / f"cca/sensitivity/k{k}/index.csv") for k in ks],
            "--options", json.dumps(OPTIONS),
            "--output-json", str(root / "summary.json"), "--output-md", str(root / "summary.md")]
    if topology_networks:
        args += ["--topology-networks", str(base / "topology/networks.csv")]
    return args


def test_summary_rows_and_verdicts_on_planted_results(tmp_path):
    index = fake_population()
    n = len(index)
    slow = np.where(index["architecture"] == "vanilla", 1, 3)
    write_task(tmp_path, "cdi", index, {"line_attractor": True, "n_slow_modes": slow})
    assert summary_script.main(arguments(tmp_path, "cdi")) == 0
    result = json.loads((tmp_path / "summary.json").read_text())["tasks"]["cdi"]
    rows = {r["claim"]: r for r in result["claims"]}
    individuality = rows["individuality: SVCCA geometry separates architectures (within activation)"]
    assert individuality["verdict"] == "held" and individuality["n"] == n
    assert rows["individuality: SVCCA geometry separates activations"]["verdict"] == "not held"
    assert rows["universality: topology does not separate architectures"]["verdict"] == "held"
    assert rows["universality: same modal scaffold class in every architecture"]["verdict"] == "held"
    # untrained matrix clusters by activation: T-U same activation closer than T-T other activation
    figure4 = [r for c, r in rows.items() if c.startswith("figure 4")][0]
    assert figure4["statistic"] > 0 and figure4["verdict"] == "held"
    assert rows["CDI: line attractor (Fig. 3b)"]["statistic"] == 1.0
    slow_row = rows["CDI: gated architectures use more slow modes than vanilla (Fig. 3f)"]
    assert slow_row["statistic"] == pytest.approx(2.0) and slow_row["verdict"] == "held"
    assert result["slow_modes"]["vanilla"]["mean"] == 1.0
    assert result["within_between"]["topology"]["ratio"] != result["within_between"]["topology"]["ratio"]  # 0/0
    assert result["within_between"]["cca"]["ratio"] < 0.5
    assert [s["k"] for s in result["sensitivity"]] == [3, 10]
    assert [s["verdict"] for s in result["sensitivity"]] == ["held", "not held"]
    assert result["sensitivity"][1]["changes"] is True
    assert result["kept"][0] == {"architecture": "gru", "activation": "relu", "trained": 6, "passed": 6, "kept": 6,
                                 "fraction": 1.0}
    text = (tmp_path / "summary.md").read_text()
    assert "## cdi" in text and "**held**" in text and "The verdict changes at k = 10." in text


def test_missing_columns_give_not_available_rows(tmp_path):
    write_task(tmp_path, "flipflop", fake_population(), {"n_stable": 8})
    assert summary_script.main(arguments(tmp_path, "flipflop")) == 0
    rows = json.loads((tmp_path / "summary.json").read_text())["tasks"]["flipflop"]["claims"]
    flipflop = [r for r in rows if r["claim"].startswith("flip-flop")][0]
    assert flipflop["verdict"] == "not available" and "has_8_memories" in flipflop["reason"]


def test_too_few_networks_is_inconclusive_and_flipflop_fraction(tmp_path):
    write_task(tmp_path, "flipflop", fake_population(n_per_cell=3), {"has_8_memories": True, "cube_scaffold": True})
    assert summary_script.main(arguments(tmp_path, "flipflop", topology_networks=True)) == 0
    rows = {r["claim"]: r for r in json.loads((tmp_path / "summary.json").read_text())["tasks"]["flipflop"]["claims"]}
    individuality = rows["individuality: SVCCA geometry separates architectures (within activation)"]
    assert individuality["verdict"] == "inconclusive" and "left out, fewer than 6 kept" in individuality["reason"]
    assert rows["flip-flop: 8 memories with the cube scaffold (Fig. 1e)"]["statistic"] == 1.0


def test_missing_required_file_is_named(tmp_path):
    write_task(tmp_path, "sine", fake_population(), {"freq_correlation": 0.99})
    (tmp_path / "results/sine/topology/summary.json").unlink()
    with pytest.raises(FileNotFoundError, match="topology/summary.json"):
        summary_script.main(arguments(tmp_path, "sine"))


def test_without_topology_table_and_sensitivity(tmp_path):
    write_task(tmp_path, "sine", fake_population(), {"freq_correlation": 0.99}, sensitivity=())
    assert summary_script.main(arguments(tmp_path, "sine", ks=(), topology_networks=False)) == 0
    result = json.loads((tmp_path / "summary.json").read_text())["tasks"]["sine"]
    sine = [r for r in result["claims"] if r["claim"].startswith("sine")][0]
    assert sine["verdict"] == "not available"
    assert "Sensitivity to the SVCCA dimension: not available" in (tmp_path / "summary.md").read_text()


def test_an_underpowered_cell_is_left_out_not_voiding_the_others():
    from rnnuniv.summary import powered_cells

    index = pd.DataFrame({"architecture": ["gru"] * 6 + ["lstm"] * 5 + ["vanilla"] * 7,
                          "activation": ["tanh"] * 18})
    keep, small = powered_cells(index, 6)
    assert small == {"lstm|tanh": 5}
    assert keep.sum() == 13 and not keep[6:11].any()
