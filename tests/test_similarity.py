"""Similarity metrics against closed forms, direct formulas and per-pair loops; the stage script."""

import importlib.util
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.linalg
import torch

from rnnuniv import similarity as sim
from rnnuniv.io import CorruptFileError

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "cca_matrix.py"
FEATURES_SCRIPT = SCRIPT.with_name("similarity_features.py")


# --- independent oracles (numpy, covariance form as in google/svcca's cca_core) ---------------


def covariance_cca(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """rho = svd(C_aa^{-1/2} C_ab C_bb^{-1/2}), inverse square roots by eigendecomposition."""
    a = a - a.mean(0)
    b = b - b.mean(0)
    n = len(a) - 1

    def inv_sqrt(c):
        w, v = np.linalg.eigh(c)
        return (v / np.sqrt(w)) @ v.T

    whitened = inv_sqrt(a.T @ a / n) @ (a.T @ b / n) @ inv_sqrt(b.T @ b / n)
    return np.linalg.svd(whitened, compute_uv=False)


def pca_scores(a: np.ndarray, k: int) -> np.ndarray:
    a = a - a.mean(0)
    _, _, vt = np.linalg.svd(a, full_matrices=False)
    return a @ vt[:k].T


def hsic_cka(x: np.ndarray, y: np.ndarray) -> float:
    """CKA from centred Gram matrices: HSIC(K, L) = tr(K H L H) / (n - 1)^2."""
    n = len(x)
    h = np.eye(n) - 1.0 / n
    k, l = x @ x.T, y @ y.T

    def hsic(p, q):
        return np.trace(p @ h @ q @ h) / (n - 1) ** 2

    return hsic(k, l) / np.sqrt(hsic(k, k) * hsic(l, l))


def random_states(rng, n_networks, n_samples=300, units=(4, 9)):
    """Networks with shared latent structure (so distances are spread) and unequal widths."""
    latent = rng.standard_normal((n_samples, 6))
    return [
        latent @ rng.standard_normal((6, u)) + 0.5 * rng.standard_normal((n_samples, u))
        for u in rng.integers(units[0], units[1] + 1, size=n_networks)
    ]


def centred_orthonormal(rng, n_samples, n_columns):
    """n_columns orthonormal columns with zero mean (so centring leaves them unchanged)."""
    raw = rng.standard_normal((n_samples, n_columns))
    q, _ = np.linalg.qr(raw - raw.mean(0))
    return q


# --- canonical correlations -------------------------------------------------------------------


def test_invertible_map_gives_all_ones():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 6))
    rho = sim.cca_correlations(x, x @ rng.standard_normal((6, 6)))
    np.testing.assert_allclose(rho, np.ones(6), atol=1e-10)
    assert rho.dtype == np.float64


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rotated_columns_give_exact_cosines(seed):
    rng = np.random.default_rng(seed)
    q = centred_orthonormal(rng, 500, 10)
    x, u = q[:, :5], q[:, 5:]
    angles = rng.uniform(0.05, 1.5, size=5)
    y = np.cos(angles) * x + np.sin(angles) * u
    rho = sim.cca_correlations(x, y)
    np.testing.assert_allclose(rho, np.sort(np.cos(angles))[::-1], atol=1e-12)


def test_invariance_to_rotation_and_scaling_of_units():
    rng = np.random.default_rng(3)
    x, y = random_states(rng, 2, units=(7, 7))
    rotation, _ = np.linalg.qr(rng.standard_normal((7, 7)))
    base_full = sim.cca_correlations(x, y)
    base_k = sim.cca_correlations(x, y, n_components=4)
    # full CCA: invariant to any invertible map, including per-unit scaling
    np.testing.assert_allclose(
        sim.cca_correlations(x @ rotation * rng.uniform(0.1, 10, 7), y), base_full, atol=1e-10
    )
    # SVCCA with k components: invariant to rotations and isotropic scaling (PCA is)
    np.testing.assert_allclose(sim.cca_correlations(3.7 * x @ rotation, y), base_full, atol=1e-10)
    np.testing.assert_allclose(
        sim.cca_correlations(3.7 * x @ rotation, y, n_components=4), base_k, atol=1e-10
    )
    assert not np.allclose(base_k, base_full[:4])  # truncation matters: the test is not vacuous


