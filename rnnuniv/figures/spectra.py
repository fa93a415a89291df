"""Population panels of the linearisation at each network's reference fixed point (figure 3e, 3f).

The reference point of a network is its lowest-``q`` fixed point among the task's reference
conditions (``task.reference_conditions``: CDI, the weakest streams in context 1), or among all its
points when none lies there.

- :func:`panel_eigenvalues` (kind ``eigenvalues``): ``|lambda_i|`` sorted, against rank ``i``, mean
  +/- s.e.m. over the networks of each architecture. Inputs: ``networks``, ``fixed_points`` (every
  trained shard); context ``task_params``.
- :func:`panel_linear_response` (kind ``linear_response``): the output after ``T`` steps of unit
  input on the reference condition's relevant channel (``task.relevant_channel``) through the
  linearised dynamics keeping the ``k`` slowest modes, divided by that with every stored mode
  (:func:`rnnuniv.summary.linear_response_by_modes`), mean +/- s.e.m. per architecture. Inputs:
  ``networks``, ``fixed_points``, ``weights`` (every trained shard); context ``task_params``.
"""

from __future__ import annotations

import numpy as np

from rnnuniv import io, plots
from rnnuniv.summary import linear_response_by_modes

from .data import PanelRequest, as_list, load_fixed_points, read_networks, task_of

__all__ = ["reference_point", "panel_eigenvalues", "panel_linear_response"]


def reference_point(points: dict, task, condition_inputs) -> int | None:
    """Index of the network's lowest-q point at the task's reference conditions (module docstring);
    None without points. Without condition inputs: the lowest-q point."""
    if points["q"].shape[0] == 0:
        return None
    if condition_inputs is None:
        return int(np.argmin(points["q"]))
    preferred = task.reference_conditions(condition_inputs)
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


def panel_eigenvalues(request: PanelRequest, options: dict):
    """Sorted eigenvalue moduli at the reference point, per architecture (module docstring)."""
    networks = read_networks(request.inputs["networks"])
    fixed = load_fixed_points(request.inputs["fixed_points"])
    task = task_of(request)
    architecture = networks.set_index("network_id")["architecture"].astype(str)
    curves: dict[str, list[np.ndarray]] = {}
    for network_id, points in fixed["networks"].items():
        reference = reference_point(points, task, fixed.get("condition_inputs"))
        if reference is not None:
            modulus = np.sort(np.abs(points["eigenvalues"][reference]))[::-1]
            curves.setdefault(architecture.get(network_id, "?"), []).append(modulus)
    return _mean_sem_figure(
        curves, options, empty_title="eigenvalue spectrum at the fixed point",
        xlabel="eigenvalue rank", ylabel="|$\\lambda$|  (mean $\\pm$ s.e.m.)",
        title="sorted eigenvalues at the fixed point",
    )


def panel_linear_response(request: PanelRequest, options: dict):
    """Linearised response against the number of modes kept, per architecture (module docstring)."""
    networks = read_networks(request.inputs["networks"])
    fixed = load_fixed_points(request.inputs["fixed_points"])
    task = task_of(request)
    architecture = networks.set_index("network_id")["architecture"].astype(str)
    n_steps = task.n_steps
    readouts = {}
    for path in as_list(request.inputs["weights"]):
        params, meta = io.load_weights(path)
        for i, network_id in enumerate(meta.get("network_ids", [])):
            readouts[network_id] = params["w_out"][i].double().numpy()
    curves: dict[str, list[np.ndarray]] = {}
    condition_inputs = fixed.get("condition_inputs")
    channels = task.relevant_channel(condition_inputs) if condition_inputs is not None else None
    required = ("right_eigenvectors", "left_eigenvectors", "input_jacobians")
    for network_id, points in fixed["networks"].items():
        reference = reference_point(points, task, condition_inputs)
        if reference is None or network_id not in readouts or not all(k in points for k in required):
            continue
        channel = 0 if channels is None else int(channels[points["condition_index"][reference]])
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
