"""Example-network panels over probe trials: the task itself, and hidden-state trajectories.

- :func:`panel_task` (kind ``task``): probe inputs (channels named by the task's
  ``input_channels``), targets and the outputs of one example network per architecture.
  Flip-flop: one row per bit, trial 0. Sine: command and output of three trials across the command
  grid. CDI: per context (``task.context_of``), the trial of largest relevant mean, its four input
  channels and output. Any other task: trial 0's inputs and outputs. Inputs: ``networks``,
  ``states`` (the example networks' shards); context ``task_params``.
- :func:`panel_trajectories` (kinds ``trajectories`` and ``trajectories_points``): per example
  network, its probe trajectories in the top two principal components, coloured by a probe
  condition, with the trial ends and (``trajectories_points``) the fixed points, coloured by their
  number of unstable modes. Inputs: ``networks``, ``states`` (+ ``fixed_points``).
"""

from __future__ import annotations

import matplotlib.cm as cm
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import Normalize

from rnnuniv import plots

from .data import PanelRequest, example_networks, load_fixed_points, load_states, read_networks, task_of, title_color

__all__ = ["panel_task", "panel_trajectories", "panel_trajectories_points"]


def _condition_colors(task, conditions: dict, n_trials: int) -> tuple[np.ndarray, str, str]:
    """Per-trial colours for trajectories: (values, colorbar label, colormap name), from the probe
    condition the task names (``Task.trial_label``); the trial number for a task that names none."""
    if task.trial_label is not None and task.trial_label[0] in conditions:
        key, label, cmap = task.trial_label
        return np.asarray(conditions[key]), label, cmap
    return np.arange(n_trials, dtype=float), "probe trial", "viridis"


def _flipflop_rows(axes, task, steps, inputs, targets, outputs_of, n_examples):
    for name, bit in task.input_channels.items():
        ax = axes[bit, 0]
        ax.vlines(steps, 0, inputs[0, :, bit], color="0.6", lw=1.5, label="input pulse")
        ax.plot(steps, targets[0, :, bit], color="black", lw=1.5, ls="--", label="target")
        for architecture, y in outputs_of(0, bit):
            ax.plot(steps, y, color=plots.color_of("architecture", architecture), lw=1, label=architecture)
        ax.set_ylabel(name)
        low, high = ax.get_ylim()
        ax.set_ylim(min(low, -1.3), max(high, 1.3))
    axes[-1, 0].set_xlabel("time step")
    axes[0, 0].legend(ncol=3 + n_examples, frameon=False, loc="lower left", bbox_to_anchor=(0, 1.0))


def _sine_rows(axes, task, steps, inputs, targets, outputs_of, trials, conditions, architectures):
    command = task.input_channels["command"]
    frequency = conditions.get("frequency", np.zeros(inputs.shape[0]))
    colors = cm.viridis(np.linspace(0.1, 0.9, len(trials)))
    for color, trial in zip(colors, trials):
        axes[0, 0].plot(steps, inputs[trial, :, command], color=color, label=f"w = {frequency[trial]:.3f}")
        axes[1, 0].plot(steps, targets[trial, :, 0], color=color, ls="--", lw=1.5)
        for architecture, y in outputs_of(trial, 0):
            axes[1, 0].plot(steps, y, color=plots.color_of("architecture", architecture), lw=0.8)
    axes[0, 0].set_ylabel("input command x")
    axes[0, 0].legend(frameon=False, ncol=3, title="frequency (cycles/step)")
    axes[1, 0].set_ylabel("output")
    axes[1, 0].set_xlabel("time step")
    plots.label_legend(axes[1, 0], "architecture", architectures, loc="upper right", ncol=4)


# CDI input channels as drawn: (colour, line width, line style)
CDI_STYLES = {"stream 1": ("#7f7f7f", 0.8, "-"), "stream 2": ("#bcbd22", 0.8, "-"),
              "context 1": ("black", 1.2, ":"), "context 2": ("black", 1.2, "-.")}


