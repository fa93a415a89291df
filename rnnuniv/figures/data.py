"""What every panel reads: the request, the study's tables, and the per-network arrays of a few shards.

A panel function receives a :class:`PanelRequest` (its task or tasks, its named input files, its
context from the config) and the figure options, and returns a matplotlib figure. The readers here
turn the files the registry (:mod:`rnnuniv.figures.registry`) names into the forms the panels draw:

- :func:`read_networks`: networks.csv (``network_id``, ``architecture``, ``status``, ...);
- :func:`example_networks`: the networks an example panel draws (first kept per architecture);
- :func:`load_states`: probe inputs, probe conditions, and hidden states / outputs per wanted network;
- :func:`load_fixed_points`: per network, the arrays of its fixed-point shard;
- :func:`load_graphs`: per network, its topology graph;
- :func:`read_summary`, :func:`claim_line`, :func:`silhouette_title`: numbers quoted from summary.json.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from rnnuniv import io, plots

__all__ = ["PanelRequest", "as_list", "read_networks", "example_networks", "load_states",
           "load_fixed_points", "load_graphs", "read_summary", "claim_line", "silhouette_title",
           "title_color", "task_of"]


@dataclass(frozen=True)
class PanelRequest:
    """One panel's data: ``task`` (a single-task panel) or ``tasks`` (a panel over every task),
    ``inputs`` (name -> path or list of paths) and ``context`` (values from the config, e.g.
    ``task_params``, ``loss_thresholds``)."""

    task: str | None = None
    tasks: Sequence[str] = ()
    inputs: dict = field(default_factory=dict)
    context: dict = field(default_factory=dict)


def as_list(value) -> list[str]:
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


def task_of(request: PanelRequest, name: str | None = None):
    """The panel's task object, built with the configured parameters (context ``task_params``)."""
    from rnnuniv.tasks import make_task

    return make_task(name or request.task, **(request.context.get("task_params") or {}))


def load_states(paths, wanted: list[str]) -> dict:
    """Probe ``inputs [K, T, m]`` and ``conditions`` (from the first file) and, per wanted network,
    ``hidden [K, T, n]`` and ``outputs [K, T, p]``."""
    result = {"hidden": {}, "outputs": {}}
    for number, path in enumerate(as_list(paths)):
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
    """``networks``: network_id -> per-point arrays of that network; plus ``condition_names`` and
    ``condition_inputs [C, m]`` (from the first shard that has them)."""
    from rnnuniv.fixedpoints import load_shard

    per_network, conditions = {}, {}
    for path in as_list(paths):
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
    for path in as_list(paths):
        data = io.read_json(path)
        for network_id, record in (data.get("networks") or {}).items():
            graphs[network_id] = nx.node_link_graph(record["graph"], edges="edges")
    return graphs


def read_summary(request: PanelRequest) -> dict | None:
    """results/summary.json when the panel was given it (captions quote its numbers)."""
    path = request.inputs.get("summary")
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


def silhouette_title(summary, task, space, title):
    """``title`` and, when summary.json has it, the architecture silhouette of ``space`` with its interval."""
    entry = (summary or {}).get("tasks", {}).get(task, {}).get("silhouettes", {}).get(space, {}).get("architecture")
    if not entry:
        return title
    return f"{title}\narchitecture silhouette* {entry['statistic']:.2f} [{entry['lower']:.2f}, {entry['upper']:.2f}]"


def title_color(ax, architecture: str, extra: str = "") -> None:
    ax.set_title(f"{architecture}{extra}", color=plots.color_of("architecture", architecture))