@pytest.mark.parametrize("n_components", [None, 3, 5])
def test_agrees_with_covariance_cca(n_components):
    rng = np.random.default_rng(4)
    x, y = random_states(rng, 2, units=(6, 8))
    if n_components is None:
        expected = covariance_cca(x, y)
    else:
        expected = covariance_cca(pca_scores(x, n_components), pca_scores(y, n_components))
    np.testing.assert_allclose(
        sim.cca_correlations(x, y, n_components=n_components), expected, atol=1e-8
    )


def test_rank_deficient_states_use_numerical_rank():
    rng = np.random.default_rng(5)
    latent = rng.standard_normal((300, 3))
    redundant = latent @ rng.standard_normal((3, 8))  # 8 units, rank 3
    rho = sim.cca_correlations(redundant, latent)
    np.testing.assert_allclose(rho, np.ones(3), atol=1e-10)
    assert sim.svcca_basis(redundant).shape == (300, 3)


def test_rank_tolerance_follows_input_precision():
    rng = np.random.default_rng(23)
    redundant = (rng.standard_normal((300, 3)) @ rng.standard_normal((3, 8))).astype(np.float32)
    assert sim.svcca_basis(redundant).shape[1] == 3  # float32 rounding noise is not a component
    assert sim.svcca_basis(redundant, rtol=1e-14).shape[1] == 8  # unless asked for


def test_variance_fraction_selects_components():
    rng = np.random.default_rng(6)
    q = centred_orthonormal(rng, 400, 4)
    x = q * np.array([3.0, 2.0, 1.0, 0.1])  # variances 9, 4, 1, 0.01 of total 14.01
    assert sim.svcca_basis(x, 0.9).shape[1] == 2  # 13/14.01 = 0.928
    assert sim.svcca_basis(x, 0.95).shape[1] == 3  # 0.9993
    assert sim.svcca_basis(x, 1.0).shape[1] == 4
    assert sim.svcca_basis(x, 2).shape[1] == 2


@pytest.mark.parametrize("bad", [0, -1, 1.5, 0.0, True, "10"])
def test_rejects_bad_n_components(bad):
    x = np.random.default_rng(0).standard_normal((50, 3))
    with pytest.raises(ValueError, match="n_components"):
        sim.svcca_distance_matrix([x, x], bad, progress=False)


def test_rejects_unequal_sample_counts():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="samples"):
        sim.svcca_distance_matrix(
            [rng.standard_normal((50, 3)), rng.standard_normal((40, 3))], progress=False
        )


# --- SVCCA all pairs ----------------------------------------------------------------------------


@pytest.mark.parametrize("n_components", [None, 3, 0.8])
@pytest.mark.parametrize("block_size", [None, 2, 3])
def test_svcca_matrix_equals_pairwise_loop(n_components, block_size):
    rng = np.random.default_rng(7)
    states = random_states(rng, 7)
    matrix = sim.svcca_distance_matrix(states, n_components, block_size=block_size, progress=False)
    loop = np.zeros((7, 7))
    for i in range(7):
        for j in range(7):
            if i != j:
                loop[i, j] = 1.0 - sim.cca_correlations(states[i], states[j], n_components).mean()
    np.testing.assert_allclose(matrix, loop, atol=1e-8)
    assert matrix.dtype == np.float64 and matrix.shape == (7, 7)
    np.testing.assert_array_equal(matrix, matrix.T)
    np.testing.assert_array_equal(np.diag(matrix), 0.0)
    assert matrix[~np.eye(7, dtype=bool)].min() > 0.01  # distinct networks: not a zero matrix


def test_svcca_matrix_equals_covariance_cca_loop():
    rng = np.random.default_rng(8)
    states = random_states(rng, 5)
    matrix = sim.svcca_distance_matrix(states, 3, block_size=2, progress=False)
    reduced = [pca_scores(s, 3) for s in states]
    for i in range(5):
        for j in range(i + 1, 5):
            assert matrix[i, j] == pytest.approx(
                1.0 - covariance_cca(reduced[i], reduced[j]).mean(), abs=1e-8
            )


