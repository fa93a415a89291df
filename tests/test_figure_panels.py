"""Every registered figure panel drawn from small constructed files, with assertions on what it draws
(points, lines, labels, legend entries, title numbers); and the registry against the rules."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import matplotlib
import matplotlib.image
import numpy as np
import pandas as pd
import pytest
import torch

matplotlib.use("Agg")

from rnnuniv import figures, io, plots  # noqa: E402
from rnnuniv.figures.data import PanelRequest  # noqa: E402
from rnnuniv.tasks import TASKS, Task, make_task  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
# two kept networks of each architecture's first seed; vanilla s01 kept, gru s01 not kept
NETWORKS = [("vanilla-s00", "vanilla", "kept", 0.01), ("vanilla-s01", "vanilla", "kept", 0.02),
            ("gru-s00", "gru", "kept", 0.03), ("gru-s01", "gru", "above_threshold", np.nan)]
PARAMS = {"flipflop": {"n_steps": 12}, "sine": {"n_steps": 20, "n_freqs": 5},
          "cdi": {"n_steps": 10}}
N_HIDDEN = 3
OPTIONS = {"dpi": 40, "width": 6.0, "font_size": 7, "n_trajectories": 4}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


def texts(legend) -> list[str]:
    return [t.get_text() for t in legend.get_texts()]


def draw(kind: str, options=OPTIONS, **request):
    return figures.draw(kind, PanelRequest(**request), plots.setup_style(options))


def write_networks(path: Path, task: str) -> str:
    rows = [{"network_id": i, "task": task, "architecture": a, "activation": "tanh", "trained": True,
             "status": s, "normalised_error": e, "shard": f"{a}-tanh-h3-000"} for i, a, s, e in NETWORKS]
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def write_states(path: Path, task) -> tuple[str, np.ndarray]:
    """Probe of ``task``; hidden states a fixed random projection of the inputs' running sum."""
    probe = task.probe()
    inputs = probe.inputs.numpy()
    rng = np.random.default_rng(0)
    hidden = np.stack([np.tanh(np.cumsum(inputs, 1) @ rng.standard_normal((inputs.shape[2], N_HIDDEN)))
                       for _ in NETWORKS])  # [N, K, T, n]
    outputs = probe.targets.numpy()[None].repeat(len(NETWORKS), 0) * 0.9
    conditions = {f"condition_{k}": np.asarray(v) for k, v in probe.conditions.items()}
    io.save_npz(path, network_ids=np.array([n[0] for n in NETWORKS]), hidden=hidden, outputs=outputs,
                inputs=inputs, **conditions)
    return str(path), hidden


def write_points(path: Path, task, eigenvalues_of=None, n_grid=None) -> tuple[str, list]:
    """One point per network and condition at the origin; eigenvalues ``eigenvalues_of(network, c)``."""
    conditions = task.fixed_point_conditions(n_grid)
    rows = []
    for i in range(len(NETWORKS)):
        for c in range(len(conditions)):
            values = np.asarray(eigenvalues_of(i, c) if eigenvalues_of else [0.9, 0.5 + 0.3j, 0.5 - 0.3j])
            rows.append((i, c, values))
    m = task.n_inputs
    arrays = {
        "network_index": np.array([r[0] for r in rows]), "condition_index": np.array([r[1] for r in rows]),
        "points": np.stack([0.1 * (r[1] + 1) * np.ones(N_HIDDEN) for r in rows]),
        "q": np.array([1e-12 * (1 + r[1]) for r in rows]),
        "eigenvalues": np.stack([r[2] for r in rows]).astype(np.complex64),
        "n_unstable": np.array([int(np.sum(np.abs(r[2]) > 1)) for r in rows]),
        "right_eigenvectors": np.stack([np.eye(N_HIDDEN) for _ in rows]).astype(np.complex64),
        "left_eigenvectors": np.stack([np.eye(N_HIDDEN) for _ in rows]).astype(np.complex64),
        # only the channel each condition's output follows drives the state
        "input_jacobians": np.stack([np.eye(m)[task.relevant_channel(np.stack([conditions[r[1]][1]]))[0]]
                                     [None].repeat(N_HIDDEN, 0) for r in rows]),
        "condition_names": np.array([n for n, _ in conditions]),
        "condition_inputs": np.stack([x for _, x in conditions]).astype(np.float64),
    }
    io.save_npz(path, network_ids=np.array([n[0] for n in NETWORKS]), **arrays)
    return str(path), rows


