"""The fused recurrence equals autograd through ``Cell.run``: states and every gradient.

Every comparison runs twice, through the compiled kernels (``native``) and the pure-torch path.
"""

import functools

import pytest
import torch

from rnnuniv import fused, native
from rnnuniv.cells import ARCHITECTURES, make_cell

N, B, T, N_HIDDEN, M, P = 3, 4, 6, 5, 3, 2
CASES = [(arch, act) for arch in ARCHITECTURES for act in ("tanh", "relu")]


def _params(cell, dtype, seed=0):
    """Random weights with nonzero biases (init_params zeroes them, which would hide bias bugs)."""
    params = cell.init_params(M, N_HIDDEN, P, seeds=list(range(seed, seed + N)), dtype=dtype)
    gen = torch.Generator().manual_seed(seed + 100)
    for key in ("bias", "bias_rec"):
        if key in params:
            params[key] = 0.3 * torch.randn(params[key].shape, generator=gen, dtype=dtype)
    return {k: v.requires_grad_() for k, v in params.items()}


def _inputs(dtype, shape=(N, B, T, M), seed=1):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _weighted_grads(run, cell, params, inputs, state0=None):
    """Gradients of a fixed random weighted sum of all states w.r.t. every parameter."""
    states = run(cell, params, inputs, state0)
    weights = torch.randn(states.shape, generator=torch.Generator().manual_seed(7), dtype=states.dtype)
    wanted = [v for k, v in params.items() if k not in ("w_out", "b_out")]
    extra = [t for t in (inputs, state0) if t is not None and t.requires_grad]
    grads = torch.autograd.grad((states * weights).sum(), wanted + extra)
    return states, grads


def _autograd_run(cell, params, inputs, state0=None):
    return cell.run(params, inputs, state0)


@pytest.fixture(params=["native", "torch"])
def fused_run(request):
    """``fused.run`` through one backend; the native one must build on the test machines."""
    return functools.partial(fused.run, backend=request.param)


@pytest.mark.parametrize("architecture,activation", CASES)
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-6), (torch.float64, 1e-10)])
def test_forward_equals_cell_run(fused_run, architecture, activation, dtype, tol):
    cell = make_cell(architecture, activation)
    params, inputs = _params(cell, dtype), _inputs(dtype)
    with torch.no_grad():
        expected = cell.run(params, inputs)
        got = fused_run(cell, params, inputs)
    assert got.shape == expected.shape == (N, B, T, cell.state_size(N_HIDDEN))
    assert got.dtype == dtype
    torch.testing.assert_close(got, expected, rtol=0, atol=tol)
    assert expected.abs().max() > 0.1  # the comparison is not between near-zero trajectories


@pytest.mark.parametrize("architecture,activation", CASES)
def test_gradients_equal_autograd_through_cell_run(fused_run, architecture, activation):
    cell = make_cell(architecture, activation)
    params = _params(cell, torch.float64)
    inputs = _inputs(torch.float64)
    states_ref, grads_ref = _weighted_grads(_autograd_run, cell, params, inputs)
    states, grads = _weighted_grads(fused_run, cell, params, inputs)
    torch.testing.assert_close(states, states_ref, rtol=0, atol=1e-10)
    assert len(grads) == len(cell.param_names()) - 2
    for got, expected in zip(grads, grads_ref):
        assert expected.abs().max() > 1e-3
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-8)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_gradients_to_inputs_and_initial_state(fused_run, architecture):
    cell = make_cell(architecture, "tanh")
    params = _params(cell, torch.float64, seed=3)
    inputs = _inputs(torch.float64).requires_grad_()
    state0 = _inputs(torch.float64, (N, B, cell.state_size(N_HIDDEN)), seed=5).requires_grad_()
    states_ref, grads_ref = _weighted_grads(_autograd_run, cell, params, inputs, state0)
    states, grads = _weighted_grads(fused_run, cell, params, inputs, state0)
    torch.testing.assert_close(states, states_ref, rtol=0, atol=1e-10)
    for got, expected in zip(grads, grads_ref):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-8)


