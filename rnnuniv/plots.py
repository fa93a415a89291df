"""Shared plotting helpers: one palette per architecture everywhere, panels saved as PDF + PNG.

Every figure of the study goes through here, so an architecture has the same colour in every
panel (:data:`ARCHITECTURE_COLORS`), an activation the same colour and marker
(:data:`ACTIVATION_COLORS`, :data:`ACTIVATION_MARKERS`), and a panel without data says so
explicitly (:func:`empty_panel`) instead of silently showing empty axes. Matplotlib runs on the
non-interactive Agg backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402

from rnnuniv.io import atomic_path  # noqa: E402

__all__ = [
    "ARCHITECTURES",
    "ARCHITECTURE_COLORS",
    "ACTIVATION_COLORS",
    "ACTIVATION_MARKERS",
    "UNTRAINED_COLOR",
    "UNSTABLE_EDGE_COLOR",
    "PAIR_COLORS",
    "NO_NETWORKS",
    "DEFAULT_OPTIONS",
    "color_of",
    "setup_style",
    "new_figure",
    "save_panel",
    "empty_panel",
    "label_legend",
    "embedding_scatter",
    "jitter_classes",
    "class_counts_bar",
    "caption_text",
    "distance_heatmap",
    "pca_projection",
    "unstable_color",
    "unstable_legend",
]

ARCHITECTURES = ("vanilla", "ugrnn", "gru", "lstm")
# seaborn "colorblind" palette, fixed per name so the order of appearance never changes a colour
ARCHITECTURE_COLORS = {
    "vanilla": "#0173B2",
    "ugrnn": "#DE8F05",
    "gru": "#029E73",
    "lstm": "#D55E00",
}
ACTIVATION_COLORS = {"tanh": "#CC78BC", "relu": "#56B4E9"}
ACTIVATION_MARKERS = {"tanh": "o", "relu": "^"}
UNTRAINED_COLOR = "#949494"
_FALLBACK = ("#FBAFE4", "#ECE133", "#CA9161", "#000000")
# stability classes of a fixed point: 0, 1, 2, 3+ unstable modes (ColorBrewer Dark2 hues, none of
# them an architecture's or activation's colour)
_UNSTABLE_COLORS = ("#000000", "#E7298A", "#7570B3", "#A6761D")
UNSTABLE_EDGE_COLOR = _UNSTABLE_COLORS[1]
# figure 4 groups of network pairs, again outside the architecture palette
PAIR_COLORS = {
    "trained_other_activation": "#E7298A",
    "trained_untrained_same_activation": UNTRAINED_COLOR,
    "trained_same_activation": "#000000",
}

NO_NETWORKS = "no networks kept"

DEFAULT_OPTIONS = {"dpi": 200, "width": 7.0, "font_size": 8, "n_examples": 1, "n_trajectories": 32}

PALETTES = {"architecture": ARCHITECTURE_COLORS, "activation": ACTIVATION_COLORS}


def color_of(label: str, value: str) -> str:
    """The colour of ``value`` of a label column (architecture or activation), fixed per name."""
    palette = PALETTES.get(label, {})
    if value in palette:
        return palette[value]
    return _FALLBACK[sum(map(ord, str(value))) % len(_FALLBACK)]


def unstable_color(n_unstable) -> np.ndarray:
    """Colours [P] of fixed points by their number of unstable modes (0, 1, 2, 3+)."""
    index = np.clip(np.asarray(n_unstable, dtype=int), 0, len(_UNSTABLE_COLORS) - 1)
    return np.asarray(_UNSTABLE_COLORS)[index]


def unstable_legend(ax, **kwargs) -> None:
    """Legend of the stability classes used by :func:`unstable_color`."""
    names = ("stable", "1 unstable", "2 unstable", "3+ unstable")
    handles = [Line2D([], [], ls="", marker="o", color=c, label=n) for c, n in zip(_UNSTABLE_COLORS, names)]
    ax.legend(handles=handles, frameon=False, **kwargs)


def setup_style(options: dict | None = None) -> dict:
    """Apply the rcParams every panel shares; return the options merged over the defaults."""
    options = {**DEFAULT_OPTIONS, **(options or {})}
    plt.rcParams.update(
        {
            "font.size": options["font_size"],
            "axes.titlesize": options["font_size"] + 1,
            "axes.labelsize": options["font_size"],
            "legend.fontsize": options["font_size"] - 1,
            "xtick.labelsize": options["font_size"] - 1,
            "ytick.labelsize": options["font_size"] - 1,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "savefig.bbox": "tight",
            "pdf.fonttype": 42,
        }
    )
    return options


def new_figure(n_columns: int = 1, n_rows: int = 1, options: dict | None = None,
               height_per_row: float | None = None, **subplot_kw):
    """``(figure, axes [n_rows, n_columns])`` at the configured width; rows ~ width / columns tall."""
    options = {**DEFAULT_OPTIONS, **(options or {})}
    width = float(options["width"])
    height = height_per_row or min(width / max(n_columns, 1) * 0.85, 3.2)
    fig, axes = plt.subplots(n_rows, n_columns, figsize=(width, height * n_rows), squeeze=False,
                             layout="constrained", **subplot_kw)
    return fig, axes


def save_panel(fig, pdf: str | Path, png: str | Path, dpi: int = 200, title: str | None = None) -> None:
    """Write the figure as PDF and PNG, each atomically, and close it."""
    if title:
        fig.suptitle(title, x=0.01, ha="left", fontweight="bold")
    for path, kwargs in ((pdf, {}), (png, {"dpi": dpi})):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=Path(path).suffix.lstrip("."), **kwargs)
    plt.close(fig)


def empty_panel(ax, message: str = NO_NETWORKS, title: str | None = None) -> None:
    """An explicit 'nothing to show' panel: the message in the middle of bare axes."""
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes,
            fontsize=plt.rcParams["font.size"] + 1, color="0.3",
            bbox={"boxstyle": "round", "facecolor": "0.95", "edgecolor": "0.6"})
    if title:
        ax.set_title(title)


def label_legend(ax, label: str, values: Iterable[str], markers: bool = False, **kwargs) -> None:
    """Legend with one entry per value of a label column, in the palette's order."""
    values = list(dict.fromkeys(map(str, values)))
    order = list(PALETTES.get(label, {}))
    values.sort(key=lambda v: order.index(v) if v in order else len(order))
    handles = [
        Line2D([], [], ls="", marker=ACTIVATION_MARKERS.get(v, "o") if markers else "o",
               color=color_of(label, v), label=v)
        for v in values
    ]
    kwargs.setdefault("frameon", False)
    kwargs.setdefault("title", label)
    ax.legend(handles=handles, **kwargs)