# ------------------------------------------------------------------------------------------------
# example panels: the task and trajectories
# ------------------------------------------------------------------------------------------------
def test_flipflop_task_panel_draws_one_row_per_bit_with_each_example(tmp_path):
    task = make_task("flipflop", **PARAMS["flipflop"])
    states, _ = write_states(tmp_path / "s.npz", task)
    fig = draw("task", task="flipflop", inputs={"networks": write_networks(tmp_path / "n.csv", "flipflop"),
                                                "states": [states]},
               context={"task_params": PARAMS["flipflop"]})
    axes = fig.axes
    assert [ax.get_ylabel() for ax in axes] == ["bit 1", "bit 2", "bit 3"]
    assert all(len(ax.lines) == 3 for ax in axes)  # target + one example per architecture
    assert texts(axes[0].get_legend()) == ["input pulse", "target", "vanilla", "gru"]


def test_sine_task_panel_draws_three_commands(tmp_path):
    task = make_task("sine", **PARAMS["sine"])
    states, _ = write_states(tmp_path / "s.npz", task)
    fig = draw("task", task="sine", inputs={"networks": write_networks(tmp_path / "n.csv", "sine"),
                                            "states": states}, context={"task_params": PARAMS["sine"]})
    top, bottom = fig.axes
    assert texts(top.get_legend()) == [f"w = {w:.3f}" for w in task.frequency(np.array([0.0, 0.5, 1.0]))]
    np.testing.assert_allclose(top.lines[1].get_ydata(), 0.5)  # the command channel of trial 2 of 5
    assert len(bottom.lines) == 3 * 3  # per trial: target + two examples
    assert top.get_ylabel() == "input command x"


def test_cdi_task_panel_decodes_contexts_through_the_task(tmp_path):
    task = make_task("cdi", **PARAMS["cdi"])
    states, _ = write_states(tmp_path / "s.npz", task)
    fig = draw("task", task="cdi", inputs={"networks": write_networks(tmp_path / "n.csv", "cdi"),
                                           "states": [states]}, context={"task_params": PARAMS["cdi"]})
    inputs_1, inputs_2, outputs_1, outputs_2 = fig.axes
    assert [inputs_1.get_title(), inputs_2.get_title()] == ["context 1 trial", "context 2 trial"]
    assert texts(inputs_1.get_legend()) == ["stream 1", "stream 2", "context 1", "context 2"]
    for ax, context in ((inputs_1, 0), (inputs_2, 1)):
        lines = {line.get_label(): line.get_ydata() for line in ax.lines}
        np.testing.assert_array_equal(lines[f"context {context + 1}"], 1.0)
        np.testing.assert_array_equal(lines[f"context {2 - context}"], 0.0)
        # the trial of largest relevant mean: the relevant stream sits near +-mu_max
        assert abs(lines[f"stream {context + 1}"].mean()) == pytest.approx(task.mu_max, abs=0.05)
    assert texts(outputs_1.get_legend()) == ["target", "vanilla", "gru"]


