"""Training speed of a population: per-network torch modules vs the batched shard.

Trains the same population of networks (same architecture, hidden size, task, batch) three ways and
prints seconds per network-step (one optimiser step of one network, data sampling included):

  baseline  one network at a time: torch.nn.GRU / LSTM / RNN + linear readout + torch.optim.Adam
  autograd  the batched shard, rnnuniv.training.train_step, autograd through ``Cell.run``
  autograd-unbind  the same with ``Cell.run``'s per-step indexing of the drive replaced by unbind
  fused     the batched shard, rnnuniv.training.train_step, through ``rnnuniv.fused.run``
  fused-cuda  the same on the GPU (torch path of ``fused.run``), added when CUDA is present

Also prints the median over repeats, the ratio to the baseline, the load average (the machine may be
shared), the thread count and the fraction of the machine's measured float32 matmul FLOP/s achieved
(model matmul FLOPs, forward + backward). Prints only; never asserts timing.

Usage: python benchmarks/bench_train.py [--arch gru] [--hidden 64] [--networks 32] [--steps 50]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import time

import torch

from rnnuniv import fused, native, training
from rnnuniv.runtime import keep_freed_memory
from rnnuniv.cells import N_BLOCKS, make_cell
from rnnuniv.tasks import make_task

TORCH_MODULES = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM, "vanilla": torch.nn.RNN}


def matmul_flops_per_second(size: int = 2048, repeats: int = 5, device: str = "cpu") -> float:
    """Best-of-``repeats`` float32 FLOP/s of one ``size x size`` matmul: the device's ceiling."""
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    sync = torch.cuda.synchronize if device != "cpu" else (lambda: None)
    a @ b
    sync()
    best = min(_timed(lambda: (a @ b, sync())) for _ in range(repeats))
    return 2 * size**3 / best


def model_flops(arch: str, n: int, m: int, p: int, batch: int, n_steps: int) -> float:
    """Matmul FLOPs of one network-step, forward + backward (no gradient w.r.t. the inputs).

    Recurrent ``h @ U``: forward, ``dh`` and ``dU``, 3 x 2 B T n (G n); input ``x @ W``: forward and
    ``dW``, 2 x 2 B T m (G n); readout ``h @ w_out``: forward, ``dh``, ``dw_out``, 3 x 2 B T n p.
    """
    width = N_BLOCKS[arch] * n
    rows = batch * n_steps
    return 6 * rows * n * width + 4 * rows * m * width + 6 * rows * n * p


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


# -- (a) one network at a time with torch's modules ------------------------------------------------


def train_baseline(args, task, seeds: list[int]) -> None:
    """Train each network alone (torch.nn RNN module + linear readout + Adam), ``args.steps`` steps."""
    for seed in seeds:
        torch.manual_seed(seed)
        kwargs = {"nonlinearity": args.activation} if args.arch == "vanilla" else {}
        rnn = TORCH_MODULES[args.arch](task.n_inputs, args.hidden, batch_first=True, **kwargs)
        readout = torch.nn.Linear(args.hidden, task.n_outputs)
        parameters = list(rnn.parameters()) + list(readout.parameters())
        optimizer = torch.optim.Adam(parameters, lr=args.lr)
        generator = torch.Generator().manual_seed(seed + 1)
        for _ in range(args.steps):
            inputs, targets = task.sample(args.batch, generator)
            hidden, _ = rnn(inputs)
            loss = (readout(hidden) - targets).pow(2).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(parameters, 1.0)
            optimizer.step()


# -- (b), (c) the batched shard ---------------------------------------------------------------------


def _run_autograd(cell, params, inputs, state0=None):
    return cell.run(params, inputs, state0)


def _run_autograd_unbind(cell, params, inputs, state0=None):
    """``Cell.run`` with the drive split by ``unbind``: autograd's backward then stacks the per-step
    gradients once instead of scattering each into a zero tensor of the whole drive (O(T^2))."""
    batch, n_steps = inputs.shape[-3], inputs.shape[-2]
    drive = cell.input_drive(params, inputs.flatten(-3, -2)).unflatten(-2, (batch, n_steps))
    n = params["w_rec"].shape[-2]
    state = drive.new_zeros(*drive.shape[:-2], cell.state_size(n)) if state0 is None else state0
    states = []
    for drive_t in drive.unbind(-2):
        state = cell.recur(params, state, drive_t)
        states.append(state)
    return torch.stack(states, dim=-2)


@contextlib.contextmanager
def _trajectories_through(run):
    """Make ``training.per_network_loss`` compute states with ``run(cell, params, inputs)``."""
    original = training.per_network_loss

    def per_network_loss(cell, params, inputs, targets, n_hidden):
        states = run(cell, params, inputs)
        outputs = cell.readout(params, cell.hidden(states, n_hidden))
        return (outputs - targets).pow(2).flatten(1).mean(dim=1)

    training.per_network_loss = per_network_loss
    try:
        yield
    finally:
        training.per_network_loss = original


def train_batched(args, task, seeds: list[int], run, n_steps: int, device: str = "cpu") -> None:
    """``n_steps`` batched optimiser steps of the whole shard with ``training.train_step``."""
    cell = make_cell(args.arch, args.activation)
    config = training.TrainingConfig(n_steps=n_steps, batch_size=args.batch, checkpoint_every=0)
    state = training.init_state(cell, task, args.hidden, seeds, config, device)
    l2 = torch.zeros(len(seeds), device=device)
    learning_rate = torch.full((len(seeds),), args.lr, device=device)
    # The fused method is training's own loss; the others swap in their trajectory function.
    with _trajectories_through(run) if run is not fused.run else contextlib.nullcontext():
        for _ in range(n_steps):
            training.train_step(cell, task, state, l2, learning_rate, args.hidden, config)
    if device != "cpu":
        torch.cuda.synchronize()  # GPU kernels run asynchronously: time their completion


