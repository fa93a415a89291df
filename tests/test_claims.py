"""Claim statistics (rnnuniv.stats, rnnuniv.claims) on constructed cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import silhouette_score

from rnnuniv import claims, stats


def planted(n_per_group=8, n_groups=4, spread=0.3, gap=3.0, seed=0):
    """Points in well-separated clusters in 2-D: their distance matrix and labels."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(n_groups), n_per_group)
    centres = np.stack([np.cos(labels * 2 * np.pi / n_groups), np.sin(labels * 2 * np.pi / n_groups)], 1)
    points = gap * centres + spread * rng.standard_normal((labels.size, 2))
    return np.linalg.norm(points[:, None] - points[None], axis=-1), labels.astype(str)


def test_masked_silhouette_equals_sklearn_without_resampling():
    distance, labels = planted(spread=1.0)
    assert stats.masked_silhouette(distance, labels) == pytest.approx(
        silhouette_score(distance, labels, metric="precomputed"))


def test_duplicates_never_meet_their_twin():
    # two networks per group at distance 1; resampling one network twice must not make a = 0
    distance = np.array([[0, 1, 5, 5], [1, 0, 5, 5], [5, 5, 0, 1], [5, 5, 1, 0]], float)
    labels = np.array(["a", "a", "b", "b"])
    draws = np.array([0, 0, 2, 3])  # network 0 twice: alone in its group apart from itself
    # network 0's copies have no partner -> s = 0; networks 2, 3: a = 1, b = 5 -> 0.8
    assert stats.masked_silhouette(distance, labels, draws) == pytest.approx((0 + 0 + 0.8 + 0.8) / 4)


def _silhouette_by_loops(distance, labels, draws):
    """The module docstring's formula, one draw at a time: the reference for the vectorised code."""
    labels = np.asarray(labels)[draws]
    if len(set(labels)) < 2 or len(draws) < 3:
        return math.nan
    values = []
    for i in range(len(draws)):
        means = {}
        for group in set(labels):
            partners = [distance[draws[i], draws[j]] for j in range(len(draws))
                        if labels[j] == group and draws[j] != draws[i]]
            if partners:
                means[group] = sum(partners) / len(partners)
        if labels[i] not in means:
            values.append(0.0)
            continue
        a = means.pop(labels[i])
        b = min(means.values()) if means else math.inf
        value = (b - a) / max(a, b) if max(a, b) > 0 else math.nan
        values.append(value if math.isfinite(value) else 0.0)
    return float(np.mean(values))


def test_batched_silhouettes_and_resamples_match_loops_and_one_at_a_time_streams():
    """masked_silhouettes, stratified_resamples and shuffles_within are the claims' fast path: the
    silhouette formula evaluated by plain loops, and the same random stream as one call at a time,
    including draws that miss a group, draws too small to score and chunks smaller than the batch."""
    distance, labels = planted(n_per_group=5, n_groups=3, spread=1.0)
    strata = np.repeat(["x", "y", "z"], 5)
    draws = stats.stratified_resamples(strata, np.random.default_rng(3), 40)
    rng = np.random.default_rng(3)
    reference = np.stack([rng.choice(m, m.size, replace=True) for _ in range(40)
                          for m in [np.flatnonzero(strata == s) for s in "xyz"]]).reshape(40, 3, 5)
    assert (draws == reference.reshape(40, 15)).all(), "the stream of rng.choice, per stratum"
    assert (stats.stratified_resample(strata, np.random.default_rng(3)) == draws[0]).all()
    batched = stats.masked_silhouettes(distance, labels, draws, max_bytes=3 * 8 * 15 * 15 * 7)
    assert np.array_equal(batched, stats.masked_silhouettes(distance, labels, draws))  # chunking
    assert batched == pytest.approx([_silhouette_by_loops(distance, labels, d) for d in draws], abs=1e-12)
    assert stats.masked_silhouette(distance, labels, draws[1]) == batched[1]
    shuffled = stats.shuffles_within(labels, strata, np.random.default_rng(5), 30)
    rng = np.random.default_rng(5)
    assert (shuffled == np.stack([stats.shuffle_within(labels, strata, rng) for _ in range(30)])).all()
    assert stats.masked_silhouettes(distance, shuffled) == pytest.approx(
        [silhouette_score(distance, s, metric="precomputed") for s in shuffled], abs=1e-12)
    odd = np.array([[0, 1, 2, 3], [0, 0, 1, 5], [0, 5, 10, 11]])  # one group only; all three groups
    expected = [_silhouette_by_loops(distance, labels, d) for d in odd]
    assert math.isnan(expected[0]) and not math.isnan(expected[1])
    assert np.allclose(stats.masked_silhouettes(distance, labels, odd), expected, atol=1e-12, equal_nan=True)
    assert np.isnan(stats.masked_silhouettes(distance, labels, odd[:, :2])).all()


