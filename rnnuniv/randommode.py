"""The random-mode model of a coupling matrix (Clark, Marschall, van Meegen, Litwin-Kumar 2024).

A coupling ``J = U diag(d) V^T`` ``[n, n]`` with Haar-random orthogonal output modes ``U`` and input
modes ``V`` and a chosen spectrum ``d >= 0``. Two numbers of ``d`` set the dynamics at large ``n``:

- the gain ``g``: ``g^2 = mean_i d_i^2 = n * mean_ij J_ij^2`` (exactly, since ``U, V`` are orthogonal),
  the variance an iid coupling ``J_ij ~ N(0, g^2 / n)`` would need for the same Frobenius norm;
- the effective rank ``PR_D = (sum_i d_i^2)^2 / sum_i d_i^4`` (:func:`rnnuniv.dynamics.participation_rank`).

The paper's result: the dimension of the chaotic activity (participation ratio of its covariance)
depends on the coupling chiefly through ``g`` and ``PR_D``. The dynamics are the rate flow
``dx/dt = -x + J phi(x)`` (Euler, step ``dt``) or the map ``h' = J phi(h)``; for iid couplings the
dynamic mean-field theory gives ``<x^2>`` and the largest Lyapunov exponent (tests/test_randommode.py).
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
from scipy.optimize import brentq

from .dynamics import coupling_gain, lyapunov_spectrum, participation_rank, participation_ratio

KINDS = ("flat", "power", "exponential")
MODELS = ("flow", "map")
Phi = Callable[[torch.Tensor], torch.Tensor]


# -- spectra ----------------------------------------------------------------------------------
def _shape(kind: str, n: int, a: float) -> np.ndarray:
    """Unnormalised spectrum of shape parameter ``a``; ``PR_D`` falls from ``n`` to 1 as ``a`` grows.

    flat:        ``d_i = clip(n - a - i, 0, 1)``,  ``0 <= a <= n - 1`` (``n - a`` ones, the last partial)
    power:       ``d_i = (i + 1)^(-a)``,           ``a >= 0``
    exponential: ``d_i = exp(-a i / n)``,          ``a >= 0``
    """
    i = np.arange(n, dtype=np.float64)
    if kind == "flat":
        return np.clip(n - a - i, 0.0, 1.0)
    if kind == "power":
        return (i + 1.0) ** (-a)
    return np.exp(-a * i / n)


def _pr(d: np.ndarray) -> float:
    d2 = d * d
    return float(d2.sum() ** 2 / (d2 * d2).sum())


def spectrum(kind: str, n: int, gain: float, rank: float) -> np.ndarray:
    """Singular values ``d`` ``[n] >= 0``, descending, with ``participation_rank = rank`` and
    ``mean(d^2) = gain^2``.

    The shape (see :func:`_shape`) has one parameter ``a`` on which ``PR_D`` is continuous and
    strictly decreasing (from ``n`` at ``a = 0`` to 1 as ``a -> n - 1`` (flat) or ``inf``). ``a`` is
    found by Brent's method on ``PR_D(a) - rank`` (bracket doubled until it changes sign,
    ``xtol = 1e-13``, so ``|PR_D - rank| < 1e-6``), then ``d`` is scaled so ``mean(d^2) = gain^2``.
    ``rank = n`` gives the flat spectrum and ``rank = 1`` a single non-zero value for every kind.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown spectrum kind {kind!r}; valid: {', '.join(KINDS)}")
    n = int(n)
    if n < 1:
        raise ValueError(f"n={n} must be at least 1")
    if not gain >= 0:
        raise ValueError(f"gain={gain} must be >= 0")
    if not 1.0 <= rank <= n:
        raise ValueError(f"rank={rank} must be in [1, n={n}]")
    if rank >= n - 1e-12:
        d = np.ones(n)
    elif rank <= 1.0 + 1e-12:
        d = np.zeros(n)
        d[0] = 1.0
    else:
        gap = lambda a: _pr(_shape(kind, n, a)) - rank  # noqa: E731
        if kind == "flat":
            high = n - 1.0
        else:
            high = 1.0
            while gap(high) > 0:
                high *= 2.0
                if high > 1e6:
                    raise ValueError(f"no {kind} spectrum of n={n} reaches rank={rank}")
        d = _shape(kind, n, brentq(gap, 0.0, high, xtol=1e-13, rtol=4 * np.finfo(float).eps, maxiter=500))
    return d * (gain / math.sqrt(float(np.mean(d * d))))


