"""Known-answer tests of the fixed-point finder (rnnuniv.fixedpoints)."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.optimize import brentq

from rnnuniv.fixedpoints import (
    find_fixed_points,
    linearized_frequency,
    network_generator,
    network_initial_states,
    n_marginal,
    probe_scales,
    rms_spread,
    shard_fixed_points,
    sample_initial_states,
    summarize,
)

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _orthogonal(n: int, seed: int) -> torch.Tensor:
    q, r = torch.linalg.qr(torch.randn(n, n, generator=_gen(seed), dtype=F64))
    return q * torch.sign(torch.diagonal(r))


def _match(found: torch.Tensor, expected: torch.Tensor) -> torch.Tensor:
    """For each expected point [E, n], the index of the nearest found point [P, n]."""
    return torch.cdist(expected, found).argmin(1)


# ---------------------------------------------------------------------------------------------
# 1-D map h' = tanh(2 h)
# ---------------------------------------------------------------------------------------------
def test_tanh_map_has_three_fixed_points_to_1e_10():
    h_star = brentq(lambda h: math.tanh(2 * h) - h, 0.5, 1.5, xtol=1e-15, rtol=1e-15)
    assert abs(h_star - 0.957504) < 1e-6
    h0 = 1.5 * torch.randn(256, 1, generator=_gen(0), dtype=F64)
    result = find_fixed_points(lambda h, x: torch.tanh(2 * h), None, h0)

    assert len(result) == 3 and bool(result.is_fixed.all())
    order = torch.argsort(result.points[:, 0])
    points = result.points[order, 0]
    expected = torch.tensor([-h_star, 0.0, h_star], dtype=F64)
    assert torch.allclose(points, expected, atol=1e-10, rtol=0)
    assert float(result.q.max()) < 1e-20
    eig = result.eigenvalues[order, 0]
    expected_eig = 2 * (1 - expected**2)
    assert torch.allclose(eig.real, expected_eig, atol=1e-9) and float(eig.imag.abs().max()) == 0
    assert result.n_unstable[order].tolist() == [0, 1, 0]
    assert result.jacobians.shape == (3, 1, 1) and result.input_jacobians.shape == (3, 1, 0)
    summary = summarize(result)
    assert summary["isolated_fixed_by_n_unstable"] == {0: 2, 1: 1}
    assert summary["n_manifolds"] == 0 and summary["n_nodes"] == 3


# ---------------------------------------------------------------------------------------------
# Linear map h' = A h + B x + b
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [1, 2])
def test_linear_map_single_fixed_point(seed):
    n, m = 10, 3
    g = _gen(seed)
    a = torch.randn(n, n, generator=g, dtype=F64)
    a = 0.9 * a / torch.linalg.eigvals(a).abs().max()  # stable, non-normal
    b_in = torch.randn(n, m, generator=g, dtype=F64)
    bias = torch.randn(n, generator=g, dtype=F64)
    x = torch.randn(m, generator=g, dtype=F64)

    def step(h, u):
        return h @ a.T + u @ b_in.T + bias

    h0 = torch.randn(128, n, generator=g, dtype=F64)
    result = find_fixed_points(step, x, h0)

    expected = torch.linalg.solve(torch.eye(n, dtype=F64) - a, b_in @ x + bias)
    assert len(result) == 1
    assert torch.allclose(result.points[0], expected, atol=1e-10)
    assert float(result.q[0]) < 1e-20 and bool(result.is_fixed[0])
    assert torch.allclose(result.jacobians[0], a, atol=1e-12)
    assert torch.allclose(result.input_jacobians[0], b_in, atol=1e-12)
    assert torch.allclose(result.inputs[0], x)
    ref = torch.linalg.eigvals(a)
    ref = ref[torch.argsort(ref.abs(), descending=True)]
    assert torch.allclose(result.eigenvalues[0].abs(), ref.abs(), atol=1e-10)
    assert int(result.n_unstable[0]) == 0
    # right and left eigenvectors of the non-normal Jacobian
    lam, right, left = result.eigenvalues[0], result.right_eigenvectors[0], result.left_eigenvectors[0]
    ac = a.to(torch.complex128)
    assert torch.allclose(ac @ right, right * lam, atol=1e-10)
    assert torch.allclose(left @ ac, lam[:, None] * left, atol=1e-10)
    assert torch.allclose(left @ right, torch.eye(n, dtype=torch.complex128), atol=1e-10)


# ---------------------------------------------------------------------------------------------
# 3-bit flip-flop solved by hand: h' = tanh(W h + B x), W = 2 I on the memory dimensions
# ---------------------------------------------------------------------------------------------
def _flipflop(n: int, seed: int):
    """Vanilla RNN in n dims with W = blockdiag(2 I_3, W_e), ||W_e||_2 = 0.5, seen through a random
    rotation Q: step(h) = Q tanh(W Q^T h + B x). Extra dims contract (|tanh(W_e z)| <= 0.5 |z|), so
    the fixed points are Q [s, 0] with s in {-h*, 0, h*}^3: 27 points."""
    g = _gen(seed)
    w = torch.zeros(n, n, dtype=F64)
    w[:3, :3] = 2 * torch.eye(3, dtype=F64)
    if n > 3:
        w_e = torch.randn(n - 3, n - 3, generator=g, dtype=F64)
        w[3:, 3:] = 0.5 * w_e / torch.linalg.matrix_norm(w_e, ord=2)
    b_in = torch.zeros(n, 3, dtype=F64)
    b_in[:3] = torch.eye(3, dtype=F64)
    rot = _orthogonal(n, seed + 100) if n > 3 else torch.eye(3, dtype=F64)

    def step(h, x):
        return torch.tanh(h @ rot @ w.T + x @ b_in.T) @ rot.T

    h_star = brentq(lambda h: math.tanh(2 * h) - h, 0.5, 1.5, xtol=1e-15, rtol=1e-15)
    corners = torch.tensor(list(itertools.product([-h_star, 0.0, h_star], repeat=3)), dtype=F64)
    expected = torch.cat([corners, torch.zeros(27, n - 3, dtype=F64)], 1) @ rot.T
    n_zero = (corners == 0).sum(1)
    h0_local = torch.cat(
        [2.4 * torch.rand(1024, 3, generator=g, dtype=F64) - 1.2,
         0.3 * torch.randn(1024, n - 3, generator=g, dtype=F64)], 1)  # fmt: skip
    return step, h0_local @ rot.T, expected, n_zero, rot, w, b_in


@pytest.mark.parametrize("analytic", [False, True], ids=["autodiff-jacobians", "analytic-jacobians"])
@pytest.mark.parametrize("n", [3, 16])
def test_flipflop_27_fixed_points_with_stability_classes(n, analytic):
    step, h0, expected, n_zero, rot, w, b_in = _flipflop(n, seed=3)

    def jacobian(h, x):  # F(h) = tanh(h Q W^T + x B^T) Q^T: J = Q diag(g) W Q^T, dF/dx = Q diag(g) B
        gain = 1 - torch.tanh(h @ rot @ w.T + x @ b_in.T) ** 2  # [K, n]
        return rot @ (gain[:, :, None] * (w @ rot.T)), rot @ (gain[:, :, None] * b_in)

    result = find_fixed_points(step, torch.zeros(3, dtype=F64), h0, jacobian=jacobian if analytic else None)

    assert len(result) == 27 and bool(result.is_fixed.all())
    assert float(result.q.max()) < 1e-20
    idx = _match(result.points, expected)
    assert len(set(idx.tolist())) == 27
    assert torch.allclose(result.points[idx], expected, atol=1e-10)
    assert torch.equal(result.n_unstable[idx], n_zero)  # unstable modes = zero coordinates
    summary = summarize(result)
    assert summary["isolated_fixed_by_n_unstable"] == {0: 8, 1: 12, 2: 6, 3: 1}
    assert summary["n_manifolds"] == 0 and summary["n_nodes"] == 27
    # input Jacobian dF/dx = Q diag(1 - tanh^2) B at the fixed point (inputs zero)
    local = expected @ rot  # [27, n] fixed points in the RNN's own coordinates
    gain = 1 - torch.tanh(local @ w.T) ** 2
    expected_input_jac = rot @ (gain[:, :, None] * b_in)
    assert torch.allclose(result.input_jacobians[idx], expected_input_jac, atol=1e-10)


# ---------------------------------------------------------------------------------------------
# Batching over networks
# ---------------------------------------------------------------------------------------------
def test_batched_networks_equal_one_at_a_time():
    n, m, n_networks = 6, 2, 3
    g = _gen(7)
    # gain 1.6 vanilla tanh RNNs have several fixed points and some saddles
    w = 1.6 * torch.randn(n_networks, n, n, generator=g, dtype=F64) / math.sqrt(n)
    b_in = torch.randn(n_networks, n, m, generator=g, dtype=F64)
    x = 0.1 * torch.randn(n_networks, m, generator=g, dtype=F64)
    h0 = torch.randn(n_networks, 200, n, generator=g, dtype=F64)

    def batched_step(h, u):  # [N, K, n], [N, K, m]
        return torch.tanh(h @ w.transpose(1, 2) + u @ b_in.transpose(1, 2))

    batched = find_fixed_points(batched_step, x, h0)
    assert isinstance(batched, list) and len(batched) == n_networks
    total = 0
    for i in range(n_networks):
        single = find_fixed_points(
            lambda h, u, i=i: torch.tanh(h @ w[i].T + u @ b_in[i].T), x[i], h0[i]
        )
        one = batched[i]
        assert len(one) == len(single) >= 1
        total += len(one)
        idx = _match(one.points, single.points)
        assert len(set(idx.tolist())) == len(single)
        assert torch.allclose(one.points[idx], single.points, atol=1e-9)
        assert torch.equal(one.n_unstable[idx], single.n_unstable)
        assert torch.equal(one.is_fixed[idx], single.is_fixed)
        assert torch.allclose(one.jacobians[idx], single.jacobians, atol=1e-9)
        assert torch.allclose(one.eigenvalues[idx].abs(), single.eigenvalues.abs(), atol=1e-9)
        assert torch.allclose(one.inputs, x[i].expand_as(one.inputs))
        assert summarize(one) == summarize(single)
    assert total > n_networks  # some network has more than one point: the test has teeth


def test_each_network_refines_exactly_as_it_would_alone():
    """Newton/LM refinement of a batch: each network's points follow the same path as alone.

    Gain-2 networks of 10 units have slow points and ill-conditioned Jacobians, so some points
    need Levenberg-Marquardt steps; which points get them must depend on the point, not on
    whether another network's point of the same index needed them (the result would then change
    with ``network_chunk``).
    """
    from functools import partial

    from rnnuniv.fixedpoints.linearise import _jacobians
    from rnnuniv.fixedpoints.optimise import _refine

    n, m, n_networks = 10, 2, 4
    g = _gen(23)
    w = 2.0 * torch.randn(n_networks, n, n, generator=g, dtype=F64) / math.sqrt(n)
    b_in = torch.randn(n_networks, n, m, generator=g, dtype=F64)
    x = (0.1 * torch.randn(n_networks, 1, m, generator=g, dtype=F64)).expand(-1, 300, -1).contiguous()
    h0 = 1.5 * torch.randn(n_networks, 300, n, generator=g, dtype=F64)

    def step(weights, inputs, h, u):
        return torch.tanh(h @ weights.transpose(1, 2) + u @ inputs.transpose(1, 2))

    def refine(part):
        net_step = partial(step, w[part], b_in[part])
        jacobians = partial(_jacobians, net_step, batch=4096)
        return _refine(net_step, jacobians, h0[part], x[part], 40, 1e-26, 0.5, 5e-4)

    together = refine(slice(0, n_networks))
    moved = (together - h0).norm(dim=-1)
    assert (moved > 1e-3).float().mean() > 0.5  # the refinement does move points: the test has teeth
    for i in range(n_networks):
        alone = refine(slice(i, i + 1))[0]
        assert torch.allclose(together[i], alone, rtol=0, atol=1e-10), i


# ---------------------------------------------------------------------------------------------
# Continua of fixed points are one manifold, not hundreds of fixed points
# ---------------------------------------------------------------------------------------------
def test_line_attractor_is_one_manifold_of_dimension_one():
    n = 8
    g = _gen(11)
    basis = torch.eye(n, dtype=F64) + 0.3 * torch.randn(n, n, generator=g, dtype=F64)
    spectrum = torch.cat([torch.ones(1, dtype=F64), torch.linspace(0.2, 0.8, n - 1, dtype=F64)])
    a = basis @ torch.diag(spectrum) @ torch.linalg.inv(basis)  # non-normal, eigenvalue 1 on a line
    direction = basis[:, 0] / basis[:, 0].norm()

    def step(h, x):
        return h @ a.T

    # probe trajectories: start anywhere along the line (plus an off-line kick), decay onto it
    start = (4 * torch.rand(256, 1, generator=g, dtype=F64) - 2) * direction
    start = start + 0.3 * torch.randn(256, n, generator=g, dtype=F64)
    states = [start]
    for _ in range(30):
        states.append(step(states[-1], None))
    trajectories = torch.stack(states, 1)  # [256, 31, n]
    h0 = sample_initial_states(trajectories, 512, noise_scale=0.2, generator=g)
    result = find_fixed_points(
        step, None, h0, manifold_length_scale=0.25 * rms_spread(trajectories)
    )

    assert len(result) > 50  # the continuum really yields many distinct points...
    off_line = result.points - (result.points @ direction)[:, None] * direction
    assert float(off_line.norm(dim=1).max()) < 1e-8 and float(result.q.max()) < 1e-20
    summary = summarize(result)  # ...but they are counted as one manifold
    assert summary["n_manifolds"] == 1
    assert summary["manifolds"][0]["dimension"] == 1
    assert summary["manifolds"][0]["pca_dimension"] == 1
    assert summary["n_isolated_fixed"] == 0 and summary["n_nodes"] == 1
    assert bool((result.cluster == 0).all())
    extent = summary["manifolds"][0]["extent"]
    spread = float((result.points @ direction).max() - (result.points @ direction).min())
    assert extent == pytest.approx(spread, rel=1e-9)


def test_ring_attractor_is_one_manifold_of_dimension_one():
    """h' = h + 0.5 h (1 - |h|^2) in a plane, contracting elsewhere: a ring of fixed points
    (eigenvalues 1 tangent, 0 radial) around an unstable origin, in rotated 8-D coordinates."""
    n = 8
    rot = _orthogonal(n, 5)

    def step(h, x):
        z = h @ rot
        plane, rest = z[:, :2], z[:, 2:]
        radius2 = plane.pow(2).sum(-1, keepdim=True)
        z_next = torch.cat([plane + 0.5 * plane * (1 - radius2), 0.5 * rest], 1)
        return z_next @ rot.T

    g = _gen(12)
    h0 = (1.0 * torch.randn(512, n, generator=g, dtype=F64)) @ rot.T
    result = find_fixed_points(step, None, h0, manifold_length_scale=0.25 * rms_spread(h0))
    summary = summarize(result)
    assert len(result) > 50
    assert summary["n_manifolds"] == 1
    ring = summary["manifolds"][0]
    assert ring["dimension"] == 1 and ring["pca_dimension"] == 2
    assert ring["extent"] == pytest.approx(2.0, abs=0.05)  # diameter of the unit ring
    on_ring = result.cluster == 0
    radius = (result.points[on_ring] @ rot)[:, :2].norm(dim=1)
    assert torch.allclose(radius, torch.ones_like(radius), atol=1e-10)
    # only the unstable origin (two unstable modes) may be an isolated fixed point
    assert summary["n_isolated_fixed"] <= 1
    if summary["n_isolated_fixed"]:
        assert summary["isolated_fixed_by_n_unstable"] == {2: 1}
        assert float(result.points[~on_ring].norm()) < 1e-10


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------
def test_sample_initial_states_statistics_and_reproducibility():
    trajectories = torch.zeros(4, 50, 3)
    trajectories[..., 0] = 5.0
    states = sample_initial_states(trajectories, n_inits=20000, noise_scale=0.5, generator=_gen(0))
    assert states.shape == (20000, 3)
    assert torch.allclose(states.mean(0), torch.tensor([5.0, 0.0, 0.0]), atol=0.02)
    assert torch.allclose(states.std(0), torch.full((3,), 0.5), atol=0.02)
    again = sample_initial_states(trajectories, n_inits=20000, noise_scale=0.5, generator=_gen(0))
    assert torch.equal(states, again)
    # without noise every state is one of the trajectory states; batched keeps networks apart
    per_net = torch.arange(2 * 6 * 2, dtype=F64).reshape(2, 6, 2)
    drawn = sample_initial_states(per_net, n_inits=30, noise_scale=0.0, generator=_gen(1), batched=True)
    assert drawn.shape == (2, 30, 2)
    for i in range(2):
        assert bool((torch.cdist(drawn[i], per_net[i]).min(1).values == 0).all())
    assert sample_initial_states(trajectories).shape == (1024, 3)


def test_linearized_frequency_and_n_marginal():
    theta = 2 * math.pi * 0.05
    eig = torch.tensor(
        [[0.99 * complex(math.cos(theta), math.sin(theta)),
          0.99 * complex(math.cos(theta), -math.sin(theta)), 1.2, 0.5]],
        dtype=torch.complex128,
    )  # fmt: skip
    assert float(linearized_frequency(eig)[0]) == pytest.approx(0.05, abs=1e-12)
    assert float(linearized_frequency(torch.tensor([0.9, 0.5], dtype=torch.complex128))) == 0.0
    assert int(n_marginal(eig, tol=0.02)[0]) == 2
    assert int(n_marginal(eig, tol=0.005)[0]) == 0


def test_rejects_float32_step_and_bad_shapes():
    w = torch.eye(2)  # float32 weights cannot take float64 states

    with pytest.raises(TypeError):
        find_fixed_points(lambda h, x: torch.tanh(h @ w), None, torch.zeros(4, 2))
    with pytest.raises(ValueError):
        find_fixed_points(lambda h, x: h, None, torch.zeros(2))
    with pytest.raises(ValueError):
        find_fixed_points(lambda h, x: h, torch.zeros(5, 1), torch.zeros(4, 2, dtype=F64))


def test_slow_points_are_not_fixed_points():
    """h' = h + 0.01 (1 + h^2) has no fixed point; its slowest point (h = 0, speed 0.01, q = 5e-5)
    is a slow point when max_q_slow admits it, and nothing is reported otherwise."""

    def step(h, x):
        return h + 0.01 * (1 + h**2)

    h0 = torch.linspace(-1, 1, 64, dtype=F64)[:, None]
    result = find_fixed_points(step, None, h0, max_q_slow=1e-3, tol_unique=0.01)
    assert len(result) == 1 and not bool(result.is_fixed[0])
    assert float(result.points[0, 0]) == pytest.approx(0.0, abs=1e-2)
    assert float(result.q[0]) == pytest.approx(5e-5, rel=1e-3)
    assert summarize(result)["n_isolated_slow"] == 1 and summarize(result)["n_nodes"] == 0
    assert len(find_fixed_points(step, None, h0)) == 0  # default max_q_slow = 1e-6


@pytest.mark.parametrize("architecture", ["gru", "lstm"])
def test_cell_jacobians_give_the_same_fixed_points_as_autodiff(architecture):
    """The finder with ``Cell.jacobian`` finds what it finds by differentiating ``Cell.step``."""
    from rnnuniv.cells import make_cell

    cell = make_cell(architecture, "tanh")
    params = cell.init_params(2, 6, 1, seeds=[0, 1], dtype=F64)
    params = {k: 3.0 * v if k == "w_rec" else v for k, v in params.items()}  # several fixed points
    h0 = torch.randn(2, 300, cell.state_size(6), generator=_gen(2), dtype=F64)
    x = torch.zeros(2, dtype=F64)

    def step(h, u):
        return cell.step(params, h, u)

    found = {
        analytic: find_fixed_points(
            step, x, h0, jacobian=(lambda h, u: cell.jacobian(params, h, u)) if analytic else None
        )
        for analytic in (False, True)
    }
    assert sum(len(r) for r in found[True]) > 2  # some network has several points
    for with_formula, with_autodiff in zip(found[True], found[False]):
        assert len(with_formula) == len(with_autodiff)
        idx = _match(with_formula.points, with_autodiff.points)
        assert torch.allclose(with_formula.points[idx], with_autodiff.points, atol=1e-9)
        assert torch.equal(with_formula.n_unstable[idx], with_autodiff.n_unstable)
        # the points agree to ~1e-10; with recurrent gain 3 the Jacobians there agree to ~1e-7
        torch.testing.assert_close(with_formula.jacobians[idx], with_autodiff.jacobians, rtol=0, atol=1e-6)
        torch.testing.assert_close(
            with_formula.input_jacobians[idx], with_autodiff.input_jacobians, rtol=0, atol=1e-6
        )


def test_probe_scales_median_step_and_spread():
    """Trajectories moving 0.1 per step along a line: median speed 0.1, spread the RMS radius."""
    t = torch.arange(11, dtype=F64) * 0.1  # positions 0..1
    line = torch.stack([t, torch.zeros_like(t)], -1)  # [T, 2]
    trajectories = torch.stack([line[None], 2 * line[None]])  # [N=2, K=1, T, 2]
    speed, spread = probe_scales(trajectories)
    assert speed.tolist() == pytest.approx([0.1, 0.2])
    assert spread[0].item() == pytest.approx(rms_spread(line)) and spread[1].item() == pytest.approx(2 * spread[0].item())


def test_shard_stores_one_marginal_tolerance_and_probe_scales():
    """A 1-unit vanilla net with w = 1 (h' = tanh(h)) has one fixed point, 0, with lambda = 1."""
    from rnnuniv.cells import make_cell

    params = {"w_in": torch.zeros(1, 1, 1, dtype=F64), "w_rec": torch.ones(1, 1, 1, dtype=F64),
              "bias": torch.zeros(1, 1, dtype=F64), "w_out": torch.ones(1, 1, 1, dtype=F64),
              "b_out": torch.zeros(1, 1, dtype=F64)}
    trajectories = torch.linspace(-0.1, 0.1, 8, dtype=F64).view(1, 1, 8, 1)
    for tol, expected in ((1e-3, 1), (1e-20, 0)):
        arrays, table = shard_fixed_points(
            make_cell("vanilla", "tanh"), params, trajectories, [("zero", np.zeros(1))], 1,
            n_inits=8, marginal_tol=tol, max_q_slow=None)
        assert float(arrays["marginal_tol"]) == tol
        assert arrays["n_marginal"][np.argmin(arrays["q"])] == expected
        assert table["n_marginal"].iloc[0] == expected
    assert arrays["probe_speed"].tolist() == pytest.approx([0.2 / 7])
    assert arrays["probe_spread"].shape == (1,)


# ---------------------------------------------------------------------------------------------
# The shard format: one writer, one reader
# ---------------------------------------------------------------------------------------------
def test_read_shard_splits_interleaved_networks_in_stored_order():
    """Points of networks 1, 0, 1, 0, 0 come back per network in file order; absent keys are None."""
    from rnnuniv.fixedpoints import read_shard

    arrays = {
        "network_ids": np.array(["a", "b", "c"]),
        "network_index": np.array([1, 0, 1, 0, 0]),
        "q": np.array([10.0, 0.0, 11.0, 1.0, 2.0]),
        "points": np.arange(10.0).reshape(5, 2),
        "condition_names": np.array(["zero", "one"]),
        "marginal_tol": np.float64(0.01),
    }
    shard = read_shard(arrays)
    assert shard.network_ids == ["a", "b", "c"] and shard.condition_names == ["zero", "one"]
    assert shard.marginal_tol == 0.01 and shard.condition_inputs is None and shard.probe_speed is None
    a, b, c = shard.networks
    assert a.q.tolist() == [0.0, 1.0, 2.0] and b.q.tolist() == [10.0, 11.0] and c.q.tolist() == []
    assert a.points.tolist() == [[2.0, 3.0], [6.0, 7.0], [8.0, 9.0]] and c.points.shape == (0, 2)
    assert a.eigenvalues is None and set(a.arrays()) == {"q", "points"}
    assert set(b.arrays(("q", "cluster"))) == {"q"} and shard.by_id["b"] is b
    with pytest.raises(ValueError, match="network_index"):
        read_shard({"network_ids": np.array(["a"])})


def test_written_shard_reads_back_with_its_linearisation(tmp_path):
    """h' = tanh(h) (one unit, w = 1): the one fixed point 0 with lambda = 1 survives write + read."""
    from rnnuniv.cells import make_cell
    from rnnuniv.fixedpoints import load_shard, write_shard
    from rnnuniv.topology import points_from_shard

    params = {"w_in": torch.zeros(2, 1, 1, dtype=F64), "w_rec": torch.ones(2, 1, 1, dtype=F64),
              "bias": torch.zeros(2, 1, dtype=F64), "w_out": torch.ones(2, 1, 1, dtype=F64),
              "b_out": torch.zeros(2, 1, dtype=F64)}
    trajectories = torch.linspace(-0.1, 0.1, 16, dtype=F64).view(2, 1, 8, 1)
    conditions = [("zero", np.zeros(1)), ("one", np.ones(1))]
    arrays, _ = shard_fixed_points(make_cell("vanilla", "tanh"), params, trajectories, conditions, 1,
                                   n_inits=8, max_q_slow=None)
    write_shard(tmp_path / "fp.npz", ["n0", "n1"], arrays)
    shard = load_shard(tmp_path / "fp.npz", required=("eigenvalues",))
    assert shard.network_ids == ["n0", "n1"] and shard.condition_names == ["zero", "one"]
    assert shard.marginal_tol == 1e-3 and shard.probe_spread.shape == (2,)
    for network, dicts in zip(shard.networks, points_from_shard(np.load(tmp_path / "fp.npz"))):
        assert network.condition_index.tolist() == [0, 1]  # w_in = 0: the same one point per condition
        best = np.argmin(network.q)
        assert network.points[best, 0] == pytest.approx(0.0, abs=1e-3)
        assert network.eigenvalues[best, 0] == pytest.approx(1.0, abs=1e-3) and network.n_marginal[best] == 1
        assert network.outputs[best, 0] == pytest.approx(network.points[best, 0])
        assert set(dicts) <= set(network.arrays())
        assert all(np.array_equal(dicts[k], getattr(network, k)) for k in dicts)
    with pytest.raises(Exception, match="missing arrays"):
        load_shard(tmp_path / "fp.npz", required=("no_such_key",))



def _seeded_shard(architecture, gain):
    from rnnuniv.cells import make_cell

    cell = make_cell(architecture, "tanh")
    params = cell.init_params(2, 12, 1, seeds=[3, 4, 5], dtype=F64, scheme="fan_in")  # gain x spectral radius 1
    params["w_rec"] = params["w_rec"] * gain
    inputs = torch.randn(4, 20, 2, generator=torch.Generator().manual_seed(0), dtype=F64)
    conditions = [("zero", np.zeros(2)), ("push", np.array([0.3, -0.2]))]
    return cell, params, cell.run(params, inputs), conditions  # trajectories [3, 4, 20, S]


@pytest.mark.parametrize("architecture", ["vanilla", "gru", "lstm"])
def test_shard_in_network_chunks_is_each_chunk_searched_alone(architecture):
    """network_chunk=2 over 3 networks: bit for bit the finder on networks [0, 1] then [2], each
    network's initial states drawn from its own stream (so the chunk does not change the draws)."""
    cell, params, trajectories, conditions = _seeded_shard(architecture, 1.8)
    options = dict(adam_iters=30, newton_iters=15)
    arrays, table = shard_fixed_points(cell, params, trajectories, conditions, 12, n_inits=48, seed=1,
                                       network_chunk=2, **options)
    scales = [0.25 * rms_spread(t) for t in trajectories]
    expected = []  # (network, condition, points, eigenvalues) in stored order
    for c, (_, x) in enumerate(conditions):
        h0 = torch.stack([sample_initial_states(t, 48, 0.5, network_generator(1, str(i))) for i, t in enumerate(trajectories)])
        for part in (slice(0, 2), slice(2, 3)):
            p = {k: v[part] for k, v in params.items()}
            found = find_fixed_points(lambda h, u, p=p: cell.step(p, h, u), torch.as_tensor(x), h0[part],
                                      manifold_length_scale=scales[part],
                                      jacobian=lambda h, u, p=p: cell.jacobian(p, h, u), **options)
            expected += [(part.start + i, c, r.points, r.eigenvalues) for i, r in enumerate(found)]
    assert len(table) == 3 * 2 and len(arrays["q"]) > 3 * 2  # several points: a real comparison
    for network, c, points, eigenvalues in expected:
        mine = (arrays["network_index"] == network) & (arrays["condition_index"] == c)
        np.testing.assert_array_equal(arrays["points"][mine], points.numpy())
        np.testing.assert_array_equal(arrays["eigenvalues"][mine], eigenvalues.to(torch.complex64).numpy())
    with pytest.raises(ValueError, match="network_chunk"):
        shard_fixed_points(cell, params, trajectories, conditions, 12, n_inits=4, network_chunk=0)


def test_a_networks_initial_states_do_not_depend_on_its_shard_mates():
    """Each network draws from a stream seeded by (seed, its key): the same states alone, first or
    last in a shard of 3; a different key or seed draws different ones; keys must be distinct."""
    _, _, trajectories, _ = _seeded_shard("gru", 1.8)
    together = network_initial_states(trajectories, ["a", "b", "c"], 16, 0.5, seed=3)
    alone = network_initial_states(trajectories[1:2], ["b"], 16, 0.5, seed=3)
    reordered = network_initial_states(trajectories[[2, 1]], ["c", "b"], 16, 0.5, seed=3)
    np.testing.assert_array_equal(alone[0].numpy(), together[1].numpy())
    np.testing.assert_array_equal(reordered[1].numpy(), together[1].numpy())
    np.testing.assert_array_equal(reordered[0].numpy(), together[2].numpy())
    assert not torch.equal(network_initial_states(trajectories[1:2], ["x"], 16, 0.5, seed=3), alone)
    assert not torch.equal(network_initial_states(trajectories[1:2], ["b"], 16, 0.5, seed=4), alone)
    with pytest.raises(ValueError, match="distinct"):
        network_initial_states(trajectories[:2], ["a", "a"], 16, 0.5, seed=3)


def test_a_networks_fixed_points_do_not_depend_on_its_shard_mates():
    """Network "b" searched in a shard of 3 (one network per chunk) and alone: bit for bit the same
    points and eigenvalues (before per-network streams, its noise followed the other networks'
    draws, and a change of n_seeds moved every network's fixed points)."""
    cell, params, trajectories, conditions = _seeded_shard("vanilla", 1.8)
    options = dict(n_inits=48, seed=1, adam_iters=30, newton_iters=15)
    shard, _ = shard_fixed_points(cell, params, trajectories, conditions, 12, network_chunk=1,
                                  network_keys=["a", "b", "c"], **options)
    alone, _ = shard_fixed_points(cell, {k: v[1:2] for k, v in params.items()}, trajectories[1:2], conditions,
                                  12, network_keys=["b"], **options)
    mine = shard["network_index"] == 1
    assert mine.sum() >= 2  # points at both conditions: a real comparison
    np.testing.assert_array_equal(alone["points"], shard["points"][mine])
    np.testing.assert_array_equal(alone["eigenvalues"], shard["eigenvalues"][mine])
    np.testing.assert_array_equal(alone["condition_index"], shard["condition_index"][mine])


def test_shard_chunks_agree_on_a_contracting_network():
    """Gain 0.5 (one stable fixed point per network and input): chunks 1, 2 and all find the same
    points to round-off and the same stability. (Not bit for bit: the Newton refinement pads
    each network's still-refining states to the largest count in its batch, so batch shapes, and
    with them round-off, depend on the other networks.)"""
    cell, params, trajectories, conditions = _seeded_shard("gru", 0.5)
    runs = [shard_fixed_points(cell, params, trajectories, conditions, 12, n_inits=32, seed=1,
                               network_chunk=chunk)[0] for chunk in (1, 2, None)]
    first = runs[0]
    assert first["network_index"].tolist() == [0, 1, 2, 0, 1, 2] and first["is_fixed"].all()
    assert (first["n_unstable"] == 0).all()
    for other in runs[1:]:
        for key in ("network_index", "condition_index", "is_fixed", "n_unstable", "cluster"):
            np.testing.assert_array_equal(other[key], first[key], err_msg=key)
        np.testing.assert_allclose(other["points"], first["points"], rtol=0, atol=1e-12)


def test_settled_probe_states_find_every_attractor_the_noisy_search_misses():
    """A vanilla tanh 3-bit memory (gains 2, 2.2, 2.4; 3 decaying units) has exactly 8 attractors,
    one per sign pattern. Its probe states lie near them. 4 noisy initial states can find at most 4;
    16 settled probe states add the rest: 8 stable fixed points, 8 sign patterns, each exact."""
    from rnnuniv.cells import make_cell

    bits, extra = 3, 3
    n = bits + extra
    w_rec = torch.diag(torch.tensor([2.0, 2.2, 2.4] + [0.5] * extra, dtype=F64))
    params = {"w_in": torch.zeros(bits, n, dtype=F64), "w_rec": w_rec, "bias": torch.zeros(n, dtype=F64),
              "w_out": torch.eye(n, bits, dtype=F64), "b_out": torch.zeros(bits, dtype=F64)}
    params = {k: v.unsqueeze(0) for k, v in params.items()}
    corners = torch.tensor(list(itertools.product((-0.6, 0.6), repeat=bits)), dtype=F64)  # [8, 3]
    states = torch.cat([corners, torch.zeros(8, extra, dtype=F64)], 1)
    trajectories = (states[:, None, :] + 0.05 * torch.randn(8, 5, n, generator=_gen(0), dtype=F64))[None]
    cell, conditions = make_cell("vanilla", "tanh"), [("zero", np.zeros(bits))]
    options = dict(n_inits=4, noise_scale=3.0, seed=0, adam_iters=50)

    def stable(arrays):
        keep = arrays["is_fixed"] & (arrays["n_unstable"] == 0)
        return arrays["points"][keep]

    alone, _ = shard_fixed_points(cell, params, trajectories, conditions, n, **options)
    settled, _ = shard_fixed_points(cell, params, trajectories, conditions, n, n_settled=16, settle_steps=200, **options)
    assert len(stable(alone)) <= 4
    points = stable(settled)
    assert len(points) == 8
    assert {tuple(np.sign(p[:bits]).astype(int)) for p in points} == set(itertools.product((-1, 1), repeat=bits))
    np.testing.assert_allclose(np.tanh(points @ w_rec.numpy().T), points, atol=1e-12)  # F(h) = h
    with pytest.raises(ValueError, match="settle_steps"):
        shard_fixed_points(cell, params, trajectories, conditions, n, n_settled=2, settle_steps=-1, **options)
