"""Statistics of the claims: silhouettes with bootstrap intervals, permutation p-values, verdicts.

Everything is a pure function of arrays (a network-by-network distance matrix ``D`` [N, N], label
arrays [N], per-network values [N]) and a seed, so a claim is reproducible from the files alone.

Silhouette (Rousseeuw 1987) of a labelling, over the pairs allowed by a mask ``M`` (M_ij = 1 when
the pair i, j counts):

    a_i = mean_{j in g(i), M_ij} D_ij,   b_i = min_{h != g(i)} mean_{j in h, M_ij} D_ij,
    s_i = (b_i - a_i) / max(a_i, b_i)    (s_i = 0 when i has no allowed partner in its group),
    s   = mean_i s_i.

The reported statistic is chance-corrected, ``s* = s - mean(s_perm)``: the silhouette of random
labels is negative (b_i is a minimum over groups), about -0.1 for groups of 8, so an uncorrected
interval of shuffled labels would lie below 0 and make "mixed" look stronger than it is.

Without resampling ``M = 1 - I``. Bootstrap over networks: draw networks with replacement within
each stratum (the architecture x activation cell, so every group keeps its size), and set
``M_ij = 0`` whenever the draws i and j are the same network. A duplicate therefore never meets its
twin at distance 0 (which would inflate a_i towards 0 and s towards 1); it is compared with the
other networks only. The 95 % interval is the 2.5 / 97.5 percentile of the replicates, re-centred
on the observed value (replicates have fewer distinct networks, which biases them down).

Permutation test: labels shuffled within strata (architecture within each activation), the
statistic recomputed; ``p = (1 + #{s_perm >= s_obs}) / (1 + n_perm)`` (one-sided, never 0).

Verdicts (fixed before looking at results; thresholds from the config's ``summary:`` section):

* separation (individuality): inconclusive if a group has < ``min_group`` networks; held if
  ``lower >= separated`` and ``p < alpha``; not held if ``upper < separated`` or ``p >= alpha``;
  otherwise inconclusive (the interval spans the threshold).
* mixing (universality): inconclusive if a group is too small; held if ``upper < mixed``; not held
  if ``lower >= mixed``; otherwise inconclusive.
* positive difference (figure 4, slow modes): held if ``lower > 0`` and ``p < alpha``; not held
  if ``upper <= 0``; otherwise inconclusive.
* fraction / level: held if ``lower >= threshold``; not held if ``upper < threshold``; otherwise
  inconclusive; inconclusive too when n < ``min_group``.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

__all__ = [
    "masked_silhouette",
    "masked_silhouettes",
    "stratified_resample",
    "stratified_resamples",
    "shuffle_within",
    "shuffles_within",
    "percentile_interval",
    "permutation_p",
    "silhouette_claim",
    "silhouette_table",
    "architecture_claim",
    "bootstrap_values",
    "group_sizes",
    "separation_verdict",
    "mixing_verdict",
    "difference_verdict",
    "level_verdict",
]

HELD, NOT_HELD, INCONCLUSIVE = "held", "not held", "inconclusive"


def _codes(labels) -> tuple[np.ndarray, np.ndarray]:
    names, codes = np.unique(np.asarray(labels).astype(str), return_inverse=True)
    return names, codes.reshape(-1)


def masked_silhouette(distance, labels, draws=None) -> float:
    """Mean silhouette of ``labels`` on ``distance`` [N, N], optionally on resampled ``draws``.

    draws [M] (indices into the N networks, repeats allowed): the silhouette of the resampled
    set, where pairs of draws of the same network are left out of every mean (module docstring).
    nan when fewer than 2 groups are present.
    """
    return float(masked_silhouettes(distance, labels, draws)[0])


def masked_silhouettes(distance, labels, draws=None, max_bytes: int = 2**27) -> np.ndarray:
    """:func:`masked_silhouette` of many replicates at once, ``[B]``.

    labels: [N] (shared) or [B, N] (one labelling per replicate, e.g. permutations); draws: [M]
    or [B, M] indices into the N networks (None: all of them). Replicates are evaluated in chunks
    of at most ``max_bytes`` of [M, M] float64 work arrays, so memory stays bounded at any N.
    """
    d = np.asarray(distance, dtype=np.float64)
    labels = np.asarray(labels)
    names, codes = np.unique(labels.astype(str), return_inverse=True)
    codes = codes.reshape(labels.shape)
    if draws is None:
        draws = np.arange(d.shape[0])
    draws = np.asarray(draws, dtype=int)
    batch = max(codes.shape[0] if codes.ndim == 2 else 1, draws.shape[0] if draws.ndim == 2 else 1)
    draws = np.broadcast_to(draws, (batch, draws.shape[-1]))
    codes = np.broadcast_to(codes, (batch, codes.shape[-1]))
    n_draws, n_groups = draws.shape[1], len(names)
    out = np.full(batch, np.nan)
    if n_draws < 3:
        return out
    chunk = max(1, int(max_bytes // (3 * 8 * n_draws * n_draws)))
    eye = np.eye(n_groups)
    for start in range(0, batch, chunk):
        idx = draws[start : start + chunk]  # [b, M]
        own = np.take_along_axis(codes[start : start + chunk], idx, axis=1)  # [b, M]
        sub = d[idx[:, :, None], idx[:, None, :]]
        allowed = (idx[:, :, None] != idx[:, None, :]).astype(np.float64)
        onehot = eye[own]  # [b, M, G]
        sums = (sub * allowed) @ onehot
        counts = allowed @ onehot
        with np.errstate(invalid="ignore", divide="ignore"):
            means = sums / counts
        a = np.take_along_axis(means, own[..., None], axis=2)[..., 0]
        others = means.copy()
        np.put_along_axis(others, own[..., None], np.inf, axis=2)
        others[counts == 0] = np.inf
        b = others.min(2)
        with np.errstate(invalid="ignore", divide="ignore"):
            value = (b - a) / np.maximum(a, b)
        alone = np.take_along_axis(counts, own[..., None], axis=2)[..., 0] == 0
        value = np.where(alone, 0.0, value)
        value = np.where(np.isfinite(value), value, 0.0)
        present = onehot.any(axis=1).sum(axis=1)  # groups among the draws
        out[start : start + chunk] = np.where(present >= 2, value.mean(axis=1), np.nan)
    return out


def _members(strata) -> list[np.ndarray]:
    _, codes = _codes(strata)
    return [np.flatnonzero(codes == code) for code in np.unique(codes)]


def stratified_resample(strata, rng: np.random.Generator) -> np.ndarray:
    """Indices [N]: within each stratum, as many draws with replacement as the stratum has."""
    return stratified_resamples(strata, rng, 1)[0]


def stratified_resamples(strata, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` :func:`stratified_resample` draws, [n, N] (the same random stream as n calls)."""
    members = _members(strata)
    out = np.empty((n, sum(m.size for m in members)), dtype=int)
    for row in out:
        for group in members:
            # rng.choice(group, group.size, replace=True) draws exactly these integers (numpy's
            # Generator.choice without p); called directly, at half its overhead
            row[group] = group[rng.integers(0, group.size, size=group.size, dtype=np.int64)]
    return out


