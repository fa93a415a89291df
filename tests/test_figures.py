"""Figure-4 groups and the figure-3f response (rnnuniv.summary), the plotting helpers and panels on
constructed data (what they draw), and the figures/summary/report of the tiny workflow."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rnnuniv import plots
from rnnuniv.summary import finite_subset, linear_response_by_modes, untrained_comparison


def clustered_distance(group_sizes, within=0.1, between=1.0, seed=0):
    """Euclidean distances of points in well-separated clusters: groups g at g * between."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(group_sizes)), group_sizes)
    points = np.stack([labels * between, np.zeros(len(labels))], 1) + within * rng.standard_normal((len(labels), 2))
    distance = np.linalg.norm(points[:, None] - points[None], axis=-1)
    return distance, labels


# ------------------------------------------------------------------------------------------------
# non-finite rows
# ------------------------------------------------------------------------------------------------
def test_non_finite_rows_are_dropped():
    distance, labels = clustered_distance([4, 4], within=0.02)
    distance[2, :] = distance[:, 2] = np.nan
    assert finite_subset(distance).tolist() == [True, True, False] + [True] * 5


# ------------------------------------------------------------------------------------------------
# figure 4 groups and figure 3f response
# ------------------------------------------------------------------------------------------------
def test_untrained_comparison_splits_pairs_into_the_three_groups():
    # networks: 0 trained tanh, 1 trained relu, 2 untrained tanh, 3 untrained relu
    distance = np.array(
        [[0, 0.2, 0.7, 0.9], [0.2, 0, 0.95, 0.8], [0.7, 0.95, 0, 0.5], [0.9, 0.8, 0.5, 0]]
    )
    groups = untrained_comparison(
        distance, [True, True, False, False], ["tanh", "relu", "tanh", "relu"]
    )
    assert groups["trained_other_activation"] == pytest.approx([0.8])
    assert sorted(groups["trained_untrained_same_activation"]) == pytest.approx([0.2, 0.3])
    assert groups["trained_same_activation"].size == 0


def test_linear_response_of_a_diagonal_system_matches_the_geometric_series():
    # J = diag(1, 0.5, 0) (R = L = I), B u = (1, 1, 1), readout sums h: y_T = T + (1 - .5^T)/.5 + 1
    eigenvalues = np.array([1.0, 0.5, 0.0])
    response = linear_response_by_modes(
        eigenvalues, np.eye(3), np.eye(3), np.ones(3), np.ones((3, 1)), n_steps=10
    )
    assert response.shape == (3, 1)
    assert response[:, 0] == pytest.approx([10.0, 10.0 + (1 - 0.5**10) / 0.5, 10.0 + 2 * (1 - 0.5**10) + 1.0])
    # direct simulation of dh_{t+1} = J dh_t + b for the full system
    h = np.zeros(3)
    for _ in range(10):
        h = np.diag(eigenvalues) @ h + np.ones(3)
    assert response[-1, 0] == pytest.approx(h.sum())


def test_linear_response_of_a_rotated_nonnormal_system_matches_simulation():
    rng = np.random.default_rng(3)
    jacobian = 0.3 * rng.standard_normal((4, 4))
    eigenvalues, right = np.linalg.eig(jacobian)
    order = np.argsort(-np.abs(eigenvalues))
    eigenvalues, right = eigenvalues[order], right[:, order]
    left = np.linalg.inv(right)
    b, readout = rng.standard_normal(4), rng.standard_normal((3, 2))  # LSTM-like: readout sees 3 of 4
    response = linear_response_by_modes(eigenvalues, right, left, b, readout, n_steps=7)
    h = np.zeros(4)
    for _ in range(7):
        h = jacobian @ h + b
    assert response[-1] == pytest.approx(h[:3] @ readout)


# ------------------------------------------------------------------------------------------------
# plotting helpers
# ------------------------------------------------------------------------------------------------
def test_palette_is_fixed_per_architecture_and_distinct():
    colours = [plots.color_of("architecture", a) for a in plots.ARCHITECTURES]
    assert len(set(colours)) == 4
    assert plots.color_of("architecture", "gru") == plots.ARCHITECTURE_COLORS["gru"]
    assert plots.color_of("architecture", "new-arch") == plots.color_of("architecture", "new-arch")