# -- couplings --------------------------------------------------------------------------------
def haar_orthogonal(n: int, generator: torch.Generator) -> torch.Tensor:
    """A Haar-random orthogonal ``[n, n]`` float64: QR of a Gaussian matrix with the signs of
    ``diag(R)`` moved into ``Q`` (Mezzadri 2007), which makes the distribution exactly Haar."""
    q, r = torch.linalg.qr(torch.randn(n, n, generator=generator, dtype=torch.float64))
    signs = torch.sign(torch.diagonal(r))
    signs[signs == 0] = 1.0
    return q * signs


def coupling(n: int, d, *, seed: int, overlap: float = 0.0) -> torch.Tensor:
    """``J = U diag(d) V^T`` ``[n, n]`` float64 with Haar-orthogonal ``U``, ``V`` (seeded).

    ``overlap`` in ``[0, 1]`` mixes the input modes toward the output modes: ``V`` is replaced by
    the nearest orthogonal matrix (polar factor) of ``(1 - overlap) V + overlap U``; 0 gives
    independent modes, 1 gives ``V = U`` (``J`` symmetric positive semi-definite), between them a
    structured overlap ``diag(U^T V) > 0`` as in the paper's extension. ``n mean(J_ij^2) =
    mean(d^2)`` for every overlap.
    """
    d = torch.as_tensor(np.asarray(d, dtype=np.float64))
    if d.shape != (int(n),):
        raise ValueError(f"spectrum of shape {tuple(d.shape)} is not [n={n}]")
    if not 0.0 <= overlap <= 1.0:
        raise ValueError(f"overlap={overlap} must be in [0, 1]")
    gen = torch.Generator().manual_seed(int(seed))
    u = haar_orthogonal(int(n), gen)
    v = haar_orthogonal(int(n), gen)
    if overlap > 0:
        left, _, right_t = torch.linalg.svd((1.0 - overlap) * v + overlap * u)
        v = left @ right_t
    return (u * d) @ v.T


def iid_coupling(n: int, gain: float, *, seed: int) -> torch.Tensor:
    """The reference coupling: ``J_ij ~ N(0, gain^2 / n)`` iid, ``[n, n]`` float64, seeded."""
    gen = torch.Generator().manual_seed(int(seed))
    return torch.randn(int(n), int(n), generator=gen, dtype=torch.float64) * (gain / math.sqrt(n))


# -- dynamics ---------------------------------------------------------------------------------
def step_function(j: torch.Tensor, kind: str = "flow", dt: float = 0.1, phi: Phi = torch.tanh):
    """One step ``x -> x'`` on row states ``[..., n]``: flow ``x + dt (-x + J phi(x))`` or map
    ``J phi(x)``. Its Jacobian is ``(1 - dt) I + dt J diag(phi'(x))`` or ``J diag(phi'(x))``."""
    if kind not in MODELS:
        raise ValueError(f"unknown dynamics {kind!r}; valid: {', '.join(MODELS)}")
    if kind == "map":
        return lambda x, _=None: phi(x) @ j.T
    if not 0 < dt <= 1:
        raise ValueError(f"dt={dt} must be in (0, 1]")
    return lambda x, _=None: x + dt * (phi(x) @ j.T - x)


def tanh_jacobian_times(j: torch.Tensor, kind: str = "flow", dt: float = 0.1):
    """``(x, _, Q) -> J_x Q`` for :func:`step_function` with ``phi = tanh``: the map's
    ``J diag(1 - tanh(x)^2) Q``, the flow's ``(1 - dt) Q + dt J diag(1 - tanh(x)^2) Q``; states
    ``[..., n]``, frames ``[..., n, k]``. One product with ``J`` per step, where a vmapped jvp pays
    the functorch overhead and a second pass over ``J``."""
    if kind not in MODELS:
        raise ValueError(f"unknown dynamics {kind!r}; valid: {', '.join(MODELS)}")

    def times(x: torch.Tensor, _, frame: torch.Tensor) -> torch.Tensor:
        drive = j @ ((1.0 - torch.tanh(x).pow(2)).unsqueeze(-1) * frame)
        return drive if kind == "map" else (1.0 - dt) * frame + dt * drive

    return times


