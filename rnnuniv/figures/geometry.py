"""Population panels of the distance matrices and their 2-D MDS embeddings.

- :func:`panel_cca_matrix` (kind ``cca_matrix``): the SVCCA distance matrix of the kept networks,
  sorted and banded by architecture. Inputs: ``distance`` (cca/distance.npy), ``index``.
- :func:`panel_cca_mds` (kind ``cca_mds``): the SVCCA MDS embedding, colour = architecture, marker
  = activation; title: the architecture silhouette; caption: the individuality claims of
  summary.json. Inputs: ``embedding`` (embedding/cca.csv), ``summary``.
- :func:`panel_topology_mds` (kind ``topology_mds``): the topology MDS embedding with identical
  scaffolds spread on a small disc and labelled ``<k> identical``, and the networks per scaffold
  class and architecture; caption: the universality claims. Inputs: ``embedding``
  (embedding/topology.csv), ``summary``.
- :func:`panel_metrics` (kind ``metrics``): one MDS embedding per geometric similarity space
  (SVCCA, CKA, Procrustes, DSA), each titled with its architecture silhouette. Inputs: one
  embedding per space, named by the space; ``summary``.
"""

from __future__ import annotations

import numpy as np

from rnnuniv import io, plots

from .data import PanelRequest, claim_line, read_summary, silhouette_title

__all__ = ["space_title", "panel_cca_matrix", "panel_cca_mds", "panel_topology_mds", "panel_metrics"]

def space_title(space: str) -> str:
    """A distance space's display name: SVCCA, topology, or the metric registry's title."""
    from rnnuniv.similarity.registry import EXTRA_METRICS

    fixed = {"cca": "SVCCA", "topology": "topology"}
    return fixed.get(space) or (EXTRA_METRICS[space].title if space in EXTRA_METRICS else space)


def panel_cca_matrix(request: PanelRequest, options: dict):
    """SVCCA distance matrix sorted by architecture (module docstring)."""
    distance = np.load(request.inputs["distance"], allow_pickle=False)
    index = io.read_csv(request.inputs["index"], required_columns=("network_id",))
    fig, axes = plots.new_figure(1, 1, {**options, "width": min(float(options["width"]), 4.5)},
                                 height_per_row=3.6)
    if len(index) == 0:
        plots.empty_panel(axes[0, 0], title="SVCCA distance")
        return fig
    groups = index["architecture"] if "architecture" in index else np.full(len(index), "?")
    plots.distance_heatmap(axes[0, 0], distance, groups)
    axes[0, 0].set_title(f"SVCCA distance, {len(index)} kept networks")
    return fig


def panel_mds(request: PanelRequest, options: dict, space: str):
    """One space's MDS embedding with its silhouette and the individuality claims."""
    table = io.read_csv(request.inputs["embedding"], required_columns=("network_id", "x", "y"))
    summary = read_summary(request)
    name = space_title(space)
    fig, axes = plots.new_figure(1, 1, {**options, "width": min(float(options["width"]), 5.0)},
                                 height_per_row=3.4)
    plots.embedding_scatter(axes[0, 0], table, "architecture",
                            silhouette_title(summary, request.task, space, f"{name} MDS ({len(table)} networks)"))
    plots.caption_text(fig, " | ".join(filter(None, [
        claim_line(summary, request.task, "individuality: SVCCA geometry separates architectures"),
        claim_line(summary, request.task, "individuality: SVCCA geometry separates activations")])))
    return fig


def panel_cca_mds(request: PanelRequest, options: dict):
    """SVCCA MDS embedding (module docstring)."""
    return panel_mds(request, options, "cca")


def panel_topology_mds(request: PanelRequest, options: dict):
    """Topology MDS embedding and scaffold classes per architecture (module docstring)."""
    table = io.read_csv(request.inputs["embedding"], required_columns=("network_id", "x", "y"))
    summary = read_summary(request)
    fig, axes = plots.new_figure(2, 1, options, height_per_row=3.2)
    if len(table) and "class" in table:
        xy = np.column_stack([table["x"], table["y"]])
        span = float(np.ptp(xy, axis=0).max()) if len(table) > 1 else 0.0
        scale = 0.12 * span if span > 0 else 0.5
        xy = plots.jitter_classes(xy, table["class"].to_numpy(), scale=scale)
        n_classes = int(table["class"].nunique())
        title = f"topology MDS: {len(table)} networks, {n_classes} scaffold classes"
        plots.embedding_scatter(axes[0, 0], table, "architecture",
                                silhouette_title(summary, request.task, "topology", title), xy=xy)
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
        claim_line(summary, request.task, "universality: topology does not separate architectures"),
        claim_line(summary, request.task, "universality: same modal scaffold class")])))
    return fig


def panel_metrics(request: PanelRequest, options: dict):
    """MDS embedding of every geometric similarity space (module docstring)."""
    from rnnuniv.similarity.registry import EXTRA_METRICS

    order = ["cca", *EXTRA_METRICS, "topology"]
    spaces = [sp for sp in order if sp in request.inputs] + [
        sp for sp in request.inputs if sp not in order and sp != "summary"]
    summary = read_summary(request)
    fig, axes = plots.new_figure(len(spaces), 1, options)
    for ax, space in zip(axes[0], spaces):
        table = io.read_csv(request.inputs[space], required_columns=("network_id", "x", "y"))
        plots.embedding_scatter(ax, table, "architecture",
                                silhouette_title(summary, request.task, space, f"{space_title(space)} MDS"),
                                legend=ax is axes[0, -1])
    return fig
