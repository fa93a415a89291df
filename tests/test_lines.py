"""Line attractors from dense slow-manifold samples: hand-built networks with known answers.

Each network is sampled as the fixed-points stage samples a CDI context (probe states relaxed
onto the slow manifold, rnnuniv.fixedpoints.slow) and judged by rnnuniv.topology.lines with the
default criteria: a perfect integrator has a line with one slow mode, densely sampled; a leaky
integrator (tau = 5 steps), two point attractors and a plane attractor have none.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rnnuniv import io
from rnnuniv.cells import make_cell
from rnnuniv.fixedpoints import (
    SLOW_VERSION,
    load_shard,
    probe_scales,
    read_shard,
    sample_slow_manifold,
    seed_states,
    shard_fixed_points,
    slow_boundary,
    write_shard,
)
from rnnuniv.topology import LINE_DEFAULTS, cdi_summary, line_attractor

T = 20  # trial length of the hand-built tasks
S = 4


def linear_map(diagonal, drive):
    """``h' = h diag(diagonal) + x drive`` for states ``[N, K, S]`` and inputs ``[N, K, m]``."""
    a = torch.tensor(diagonal, dtype=torch.float64)
    b = torch.tensor(drive, dtype=torch.float64)

    def step(h, x):
        return h * a + x @ b

    return step


def probe(step, means, noise=0.05):
    """Probe trajectories ``[1, K, T, S]`` from h = 0 under noisy inputs of means ``[K, m]`` (as
    the CDI probe: stream means plus a little per-step noise)."""
    generator = torch.Generator().manual_seed(0)
    h = torch.zeros(1, means.shape[0], S, dtype=torch.float64)
    x = torch.as_tensor(means, dtype=torch.float64).unsqueeze(0)
    states = []
    for _ in range(T):
        h = step(h, x + noise * torch.randn(x.shape, generator=generator, dtype=torch.float64))
        states.append(h)
    return torch.stack(states, 2)


def judge(step, trajectories, m):
    """Sample the slow manifold at zero input and apply the line criteria (defaults)."""
    speed, spread = probe_scales(trajectories)
    (sample,) = sample_slow_manifold(
        step, torch.zeros(m, dtype=torch.float64), seed_states(trajectories, 256), speed.numpy(), spread.numpy(), T
    )
    record = line_attractor(sample["points"].numpy(), sample["q"].numpy(), sample["eigenvalues"].numpy(),
                            float(speed[0]), float(spread[0]), T)  # fmt: skip
    return record, sample


# each probe trial holds one stream mean; the input also pushes the state off the line
MEANS = np.linspace(-0.5, 0.5, 11)[:, None]
DRIVE = [[1.0, 0.6, -0.4, 0.3]]


def test_perfect_integrator_has_a_densely_sampled_line_with_one_slow_mode():
    step = linear_map([1.0, 0.5, 0.3, 0.2], DRIVE)
    record, sample = judge(step, probe(step, MEANS), 1)
    assert record["line_attractor"]
    assert record["n_slow_modes"] == 1 and record["n_fast_unstable"] == 0
    assert record["n_slow_points"] >= 4 * LINE_DEFAULTS["min_line_points"]  # dense, not a few isolated points
    assert record["line_variance"] > 0.999  # the points lie on the e1 axis: the fast modes relaxed
    assert np.abs(sample["points"].numpy()[:, 1:]).max() < 1e-2  # offsets were O(1)
    assert record["line_extent"] > 1.0 and record["max_gap"] < 0.1


def test_leaky_integrator_tau_5_has_no_line():
    step = linear_map([math.exp(-1 / 5), 0.5, 0.3, 0.2], DRIVE)
    record, _ = judge(step, probe(step, MEANS), 1)
    assert not record["line_attractor"]
    assert record["n_slow_modes"] == 0  # tau = 5 < T
    assert not record["line_extent"] >= LINE_DEFAULTS["line_extent"]  # slow only near its one fixed point


def test_two_point_attractors_have_no_line():
    diagonal = torch.tensor([0.0, 0.5, 0.3, 0.2], dtype=torch.float64)
    drive = torch.tensor(DRIVE, dtype=torch.float64)

    def step(h, x):  # e1: h' = tanh(3 h + x), stable points near +-1, a saddle at 0
        pre = h * diagonal + x @ drive
        return torch.cat([torch.tanh(3.0 * h[..., :1] + 2.0 * x[..., :1]), pre[..., 1:]], -1)

    record, sample = judge(step, probe(step, MEANS), 1)
    assert not record["line_attractor"]
    assert record["n_slow_points"] >= 2  # the two attractors are found ...
    assert record["max_gap"] > LINE_DEFAULTS["line_gap"]  # ... but nothing slow joins them


def test_plane_attractor_is_not_one_dimensional():
    step = linear_map([1.0, 1.0, 0.3, 0.2], [[1.0, 0.0, 0.5, 0.3], [0.0, 1.0, -0.4, 0.2]])
    grid = np.stack(np.meshgrid(np.linspace(-0.5, 0.5, 7), np.linspace(-0.5, 0.5, 7)), -1).reshape(-1, 2)
    record, _ = judge(step, probe(step, grid), 2)
    assert not record["line_attractor"]
    assert record["n_slow_modes"] == 2
    assert record["line_variance"] < LINE_DEFAULTS["line_variance"]


