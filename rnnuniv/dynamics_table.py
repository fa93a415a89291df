"""The dynamics stage's tables: connectivity and dynamics of every kept network of a shard, and a
task's correlations between them (beyond the paper; scripts/dynamics.py).

Per network (:func:`shard_table`): the participation ratio of its probe hidden states, naive and
cross-block (``pr_blocks`` blocks of interleaved probe trials, :func:`cross_block_ratio`); the
connectivity measures of ``w_rec`` (:func:`rnnuniv.dynamics.connectivity_metrics`); the top
``n_exponents`` Lyapunov exponents of its full state driven by ``n_trials`` probe trials spread
over the probe set (:func:`trial_indices`), from the zero state, the first ``warmup_fraction`` of
the steps not counted, averaged over the trials (natural log per step).

Per task (:func:`correlations_record`): the Spearman correlations with bootstrap intervals and
the best predictor of dimension per architecture (:mod:`rnnuniv.connectivity`).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import torch

from .connectivity import best_predictors, correlation_records
from .dynamics import CONNECTIVITY_METRICS, connectivity_metrics, network_lyapunov_spectra, participation_ratio
from .networks import labels

log = logging.getLogger("rnnuniv")

__all__ = ["DEFAULT_OPTIONS", "check_options", "correlations_record", "cross_block_ratio", "shard_table",
           "trial_indices"]  # fmt: skip

DEFAULT_OPTIONS = {"n_exponents": 8, "n_trials": 4, "warmup_fraction": 0.25, "qr_every": 1, "seed": 0,
                   "pr_blocks": 4, "n_bootstrap": 1000, "bootstrap_seed": 0, "interval_level": 0.95}  # fmt: skip


def check_options(options: dict) -> dict:
    """``options`` over :data:`DEFAULT_OPTIONS`; an unknown key is a ValueError naming the valid ones."""
    unknown = sorted(set(options) - set(DEFAULT_OPTIONS))
    if unknown:
        raise ValueError(f"unknown dynamics options {unknown}; valid: {sorted(DEFAULT_OPTIONS)}")
    return {**DEFAULT_OPTIONS, **options}


def trial_indices(n_available: int, n_trials: int) -> np.ndarray:
    """``n_trials`` probe trials spread evenly over the probe set (which is ordered by condition)."""
    return np.unique(np.linspace(0, n_available - 1, min(n_trials, n_available)).round().astype(int))


def cross_block_ratio(hidden: np.ndarray, n_blocks: int) -> np.ndarray:
    """Cross-block participation ratio of ``hidden`` ``[N, K, T, n]``, blocks of interleaved trials
    (block ``a`` = trials ``a, a + B, ...``: the probe set is ordered by condition, so contiguous
    blocks would differ systematically); NaN for every network if there are fewer than 2 trials."""
    n_trials = hidden.shape[1]
    n_blocks = min(int(n_blocks), n_trials)
    if n_blocks < 2:
        return np.full(hidden.shape[0], np.nan)
    order = np.concatenate([np.arange(a, n_trials, n_blocks) for a in range(n_blocks)])
    return participation_ratio(hidden[:, order], batch_dims=1, n_blocks=n_blocks).numpy()


def shard_table(cell, params: dict, rows: pd.DataFrame, hidden: np.ndarray, probe_inputs: np.ndarray,
                options: dict, device="cpu") -> pd.DataFrame:
    """One row per network of ``rows`` (manifest rows, in the order of ``params`` and ``hidden``
    [N, K, T, n]): its labels, participation ratios, connectivity measures and exponents."""
    options = check_options(options)
    table = labels(rows)
    n_exponents = min(int(options["n_exponents"]), cell.state_size(params["w_rec"].shape[-2]))
    columns = [*table.columns, "participation_ratio", "participation_ratio_cross", *CONNECTIVITY_METRICS]
    columns += [f"lyapunov_{i + 1}" for i in range(n_exponents)]
    if table.empty:
        return table.reindex(columns=columns)

    table["participation_ratio"] = participation_ratio(hidden, batch_dims=1).numpy()
    table["participation_ratio_cross"] = cross_block_ratio(hidden, int(options["pr_blocks"]))
    for name, values in connectivity_metrics(params["w_rec"], cell.architecture).items():
        table[name] = values.cpu().numpy()

    trials = trial_indices(probe_inputs.shape[0], int(options["n_trials"]))
    n_steps = probe_inputs.shape[1]
    n_warmup = min(int(options["warmup_fraction"] * n_steps), n_steps - 1)
    exponents = network_lyapunov_spectra(
        cell,
        {k: v.to(torch.float64) for k, v in params.items()},
        torch.as_tensor(probe_inputs[trials], device=device, dtype=torch.float64),
        n_exponents=n_exponents,
        n_warmup=n_warmup,
        qr_every=int(options["qr_every"]),
        seed=int(options["seed"]),
    )  # [N, trials, k]
    mean_exponents = exponents.mean(dim=1).cpu().numpy()
    for i in range(n_exponents):
        table[f"lyapunov_{i + 1}"] = mean_exponents[:, i]
    log.info("%d kept networks: %d exponents over %d trials x %d steps (%d warm-up)",
             len(table), n_exponents, len(trials), n_steps, n_warmup)  # fmt: skip
    return table.reindex(columns=columns)


def correlations_record(task: str, summary: pd.DataFrame, options: dict) -> dict:
    """The correlations JSON of a task from its concatenated shard tables (scripts/dynamics.py)."""
    options = {**DEFAULT_OPTIONS, **options}
    bootstrap = {
        "n_bootstrap": int(options["n_bootstrap"]),
        "seed": int(options["bootstrap_seed"]),
        "level": float(options["interval_level"]),
    }
    records = correlation_records(summary, bootstrap["n_bootstrap"], bootstrap["seed"], bootstrap["level"])
    return {
        "task": task,
        "method": "spearman",
        "n_networks": len(summary),
        "bootstrap": bootstrap,
        "correlations": records,
        "best_predictor": best_predictors(records),
    }