# -- driver -----------------------------------------------------------------------------------------


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="gru", choices=["vanilla", "gru", "lstm"])
    parser.add_argument("--activation", default="tanh", choices=["tanh", "relu"])
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--networks", type=int, default=32)
    parser.add_argument("--steps", type=int, default=50, help="optimiser steps per timed run")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--time-steps", type=int, default=100, help="T of the flip-flop trials")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument(
        "--baseline-networks", type=int, default=None,
        help="networks the baseline trains (its cost per network is independent of this; default all)",
    )
    parser.add_argument(
        "--autograd-steps", type=int, default=None,
        help="steps of the autograd method per run (it can be very slow; default --steps)",
    )
    parser.add_argument(
        "--methods", default="baseline,autograd,fused",
        help="comma-separated; fused-cuda is added whenever a CUDA device is present",
    )
    parser.add_argument(
        "--return-freed-memory", action="store_true",
        help="leave glibc's malloc defaults (scripts/train.py keeps freed memory for reuse)",
    )
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    # As scripts/train.py does; it applies to every method alike, the baseline included.
    allocator = "glibc defaults" if args.return_freed_memory else f"freed memory kept: {keep_freed_memory()}"
    task = make_task("flipflop", n_steps=args.time_steps)
    seeds = list(range(args.networks))
    peak = matmul_flops_per_second()
    flops = model_flops(args.arch, args.hidden, task.n_inputs, task.n_outputs, args.batch, args.time_steps)
    print(
        f"{args.arch}-{args.activation} hidden={args.hidden} networks={args.networks} batch={args.batch} "
        f"T={args.time_steps} steps={args.steps} | torch threads={torch.get_num_threads()} "
        f"| float32 matmul peak {peak / 1e9:.1f} GFLOP/s | model {flops / 1e6:.1f} MFLOP/network-step "
        f"| malloc: {allocator} | native kernels: {native.load() is not None}"
    )
    baseline_seeds = seeds[: args.baseline_networks or args.networks]
    autograd_steps = args.autograd_steps or args.steps
    methods = {
        "baseline": (lambda: train_baseline(args, task, baseline_seeds), len(baseline_seeds) * args.steps),
        "autograd": (
            lambda: train_batched(args, task, seeds, _run_autograd, autograd_steps),
            args.networks * autograd_steps,
        ),
        "autograd-unbind": (
            lambda: train_batched(args, task, seeds, _run_autograd_unbind, args.steps),
            args.networks * args.steps,
        ),
        "fused": (lambda: train_batched(args, task, seeds, fused.run, args.steps), args.networks * args.steps),
        "fused-cuda": (
            lambda: train_batched(args, task, seeds, fused.run, args.steps, "cuda"),
            args.networks * args.steps,
        ),
    }
    chosen = args.methods.split(",")
    if torch.cuda.is_available() and "fused-cuda" not in chosen:
        chosen.append("fused-cuda")  # the CUDA row, whenever there is a GPU
    # Warm-up (lazy initialisation, allocator) on a tiny run of each method, untimed.
    warm = argparse.Namespace(**{**vars(args), "steps": 1})
    for name in chosen:
        if name == "baseline":
            train_baseline(warm, task, seeds[:1])
        else:
            run = {"autograd": _run_autograd, "autograd-unbind": _run_autograd_unbind}.get(name, fused.run)
            train_batched(warm, task, seeds[:2], run, 1, "cuda" if name == "fused-cuda" else "cpu")
    # Repeats interleave the methods, so a change in the machine's load hits all of them alike.
    per_network_step = {name: [] for name in chosen}
    for repeat in range(args.repeats):
        for name in chosen:
            train, network_steps = methods[name]
            load = os.getloadavg()[0]
            seconds = _timed(train)
            per_network_step[name].append(seconds / network_steps)
            print(
                f"  {name:15s} repeat {repeat}: {seconds:8.2f} s total, "
                f"{per_network_step[name][-1] * 1e3:8.3f} ms/network-step ({network_steps} network-steps), "
                f"load {load:.2f} -> {os.getloadavg()[0]:.2f}",
                flush=True,
            )
    medians = {name: statistics.median(times) for name, times in per_network_step.items()}
    peaks = {name: peak for name in chosen}
    if "fused-cuda" in chosen:
        peaks["fused-cuda"] = matmul_flops_per_second(4096, device="cuda")
        print(f"  CUDA float32 matmul peak {peaks['fused-cuda'] / 1e9:.0f} GFLOP/s ({torch.cuda.get_device_name()})")
    print(f"medians over {args.repeats} repeats (load now {os.getloadavg()}):")
    for name in chosen:
        median = medians[name]
        ratio = f"{medians['baseline'] / median:6.2f}x vs baseline" if "baseline" in medians else ""
        print(
            f"  {name:15s} {median * 1e3:8.3f} ms/network-step  {ratio}  "
            f"{flops / median / peaks[name]:6.1%} of matmul peak"
        )


if __name__ == "__main__":
    main()
