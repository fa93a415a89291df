"""Panels of the connectivity-dynamics figures figC1-figC3 (beyond the paper), over every task.

Each panel function takes the panel's request (``request.tasks``, ``request.inputs``: name ->
path) and the figure options, and returns a matplotlib figure; the registry
(:mod:`rnnuniv.figures.registry`) names their kinds and inputs.

- ``connectivity_dimension`` (figC1): per task, the dimension of each kept network's probe
  activity (cross-block participation ratio / n) against the participation rank of its
  **candidate block** ``U_c`` (the recurrent weights inside the non-gate nonlinearity, see
  :mod:`rnnuniv.dynamics`) / n, coloured by architecture, over the random-mode curves
  (dimension / N against effective rank / N at each gain of the grid); the curve at the gain
  nearest the trained networks' median candidate-block gain is drawn thick.
  Inputs: ``{task}_dynamics`` (dynamics/summary.csv), ``random_mode`` (random_mode/table.csv).
- ``lyapunov_spectra`` (figC2): per task, exponent ``i`` against ``i``, mean +/- s.e.m. over the
  kept networks of each architecture. Inputs: ``{task}_dynamics``.
- ``random_mode_phase`` (figC3): the random-mode grid as two heat maps over gain and effective
  rank, largest Lyapunov exponent and dimension / N (one row per spectrum kind; points settled on a
  fixed point marked ``fp``). Inputs: ``random_mode``.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm, TwoSlopeNorm
from matplotlib.ticker import NullFormatter

from rnnuniv import io, plots

RANK = "participation_rank_candidate"
DIMENSION = "participation_ratio_cross"


def _dynamics_table(path) -> pd.DataFrame:
    return io.read_csv(path, required_columns=("network_id", "architecture", "n_hidden"))


def _architectures(values) -> list[str]:
    present = list(dict.fromkeys(map(str, values)))
    return [a for a in plots.ARCHITECTURES if a in present] + sorted(set(present) - set(plots.ARCHITECTURES))


def _random_mode(path) -> pd.DataFrame:
    return io.read_csv(path, required_columns=("kind", "n", "gain", "rank", "dimension", "lyapunov_max",
                                               "settled"))


def panel_connectivity_dimension(request, options):
    """figC1: activity dimension against candidate-block rank, over the random-mode curves (module docstring)."""
    fig, axes = plots.new_figure(len(request.tasks), 1, options, height_per_row=2.6)
    modes = _random_mode(request.inputs["random_mode"])
    kind = str(modes["kind"].iloc[0]) if len(modes) else None
    modes = modes[modes["kind"] == kind]
    gains = sorted(modes["gain"].unique())
    shades = plt.get_cmap("Greys")(np.linspace(0.35, 0.9, max(len(gains), 1)))
    for ax, task in zip(axes[0], request.tasks):
        table = _dynamics_table(request.inputs[f"{task}_dynamics"])
        table = table[np.isfinite(pd.to_numeric(table.get(DIMENSION), errors="coerce"))]
        if table.empty:
            plots.empty_panel(ax, title=task)
            continue
        median_gain = float(np.nanmedian(table["gain_candidate"])) if "gain_candidate" in table else np.nan
        curves = {g: modes[(modes["gain"] == g) & ~modes["settled"].astype(bool)].sort_values("rank") for g in gains}
        drawn = [g for g in gains if not curves[g].empty]
        nearest = min(drawn, key=lambda g: abs(g - median_gain)) if drawn and np.isfinite(median_gain) else None
        for shade, gain in zip(shades, gains):
            curve = curves[gain]
            thick = gain == nearest
            ax.plot(curve["rank"] / curve["n"], curve["dimension"] / curve["n"], color=shade,
                    lw=2.2 if thick else 0.9, ls="-" if thick else "--", marker="s", ms=2.5, zorder=1,
                    label=f"random mode g = {gain:g}" + ("" if drawn.count(gain) else " (fixed points)"))
        for architecture in _architectures(table["architecture"]):
            rows = table[table["architecture"].astype(str) == architecture]
            ax.scatter(rows[RANK] / rows["n_hidden"], rows[DIMENSION] / rows["n_hidden"], s=18, alpha=0.85,
                       color=plots.color_of("architecture", architecture), edgecolors="white",
                       linewidths=0.4, zorder=3, label=f"{architecture} ({len(rows)})")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("effective rank of $U_c$ / n")
        ax.set_title(f"{task}\nmedian gain of $U_c$ {median_gain:.2f}"
                     + (f"\n(thick: model at g = {nearest:g})" if nearest is not None else ""), fontsize="small")
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.yaxis.set_minor_formatter(NullFormatter())
    axes[0, 0].set_ylabel("dimension / n")
    fig.supxlabel("trained networks: candidate block $U_c$ (participation rank); dimension: cross-block "
                  "participation ratio of probe states", fontsize="small")
    axes[0, -1].legend(frameon=False, fontsize="x-small", loc="upper left", bbox_to_anchor=(1.0, 1.0),
                       title=f"{kind} spectrum, N = {int(modes['n'].iloc[0]) if len(modes) else '?'}",
                       title_fontsize="x-small")
    return fig


def panel_lyapunov_spectra(request, options):
    """figC2: Lyapunov spectra, mean +/- s.e.m. per architecture (module docstring)."""
    fig, axes = plots.new_figure(len(request.tasks), 1, options)
    for ax, task in zip(axes[0], request.tasks):
        table = _dynamics_table(request.inputs[f"{task}_dynamics"])
        columns = sorted((c for c in table.columns if c.startswith("lyapunov_")), key=lambda c: int(c.split("_")[1]))
        if table.empty or not columns:
            plots.empty_panel(ax, title=task)
            continue
        index = np.arange(1, len(columns) + 1)
        for architecture in _architectures(table["architecture"]):
            values = table.loc[table["architecture"].astype(str) == architecture, columns].to_numpy(float)
            values = np.where(np.isfinite(values), values, np.nan)
            count = np.sum(np.isfinite(values), axis=0)
            mean = np.nanmean(values, axis=0)
            sem = np.nanstd(values, axis=0, ddof=1) / np.sqrt(count) if len(values) > 1 else np.zeros_like(mean)
            color = plots.color_of("architecture", architecture)
            ax.plot(index, mean, color=color, marker="o", ms=3, lw=1.2, label=f"{architecture} ({len(values)})")
            ax.fill_between(index, mean - sem, mean + sem, color=color, alpha=0.25, lw=0)
        ax.axhline(0, color="black", lw=0.6, ls=":")
        ax.set_xlabel("exponent index i")
        ax.set_title(task)
        ax.legend(frameon=False, fontsize="x-small")
    axes[0, 0].set_ylabel("$\\lambda_i$ (per step), mean $\\pm$ s.e.m.")
    return fig


def _heatmap(ax, grid: pd.DataFrame, values: str, cmap, norm, label: str, fmt: str) -> None:
    gains = sorted(grid["gain"].unique())
    ranks = sorted(grid["rank"].unique())
    image = np.full((len(ranks), len(gains)), np.nan)
    for row in grid.itertuples():
        image[ranks.index(row.rank), gains.index(row.gain)] = getattr(row, values)
    mesh = ax.imshow(image, origin="lower", cmap=cmap, norm=norm, aspect="auto")
    for row in grid.itertuples():
        i, j = ranks.index(row.rank), gains.index(row.gain)
        value = getattr(row, values)
        shade = mesh.norm(value) if np.isfinite(value) else 1.0
        dark = shade < 0.45 if cmap == "viridis" else abs(shade - 0.5) > 0.35
        text = "fp" if bool(row.settled) and not np.isfinite(value) else (fmt.format(value) if np.isfinite(value) else "")
        ax.text(j, i, text, ha="center", va="center", fontsize="x-small", color="white" if dark else "black")
    ax.set_xticks(range(len(gains)), [f"{g:g}" for g in gains])
    ax.set_yticks(range(len(ranks)), [f"{r:g}" for r in ranks])
    ax.set_xlabel("gain g")
    ax.figure.colorbar(mesh, ax=ax, fraction=0.046, pad=0.04).set_label(label)


def panel_random_mode_phase(request, options):
    """figC3: the random-mode grid as heat maps of chaos and dimension (module docstring)."""
    modes = _random_mode(request.inputs["random_mode"])
    kinds = list(dict.fromkeys(modes["kind"].astype(str))) or ["none"]
    fig, axes = plots.new_figure(2, len(kinds), options)
    if modes.empty:
        plots.empty_panel(axes[0, 0], "empty random-mode table")
        axes[0, 1].set_axis_off()
        return fig
    modes = modes.assign(dimension_fraction=modes["dimension"] / modes["n"])
    largest = float(np.nanmax(np.abs(modes["lyapunov_max"]))) or 1.0
    lyapunov_norm = TwoSlopeNorm(vcenter=0.0, vmin=-largest, vmax=largest)
    n = int(modes["n"].iloc[0])
    fractions = modes["dimension_fraction"][np.isfinite(modes["dimension_fraction"]) & (modes["dimension_fraction"] > 0)]
    dimension_norm = LogNorm(fractions.min(), max(fractions.max(), fractions.min() * 1.01)) if len(fractions) else None
    for row, kind in enumerate(kinds):
        grid = modes[modes["kind"].astype(str) == kind]
        _heatmap(axes[row, 0], grid, "lyapunov_max", "RdBu_r", lyapunov_norm,
                 "largest Lyapunov exponent\n(per unit time)", "{:.2f}")
        _heatmap(axes[row, 1], grid, "dimension_fraction", "viridis", dimension_norm,
                 "dimension / N (cross-block PR, log scale)", "{:.3f}")
        axes[row, 0].set_ylabel(f"effective rank $PR_D$ ({kind} spectrum)")
        axes[row, 0].set_title(f"chaos: $\\lambda_{{max}}$ > 0 (N = {n})")
        axes[row, 1].set_title("dimension of activity (fp: fixed point)")
    return fig