def test_relaxation_collapses_fast_modes_and_keeps_slow_ones_in_place():
    """A linear map with modes at tau = 2T (slow), T/2 and 2 steps (fast): one relaxation leaves the
    slow coordinate exactly where the seed had it and removes the fast ones."""
    diagonal = [math.exp(-1 / (2 * T)), math.exp(-2 / T), math.exp(-1 / 2), 0.1]
    step = linear_map(diagonal, [[0.0, 0.0, 0.0, 0.0]])
    seeds = torch.tensor([[[0.7, 0.3, -0.2, 0.5], [-0.4, -0.1, 0.6, 0.2]]], dtype=torch.float64)
    (sample,) = sample_slow_manifold(step, torch.zeros(1, dtype=torch.float64), seeds, [1.0], [1.0], T,
                                     iterations=1, speed_cap=1.0)  # fmt: skip
    points = sample["points"].numpy()
    assert sorted(points[:, 0].round(12)) == [-0.4, 0.7]
    assert np.abs(points[:, 1:]).max() < 1e-12
    assert slow_boundary(T, 1.0) == pytest.approx(1 - math.exp(-1 / T))


def relu_integrator(n_hidden=4):
    """A vanilla ReLU network with an exact half-line attractor on e1 (h1 >= 0, lambda = 1)."""
    params = {
        "w_in": torch.zeros(1, 4, n_hidden),
        "w_rec": torch.diag(torch.tensor([1.0, 0.5, 0.3, 0.2])).unsqueeze(0),
        "bias": torch.tensor([[0.0, 0.2, 0.1, 0.1]]),
        "w_out": torch.tensor([[[1.0], [0.0], [0.0], [0.0]]]),
        "b_out": torch.zeros(1, 1),
    }
    params["w_in"][0, 0] = torch.tensor([1.0, 0.5, 0.2, 0.1])
    return make_cell("vanilla", "relu"), {k: v.double() for k, v in params.items()}


def test_shard_stores_slow_samples_and_the_line_test_reads_them(tmp_path):
    cell, params = relu_integrator()
    # probe states: drifting along e1 (h1 in [0.2, 2]) with offsets in the fast directions
    rng = np.random.default_rng(0)
    along = np.linspace(0.2, 2.0, 60)
    states = np.zeros((1, 6, 10, S))
    states[..., 0] = along.reshape(6, 10)
    states[..., 1:] = 0.4 + 0.3 * rng.standard_normal((1, 6, 10, S - 1))
    conditions = [("context1", np.array([0.0, 0.0, 1.0, 0.0])), ("context2", np.array([0.0, 0.0, 0.0, 1.0]))]
    arrays, _ = shard_fixed_points(
        cell, params, torch.as_tensor(states), conditions, n_hidden=4, n_inits=16, adam_iters=20, newton_iters=5,
        slow_manifold={"n_seeds": 60}, slow_conditions=[0, 1], n_steps=T,
    )  # fmt: skip
    assert int(arrays["slow_version"]) == SLOW_VERSION and float(arrays["slow_speed_cap"]) == 0.1
    path = tmp_path / "shard.npz"
    write_shard(path, ["net0"], arrays)
    shard = load_shard(path)
    slow = shard.networks[0].slow
    assert shard.slow_conditions == [0, 1] and set(np.unique(slow["condition_index"])) == {0, 1}
    assert slow["eigenvalues"].shape == (len(slow["q"]), S)
    points = shard.networks[0].arrays(("points", "q", "eigenvalues", "condition_index"))
    summary = cdi_summary(points, np.stack([u for _, u in conditions]), float(shard.probe_speed[0]),
                          float(shard.probe_spread[0]), T, slow=slow, slow_speed_cap=shard.slow_speed_cap)  # fmt: skip
    assert summary["line_points"] == "slow_manifold"
    assert summary["line_attractor"] and summary["n_slow_modes"] == 1
    assert min(r["n_slow_points"] for r in summary["contexts"]) >= 10
    with pytest.raises(ValueError, match="speed cap"):
        cdi_summary(points, np.stack([u for _, u in conditions]), 1.0, 1.0, T, slow=slow, slow_speed_cap=0.1,
                    slow_speed_fraction=0.2)  # fmt: skip


def test_reader_refuses_slow_samples_of_another_version(tmp_path):
    arrays = {"network_ids": np.array(["a"]), "network_index": np.zeros(0, np.int64),
              "slow_network_index": np.zeros(0, np.int64), "slow_condition_index": np.zeros(0, np.int64),
              "slow_points": np.zeros((0, 3)), "slow_q": np.zeros(0), "slow_eigenvalues": np.zeros((0, 3), np.complex64),
              "slow_speed_cap": np.float64(0.1), "slow_spacing": np.float64(0.02),
              "slow_conditions": np.array([0]), "slow_version": np.int64(SLOW_VERSION)}  # fmt: skip
    assert read_shard(arrays).networks[0].slow["points"].shape == (0, 3)
    with pytest.raises(ValueError, match="version"):
        read_shard({**arrays, "slow_version": np.int64(SLOW_VERSION + 1)})
    partial = {k: v for k, v in arrays.items() if k != "slow_q"}
    with pytest.raises(ValueError, match="slow_q"):
        read_shard(partial)
    io.save_npz(tmp_path / "x.npz", **arrays)
    assert load_shard(tmp_path / "x.npz").slow_spacing == 0.02