def test_a_new_task_with_only_the_abstract_methods_gets_a_task_panel(tmp_path, monkeypatch):
    @dataclass(frozen=True)
    class Ramp(Task):
        name: ClassVar[str] = "ramp"
        n_inputs: ClassVar[int] = 2
        n_outputs: ClassVar[int] = 1
        n_steps: int = 8

        def targets(self, inputs):
            return inputs.cumsum(1)[..., :1]

        def probe(self, seed=0):
            from rnnuniv.tasks import Probe

            inputs = torch.ones(3, self.n_steps, 2)
            return Probe(inputs, self.targets(inputs), {})

        def fixed_point_conditions(self, n_grid=None):
            return [("zero", np.zeros(2, dtype=np.float32))]

    monkeypatch.setitem(TASKS, "ramp", Ramp)
    states, _ = write_states(tmp_path / "s.npz", Ramp())
    fig = draw("task", task="ramp", inputs={"networks": write_networks(tmp_path / "n.csv", "ramp"),
                                            "states": [states]})
    top, bottom = fig.axes
    assert texts(top.get_legend()) == ["input 1", "input 2"] and top.get_title() == "trial 0"
    assert len(bottom.lines) == 3


def test_trajectories_panel_draws_each_examples_trials_and_fixed_points(tmp_path):
    task = make_task("cdi", **PARAMS["cdi"])
    states, _ = write_states(tmp_path / "s.npz", task)
    points, rows = write_points(tmp_path / "p.npz", task)
    inputs = {"networks": write_networks(tmp_path / "n.csv", "cdi"), "states": [states]}
    fig = draw("trajectories", task="cdi", inputs=inputs)
    axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert [ax.get_title() for ax in axes] == ["vanilla (tanh)", "gru (tanh)"]
    for ax in axes:
        assert len(ax.lines) == OPTIONS["n_trajectories"]
        assert len(ax.collections[0].get_offsets()) == OPTIONS["n_trajectories"]  # trial ends
    assert fig.axes[-1].get_ylabel() == "mean of relevant stream"
    fig = draw("trajectories_points", task="cdi", inputs={**inputs, "fixed_points": [points]})
    vanilla = fig.axes[0]
    assert texts(vanilla.get_legend()) == ["trial end", "fixed points"]
    n_conditions = len(task.fixed_point_conditions())
    assert len(vanilla.collections[1].get_offsets()) == n_conditions


# ------------------------------------------------------------------------------------------------
# fixed points of example networks
# ------------------------------------------------------------------------------------------------
def test_flipflop_points_panel_draws_points_and_graphs(tmp_path):
    import networkx as nx

    task = make_task("flipflop", **PARAMS["flipflop"])
    states, _ = write_states(tmp_path / "s.npz", task)
    points, _ = write_points(tmp_path / "p.npz", task)
    graph = nx.MultiDiGraph()
    graph.add_node(0, stability="stable", code="000", n_unstable=0)
    graph.add_node(1, stability="stable", code="001", n_unstable=0)
    graph.add_node(2, stability="unstable", n_unstable=1)
    graph.add_edge(2, 0, kind="unstable")
    graph.add_edge(2, 1, kind="unstable")
    graph.add_edge(0, 1, kind="input")
    record = {"graph": nx.node_link_data(graph, edges="edges")}
    (tmp_path / "g.json").write_text(json.dumps({"networks": {"vanilla-s00": record}}))
    fig = draw("flipflop_points", task="flipflop", inputs={
        "networks": write_networks(tmp_path / "n.csv", "flipflop"), "states": [states],
        "fixed_points": [points], "graphs": [str(tmp_path / "g.json")]})
    top_vanilla, top_gru, graph_vanilla, graph_gru = fig.axes
    assert len(top_vanilla.collections[0].get_offsets()) == 1  # one point at the one condition
    assert graph_vanilla.get_title() == "3 nodes, 3 edges"
    assert sorted(t.get_text() for t in graph_vanilla.texts) == ["000", "001"]
    assert [t.get_text() for t in graph_gru.texts] == ["no topology graph"]
    assert texts(top_gru.get_legend()) == ["stable", "1 unstable", "2 unstable", "3+ unstable"]