def _columns(axes, task, steps, inputs, targets, outputs_of, trials, styles):
    """One column per trial: its input channels (top) and its output against the target (bottom)."""
    for column, trial in enumerate(trials):
        ax = axes[0, column]
        for name, channel in task.input_channels.items():
            color, width, style = styles.get(name, (None, 0.8, "-"))
            ax.plot(steps, inputs[trial, :, channel], color=color, lw=width, ls=style, label=name)
        ax.set_title(f"context {column + 1} trial" if task.n_contexts > 1 else f"trial {trial}")
        ax.set_ylabel("input")
        ax = axes[1, column]
        ax.plot(steps, targets[trial, :, 0], color="black", ls="--", lw=1.5, label="target")
        for architecture, y in outputs_of(trial, 0):
            ax.plot(steps, y, color=plots.color_of("architecture", architecture), lw=1, label=architecture)
        ax.set_ylabel("output")
        ax.set_xlabel("time step")
    axes[0, 0].legend(frameon=False, fontsize="small", ncol=2)
    axes[1, 0].legend(frameon=False, fontsize="small")


def panel_task(request: PanelRequest, options: dict):
    """Probe inputs, targets and example outputs (module docstring)."""
    import torch

    networks = read_networks(request.inputs["networks"])
    examples = example_networks(networks)
    states = load_states(request.inputs["states"], examples["network_id"].tolist())
    inputs = states["inputs"]  # [K, T, m]
    task = task_of(request)
    targets = task.targets(torch.as_tensor(inputs)).numpy()  # [K, T, p]
    steps = np.arange(1, inputs.shape[1] + 1)
    if task.name == "flipflop":
        trials, n_rows, n_cols = [0], inputs.shape[2], 1
    elif task.name == "sine":
        trials = np.unique(np.linspace(0, inputs.shape[0] - 1, 3).round().astype(int)).tolist()
        n_rows, n_cols = 2, 1
    elif task.name == "cdi":
        context = task.context_of(inputs)
        relevant = np.abs(states["conditions"].get("mean_relevant", np.zeros(inputs.shape[0])))
        trials = [int(np.flatnonzero(context == c)[np.argmax(relevant[context == c])]) for c in np.unique(context)]
        n_rows, n_cols = 2, len(trials)
    else:
        trials, n_rows, n_cols = [0], 2, 1
    fig, axes = plots.new_figure(n_cols, n_rows, options, height_per_row=1.4 if n_rows > 2 else 1.8)
    examples_present = [r for r in examples.itertuples() if r.network_id in states["outputs"]]

    def outputs_of(trial, channel):
        for row in examples_present:
            yield row.architecture, states["outputs"][row.network_id][trial, :, channel]

    if task.name == "flipflop":
        _flipflop_rows(axes, task, steps, inputs, targets, outputs_of, len(examples_present))
    elif task.name == "sine":
        _sine_rows(axes, task, steps, inputs, targets, outputs_of, trials, states["conditions"],
                   [r.architecture for r in examples_present])
    else:
        _columns(axes, task, steps, inputs, targets, outputs_of, trials, CDI_STYLES if task.name == "cdi" else {})
    if not examples_present:
        axes[0, 0].text(0.99, 0.02, f"{plots.NO_NETWORKS}: targets only", transform=axes[0, 0].transAxes,
                        ha="right", va="bottom", color="0.3")
    return fig


def panel_trajectories(request: PanelRequest, options: dict, with_points: bool = False):
    """PCA of example trajectories (+ fixed points with ``with_points``; module docstring)."""
    networks = read_networks(request.inputs["networks"])
    examples = example_networks(networks)
    if examples.empty:
        fig, axes = plots.new_figure(1, 1, options)
        plots.empty_panel(axes[0, 0], title="hidden-state trajectories (top 2 PCs)")
        return fig
    states = load_states(request.inputs["states"], examples["network_id"].tolist())
    fixed = load_fixed_points(request.inputs["fixed_points"]) if with_points else None
    values, value_label, cmap = _condition_colors(task_of(request), states["conditions"], states["inputs"].shape[0])
    n_trials = min(int(options["n_trajectories"]), len(values))
    trials = np.unique(np.linspace(0, len(values) - 1, n_trials).round().astype(int))
    fig, axes = plots.new_figure(len(examples), 1, options)
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
        title_color(ax, row.architecture, f" ({row.activation})")
    scalar = plt.cm.ScalarMappable(norm=norm, cmap=colormap)
    fig.colorbar(scalar, ax=list(axes[0]), label=value_label, fraction=0.03, pad=0.02)
    return fig


def panel_trajectories_points(request: PanelRequest, options: dict):
    """Trajectories with the example networks' fixed points (kind ``trajectories_points``)."""
    return panel_trajectories(request, options, with_points=True)