def test_svcca_accepts_torch_and_trial_time_axes():
    rng = np.random.default_rng(9)
    states = [s.reshape(20, 15, -1) for s in random_states(rng, 3)]  # [trials, time, units]
    expected = sim.svcca_distance_matrix([s.reshape(300, -1) for s in states], 3, progress=False)
    tensors = [torch.as_tensor(s, dtype=torch.float32) for s in states]
    np.testing.assert_allclose(
        sim.svcca_distance_matrix(tensors, 3, progress=False), expected, atol=1e-5
    )


def test_svcca_identical_networks_distance_zero_and_degenerate_sizes():
    x = np.random.default_rng(10).standard_normal((100, 5))
    matrix = sim.svcca_distance_matrix([x, x @ np.diag([1, 2, 3, 4, 5.0])], progress=False)
    assert matrix[0, 1] == pytest.approx(0.0, abs=1e-12)
    assert sim.svcca_distance_matrix([x], progress=False).shape == (1, 1)
    assert sim.svcca_distance_matrix([], progress=False).shape == (0, 0)


# --- CKA ---------------------------------------------------------------------------------------


def test_cka_orthogonal_and_isotropic_scaling_give_one():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((200, 6))
    rotation, _ = np.linalg.qr(rng.standard_normal((6, 6)))
    matrix = sim.cka_distance_matrix([x, x @ rotation, 4.2 * x + 1.0], progress=False)
    np.testing.assert_allclose(matrix, 0.0, atol=1e-12)


@pytest.mark.parametrize("block_size", [None, 2])
def test_cka_matches_hsic_formula(block_size):
    rng = np.random.default_rng(12)
    states = random_states(rng, 5, n_samples=120)
    matrix = sim.cka_distance_matrix(states, block_size=block_size, progress=False)
    for i in range(5):
        for j in range(i + 1, 5):
            assert matrix[i, j] == pytest.approx(1.0 - hsic_cka(states[i], states[j]), abs=1e-10)
    np.testing.assert_array_equal(matrix, matrix.T)
    assert matrix[0, 1] > 0.01


# --- Procrustes --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["angular", "euclidean"])
def test_procrustes_zero_under_orthogonal_transform(kind):
    rng = np.random.default_rng(13)
    x = rng.standard_normal((150, 5))
    rotation, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    # also translation and scale, and zero-padding to a wider network
    wide = np.hstack([2.0 * x @ rotation + 3.0, np.zeros((150, 2))])
    matrix = sim.procrustes_distance_matrix([x, wide], kind=kind, progress=False)
    assert matrix[0, 1] == pytest.approx(0.0, abs=1e-6)


def test_procrustes_euclidean_matches_orthogonal_procrustes():
    rng = np.random.default_rng(14)
    x, y = random_states(rng, 2, units=(5, 5))
    x, y = (z - z.mean(0) for z in (x, y))
    x, y = x / np.linalg.norm(x), y / np.linalg.norm(y)
    rotation, _ = scipy.linalg.orthogonal_procrustes(y, x)  # argmin_Q ||y Q - x||
    expected = np.linalg.norm(x - y @ rotation)
    matrix = sim.procrustes_distance_matrix([x, y], kind="euclidean", progress=False)
    assert matrix[0, 1] == pytest.approx(expected, abs=1e-10)
    angular = sim.procrustes_distance_matrix([x, y], kind="angular", progress=False)
    assert angular[0, 1] == pytest.approx(np.arccos(1.0 - expected**2 / 2.0), abs=1e-10)


@pytest.mark.parametrize("seed", [15, 16])
@pytest.mark.parametrize("kind", ["angular", "euclidean"])
def test_procrustes_is_a_metric(seed, kind):
    rng = np.random.default_rng(seed)
    states = random_states(rng, 8, n_samples=60)
    matrix = sim.procrustes_distance_matrix(states, kind=kind, block_size=3, progress=False)
    np.testing.assert_array_equal(matrix, matrix.T)
    np.testing.assert_array_equal(np.diag(matrix), 0.0)
    assert matrix[~np.eye(8, dtype=bool)].min() > 0.0
    # d_ik <= d_ij + d_jk for every triple
    assert (matrix[:, None, :] <= matrix[:, :, None] + matrix[None, :, :] + 1e-12).all()


