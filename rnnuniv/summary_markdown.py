"""summary.md: the human-readable form of the dict :func:`rnnuniv.summary.task_summary` builds
and scripts/summary.py writes to summary.json (one writer of summary.md)."""

from __future__ import annotations

import math

import numpy as np


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, (float, np.floating)):
        return "-" if not math.isfinite(value) else f"{value:.{digits}g}"
    return str(value)


def _interval(entry: dict) -> str:
    lower, upper = entry.get("lower"), entry.get("upper")
    if lower is None or not (math.isfinite(lower) and math.isfinite(upper)):
        return "-"
    return f"[{lower:.3g}, {upper:.3g}]"


def to_markdown(summary: dict) -> str:
    """Human-readable summary.md of the dict written to summary.json."""
    o = summary["options"]
    lines = [
        "# Universality and individuality: the paper's claims in this run", "",
        f"Intervals: 95 % bootstrap over networks ({o['n_bootstrap']} resamples, networks drawn within "
        "architecture x activation cells, a network never paired with its own copy). p: one-sided "
        f"permutation test ({o['n_permutations']} shuffles; architecture labels shuffled within each "
        f"activation). silhouette* = silhouette minus its mean over shuffled labels (0 = chance). "
        f"Thresholds fixed in advance: separated {o['separated']:g}, mixed {o['mixed']:g}, alpha {o['alpha']:g}, "
        f"at least {o['min_networks_per_group']} networks per group, majority {o['majority']:g}, "
        f"frequency correlation {o['frequency_correlation']:g}.", "",
    ]
    for task, entry in summary["tasks"].items():
        lines += [f"## {task}", ""]
        kept_rows = entry.get("kept") or []
        if kept_rows and sum(row["kept"] for row in kept_rows) == 0:
            lines += ["**No networks kept** in this task: every claim below is inconclusive.", ""]
        lines += ["| claim | statistic | value | 95 % interval | p | n | verdict | why |",
                  "|---|---|---|---|---|---|---|---|"]
        for r in entry["claims"]:
            lines.append(f"| {r['claim']} | {r['statistic_name']} | {_fmt(r['statistic'])} | {_interval(r)} "
                         f"| {_fmt(r['p'])} | {r['n']} | **{r['verdict']}** | {r['reason']} |")
        figure4 = entry.get("figure4")
        if figure4:
            lines += ["", f"Figure 4: median SVCCA similarity trained vs untrained (same activation) "
                      f"{_fmt(figure4['median_trained_untrained_same'])} ({figure4['n_pairs_trained_untrained_same']} pairs) "
                      f"vs trained pairs of other activations {_fmt(figure4['median_trained_other'])} "
                      f"({figure4['n_pairs_trained_other']} pairs)."]
        lines += ["", "Silhouettes (silhouette*, interval, p) per distance space:", "",
                  "| space | architecture (within activation) | per activation | activation | architecture x activation |",
                  "|---|---|---|---|---|"]
        for space, table in entry["silhouettes"].items():
            def cell(c):
                return f"{_fmt(c['statistic'])} {_interval(c)} p={_fmt(c['p'])}" if c else "-"

            per = "; ".join(f"{k.split('/', 1)[1]} {cell(v)}" for k, v in table.items() if k.startswith("architecture_within/"))
            lines.append(f"| {space} | {cell(table['architecture'])} | {per or '-'} | {cell(table.get('activation'))} "
                         f"| {cell(table.get('architecture_x_activation'))} |")
        lines += ["", "Within / between-architecture mean distance (pairs of the same activation; < 1: "
                  "architectures cluster):", "", "| space | within | between | ratio | ratio (all pairs) |",
                  "|---|---|---|---|---|"]
        for space, ratio in entry["within_between"].items():
            lines.append(f"| {space} | {_fmt(ratio['mean_within'])} | {_fmt(ratio['mean_between'])} "
                         f"| {_fmt(ratio['ratio'])} | {_fmt(ratio['ratio_all'])} |")
        modal = entry.get("modal_class")
        if modal:
            lines += ["", "Fraction in the modal scaffold class per architecture: " + ", ".join(
                f"{a} {_fmt(f, 2)} (n={modal['counts'][a]})" for a, f in modal["fractions"].items())
                + f"; chi-square {_fmt(modal['chi_square'])}, p = {_fmt(modal['p'])}."]
        if entry.get("slow_modes"):
            lines += ["", "Mean number of slow modes per architecture (Fig. 3e/f): " + ", ".join(
                f"{a} {_fmt(v['mean'], 2)} (n={v['n']})" for a, v in entry["slow_modes"].items()) + "."]
        if entry.get("kept"):
            lines += ["", "Kept fraction (trained networks under the keep threshold; an oversampled group "
                      "trains its shards in seed order until population.n_seeds pass, and analyses the first "
                      "n_seeds of them by seed; the rest are surplus):", "",
                      "| architecture | activation | trained | under threshold | fraction | kept (analysed) |",
                      "|---|---|---|---|---|---|"]
            lines += [f"| {k['architecture']} | {k['activation']} | {k['trained']} | {k.get('passed', k['kept'])} "
                      f"| {_fmt(k['fraction'], 2)} | {k['kept']} |" for k in entry["kept"]]
        if entry.get("sensitivity"):
            lines += ["", "Sensitivity of the individuality verdict to the SVCCA dimension k:", "",
                      "| k | silhouette* | 95 % interval | p | n | verdict | changes |", "|---|---|---|---|---|---|---|"]
            lines += [f"| {s['k']} | {_fmt(s['statistic'])} | {_interval(s)} | {_fmt(s['p'])} | {s['n']} "
                      f"| {s['verdict']} | {'yes' if s['changes'] else ''} |" for s in entry["sensitivity"]]
            changes = [s["k"] for s in entry["sensitivity"] if s["changes"]]
            lines.append("")
            lines.append(f"The verdict changes at k = {', '.join(map(str, changes))}." if changes
                         else "The verdict is the same at every k.")
        else:
            lines += ["", "Sensitivity to the SVCCA dimension: not available (no cca/sensitivity matrices)."]
        lines.append("")
    return "\n".join(lines)
