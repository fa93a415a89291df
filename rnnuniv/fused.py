"""Whole-trajectory recurrences with a hand-written backward pass through time.

:func:`run` has the semantics of :meth:`rnnuniv.cells.Cell.run` (equal up to float rounding) but
builds one autograd node for the whole sequence instead of about ten per time step. At the sizes of
this study (n = 16..256, B = 64) autograd bookkeeping, not arithmetic, dominated ``Cell.run``.

Layout. Everything inside is time-major per network, ``[N, T, B, .]``: the slice of one step,
``[:, t]``, is one contiguous ``[B, .]`` block per network (what ``bmm`` and the elementwise kernels
want), and ``[N, T, B, .]`` flattens to ``[N, T*B, .]`` without a copy, so each weight gradient is one
``bmm`` over all steps after the loop.

Forward, per step (``W = w_in``, ``U = w_rec``, ``h`` the hidden part of the previous state): one
``bmm``, ``p = h @ U``, into a reused buffer that stays in cache, then one pass over the elementwise
part: the input drive ``a = x_t @ W + bias``, the gates and the new state, written with the
activations backward needs into preallocated buffers. Precomputing the drive for all steps at once
writes and rereads a ``[N, T, B, G n]`` tensor, which costs more.

Two implementations of that pass, chosen per call by :func:`run`'s ``backend``:

- ``native``: one compiled kernel per step (``rnnuniv/csrc/pointwise.cpp``, built by
  :mod:`rnnuniv.native`), for float32/float64 on the CPU. At the sizes of this study the elementwise
  work, not the matmul, dominated: torch's separate kernels each stream their operands through
  memory, and its float tanh and sigmoid are several times slower than a vectorised rational tanh.
- ``torch``: the same formulas as a dozen torch kernels per step, for GPUs, other dtypes and machines
  without a C++ compiler.

Backward, per step in reverse (``dh`` = gradient reaching ``h_t`` from the outputs and from step
``t+1``; ``s'(u) = u (1 - u)`` for a sigmoid output ``u``; ``phi'`` from ``phi``'s output: ``1 - y^2``
for tanh, ``[y > 0]`` for ReLU). ``dp`` is the gradient of the recurrent pre-activation (what
multiplies ``h @ U``), ``da`` that of the input drive; they are equal except in the GRU candidate:

- vanilla ``h' = phi(p)``: ``dp = dh * phi'(h')``; ``dh_prev = dp @ U^T``.
- UGRNN ``g = sig(p_g)``, ``c = phi(p_c)``, ``h' = c + g (h - c)``:
  ``dp_g = dh (h - c) s'(g)``, ``dp_c = dh (1 - g) phi'(c)``; ``dh_prev = dh g + dp @ U^T``.
- GRU ``r, z = sig(a_r + h U_r), sig(a_z + h U_z)``, ``q = h U_c + b_hc``, ``c = phi(a_c + r q)``,
  ``h' = c + z (h - c)``: ``da_c = dh (1 - z) phi'(c)``, ``dp_c = da_c r`` (``d b_hc = sum dp_c``),
  ``dp_r = da_c q s'(r)``, ``dp_z = dh (h - c) s'(z)``; ``dh_prev = dh z + dp @ U^T``.
- LSTM ``i, f, o = sig(.)``, ``g = phi(.)``, ``c' = f c + i g``, ``h' = o phi(c')``, state ``[h, c]``:
  ``dc_tot = dc + dh o phi'(c')``, ``dp_i = dc_tot g s'(i)``, ``dp_f = dc_tot c s'(f)``,
  ``dp_g = dc_tot i phi'(g)``, ``dp_o = dh phi(c') s'(o)``; ``dh_prev = dp @ U^T``,
  ``dc_prev = dc_tot f``.

Each backward step is one elementwise pass (``dp``, and the carry ``grad_h[t-1] + direct`` written
straight into the buffer of ``dh_prev``) and one in-place ``baddbmm`` adding ``dp @ U^T`` to it.

After the loop, stacking the steps (``X`` inputs, ``H_prev`` the hidden states ``h_{t-1}``, ``dP``
and ``dA`` the per-step ``dp`` and ``da``, all ``[N, T*B, .]``): ``dU = H_prev^T dP``,
``dW = X^T dA``, ``d bias = sum dA``, ``d b_hc = sum dP_c``, ``dx = dA W^T``; one ``bmm`` or sum each.
"""