def test_sine_points_panel_draws_points_eigenvalues_and_frequencies(tmp_path):
    task = make_task("sine", **PARAMS["sine"])
    states, _ = write_states(tmp_path / "s.npz", task)
    points, rows = write_points(tmp_path / "p.npz", task)
    names = [n for n, _ in task.fixed_point_conditions()]
    table = pd.DataFrame([{"network_id": NETWORKS[i][0], "condition": names[c], "linearized_frequency": 0.03}
                          for i, c, _ in rows])
    table.to_csv(tmp_path / "p.csv", index=False)
    fig = draw("sine_points", task="sine", context={"task_params": PARAMS["sine"]}, inputs={
        "networks": write_networks(tmp_path / "n.csv", "sine"), "states": [states], "fixed_points": [points],
        "fixed_tables": [str(tmp_path / "p.csv")]})
    ax_points, ax_eig, ax_freq = fig.axes[:3]
    n_conditions = task.n_freqs
    assert len(ax_points.collections[0].get_offsets()) == n_conditions
    assert len(ax_eig.collections[0].get_offsets()) == n_conditions * 3  # 3 eigenvalues per point
    assert texts(ax_freq.get_legend()) == ["vanilla", "gru", "identity"]
    commanded = ax_freq.collections[0].get_offsets()[:, 0]
    np.testing.assert_allclose(sorted(set(np.round(commanded, 9))), task.frequency(task.commands), rtol=1e-6)
    assert ax_points.get_title() == "vanilla: fixed points"


# ------------------------------------------------------------------------------------------------
# linearisation at the reference point
# ------------------------------------------------------------------------------------------------
def cdi_eigenvalues(network: int, condition: int) -> list[float]:
    """Condition 1 (context 1, zero stream: the reference) has |lambda| = 1, 0.5, 0; others 0.2."""
    return [1.0, 0.5, 0.0] if condition == 1 else [0.2, 0.2, 0.2]


def test_eigenvalue_panel_averages_the_reference_points_spectra(tmp_path):
    task = make_task("cdi", **PARAMS["cdi"])
    points, _ = write_points(tmp_path / "p.npz", task, cdi_eigenvalues, n_grid=3)
    fig = draw("eigenvalues", task="cdi", context={"task_params": PARAMS["cdi"]},
               inputs={"networks": write_networks(tmp_path / "n.csv", "cdi"), "fixed_points": [points]})
    ax = fig.axes[0]
    assert texts(ax.get_legend()) == ["vanilla (n=2)", "gru (n=2)"]
    for line in ax.lines[:2]:
        np.testing.assert_allclose(line.get_ydata(), [1.0, 0.5, 0.0])
    assert ax.get_xlabel() == "eigenvalue rank"


def test_linear_response_panel_follows_the_relevant_channel(tmp_path):
    task = make_task("cdi", **PARAMS["cdi"])
    points, _ = write_points(tmp_path / "p.npz", task, cdi_eigenvalues, n_grid=3)
    weights = {"w_out": torch.ones(len(NETWORKS), N_HIDDEN, 1, dtype=torch.float64)}
    io.save_weights(tmp_path / "w.safetensors", weights, {"network_ids": [n[0] for n in NETWORKS]})
    fig = draw("linear_response", task="cdi", context={"task_params": PARAMS["cdi"]}, inputs={
        "networks": write_networks(tmp_path / "n.csv", "cdi"), "fixed_points": [points],
        "weights": [str(tmp_path / "w.safetensors")]})
    ax = fig.axes[0]
    t = PARAMS["cdi"]["n_steps"]
    # diagonal J = (1, 0.5, 0), B u = (1, 1, 1), readout sums h: modes kept 1, 2, 3
    expected = np.array([t, t + 2 * (1 - 0.5**t), t + 2 * (1 - 0.5**t) + 1]) / (t + 2 * (1 - 0.5**t) + 1)
    assert len(ax.lines) == 3  # two architectures + the line at 1
    for line in ax.lines[:2]:
        np.testing.assert_allclose(line.get_ydata(), expected)
    assert ax.get_ylabel().startswith(f"output after {t} steps")


