#!/usr/bin/env python3
"""Draw one panel of one figure of the study: results/figures/{figure}/{panel}.pdf and .png.

The workflow (rules/figures.smk) names each panel's ``--kind`` of plot, its ``--task`` (or
``--tasks``), its input files (``--inputs``, JSON: name -> path or list of paths) and the figure
options (``--options``, JSON from the config's ``figures:`` section: dpi, width, font_size,
n_trajectories). ``--context`` (JSON) carries what a kind needs from the rest of the config
(task parameters, loss thresholds). A panel whose data are empty (no networks kept) still
produces both files, with an explicit message.

Kinds and their inputs:
  task                 networks, states            probe inputs, targets and example outputs
  trajectories         networks, states            PCA of example hidden-state trajectories
  trajectories_points  + fixed_points              ... with the fixed points (CDI line attractor)
  cca_matrix           distance, index             SVCCA distance matrix sorted by architecture
  cca_mds              embedding, summary          MDS: colour architecture, marker activation;
                                                   caption: the individuality rows of summary.json
  topology_mds         embedding, summary          jittered MDS of scaffold classes + class counts
                                                   per architecture; caption: universality rows
  flipflop_points      networks, states, fixed_points, graphs
                                                   fixed points by unstable modes, and the graph
  sine_points          networks, states, fixed_points, fixed_tables
                                                   fixed points, eigenvalues, linearised frequency
  eigenvalues          networks, fixed_points      sorted |eigenvalues|, mean +/- s.e.m.
  linear_response      networks, fixed_points, weights
                                                   linearised output vs number of modes kept
  untrained            {task}_distance, {task}_index, summary
                                                   figure 4 pair groups, medians, d and interval
  loss                 {task}_networks             final loss histograms
  metrics              embeddings (one per space, named by space)  MDS of every metric

Example:
    python3 scripts/figure.py --figure fig1_flipflop --panel d --kind cca_mds --task flipflop \\
        --inputs '{"embedding": "results/flipflop/embedding/cca.csv"}' --options '{"dpi": 200}' \\
        --pdf results/figures/fig1_flipflop/d.pdf --png results/figures/fig1_flipflop/d.png
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from rnnuniv import io, plots
from rnnuniv.plots_connectivity import PANELS as CONNECTIVITY_PANELS
from rnnuniv.runtime import json_argument
from rnnuniv.summary import as_bool, linear_response_by_modes, untrained_comparison

SPACE_TITLES = {"cca": "SVCCA", "cka": "CKA", "procrustes": "Procrustes", "dsa": "DSA",
                "topology": "topology"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--figure", required=True, help="figure name, e.g. fig1_flipflop")
    parser.add_argument("--panel", required=True, help="panel letter, e.g. c")
    parser.add_argument("--kind", required=True, choices=sorted(KINDS), help="what the panel shows")
    parser.add_argument("--task", default=None, help="task of a single-task panel")
    parser.add_argument("--tasks", nargs="*", default=(), help="tasks of a multi-task panel")
    parser.add_argument("--inputs", type=json_argument, required=True, help="JSON: name -> path(s)")
    parser.add_argument("--options", type=json_argument, default={}, help="JSON: figure options")
    parser.add_argument("--context", type=json_argument, default={},
                        help="JSON: task_params, loss_thresholds, ...")
    parser.add_argument("--pdf", required=True, help="output PDF")
    parser.add_argument("--png", required=True, help="output PNG")
    return parser.parse_args(argv)


# ---------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------
def _as_list(value) -> list[str]:
    return [value] if isinstance(value, str) else list(value or [])


def read_networks(path) -> pd.DataFrame:
    table = io.read_csv(path, required_columns=("network_id", "architecture", "status"))
    table["network_id"] = table["network_id"].astype(str)
    return table


def example_networks(networks: pd.DataFrame, per_architecture: int = 1) -> pd.DataFrame:
    """The first ``per_architecture`` kept networks of each architecture, in palette order."""
    kept = networks[networks["status"].astype(str) == "kept"]
    rank = kept["architecture"].map(lambda a: plots.ARCHITECTURES.index(a) if a in plots.ARCHITECTURES else 99)
    kept = kept.assign(_rank=rank).sort_values("_rank", kind="stable")
    return kept.groupby("architecture", sort=False).head(per_architecture).drop(columns="_rank")


def load_states(paths, wanted: list[str]) -> dict:
    """Probe inputs/conditions (from the first file) and, per wanted network, hidden [K, T, n],
    outputs [K, T, p]; only the shards that hold a wanted network are read beyond the first."""
    paths = _as_list(paths)
    result = {"hidden": {}, "outputs": {}}
    for number, path in enumerate(paths):
        arrays = io.load_npz(path, required=("network_ids", "hidden", "outputs", "inputs"))
        if number == 0:
            result["inputs"] = arrays["inputs"]
            result["conditions"] = {k[len("condition_"):]: v for k, v in arrays.items() if k.startswith("condition_")}
        ids = arrays["network_ids"].astype(str).tolist()
        for i, network_id in enumerate(ids):
            if network_id in wanted:
                result["hidden"][network_id] = arrays["hidden"][i]
                result["outputs"][network_id] = arrays["outputs"][i]
    return result


def load_fixed_points(paths) -> dict:
    """network_id -> per-point arrays of that network, plus "condition_names"/"condition_inputs"."""
    from rnnuniv.fixedpoints import load_shard

    per_network, conditions = {}, {}
    for path in _as_list(paths):
        shard = load_shard(path, required=("condition_index", "points", "q", "eigenvalues", "n_unstable"))
        if shard.condition_names is not None and not conditions:
            conditions = {"condition_names": np.array(shard.condition_names, dtype=str),
                          "condition_inputs": shard.condition_inputs}
        per_network.update((network.network_id, network.arrays()) for network in shard.networks)
    return {"networks": per_network, **conditions}


def load_graphs(paths) -> dict:
    """network_id -> networkx graph, from topology/{shard}.json files."""
    import networkx as nx

    graphs = {}
    for path in _as_list(paths):
        data = io.read_json(path)
        for network_id, record in (data.get("networks") or {}).items():
            graphs[network_id] = nx.node_link_graph(record["graph"], edges="edges")
    return graphs


def make_task(name: str, params: dict):
    from rnnuniv.tasks import make_task as build

    return build(name, **(params or {}))


def _title_color(ax, architecture: str, extra: str = "") -> None:
    ax.set_title(f"{architecture}{extra}", color=plots.color_of("architecture", architecture))


def _condition_colors(task: str, conditions: dict) -> tuple[np.ndarray, str, object]:
    """Per-trial colours for trajectories: (values, colorbar label, colormap name)."""
    if task == "flipflop":
        return conditions.get("final_state", np.zeros(1)), "final state code", "tab10"
    if task == "sine":
        return conditions.get("frequency", np.zeros(1)), "frequency (cycles/step)", "viridis"
    return conditions.get("mean_relevant", np.zeros(1)), "mean of relevant stream", "coolwarm"


# ---------------------------------------------------------------------------------------------
# panels: each returns the figure
# ---------------------------------------------------------------------------------------------
def panel_task(args, options):
    networks = read_networks(args.inputs["networks"])
    examples = example_networks(networks)
    states = load_states(args.inputs["states"], examples["network_id"].tolist())
    inputs = states["inputs"]  # [K, T, m]
    task = make_task(args.task, args.context.get("task_params", {}))
    import torch

    targets = task.targets(torch.as_tensor(inputs)).numpy()  # [K, T, p]
    steps = np.arange(1, inputs.shape[1] + 1)
    if args.task == "flipflop":
        trials = [0]
        n_rows, n_cols = inputs.shape[2], 1
    elif args.task == "sine":
        trials = np.unique(np.linspace(0, inputs.shape[0] - 1, 3).round().astype(int)).tolist()
        n_rows, n_cols = 2, 1
    else:
        context = states["conditions"].get("context", np.ones(inputs.shape[0]))
        relevant = np.abs(states["conditions"].get("mean_relevant", np.zeros(inputs.shape[0])))
        trials = [int(np.flatnonzero(context == c)[np.argmax(relevant[context == c])]) for c in np.unique(context)]
        n_rows, n_cols = 2, len(trials)
    fig, axes = plots.new_figure(n_cols, n_rows, options, height_per_row=1.4 if n_rows > 2 else 1.8)
    examples_present = [r for r in examples.itertuples() if r.network_id in states["outputs"]]

    def outputs_of(trial, channel):
        for row in examples_present:
            yield row.architecture, states["outputs"][row.network_id][trial, :, channel]

    if args.task == "flipflop":
        for bit in range(n_rows):
            ax = axes[bit, 0]
            ax.vlines(steps, 0, inputs[0, :, bit], color="0.6", lw=1.5, label="input pulse")
            ax.plot(steps, targets[0, :, bit], color="black", lw=1.5, ls="--", label="target")
            for architecture, y in outputs_of(0, bit):
                ax.plot(steps, y, color=plots.color_of("architecture", architecture), lw=1, label=architecture)
            ax.set_ylabel(f"bit {bit + 1}")
            low, high = ax.get_ylim()
            ax.set_ylim(min(low, -1.3), max(high, 1.3))
        axes[-1, 0].set_xlabel("time step")
        axes[0, 0].legend(ncol=3 + len(examples_present), frameon=False, loc="lower left",
                          bbox_to_anchor=(0, 1.0))
    elif args.task == "sine":
        import matplotlib.cm as cm

        frequency = states["conditions"].get("frequency", np.zeros(inputs.shape[0]))
        colors = cm.viridis(np.linspace(0.1, 0.9, len(trials)))
        for color, trial in zip(colors, trials):
            axes[0, 0].plot(steps, inputs[trial, :, 0], color=color, label=f"w = {frequency[trial]:.3f}")
            axes[1, 0].plot(steps, targets[trial, :, 0], color=color, ls="--", lw=1.5)
            for architecture, y in outputs_of(trial, 0):
                axes[1, 0].plot(steps, y, color=plots.color_of("architecture", architecture), lw=0.8)
        axes[0, 0].set_ylabel("input command x")
        axes[0, 0].legend(frameon=False, ncol=3, title="frequency (cycles/step)")
        axes[1, 0].set_ylabel("output")
        axes[1, 0].set_xlabel("time step")
        plots.label_legend(axes[1, 0], "architecture", [r.architecture for r in examples_present],
                           loc="upper right", ncol=4)
    else:
        for column, trial in enumerate(trials):
            ax = axes[0, column]
            ax.plot(steps, inputs[trial, :, 0], color="#7f7f7f", lw=0.8, label="stream 1")
            ax.plot(steps, inputs[trial, :, 1], color="#bcbd22", lw=0.8, label="stream 2")
            ax.plot(steps, inputs[trial, :, 2], color="black", lw=1.2, ls=":", label="context 1")
            ax.plot(steps, inputs[trial, :, 3], color="black", lw=1.2, ls="-.", label="context 2")
            ax.set_title(f"context {column + 1} trial")
            ax.set_ylabel("input")
            ax = axes[1, column]
            ax.plot(steps, targets[trial, :, 0], color="black", ls="--", lw=1.5, label="target")
            for architecture, y in outputs_of(trial, 0):
                ax.plot(steps, y, color=plots.color_of("architecture", architecture), lw=1, label=architecture)
            ax.set_ylabel("output")
            ax.set_xlabel("time step")
        axes[0, 0].legend(frameon=False, fontsize="small", ncol=2)
        axes[1, 0].legend(frameon=False, fontsize="small")
    if not examples_present:
        axes[0, 0].text(0.99, 0.02, f"{plots.NO_NETWORKS}: targets only", transform=axes[0, 0].transAxes,
                        ha="right", va="bottom", color="0.3")
    return fig


def panel_trajectories(args, options, with_points: bool = False):
    networks = read_networks(args.inputs["networks"])
    examples = example_networks(networks)
    if examples.empty:
        fig, axes = plots.new_figure(1, 1, options)
        plots.empty_panel(axes[0, 0], title="hidden-state trajectories (top 2 PCs)")
        return fig
    states = load_states(args.inputs["states"], examples["network_id"].tolist())
    fixed = load_fixed_points(args.inputs["fixed_points"]) if with_points else None
    values, value_label, cmap = _condition_colors(args.task, states["conditions"])
    n_trials = min(int(options["n_trajectories"]), len(values))
    trials = np.unique(np.linspace(0, len(values) - 1, n_trials).round().astype(int))
    fig, axes = plots.new_figure(len(examples), 1, options)
    from matplotlib.colors import Normalize

    norm = Normalize(vmin=float(np.min(values)), vmax=float(np.max(values)) or 1.0)
    colormap = plt.get_cmap(cmap)
    for ax, row in zip(axes[0], examples.itertuples()):
        hidden = states["hidden"][row.network_id]  # [K, T, n]
        mean, components, explained = plots.pca_projection(hidden, 2)
        projected = (hidden - mean) @ components  # [K, T, 2]
        if projected.shape[-1] < 2:
            projected = np.concatenate([projected, np.zeros_like(projected)], axis=-1)
        for trial in trials:
            ax.plot(projected[trial, :, 0], projected[trial, :, 1], lw=0.7, alpha=0.8,
                    color=colormap(norm(values[trial])))
        ax.scatter(projected[trials, -1, 0], projected[trials, -1, 1], s=6, c="black", zorder=3,
                   label="trial end")
        if fixed is not None and row.network_id in fixed["networks"]:
            points = fixed["networks"][row.network_id]
            n = hidden.shape[-1]
            p = (points["points"][:, :n] - mean) @ components
            if p.shape[0]:
                ax.scatter(p[:, 0], p[:, min(1, p.shape[1] - 1)], s=10,
                           c=plots.unstable_color(points["n_unstable"]), marker="x", zorder=4,
                           label="fixed points", linewidths=0.8)
        ax.legend(frameon=False, loc="best")
        ax.set_xlabel(f"PC 1 ({100 * explained[0]:.0f}%)")
        ax.set_ylabel(f"PC 2 ({100 * explained[min(1, len(explained) - 1)]:.0f}%)")
        _title_color(ax, row.architecture, f" ({row.activation})")
    scalar = plt.cm.ScalarMappable(norm=norm, cmap=colormap)
    fig.colorbar(scalar, ax=list(axes[0]), label=value_label, fraction=0.03, pad=0.02)
    return fig


def panel_cca_matrix(args, options):
    distance = np.load(args.inputs["distance"], allow_pickle=False)
    index = io.read_csv(args.inputs["index"], required_columns=("network_id",))
    fig, axes = plots.new_figure(1, 1, {**options, "width": min(float(options["width"]), 4.5)},
                                 height_per_row=3.6)
    if len(index) == 0:
        plots.empty_panel(axes[0, 0], title="SVCCA distance")
        return fig
    groups = index["architecture"] if "architecture" in index else np.full(len(index), "?")
    plots.distance_heatmap(axes[0, 0], distance, groups)
    axes[0, 0].set_title(f"SVCCA distance, {len(index)} kept networks")
    return fig


def read_summary(args) -> dict | None:
    """results/summary.json when the panel was given it (captions quote its numbers)."""
    path = args.inputs.get("summary")
    return io.read_json(path) if path else None


def claim_line(summary: dict | None, task: str, prefix: str) -> str:
    """'<claim>: <statistic> <value> [<lower>, <upper>], p = .., n = ..: <verdict>' from summary.json."""
    if not summary:
        return ""
    for row in summary.get("tasks", {}).get(task, {}).get("claims", []):
        if row["claim"].startswith(prefix):
            def number(x):
                return "-" if x is None or not np.isfinite(x) else f"{x:.2f}"
            interval = f" [{number(row['lower'])}, {number(row['upper'])}]" if np.isfinite(row["lower"]) else ""
            p = f", p = {row['p']:.3g}" if np.isfinite(row["p"]) else ""
            return (f"{row['claim']}: {row['statistic_name']} {number(row['statistic'])}{interval}{p}, "
                    f"n = {row['n']}: {row['verdict'].upper()}" + (f" ({row['reason']})" if row["reason"] else ""))
    return ""


def _silhouette_title(summary, task, space, title):
    entry = (summary or {}).get("tasks", {}).get(task, {}).get("silhouettes", {}).get(space, {}).get("architecture")
    if not entry:
        return title
    return f"{title}\narchitecture silhouette* {entry['statistic']:.2f} [{entry['lower']:.2f}, {entry['upper']:.2f}]"


def panel_mds(args, options, space: str):
    table = io.read_csv(args.inputs["embedding"], required_columns=("network_id", "x", "y"))
    summary = read_summary(args)
    name = SPACE_TITLES.get(space, space)
    fig, axes = plots.new_figure(1, 1, {**options, "width": min(float(options["width"]), 5.0)},
                                 height_per_row=3.4)
    plots.embedding_scatter(axes[0, 0], table, "architecture",
                            _silhouette_title(summary, args.task, space, f"{name} MDS ({len(table)} networks)"))
    plots.caption_text(fig, " | ".join(filter(None, [
        claim_line(summary, args.task, "individuality: SVCCA geometry separates architectures"),
        claim_line(summary, args.task, "individuality: SVCCA geometry separates activations")])))
    return fig


def panel_cca_mds(args, options):
    return panel_mds(args, options, "cca")


def panel_topology_mds(args, options):
    table = io.read_csv(args.inputs["embedding"], required_columns=("network_id", "x", "y"))
    summary = read_summary(args)
    fig, axes = plots.new_figure(2, 1, options, height_per_row=3.2)
    if len(table) and "class" in table:
        xy = np.column_stack([table["x"], table["y"]])
        span = float(np.ptp(xy, axis=0).max()) if len(table) > 1 else 0.0
        scale = 0.12 * span if span > 0 else 0.5
        xy = plots.jitter_classes(xy, table["class"].to_numpy(), scale=scale)
        n_classes = int(table["class"].nunique())
        title = f"topology MDS: {len(table)} networks, {n_classes} scaffold classes"
        plots.embedding_scatter(axes[0, 0], table, "architecture", _silhouette_title(summary, args.task, "topology", title),
                                xy=xy)
        sizes = table.groupby("class").size()
        for c, size in sizes.items():
            if size > 1:
                centre = table.loc[table["class"] == c, ["x", "y"]].to_numpy().mean(0)
                radius = scale * np.sqrt(size / sizes.max())
                axes[0, 0].annotate(f"{size} identical", (centre[0], centre[1] + radius), xytext=(0, 3),
                                    textcoords="offset points", ha="center", va="bottom", fontsize="small")
    else:
        plots.embedding_scatter(axes[0, 0], table, "architecture", "topology MDS", legend=False)
    plots.class_counts_bar(axes[0, 1], table)
    plots.caption_text(fig, " | ".join(filter(None, [
        claim_line(summary, args.task, "universality: topology does not separate architectures"),
        claim_line(summary, args.task, "universality: same modal scaffold class")])))
    return fig


def _graph_layout(graph):
    import networkx as nx

    simple = nx.Graph(graph.to_undirected()) if graph.number_of_nodes() else nx.Graph()
    if simple.number_of_nodes() <= 2:
        return nx.circular_layout(simple)
    return nx.kamada_kawai_layout(simple)


def panel_flipflop_points(args, options):
    import networkx as nx

    networks = read_networks(args.inputs["networks"])
    examples = example_networks(networks)
    if examples.empty:
        fig, axes = plots.new_figure(1, 1, options)
        plots.empty_panel(axes[0, 0], title="fixed points and topology graph")
        return fig
    ids = examples["network_id"].tolist()
    states = load_states(args.inputs["states"], ids)
    fixed = load_fixed_points(args.inputs["fixed_points"])
    graphs = load_graphs(args.inputs["graphs"])
    fig, axes = plots.new_figure(len(examples), 2, options)
    for column, row in enumerate(examples.itertuples()):
        ax, graph_ax = axes[0, column], axes[1, column]
        hidden = states["hidden"].get(row.network_id)
        points = fixed["networks"].get(row.network_id)
        if hidden is None or points is None or points["points"].shape[0] == 0:
            plots.empty_panel(ax, "no fixed points found")
        else:
            mean, components, explained = plots.pca_projection(hidden, 2)
            projected = (hidden - mean) @ components
            for trial in range(min(int(options["n_trajectories"]), hidden.shape[0])):
                ax.plot(projected[trial, :, 0], projected[trial, :, -1], color="0.8", lw=0.4, zorder=1)
            p = (points["points"][:, : hidden.shape[-1]] - mean) @ components
            order = np.argsort(points["n_unstable"])  # saddles on top of attractors
            ax.scatter(p[order, 0], p[order, -1], c=plots.unstable_color(points["n_unstable"][order]),
                       s=14, zorder=3, edgecolors="white", linewidths=0.3)
            ax.set_xlabel("PC 1")
            ax.set_ylabel("PC 2")
        _title_color(ax, row.architecture, f" ({row.activation})")
        graph = graphs.get(row.network_id)
        if graph is None or graph.number_of_nodes() == 0:
            plots.empty_panel(graph_ax, "no topology graph")
            continue
        position = _graph_layout(graph)
        n_unstable = [d.get("n_unstable", 0) for _, d in graph.nodes(data=True)]
        edge_colors = [plots.UNSTABLE_EDGE_COLOR if d.get("kind") == "unstable" else "0.55" for *_, d in graph.edges(data=True)]
        nx.draw_networkx_edges(graph, position, ax=graph_ax, edge_color=edge_colors, width=0.6,
                               arrowsize=5, node_size=60, connectionstyle="arc3,rad=0.1")
        nx.draw_networkx_nodes(graph, position, ax=graph_ax, node_size=60,
                               node_color=plots.unstable_color(n_unstable).tolist(), edgecolors="white")
        codes = {v: d["code"] for v, d in graph.nodes(data=True) if d.get("stability") == "stable" and "code" in d}
        nx.draw_networkx_labels(graph, {v: position[v] + np.array([0, 0.18]) for v in codes}, labels=codes,
                                ax=graph_ax, font_size=plt.rcParams["font.size"] - 2)
        graph_ax.set_axis_off()
        graph_ax.set_title(f"{graph.number_of_nodes()} nodes, {graph.number_of_edges()} edges", fontsize="small")
    plots.unstable_legend(axes[0, -1], loc="upper left", bbox_to_anchor=(1.0, 1.0))
    handles = [Line2D([], [], color="0.55", label="input pulse"),
               Line2D([], [], color=plots.UNSTABLE_EDGE_COLOR, label="unstable manifold")]
    axes[1, -1].legend(handles=handles, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def _condition_values(fixed: dict, task: str) -> np.ndarray:
    """Per condition, the command x (sine) read from the condition inputs [C, m]."""
    inputs = fixed.get("condition_inputs")
    if inputs is None:
        names = fixed.get("condition_names", np.array([]))
        return np.array([float(n.split("=")[-1]) for n in names])
    return np.asarray(inputs)[:, 0]


def panel_sine_points(args, options):
    networks = read_networks(args.inputs["networks"])
    examples = example_networks(networks)
    fig, axes = plots.new_figure(3, 1, options, height_per_row=float(options["width"]) / 3 * 1.05)
    if examples.empty:
        for ax in axes[0]:
            plots.empty_panel(ax)
        return fig
    task = make_task("sine", args.context.get("task_params", {}))
    fixed = load_fixed_points(args.inputs["fixed_points"])
    commands = _condition_values(fixed, "sine")
    example = examples.iloc[0]
    states = load_states(args.inputs["states"], [example.network_id])
    colormap = plt.get_cmap("viridis")
    norm = plt.Normalize(0.0, 1.0)
    points = fixed["networks"].get(example.network_id)
    hidden = states["hidden"].get(example.network_id)
    ax_points, ax_eig, ax_freq = axes[0]
    if points is None or hidden is None or points["points"].shape[0] == 0:
        plots.empty_panel(ax_points, "no fixed points found")
        plots.empty_panel(ax_eig, "no fixed points found")
    else:
        mean, components, _ = plots.pca_projection(hidden, 2)
        projected = (hidden - mean) @ components
        for trial in np.linspace(0, hidden.shape[0] - 1, 6).round().astype(int):
            ax_points.plot(projected[trial, :, 0], projected[trial, :, -1], lw=0.5, alpha=0.6,
                           color=colormap(norm(trial / max(hidden.shape[0] - 1, 1))))
        p = (points["points"][:, : hidden.shape[-1]] - mean) @ components
        x = commands[points["condition_index"]]
        ax_points.scatter(p[:, 0], p[:, -1], c=colormap(norm(x)), s=14, marker="x", linewidths=0.9, zorder=3)
        ax_points.set_xlabel("PC 1")
        ax_points.set_ylabel("PC 2")
        theta = np.linspace(0, 2 * np.pi, 200)
        ax_eig.plot(np.cos(theta), np.sin(theta), color="0.4", lw=0.8, ls="--", label="unit circle")
        eigenvalues = points["eigenvalues"]  # [P, S]
        ax_eig.scatter(eigenvalues.real.ravel(), eigenvalues.imag.ravel(),
                       c=colormap(norm(np.repeat(x, eigenvalues.shape[1]))), s=5, alpha=0.7)
        ax_eig.set_aspect("equal")
        ax_eig.set_xlabel("Re $\\lambda$")
        ax_eig.set_ylabel("Im $\\lambda$")
        ax_eig.legend(frameon=False, loc="lower left")
        fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=colormap), ax=ax_eig, label="input command x",
                     fraction=0.046, pad=0.04)
    _title_color(ax_points, example.architecture, ": fixed points")
    ax_eig.set_title("eigenvalues at the fixed points")

    tables = [io.read_csv(p, required_columns=("network_id", "condition", "linearized_frequency"))
              for p in _as_list(args.inputs["fixed_tables"])]
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    names = list(fixed.get("condition_names", []))
    if table.empty or not names:
        plots.empty_panel(ax_freq, "no fixed points found")
        return fig
    table = table[table["condition"].astype(str).isin(names)]
    x = commands[[names.index(c) for c in table["condition"].astype(str)]]
    commanded = task.frequency(x)
    architecture = table["network_id"].map(networks.set_index("network_id")["architecture"]).astype(str)
    for name in architecture.unique():
        rows = (architecture == name).to_numpy()
        ax_freq.scatter(commanded[rows], table["linearized_frequency"].to_numpy()[rows], s=8, alpha=0.6,
                        color=plots.color_of("architecture", name), label=name)
    limits = [task.w_min * 0.9, task.w_max * 1.1]
    ax_freq.plot(limits, limits, color="black", lw=0.8, ls="--", label="identity")
    ax_freq.set_xlabel("commanded frequency (cycles/step)")
    ax_freq.set_ylabel("linearised frequency (cycles/step)")
    ax_freq.set_title("linearised vs commanded")
    ax_freq.legend(frameon=False, fontsize="small")
    return fig


def _reference_point(points: dict, condition_inputs) -> int | None:
    """Index of the lowest-q point at the condition with the weakest stream input (CDI context 1)."""
    if points["q"].shape[0] == 0:
        return None
    if condition_inputs is None:
        return int(np.argmin(points["q"]))
    strength = np.abs(np.asarray(condition_inputs)[:, :2]).sum(1)
    context_one = np.asarray(condition_inputs)[:, 2] > 0.5 if np.asarray(condition_inputs).shape[1] > 2 else True
    preferred = np.flatnonzero((strength == strength[context_one].min()) & context_one)
    candidates = np.flatnonzero(np.isin(points["condition_index"], preferred))
    if candidates.size == 0:
        candidates = np.arange(points["q"].shape[0])
    return int(candidates[np.argmin(points["q"][candidates])])


def _mean_sem_lines(ax, curves: dict[str, list[np.ndarray]], x_offset: int = 1) -> None:
    """Mean +/- standard error over networks of per-architecture curves (truncated to the shortest)."""
    for name in sorted(curves, key=lambda a: plots.ARCHITECTURES.index(a) if a in plots.ARCHITECTURES else 99):
        length = min(len(c) for c in curves[name])
        stack = np.stack([c[:length] for c in curves[name]])
        mean = stack.mean(0)
        sem = stack.std(0, ddof=1) / np.sqrt(len(stack)) if len(stack) > 1 else np.zeros_like(mean)
        x = np.arange(x_offset, length + x_offset)
        color = plots.color_of("architecture", name)
        ax.plot(x, mean, color=color, marker="o", ms=2.5, lw=1, label=f"{name} (n={len(stack)})")
        ax.fill_between(x, mean - sem, mean + sem, color=color, alpha=0.25, lw=0)


def _mean_sem_figure(curves, options, empty_title: str, xlabel: str, ylabel: str, title: str):
    """A small one-axis panel of per-architecture mean +/- s.e.m. curves with a reference line at 1."""
    fig, axes = plots.new_figure(1, 1, {**options, "width": min(float(options["width"]), 4.0)},
                                 height_per_row=3.0)
    ax = axes[0, 0]
    if not curves:
        plots.empty_panel(ax, title=empty_title)
        return fig
    _mean_sem_lines(ax, curves)
    ax.axhline(1.0, color="black", lw=0.7, ls="--")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(frameon=False)
    return fig


def panel_eigenvalues(args, options):
    networks = read_networks(args.inputs["networks"])
    fixed = load_fixed_points(args.inputs["fixed_points"])
    architecture = networks.set_index("network_id")["architecture"].astype(str)
    curves: dict[str, list[np.ndarray]] = {}
    for network_id, points in fixed["networks"].items():
        reference = _reference_point(points, fixed.get("condition_inputs"))
        if reference is not None:
            modulus = np.sort(np.abs(points["eigenvalues"][reference]))[::-1]
            curves.setdefault(architecture.get(network_id, "?"), []).append(modulus)
    return _mean_sem_figure(
        curves, options, empty_title="eigenvalue spectrum at the fixed point",
        xlabel="eigenvalue rank", ylabel="|$\\lambda$|  (mean $\\pm$ s.e.m.)",
        title="sorted eigenvalues at the fixed point",
    )


def panel_linear_response(args, options):
    networks = read_networks(args.inputs["networks"])
    fixed = load_fixed_points(args.inputs["fixed_points"])
    architecture = networks.set_index("network_id")["architecture"].astype(str)
    n_steps = int(args.context.get("task_params", {}).get("n_steps", 30))
    readouts = {}
    for path in _as_list(args.inputs["weights"]):
        params, meta = io.load_weights(path)
        for i, network_id in enumerate(meta.get("network_ids", [])):
            readouts[network_id] = params["w_out"][i].double().numpy()
    curves: dict[str, list[np.ndarray]] = {}
    condition_inputs = fixed.get("condition_inputs")
    required = ("right_eigenvectors", "left_eigenvectors", "input_jacobians")
    for network_id, points in fixed["networks"].items():
        reference = _reference_point(points, condition_inputs)
        if reference is None or network_id not in readouts or not all(k in points for k in required):
            continue
        condition = condition_inputs[points["condition_index"][reference]] if condition_inputs is not None else None
        channel = int(np.argmax(condition[2:4])) if condition is not None and len(condition) >= 4 else 0
        response = linear_response_by_modes(
            points["eigenvalues"][reference], points["right_eigenvectors"][reference],
            points["left_eigenvectors"][reference], points["input_jacobians"][reference][:, channel],
            readouts[network_id], n_steps,
        )[:, 0]
        if np.abs(response[-1]) > 1e-12:
            curves.setdefault(architecture.get(network_id, "?"), []).append(response / response[-1])
    return _mean_sem_figure(
        curves, options, empty_title="linearised response vs modes kept",
        xlabel="number of modes kept",
        ylabel=f"output after {n_steps} steps of unit input\n(fraction of all stored modes)",
        title="linearised dynamics, relevant input",
    )


PAIR_LABELS = {
    "trained_other_activation": "trained, other activation",
    "trained_untrained_same_activation": "trained vs untrained, same act.",
    "trained_same_activation": "trained, same activation (reference)",
}


def panel_untrained(args, options):
    """Figure 4: the two pair groups of the paper's claim (and a reference group), with medians.

    Paper: SVCCA similarity trained vs untrained (same activation) can exceed that of trained
    networks of other activations. Title: d = median(T-U same) - median(T-T other) and its interval.
    """
    summary = read_summary(args)
    fig, axes = plots.new_figure(len(args.tasks), 1, options,
                                 height_per_row=min(float(options["width"]) / len(args.tasks), 3.0))
    bins = np.linspace(0, 1, 26)
    lines = []
    for ax, task in zip(axes[0], args.tasks):
        distance = np.load(args.inputs[f"{task}_distance"], allow_pickle=False)
        index = io.read_csv(args.inputs[f"{task}_index"], required_columns=("network_id",))
        trained = as_bool(index["trained"]) if "trained" in index else np.ones(len(index), dtype=bool)
        activation = index["activation"].to_numpy() if "activation" in index else np.full(len(index), "?")
        groups = untrained_comparison(distance, trained, activation)
        if not any(v.size for v in groups.values()):
            plots.empty_panel(ax, "no network pairs", title=task)
            continue
        for name, values in groups.items():
            color = plots.PAIR_COLORS[name]
            if values.size:
                ax.hist(values, bins=bins, density=True, histtype="step", lw=1.4, color=color,
                        ls=":" if name == "trained_same_activation" else "-",
                        label=f"{PAIR_LABELS[name]} ({values.size})")
                if name != "trained_same_activation":
                    ax.axvline(np.median(values), color=color, lw=1.0, ls="--")
            else:
                ax.plot([], [], color=color, label=f"{PAIR_LABELS[name]} (none)")
        ax.set_xlim(0, 1)
        ax.set_ylim(0, ax.get_ylim()[1] * 1.7)  # headroom for the legend
        ax.set_xlabel("SVCCA similarity (dashed: medians)")
        ax.set_ylabel("density")
        line = claim_line(summary, task, "figure 4")
        row = next((r for r in (summary or {}).get("tasks", {}).get(task, {}).get("claims", [])
                    if r["claim"].startswith("figure 4")), None)
        ax.set_title(task if row is None or not np.isfinite(row["statistic"]) else
                     f"{task}: d = {row['statistic']:.2f} [{row['lower']:.2f}, {row['upper']:.2f}]")
        if line:
            lines.append(f"{task}: {row['verdict']}")
        ax.legend(frameon=False, fontsize="x-small", loc="upper left", title="pairs (count)",
                  title_fontsize="x-small")
    plots.caption_text(fig, "Paper's claim: similarity of a trained network to an untrained one of the same "
                       "activation exceeds that of trained networks of other activations; d = median(trained vs "
                       "untrained, same act.) - median(trained, other act.) > 0. " + "; ".join(lines))
    return fig


def panel_loss(args, options):
    fig, axes = plots.new_figure(len(args.tasks), 1, options)
    thresholds = args.context.get("loss_thresholds", {})
    for ax, task in zip(axes[0], args.tasks):
        networks = read_networks(args.inputs[f"{task}_networks"])
        trained = networks[as_bool(networks["trained"])] if "trained" in networks else networks
        loss = pd.to_numeric(trained.get("normalised_error"), errors="coerce")  # MSE / Var(target)
        finite = np.isfinite(loss) & (loss > 0)
        if not finite.any():
            plots.empty_panel(ax, "no trained networks with a finite loss", title=task)
            continue
        values = loss[finite]
        bins = np.logspace(np.log10(values.min()) - 0.05, np.log10(values.max()) + 0.05, 21)
        architectures = trained["architecture"][finite].astype(str)
        for name in [a for a in plots.ARCHITECTURES if a in set(architectures)] + sorted(
                set(architectures) - set(plots.ARCHITECTURES)):
            ax.hist(values[architectures == name], bins=bins, histtype="step", lw=1.3,
                    color=plots.color_of("architecture", name), label=name)
        if task in thresholds:
            ax.axvline(thresholds[task], color="black", ls="--", lw=0.8, label="keep threshold")
        n_diverged = int((~finite).sum())
        ax.set_xscale("log")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("normalised validation error (MSE / Var(target))")
        ax.set_ylabel("networks")
        ax.set_title(task + (f" ({n_diverged} diverged)" if n_diverged else ""))
    axes[0, 0].legend(frameon=False, fontsize="small")
    return fig


def panel_metrics(args, options):
    spaces = [sp for sp in SPACE_TITLES if sp in args.inputs] + [
        sp for sp in args.inputs if sp not in SPACE_TITLES and sp != "summary"]
    summary = read_summary(args)
    fig, axes = plots.new_figure(len(spaces), 1, options)
    for ax, space in zip(axes[0], spaces):
        table = io.read_csv(args.inputs[space], required_columns=("network_id", "x", "y"))
        plots.embedding_scatter(ax, table, "architecture",
                                _silhouette_title(summary, args.task, space, f"{SPACE_TITLES.get(space, space)} MDS"),
                                legend=ax is axes[0, -1])
    return fig


KINDS = {
    "task": panel_task,
    "trajectories": panel_trajectories,
    "trajectories_points": lambda args, options: panel_trajectories(args, options, with_points=True),
    "cca_matrix": panel_cca_matrix,
    "cca_mds": panel_cca_mds,
    "topology_mds": panel_topology_mds,
    "flipflop_points": panel_flipflop_points,
    "sine_points": panel_sine_points,
    "eigenvalues": panel_eigenvalues,
    "linear_response": panel_linear_response,
    "untrained": panel_untrained,
    "loss": panel_loss,
    "metrics": panel_metrics,
    **CONNECTIVITY_PANELS,  # figC1-figC3 (rnnuniv.plots_connectivity documents their inputs)
}


def main(argv=None) -> int:
    args = parse_args(argv)
    log = io.setup_logging()
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # PDF font subsetting is chatty
    options = plots.setup_style(args.options)
    fig = KINDS[args.kind](args, options)
    title = f"{args.figure} {args.panel}" + (f" ({args.task})" if args.task else "")
    plots.save_panel(fig, args.pdf, args.png, dpi=int(options["dpi"]), title=title)
    log.info("wrote %s and %s", args.pdf, Path(args.png).name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