def default_warmup(kind: str, dt: float) -> int:
    """Steps discarded by default: 200 time units of the flow (``200 / dt`` steps), 500 map steps."""
    return int(round(200.0 / dt)) if kind == "flow" else 500


def simulate(
    j,
    n_steps: int,
    *,
    kind: str = "flow",
    dt: float = 0.1,
    phi: Phi = torch.tanh,
    seed: int = 0,
    n_warmup: int | None = None,
) -> torch.Tensor:
    """States ``[n_steps, n]`` of the flow or map (:func:`step_function`) after ``n_warmup`` steps.

    The start is ``x_0 ~ N(0, 1)`` per unit (seeded); the dtype is ``j``'s (float64 by default).
    ``n_warmup`` defaults to :func:`default_warmup`.
    """
    j = torch.as_tensor(j)
    if not j.is_floating_point():
        j = j.to(torch.float64)
    if j.dim() != 2 or j.shape[0] != j.shape[1]:
        raise ValueError(f"coupling of shape {tuple(j.shape)} is not square [n, n]")
    n_warmup = default_warmup(kind, dt) if n_warmup is None else int(n_warmup)
    if n_steps < 1 or n_warmup < 0:
        raise ValueError(f"n_steps={n_steps} must be >= 1 and n_warmup={n_warmup} >= 0")
    step = step_function(j, kind, dt, phi)
    gen = torch.Generator().manual_seed(int(seed))
    x = torch.randn(j.shape[0], generator=gen, dtype=torch.float64).to(j.dtype)
    states = j.new_empty(int(n_steps), j.shape[0])
    with torch.no_grad():
        for _ in range(n_warmup):
            x = step(x)
        for t in range(int(n_steps)):
            x = step(x)
            states[t] = x
    return states


