"""The fused recurrence equals autograd through ``Cell.run``: states and every gradient."""

import pytest
import torch

from rnnuniv import fused
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


@pytest.mark.parametrize("architecture,activation", CASES)
@pytest.mark.parametrize("dtype,tol", [(torch.float32, 1e-6), (torch.float64, 1e-10)])
def test_forward_equals_cell_run(architecture, activation, dtype, tol):
    cell = make_cell(architecture, activation)
    params, inputs = _params(cell, dtype), _inputs(dtype)
    with torch.no_grad():
        expected = cell.run(params, inputs)
        got = fused.run(cell, params, inputs)
    assert got.shape == expected.shape == (N, B, T, cell.state_size(N_HIDDEN))
    assert got.dtype == dtype
    torch.testing.assert_close(got, expected, rtol=0, atol=tol)
    assert expected.abs().max() > 0.1  # the comparison is not between near-zero trajectories


@pytest.mark.parametrize("architecture,activation", CASES)
def test_gradients_equal_autograd_through_cell_run(architecture, activation):
    cell = make_cell(architecture, activation)
    params = _params(cell, torch.float64)
    inputs = _inputs(torch.float64)
    states_ref, grads_ref = _weighted_grads(_autograd_run, cell, params, inputs)
    states, grads = _weighted_grads(fused.run, cell, params, inputs)
    torch.testing.assert_close(states, states_ref, rtol=0, atol=1e-10)
    assert len(grads) == len(cell.param_names()) - 2
    for got, expected in zip(grads, grads_ref):
        assert expected.abs().max() > 1e-3
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-8)


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_gradients_to_inputs_and_initial_state(architecture):
    cell = make_cell(architecture, "tanh")
    params = _params(cell, torch.float64, seed=3)
    inputs = _inputs(torch.float64).requires_grad_()
    state0 = _inputs(torch.float64, (N, B, cell.state_size(N_HIDDEN)), seed=5).requires_grad_()
    states_ref, grads_ref = _weighted_grads(_autograd_run, cell, params, inputs, state0)
    states, grads = _weighted_grads(fused.run, cell, params, inputs, state0)
    torch.testing.assert_close(states, states_ref, rtol=0, atol=1e-10)
    for got, expected in zip(grads, grads_ref):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-8)


@pytest.mark.parametrize("architecture", ["gru", "lstm"])
def test_shared_inputs_and_unstacked_params(architecture):
    """A ``[B, T, m]`` input is shared by all networks; unstacked params need no network axis."""
    cell = make_cell(architecture, "tanh")
    params = _params(cell, torch.float64)
    shared = _inputs(torch.float64, (B, T, M))
    with torch.no_grad():
        torch.testing.assert_close(
            fused.run(cell, params, shared), cell.run(params, shared), rtol=0, atol=1e-10
        )
        one = {k: v[1] for k, v in params.items()}
        got = fused.run(cell, one, shared)
        assert got.shape == (B, T, cell.state_size(N_HIDDEN))
        torch.testing.assert_close(got, cell.run(one, shared), rtol=0, atol=1e-10)
    _, grads_ref = _weighted_grads(_autograd_run, cell, params, shared)
    _, grads = _weighted_grads(fused.run, cell, params, shared)
    for got, expected in zip(grads, grads_ref):
        torch.testing.assert_close(got, expected, rtol=0, atol=1e-8)


def test_no_grad_run_keeps_one_step_of_activations():
    """Without gradients the states are the same (the activations are held for one step only)."""
    cell = make_cell("lstm", "relu")
    params = _params(cell, torch.float64)
    inputs = _inputs(torch.float64)
    with torch.no_grad():
        cheap = fused.run(cell, params, inputs)
    full = fused.run(cell, params, inputs)
    assert full.requires_grad and not cheap.requires_grad
    torch.testing.assert_close(cheap, full.detach(), rtol=0, atol=0)


def test_gradcheck_gru():
    cell = make_cell("gru", "tanh")
    gen = torch.Generator().manual_seed(0)
    n, m, n_net, batch, steps = 3, 2, 2, 2, 4

    def rand(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64, requires_grad=True)

    w_in, w_rec, bias, bias_rec = rand(n_net, m, 3 * n), rand(n_net, n, 3 * n), rand(n_net, 3 * n), rand(n_net, n)
    inputs, state0 = rand(n_net, batch, steps, m), rand(n_net, batch, n)

    def states(w_in, w_rec, bias, bias_rec, inputs, state0):
        params = {"w_in": w_in, "w_rec": w_rec, "bias": bias, "bias_rec": bias_rec}
        return fused.run(cell, params, inputs, state0)

    assert torch.autograd.gradcheck(states, (w_in, w_rec, bias, bias_rec, inputs, state0))