from __future__ import annotations

from functools import partial

import torch
from torch.autograd.function import once_differentiable

from . import native
from .cells import Cell, Params

BACKENDS = ("auto", "native", "torch")


def run(
    cell: Cell,
    params: Params,
    inputs: torch.Tensor,
    state0: torch.Tensor | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """All states of a trajectory, as :meth:`Cell.run` but with a fused backward through time.

    inputs: ``[N, B, T, m]`` (or ``[B, T, m]`` shared by all N networks); params stacked on a leading
    network axis N (unstacked params are accepted too: then inputs are ``[B, T, m]``, no N axis).
    state0: ``[(N,) B, S]``, zeros by default. Returns states ``[(N,) B, T, S]``; gradients flow to
    ``w_in``, ``w_rec``, ``bias``, ``bias_rec``, the inputs and ``state0``. ``backend``: ``native``
    (compiled kernels; an error where they cannot run), ``torch``, or ``auto`` (native when possible).
    """
    _check_backend(backend)
    stacked = params["w_rec"].dim() == 3
    states = run_time_major(cell, params if stacked else _stack(params), inputs, state0, backend)
    states = states.transpose(1, 2)  # [N, B, T, S]
    return states if stacked else states.squeeze(0)


def run_time_major(
    cell: Cell,
    params: Params,
    inputs: torch.Tensor,
    state0: torch.Tensor | None = None,
    backend: str = "auto",
) -> torch.Tensor:
    """:func:`run` for stacked params, returning the states time-major, ``[N, T, B, S]``, uncopied."""
    _check_backend(backend)
    w_rec = params["w_rec"]
    n_networks, n_hidden = w_rec.shape[0], w_rec.shape[1]
    batch = inputs.shape[-3]
    x = inputs.transpose(-3, -2).contiguous()  # time-major [(N,) T, B, m]
    x = x.expand(n_networks, *x.shape[-3:]) if x.dim() == 3 else x

    size = cell.state_size(n_hidden)
    if state0 is None:
        state0 = x.new_zeros(n_networks, batch, size)
    elif state0.dim() == 2:
        state0 = state0.expand(n_networks, batch, size)
    bias_rec = params["bias_rec"] if cell.architecture == "gru" else None
    tensors = (x, params["w_in"], w_rec, params["bias"], bias_rec, state0)
    keep = torch.is_grad_enabled() and any(t is not None and t.requires_grad for t in tensors)
    kernels = _kernels(backend, x, cell.architecture)
    return _Recurrence.apply(cell.architecture, cell.activation, keep, kernels, *tensors)


def _stack(params: Params) -> Params:
    return {k: v.unsqueeze(0) for k, v in params.items()}


def _check_backend(backend: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")


def choose_backend(backend: str, device: torch.device | str, dtype: torch.dtype, architecture: str) -> str:
    """``"native"`` or ``"torch"``: the path :func:`run` takes for inputs of ``device`` and ``dtype``.

    ``auto`` takes the compiled kernels only where they can run (CPU, float32/float64, an architecture
    they implement; they may still fail to build, then :func:`_kernels` falls back to torch); a GPU
    always gets the torch path. ``native`` where they cannot run is an error naming why.
    """
    _check_backend(backend)
    usable = native.runs_on(device, dtype) and architecture in native.ARCH_CODES
    if backend == "native" and not usable:
        raise RuntimeError(
            f"native kernels requested but unavailable for {architecture} in {dtype} on {device} "
            "(they run on the CPU in float32/float64)"
        )
    return "native" if backend != "torch" and usable else "torch"


def _kernels(backend: str, like: torch.Tensor, architecture: str):
    """The compiled kernels module for ``backend``, or ``None`` for the pure-torch path."""
    if choose_backend(backend, like.device, like.dtype, architecture) == "torch":
        return None
    module = native.load()
    if module is None and backend == "native":
        raise RuntimeError(
            f"native kernels requested but unavailable for {architecture} in {like.dtype} on "
            f"{like.device} (see the log of rnnuniv.native)"
        )
    return module


def _phi_(activation: str, u: torch.Tensor) -> torch.Tensor:
    return u.tanh_() if activation == "tanh" else u.relu_()


def _phi(activation: str, u: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    return torch.tanh(u, out=out) if activation == "tanh" else torch.clamp(u, min=0, out=out)


def _times_phi_prime(activation: str, grad: torch.Tensor, y: torch.Tensor, out: torch.Tensor):
    """``out = grad * phi'`` at the point where ``phi`` returned ``y``."""
    if activation == "tanh":
        gy = grad * y
        torch.addcmul(grad, gy, y, value=-1.0, out=out)  # grad (1 - y^2)
    else:
        torch.where(y > 0, grad, grad.new_zeros(()), out=out)


def _times_sigmoid_prime_(grad: torch.Tensor, s: torch.Tensor) -> None:
    """``grad *= s (1 - s)`` in place, for the sigmoid output ``s``."""
    gs = grad * s
    torch.addcmul(gs, gs, s, value=-1.0, out=grad)


def _torch_forward_step(arch, activation, n, x_t, w_in, bias, bias_rec, pre, prev, out, acts, extra):
    """The forward elementwise pass in torch kernels (``pre = h @ U`` on entry; overwritten)."""
    drive = torch.baddbmm(bias.unsqueeze(1), x_t, w_in)  # a = x_t @ W + bias
    h = prev[..., :n]
    if arch == "vanilla":
        _phi(activation, pre.add_(drive), out=out)
    elif arch == "ugrnn":
        pre.add_(drive)
        gate, cand = acts[..., :n], acts[..., n:]
        torch.sigmoid(pre[..., :n], out=gate)
        _phi(activation, pre[..., n:], out=cand)
        torch.lerp(cand, h, gate, out=out)  # c + g (h - c)
    elif arch == "gru":
        rz, q, cand = acts[..., : 2 * n], acts[..., 2 * n :], extra
        torch.add(pre[..., : 2 * n], drive[..., : 2 * n], out=rz).sigmoid_()
        torch.add(pre[..., 2 * n :], bias_rec.unsqueeze(1), out=q)
        _phi_(activation, torch.addcmul(drive[..., 2 * n :], rz[..., :n], q, out=cand))
        torch.lerp(cand, h, rz[..., n:], out=out)  # c + z (h - c)
    else:  # lstm
        pre.add_(drive)
        i, f, g, o = acts.split(n, dim=-1)
        torch.sigmoid(pre[..., : 2 * n], out=acts[..., : 2 * n])
        _phi(activation, pre[..., 2 * n : 3 * n], out=g)
        torch.sigmoid(pre[..., 3 * n :], out=o)
        c_new = out[..., n:]
        torch.mul(f, prev[..., n:], out=c_new).addcmul_(i, g)
        _phi(activation, c_new, out=extra)
        torch.mul(o, extra, out=out[..., :n])


def _torch_backward_step(arch, activation, n, dh, dc, grad_prev, state, prev, acts, extra, dp, d_cand, carry):
    """The backward elementwise pass in torch kernels: writes ``dp`` (and ``d_cand``), updates the
    LSTM's ``dc`` in place and sets ``carry`` to ``grad_prev[h] + direct`` (module doc)."""
    h_prev = prev[..., :n]
    direct = None  # gradient of h_{t-1} not through U
    if arch == "vanilla":
        _times_phi_prime(activation, dh, state[..., :n], dp)
    elif arch == "ugrnn":
        gate, cand = acts[..., :n], acts[..., n:]
        direct = dh * gate
        torch.mul(dh, h_prev - cand, out=dp[..., :n])
        _times_sigmoid_prime_(dp[..., :n], gate)
        _times_phi_prime(activation, dh - direct, cand, dp[..., n:])
    elif arch == "gru":
        (r, z, q), cand = acts.split(n, dim=-1), extra
        direct = dh * z
        _times_phi_prime(activation, dh - direct, cand, d_cand)
        torch.mul(d_cand, q, out=dp[..., :n])
        torch.mul(dh, h_prev - cand, out=dp[..., n : 2 * n])
        _times_sigmoid_prime_(dp[..., : 2 * n], acts[..., : 2 * n])
        torch.mul(d_cand, r, out=dp[..., 2 * n :])
    else:  # lstm
        (i, f, g, o), phi_c = acts.split(n, dim=-1), extra
        dh_o = dh * o
        torch.mul(dh, phi_c, out=dp[..., 3 * n :])
        if activation == "tanh":
            dc.add_(dh_o).addcmul_(dh_o * phi_c, phi_c, value=-1.0)
        else:
            dc.addcmul_(dh_o, phi_c > 0)
        torch.mul(dc, g, out=dp[..., :n])
        torch.mul(dc, prev[..., n:], out=dp[..., n : 2 * n])
        _times_sigmoid_prime_(dp[..., : 2 * n], acts[..., : 2 * n])
        _times_phi_prime(activation, dc * i, g, dp[..., 2 * n : 3 * n])
        _times_sigmoid_prime_(dp[..., 3 * n :], o)
        dc.mul_(f)
        if grad_prev is not None:
            dc.add_(grad_prev[..., n:])
    if grad_prev is None:
        carry.zero_() if direct is None else carry.copy_(direct)
    else:
        carry.copy_(grad_prev[..., :n]) if direct is None else torch.add(grad_prev[..., :n], direct, out=carry)


class _Recurrence(torch.autograd.Function):
    """``states = F(x, w_in, w_rec, bias, bias_rec, state0)`` for a whole sequence (module doc).

    x ``[N, T, B, m]`` (time-major; may be expanded over N), w_in ``[N, m, G n]``, w_rec
    ``[N, n, G n]``, bias ``[N, G n]``, bias_rec ``[N, n]`` (GRU) or None, state0 ``[N, B, S]``;
    ``kernels`` the compiled module or None (torch path). Returns states ``[N, T, B, S]``. With
    ``keep`` False (no gradient wanted) the activations of one step only are held in memory.
    """

    @staticmethod
    def forward(ctx, arch, activation, keep, kernels, x, w_in, w_rec, bias, bias_rec, state0):
        n_networks, n_steps, batch, _ = x.shape
        n, width = w_rec.shape[1], w_rec.shape[2]  # width = G n
        new = x.new_empty
        states = new(n_networks, n_steps, batch, state0.shape[-1])
        # Per-step activations kept for backward: ``acts`` (UGRNN [g, c]; GRU [r, z, q]; LSTM
        # [i, f, g, o]) and ``extra`` (GRU c, LSTM phi(c')).
        n_acts = {"vanilla": 0, "ugrnn": 2 * n, "gru": 3 * n, "lstm": 4 * n}[arch]
        n_kept_steps = n_steps if keep else 1
        acts = new(n_networks, n_kept_steps, batch, n_acts)
        extra = new(n_networks, n_kept_steps, batch, n if arch in ("gru", "lstm") else 0)
        # bmm writes into a contiguous scratch: with a strided ``out`` it falls back to one matmul
        # per network plus a copy, which made it 2-3 times slower.
        pre = new(n_networks, batch, width)
        if kernels is not None:
            w_in, bias = w_in.contiguous(), bias.contiguous()
            step = partial(kernels.forward_step, native.ARCH_CODES[arch], activation == "tanh", n)
        else:
            step = partial(_torch_forward_step, arch, activation, n)
        prev = state0
        for t in range(n_steps):
            k = t if keep else 0
            torch.bmm(prev[..., :n], w_rec, out=pre)
            step(x[:, t], w_in, bias, bias_rec, pre, prev, states[:, t], acts[:, k], extra[:, k])
            prev = states[:, t]
        if keep:
            ctx.arch, ctx.activation, ctx.kernels = arch, activation, kernels
            ctx.save_for_backward(x, w_in, w_rec, state0, states, acts, extra)
        return states

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_states):
        arch, activation, kernels = ctx.arch, ctx.activation, ctx.kernels
        x, w_in, w_rec, state0, states, acts, extra = ctx.saved_tensors
        n_networks, n_steps, batch, _ = states.shape
        n, width = w_rec.shape[1], w_rec.shape[2]
        w_rec_t = w_rec.transpose(1, 2)
        d_pre = states.new_empty(n_networks, n_steps, batch, width)  # dP
        d_cand_in = states.new_empty(n_networks, n_steps, batch, n) if arch == "gru" else None
        if kernels is not None:
            grad_states = grad_states.contiguous()
            step = partial(kernels.backward_step, native.ARCH_CODES[arch], activation == "tanh", n)
        else:
            step = partial(_torch_backward_step, arch, activation, n)

        dh = grad_states[:, -1, :, :n].clone()  # gradient reaching h_t, grows by carries from t+1
        dc = grad_states[:, -1, :, n:].clone() if arch == "lstm" else None
        carry = torch.empty_like(dh)
        for t in range(n_steps - 1, -1, -1):
            prev = states[:, t - 1] if t > 0 else state0
            grad_prev = grad_states[:, t - 1] if t > 0 else None
            d_cand = d_cand_in[:, t] if d_cand_in is not None else None
            step(dh, dc, grad_prev, states[:, t], prev, acts[:, t], extra[:, t], d_pre[:, t], d_cand, carry)
            carry.baddbmm_(d_pre[:, t], w_rec_t)  # dh_{t-1} = grad_h[t-1] + direct + dP_t U^T
            dh, carry = carry, dh

        needs = dict(zip(["x", "w_in", "w_rec", "bias", "bias_rec", "state0"], ctx.needs_input_grad[4:]))
        rows = n_steps * batch
        # dA = dP except the GRU candidate block, kept apart to avoid copying dP.
        d_drive_parts = [d_pre] if arch != "gru" else [d_pre[..., : 2 * n], d_cand_in]
        d_drive_flat = [part.reshape(n_networks, rows, -1) for part in d_drive_parts]
        d_x = d_w_in = d_bias = d_w_rec = d_bias_rec = d_state0 = None
        if needs["x"]:
            w_in_parts = [w_in] if arch != "gru" else [w_in[..., : 2 * n], w_in[..., 2 * n :]]
            d_x = sum(torch.bmm(d, w.transpose(1, 2)) for d, w in zip(d_drive_flat, w_in_parts))
            d_x = d_x.view_as(x)
        if needs["w_in"]:
            x_t = x.reshape(n_networks, rows, -1).transpose(1, 2)
            d_w_in = torch.cat([torch.bmm(x_t, d) for d in d_drive_flat], dim=-1)
        if needs["bias"]:
            d_bias = torch.cat([d.sum(dim=1) for d in d_drive_flat], dim=-1)
        if needs["w_rec"]:
            # sum_t h_{t-1}^T dP_t: step 0 from state0, steps 1.. from states[:, :-1] in one bmm.
            d_w_rec = torch.bmm(state0[..., :n].transpose(1, 2), d_pre[:, 0])
            prev_rows = rows - batch
            h_prev_all = states[:, :-1, :, :n].reshape(n_networks, prev_rows, n)
            d_pre_later = d_pre[:, 1:].reshape(n_networks, prev_rows, width)
            d_w_rec.baddbmm_(h_prev_all.transpose(1, 2), d_pre_later)
        if needs["bias_rec"]:
            d_bias_rec = d_pre[..., 2 * n :].sum(dim=(1, 2))
        if needs["state0"]:
            d_state0 = dh if arch != "lstm" else torch.cat([dh, dc], dim=-1)
        return None, None, None, None, d_x, d_w_in, d_w_rec, d_bias, d_bias_rec, d_state0

