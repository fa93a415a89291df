"""Initial states of the search, drawn from a network's own trajectories, and the probe scales
(typical speed and spread of those trajectories) that slow points and manifolds are judged against.
"""

from __future__ import annotations

import zlib

import numpy as np
import torch


def sample_initial_states(
    trajectories: torch.Tensor,
    n_inits: int = 1024,
    noise_scale: float = 0.5,
    generator: torch.Generator | None = None,
    batched: bool = False,
) -> torch.Tensor:
    """States drawn from a network's own trajectories plus isotropic Gaussian noise.

    ``h0_k = s_k + noise_scale * eps_k``, ``s_k`` drawn uniformly (with replacement) from all states
    of ``trajectories``, ``eps_k ~ N(0, I)``. Defaults follow FixedPointFinder (1024, 0.5).

    trajectories: ``[..., n]`` states of one network (any leading axes, e.g. ``[B, T, n]``), or with
        ``batched=True`` ``[N, ..., n]`` for ``N`` networks (each samples its own states, but from
        the one ``generator``, so a network's draws depend on ``N``; :func:`network_initial_states`
        gives each network its own stream).
    generator: torch generator on the device of ``trajectories``, for reproducible draws.
    Returns ``[n_inits, n]``, or ``[N, n_inits, n]`` if ``batched``.
    """
    if n_inits < 1:
        raise ValueError(f"n_inits must be >= 1, got {n_inits}")
    if noise_scale < 0:
        raise ValueError(f"noise_scale must be >= 0, got {noise_scale}")
    n = trajectories.shape[-1]
    lead = trajectories.shape[0] if batched else 1
    flat = trajectories.reshape(lead, -1, n)  # [N, S, n]
    index = torch.randint(
        flat.shape[1], (lead, n_inits), generator=generator, device=flat.device
    )  # [N, n_inits]
    picked = torch.gather(flat, 1, index.unsqueeze(-1).expand(lead, n_inits, n))
    noise = torch.randn(
        picked.shape, generator=generator, device=flat.device, dtype=flat.dtype
    )
    states = picked + noise_scale * noise
    return states if batched else states[0]


def network_generator(seed: int, key: str, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator for one network's draws, seeded by ``(seed, crc32(key))`` through
    :class:`numpy.random.SeedSequence` (the same on every machine).

    ``key`` names the network (its id). Drawing each network's initial states from its own stream
    makes its fixed points a function of the network and ``seed`` alone: with one stream for a whole
    shard, network ``i``'s noise came after the other networks' state indices, so adding or removing
    a network (a change of ``n_seeds`` or ``shard_size``) moved every network's initial states.
    """
    state = np.random.SeedSequence([int(seed), zlib.crc32(str(key).encode())]).generate_state(1)[0]
    return torch.Generator(device=device).manual_seed(int(state))


def network_initial_states(
    trajectories: torch.Tensor,
    keys: list[str],
    n_inits: int,
    noise_scale: float,
    seed: int,
) -> torch.Tensor:
    """``[N, n_inits, n]``: :func:`sample_initial_states` of each network ``trajectories[i]`` from
    its own :func:`network_generator` ``(seed, keys[i])``, independent of the other networks."""
    if len(keys) != trajectories.shape[0]:
        raise ValueError(f"{len(keys)} network keys for {trajectories.shape[0]} networks")
    if len(set(keys)) != len(keys):
        raise ValueError("network keys must be distinct: equal keys would draw equal initial states")
    return torch.stack([
        sample_initial_states(states, n_inits, noise_scale, network_generator(seed, key, states.device))
        for states, key in zip(trajectories, keys)
    ])  # fmt: skip


def rms_spread(states: torch.Tensor) -> float:
    """RMS distance of states ``[..., n]`` from their mean, ``sqrt(mean_k ||s_k - mean||^2)``.

    ``manifold_length_scale = 0.25 * rms_spread(probe_trajectories)`` is a good single-linkage scale.
    """
    flat = states.reshape(-1, states.shape[-1]).double()
    return float((flat - flat.mean(0)).pow(2).sum(-1).mean().sqrt())


def probe_scales(trajectories: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Typical speed and spread of probe trajectories ``[N, K, T, S]``, per network ``[N]``.

    speed: median over trials and steps of the per-step displacement ``||s_{t+1} - s_t||``;
    spread: :func:`rms_spread` of all the network's states. Slow points are judged against the
    speed, the extent of a line attractor against the spread (``rnnuniv.topology.lines``).
    """
    states = trajectories.double()
    step = (states[:, :, 1:] - states[:, :, :-1]).norm(dim=-1).flatten(1)  # [N, K (T-1)]
    speed = step.median(1).values if step.shape[1] else states.new_zeros(states.shape[0])
    spread = torch.tensor([rms_spread(t) for t in states], dtype=torch.float64)
    return speed.cpu(), spread

