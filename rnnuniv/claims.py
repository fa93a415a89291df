"""The paper's claims, one row each, from the run's matrices and tables (pure functions).

A row is a dict ``{"claim", "statistic_name", "statistic", "lower", "upper", "p", "n", "verdict",
"reason"}`` (``p`` nan where no test applies). Intervals are 95 % percentile bootstraps over
networks, p-values label permutations; see :mod:`rnnuniv.stats` for the resampling and the
verdict rules. The claims (Maheswaranathan et al. 2019):

* individuality: the SVCCA geometry separates architectures (within each activation) and
  activations (:func:`individuality_rows`);
* universality: the fixed-point scaffold is shared across architectures: the architecture
  silhouette of the topology distance stays below ``mixed`` (:func:`universality_row`), beside
  the fraction of networks in the modal scaffold class per architecture
  (:func:`modal_class_by_architecture`: permutation test of equal fractions);
* figure 4 (:func:`figure4_claim`): SVCCA similarity of a trained network to an untrained one of
  the same activation exceeds that of two trained networks of different activations,

      d = median_{(i,j): T-U, same act} (1 - D_ij) - median_{(i,j): T-T, other act} (1 - D_ij) > 0;

* task claims: a fraction of networks with a property (:func:`fraction_claim`), a median of a
  per-network value (:func:`median_claim`), a difference of means between two sets of
  architectures (:func:`mean_difference_claim`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from rnnuniv import stats

__all__ = [
    "row",
    "figure4_claim",
    "fraction_claim",
    "median_claim",
    "mean_difference_claim",
    "modal_class_by_architecture",
    "kept_fractions",
    "within_between_ratio",
]


def row(claim: str, statistic_name: str, result: dict, verdict: dict | None = None) -> dict:
    """One claim row from a statistic dict (statistic, lower, upper, p, n) and a verdict."""
    verdict = verdict or {"verdict": "not available", "reason": ""}
    return {"claim": claim, "statistic_name": statistic_name,
            **{k: _number(result.get(k)) for k in ("statistic", "lower", "upper", "p")},
            "n": int(result.get("n", 0)), "verdict": verdict["verdict"], "reason": verdict["reason"]}


def not_available(claim: str, statistic_name: str, why: str) -> dict:
    """A row for a claim whose input column or file is absent."""
    return {"claim": claim, "statistic_name": statistic_name, "statistic": math.nan, "lower": math.nan,
            "upper": math.nan, "p": math.nan, "n": 0, "verdict": "not available", "reason": why}


def _number(value) -> float:
    return math.nan if value is None else float(value)


def _pair_difference(d, trained, activation, draws) -> float:
    """d for the networks ``draws`` (pairs of a network with its own copy left out)."""
    t = trained[draws]
    a = activation[draws]
    upper = np.triu(np.ones((draws.size, draws.size), dtype=bool), 1) & (draws[:, None] != draws[None, :])
    sub = d[np.ix_(draws, draws)]
    upper &= np.isfinite(sub)
    same = a[:, None] == a[None, :]
    tu = upper & same & (t[:, None] ^ t[None, :])
    tt = upper & ~same & (t[:, None] & t[None, :])
    if not tu.any() or not tt.any():
        return math.nan
    return float(np.median(1 - sub[tu]) - np.median(1 - sub[tt]))


def figure4_claim(distance, trained, activation, n_bootstrap: int = 1000, n_permutations: int = 1000,
                  seed: int = 0) -> dict:
    """Figure 4 statistic d (module docstring), interval and one-sided permutation p.

    distance [N, N] SVCCA distance over trained and untrained networks; trained [N] bool;
    activation [N]. Bootstrap: networks resampled within (trained, activation) cells. Permutation:
    activation labels shuffled within the trained and within the untrained networks. The null is
    "sharing an activation means nothing": then both pair groups are plain trained-untrained and
    trained-trained pairs, and d is what training status alone gives (usually < 0, untrained
    networks being unlike trained ones). Small p: sharing the activation lifts the trained-
    untrained similarity above the cross-activation trained pairs more than chance. Also returns the two medians
    and pair counts (``median_trained_untrained_same``, ``median_trained_other``).
    """
    d = np.asarray(distance, dtype=np.float64)
    trained = np.asarray(trained, dtype=bool)
    activation = np.asarray(activation).astype(str)
    everyone = np.arange(d.shape[0])
    observed = _pair_difference(d, trained, activation, everyone)
    cells = np.char.add(np.where(trained, "trained|", "untrained|"), activation.astype(str))
    rng = np.random.default_rng(seed)
    boot, perm = [], []
    if math.isfinite(observed):
        boot = [_pair_difference(d, trained, activation, stats.stratified_resample(cells, rng))
                for _ in range(n_bootstrap)]
        perm = [_pair_difference(d, trained, stats.shuffle_within(activation, trained, rng), everyone)
                for _ in range(n_permutations)]
    lower, upper = stats.percentile_interval(boot)
    upper_pairs = np.triu(np.ones(d.shape, dtype=bool), 1) & np.isfinite(d)
    same = activation[:, None] == activation[None, :]
    tu = upper_pairs & same & (trained[:, None] ^ trained[None, :])
    tt = upper_pairs & ~same & (trained[:, None] & trained[None, :])
    medians = {name: float(np.median(1 - d[mask])) if mask.any() else math.nan
               for name, mask in (("median_trained_untrained_same", tu), ("median_trained_other", tt))}
    return {"statistic": observed, "lower": lower, "upper": upper,
            "p": stats.permutation_p(observed, perm), "n": int(d.shape[0]),
            "groups": stats.group_sizes(cells), "n_pairs_trained_untrained_same": int(tu.sum()),
            "n_pairs_trained_other": int(tt.sum()), **medians}


def fraction_claim(values, strata=None, n_bootstrap: int = 1000, seed: int = 0) -> dict:
    """Fraction of True among ``values`` [N] with a bootstrap interval (networks resampled)."""
    x = np.asarray(values, dtype=bool)
    if x.size == 0:
        return {"statistic": math.nan, "lower": math.nan, "upper": math.nan, "p": math.nan, "n": 0}
    lower, upper = stats.bootstrap_values(lambda draws: float(x[draws].mean()), x.size, strata,
                                          n_bootstrap, seed)
    return {"statistic": float(x.mean()), "lower": lower, "upper": upper, "p": math.nan, "n": int(x.size)}


def median_claim(values, strata=None, n_bootstrap: int = 1000, seed: int = 0) -> dict:
    """Median of the finite ``values`` with a bootstrap interval."""
    x = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(x)
    x = x[keep]
    if x.size == 0:
        return {"statistic": math.nan, "lower": math.nan, "upper": math.nan, "p": math.nan, "n": 0}
    strata = None if strata is None else np.asarray(strata)[keep]
    lower, upper = stats.bootstrap_values(lambda draws: float(np.median(x[draws])), x.size, strata,
                                          n_bootstrap, seed)
    return {"statistic": float(np.median(x)), "lower": lower, "upper": upper, "p": math.nan,
            "n": int(x.size)}


def mean_difference_claim(values, in_first, strata=None, shuffle_strata=None, n_bootstrap: int = 1000,
                          n_permutations: int = 1000, seed: int = 0) -> dict:
    """mean(values[in_first]) - mean(values[~in_first]), interval and one-sided permutation p.

    Bootstrap within ``strata`` (default: the two sets); the permutation shuffles ``in_first``
    within ``shuffle_strata``. Networks with a non-finite value are left out.
    """
    x = np.asarray(values, dtype=np.float64)
    first = np.asarray(in_first, dtype=bool)
    keep = np.isfinite(x)
    x, first = x[keep], first[keep]
    strata = first.astype(str) if strata is None else np.asarray(strata).astype(str)[keep]
    shuffle_strata = None if shuffle_strata is None else np.asarray(shuffle_strata)[keep]

    def difference(flags, draws=None):
        draws = np.arange(x.size) if draws is None else draws
        a, b = x[draws][flags[draws]], x[draws][~flags[draws]]
        return float(a.mean() - b.mean()) if a.size and b.size else math.nan

    observed = difference(first)
    rng = np.random.default_rng(seed)
    boot, perm = [], []
    if math.isfinite(observed):
        boot = [difference(first, stats.stratified_resample(strata, rng)) for _ in range(n_bootstrap)]
        perm = [difference(stats.shuffle_within(first, shuffle_strata, rng)) for _ in range(n_permutations)]
    lower, upper = stats.percentile_interval(boot)
    return {"statistic": observed, "lower": lower, "upper": upper, "p": stats.permutation_p(observed, perm),
            "n": int(x.size), "groups": stats.group_sizes(np.where(first, "first", "second"))}


def _chi_square(flags: np.ndarray, groups: np.ndarray) -> float:
    """Pearson chi-square of the 2 x G table (flag x group); 0 when a margin is empty."""
    names = np.unique(groups)
    table = np.array([[np.sum((groups == g) & flags), np.sum((groups == g) & ~flags)] for g in names], float)
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / max(table.sum(), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(expected > 0, (table - expected) ** 2 / expected, 0.0)
    return float(terms.sum())


def modal_class_by_architecture(in_modal, architecture, activation, n_permutations: int = 1000,
                                seed: int = 0) -> dict:
    """Fraction of networks in the modal scaffold class per architecture, and whether they differ.

    Test statistic: Pearson chi-square of the in-modal x architecture table; p from shuffling the
    architecture labels within each activation. Small p: the fractions differ by architecture.
    """
    flags = np.asarray(in_modal, dtype=bool)
    arch = np.asarray(architecture).astype(str)
    act = np.asarray(activation).astype(str)
    fractions = {name: float(flags[arch == name].mean()) for name in np.unique(arch)}
    counts = stats.group_sizes(arch)
    observed = _chi_square(flags, arch) if flags.size else math.nan
    rng = np.random.default_rng(seed)
    perm = [_chi_square(flags, stats.shuffle_within(arch, act, rng)) for _ in range(n_permutations)] \
        if flags.size else []
    return {"fractions": fractions, "counts": counts, "chi_square": observed,
            "p": stats.permutation_p(observed, perm), "n": int(flags.size)}


def kept_fractions(networks: pd.DataFrame) -> list[dict]:
    """Per architecture x activation: trained networks, those under the keep threshold
    (``passed``: kept and surplus), the kept (analysed) ones, and the passed fraction. Untrained
    twins and not-needed oversampling seeds (never trained) are not counted."""
    table = networks[~networks["status"].astype(str).isin(["untrained", "not-needed"])]
    rows = []
    for (arch, act), group in table.groupby(["architecture", "activation"], sort=True):
        status = group["status"].astype(str)
        kept = int((status == "kept").sum())
        passed = kept + int((status == "surplus").sum())
        rows.append({"architecture": str(arch), "activation": str(act), "trained": int(len(group)),
                     "passed": passed, "kept": kept, "fraction": passed / len(group) if len(group) else math.nan})
    return rows


def within_between_ratio(distance, architecture, activation) -> dict:
    """Mean within-architecture / mean between-architecture distance, pairs within an activation.

    Pairs (i < j) of the same activation only, so that activation differences do not enter;
    ratio < 1: architectures cluster. Also the plain ratio over all pairs (``ratio_all``).
    """
    d = np.asarray(distance, dtype=np.float64)
    arch = np.asarray(architecture).astype(str)
    act = np.asarray(activation).astype(str)
    upper = np.triu(np.ones(d.shape, dtype=bool), 1) & np.isfinite(d)
    same_arch = arch[:, None] == arch[None, :]
    same_act = act[:, None] == act[None, :]

    def ratio(mask):
        within, between = d[mask & same_arch], d[mask & ~same_arch]
        if within.size == 0 or between.size == 0 or between.mean() == 0:
            return math.nan, (float(within.mean()) if within.size else math.nan), \
                (float(between.mean()) if between.size else math.nan)
        return float(within.mean() / between.mean()), float(within.mean()), float(between.mean())

    r, w, b = ratio(upper & same_act)
    r_all, _, _ = ratio(upper)
    return {"ratio": r, "mean_within": w, "mean_between": b, "ratio_all": r_all}