def test_procrustes_with_common_pca_dimension():
    rng = np.random.default_rng(17)
    states = random_states(rng, 3)
    matrix = sim.procrustes_distance_matrix(states, n_components=3, progress=False)
    reduced = [pca_scores(s, 3) for s in states]
    reduced = [r / np.linalg.norm(r) for r in reduced]
    nuclear = np.linalg.svd(reduced[0].T @ reduced[2], compute_uv=False).sum()
    assert matrix[0, 2] == pytest.approx(np.arccos(nuclear), abs=1e-10)


# --- DSA ---------------------------------------------------------------------------------------


def rotation_system(angles, decays):
    """Block-diagonal x_{t+1} = M x_t of 2D rotations scaled by decays."""
    blocks = [
        r * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        for a, r in zip(angles, decays)
    ]
    return scipy.linalg.block_diag(*blocks)


def simulate(rng, transition, coordinates, n_trials=6, n_steps=40):
    """Trajectories [trials, time, units] of x_{t+1} = M x_t seen through y = P x."""
    x = [rng.standard_normal((n_trials, transition.shape[0]))]
    for _ in range(n_steps - 1):
        x.append(x[-1] @ transition.T)
    return np.stack(x, axis=1) @ coordinates.T


def test_delay_embedding_layout():
    x = np.arange(2 * 4 * 2, dtype=float).reshape(2, 4, 2)  # [trials, time, units]
    hankel = sim.delay_embed(x, 3)
    assert hankel.shape == (2, 2, 6)
    np.testing.assert_array_equal(hankel[0, 0], np.concatenate([x[0, 2], x[0, 1], x[0, 0]]))
    np.testing.assert_array_equal(hankel[1, 1], np.concatenate([x[1, 3], x[1, 2], x[1, 1]]))


@pytest.mark.parametrize("n_delays", [1, 3])
def test_dsa_same_system_zero_different_rotation_known(n_delays):
    rng = np.random.default_rng(18)
    system = rotation_system([0.3, 0.7], [0.95, 0.9])
    other = rotation_system([0.4, 0.7], [0.95, 0.9])
    coordinates = rng.standard_normal((4, 4)) + 2 * np.eye(4)
    trajectories = [
        simulate(rng, system, np.eye(4)),
        simulate(rng, system, coordinates),
        simulate(rng, other, np.eye(4)),
    ]
    matrix = sim.dsa_distance_matrix(trajectories, n_delays=n_delays, rank=4, progress=False)
    assert matrix[0, 1] == pytest.approx(0.0, abs=1e-8)
    # eigenvalues 0.95 e^{+-0.3i} vs 0.95 e^{+-0.4i}: two of four move by 2 * 0.95 sin(0.05)
    expected = 2 * (2 * 0.95 * np.sin(0.05)) / 4
    assert matrix[0, 2] == pytest.approx(expected, rel=1e-6)
    assert matrix[1, 2] == pytest.approx(expected, rel=1e-6)
    np.testing.assert_array_equal(matrix, matrix.T)


def test_dsa_matches_dsa_package_wasserstein():
    DSA = pytest.importorskip("DSA")
    rng = np.random.default_rng(19)
    trajectories = [
        simulate(rng, rotation_system([a, 0.9], [0.95, 0.8]), np.eye(4)) for a in (0.2, 0.5)
    ]
    ours = sim.dsa_distance_matrix(trajectories, n_delays=2, rank=4, p=2.0, progress=False)[0, 1]
    theirs = DSA.DSA(
        [t.astype(np.float32) for t in trajectories], n_delays=2, rank=4, score_method="wasserstein"
    ).fit_score()
    assert ours**2 == pytest.approx(float(np.asarray(theirs)[0, 1]), rel=1e-3)  # package: W_2^2