# ------------------------------------------------------------------------------------------------
# distance matrices and embeddings
# ------------------------------------------------------------------------------------------------
def embedding(path: Path, n: int = 6, with_class: bool = False) -> str:
    table = pd.DataFrame({"network_id": [f"n{i}" for i in range(n)], "architecture": ["vanilla", "gru"] * (n // 2),
                          "activation": "tanh", "x": np.arange(n, dtype=float), "y": np.zeros(n)})
    if with_class:
        table["class"] = [0] * (n - 1) + [1]
    table.to_csv(path, index=False)
    return str(path)


def summary(path: Path, task: str) -> str:
    claim = {"claim": "individuality: SVCCA geometry separates architectures", "statistic_name": "silhouette",
             "statistic": 0.61, "lower": 0.4, "upper": 0.8, "p": 0.01, "n": 6, "verdict": "held", "reason": ""}
    silhouettes = {space: {"architecture": {"statistic": 0.5, "lower": 0.25, "upper": 0.75}}
                   for space in ("cca", "cka", "topology")}
    path.write_text(json.dumps({"tasks": {task: {"claims": [claim], "silhouettes": silhouettes}}}))
    return str(path)


def test_cca_matrix_panel_sorts_by_architecture(tmp_path):
    np.save(tmp_path / "d.npy", np.arange(16.0).reshape(4, 4))
    pd.DataFrame({"network_id": list("abcd"), "architecture": ["gru", "vanilla", "gru", "vanilla"]}).to_csv(
        tmp_path / "i.csv", index=False)
    fig = draw("cca_matrix", task="sine", inputs={"distance": str(tmp_path / "d.npy"), "index": str(tmp_path / "i.csv")})
    ax = fig.axes[0]
    assert ax.get_title() == "SVCCA distance, 4 kept networks"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["vanilla", "gru"]
    assert ax.images[0].get_array()[0, 0] == 5.0  # rows and columns b, d, a, c


def test_mds_panels_quote_the_silhouette_and_claims(tmp_path):
    fig = draw("cca_mds", task="cdi", inputs={"embedding": embedding(tmp_path / "e.csv"),
                                              "summary": summary(tmp_path / "s.json", "cdi")})
    ax = fig.axes[0]
    assert sum(len(c.get_offsets()) for c in ax.collections) == 6
    assert ax.get_title() == "SVCCA MDS (6 networks)\narchitecture silhouette* 0.50 [0.25, 0.75]"
    caption = fig.texts[0].get_text().replace("\n", " ")
    assert "silhouette 0.61 [0.40, 0.80], p = 0.01, n = 6: HELD" in caption
    fig = draw("topology_mds", task="cdi", inputs={"embedding": embedding(tmp_path / "t.csv", with_class=True),
                                                   "summary": summary(tmp_path / "s.json", "cdi")})
    scatter_ax, bar_ax = fig.axes[:2]
    assert [t.get_text() for t in scatter_ax.texts] == ["5 identical"]
    assert scatter_ax.get_title().startswith("topology MDS: 6 networks, 2 scaffold classes")


def test_metrics_panel_draws_one_embedding_per_space(tmp_path):
    fig = draw("metrics", task="cdi", inputs={"cca": embedding(tmp_path / "a.csv"),
                                              "cka": embedding(tmp_path / "b.csv", 4),
                                              "summary": summary(tmp_path / "s.json", "cdi")})
    assert [ax.get_title().split("\n")[0] for ax in fig.axes] == ["SVCCA MDS", "CKA MDS"]
    assert [sum(len(c.get_offsets()) for c in ax.collections) for ax in fig.axes] == [6, 4]
    assert fig.axes[0].get_legend() is None and fig.axes[1].get_legend() is not None


# ------------------------------------------------------------------------------------------------
# panels over every task
# ------------------------------------------------------------------------------------------------
def test_untrained_panel_draws_the_pair_groups(tmp_path):
    distance = np.array([[0, 0.2, 0.7, 0.9], [0.2, 0, 0.95, 0.8], [0.7, 0.95, 0, 0.5], [0.9, 0.8, 0.5, 0]])
    np.save(tmp_path / "d.npy", distance)
    (tmp_path / "i.csv").write_text("network_id,trained,activation\na,True,tanh\nb,True,relu\n"
                                    "c,False,tanh\nd,False,relu\n")
    fig = draw("untrained", tasks=("sine",), inputs={"sine_distance": str(tmp_path / "d.npy"),
                                                     "sine_index": str(tmp_path / "i.csv")})
    ax = fig.axes[0]
    assert ax.get_title() == "sine"  # no summary: no d in the title
    assert texts(ax.get_legend()) == ["trained, other activation (1)", "trained vs untrained, same act. (2)",
                                      "trained, same activation (reference) (none)"]
    # dashed medians of the claim's groups, as similarity 1 - d: (1 - 0.2), median(1 - 0.7, 1 - 0.8)
    assert [line.get_xdata()[0] for line in ax.lines[:2]] == pytest.approx([0.8, 0.25])


def test_loss_panel_draws_each_tasks_losses_and_threshold(tmp_path):
    inputs = {f"{t}_networks": write_networks(tmp_path / f"{t}.csv", t) for t in ("flipflop", "sine")}
    fig = draw("loss", tasks=("flipflop", "sine"), inputs=inputs, context={"loss_thresholds": {"flipflop": 0.025}})
    first, second = fig.axes
    assert [first.get_title(), second.get_title()] == ["flipflop (1 diverged)", "sine (1 diverged)"]
    assert texts(first.get_legend()) == ["vanilla", "gru", "keep threshold"]
    assert first.lines[0].get_xdata()[0] == 0.025 and not second.lines


def test_connectivity_panels_draw_each_task(tmp_path):
    modes = pd.DataFrame([{"kind": "power", "n": 100, "gain": g, "rank": r, "dimension": r / 5,
                           "lyapunov_max": 0.1 * g, "settled": False} for g in (0.5, 2.0) for r in (5.0, 50.0)])
    modes.to_csv(tmp_path / "m.csv", index=False)
    rows = [{"network_id": f"n{i}", "architecture": a, "n_hidden": 8, "participation_rank_candidate": 2.0 + i,
             "participation_ratio_cross": 1.0 + i / 2, "gain_candidate": 1.8, "lyapunov_1": -0.1 * i,
             "lyapunov_2": -0.3} for i, a in enumerate(["vanilla", "gru", "gru"])]
    pd.DataFrame(rows).to_csv(tmp_path / "a.csv", index=False)
    inputs = {"random_mode": str(tmp_path / "m.csv"), "a_dynamics": str(tmp_path / "a.csv")}
    fig = draw("connectivity_dimension", tasks=("a",), inputs=inputs)
    ax = fig.axes[0]
    assert [len(c.get_offsets()) for c in ax.collections] == [1, 2]  # vanilla, gru
    assert len(ax.lines) == 2  # one random-mode curve per gain
    fig = draw("lyapunov_spectra", tasks=("a",), inputs=inputs)
    assert texts(fig.axes[0].get_legend()) == ["vanilla (1)", "gru (2)"]
    fig = draw("random_mode_phase", tasks=("a",), inputs=inputs)
    assert fig.axes[0].images[0].get_array().shape == (2, 2)  # ranks x gains


# ------------------------------------------------------------------------------------------------
# the registry, and the rules that read it
# ------------------------------------------------------------------------------------------------
def test_every_kind_has_a_documented_function_a_figure_and_drawable_inputs():
    placed = {spec[0] for panels in figures.figure_panels(["flipflop", "sine", "cdi"]).values()
              for spec in panels.values()}
    assert placed == set(figures.KINDS)
    scopes = {"all": ["s-000", "u-000"], "trained": ["s-000", "t-000"], "examples": ["s-000"]}
    for kind, spec in figures.KINDS.items():
        function = spec.resolve()
        assert callable(function) and function.__doc__ and spec.doc, kind
        inputs = figures.panel_inputs(kind, None if spec.every_task else "cdi", ["sine", "cdi"],
                                      lambda task, scope: scopes[scope], ["cca", "cka"])
        paths = [p for v in inputs.values() for p in ([v] if isinstance(v, str) else v)]
        assert paths and all(p.startswith("results/") and "{" not in p for p in paths), kind
    example = figures.panel_inputs("flipflop_points", "flipflop", ["flipflop"], lambda t, s: scopes[s])
    assert example["states"] == ["results/flipflop/states/s-000.npz"]  # only the drawn networks' shards
    loss = figures.panel_inputs("loss", None, ["sine", "cdi"], lambda t, s: [])
    assert loss == {"sine_networks": "results/sine/networks.csv", "cdi_networks": "results/cdi/networks.csv"}


def test_example_shards_hold_the_first_kept_network_of_each_architecture():
    table = pd.DataFrame({"network_id": ["g0", "v0", "v1", "l0"], "architecture": ["gru", "vanilla", "vanilla", "lstm"],
                          "status": ["kept", "above_threshold", "kept", "diverged"],
                          "shard": ["g-000", "v-000", "v-001", "l-000"]})
    assert figures.example_shards(table, fallback=["x"]) == ["g-000", "v-001"]
    assert figures.example_shards(table.assign(status="diverged"), fallback=["x"]) == ["x"]


def test_figure_rules_are_the_registry_figures():
    """Snakemake's figure rules are exactly one per registered figure of the configured tasks, and
    rules/ repeats no kind of panel (they read the registry)."""
    result = subprocess.run([str(Path(sys.executable).parent / "snakemake"), "--list-rules", "--configfile",
                             "tests/data/tiny.yaml"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    rules = {line.strip() for line in result.stdout.splitlines() if line.strip().startswith("figure_")}
    import yaml

    tasks = list(yaml.safe_load((REPO / "tests/data/tiny.yaml").read_text())["tasks"])
    assert rules == {f"figure_{figure}" for figure in figures.figure_panels(tasks)}
    rule_text = "\n".join(p.read_text() for p in (REPO / "rules").glob("*.smk"))
    # no lookup table keyed by kind ("kind": ...) or listing panels as ("kind", task)
    assert not [kind for kind in figures.KINDS if re.search(rf'"{kind}"\s*:|\(\s*"{kind}"\s*,', rule_text)]


def test_figure_script_writes_both_files_of_a_panel(tmp_path):
    """scripts/figure.py as the rules call it: arguments, one registry call, PDF and PNG written."""
    np.save(tmp_path / "d.npy", np.zeros((2, 2)))
    pd.DataFrame({"network_id": ["a", "b"], "architecture": ["gru", "vanilla"]}).to_csv(tmp_path / "i.csv", index=False)
    command = [sys.executable, str(REPO / "scripts" / "figure.py"), "--figure", "fig1_flipflop", "--panel", "c",
               "--kind", "cca_matrix", "--task", "flipflop", "--inputs",
               json.dumps({"distance": str(tmp_path / "d.npy"), "index": str(tmp_path / "i.csv")}),
               "--options", json.dumps({"dpi": 30}), "--pdf", str(tmp_path / "c.pdf"), "--png", str(tmp_path / "c.png")]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "c.pdf").read_bytes()[:4] == b"%PDF"
    image = matplotlib.image.imread(tmp_path / "c.png")
    assert image.shape[0] > 50 and image.shape[1] > 50
    bad = subprocess.run(command[:6] + ["--kind", "no_such_kind"] + command[8:], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode != 0 and "cca_matrix" in bad.stderr  # the valid kinds are named
