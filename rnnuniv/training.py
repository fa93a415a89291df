"""Training a shard of networks at once, as one batched computation.

All networks of a shard share a task, architecture, activation and hidden size; their weights
are stacked on a leading network axis and every step is one batched forward and backward pass.
Each network keeps its own data stream, learning rate, L2 strength, optimiser state, gradient
clipping and fate: one network that diverges is frozen and recorded without touching the others.

Divergence and rollback: when network ``i``'s loss or gradient at step ``t`` is not finite, its
weights and optimiser state return to those before its last update, its learning rate is halved
(``lr_scale_i <- lr_scale_i / 2``), and it skips the step; after ``max_rollbacks`` rollbacks (or at
step 0, with nothing to return to) it is frozen and recorded as diverged at ``t``. A ReLU cell's
unbounded state can run away within one update (an LSTM-ReLU's ``c`` integrates ``relu`` of its
own output); halving the step is the standard remedy (as for a loss spike), and the records keep
the count (``n_rollbacks``) so that no rescue goes unreported.

Objective of network ``i`` at step ``t`` (MSE over batch, time and outputs, plus L2 on weights)::

    L_i = mean_{b,t,o} (y_i - y*)^2 + l2_i * (||W_in||^2 + ||W_rec||^2 + ||W_out||^2)

Learning rate: ``lr_i(t) = lr_scale_i * lr_i * decay_rate ** (t / decay_steps)``. Gradients are clipped per
network to a global norm of ``grad_clip``. Optimiser: Adam (default) or SGD with momentum (as in
the paper), both written elementwise so that the learning rate can differ between networks.

Training is checkpointed every ``checkpoint_every`` steps (weights, optimiser state, data-generator
states, records), atomically; a rerun resumes from the checkpoint and gives bit-identical weights.
A checkpoint carries the fingerprint it was written under (:func:`shard_fingerprint`: the
weight-affecting training config, the task, the cell, and each network's id, seed, L2 and
learning rate); a checkpoint whose fingerprint differs is ignored, with a log line saying which
fields differ, and the shard starts afresh.

Training decides nothing: it records, per network, the validation MSE and the variance of the
target over the same validation trials, from which the keep rule (:mod:`rnnuniv.networks`) derives
the normalised error ``MSE / Var(target)`` and each network's status in a separate, cheap step.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from . import fused
from .cells import Cell, Params
from .checkpoints import BOOKKEEPING_KEYS, load_checkpoint, save_checkpoint, shard_fingerprint
from .tasks import Task

WEIGHT_KEYS = ("w_in", "w_rec", "w_out")


@dataclass(frozen=True)
class TrainingConfig:
    n_steps: int = 2000  # optimiser steps
    batch_size: int = 64  # trials per step and network
    optimizer: str = "adam"  # "adam" or "sgd" (with momentum)
    lr_decay_rate: float = 0.5  # lr multiplied by this every lr_decay_steps
    lr_decay_steps: int = 1000
    momentum: float = 0.9  # SGD only
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = 1e-8
    grad_clip: float = 1.0  # per-network global gradient norm
    init: str = "glorot"  # initial weights: rnnuniv.cells.INIT_SCHEMES
    max_rollbacks: int = 3  # non-finite steps survived by rollback and lr halving; 0: freeze at first
    validation_batch_size: int = 256
    log_every: int = 10  # loss-curve subsampling (bookkeeping: changes no weight)
    checkpoint_every: int = 200  # steps between checkpoints, 0: never (bookkeeping)

    def __post_init__(self):
        if self.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
        if self.max_rollbacks < 0:
            raise ValueError(f"max_rollbacks must be >= 0, got {self.max_rollbacks}")


@dataclass
class ShardState:
    """Everything that evolves during training; a checkpoint is exactly this."""

    params: Params
    moments: dict[str, Params]  # "m", "v" (Adam) or "m" (SGD momentum)
    generators: list[torch.Generator]
    step: int = 0
    diverged_step: torch.Tensor = field(default=None)  # [N] int64, -1 while alive
    curve: list[torch.Tensor] = field(default_factory=list)  # train losses at log steps, [N] each
    curve_steps: list[int] = field(default_factory=list)
    wall_time: float = 0.0
    lr_scale: torch.Tensor = field(default=None)  # [N] float32, halved at each rollback
    rollbacks: torch.Tensor = field(default=None)  # [N] int64
    # weights and optimiser state before the last update, {"param": Params, <moment>: Params}
    previous: dict[str, Params] | None = None

    @property
    def alive(self) -> torch.Tensor:
        return self.diverged_step < 0


def per_network_loss(
    cell: Cell, params: Params, inputs: torch.Tensor, targets: torch.Tensor, n_hidden: int
) -> torch.Tensor:
    """MSE of each network on its own batch: inputs ``[N, B, T, m]``, targets ``[N, B, T, p]``.

    The states stay time-major (``[N, T, B, S]``, as the recurrence writes them): the readout and
    the error need no copy of the trajectories, and the mean does not depend on the order.
    """
    states = fused.run_time_major(cell, params, inputs)
    outputs = cell.readout(params, cell.hidden(states, n_hidden))
    return (outputs - targets.transpose(1, 2)).pow(2).flatten(1).mean(dim=1)


def _weight_norms(params: Params) -> torch.Tensor:
    return sum(params[k].pow(2).flatten(1).sum(dim=1) for k in WEIGHT_KEYS)


def _sample(task: Task, generators: list[torch.Generator], batch_size: int, device) -> tuple:
    batches = [task.sample(batch_size, g) for g in generators]
    inputs = torch.stack([b[0] for b in batches]).to(device)
    targets = torch.stack([b[1] for b in batches]).to(device)
    return inputs, targets


def _expand(per_network: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return per_network.reshape(-1, *([1] * (like.dim() - 1)))


def init_state(
    cell: Cell,
    task: Task,
    n_hidden: int,
    seeds: list[int],
    config: TrainingConfig,
    device: torch.device | str = "cpu",
) -> ShardState:
    params = cell.init_params(task.n_inputs, n_hidden, task.n_outputs, seeds, scheme=config.init)
    params = {k: v.to(device) for k, v in params.items()}
    n_moments = ("m", "v") if config.optimizer == "adam" else ("m",)
    moments = {name: {k: torch.zeros_like(v) for k, v in params.items()} for name in n_moments}
    # The data stream of a network depends on its seed only (offset from the weight seed).
    generators = [torch.Generator().manual_seed(int(s) + 1) for s in seeds]
    n = len(seeds)
    diverged = torch.full((n,), -1, dtype=torch.int64, device=device)
    return ShardState(
        params, moments, generators, diverged_step=diverged,
        lr_scale=torch.ones(n, dtype=torch.float32, device=device),
        rollbacks=torch.zeros(n, dtype=torch.int64, device=device),
    )  # fmt: skip


def _snapshot(state: ShardState) -> None:
    """Keep the weights and optimiser state before this step's update in ``state.previous``
    (buffers allocated once and overwritten each step: this runs on every training step)."""
    current = {"param": state.params, **state.moments}
    if state.previous is None:
        state.previous = {name: {k: v.detach().clone() for k, v in part.items()} for name, part in current.items()}
        return
    for name, part in current.items():
        for k, v in part.items():
            state.previous[name][k].copy_(v)


def _roll_back(state: ShardState, rows: torch.Tensor, config: TrainingConfig) -> torch.Tensor:
    """Return the networks ``rows`` (bool [N], non-finite now) to their state before their last
    update and halve their learning rate, while they have rollbacks left; returns who diverged."""
    if state.previous is None:  # nothing to return to (step 0, or rollbacks off)
        return rows
    can = rows & (state.rollbacks < config.max_rollbacks)
    if can.any():
        for k, p in state.params.items():
            p[can] = state.previous["param"][k][can]
        for name, moment in state.moments.items():
            for k, v in moment.items():
                v[can] = state.previous[name][k][can]
        state.lr_scale[can] *= 0.5
        state.rollbacks[can] += 1
    return rows & ~can


def _live_loss_and_gradients(
    cell: Cell, task: Task, state: ShardState, l2: torch.Tensor, n_hidden: int, config: TrainingConfig
) -> tuple[torch.Tensor, Params]:
    """Train loss ``[N]`` and gradients of the live networks only; frozen (diverged) networks get
    a NaN loss and zero gradients, and neither draw trials nor enter the forward pass.

    A shard whose networks mostly diverge early (sine LSTM-ReLU keeps under 10 %) then costs in
    proportion to its live network-steps. Each network's computation is independent of the
    others in the batch, so a live network's trajectory does not depend on who else is live.
    """
    device = state.diverged_step.device
    live = state.alive.nonzero().flatten()
    everyone = len(live) == len(state.generators)
    rows = slice(None) if everyone else live
    params = {k: v[rows].detach().requires_grad_(True) for k, v in state.params.items()}
    generators = state.generators if everyone else [state.generators[i] for i in live.tolist()]
    inputs, targets = _sample(task, generators, config.batch_size, device)
    mse_live = per_network_loss(cell, params, inputs, targets, n_hidden)
    objective = mse_live + l2[rows] * _weight_norms(params)
    grads_live = torch.autograd.grad(objective.sum(), list(params.values()))
    if everyone:
        return mse_live.detach(), dict(zip(params, grads_live))
    mse = torch.full_like(state.lr_scale, float("nan"))
    mse[live] = mse_live.detach()
    grads = {}
    for k, g in zip(params, grads_live):
        grads[k] = torch.zeros_like(state.params[k])
        grads[k][live] = g
    return mse, grads


def train_step(
    cell: Cell,
    task: Task,
    state: ShardState,
    l2: torch.Tensor,
    learning_rate: torch.Tensor,
    n_hidden: int,
    config: TrainingConfig,
) -> torch.Tensor:
    """One batched optimiser step of every live network; returns the per-network train loss."""
    mse, grads = _live_loss_and_gradients(cell, task, state, l2, n_hidden, config)

    with torch.no_grad():
        params = state.params
        grad_norm = torch.sqrt(sum(g.pow(2).flatten(1).sum(dim=1) for g in grads.values()))
        finite = torch.isfinite(mse) & torch.isfinite(grad_norm)
        newly_diverged = _roll_back(state, state.alive & ~finite, config)
        state.diverged_step[newly_diverged] = state.step
        alive = state.alive & finite  # rolled-back networks skip this step
        if config.max_rollbacks:
            _snapshot(state)
        scale = torch.clamp(config.grad_clip / (grad_norm + 1e-12), max=1.0)
        scale = torch.where(alive, scale, torch.zeros_like(scale))
        lr = state.lr_scale * learning_rate * config.lr_decay_rate ** (state.step / config.lr_decay_steps)
        t = state.step + 1
        for k, p in params.items():
            g = torch.nan_to_num(grads[k]) * _expand(scale, grads[k])
            m = state.moments["m"][k]
            if config.optimizer == "adam":
                b1, b2 = config.adam_betas
                v = state.moments["v"][k]
                m.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).addcmul_(g, g, value=1 - b2)
                update = (m / (1 - b1**t)) / (torch.sqrt(v / (1 - b2**t)) + config.adam_eps)
            else:
                m.mul_(config.momentum).add_(g)
                update = m
            p.sub_(_expand(lr * alive, p) * update)
        state.step += 1
    return mse.detach()


def validation_trials(task: Task, seeds: list[int], batch_size: int, device="cpu") -> tuple:
    """Each network's validation trials ``(inputs [N, B, T, m], targets [N, B, T, p])``, drawn
    from a generator never used for training (seed + 2)."""
    generators = [torch.Generator().manual_seed(int(s) + 2) for s in seeds]
    return _sample(task, generators, batch_size, device)


def target_variance(targets: torch.Tensor) -> torch.Tensor:
    """Variance of each network's targets ``[N, B, T, p]`` pooled over trials, time steps and
    outputs around its grand mean: ``Var_i = mean_{b,t,o} (y*_i - mean(y*_i))^2``, ``[N]``.

    It is the MSE of the best constant output, so ``MSE / Var`` is 1 for a network that outputs
    the grand mean of the target and ``1 - R^2`` in general.
    """
    flat = targets.double().flatten(1)
    return (flat - flat.mean(dim=1, keepdim=True)).pow(2).mean(dim=1)


VALIDATION_CHUNK = 64  # validation trials run at once (bounds validation memory)


def validation_loss(
    cell: Cell, task: Task, params: Params, seeds: list[int], n_hidden: int, batch_size: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per network ``[N]``: MSE on its validation trials and the target variance over them.

    The trials are run in chunks of :data:`VALIDATION_CHUNK`, so memory is bounded by a chunk's
    states (all 512 trials of a 40-network sine shard of 256 units at once would be 10.5 GB):
    ``MSE = sum_c B_c MSE_c / B``, the same mean over trials, time and outputs.
    """
    inputs, targets = validation_trials(task, seeds, batch_size, params["w_rec"].device)
    total = torch.zeros(inputs.shape[0], dtype=torch.float64, device=inputs.device)
    with torch.no_grad():
        for start in range(0, batch_size, VALIDATION_CHUNK):
            stop = min(start + VALIDATION_CHUNK, batch_size)
            chunk = per_network_loss(cell, params, inputs[:, start:stop], targets[:, start:stop], n_hidden)
            total += chunk.double() * (stop - start)
    return (total / batch_size).to(inputs.dtype), target_variance(targets)