@pytest.mark.parametrize("architecture", ["gru", "lstm"])
def test_shared_inputs_and_unstacked_params(fused_run, architecture):
    """A ``[B, T, m]`` input is shared by all networks; unstacked params need no network axis."""
    cell = make_cell(architecture, "tanh")
    params = _params(cell, torch.float64)
    shared = _inputs(torch.float64, (B, T, M))
    with torch.no_grad():
        torch.testing.assert_close(
            fused_run(cell, params, shared), cell.run(params, shared), rtol=0, atol=1e-10
        )
        one = {k: v[1] for k, v in params.items()}
        got = fused_run(cell, one, shared)
        assert got.shape == (B, T, cell.state_size(N_HIDDEN))
        torch.testing.assert_close(got, cell.run(one, shared), rtol=0, atol=1e-10)
    _, grads_ref = _weighted_grads(_autograd_run, cell, params, shared)
    _, grads = _weighted_grads(fused_run, cell, params, shared)
    for got, expected in zip(grads, grads_ref):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-8)


def test_no_grad_run_keeps_one_step_of_activations(fused_run):
    """Without gradients the states are the same (the activations are held for one step only)."""
    cell = make_cell("lstm", "relu")
    params = _params(cell, torch.float64)
    inputs = _inputs(torch.float64)
    with torch.no_grad():
        cheap = fused_run(cell, params, inputs)
    full = fused_run(cell, params, inputs)
    assert full.requires_grad and not cheap.requires_grad
    torch.testing.assert_close(cheap, full.detach(), rtol=0, atol=0)


def test_gradcheck_gru(fused_run):
    cell = make_cell("gru", "tanh")
    gen = torch.Generator().manual_seed(0)
    n, m, n_net, batch, steps = 3, 2, 2, 2, 4

    def rand(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64, requires_grad=True)

    w_in, w_rec, bias, bias_rec = rand(n_net, m, 3 * n), rand(n_net, n, 3 * n), rand(n_net, 3 * n), rand(n_net, n)
    inputs, state0 = rand(n_net, batch, steps, m), rand(n_net, batch, n)

    def states(w_in, w_rec, bias, bias_rec, inputs, state0):
        params = {"w_in": w_in, "w_rec": w_rec, "bias": bias, "bias_rec": bias_rec}
        return fused_run(cell, params, inputs, state0)

    assert torch.autograd.gradcheck(states, (w_in, w_rec, bias, bias_rec, inputs, state0))


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_native_float32_matches_torch_path_at_training_size(architecture):
    """At a training-like size the float32 kernels (rational tanh) agree with torch's kernels."""
    cell = make_cell(architecture, "tanh")
    params = cell.init_params(M, 32, P, seeds=[0, 1])
    params = {k: v.requires_grad_() for k, v in params.items()}
    inputs = 2 * _inputs(torch.float32, (2, 16, 40, M))
    grads = {}
    for backend in ("native", "torch"):
        states = fused.run(cell, params, inputs, backend=backend)
        grads[backend] = [states] + list(torch.autograd.grad(states.pow(2).sum(), [params["w_rec"], params["w_in"]]))
    for got, expected in zip(grads["native"], grads["torch"]):
        scale = expected.detach().abs().max()
        assert scale > 0.1
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-5 * float(scale))


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_native_kernels_propagate_nan(architecture):
    """A diverged network (NaN weights) stays NaN, so training records it as diverged."""
    cell = make_cell(architecture, "tanh")
    params = cell.init_params(M, N_HIDDEN, P, seeds=[0, 1])
    params["w_rec"][1, 0, 0] = float("nan")
    with torch.no_grad():
        states = fused.run(cell, params, _inputs(torch.float32, (2, B, T, M)), backend="native")
    assert torch.isfinite(states[0]).all()
    assert torch.isnan(states[1, :, -1]).any()


def test_native_kernels_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("RNNUNIV_NATIVE", "0")
    assert native.load.__wrapped__() is None
    with pytest.raises(ValueError, match="backend"):
        fused.run(make_cell("gru", "tanh"), {}, torch.zeros(1, 1, 1), backend="fast")


def test_stale_build_lock_is_removed_fresh_one_kept(tmp_path):
    """A lock left by a killed build would make torch wait for ever; a live build's lock stays."""
    import os
    import types

    fake = types.SimpleNamespace(_get_build_directory=lambda name, verbose: str(tmp_path / name))
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    stale, live = tmp_path / "old" / "lock", tmp_path / "new" / "lock"
    stale.touch()
    live.touch()
    an_hour_ago = stale.stat().st_mtime - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))
    native._clear_stale_lock(fake, "old")
    native._clear_stale_lock(fake, "new")
    native._clear_stale_lock(fake, "absent")
    assert not stale.exists() and live.exists()