def test_distance_matrix_dispatch():
    rng = np.random.default_rng(20)
    states = random_states(rng, 4)
    np.testing.assert_array_equal(
        sim.distance_matrix(states, "svcca", n_components=3, progress=False),
        sim.svcca_distance_matrix(states, 3, progress=False),
    )
    np.testing.assert_array_equal(
        sim.distance_matrix(states, "procrustes", kind="euclidean", progress=False),
        sim.procrustes_distance_matrix(states, kind="euclidean", progress=False),
    )
    np.testing.assert_array_equal(
        sim.distance_matrix(states, "cka", progress=False),
        sim.cka_distance_matrix(states, progress=False),
    )
    with pytest.raises(ValueError, match="metric"):
        sim.distance_matrix(states, "cosine")


# --- stored per-network features and the streamed all-pairs stage -----------------------------


def shard_states(rng, n_networks, units, trials=3, steps=40, zero=()):
    """float32 [n, trials, time, units] with shared latents (spread distances); ``zero``: constant."""
    latent = rng.standard_normal((trials, steps, 5))
    hidden = np.stack(
        [
            latent @ rng.standard_normal((5, units)) + 0.4 * rng.standard_normal((trials, steps, units))
            for _ in range(n_networks)
        ]
    ).astype(np.float32)
    for i in zero:
        hidden[i] = 1.0
    return hidden


def write_features(tmp_path, shards, width, dsa=None):
    options = {} if dsa is None else {"dsa_n_delays": dsa[0], "dsa_rank": dsa[1]}
    """shards: {name: (ids, hidden)} -> features paths and {id: states [trials, time, units]}."""
    paths, states = [], {}
    for name, (ids, hidden) in shards.items():
        path = tmp_path / f"{name}.npz"
        sim.save_features(path, sim.shard_features(ids, hidden, width, ["dsa"] if dsa else [], options))
        paths.append(path)
        states.update(zip(ids, hidden))
    return paths, states


@pytest.fixture
def population_features(tmp_path):
    rng = np.random.default_rng(30)
    shards = {
        "a": (["a0", "a1", "a2"], shard_states(rng, 3, 4)),
        "b": (["b0", "b1"], shard_states(rng, 2, 9, zero=(1,))),
        "c": (["c0", "c1", "c2", "c3"], shard_states(rng, 4, 12)),
    }
    return write_features(tmp_path, shards, width=12, dsa=(3, 4))


@pytest.mark.parametrize("block_memory_mb", [1e-9, 0.002, 100.0])  # 1 network / a few / all
def test_streamed_equals_in_memory(population_features, block_memory_mb):
    paths, states = population_features
    store = sim.FeatureStore(paths, feature_keys=["dsa_eigenvalues"])
    order = ["c2", "a0", "b1", "c0", "a2", "b0", "c3", "a1", "c1"]  # across files, interleaved
    x = [states[i] for i in order]
    metrics = [
        sim.SVCCA(3, name="k3"),
        sim.SVCCA(10),
        sim.SVCCA(0.9, name="fraction"),
        sim.CKA(),
        sim.Procrustes(),
        sim.Procrustes("euclidean", name="euclidean"),
    ]
    streamed = sim.streamed_distance_matrices(store, order, metrics, block_memory_mb)
    expected = {
        "k3": sim.svcca_distance_matrix(x, 3, progress=False),
        "svcca": sim.svcca_distance_matrix(x, 10, progress=False),
        "fraction": sim.svcca_distance_matrix(x, 0.9, progress=False),
        "cka": sim.cka_distance_matrix(x, progress=False),
        "procrustes": sim.procrustes_distance_matrix(x, progress=False),
        "euclidean": sim.procrustes_distance_matrix(x, kind="euclidean", progress=False),
    }
    for name, matrix in expected.items():
        assert np.isfinite(matrix[0, 1]) and matrix[0, 1] > 0.01, name  # a real comparison
        np.testing.assert_allclose(streamed[name], matrix, atol=1e-10, rtol=0, err_msg=name)
        np.testing.assert_array_equal(streamed[name], streamed[name].T)
    kept = [i for i in order if i != "b1"]  # DSA of a constant network is undefined
    eig = store.features("dsa_eigenvalues", kept)
    np.testing.assert_allclose(
        sim.wasserstein_eigenvalue_matrix(eig),
        sim.dsa_distance_matrix([states[i] for i in kept], 3, 4, progress=False),
        atol=1e-10,
        rtol=0,
    )