def shuffle_within(labels, strata, rng: np.random.Generator) -> np.ndarray:
    """A copy of ``labels`` permuted within each stratum (``strata=None``: over all)."""
    return shuffles_within(labels, strata, rng, 1)[0]


def shuffles_within(labels, strata, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` :func:`shuffle_within` permutations, [n, N] (the same random stream as n calls)."""
    labels = np.asarray(labels)
    out = np.empty((n, labels.size), dtype=labels.dtype)
    if strata is None:
        for row in range(n):
            out[row] = rng.permutation(labels)
        return out
    members = _members(strata)
    for row in range(n):
        out[row] = labels
        for group in members:
            out[row, group] = labels[rng.permutation(group)]
    return out


def percentile_interval(values, level: float = 0.95) -> tuple[float, float]:
    """The (1 - level)/2 and (1 + level)/2 percentiles of the finite values; nan if none."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan"), float("nan")
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def permutation_p(observed: float, permuted) -> float:
    """One-sided p = (1 + #{permuted >= observed}) / (1 + n); nan if observed is nan."""
    permuted = np.asarray(permuted, dtype=np.float64)
    if not math.isfinite(observed) or permuted.size == 0:
        return float("nan")
    return float((1 + np.sum(permuted >= observed - 1e-12)) / (1 + permuted.size))


def group_sizes(labels) -> dict[str, int]:
    names, counts = np.unique(np.asarray(labels).astype(str), return_counts=True)
    return {str(n): int(c) for n, c in zip(names, counts)}


def _claim(observed: float, boot, perm, n: int, groups: dict, n_bootstrap: int, n_permutations: int) -> dict:
    """Chance-corrected silhouette claim from the raw statistic and its resamples.

    statistic = s_obs - mean(s_perm) (0 = no more grouping than shuffled labels; the raw
    silhouette of random labels is below 0, the more so the smaller the groups). Interval: the
    bootstrap percentiles re-centred on s_obs (shift s_obs - median(s_boot), because a replicate
    has fewer distinct networks per group, which biases its silhouette down), minus the same
    chance level. p compares raw values and is unaffected by the correction.
    """
    chance = float(np.mean(perm)) if len(perm) else 0.0
    lower, upper = percentile_interval(boot)
    finite = np.asarray(boot, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    shift = observed - float(np.median(finite)) if finite.size else 0.0
    return {"statistic": observed - chance, "lower": lower + shift - chance, "upper": upper + shift - chance,
            "p": permutation_p(observed, perm), "raw": observed, "chance": chance, "n": int(n),
            "groups": groups, "n_bootstrap": int(n_bootstrap), "n_permutations": int(n_permutations)}


def silhouette_claim(distance, labels, bootstrap_strata, permutation_strata=None,
                     n_bootstrap: int = 1000, n_permutations: int = 1000, seed: int = 0) -> dict:
    """Silhouette of ``labels`` with a stratified bootstrap interval and a permutation p-value.

    Returns ``{"statistic", "lower", "upper", "p", "raw", "chance", "n", "groups": {label: size},
    "n_bootstrap", "n_permutations"}``; statistic and interval are chance-corrected (``raw`` minus
    ``chance``, the mean silhouette of shuffled labels; see :func:`_claim`). Bootstrap draws networks within ``bootstrap_strata``; the permutation
    shuffles ``labels`` within ``permutation_strata`` (None: over all networks).
    """
    labels = np.asarray(labels).astype(str)
    observed = masked_silhouette(distance, labels)
    rng = np.random.default_rng(seed)
    boot, perm = [], []
    if math.isfinite(observed):
        boot = masked_silhouettes(distance, labels, stratified_resamples(bootstrap_strata, rng, n_bootstrap))
        perm = masked_silhouettes(distance, shuffles_within(labels, permutation_strata, rng, n_permutations))
    return _claim(observed, boot, perm, labels.size, group_sizes(labels), n_bootstrap, n_permutations)


def silhouette_table(distance, architecture, activation, n_bootstrap: int = 1000,
                     n_permutations: int = 1000, seed: int = 0) -> dict:
    """Every silhouette of one distance matrix, each with interval and p (:func:`silhouette_claim`).

    Keys: ``architecture`` (pooled: mean over networks of the architecture silhouette computed
    within each activation, so activation differences cannot masquerade as architecture ones;
    labels shuffled within activation), ``architecture_within/<act>`` (one activation alone),
    ``activation`` (shuffled within architecture) and ``architecture_x_activation`` (the joint
    label, shuffled over all). Bootstrap strata: the architecture x activation cells.
    """
    d = np.asarray(distance, dtype=np.float64)
    arch = np.asarray(architecture).astype(str)
    act = np.asarray(activation).astype(str)
    cells = np.char.add(np.char.add(arch, "|"), act)
    options = {"n_bootstrap": n_bootstrap, "n_permutations": n_permutations}
    table = {}
    within = {}
    for number, name in enumerate(np.unique(act)):
        rows = np.flatnonzero(act == name)
        within[name] = (rows, silhouette_claim(d[np.ix_(rows, rows)], arch[rows], arch[rows], None,
                                               seed=seed + 1 + number, **options))
        table[f"architecture_within/{name}"] = within[name][1]
    table["architecture"] = architecture_claim(d, arch, act, seed, **options)
    table["activation"] = silhouette_claim(d, act, cells, arch, seed=seed + 101, **options)
    table["architecture_x_activation"] = silhouette_claim(d, cells, cells, None, seed=seed + 202, **options)
    return table


def architecture_claim(d, arch, act, seed: int = 0, n_bootstrap: int = 1000, n_permutations: int = 1000) -> dict:
    """Architecture silhouette computed inside each activation, averaged over networks.

    s_arch = sum_a n_a s(arch | activation a) / sum_a n_a; bootstrap within architecture x
    activation cells, architecture labels shuffled within each activation.
    """
    d = np.asarray(d, dtype=np.float64)
    arch = np.asarray(arch).astype(str)
    act = np.asarray(act).astype(str)
    groups = [np.flatnonzero(act == name) for name in np.unique(act)]

    def pooled(labels, draws=None) -> np.ndarray:
        """[B] pooled silhouettes of labels [N] or [B, N] on draws [B, N] (None: all networks)."""
        total, count = 0.0, 0
        for rows in groups:
            chosen = rows if draws is None else draws[..., rows]  # draws stay inside the activation
            value = masked_silhouettes(d, labels, chosen)
            finite = np.isfinite(value)
            total = total + np.where(finite, value * rows.size, 0.0)
            count = count + np.where(finite, rows.size, 0)
        with np.errstate(invalid="ignore", divide="ignore"):  # [B], also when no group scored
            return np.atleast_1d(np.where(count > 0, total / np.maximum(count, 1), np.nan))

    cells = np.char.add(np.char.add(arch, "|"), act)
    observed = float(pooled(arch)[0])
    rng = np.random.default_rng(seed)
    boot, perm = [], []
    if math.isfinite(observed):
        boot = pooled(arch, stratified_resamples(cells, rng, n_bootstrap))
        perm = pooled(shuffles_within(arch, act, rng, n_permutations))
    return _claim(observed, boot, perm, arch.size, group_sizes(cells), n_bootstrap, n_permutations)


def bootstrap_values(statistic: Callable[[np.ndarray], float], n: int, strata=None,
                     n_bootstrap: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of ``statistic(draws)`` over networks resampled (within ``strata``).

    ``statistic`` takes indices [n] into the networks and returns a number.
    """
    rng = np.random.default_rng(seed)
    strata = np.zeros(n, dtype=int) if strata is None else strata
    return percentile_interval([statistic(stratified_resample(strata, rng)) for _ in range(n_bootstrap)])


def _too_small(sizes: dict[str, int], min_group: int) -> str | None:
    small = {k: v for k, v in sizes.items() if v < min_group}
    if not sizes:
        return "no networks"
    if small:
        listed = ", ".join(f"{k} {v}" for k, v in sorted(small.items()))
        return f"too few networks per group (minimum {min_group}): {listed}"
    return None


def _verdict(status: str, reason: str) -> dict:
    return {"verdict": status, "reason": reason}


def separation_verdict(claim: dict, separated: float, alpha: float, min_group: int) -> dict:
    """Individuality: do the groups separate (silhouette >= separated, significantly)?"""
    small = _too_small(claim.get("groups", {}), min_group)
    if small:
        return _verdict(INCONCLUSIVE, small)
    lower, upper, p = claim["lower"], claim["upper"], claim["p"]
    if not all(math.isfinite(x) for x in (lower, upper, p)):
        return _verdict(INCONCLUSIVE, "silhouette undefined (fewer than two groups)")
    if lower >= separated and p < alpha:
        return _verdict(HELD, f"interval [{lower:.2f}, {upper:.2f}] >= {separated:g} and p = {p:.3g} < {alpha:g}")
    if upper < separated:
        return _verdict(NOT_HELD, f"interval [{lower:.2f}, {upper:.2f}] below {separated:g}")
    if p >= alpha:
        return _verdict(NOT_HELD, f"p = {p:.3g} >= {alpha:g}: no more separation than shuffled labels")
    return _verdict(INCONCLUSIVE, f"interval [{lower:.2f}, {upper:.2f}] spans {separated:g}")


def mixing_verdict(claim: dict, mixed: float, min_group: int) -> dict:
    """Universality: are the groups mixed (silhouette interval entirely below ``mixed``)?"""
    small = _too_small(claim.get("groups", {}), min_group)
    if small:
        return _verdict(INCONCLUSIVE, small)
    lower, upper = claim["lower"], claim["upper"]
    if not (math.isfinite(lower) and math.isfinite(upper)):
        return _verdict(INCONCLUSIVE, "silhouette undefined (fewer than two groups)")
    if upper < mixed:
        return _verdict(HELD, f"interval [{lower:.2f}, {upper:.2f}] below {mixed:g}")
    if lower >= mixed:
        return _verdict(NOT_HELD, f"interval [{lower:.2f}, {upper:.2f}] >= {mixed:g}: groups separate")
    return _verdict(INCONCLUSIVE, f"interval [{lower:.2f}, {upper:.2f}] spans {mixed:g}")


def difference_verdict(claim: dict, alpha: float, min_group: int) -> dict:
    """A positive difference (held: interval above 0 and p < alpha; not held: upper <= 0)."""
    small = _too_small(claim.get("groups", {}), min_group)
    if small:
        return _verdict(INCONCLUSIVE, small)
    lower, upper, p = claim["lower"], claim["upper"], claim.get("p", float("nan"))
    if not (math.isfinite(lower) and math.isfinite(upper)):
        return _verdict(INCONCLUSIVE, "statistic undefined (a group of pairs is empty)")
    if lower > 0 and math.isfinite(p) and p < alpha:
        return _verdict(HELD, f"interval [{lower:.3g}, {upper:.3g}] above 0 and p = {p:.3g} < {alpha:g}")
    if upper <= 0:
        return _verdict(NOT_HELD, f"interval [{lower:.3g}, {upper:.3g}] at or below 0: the other direction")
    return _verdict(INCONCLUSIVE, f"interval [{lower:.3g}, {upper:.3g}] spans 0"
                    + (f" or p = {p:.3g} >= {alpha:g}" if math.isfinite(p) and p >= alpha else ""))


def level_verdict(claim: dict, threshold: float, min_group: int) -> dict:
    """A fraction or level that must reach ``threshold`` (held: lower >= threshold)."""
    if claim.get("n", 0) < min_group:
        return _verdict(INCONCLUSIVE, f"too few networks ({claim.get('n', 0)} < {min_group})")
    lower, upper = claim["lower"], claim["upper"]
    if not (math.isfinite(lower) and math.isfinite(upper)):
        return _verdict(INCONCLUSIVE, "statistic undefined")
    if lower >= threshold:
        return _verdict(HELD, f"interval [{lower:.2f}, {upper:.2f}] >= {threshold:g}")
    if upper < threshold:
        return _verdict(NOT_HELD, f"interval [{lower:.2f}, {upper:.2f}] below {threshold:g}")
    return _verdict(INCONCLUSIVE, f"interval [{lower:.2f}, {upper:.2f}] spans {threshold:g}")
