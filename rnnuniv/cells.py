"""Recurrent cells as pure one-step maps, batched over a leading network axis.

Every analysis (training, fixed points, Jacobians, topology, Lyapunov spectra) goes through one
contract, ``cell.step(params, state, x) -> next_state``, written once per architecture here.

Conventions
-----------
Row vectors: pre-activations are ``x @ w_in + h @ w_rec + bias``. Gate blocks are concatenated along
the last axis, ``G`` blocks of ``n`` units each. Parameters (a ``dict[str, Tensor]``):

=============  ===================  ==========================================================
key            shape                meaning
=============  ===================  ==========================================================
``w_in``       [(N,) m, G n]        input weights
``w_rec``      [(N,) n, G n]        recurrent weights
``bias``       [(N,) G n]           bias of every block (GRU: input-side bias plus r, z recurrent bias)
``bias_rec``   [(N,) n]             GRU only: recurrent bias of the candidate, inside the reset gate
``w_out``      [(N,) n, p]          linear readout ``y = h @ w_out + b_out``
``b_out``      [(N,) p]             readout bias
=============  ===================  ==========================================================

With unbatched parameters the state is ``[K, S]``; with parameters stacked on a leading network axis
``N`` the state is ``[N, K, S]``. Inputs are ``[(N,) K, m]``, or ``[K, m]`` / ``[m]`` shared by all.
The state size ``S`` is ``n`` except for the LSTM, whose state is ``concat[h, c]`` (``S = 2 n``).

Architectures (``phi`` is the activation, tanh or ReLU, and replaces only the non-gate nonlinearity):

- vanilla: ``h' = phi(W x + U h + b)``
- UGRNN (Collins et al. 2017): ``g = sigmoid(W_g x + U_g h + b_g)``, ``c = phi(W_c x + U_c h + b_c)``,
  ``h' = g * h + (1 - g) * c``
- GRU (as ``torch.nn.GRU``): ``r = sigmoid(W_r x + U_r h + b_r)``, ``z = sigmoid(W_z x + U_z h + b_z)``,
  ``c = phi(W_c x + b_c + r * (U_c h + b_hc))``, ``h' = (1 - z) * c + z * h``
- LSTM (as ``torch.nn.LSTM``, forget-gate bias 1 at initialisation): gates ``i, f, o = sigmoid(.)``,
  ``g = phi(.)``, ``c' = f * c + i * g``, ``h' = o * phi(c')``
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

Params = dict[str, torch.Tensor]

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "tanh": torch.tanh,
    "relu": torch.relu,
}


@dataclass(frozen=True)
class Cell:
    """One architecture with one activation; stateless, all weights live in ``params``."""

    architecture: str
    activation: str

    @property
    def n_blocks(self) -> int:
        return N_BLOCKS[self.architecture]

    @property
    def phi(self) -> Callable[[torch.Tensor], torch.Tensor]:
        return ACTIVATIONS[self.activation]

    def state_size(self, n_hidden: int) -> int:
        return 2 * n_hidden if self.architecture == "lstm" else n_hidden

    def hidden(self, state: torch.Tensor, n_hidden: int) -> torch.Tensor:
        """The part of the state the readout sees (LSTM: ``h`` of ``[h, c]``)."""
        return state[..., :n_hidden]

    # -- the one-step map -------------------------------------------------------------------
    def input_drive(self, params: Params, x: torch.Tensor) -> torch.Tensor:
        """``x @ w_in + bias``: the input-side pre-activation, ``[..., G n]``.

        Precomputing it for a whole sequence at once turns T small matmuls into one large one.
        """
        if x.dim() == 1:
            x = x.unsqueeze(0)
        return torch.matmul(x, params["w_in"]) + params["bias"].unsqueeze(-2)

    def recur(self, params: Params, state: torch.Tensor, drive: torch.Tensor) -> torch.Tensor:
        """Next state from the current state and the precomputed input drive."""
        n = params["w_rec"].shape[-2]
        phi = self.phi
        h = state[..., :n]
        rec = torch.matmul(h, params["w_rec"])
        arch = self.architecture
        if arch == "vanilla":
            return phi(drive + rec)
        if arch == "ugrnn":
            pre = drive + rec
            g = torch.sigmoid(pre[..., :n])
            c = phi(pre[..., n:])
            return g * h + (1.0 - g) * c
        if arch == "gru":
            rz = torch.sigmoid(drive[..., : 2 * n] + rec[..., : 2 * n])
            r, z = rz[..., :n], rz[..., n:]
            c = phi(drive[..., 2 * n :] + r * (rec[..., 2 * n :] + params["bias_rec"].unsqueeze(-2)))
            return (1.0 - z) * c + z * h
        if arch == "lstm":
            pre = drive + rec
            i = torch.sigmoid(pre[..., :n])
            f = torch.sigmoid(pre[..., n : 2 * n])
            g = phi(pre[..., 2 * n : 3 * n])
            o = torch.sigmoid(pre[..., 3 * n :])
            c = f * state[..., n:] + i * g
            return torch.cat([o * phi(c), c], dim=-1)
        raise AssertionError(arch)

    def step(self, params: Params, state: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """One step of the dynamics, ``state' = F(state, x)``."""
        return self.recur(params, state, self.input_drive(params, x))

    def jacobian(
        self, params: Params, state: torch.Tensor, x: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Analytic Jacobians of :meth:`step`: ``dF/dstate [..., S, S]`` and ``dF/dx [..., S, m]``.

        ``J[i, j] = dF_i / dstate_j``. With ``p = x W + h U + b`` (row vectors), ``dp/dh = U^T`` and
        ``dp/dx = W^T``; per block ``a`` write ``U_a^T`` for its ``n`` rows of ``U^T``, ``s' = s (1 - s)``
        for a sigmoid output ``s``, ``phi'`` at the pre-activation, and ``v . M`` for ``diag(v) M``:

        - vanilla: ``J = phi'(p) . U^T``
        - UGRNN: ``J = diag(g) + (h - c) g' . U_g^T + (1 - g) phi'(p_c) . U_c^T``
        - GRU: ``J = diag(z) + (h - c) z' . U_z^T + (1 - z) phi'(p_c) . (q r' . U_r^T + r . U_c^T)``
          with ``q = h U_c + b_hc`` (the input Jacobian drops ``r .`` from the candidate term)
        - LSTM, state ``[h, c]``: ``dc'/dh = c f' . U_f^T + g i' . U_i^T + i phi'(p_g) . U_g^T``,
          ``dc'/dc = diag(f)``, ``dh'/dh = phi(c') o' . U_o^T + o phi'(c') . dc'/dh``,
          ``dh'/dc = diag(o phi'(c') f)``.

        One batched elementwise scaling of ``U^T`` per block: ``O(K S^2)`` per call, where reverse-
        mode autodiff needs ``S`` backward passes (``O(K S^2 G n)``). States ``[(N,) K, S]``.
        """
        n = params["w_rec"].shape[-2]
        stacked = params["w_rec"].dim() == 3
        u_t = params["w_rec"].transpose(-1, -2)  # [(N,) G n, n]
        w_t = params["w_in"].transpose(-1, -2)  # [(N,) G n, m]
        if stacked:  # broadcast over the K states of each network
            u_t, w_t = u_t.unsqueeze(-3), w_t.unsqueeze(-3)
        x = x.expand(*state.shape[:-1], x.shape[-1]) if x.dim() == 1 else x
        drive = self.input_drive(params, x)
        h = state[..., :n]
        rec = torch.matmul(h, params["w_rec"])

        def block(matrix, a):  # U_a^T or W_a^T
            return matrix[..., a * n : (a + 1) * n, :]

        def col(v):  # v . M = v[:, None] * M
            return v.unsqueeze(-1)

        def phi_prime(pre):
            if self.activation == "tanh":
                return 1.0 - torch.tanh(pre).pow(2)
            return (pre > 0).to(pre.dtype)

        arch = self.architecture
        if arch == "vanilla":
            d = col(phi_prime(drive + rec))
            return d * u_t, d * w_t
        if arch == "ugrnn":
            pre = drive + rec
            g = torch.sigmoid(pre[..., :n])
            c = self.phi(pre[..., n:])
            d_gate, d_cand = col((h - c) * g * (1 - g)), col((1 - g) * phi_prime(pre[..., n:]))
            jac = (d_gate * block(u_t, 0)).addcmul_(d_cand, block(u_t, 1))  # in place: one [K, S, S] temporary
            jac.diagonal(dim1=-2, dim2=-1).add_(g)
            return jac, d_gate * block(w_t, 0) + d_cand * block(w_t, 1)
        if arch == "gru":
            rz = torch.sigmoid(drive[..., : 2 * n] + rec[..., : 2 * n])
            r, z = rz[..., :n], rz[..., n:]
            q = rec[..., 2 * n :] + params["bias_rec"].unsqueeze(-2)
            pre_c = drive[..., 2 * n :] + r * q
            c = self.phi(pre_c)
            d_update = col((h - c) * z * (1 - z))
            d_cand = col((1 - z) * phi_prime(pre_c))
            d_reset = d_cand * col(q * r * (1 - r))
            jac = (d_update * block(u_t, 1)).addcmul_(d_reset, block(u_t, 0)).addcmul_(d_cand * col(r), block(u_t, 2))
            jac.diagonal(dim1=-2, dim2=-1).add_(z)
            jac_x = d_update * block(w_t, 1) + d_reset * block(w_t, 0) + d_cand * block(w_t, 2)
            return jac, jac_x
        if arch == "lstm":
            pre = drive + rec
            i, f = torch.sigmoid(pre[..., :n]), torch.sigmoid(pre[..., n : 2 * n])
            g, o = self.phi(pre[..., 2 * n : 3 * n]), torch.sigmoid(pre[..., 3 * n :])
            c_prev = state[..., n:]
            c = f * c_prev + i * g
            phi_c = self.phi(c)
            d_i, d_f = col(g * i * (1 - i)), col(c_prev * f * (1 - f))
            d_g, d_o = col(i * phi_prime(pre[..., 2 * n : 3 * n])), col(phi_c * o * (1 - o))
            through_c = col(o * phi_prime(c))

            def dc_and_dh(matrix):  # d c' and d h' through the pre-activations
                dc = (d_i * block(matrix, 0)).addcmul_(d_f, block(matrix, 1)).addcmul_(d_g, block(matrix, 2))
                return dc, (d_o * block(matrix, 3)).addcmul_(through_c, dc)

            jac = state.new_empty(*state.shape, state.shape[-1])  # blocks [[dh/dh, dh/dc], [dc/dh, dc/dc]]
            jac[..., n:].zero_()  # the diagonal right-hand blocks; the left ones are overwritten
            jac_x = state.new_empty(*state.shape, x.shape[-1])
            dc_dh, dh_dh = dc_and_dh(u_t)
            jac[..., :n, :n], jac[..., n:, :n] = dh_dh, dc_dh
            jac[..., :n, n:].diagonal(dim1=-2, dim2=-1).copy_(through_c.squeeze(-1) * f)
            jac[..., n:, n:].diagonal(dim1=-2, dim2=-1).copy_(f)
            jac_x[..., n:, :], jac_x[..., :n, :] = dc_and_dh(w_t)
            return jac, jac_x
        raise NotImplementedError(f"no analytic Jacobian for {arch!r}: differentiate step instead")

    # -- whole trajectories -----------------------------------------------------------------
    def run(
        self, params: Params, inputs: torch.Tensor, state0: torch.Tensor | None = None
    ) -> torch.Tensor:
        """All states of a trajectory.

        inputs: ``[(N,) B, T, m]`` batch-major (a ``[B, T, m]`` input is shared by all N networks).
        Returns states ``[(N,) B, T, S]`` after each step; ``state0`` defaults to zeros.
        """
        drive = self.input_drive(params, inputs.flatten(-3, -2))  # [(N,) B*T, G n]
        batch, n_steps = inputs.shape[-3], inputs.shape[-2]
        drive = drive.unflatten(-2, (batch, n_steps))
        n = params["w_rec"].shape[-2]
        if state0 is None:
            lead = drive.shape[:-2]
            state0 = drive.new_zeros(*lead, self.state_size(n))
        states = []
        state = state0
        # unbind once: indexing drive[..., t, :] per step makes autograd build a full-size zero
        # gradient for every step, so the backward pass grows with T^2.
        for drive_t in drive.unbind(-2):
            state = self.recur(params, state, drive_t)
            states.append(state)
        return torch.stack(states, dim=-2)

    @staticmethod
    def readout(params: Params, hidden: torch.Tensor) -> torch.Tensor:
        """``y = h @ w_out + b_out`` for hidden ``[(N,) ..., n]``; returns ``[(N,) ..., p]``."""
        w_out, b_out = params["w_out"], params["b_out"]
        if w_out.dim() == 2:
            return hidden @ w_out + b_out
        shape = hidden.shape
        flat = hidden.reshape(shape[0], -1, shape[-1])  # [N, *, n]
        y = torch.bmm(flat, w_out) + b_out.unsqueeze(1)
        return y.reshape(*shape[:-1], w_out.shape[-1])

    # -- initialisation ---------------------------------------------------------------------
    def init_params(
        self,
        n_inputs: int,
        n_hidden: int,
        n_outputs: int,
        seeds: list[int],
        dtype: torch.dtype = torch.float32,
        scheme: str = "glorot",
    ) -> Params:
        """Independent initial weights for each seed, stacked on a leading network axis.

        Each network draws from its own generator, so its weights depend on its seed only, never on
        which shard it lands in. Biases are zero, the LSTM forget-gate bias 1, the readout Gaussian
        with variance ``1/n``. Input and recurrent weights are Gaussian with variance (``INIT_SCHEMES``)

        - ``glorot``: ``2 / (m + n + G n)`` for both, the Glorot variance of the stacked gate kernel
          ``[W; U]`` of shape ``(m + n) x G n`` (the default of TensorFlow's RNN cells);
        - ``fan_in``: ``1 / m`` for ``W`` and ``1 / n`` for ``U`` (recurrent spectral radius about 1).
        """
        if scheme not in INIT_SCHEMES:
            raise ValueError(f"unknown initialisation {scheme!r}; valid: {', '.join(INIT_SCHEMES)}")
        per_network = [
            _init_one(self.architecture, n_inputs, n_hidden, n_outputs, seed, scheme) for seed in seeds
        ]
        return {k: torch.stack([p[k] for p in per_network]).to(dtype) for k in per_network[0]}

    def param_names(self) -> list[str]:
        names = ["w_in", "w_rec", "bias", "w_out", "b_out"]
        return names + ["bias_rec"] if self.architecture == "gru" else names


N_BLOCKS = {"vanilla": 1, "ugrnn": 2, "gru": 3, "lstm": 4}
ARCHITECTURES = tuple(N_BLOCKS)
# Architectures with a closed-form Cell.jacobian (others fall back to autodiff of Cell.step).
ANALYTIC_JACOBIANS = ("vanilla", "ugrnn", "gru", "lstm")


INIT_SCHEMES = ("glorot", "fan_in")


def _init_one(architecture: str, m: int, n: int, p: int, seed: int, scheme: str = "glorot") -> Params:
    gen = torch.Generator().manual_seed(int(seed))
    g = N_BLOCKS[architecture]
    if scheme == "glorot":
        in_std = rec_std = math.sqrt(2.0 / (m + n + g * n))
    else:
        in_std, rec_std = 1.0 / math.sqrt(m), 1.0 / math.sqrt(n)
    params = {
        "w_in": torch.randn(m, g * n, generator=gen, dtype=torch.float64) * in_std,
        "w_rec": torch.randn(n, g * n, generator=gen, dtype=torch.float64) * rec_std,
        "bias": torch.zeros(g * n, dtype=torch.float64),
        "w_out": torch.randn(n, p, generator=gen, dtype=torch.float64) / math.sqrt(n),
        "b_out": torch.zeros(p, dtype=torch.float64),
    }
    if architecture == "lstm":
        params["bias"][n : 2 * n] = 1.0
    if architecture == "gru":
        params["bias_rec"] = torch.zeros(n, dtype=torch.float64)
    return params


def make_cell(architecture: str, activation: str) -> Cell:
    """The cell for an architecture name (vanilla, ugrnn, gru, lstm) and activation (tanh, relu)."""
    if architecture not in N_BLOCKS:
        raise ValueError(f"unknown architecture {architecture!r}; valid: {', '.join(N_BLOCKS)}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; valid: {', '.join(ACTIVATIONS)}")
    return Cell(architecture, activation)


def select(params: Params, index: int | slice | torch.Tensor) -> Params:
    """The parameters of some networks of a stacked population."""
    return {k: v[index] for k, v in params.items()}


def step_function(cell: Cell, params: Params) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """``step(h, x)`` with the weights bound: the form the fixed-point finder and dynamics take."""

    def step(state: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return cell.step(params, state, x)

    return step