def test_save_panel_writes_pdf_and_png_and_empty_panel_says_so(tmp_path):
    plots.setup_style({"dpi": 50})
    fig, axes = plots.new_figure(2, 1, {"width": 4})
    plots.empty_panel(axes[0, 0])
    plots.embedding_scatter(axes[0, 1], None)
    texts = [t.get_text() for ax in axes[0] for t in ax.texts]
    assert texts == [plots.NO_NETWORKS, plots.NO_NETWORKS]
    plots.save_panel(fig, tmp_path / "a.pdf", tmp_path / "a.png", dpi=50)
    assert (tmp_path / "a.pdf").read_bytes()[:4] == b"%PDF"
    assert (tmp_path / "a.png").read_bytes()[:4] == b"\x89PNG"


def test_pca_projection_recovers_the_dominant_axis():
    rng = np.random.default_rng(0)
    states = np.outer(rng.standard_normal(500), [3.0, 4.0, 0.0]) / 5 + 0.01 * rng.standard_normal((500, 3))
    mean, components, explained = plots.pca_projection(states.reshape(50, 10, 3), 2)
    assert components.shape == (3, 2)
    assert abs(components[:, 0] @ np.array([0.6, 0.8, 0.0])) == pytest.approx(1.0, abs=1e-3)
    assert explained[0] > 0.99


# ------------------------------------------------------------------------------------------------
# panels: what they draw
# ------------------------------------------------------------------------------------------------
def embedding_table(n_per_cell=3):
    import pandas as pd

    arch = np.repeat(plots.ARCHITECTURES, 2 * n_per_cell)
    act = np.tile(np.repeat(["tanh", "relu"], n_per_cell), 4)
    rng = np.random.default_rng(0)
    classes = np.where(np.arange(arch.size) % 4 == 3, 1, 0)  # class 0 modal, class 1 a quarter
    xy = np.stack([classes, 0.5 * classes], 1).astype(float)  # identical scaffolds: identical points
    return pd.DataFrame({"network_id": [f"n{i}" for i in range(arch.size)], "architecture": arch,
                         "activation": act, "class": classes, "class_size": np.bincount(classes)[classes],
                         "x": xy[:, 0] + 0 * rng.random(arch.size), "y": xy[:, 1]})


def test_embedding_scatter_colours_architecture_and_marks_activation():
    table = embedding_table()
    fig, axes = plots.new_figure(1, 1)
    plots.embedding_scatter(axes[0, 0], table, "architecture", "t")
    collections = axes[0, 0].collections
    assert len(collections) == 2  # one scatter per activation (marker)
    assert sum(len(c.get_offsets()) for c in collections) == len(table)
    legend = [t.get_text() for t in axes[0, 0].get_legend().get_texts()]
    assert legend == [*plots.ARCHITECTURES, "relu", "tanh"]


def test_jitter_spreads_identical_scaffolds_around_their_point():
    table = embedding_table()
    xy = np.column_stack([table["x"], table["y"]])
    jittered = plots.jitter_classes(xy, table["class"].to_numpy(), scale=0.2)
    assert len(np.unique(jittered.round(9), axis=0)) == len(table)  # every network visible
    for c in (0, 1):
        rows = table["class"].to_numpy() == c
        assert jittered[rows].mean(0) == pytest.approx(xy[rows][0], abs=0.1)
        assert np.abs(jittered[rows] - xy[rows][0]).max() <= 0.2 + 1e-12


def test_class_counts_bar_stacks_counts_per_architecture():
    table = embedding_table()
    fig, axes = plots.new_figure(1, 1)
    plots.class_counts_bar(axes[0, 0], table)
    heights = {}
    for container in axes[0, 0].containers:
        for bar, name in zip(container, [t.get_text() for t in axes[0, 0].get_xticklabels()]):
            heights[name] = heights.get(name, 0) + bar.get_height()
    assert heights == {a: 6 for a in plots.ARCHITECTURES}
    assert [t.get_text() for t in axes[0, 0].get_legend().get_texts()] == ["modal class", "class 1"]