def largest_lyapunov(
    j,
    n_steps: int,
    *,
    kind: str = "flow",
    dt: float = 0.1,
    phi: Phi = torch.tanh,
    seed: int = 0,
    n_warmup: int | None = None,
    start: torch.Tensor | None = None,
) -> float:
    """Largest Lyapunov exponent of the flow (per unit time: per-step exponent / ``dt``) or map
    (per step), by :func:`rnnuniv.dynamics.lyapunov_spectrum` with one vector.

    The trajectory starts at ``start`` (e.g. the last state of :func:`simulate`, already on the
    attractor) or else after ``n_warmup`` steps from the seeded start of :func:`simulate`; the
    tangent vector then aligns during ``n_steps // 5`` uncounted steps before ``n_steps`` counted
    ones. Returns ``-inf`` if the activity has collapsed onto an exactly singular Jacobian.
    """
    j = torch.as_tensor(j)
    if not j.is_floating_point():
        j = j.to(torch.float64)
    if start is None:
        start = simulate(j, 1, kind=kind, dt=dt, phi=phi, seed=seed, n_warmup=n_warmup)[-1]
    align = max(int(n_steps) // 5, 1)
    exponent = lyapunov_spectrum(
        step_function(j, kind, dt, phi),
        start.to(j.dtype),
        j.new_zeros(1),
        n_exponents=1,
        n_steps=align + int(n_steps),
        n_warmup=align,
        seed=seed,
        jacobian_times=tanh_jacobian_times(j, kind, dt) if phi is torch.tanh else None,
    )[0].item()
    return exponent / dt if kind == "flow" else exponent


def run_point(
    n: int, gain: float, rank: float, *, spectrum_kind: str, model: str = "flow", dt: float = 0.1,
    n_steps: int, n_lyapunov_steps: int, n_warmup: int | None = None, n_blocks: int = 8,
    overlap: float = 0.0, seed: int = 0,
) -> dict:
    """One grid point of the random-mode stage: coupling, simulation, dimension, exponent.

    Returns ``participation_rank`` and ``gain`` of the realised ``J``; ``dimension`` (cross-block
    participation ratio of the ``n_steps`` states, ``n_blocks`` blocks) and ``dimension_naive``;
    ``lyapunov_max`` (:func:`largest_lyapunov`, ``n_lyapunov_steps`` from the last state);
    ``mean_square`` ``<x^2>`` over units and time; ``variance`` ``tr(C) / n``, the temporal
    variance averaged over units (0 on a fixed point).
    """
    j = coupling(n, spectrum(spectrum_kind, n, gain, rank), seed=seed, overlap=overlap)
    states = simulate(j, n_steps, kind=model, dt=dt, seed=seed, n_warmup=n_warmup)
    return {
        "participation_rank": participation_rank(j).item(),
        "realised_gain": coupling_gain(j).item(),
        "dimension": participation_ratio(states, n_blocks=n_blocks).item(),
        "dimension_naive": participation_ratio(states).item(),
        "lyapunov_max": largest_lyapunov(j, n_lyapunov_steps, kind=model, dt=dt, seed=seed, start=states[-1]),
        "mean_square": states.pow(2).mean().item(),
        "variance": states.var(dim=0).mean().item(),
    }


#: Options of :func:`grid_table` (the ``random_mode:`` config section) and their defaults.
GRID_DEFAULTS = {
    "n_units": 1000, "gains": [0.5, 1.5, 2.0, 3.0], "rank_fractions": [0.01, 0.05, 0.2, 1.0],
    "spectra": ["power"], "model": "flow", "dt": 0.1, "n_warmup": 1000, "n_steps": 2000,
    "n_lyapunov_steps": 1000, "n_blocks": 8, "overlap": 0.0, "seed": 0, "settled_variance": 1e-8,
}
#: Columns of ``results/random_mode/table.csv``, in order.
TABLE_COLUMNS = (
    "kind", "model", "n", "gain", "rank_fraction", "rank", "overlap", "seed", "participation_rank",
    "realised_gain", "dimension", "dimension_naive", "dimension_fraction", "lyapunov_max",
    "mean_square", "variance", "settled",
)


def grid_table(options: dict | None = None, log=None) -> "pd.DataFrame":
    """The random-mode stage: :func:`run_point` over spectra x gains x rank fractions.

    ``rank = clip(rank_fraction * n, 1, n)``. A point whose temporal variance ``tr(C) / n`` is
    below ``settled_variance`` has settled on a fixed point (zero below ``g = 1``, or a non-zero one
    for a few strong modes) (``settled``): its dimension is NaN, since the participation ratio of
    the remains of a decaying transient measures nothing (the cross-block estimator of nearly
    zero covariances can even exceed ``n``). ``dimension_fraction``
    is ``dimension / n``, comparable with networks of another size. Rows follow
    :data:`TABLE_COLUMNS`.
    """
    import pandas as pd

    options = {**GRID_DEFAULTS, **(options or {})}
    unknown = sorted(set(options) - set(GRID_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown random_mode options {unknown}; valid: {sorted(GRID_DEFAULTS)}")
    n = int(options["n_units"])
    rows = []
    for kind in options["spectra"]:
        for gain in options["gains"]:
            for fraction in options["rank_fractions"]:
                rank = float(min(max(fraction * n, 1.0), n))
                point = run_point(
                    n, float(gain), rank, spectrum_kind=kind, model=options["model"], dt=float(options["dt"]),
                    n_steps=int(options["n_steps"]), n_lyapunov_steps=int(options["n_lyapunov_steps"]),
                    n_warmup=int(options["n_warmup"]), n_blocks=int(options["n_blocks"]),
                    overlap=float(options["overlap"]), seed=int(options["seed"]),
                )
                settled = point["variance"] < float(options["settled_variance"])
                if settled:
                    point["dimension"] = point["dimension_naive"] = float("nan")
                rows.append({"kind": kind, "model": options["model"], "n": n, "gain": float(gain),
                             "rank_fraction": float(fraction), "rank": rank, "overlap": float(options["overlap"]),
                             "seed": int(options["seed"]), **point, "dimension_fraction": point["dimension"] / n,
                             "settled": bool(settled)})
                if log is not None:
                    log.info("%s g=%g rank=%.1f: dimension %.2f, lambda_max %.4f, <x^2> %.4g", kind, gain, rank,
                             point["dimension"], point["lyapunov_max"], point["mean_square"])
    return pd.DataFrame(rows, columns=list(TABLE_COLUMNS))
