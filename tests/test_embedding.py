"""Embeddings and cluster statistics of distance matrices, against configurations with known answers."""

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

from rnnuniv.embedding import mds, silhouette, within_between


def test_mds_of_points_on_a_line_reproduces_distances():
    positions = np.sort(np.random.default_rng(0).uniform(0, 10, size=15))
    distance = np.abs(positions[:, None] - positions[None, :])
    coordinates = mds(distance, n_components=2, seed=0)
    assert coordinates.shape == (15, 2)
    embedded = squareform(pdist(coordinates))
    # normalised stress: sqrt(sum (d_hat - d)^2 / sum d^2)
    stress = np.sqrt(((embedded - distance) ** 2).sum() / (distance**2).sum())
    assert stress < 1e-3
    np.testing.assert_allclose(embedded, distance, atol=1e-2)


def test_mds_is_seeded_and_handles_tiny_inputs():
    rng = np.random.default_rng(1)
    distance = squareform(pdist(rng.standard_normal((12, 5))))
    np.testing.assert_array_equal(mds(distance, seed=3), mds(distance, seed=3))
    assert mds(np.zeros((0, 0))).shape == (0, 2)
    two = mds(np.array([[0.0, 2.5], [2.5, 0.0]]))
    assert np.linalg.norm(two[0] - two[1]) == pytest.approx(2.5)
    with pytest.raises(ValueError, match="nan"):
        mds(np.array([[0.0, np.nan], [np.nan, 0.0]]))


def two_clusters(rng, n_per_cluster=20, separation=20.0):
    points = np.vstack(
        [
            rng.standard_normal((n_per_cluster, 2)),
            rng.standard_normal((n_per_cluster, 2)) + separation,
        ]
    )
    labels = np.repeat(["gru", "lstm"], n_per_cluster)
    return squareform(pdist(points)), labels


def test_silhouette_high_for_separated_clusters_and_near_zero_for_random_labels():
    rng = np.random.default_rng(2)
    distance, labels = two_clusters(rng)
    assert silhouette(distance, labels) > 0.9
    uniform = squareform(pdist(rng.uniform(size=(200, 2))))
    random_labels = rng.integers(0, 2, size=200)
    assert abs(silhouette(uniform, random_labels)) < 0.05


def test_silhouette_undefined_for_fewer_than_two_labels():
    distance, _ = two_clusters(np.random.default_rng(3), n_per_cluster=3)
    assert np.isnan(silhouette(distance, np.zeros(6)))
    assert np.isnan(silhouette(distance, np.arange(6)))  # every network its own group


def test_within_between_known_values():
    # points 0, 1 (group a) and 10, 12 (group b) on a line
    positions = np.array([0.0, 1.0, 10.0, 12.0])
    distance = np.abs(positions[:, None] - positions[None, :])
    result = within_between(distance, ["a", "a", "b", "b"])
    assert result["mean_within"] == pytest.approx((1 + 2) / 2)
    assert result["mean_between"] == pytest.approx((10 + 12 + 9 + 11) / 4)
    assert result["ratio"] == pytest.approx(1.5 / 10.5)
    single = within_between(distance, ["a"] * 4)
    assert np.isnan(single["mean_between"]) and np.isnan(single["ratio"])
    with pytest.raises(ValueError, match="labels"):
        within_between(distance, ["a", "b"])


def test_identical_classes_group_zero_distances_largest_first():
    from rnnuniv.embedding import identical_classes

    # networks 1, 3, 4 identical; 0 and 2 identical; 5 alone
    positions = np.array([1.0, 0.0, 1.0, 0.0, 0.0, 7.0])
    distance = np.abs(positions[:, None] - positions[None, :])
    assert identical_classes(distance).tolist() == [1, 0, 1, 0, 0, 2]
    assert identical_classes(np.zeros((0, 0))).tolist() == []
    assert identical_classes(1 - np.eye(3)).tolist() == [0, 1, 2]


def test_classical_mds_recovers_points_on_a_line_and_stays_finite_off_euclid():
    from rnnuniv.embedding import classical_mds, mds

    x = np.array([0.0, 1.0, 3.0, 7.0])
    d = np.abs(x[:, None] - x[None, :])
    z = classical_mds(d, 2)
    assert np.allclose(np.abs(z[:, None, 0] - z[None, :, 0]), d, atol=1e-10)
    assert np.allclose(z[:, 1], 0.0, atol=1e-7)
    # three points violating the triangle inequality: B has a negative eigenvalue
    bad = np.array([[0.0, 0.69, 0.30], [0.69, 0.0, 0.28], [0.30, 0.28, 0.0]])
    assert np.isfinite(mds(bad, seed=0)).all()
