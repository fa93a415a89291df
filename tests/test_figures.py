"""The headline numbers (rnnuniv.summary) on constructed matrices, the plotting helpers, and the
figures/summary/report of the tiny workflow."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from rnnuniv import plots
from rnnuniv.summary import (
    finite_subset,
    linear_response_by_modes,
    separation,
    to_markdown,
    universality_verdict,
    untrained_comparison,
)


def clustered_distance(group_sizes, within=0.1, between=1.0, seed=0):
    """Euclidean distances of points in well-separated clusters: groups g at g * between."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(len(group_sizes)), group_sizes)
    points = np.stack([labels * between, np.zeros(len(labels))], 1) + within * rng.standard_normal((len(labels), 2))
    distance = np.linalg.norm(points[:, None] - points[None], axis=-1)
    return distance, labels


# ------------------------------------------------------------------------------------------------
# separation / silhouette
# ------------------------------------------------------------------------------------------------
def test_separated_clusters_have_high_silhouette_and_low_within_between_ratio():
    distance, labels = clustered_distance([5, 5, 5], within=0.02, between=1.0)
    numbers = separation(distance, {"architecture": labels})
    arch = numbers["architecture"]
    assert numbers["n_networks"] == 15 and arch["n_groups"] == 3
    assert arch["silhouette"] > 0.9
    assert arch["ratio"] < 0.1
    assert arch["mean_between"] == pytest.approx(
        np.mean([distance[i, j] for i in range(15) for j in range(15) if labels[i] != labels[j]])
    )


def test_random_labels_on_one_cluster_give_silhouette_near_zero():
    rng = np.random.default_rng(1)
    points = rng.standard_normal((200, 3))
    distance = np.linalg.norm(points[:, None] - points[None], axis=-1)
    labels = rng.integers(0, 4, 200)
    numbers = separation(distance, {"architecture": labels})
    assert abs(numbers["architecture"]["silhouette"]) < 0.05
    assert numbers["architecture"]["ratio"] == pytest.approx(1.0, abs=0.05)


def test_silhouette_of_two_point_clusters_matches_hand_computation():
    # groups {0, 1} and {2, 3}: a = 1 for every point, b = mean distance to the other group
    distance = np.array([[0, 1, 4, 6], [1, 0, 4, 6], [4, 4, 0, 1], [6, 6, 1, 0]], dtype=float)
    numbers = separation(distance, {"architecture": np.array(["a", "a", "b", "b"])})
    expected = np.mean([(5 - 1) / 5, (5 - 1) / 5, (4 - 1) / 4, (6 - 1) / 6])
    assert numbers["architecture"]["silhouette"] == pytest.approx(expected)
    assert numbers["architecture"]["mean_within"] == pytest.approx(1.0)
    assert numbers["architecture"]["mean_between"] == pytest.approx(5.0)


def test_non_finite_rows_are_dropped_before_the_numbers():
    distance, labels = clustered_distance([4, 4], within=0.02)
    distance[2, :] = distance[:, 2] = np.nan
    distance[2, 2] = np.nan
    keep = finite_subset(distance)
    assert keep.tolist() == [True, True, False] + [True] * 5
    numbers = separation(distance, {"architecture": labels})
    assert numbers["n_networks"] == 7 and numbers["n_dropped_nonfinite"] == 1
    assert numbers["architecture"]["silhouette"] > 0.9


def test_empty_and_single_label_matrices_give_nan_not_errors():
    empty = separation(np.zeros((0, 0)), {"architecture": np.array([], dtype=str)})
    assert empty["n_networks"] == 0 and math.isnan(empty["architecture"]["silhouette"])
    one_label = separation(np.ones((3, 3)) - np.eye(3), {"architecture": np.array(["gru"] * 3)})
    assert math.isnan(one_label["architecture"]["silhouette"])
    assert math.isnan(one_label["architecture"]["mean_between"])


# ------------------------------------------------------------------------------------------------
# verdict
# ------------------------------------------------------------------------------------------------
def test_verdict_held_only_when_geometry_separates_and_topology_does_not():
    assert universality_verdict(0.6, 0.02)["status"] == "held"
    assert universality_verdict(0.6, 0.5)["status"] == "not held"
    assert universality_verdict(0.1, -0.1)["status"] == "not held"
    assert universality_verdict(0.25, 0.0999, separated=0.25, mixed=0.1)["status"] == "held"
    undetermined = universality_verdict(float("nan"), 0.0)
    assert undetermined["status"] == "undetermined"
    reason = universality_verdict(0.6, 0.5, separated=0.3, mixed=0.05)["reason"]
    assert "0.60 >= 0.3" in reason and "0.50 >= 0.05" in reason
    with pytest.raises(ValueError):
        universality_verdict(0.5, 0.0, separated=0.1, mixed=0.2)


def test_summary_markdown_states_verdict_and_thresholds():
    distance, labels = clustered_distance([3, 3], within=0.02)
    spaces = {"cca": separation(distance, {"architecture": labels, "activation": labels % 1})}
    summary = {
        "thresholds": {"separated": 0.25, "mixed": 0.1},
        "tasks": {"flipflop": {"verdict": universality_verdict(0.9, 0.0), "spaces": spaces}},
    }
    text = to_markdown(summary)
    assert "## flipflop" in text and "Claim held" in text and ">= 0.25" in text
    assert "| cca | 6 |" in text


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
        assert entry["verdict"]["status"] in ("held", "not held", "undetermined")
        assert {"cca", "topology"} <= set(entry["spaces"])
    markdown = (results / "summary.md").read_text()
    assert "## flipflop" in markdown and "Claim" in markdown
    for task in ("flipflop", "sine", "cdi"):
        for space in ("cca", "topology"):
            header = (results / task / "embedding" / f"{space}.csv").read_text().splitlines()[0]
            assert header.startswith("network_id") and header.endswith("x,y")


def test_report_is_built_with_every_figure(tiny_workflow):
    from conftest import run_snakemake

    result = run_snakemake(
        tiny_workflow, "--configfile", "tests/data/tiny.yaml", "--report", "results/report.html"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = tiny_workflow / "results" / "report.html"
    assert report.is_file() and report.stat().st_size > 10_000