def test_features_round_trip_and_hold_the_states_geometry(tmp_path):
    rng = np.random.default_rng(31)
    hidden = shard_states(rng, 2, 6)
    features = sim.shard_features(["x", "y"], hidden, 8, ["dsa"], {"dsa_n_delays": 2, "dsa_rank": 3})
    sim.save_features(tmp_path / "f.npz", features)
    loaded = sim.load_feature_arrays(tmp_path / "f.npz", tuple(features))
    assert set(loaded) == set(features)
    for key, value in features.items():
        np.testing.assert_array_equal(loaded[key], value)
        assert loaded[key].dtype == np.asarray(value).dtype
    assert list(loaded["network_ids"]) == ["x", "y"] and loaded["left"].shape == (2, 8, 120)
    for i, states in enumerate(hidden):
        x = states.reshape(-1, 6).astype(np.float64)
        x -= x.mean(0)
        u, s = loaded["left"][i].T, loaded["singular_values"][i]
        np.testing.assert_allclose(u.T @ u, np.diag([1.0] * 6 + [0.0] * 2), atol=1e-12)
        np.testing.assert_allclose((u[:, :6] * s) @ (u[:, :6] * s).T, x @ x.T, atol=1e-10)
        assert loaded["rank"][i] == 6 and loaded["cka_truncation"][i] == 0.0
    with np.load(tmp_path / "f.npz", allow_pickle=False) as data:  # no object arrays anywhere
        assert all(data[k].dtype != object for k in data.files)


def test_truncation_error_within_stored_bound(tmp_path):
    rng = np.random.default_rng(32)
    hidden = shard_states(rng, 3, 10)
    full = {n: sim.shard_features(["p", "q", "r"], hidden, width=10) for n in ("full",)}["full"]
    short = sim.shard_features(["p", "q", "r"], hidden, width=3)
    sim.save_features(tmp_path / "full.npz", full)
    sim.save_features(tmp_path / "short.npz", short)
    ids = ["p", "q", "r"]
    metrics = [sim.CKA(), sim.Procrustes("euclidean")]
    exact = sim.streamed_distance_matrices(sim.FeatureStore([tmp_path / "full.npz"]), ids, metrics)
    store = sim.FeatureStore([tmp_path / "short.npz"])
    cut = sim.streamed_distance_matrices(store, ids, metrics)
    bound = store.truncation_bounds(ids)
    cka_error = np.abs(cut["cka"] - exact["cka"])
    assert cka_error.max() > 1e-6  # the truncation is real
    assert (cka_error <= bound[:, None, 0] + bound[None, :, 0] + 1e-12).all()
    nuclear = lambda d: 1 - d**2 / 2  # euclidean d = sqrt(2 - 2 ||.||_*)
    nuclear_error = np.abs(nuclear(cut["procrustes"]) - nuclear(exact["procrustes"]))
    assert (nuclear_error <= bound[:, None, 1] + bound[None, :, 1] + 1e-12).all()


@pytest.mark.parametrize("damage", ["truncate", "missing_key", "missing_file"])
def test_bad_features_file_is_named(population_features, tmp_path, damage):
    paths, _ = population_features
    bad = paths[1]
    if damage == "truncate":
        bad.write_bytes(bad.read_bytes()[:300])
    elif damage == "missing_key":
        arrays = sim.load_feature_arrays(bad, ("rank", "singular_values", "n_samples", "width"))
        sim.save_features(bad, arrays)  # no "left", no truncation bounds
    else:
        bad.unlink()
    with pytest.raises(CorruptFileError, match=str(bad)):
        store = sim.FeatureStore(paths)
        sim.streamed_distance_matrices(store, list(store.location), [sim.SVCCA(3)])


