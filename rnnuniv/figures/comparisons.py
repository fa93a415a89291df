"""Panels over every task: trained against untrained networks (figure 4), and the training losses.

- :func:`panel_untrained` (kind ``untrained``): per task, histograms of the SVCCA similarity of
  three pair groups (:func:`rnnuniv.summary.untrained_comparison`: trained networks of other
  activations; trained vs untrained of the same activation; trained of the same activation, the
  reference) with the medians of the claim's two groups; title: ``d = median(T-U same) -
  median(T-T other)`` and its interval from summary.json; caption: the claim and each task's
  verdict. Inputs: ``{task}_distance``, ``{task}_index`` (cca/untrained/), ``summary``.
- :func:`panel_loss` (kind ``loss``): per task, histograms of the trained networks' normalised
  validation error (MSE / Var(target)) per architecture, the keep threshold dashed and the number
  of diverged networks in the title. Inputs: ``{task}_networks``; context ``loss_thresholds``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from rnnuniv import io, plots
from rnnuniv.summary import as_bool, untrained_comparison

from .data import PanelRequest, claim_line, read_networks, read_summary

__all__ = ["PAIR_LABELS", "panel_untrained", "panel_loss"]

PAIR_LABELS = {
    "trained_other_activation": "trained, other activation",
    "trained_untrained_same_activation": "trained vs untrained, same act.",
    "trained_same_activation": "trained, same activation (reference)",
}


def panel_untrained(request: PanelRequest, options: dict):
    """Figure 4: the two pair groups of the paper's claim (and a reference group), with medians.

    Paper: SVCCA similarity trained vs untrained (same activation) can exceed that of trained
    networks of other activations. Title: d = median(T-U same) - median(T-T other) and its interval.
    """
    summary = read_summary(request)
    tasks = list(request.tasks)
    fig, axes = plots.new_figure(len(tasks), 1, options,
                                 height_per_row=min(float(options["width"]) / len(tasks), 3.0))
    bins = np.linspace(0, 1, 26)
    lines = []
    for ax, task in zip(axes[0], tasks):
        distance = np.load(request.inputs[f"{task}_distance"], allow_pickle=False)
        index = io.read_csv(request.inputs[f"{task}_index"], required_columns=("network_id",))
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


def panel_loss(request: PanelRequest, options: dict):
    """Final-loss histograms per task and architecture (module docstring)."""
    tasks = list(request.tasks)
    fig, axes = plots.new_figure(len(tasks), 1, options)
    thresholds = request.context.get("loss_thresholds", {})
    for ax, task in zip(axes[0], tasks):
        networks = read_networks(request.inputs[f"{task}_networks"])
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