def test_planted_clustering_has_interval_above_half_and_small_p():
    distance, labels = planted()
    claim = stats.silhouette_claim(distance, labels, labels, None, n_bootstrap=300, n_permutations=1000, seed=1)
    assert claim["lower"] > 0.5 and claim["p"] < 0.01
    assert claim["p"] == pytest.approx(1 / 1001)
    assert claim["lower"] <= claim["statistic"] <= claim["upper"]


def test_shuffled_labels_give_an_interval_covering_zero():
    distance, labels = planted()
    shuffled = np.random.default_rng(5).permutation(labels)
    claim = stats.silhouette_claim(distance, shuffled, shuffled, None, n_bootstrap=300, n_permutations=300, seed=2)
    assert claim["lower"] < 0 < claim["upper"]
    assert claim["p"] > 0.05


def test_silhouette_table_architecture_within_activation():
    # architecture clusters; activation is irrelevant noise
    distance, arch = planted(n_per_group=8)
    act = np.tile(["tanh", "relu"], arch.size // 2)
    table = stats.silhouette_table(distance, arch, act, n_bootstrap=100, n_permutations=200, seed=0)
    assert set(table) == {"architecture", "architecture_within/relu", "architecture_within/tanh",
                          "activation", "architecture_x_activation"}
    assert table["architecture"]["lower"] > 0.5 and table["architecture"]["p"] < 0.01
    assert table["activation"]["statistic"] < 0.1 and table["activation"]["p"] > 0.05
    assert table["architecture"]["groups"]["0|relu"] == 4


def test_shuffle_within_keeps_strata_contents():
    rng = np.random.default_rng(0)
    labels = np.array(list("aabbccdd"))
    strata = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    shuffled = stats.shuffle_within(labels, strata, rng)
    assert sorted(shuffled[:4]) == list("aabb") and sorted(shuffled[4:]) == list("ccdd")


def test_separation_verdict_all_three_outcomes():
    groups = {"gru": 6, "lstm": 6}
    base = {"groups": groups}
    held = stats.separation_verdict({**base, "lower": 0.3, "upper": 0.5, "p": 0.001}, 0.25, 0.05, 6)
    assert held["verdict"] == "held"
    below = stats.separation_verdict({**base, "lower": 0.0, "upper": 0.2, "p": 0.001}, 0.25, 0.05, 6)
    assert below["verdict"] == "not held"
    not_significant = stats.separation_verdict({**base, "lower": 0.2, "upper": 0.5, "p": 0.3}, 0.25, 0.05, 6)
    assert not_significant["verdict"] == "not held" and "p = 0.3" in not_significant["reason"]
    spans = stats.separation_verdict({**base, "lower": 0.2, "upper": 0.5, "p": 0.01}, 0.25, 0.05, 6)
    assert spans["verdict"] == "inconclusive" and "spans 0.25" in spans["reason"]
    few = stats.separation_verdict({"groups": {"gru": 6, "lstm": 5}, "lower": 0.9, "upper": 1, "p": 0.001},
                                   0.25, 0.05, 6)
    assert few["verdict"] == "inconclusive" and "lstm 5" in few["reason"]


def test_mixing_verdict_all_three_outcomes():
    base = {"groups": {"gru": 8, "lstm": 8}}
    assert stats.mixing_verdict({**base, "lower": -0.1, "upper": 0.05}, 0.1, 6)["verdict"] == "held"
    assert stats.mixing_verdict({**base, "lower": 0.2, "upper": 0.4}, 0.1, 6)["verdict"] == "not held"
    assert stats.mixing_verdict({**base, "lower": 0.0, "upper": 0.2}, 0.1, 6)["verdict"] == "inconclusive"
    assert "too few" in stats.mixing_verdict({"groups": {"gru": 2}, "lower": 0, "upper": 0}, 0.1, 6)["reason"]


def test_difference_and_level_verdicts():
    groups = {"first": 10, "second": 10}
    assert stats.difference_verdict({"groups": groups, "lower": 0.1, "upper": 0.3, "p": 0.01}, 0.05, 6)[
        "verdict"] == "held"
    assert stats.difference_verdict({"groups": groups, "lower": -0.3, "upper": -0.1, "p": 0.9}, 0.05, 6)[
        "verdict"] == "not held"
    assert stats.difference_verdict({"groups": groups, "lower": -0.1, "upper": 0.3, "p": 0.2}, 0.05, 6)[
        "verdict"] == "inconclusive"
    assert stats.level_verdict({"n": 10, "lower": 0.6, "upper": 0.9}, 0.5, 6)["verdict"] == "held"
    assert stats.level_verdict({"n": 10, "lower": 0.1, "upper": 0.4}, 0.5, 6)["verdict"] == "not held"
    assert stats.level_verdict({"n": 10, "lower": 0.4, "upper": 0.6}, 0.5, 6)["verdict"] == "inconclusive"
    assert stats.level_verdict({"n": 3, "lower": 0.9, "upper": 1.0}, 0.5, 6)["verdict"] == "inconclusive"


def figure4_matrix(untrained_closer: bool, n=6, seed=0):
    """Trained/untrained x tanh/relu networks with chosen similarities between the pair groups."""
    rng = np.random.default_rng(seed)
    trained = np.repeat([True, True, False, False], n)
    activation = np.tile(np.repeat(["tanh", "relu"], n), 2)
    similarity = np.full((4 * n, 4 * n), 0.5)
    same = activation[:, None] == activation[None, :]
    tu = same & (trained[:, None] ^ trained[None, :])
    tt_other = ~same & trained[:, None] & trained[None, :]
    similarity[tu] = 0.8 if untrained_closer else 0.3
    similarity[tt_other] = 0.4 if untrained_closer else 0.7
    similarity += 0.02 * rng.standard_normal(similarity.shape)
    similarity = (similarity + similarity.T) / 2
    np.fill_diagonal(similarity, 1.0)
    return 1 - similarity, trained, activation


def test_figure4_direction_as_the_paper_states_it():
    distance, trained, activation = figure4_matrix(untrained_closer=True)
    claim = claims.figure4_claim(distance, trained, activation, n_bootstrap=200, n_permutations=1000, seed=0)
    assert claim["statistic"] == pytest.approx(0.4, abs=0.03)
    assert claim["lower"] > 0 and claim["p"] < 0.01
    assert claim["median_trained_untrained_same"] > claim["median_trained_other"]
    assert stats.difference_verdict(claim, 0.05, 6)["verdict"] == "held"
    reverse = claims.figure4_claim(*figure4_matrix(untrained_closer=False), n_bootstrap=200,
                                   n_permutations=200, seed=0)
    assert reverse["upper"] < 0
    assert stats.difference_verdict(reverse, 0.05, 6)["verdict"] == "not held"


def test_fraction_median_and_mean_difference():
    values = np.array([True] * 15 + [False] * 5)
    fraction = claims.fraction_claim(values, n_bootstrap=500, seed=0)
    assert fraction["statistic"] == 0.75 and fraction["lower"] < 0.75 < fraction["upper"]
    median = claims.median_claim([0.9, 0.95, np.nan, 0.97, 0.99], n_bootstrap=200)
    assert median["n"] == 4 and median["statistic"] == pytest.approx(0.96)
    slow = np.array([1] * 8 + [3] * 24, float)
    gated = np.array([False] * 8 + [True] * 24)
    diff = claims.mean_difference_claim(slow + 0.1 * np.arange(32) % 0.3, gated, n_bootstrap=200,
                                        n_permutations=500, seed=0)
    assert diff["statistic"] == pytest.approx(2.0, abs=0.2) and diff["lower"] > 0 and diff["p"] < 0.01


def test_modal_class_fractions_and_test():
    arch = np.repeat(["vanilla", "gru"], 20)
    act = np.tile(["tanh", "relu"], 20)
    equal = claims.modal_class_by_architecture(np.tile([True, True, False, True], 10), arch, act,
                                               n_permutations=500)
    assert equal["fractions"] == {"gru": 0.75, "vanilla": 0.75} and equal["p"] > 0.5
    differ = claims.modal_class_by_architecture(np.repeat([True, False], 20), arch, act, n_permutations=500)
    assert differ["fractions"]["vanilla"] == 1.0 and differ["p"] < 0.01


def test_kept_fractions_and_within_between():
    networks = pd.DataFrame({"architecture": ["gru"] * 4 + ["lstm"] * 2,
                             "activation": ["tanh"] * 6,
                             "status": ["kept", "kept", "diverged", "untrained", "surplus", "above-threshold"]})
    rows = claims.kept_fractions(networks)
    assert rows == [{"architecture": "gru", "activation": "tanh", "trained": 3, "passed": 2, "kept": 2, "fraction": 2 / 3},
                    {"architecture": "lstm", "activation": "tanh", "trained": 2, "passed": 1, "kept": 0, "fraction": 0.5}]
    distance, labels = planted(n_per_group=4, n_groups=2)
    ratio = claims.within_between_ratio(distance, labels, np.full(labels.size, "tanh"))
    assert ratio["ratio"] < 0.3
    assert math.isnan(claims.within_between_ratio(distance, np.zeros(8), np.zeros(8))["ratio"])
