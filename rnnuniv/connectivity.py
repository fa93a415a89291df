"""Does connectivity predict dynamics? Rank correlations with bootstrap intervals, and the summary.

Over the kept networks of a task (rows of ``dynamics/summary.csv``), for every pair of a
connectivity measure ``x`` (:data:`CONNECTIVITY`) and a dynamics measure ``y`` (:data:`DYNAMICS`),
all networks together and per architecture:

- Spearman's ``rho`` (Pearson correlation of the ranks, ties averaged) and its two-sided p-value;
- a percentile bootstrap interval: networks are resampled with replacement ``n_bootstrap`` times
  (``numpy.random.default_rng(seed)``), ``rho`` recomputed, and the ``(1 - level) / 2`` and
  ``(1 + level) / 2`` quantiles of the finite resampled values reported.

The best predictor of dimension per architecture is the connectivity measure with the largest
``|rho|`` against :data:`DIMENSION`; it is called ``clear`` when its bootstrap interval excludes 0
(being the largest is not tested against the runner-up: with tens of networks the intervals of
related measures overlap, and the summary says so by listing them all).
:func:`connectivity_summary` turns these records and the random-mode table into the dict and the
markdown lines of ``results/summary.{json,md}``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

#: Connectivity columns of ``dynamics/summary.csv`` set against the dynamics.
CONNECTIVITY = (
    "participation_rank_candidate",
    "participation_rank_w_rec",
    "effective_rank_candidate",
    "effective_rank_w_rec",
    "gain_candidate",
    "spectral_radius_candidate",
)
#: Dynamics columns: dimension (cross-block and naive participation ratio), largest exponent.
DYNAMICS = ("participation_ratio_cross", "participation_ratio", "lyapunov_1")
#: Fewest networks with a bootstrap interval: resamples of fewer points have so few distinct
#: values that the percentile interval understates the uncertainty (4 monotone points give [1, 1]).
MIN_BOOTSTRAP_N = 6
#: The dimension the best predictor is chosen for.
DIMENSION = "participation_ratio_cross"


def _rank_rows(values: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata  # scipy.stats costs 0.7 s of start-up in every dynamics shard job

    return rankdata(values, axis=-1)


def spearman_interval(x, y, n_bootstrap: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """Spearman ``rho``, p-value and bootstrap interval over the pairs where neither is NaN.

    Returns ``{"n", "rho", "p_value", "ci_low", "ci_high"}``; the numbers are None for fewer than 3
    pairs or a constant column, and the interval is None for fewer than :data:`MIN_BOOTSTRAP_N`
    pairs or if fewer than half the resamples are defined (not constant).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    keep = ~(np.isnan(x) | np.isnan(y))
    x, y = x[keep], y[keep]
    result = {"n": int(x.size), "rho": None, "p_value": None, "ci_low": None, "ci_high": None}
    if x.size < 3 or np.unique(x).size < 2 or np.unique(y).size < 2:
        return result
    from scipy.stats import spearmanr

    rho, p_value = spearmanr(x, y)
    result.update(rho=float(rho), p_value=float(p_value))
    if x.size < MIN_BOOTSTRAP_N:
        return result
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, x.size, size=(int(n_bootstrap), x.size))
    rx, ry = _rank_rows(x[draws]), _rank_rows(y[draws])  # [B, n] ranks of each resample
    rx -= rx.mean(-1, keepdims=True)
    ry -= ry.mean(-1, keepdims=True)
    norm = np.sqrt((rx * rx).sum(-1) * (ry * ry).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = (rx * ry).sum(-1) / norm
    boot = boot[np.isfinite(boot)]
    if boot.size >= max(int(n_bootstrap) // 2, 1):
        low, high = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
        result.update(ci_low=float(low), ci_high=float(high))
    return result


def correlation_records(
    table: pd.DataFrame, n_bootstrap: int = 1000, seed: int = 0, level: float = 0.95,
    connectivity=CONNECTIVITY, dynamics=DYNAMICS,
) -> list[dict]:
    """One record per (architecture or ``all``, connectivity column, dynamics column) present."""
    groups = [("all", table)] + [(a, rows) for a, rows in table.groupby("architecture", sort=True)]
    return [
        {"architecture": name, "connectivity": x, "dynamics": y,
         **spearman_interval(rows[x], rows[y], n_bootstrap, seed, level)}
        for name, rows in groups
        for x in connectivity if x in table
        for y in dynamics if y in table
    ]


def best_predictors(records: list[dict], dynamics: str = DIMENSION) -> dict:
    """Per architecture (and ``all``): the connectivity measure with the largest ``|rho|`` against
    ``dynamics``, with its interval and ``clear`` = the interval excludes 0; None if no rho."""
    best = {}
    for record in records:
        if record["dynamics"] != dynamics:
            continue
        name = record["architecture"]
        best.setdefault(name, None)
        if record["rho"] is None:
            continue
        if best[name] is None or abs(record["rho"]) > abs(best[name]["rho"]):
            best[name] = record
    return {
        name: None if r is None else {
            "connectivity": r["connectivity"], "rho": r["rho"], "ci_low": r["ci_low"],
            "ci_high": r["ci_high"], "n": r["n"],
            "clear": r["ci_low"] is not None and (r["ci_low"] > 0 or r["ci_high"] < 0),
        }
        for name, r in best.items()
    }


def _fmt(value, digits: int = 2) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def connectivity_summary(correlations: dict, random_mode: pd.DataFrame | None = None) -> tuple[dict, list[str]]:
    """The connectivity-dynamics part of the summary.

    correlations: task -> the content of ``results/{task}/dynamics/correlations.json``.
    random_mode: ``results/random_mode/table.csv`` or None.
    Returns ``(summary, lines)``: the dict stored under ``"connectivity"`` in summary.json and the
    markdown lines of its section in summary.md.
    """
    summary = {"tasks": {}, "random_mode": None}
    lines = ["## Connectivity and dynamics (beyond the paper)", ""]
    for task, content in correlations.items():
        records = content.get("correlations", [])
        best = content.get("best_predictor") or best_predictors(records)
        summary["tasks"][task] = {"n_networks": content.get("n_networks"), "best_predictor": best,
                                  "correlations": records}
        boot = content.get("bootstrap", {})
        measures = list(dict.fromkeys(r["connectivity"] for r in records if r["dynamics"] == DIMENSION))
        cells = {(r["architecture"], r["connectivity"]): r for r in records if r["dynamics"] == DIMENSION}
        lines += [f"### {task} ({content.get('n_networks', 0)} kept networks)", "",
                  f"Spearman rho of dimension (cross-block participation ratio of probe states) with each "
                  f"connectivity measure, [{int(round(100 * boot.get('level', 0.95)))} % bootstrap interval over "
                  f"networks, {boot.get('n_bootstrap', '?')} resamples]; n/a: fewer than 3 networks or a "
                  f"constant column; no interval below {MIN_BOOTSTRAP_N} networks.", "",
                  "| architecture (n) | " + " | ".join(measures) + " |", "|---" * (len(measures) + 1) + "|"]
        for name in dict.fromkeys(r["architecture"] for r in records):
            row = [cells.get((name, m)) for m in measures]
            n = max((r["n"] for r in row if r), default=0)
            lines.append(f"| {name} ({n}) | " + " | ".join(
                "n/a" if r is None or r["rho"] is None else
                f"{_fmt(r['rho'])} [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]" for r in row) + " |")
        lines.append("")
        for name, b in best.items():
            if b is None:
                lines.append(f"- {name}: no measure has a defined correlation with dimension.")
            else:
                verdict = "interval excludes 0" if b["clear"] else "interval includes 0: no clear predictor"
                lines.append(f"- {name}: best predictor of dimension is {b['connectivity']} "
                             f"(rho {_fmt(b['rho'])}, [{_fmt(b['ci_low'])}, {_fmt(b['ci_high'])}]; {verdict}).")
        lines.append("")
    if random_mode is not None and len(random_mode):
        rows = random_mode.sort_values(["gain", "rank"])
        summary["random_mode"] = rows.to_dict(orient="records")
        n = int(rows["n"].iloc[0]) if "n" in rows else None
        lines += [f"### Random-mode model (N = {n}, flow dx/dt = -x + J tanh(x))", "",
                  "| spectrum | gain | effective rank | dimension | dimension / N | lambda_max | <x^2> |",
                  "|---|---|---|---|---|---|---|"]
        for r in rows.itertuples():
            lines.append(f"| {r.kind} | {r.gain:g} | {r.rank:.1f} | {_fmt(r.dimension, 1)} | "
                         f"{_fmt(r.dimension / r.n, 3)} | {_fmt(r.lyapunov_max, 3)} | {_fmt(r.mean_square, 3)} |")
        lines.append("")
    return summary, lines
