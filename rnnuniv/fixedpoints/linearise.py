"""Linearisation at a point: Jacobians ``J = dF/dh`` and ``dF/dx``, eigen-decomposition, marginal
modes and the linearised rotation frequency.

Eigenvalues are sorted by modulus (largest first), right eigenvectors are columns
(``J R = R diag(lambda)``) and left eigenvectors rows (``L J = diag(lambda) L`` with ``L R = I``;
they differ from ``R^H`` when ``J`` is non-normal). A mode is marginal when
``| |lambda| - 1 | < tol``.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

Step = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Jacobian = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def n_marginal(eigenvalues: torch.Tensor, tol: float = 1e-3) -> torch.Tensor:
    """Number of eigenvalues with ``| |lambda| - 1 | < tol``; ``[..., n] -> [...]`` (int64)."""
    return ((eigenvalues.abs() - 1.0).abs() < tol).sum(-1)


def linearized_frequency(eigenvalues: torch.Tensor, imag_tol: float = 1e-9) -> torch.Tensor:
    """Rotation frequency of the leading complex eigenvalue, ``|arg(lambda)| / (2 pi)`` cycles/step.

    The leading complex eigenvalue is the largest-modulus one with ``|Im lambda| > imag_tol``;
    the frequency is 0 where all eigenvalues are real. ``[..., n] -> [...]`` (float64).
    """
    eigenvalues = eigenvalues.to(torch.complex128)
    is_complex = eigenvalues.imag.abs() > imag_tol
    modulus = torch.where(is_complex, eigenvalues.abs(), torch.full_like(eigenvalues.real, -1.0))
    lead = modulus.argmax(-1, keepdim=True)
    angle = torch.gather(eigenvalues.angle().abs(), -1, lead).squeeze(-1)
    return torch.where(is_complex.any(-1), angle / (2 * math.pi), torch.zeros_like(angle))



def _jacobians(
    net_step: Step,
    h: torch.Tensor,
    x: torch.Tensor,
    batch: int,
    with_inputs: bool = False,
    analytic: Jacobian | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-point Jacobians dF/dh ``[N, K, n, n]`` (and dF/dx ``[N, K, n, m]``), batched.

    From ``analytic(h, x)`` when given. Otherwise: rows of F are independent, so
    ``d/dh_k sum_j F(h_j)_i = dF(h_k)_i / dh_k``: jacrev of the batch-summed map (one reverse pass
    vmapped over the ``n`` outputs) gives every point's Jacobian.
    """
    n_networks, n_points, n = h.shape
    m = x.shape[-1]
    if analytic is not None and m > 0:
        chunk = max(1, batch // max(n_networks, 1))
        parts = [analytic(h[:, i : i + chunk], x[:, i : i + chunk]) for i in range(0, n_points, chunk)]
        if not parts:
            return h.new_zeros(n_networks, 0, n, n), h.new_zeros(n_networks, 0, n, m)
        if len(parts) == 1:  # no copy of a possibly large [N, K, n, n]
            return parts[0][0], (parts[0][1] if with_inputs else None)
        jac = torch.cat([p[0] for p in parts], 1)
        return jac, (torch.cat([p[1] for p in parts], 1) if with_inputs else None)
    argnums = (0, 1) if with_inputs and m > 0 else 0

    def summed(states: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        return net_step(states, inputs).sum(dim=(0, 1))  # [n]

    jac_fn = torch.func.jacrev(summed, argnums=argnums)
    chunk = max(1, batch // max(n_networks, 1))
    jac_h, jac_x = [], []
    for start in range(0, n_points, chunk):
        part = jac_fn(h[:, start : start + chunk], x[:, start : start + chunk])
        if isinstance(part, tuple):
            jac_x.append(part[1].permute(1, 2, 0, 3))  # [n, N, k, m] -> [N, k, n, m]
            part = part[0]
        jac_h.append(part.permute(1, 2, 0, 3))  # [n_out, N, k, n_in] -> [N, k, n_out, n_in]
    jac = torch.cat(jac_h, 1) if jac_h else h.new_zeros(n_networks, 0, n, n)
    if not with_inputs:
        return jac, None
    if m == 0 or not jac_x:
        return jac, h.new_zeros(n_networks, n_points, n, m)
    return jac, torch.cat(jac_x, 1)



def modulus_order(values: torch.Tensor) -> torch.Tensor:
    """Indices that sort eigenvalues ``[..., n]`` by modulus, largest first (ties kept in order):
    the order every stored spectrum uses."""
    return torch.argsort(values.abs(), dim=-1, descending=True, stable=True)


def _eigen(jac: torch.Tensor) -> dict[str, torch.Tensor]:
    """Eigenvalues sorted by modulus (largest first), right eigenvectors (columns), left (rows)."""
    if jac.shape[0] == 0:
        n = jac.shape[-1]
        empty = jac.new_zeros(0, n, n, dtype=torch.complex128)
        return {"values": empty[:, 0], "right": empty, "left": empty}
    values, right = torch.linalg.eig(jac)
    order = modulus_order(values)
    values = torch.gather(values, -1, order)
    right = torch.gather(right, -1, order.unsqueeze(-2).expand_as(right))
    left, info = torch.linalg.inv_ex(right)  # rows: w_i^T J = lambda_i w_i^T, W R = I
    left[info != 0] = complex(float("nan"), float("nan"))  # defective J: no eigenbasis
    return {"values": values, "right": right, "left": left}