def test_topology_panel_labels_identical_scaffolds_and_quotes_the_summary(tmp_path):
    from rnnuniv.figures.data import PanelRequest
    from rnnuniv.figures.geometry import panel_topology_mds

    table = embedding_table()
    table.to_csv(tmp_path / "embedding.csv", index=False)
    row = {"claim": "universality: topology does not separate architectures", "statistic_name": "silhouette*",
           "statistic": 0.01, "lower": -0.05, "upper": 0.04, "p": 0.6, "n": 24, "verdict": "held", "reason": "r"}
    (tmp_path / "summary.json").write_text(json.dumps({"tasks": {"cdi": {"claims": [row]}}}))
    request = PanelRequest(task="cdi", inputs={"embedding": str(tmp_path / "embedding.csv"),
                                               "summary": str(tmp_path / "summary.json")})
    fig = panel_topology_mds(request, plots.setup_style({}))
    scatter_ax, bar_ax = fig.axes[:2]
    assert sorted(t.get_text() for t in scatter_ax.texts) == ["18 identical", "6 identical"]
    assert "2 scaffold classes" in scatter_ax.get_title()
    caption = " ".join(t.get_text() for t in fig.texts).replace("\n", " ")
    assert "silhouette* 0.01 [-0.05, 0.04]" in caption and "HELD" in caption
    assert bar_ax.get_title() == "networks per scaffold class"


def test_untrained_panel_states_the_direction_and_interval(tmp_path):
    from rnnuniv.figures.comparisons import panel_untrained
    from rnnuniv.figures.data import PanelRequest

    distance = np.array([[0, 0.2, 0.7, 0.9], [0.2, 0, 0.95, 0.8], [0.7, 0.95, 0, 0.5], [0.9, 0.8, 0.5, 0]])
    np.save(tmp_path / "d.npy", distance)
    (tmp_path / "i.csv").write_text("network_id,trained,activation\na,True,tanh\nb,True,relu\n"
                                    "c,False,tanh\nd,False,relu\n")
    row = {"claim": "figure 4: trained vs untrained", "statistic_name": "median difference", "statistic": -0.55,
           "lower": -0.6, "upper": -0.5, "p": 0.9, "n": 4, "verdict": "not held", "reason": ""}
    (tmp_path / "s.json").write_text(json.dumps({"tasks": {"cdi": {"claims": [row]}}}))
    request = PanelRequest(tasks=("cdi",), inputs={"cdi_distance": str(tmp_path / "d.npy"),
                                                   "cdi_index": str(tmp_path / "i.csv"),
                                                   "summary": str(tmp_path / "s.json")})
    fig = panel_untrained(request, plots.setup_style({}))
    ax = fig.axes[0]
    assert ax.get_title() == "cdi: d = -0.55 [-0.60, -0.50]"
    assert len(ax.lines) >= 2  # the two medians of the claim's pair groups
    caption = " ".join(t.get_text() for t in fig.texts).replace("\n", " ")
    assert "exceeds" in caption and "cdi: not held" in caption


# ------------------------------------------------------------------------------------------------
# the tiny workflow
# ------------------------------------------------------------------------------------------------
FIGURE_PANELS = {
    "fig1_flipflop": "abcdef",
    "fig2_sine": "abcde",
    "fig3_cdi": "abcdef",
    "fig4_untrained": "a",
    "figS_loss": "a",
    "figS_metrics": "abc",
}


def test_every_figure_panel_summary_and_embedding_exists(tiny_workflow):
    results = tiny_workflow / "results"
    for figure, panels in FIGURE_PANELS.items():
        for panel in panels:
            for ext in ("pdf", "png"):
                path = results / "figures" / figure / f"{panel}.{ext}"
                assert path.is_file() and path.stat().st_size > 1000, path
    summary = json.loads((results / "summary.json").read_text())
    assert set(summary["tasks"]) == {"flipflop", "sine", "cdi"}
    for entry in summary["tasks"].values():
        assert {"cca", "topology"} <= set(entry["silhouettes"])
        claims = {row["claim"]: row for row in entry["claims"]}
        assert any(c.startswith("individuality") for c in claims)
        assert any(c.startswith("figure 4") for c in claims)
        for row in entry["claims"]:
            assert row["verdict"] in ("held", "not held", "inconclusive", "not available")
    markdown = (results / "summary.md").read_text()
    assert "## flipflop" in markdown and "| claim |" in markdown
    for task in ("flipflop", "sine", "cdi"):
        for space in ("cca", "topology"):
            header = (results / task / "embedding" / f"{space}.csv").read_text().splitlines()[0]
            assert header.startswith("network_id") and header.endswith("class,class_size,x,y")


def test_report_is_built_with_every_figure(tiny_workflow):
    from conftest import run_snakemake

    result = run_snakemake(
        tiny_workflow, "--configfile", "tests/data/tiny.yaml", "--report", "results/report.html"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = tiny_workflow / "results" / "report.html"
    assert report.is_file() and report.stat().st_size > 10_000