def embedding_scatter(ax, table: pd.DataFrame, hue: str = "architecture", title: str | None = None,
                      legend: bool = True, xy: np.ndarray | None = None) -> None:
    """MDS coordinates (columns x, y, or ``xy`` [N, 2]) coloured by ``hue``, marker by activation.

    One scatter per activation (so one marker each); the legend lists the colours of ``hue`` and,
    when there are several, the activation markers. Empty table -> an explicit message.
    """
    if table is None or len(table) == 0:
        empty_panel(ax, title=title)
        return
    xy = np.column_stack([table["x"], table["y"]]) if xy is None else np.asarray(xy)
    hue_values = table[hue].astype(str) if hue in table else pd.Series(["?"] * len(table))
    activations = table["activation"].astype(str) if "activation" in table else pd.Series(["tanh"] * len(table))
    for activation in activations.unique():
        rows = (activations == activation).to_numpy()
        ax.scatter(xy[rows, 0], xy[rows, 1], c=[color_of(hue, v) for v in hue_values[rows]],
                   marker=ACTIVATION_MARKERS.get(activation, "o"), s=22, alpha=0.85,
                   edgecolors="white", linewidths=0.4, label=f"_{activation}")
    ax.set_xlabel("MDS 1")
    ax.set_ylabel("MDS 2")
    ax.set_aspect("equal", adjustable="datalim")
    if title:
        ax.set_title(title)
    if legend:
        values = list(dict.fromkeys(hue_values))
        order = list(PALETTES.get(hue, {}))
        values.sort(key=lambda v: order.index(v) if v in order else len(order))
        handles = [Line2D([], [], ls="", marker="o", color=color_of(hue, v), label=v) for v in values]
        if hue != "activation" and activations.nunique() > 1:
            handles += [Line2D([], [], ls="", marker=ACTIVATION_MARKERS.get(a, "o"), color="0.4", label=a)
                        for a in sorted(activations.unique())]
        ax.legend(handles=handles, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0),
                  title=f"{hue} / activation" if hue != "activation" else hue)


def jitter_classes(xy: np.ndarray, classes: np.ndarray, scale: float, seed: int = 0) -> np.ndarray:
    """Coordinates [N, 2] with the members of each multi-member class spread on a small disc.

    Networks at distance 0 (one class) share one MDS point; they are placed on a sunflower
    (golden-angle) spiral around it, of radius ``scale * sqrt(k / k_max)`` (k_max: the largest
    class), so a class of k networks shows k points and its area grows with k. Deterministic; the
    order within a class follows a seeded permutation.
    """
    xy = np.asarray(xy, dtype=np.float64).copy()
    classes = np.asarray(classes)
    rng = np.random.default_rng(seed)
    largest = max(np.unique(classes, return_counts=True)[1], default=1)
    for name in np.unique(classes):
        members = np.flatnonzero(classes == name)
        if members.size < 2:
            continue
        members = rng.permutation(members)
        k = np.arange(members.size)
        radius = scale * np.sqrt(members.size / largest) * np.sqrt((k + 0.5) / members.size)
        angle = k * np.pi * (3 - np.sqrt(5))
        xy[members] = xy[members].mean(0) + np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
    return xy