def test_corrupt_left_found_when_streaming(population_features):
    paths, _ = population_features
    arrays = sim.load_feature_arrays(paths[2], ALL_FEATURE_KEYS)
    arrays["left"] = arrays["left"][:, :, :5]  # fewer samples than the other files
    sim.save_features(paths[2], arrays)
    store = sim.FeatureStore(paths)
    with pytest.raises(CorruptFileError, match=str(paths[2])):
        sim.streamed_distance_matrices(store, list(store.location), [sim.SVCCA(3)])


ALL_FEATURE_KEYS = (
    "left", "singular_values", "rank", "units", "n_samples", "width",
    "cka_truncation", "procrustes_truncation",
)


# --- the stage scripts as command lines ---------------------------------------------------------


def _write_shard(path, ids, hidden):
    np.savez(path, network_ids=np.array(ids, dtype=str), hidden=hidden.astype(np.float32))


def _run(script, args, cwd):
    return subprocess.run(
        [sys.executable, str(script), *map(str, args)], cwd=cwd, capture_output=True, text=True
    )


@pytest.fixture
def restore_logging():
    """The script's setup_logging replaces the root handlers; put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    for handler in root.handlers[:]:
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


def _load_script(path=SCRIPT):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("script", [SCRIPT, FEATURES_SCRIPT])
def test_script_help(capsys, script):
    with pytest.raises(SystemExit) as exit_info:
        _load_script(script).main(["--help"])
    assert exit_info.value.code == 0 and "--output" in capsys.readouterr().out


def test_stage_slices_trained_matrix_and_sensitivity_equals_recomputation(tmp_path, restore_logging):
    rng = np.random.default_rng(33)
    _write_shard(tmp_path / "s0.npz", ["n0", "n1", "n2"], shard_states(rng, 3, 5))
    _write_shard(tmp_path / "s1.npz", ["u0", "u1", "n3"], shard_states(rng, 3, 7))
    features = []
    for name in ("s0", "s1"):
        features.append(tmp_path / "similarity" / f"{name}.npz")
        _load_script(FEATURES_SCRIPT).main(
            ["--states", str(tmp_path / f"{name}.npz"), "--width", "20", "--extra-metrics", "dsa", "--dsa-n-delays", "2",
             "--dsa-rank", "3", "--output", str(features[-1])]
        )
    table = pd.DataFrame(
        {
            "network_id": ["n3", "u1", "n9", "n1", "n2", "u0", "n0"],
            "architecture": ["gru", "gru", "gru", "lstm", "vanilla", "gru", "lstm"],
            "status": ["kept", "untrained", "kept", "kept", "failed", "untrained", "kept"],
        }
    )  # n9 has no states; n2 failed
    table.to_csv(tmp_path / "networks.csv", index=False)
    out = tmp_path / "cca"
    _load_script().main(
        ["--features", *map(str, features), "--networks", str(tmp_path / "networks.csv"),
         "--n-components", "4", "--sensitivity-components", "2", "4", "20",
         "--extra-metrics", "cka", "procrustes", "dsa", "--block-memory-mb", "0.001",
         "--output-dir", str(out)]
    )
    states = {}
    for name in ("s0", "s1"):
        arrays = np.load(tmp_path / f"{name}.npz")
        states.update(zip(arrays["network_ids"], arrays["hidden"]))
    kept_ids = ["n3", "n1", "n0"]
    all_ids = ["n3", "u1", "n1", "u0", "n0"]
    kept = [states[i] for i in kept_ids]
    load = lambda sub: np.load(out / sub / "distance.npy", allow_pickle=False)
    index = lambda sub: list(pd.read_csv(out / sub / "index.csv")["network_id"])
    assert index(".") == kept_ids and index("untrained") == all_ids
    np.testing.assert_allclose(load("."), sim.svcca_distance_matrix(kept, 4, progress=False), atol=1e-10, rtol=0)
    np.testing.assert_allclose(
        load("untrained"),
        sim.svcca_distance_matrix([states[i] for i in all_ids], 4, progress=False),
        atol=1e-10,
        rtol=0,
    )
    for k in (2, 4, 20):
        assert index(f"sensitivity/k{k}") == kept_ids
        np.testing.assert_allclose(
            load(f"sensitivity/k{k}"), sim.svcca_distance_matrix(kept, n_components=k, progress=False),
            atol=1e-10, rtol=0,
        )
    assert not np.allclose(load("sensitivity/k2"), load("sensitivity/k4"))
    np.testing.assert_allclose(load("cka"), sim.cka_distance_matrix(kept, progress=False), atol=1e-10, rtol=0)
    np.testing.assert_allclose(load("procrustes"), sim.procrustes_distance_matrix(kept, progress=False), atol=1e-10, rtol=0)
    np.testing.assert_allclose(load("dsa"), sim.dsa_distance_matrix(kept, 2, 3, progress=False), atol=1e-10, rtol=0)
    assert index("dsa") == kept_ids and pd.read_csv(out / "index.csv")["architecture"].tolist() == ["gru", "lstm", "lstm"]
    assert not list(out.rglob(".*"))  # no temporary files left behind


def test_stage_names_a_corrupt_features_file(tmp_path):
    rng = np.random.default_rng(34)
    path = tmp_path / "f.npz"
    sim.save_features(path, sim.shard_features(["n0", "n1"], shard_states(rng, 2, 3), 3))
    path.write_bytes(path.read_bytes()[:-200])
    pd.DataFrame({"network_id": ["n0", "n1"], "status": "kept"}).to_csv(tmp_path / "n.csv", index=False)
    result = _run(SCRIPT, ["--features", path, "--networks", tmp_path / "n.csv", "--output-dir", tmp_path / "cca"], tmp_path)
    assert result.returncode != 0 and str(path) in result.stderr


@pytest.mark.parametrize("n_kept", [0, 1])
def test_stage_handles_zero_or_one_network(tmp_path, capsys, restore_logging, n_kept):
    rng = np.random.default_rng(22)
    sim.save_features(tmp_path / "f.npz", sim.shard_features(["n0", "n1"], shard_states(rng, 2, 4), 4))
    status = ["kept" if i < n_kept else "failed" for i in range(2)]
    pd.DataFrame(
        {"network_id": ["n0", "n1"], "architecture": "gru", "activation": "tanh", "status": status}
    ).to_csv(tmp_path / "networks.csv", index=False)
    out = tmp_path / "cca"
    _load_script().main(
        ["--features", str(tmp_path / "f.npz"), "--networks", str(tmp_path / "networks.csv"),
         "--extra-metrics", "cka", "--sensitivity-components", "3", "--output-dir", str(out)]
    )
    assert "WARNING" in capsys.readouterr().err
    for sub in (".", "cka", "untrained", "sensitivity/k3"):
        np.testing.assert_array_equal(np.load(out / sub / "distance.npy"), np.zeros((n_kept, n_kept)))
        assert list(pd.read_csv(out / sub / "index.csv")["network_id"]) == ["n0"][:n_kept]


def test_registry_names_every_metric_and_rejects_unknown_ones():
    from rnnuniv.similarity import registry

    assert list(registry.EXTRA_METRICS) == ["cka", "procrustes", "dsa"]
    assert [m.name for m in registry.feature_metrics(["cka", "dsa"])] == ["dsa"]
    assert registry.EXTRA_METRICS["dsa"].key == "dsa_eigenvalues"
    assert registry.metric_options(["procrustes", "cka"], {"procrustes_kind": "euclidean"}) == {
        "procrustes_kind": "euclidean"
    }
    assert registry.metric_options(["dsa"], {}, "feature_options") == {"dsa_n_delays": 5, "dsa_rank": 10}
    with pytest.raises(ValueError, match="'cosine'.*cka, procrustes, dsa"):
        registry.check_metric_names(["cka", "cosine"])
    with pytest.raises(ValueError, match="either streamed or per_network"):
        registry.Metric("both", "Both")
    with pytest.raises(ValueError, match="go together"):
        registry.Metric("half", "Half", per_network=lambda states, options: states)


def test_registry_reads_without_torch():
    """The rules import the registry at every parse: it must not pull in torch."""
    code = "import sys, rnnuniv.similarity.registry; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
