"""The one registry of figure panels: what each kind draws with, what it reads, where it appears.

:data:`KINDS` declares, per kind of panel, its function (``"module:function"`` inside
:mod:`rnnuniv.figures`, imported only when drawn, so the workflow reads this registry without
importing matplotlib), its named inputs and the config context it needs. :data:`FIGURES` places
kinds on figures as lettered panels. rules/figures.smk builds one job per panel from these two
tables alone (:func:`figure_panels`, :func:`panel_inputs`, :func:`panel_context`), so adding a panel
touches only this file and the module of its function.

Input paths are templates relative to ``results/``:

- ``{task}`` in a path is the panel's task; ``{task}`` in an input's *name* makes one input per
  configured task (name and path filled with each), for panels over every task;
- ``{space}`` in an input's name makes one input per geometric similarity space;
- ``{shard}`` needs an :class:`Input` with ``shards``: ``"all"`` (every shard of the task),
  ``"trained"`` (shards of trained networks) or ``"examples"`` (only the shards holding the
  networks :func:`example_networks` picks from networks.csv, or the first trained shard when no
  network is kept), given as a list of paths.

Context names (``task_params``, ``loss_thresholds``) are filled by the workflow from the config.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

__all__ = ["Input", "Kind", "KINDS", "FIGURES", "SHARD_SCOPES", "figure_panels", "panel_inputs",
           "panel_context", "example_shards", "draw"]

SHARD_SCOPES = ("all", "trained", "examples")


@dataclass(frozen=True)
class Input:
    """A path template over shards (``{shard}``), resolved to a list of paths."""

    path: str
    shards: str

    def __post_init__(self):
        if self.shards not in SHARD_SCOPES or "{shard}" not in self.path:
            raise ValueError(f"Input({self.path!r}, {self.shards!r}): shards must be one of {SHARD_SCOPES} "
                             "and the path must hold {shard}")


@dataclass(frozen=True)
class Kind:
    """One kind of panel: ``function`` (``"module:function"`` in rnnuniv.figures, called with a
    :class:`~rnnuniv.figures.data.PanelRequest` and the figure options), ``inputs`` (name ->
    path template or :class:`Input`), ``context`` (names of config values it needs) and
    ``every_task`` (one panel over every configured task instead of one task)."""

    function: str
    inputs: Mapping[str, str | Input]
    context: tuple[str, ...] = ()
    every_task: bool = False
    doc: str = field(default="", compare=False)

    def resolve(self) -> Callable:
        module, name = self.function.split(":")
        return getattr(importlib.import_module(f"rnnuniv.figures.{module}"), name)


NETWORKS = "{task}/networks.csv"
SUMMARY = "summary.json"
EXAMPLE_STATES = Input("{task}/states/{shard}.npz", "examples")
EXAMPLE_POINTS = Input("{task}/fixed_points/{shard}.npz", "examples")
TRAINED_POINTS = Input("{task}/fixed_points/{shard}.npz", "trained")

KINDS: dict[str, Kind] = {
    "task": Kind("trials:panel_task", {"networks": NETWORKS, "states": EXAMPLE_STATES}, ("task_params",),
                 doc="probe inputs, targets and example outputs"),
    "trajectories": Kind("trials:panel_trajectories", {"networks": NETWORKS, "states": EXAMPLE_STATES},
                         doc="PCA of example hidden-state trajectories"),
    "trajectories_points": Kind(
        "trials:panel_trajectories_points",
        {"networks": NETWORKS, "states": EXAMPLE_STATES, "fixed_points": EXAMPLE_POINTS},
        doc="... with the example networks' fixed points (CDI line attractor)"),
    "cca_matrix": Kind("geometry:panel_cca_matrix",
                       {"distance": "{task}/cca/distance.npy", "index": "{task}/cca/index.csv"},
                       doc="SVCCA distance matrix sorted by architecture"),
    "cca_mds": Kind("geometry:panel_cca_mds", {"embedding": "{task}/embedding/cca.csv", "summary": SUMMARY},
                    doc="SVCCA MDS; caption: the individuality claims"),
    "topology_mds": Kind("geometry:panel_topology_mds",
                         {"embedding": "{task}/embedding/topology.csv", "summary": SUMMARY},
                         doc="jittered MDS of scaffold classes + class counts; caption: universality"),
    "flipflop_points": Kind(
        "points:panel_flipflop_points",
        {"networks": NETWORKS, "states": EXAMPLE_STATES, "fixed_points": EXAMPLE_POINTS,
         "graphs": Input("{task}/topology/{shard}.json", "examples")},
        doc="example fixed points by unstable modes, and their topology graphs"),
    "sine_points": Kind(
        "points:panel_sine_points",
        {"networks": NETWORKS, "states": EXAMPLE_STATES, "fixed_points": EXAMPLE_POINTS,
         "fixed_tables": Input("{task}/fixed_points/{shard}.csv", "trained")},
        ("task_params",), doc="example fixed points and eigenvalues; linearised vs commanded frequency"),
    "eigenvalues": Kind("spectra:panel_eigenvalues", {"networks": NETWORKS, "fixed_points": TRAINED_POINTS},
                        ("task_params",), doc="sorted |eigenvalues| at the reference point, mean +/- s.e.m."),
    "linear_response": Kind(
        "spectra:panel_linear_response",
        {"networks": NETWORKS, "fixed_points": TRAINED_POINTS,
         "weights": Input("{task}/shards/{shard}/weights.safetensors", "trained")},
        ("task_params",), doc="linearised output vs number of modes kept"),
    "untrained": Kind(
        "comparisons:panel_untrained",
        {"{task}_distance": "{task}/cca/untrained/distance.npy", "{task}_index": "{task}/cca/untrained/index.csv",
         "summary": SUMMARY},
        every_task=True, doc="figure 4 pair groups, medians, d and its interval"),
    "loss": Kind("comparisons:panel_loss", {"{task}_networks": NETWORKS}, ("loss_thresholds",), every_task=True,
                 doc="final loss histograms"),
    "metrics": Kind("geometry:panel_metrics", {"{space}": "{task}/embedding/{space}.csv", "summary": SUMMARY},
                    doc="MDS of every geometric similarity space"),
    "connectivity_dimension": Kind(
        "connectivity:panel_connectivity_dimension",
        {"random_mode": "random_mode/table.csv", "{task}_dynamics": "{task}/dynamics/summary.csv"},
        every_task=True, doc="activity dimension vs candidate-block rank, over the random-mode curves"),
    "lyapunov_spectra": Kind("connectivity:panel_lyapunov_spectra",
                             {"{task}_dynamics": "{task}/dynamics/summary.csv"}, every_task=True,
                             doc="Lyapunov spectra, mean +/- s.e.m. per architecture"),
    "random_mode_phase": Kind("connectivity:panel_random_mode_phase", {"random_mode": "random_mode/table.csv"},
                              every_task=True, doc="random-mode phase diagram"),
}

#: figure -> panel letter -> (kind, task); task None for a kind over every task. A figure given as
#: a kind name alone has one panel of that kind per configured task, lettered a, b, c in task order.
FIGURES: dict[str, dict[str, tuple[str, str | None]] | str] = {
    "fig1_flipflop": {"a": ("task", "flipflop"), "b": ("trajectories", "flipflop"),
                      "c": ("cca_matrix", "flipflop"), "d": ("cca_mds", "flipflop"),
                      "e": ("flipflop_points", "flipflop"), "f": ("topology_mds", "flipflop")},
    "fig2_sine": {"a": ("task", "sine"), "b": ("trajectories", "sine"), "c": ("cca_mds", "sine"),
                  "d": ("sine_points", "sine"), "e": ("topology_mds", "sine")},
    "fig3_cdi": {"a": ("task", "cdi"), "b": ("trajectories_points", "cdi"), "c": ("cca_mds", "cdi"),
                 "d": ("topology_mds", "cdi"), "e": ("eigenvalues", "cdi"), "f": ("linear_response", "cdi")},
    "fig4_untrained": {"a": ("untrained", None)},
    "figS_loss": {"a": ("loss", None)},
    "figS_metrics": "metrics",
    "figC1": {"a": ("connectivity_dimension", None)},
    "figC2": {"a": ("lyapunov_spectra", None)},
    "figC3": {"a": ("random_mode_phase", None)},
}


def figure_panels(tasks: Sequence[str]) -> dict[str, dict[str, tuple[str, str | None]]]:
    """figure -> panel -> (kind, task) for the configured ``tasks``: panels of other tasks left out,
    per-task figures expanded, figures left without panels dropped."""
    out = {}
    for figure, panels in FIGURES.items():
        if isinstance(panels, str):
            panels = {"abcdefghijklmnopqrstuvwxyz"[i]: (panels, task) for i, task in enumerate(tasks)}
        for panel, (kind, task) in panels.items():
            if KINDS[kind].every_task != (task is None):
                raise ValueError(f"{figure} {panel}: kind {kind!r} is drawn "
                                 + ("over every task (task None)" if KINDS[kind].every_task else "for one task"))
        kept = {panel: spec for panel, spec in panels.items() if spec[1] is None or spec[1] in tasks}
        if kept:
            out[figure] = kept
    return out


def panel_inputs(kind: str, task: str | None, tasks: Sequence[str], shards: Callable[[str, str], list[str]],
                 spaces: Sequence[str] = ()) -> dict[str, str | list[str]]:
    """Named input paths (under ``results/``) of one panel of ``kind``; ``shards(task, scope)`` gives
    the shard ids of a scope (module docstring), ``spaces`` the geometric similarity spaces."""
    out: dict[str, str | list[str]] = {}
    for name, template in KINDS[kind].inputs.items():
        over_tasks = tasks if "{task}" in name else [task]
        over_spaces = spaces if "{space}" in name else [None]
        for t in over_tasks:
            for space in over_spaces:
                key = name.format(task=t, space=space)
                if isinstance(template, Input):
                    out[key] = [f"results/{template.path}".format(task=t, space=space, shard=s)
                                for s in shards(t, template.shards)]
                else:
                    out[key] = f"results/{template}".format(task=t, space=space)
    return out


def panel_context(kind: str, task: str | None, sources: Mapping[str, Callable[[str | None], object]]) -> dict:
    """The context of one panel: each name the kind declares, from ``sources[name](task)``."""
    return {name: sources[name](task) for name in KINDS[kind].context}


def example_shards(networks, fallback: Sequence[str]) -> list[str]:
    """Shards of the networks :func:`~rnnuniv.figures.data.example_networks` picks from the
    networks.csv table ``networks``, in table order; ``fallback`` when it picks none."""
    from .data import example_networks

    chosen = set(example_networks(networks)["network_id"].astype(str))
    picked = networks.loc[networks["network_id"].astype(str).isin(chosen), "shard"].astype(str)
    return list(dict.fromkeys(picked)) or list(fallback)


def draw(kind: str, request, options: dict):
    """The figure of one panel of ``kind`` (the registered function called with ``request``)."""
    if kind not in KINDS:
        raise ValueError(f"unknown panel kind {kind!r}; valid: {', '.join(sorted(KINDS))}")
    return KINDS[kind].resolve()(request, options)
