"""Fixed points of example networks: the flip-flop scaffold and the sine task's oscillation centres.

- :func:`panel_flipflop_points` (kind ``flipflop_points``): per example network (one per
  architecture), top row: its fixed points in the top two principal components of its probe
  states (grey: probe trajectories), coloured by the number of unstable modes; bottom row: its
  topology graph (nodes coloured the same way, stable nodes labelled by their bit code; grey edges:
  input pulses, magenta: unstable manifolds). Inputs: ``networks``, ``states``, ``fixed_points``,
  ``graphs`` (the example networks' shards).
- :func:`panel_sine_points` (kind ``sine_points``): for the first example network, its fixed
  points in the top two PCs coloured by the command ``x`` of their condition, and their
  eigenvalues in the complex plane; for every kept network, the linearised frequency
  ``|arg lambda| / 2 pi`` against the commanded one. Inputs: ``networks``, ``states`` and
  ``fixed_points`` (example shards), ``fixed_tables`` (every trained shard's fixed-point CSV);
  context ``task_params``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from rnnuniv import io, plots

from .data import (PanelRequest, as_list, example_networks, load_fixed_points, load_graphs, load_states,
                   read_networks, task_of, title_color)

__all__ = ["panel_flipflop_points", "panel_sine_points"]


def _graph_layout(graph):
    import networkx as nx

    simple = nx.Graph(graph.to_undirected()) if graph.number_of_nodes() else nx.Graph()
    if simple.number_of_nodes() <= 2:
        return nx.circular_layout(simple)
    return nx.kamada_kawai_layout(simple)


def _draw_graph(graph_ax, graph) -> None:
    import networkx as nx

    position = _graph_layout(graph)
    n_unstable = [d.get("n_unstable", 0) for _, d in graph.nodes(data=True)]
    edge_colors = [plots.UNSTABLE_EDGE_COLOR if d.get("kind") == "unstable" else "0.55"
                   for *_, d in graph.edges(data=True)]
    nx.draw_networkx_edges(graph, position, ax=graph_ax, edge_color=edge_colors, width=0.6,
                           arrowsize=5, node_size=60, connectionstyle="arc3,rad=0.1")
    nx.draw_networkx_nodes(graph, position, ax=graph_ax, node_size=60,
                           node_color=plots.unstable_color(n_unstable).tolist(), edgecolors="white")
    codes = {v: d["code"] for v, d in graph.nodes(data=True) if d.get("stability") == "stable" and "code" in d}
    nx.draw_networkx_labels(graph, {v: position[v] + np.array([0, 0.18]) for v in codes}, labels=codes,
                            ax=graph_ax, font_size=plt.rcParams["font.size"] - 2)
    graph_ax.set_axis_off()
    graph_ax.set_title(f"{graph.number_of_nodes()} nodes, {graph.number_of_edges()} edges", fontsize="small")


def panel_flipflop_points(request: PanelRequest, options: dict):
    """Fixed points and topology graph of each example flip-flop network (module docstring)."""
    networks = read_networks(request.inputs["networks"])
    examples = example_networks(networks)
    if examples.empty:
        fig, axes = plots.new_figure(1, 1, options)
        plots.empty_panel(axes[0, 0], title="fixed points and topology graph")
        return fig
    states = load_states(request.inputs["states"], examples["network_id"].tolist())
    fixed = load_fixed_points(request.inputs["fixed_points"])
    graphs = load_graphs(request.inputs["graphs"])
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
        title_color(ax, row.architecture, f" ({row.activation})")
        graph = graphs.get(row.network_id)
        if graph is None or graph.number_of_nodes() == 0:
            plots.empty_panel(graph_ax, "no topology graph")
            continue
        _draw_graph(graph_ax, graph)
    plots.unstable_legend(axes[0, -1], loc="upper left", bbox_to_anchor=(1.0, 1.0))
    handles = [Line2D([], [], color="0.55", label="input pulse"),
               Line2D([], [], color=plots.UNSTABLE_EDGE_COLOR, label="unstable manifold")]
    axes[1, -1].legend(handles=handles, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return fig


def _commands(task, fixed: dict) -> np.ndarray:
    """Per condition, the value along the task's condition chain (sine: the command ``x``)."""
    inputs = fixed.get("condition_inputs")
    if inputs is None:
        names = fixed.get("condition_names", np.array([]))
        return np.array([float(n.split("=")[-1]) for n in names])
    return task.condition_chains(inputs)[1]


def panel_sine_points(request: PanelRequest, options: dict):
    """Fixed points, their eigenvalues, and linearised vs commanded frequency (module docstring)."""
    networks = read_networks(request.inputs["networks"])
    examples = example_networks(networks)
    fig, axes = plots.new_figure(3, 1, options, height_per_row=float(options["width"]) / 3 * 1.05)
    if examples.empty:
        for ax in axes[0]:
            plots.empty_panel(ax)
        return fig
    task = task_of(request, "sine")
    fixed = load_fixed_points(request.inputs["fixed_points"])
    commands = _commands(task, fixed)
    example = examples.iloc[0]
    states = load_states(request.inputs["states"], [example.network_id])
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
    title_color(ax_points, example.architecture, ": fixed points")
    ax_eig.set_title("eigenvalues at the fixed points")

    tables = [io.read_csv(p, required_columns=("network_id", "condition", "linearized_frequency"))
              for p in as_list(request.inputs["fixed_tables"])]
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
