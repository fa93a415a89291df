"""The batched cells equal torch's reference modules (and a per-network loop for the UGRNN)."""

import pytest
import torch

from rnnuniv.cells import make_cell, select

N, B, T, M, H = 3, 5, 7, 4, 6


def _params_from_torch(module: torch.nn.RNNBase) -> dict[str, torch.Tensor]:
    """Our row-vector parameters from a one-layer torch RNN/GRU/LSTM."""
    w_ih, w_hh = module.weight_ih_l0.detach(), module.weight_hh_l0.detach()
    b_ih, b_hh = module.bias_ih_l0.detach(), module.bias_hh_l0.detach()
    params = {"w_in": w_ih.T.clone(), "w_rec": w_hh.T.clone(), "bias": b_ih + b_hh}
    if isinstance(module, torch.nn.GRU):
        n = module.hidden_size
        params["bias"] = torch.cat([b_ih[: 2 * n] + b_hh[: 2 * n], b_ih[2 * n :]])
        params["bias_rec"] = b_hh[2 * n :].clone()
    return params


def _reference(architecture: str, activation: str) -> torch.nn.RNNBase:
    if architecture == "vanilla":
        return torch.nn.RNN(M, H, nonlinearity=activation, batch_first=True, dtype=torch.float64)
    cls = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[architecture]
    return cls(M, H, batch_first=True, dtype=torch.float64)


def _stacked_references(architecture, activation):
    torch.manual_seed(0)
    modules = [_reference(architecture, activation) for _ in range(N)]
    per_net = [_params_from_torch(m) for m in modules]
    params = {k: torch.stack([p[k] for p in per_net]).requires_grad_() for k in per_net[0]}
    return modules, params


@pytest.mark.parametrize(
    "architecture,activation",
    [("vanilla", "tanh"), ("vanilla", "relu"), ("gru", "tanh"), ("lstm", "tanh")],
)
def test_batched_cell_matches_torch_forward_and_gradients(architecture, activation):
    modules, params = _stacked_references(architecture, activation)
    cell = make_cell(architecture, activation)
    x = torch.randn(N, B, T, M, dtype=torch.float64)

    states = cell.run(params, x)  # [N, B, T, S]
    hidden = cell.hidden(states, H)
    reference = torch.stack([m(x[i])[0] for i, m in enumerate(modules)])
    torch.testing.assert_close(hidden, reference, atol=1e-6, rtol=0)

    weights = torch.randn_like(hidden)
    (hidden * weights).sum().backward()
    (reference * weights).sum().backward()
    for i, module in enumerate(modules):
        torch.testing.assert_close(
            params["w_rec"].grad[i], module.weight_hh_l0.grad.T, atol=1e-6, rtol=0
        )
        torch.testing.assert_close(
            params["w_in"].grad[i], module.weight_ih_l0.grad.T, atol=1e-6, rtol=0
        )


def test_lstm_cell_state_is_second_half():
    modules, params = _stacked_references("lstm", "tanh")
    cell = make_cell("lstm", "tanh")
    x = torch.randn(N, B, T, M, dtype=torch.float64)
    final = cell.run(params, x)[:, :, -1]
    for i, module in enumerate(modules):
        _, (h_n, c_n) = module(x[i])
        torch.testing.assert_close(final[i, :, H:], c_n[0], atol=1e-6, rtol=0)
        torch.testing.assert_close(final[i, :, :H], h_n[0], atol=1e-6, rtol=0)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_ugrnn_matches_per_network_loop(activation):
    cell = make_cell("ugrnn", activation)
    params = cell.init_params(M, H, 2, seeds=[1, 2, 3], dtype=torch.float64)
    params["bias"] = torch.randn_like(params["bias"])
    phi = torch.tanh if activation == "tanh" else torch.relu
    x = torch.randn(N, B, T, M, dtype=torch.float64)
    states = cell.run(params, x)
    for i in range(N):
        w_in, w_rec, b = params["w_in"][i], params["w_rec"][i], params["bias"][i]
        h = torch.zeros(B, H, dtype=torch.float64)
        for t in range(T):
            pre = x[i, :, t] @ w_in + h @ w_rec + b
            g, c = torch.sigmoid(pre[:, :H]), phi(pre[:, H:])
            h = g * h + (1 - g) * c
            torch.testing.assert_close(states[i, :, t], h, atol=1e-6, rtol=0)


@pytest.mark.parametrize("architecture", ["vanilla", "ugrnn", "gru", "lstm"])
def test_step_batched_equals_unbatched_and_shared_inputs(architecture):
    cell = make_cell(architecture, "tanh")
    params = cell.init_params(M, H, 2, seeds=[4, 5, 6], dtype=torch.float64)
    state = torch.randn(N, B, cell.state_size(H), dtype=torch.float64)
    x = torch.randn(M, dtype=torch.float64)
    batched = cell.step(params, state, x)
    for i in range(N):
        single = cell.step(select(params, i), state[i], x)
        torch.testing.assert_close(batched[i], single, atol=1e-12, rtol=0)
        torch.testing.assert_close(
            cell.step(select(params, i), state[i], x.expand(B, M)), single, atol=1e-12, rtol=0
        )


def test_init_depends_on_seed_only():
    cell = make_cell("gru", "tanh")
    a = cell.init_params(3, 8, 2, seeds=[11, 12])
    b = cell.init_params(3, 8, 2, seeds=[12])
    assert torch.equal(a["w_rec"][1], b["w_rec"][0])
    assert not torch.equal(a["w_rec"][0], a["w_rec"][1])


def test_unknown_architecture_is_named():
    with pytest.raises(ValueError, match="'elman'"):
        make_cell("elman", "tanh")
    with pytest.raises(ValueError, match="'sigmoid'"):
        make_cell("gru", "sigmoid")


@pytest.mark.parametrize("architecture", ["vanilla", "ugrnn", "gru", "lstm"])
@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_analytic_jacobians_equal_autodiff(architecture, activation):
    """``Cell.jacobian`` equals reverse-mode autodiff of ``Cell.step``, stacked and unstacked."""
    cell = make_cell(architecture, activation)
    params = cell.init_params(3, 5, 2, seeds=[0, 1], dtype=torch.float64)
    gen = torch.Generator().manual_seed(4)
    for key in ("bias", "bias_rec"):  # nonzero biases, so bias bugs show
        if key in params:
            params[key] = 0.3 * torch.randn(params[key].shape, generator=gen, dtype=torch.float64)
    state = torch.randn(2, 7, cell.state_size(5), generator=gen, dtype=torch.float64)
    x = torch.randn(2, 7, 3, generator=gen, dtype=torch.float64)

    def summed(s, u):  # rows are independent: d/ds_k of the sum is row k's Jacobian
        return cell.step(params, s, u).sum((0, 1))

    expected_h, expected_x = torch.func.jacrev(summed, argnums=(0, 1))(state, x)
    jac, jac_x = cell.jacobian(params, state, x)
    torch.testing.assert_close(jac, expected_h.permute(1, 2, 0, 3), rtol=0, atol=1e-12)
    torch.testing.assert_close(jac_x, expected_x.permute(1, 2, 0, 3), rtol=0, atol=1e-12)
    assert jac.abs().max() > 0.1
    one, one_x = cell.jacobian(select(params, 1), state[1], x[1])
    torch.testing.assert_close(one, jac[1], rtol=0, atol=1e-14)
    torch.testing.assert_close(one_x, jac_x[1], rtol=0, atol=1e-14)