def class_counts_bar(ax, table: pd.DataFrame, n_classes: int = 4) -> None:
    """Stacked bars: per architecture, how many networks fall in scaffold class 0, 1, ... .

    Classes beyond the ``n_classes - 1`` largest are pooled as "other". Class 0 (the modal one)
    is at the bottom in black so its share per architecture reads directly.
    """
    if table is None or len(table) == 0 or "class" not in table:
        empty_panel(ax, title="networks per scaffold class")
        return
    arch = table["architecture"].astype(str)
    names = [a for a in ARCHITECTURES if a in set(arch)] + sorted(set(arch) - set(ARCHITECTURES))
    classes = np.minimum(table["class"].to_numpy(dtype=int), n_classes - 1)
    shades = ["#000000", "#7f7f7f", "#bdbdbd", "#e0e0e0"][:n_classes]
    bottom = np.zeros(len(names))
    for c in range(n_classes):
        counts = np.array([np.sum((arch == a).to_numpy() & (classes == c)) for a in names], dtype=float)
        if not counts.any():
            continue
        label = "modal class" if c == 0 else (f"class {c}" if c < n_classes - 1 else "other classes")
        ax.bar(names, counts, bottom=bottom, color=shades[c], edgecolor="white", linewidth=0.5, label=label)
        bottom += counts
    for tick in ax.get_xticklabels():
        tick.set_color(color_of("architecture", tick.get_text()))
    ax.set_ylabel("networks")
    ax.set_title("networks per scaffold class")
    ax.legend(frameon=False, fontsize="small", loc="upper left", bbox_to_anchor=(1.0, 1.0))


def caption_text(fig, text: str) -> None:
    """The panel's claim and its number, written under the axes (wrapped)."""
    if text:
        import textwrap

        fig.text(0.01, -0.02, "\n".join(textwrap.wrap(text, 120)), ha="left", va="top",
                 fontsize=plt.rcParams["font.size"] - 0.5, color="0.15")


def distance_heatmap(ax, distance: np.ndarray, groups: Sequence[str], label: str = "architecture",
                     colorbar_label: str = "SVCCA distance") -> None:
    """Distance matrix with rows/columns sorted by group, group boundaries and coloured ticks."""
    groups = np.asarray(groups).astype(str)
    order_names = list(PALETTES.get(label, {}))
    rank = np.array([order_names.index(g) if g in order_names else len(order_names) for g in groups])
    order = np.lexsort((groups, rank))
    d = np.asarray(distance, dtype=float)[np.ix_(order, order)]
    sorted_groups = groups[order]
    image = ax.imshow(d, cmap="viridis", interpolation="nearest")
    colorbar = ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    colorbar.set_label(colorbar_label)
    boundaries = np.flatnonzero(sorted_groups[1:] != sorted_groups[:-1]) + 0.5
    for b in boundaries:
        ax.axhline(b, color="white", lw=0.8)
        ax.axvline(b, color="white", lw=0.8)
    starts = np.concatenate([[0], np.ceil(boundaries).astype(int)])
    ends = np.concatenate([np.ceil(boundaries).astype(int), [len(d)]])
    centres = (starts + ends - 1) / 2
    names = sorted_groups[starts] if len(d) else []
    ax.set_xticks(centres, names, rotation=45, ha="right")
    ax.set_yticks(centres, names)
    for tick, name in zip(ax.get_xticklabels() + ax.get_yticklabels(), list(names) * 2):
        tick.set_color(color_of(label, name))
    ax.set_xlabel("network (sorted by architecture)")
    ax.set_ylabel("network")


def pca_projection(states: np.ndarray, n_components: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Principal axes of states [..., n]: ``(mean [n], components [n, c], explained fraction [c])``.

    Project any state h [..., n] with ``(h - mean) @ components``. Components are the top right
    singular vectors of the centred samples; c = min(n_components, n).
    """
    flat = np.asarray(states, dtype=np.float64).reshape(-1, states.shape[-1])
    mean = flat.mean(0)
    _, singular, vt = np.linalg.svd(flat - mean, full_matrices=False)
    variance = singular**2
    c = min(n_components, vt.shape[0])
    explained = variance[:c] / variance.sum() if variance.sum() > 0 else np.zeros(c)
    return mean, vt[:c].T, explained