def train_shard(
    cell: Cell,
    task: Task,
    n_hidden: int,
    seeds: list[int],
    l2: list[float],
    learning_rates: list[float],
    config: TrainingConfig,
    device: torch.device | str = "cpu",
    checkpoint: str | Path | None = None,
    progress: bool = True,
    stop_after: int | None = None,
    network_ids: list[str] | None = None,
) -> tuple[Params, list[dict[str, Any]]]:
    """Train the networks of one shard together; return final weights (CPU) and one record each.

    ``stop_after`` ends the run early after that many steps of this call (with a checkpoint), for
    tests of resumption. Records hold facts only: the final train loss, the validation MSE and the
    target variance on the same validation trials, the subsampled loss curve, the step at which a
    network diverged (it is frozen from then on), the steps completed and the shard's wall time.
    A checkpoint written under another fingerprint (:func:`shard_fingerprint`) is not resumed.
    """
    state = init_state(cell, task, n_hidden, seeds, config, device)
    fingerprint = shard_fingerprint(
        cell, task, n_hidden, seeds, l2, learning_rates, config, network_ids
    )
    if checkpoint is not None and Path(checkpoint).exists():
        if not load_checkpoint(checkpoint, state, fingerprint):
            state = init_state(cell, task, n_hidden, seeds, config, device)
    l2_t = torch.tensor(l2, dtype=torch.float32, device=device)
    lr_t = torch.tensor(learning_rates, dtype=torch.float32, device=device)

    bar = tqdm(
        total=config.n_steps,
        initial=state.step,
        disable=not progress,
        desc=f"{cell.architecture}-{cell.activation}-h{n_hidden}",
        mininterval=5.0,
    )
    start, steps_this_call = time.perf_counter(), 0
    while state.step < config.n_steps and bool(state.alive.any()):
        loss = train_step(cell, task, state, l2_t, lr_t, n_hidden, config)
        steps_this_call += 1
        if state.step % config.log_every == 0 or state.step == config.n_steps:
            state.curve.append(loss.cpu())
            state.curve_steps.append(state.step)
            live = loss[state.alive]
            bar.set_postfix(median_loss=f"{live.median().item():.3g}" if len(live) else "nan")
        bar.update(1)
        at_checkpoint = config.checkpoint_every and state.step % config.checkpoint_every == 0
        stopping = stop_after is not None and steps_this_call >= stop_after
        if checkpoint is not None and (at_checkpoint or stopping):
            state.wall_time += time.perf_counter() - start
            start = time.perf_counter()
            save_checkpoint(checkpoint, state, fingerprint)
        if stopping:
            break
    bar.close()
    state.wall_time += time.perf_counter() - start

    val, variance = validation_loss(
        cell, task, state.params, seeds, n_hidden, config.validation_batch_size
    )
    params = {k: v.detach().cpu() for k, v in state.params.items()}
    records = _records(state, val.cpu(), variance.cpu(), len(seeds))
    return params, records


def _records(state: ShardState, val: torch.Tensor, variance: torch.Tensor, n: int) -> list[dict]:
    curve = torch.stack(state.curve, dim=1).numpy() if state.curve else np.zeros((n, 0))
    records = []
    for i in range(n):
        step = int(state.diverged_step[i])
        # a non-finite validation loss without a recorded step diverged after the last step
        diverged_step = step if step >= 0 else (None if math.isfinite(float(val[i])) else state.step)
        records.append(
            {
                "diverged_step": diverged_step,
                "n_rollbacks": int(state.rollbacks[i]),
                "final_lr_scale": float(state.lr_scale[i]),
                "final_train_loss": float(curve[i, -1]) if curve.shape[1] else None,
                "validation_loss": float(val[i]),
                "target_variance": float(variance[i]),
                "loss_curve_steps": list(state.curve_steps),
                "loss_curve": [float(x) for x in curve[i]],
                "shard_wall_time_s": round(state.wall_time, 3),
                "steps_completed": state.step,
            }
        )
    return records


def config_record(config: TrainingConfig) -> dict[str, Any]:
    return asdict(config)
