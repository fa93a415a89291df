"""Benchmark: rnnuniv.fixedpoints against an Adam-only FixedPointFinder-style baseline.

On one trained GRU and one trained LSTM (64 units, 3-bit flip-flop, trained here with a short plain
torch loop) and the same 1024 initial states, compare in one run:

(a) baseline: Adam only, with FixedPointFinder's published defaults (Golub & Sussillo 2018):
    joint optimisation of mean q, Adam epsilon 0.01, initial learning rate 1.0 adapted as in its
    AdaptiveLearningRate (x0.95 when the loss rose above all of the last 5 values, x1/0.95 after 5
    monotone decreases, at most one change per 5 steps, floor 1e-3), stop when every point has
    q < tol_q = 1e-12 or |dq| < 1e-20 * lr, at most 5000 iterations. Run in float64 like (b).
(b) find_fixed_points (Adam warm start + batched damped Newton in float64), on the same weights as
    an rnnuniv cell, with the cell's analytic Jacobians, as the fixed-points stage runs it.

Prints wall time (median over repeats), the ratio, unique fixed points (q <= 1e-12, FixedPointFinder
de-duplication at 1e-3 and distance-outlier rule for both) and the largest q.

Then the time of one whole shard as the workflow's fixed-points stage processes it: a shard of
``--shard-networks`` networks of each kind trained together by rnnuniv.training, probe trajectories,
and rnnuniv.fixedpoints.shard_fixed_points at every flip-flop condition. Usage:

    python benchmarks/bench_fixed_points.py [--repeats 3] [--baseline-repeats 1] [--n-inits 1024]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

import torch

from rnnuniv import fused, training
from rnnuniv.cells import Cell, make_cell
from rnnuniv.fixedpoints import (
    _select_points,
    find_fixed_points,
    sample_initial_states,
    shard_fixed_points,
    summarize,
)
from rnnuniv.tasks import make_task

TOL_Q = 1e-12


def flipflop_batch(batch: int, n_steps: int, gen: torch.Generator, p_flip: float = 0.05):
    """3-bit flip-flop: inputs are sparse +/-1 pulses, targets hold the last pulse per channel."""
    pulses = torch.rand(batch, n_steps, 3, generator=gen) < p_flip
    signs = torch.where(torch.rand(batch, n_steps, 3, generator=gen) < 0.5, -1.0, 1.0)
    inputs = pulses * signs
    held, targets = torch.zeros(batch, 3), []
    for t in range(n_steps):
        held = torch.where(pulses[:, t], signs[:, t], held)
        targets.append(held)
    return inputs, torch.stack(targets, 1)


def train(kind: str, n_hidden: int, steps: int, seed: int = 0) -> tuple[torch.nn.Module, float]:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    rnn = (torch.nn.GRU if kind == "gru" else torch.nn.LSTM)(3, n_hidden, batch_first=True)
    readout = torch.nn.Linear(n_hidden, 3)
    opt = torch.optim.Adam([*rnn.parameters(), *readout.parameters()], lr=1e-2)
    for _ in range(steps):
        inputs, targets = flipflop_batch(64, 60, gen)
        out, _ = rnn(inputs)
        loss = (readout(out) - targets).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return rnn, float(loss.detach())


def step_function(rnn: torch.nn.Module, kind: str):
    """step(h, x) of the trained network in float64 (torch.nn.GRU / LSTM equations, one layer)."""
    w_ih = rnn.weight_ih_l0.detach().double()
    w_hh = rnn.weight_hh_l0.detach().double()
    b_ih = rnn.bias_ih_l0.detach().double()
    b_hh = rnn.bias_hh_l0.detach().double()
    n = w_hh.shape[1]

    def gru(h, x):
        gi = x @ w_ih.T + b_ih
        gh = h @ w_hh.T + b_hh
        r = torch.sigmoid(gi[..., :n] + gh[..., :n])
        z = torch.sigmoid(gi[..., n : 2 * n] + gh[..., n : 2 * n])
        c = torch.tanh(gi[..., 2 * n :] + r * gh[..., 2 * n :])
        return (1 - z) * c + z * h

    def lstm(state, x):
        h, c = state[..., :n], state[..., n:]
        g = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
        i, f = torch.sigmoid(g[..., :n]), torch.sigmoid(g[..., n : 2 * n])
        cell, o = torch.tanh(g[..., 2 * n : 3 * n]), torch.sigmoid(g[..., 3 * n :])
        c_next = f * c + i * cell
        return torch.cat([o * torch.tanh(c_next), c_next], -1)

    return gru if kind == "gru" else lstm


def project_cell(rnn: torch.nn.Module, kind: str) -> tuple[Cell, dict[str, torch.Tensor]]:
    """The trained torch module as an rnnuniv cell with float64 row-vector parameters."""
    w_ih, w_hh = rnn.weight_ih_l0.detach().double(), rnn.weight_hh_l0.detach().double()
    b_ih, b_hh = rnn.bias_ih_l0.detach().double(), rnn.bias_hh_l0.detach().double()
    n = w_hh.shape[1]
    params = {"w_in": w_ih.T.contiguous(), "w_rec": w_hh.T.contiguous(), "bias": b_ih + b_hh}
    if kind == "gru":  # torch keeps the candidate's recurrent bias inside the reset gate
        params["bias"] = b_ih + torch.cat([b_hh[: 2 * n], torch.zeros_like(b_hh[2 * n :])])
        params["bias_rec"] = b_hh[2 * n :]
    return make_cell(kind, "tanh"), params


def time_shard(kind: str, n_networks: int, n_hidden: int, n_inits: int, train_steps: int) -> None:
    """Train a shard with rnnuniv.training, then time shard_fixed_points on it (all conditions)."""
    task = make_task("flipflop")
    cell = make_cell(kind, "tanh")
    config = training.TrainingConfig(n_steps=train_steps, checkpoint_every=0)
    seeds = list(range(n_networks))
    params, records = training.train_shard(
        cell, task, n_hidden, seeds, [0.0] * n_networks, [1e-2] * n_networks, config, progress=False
    )
    kept = sum(r["validation_loss"] <= 0.05 * r["target_variance"] for r in records)  # keep rule
    probe = task.probe()
    with torch.no_grad():
        trajectories = fused.run(cell, params, probe.inputs)
    params64 = {k: v.double() for k, v in params.items()}
    conditions = task.fixed_point_conditions()
    t0 = time.perf_counter()
    _, table = shard_fixed_points(cell, params64, trajectories, conditions, n_hidden, n_inits=n_inits)
    seconds = time.perf_counter() - t0
    print(f"whole shard ({kind}, {n_networks} networks x {len(conditions)} condition, {n_inits} initial "
          f"states each; {kept} kept after {train_steps} training steps): {seconds:.2f} s, "
          f"{seconds / n_networks:.2f} s per network; stable fixed points per network "
          f"{table['n_stable'].tolist()}")


def probe_states(rnn: torch.nn.Module, kind: str, seed: int = 1) -> torch.Tensor:
    inputs, _ = flipflop_batch(128, 100, torch.Generator().manual_seed(seed))
    with torch.no_grad():
        out, _ = rnn(inputs)
        if kind == "gru":
            return out.double()
        # LSTM state is [h, c]: rerun step by step for c
        step = step_function(rnn, kind)
        n = rnn.hidden_size
        state, states = torch.zeros(128, 2 * n, dtype=torch.float64), []
        for t in range(inputs.shape[1]):
            state = step(state, inputs[:, t].double())
            states.append(state)
        return torch.stack(states, 1)


def baseline_adam(step, x: torch.Tensor, h0: torch.Tensor, max_iters: int = 5000):
    """FixedPointFinder's joint Adam optimisation with its default hyperparameters."""
    h = h0.clone().requires_grad_(True)
    opt = torch.optim.Adam([h], lr=1.0, eps=0.01)
    lr, last_change, losses = 1.0, 0, []
    q_prev = None
    xs = x.expand(h0.shape[0], -1)
    for it in range(max_iters):
        q = 0.5 * (step(h, xs) - h).pow(2).sum(-1)
        loss = q.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss))
        qd = q.detach()
        if q_prev is not None and bool(((qd - q_prev).abs() < 1e-20 * lr).logical_or(qd < TOL_Q).all()):
            break
        q_prev = qd
        if it - last_change >= 5 and len(losses) > 5:
            window = losses[-6:]
            if all(window[-1] > v for v in window[:-1]):
                lr, last_change = max(lr * 0.95, 1e-3), it
            elif all(b < a for a, b in zip(window[:-1], window[1:])):
                lr, last_change = lr / 0.95, it
            opt.param_groups[0]["lr"] = lr
    with torch.no_grad():
        q = 0.5 * (step(h, xs) - h).pow(2).sum(-1)
    return h.detach(), q, it + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="repeats of the new finder")
    parser.add_argument("--baseline-repeats", type=int, default=1, help="repeats of the baseline")
    parser.add_argument("--train-steps", type=int, default=400)
    parser.add_argument("--n-hidden", type=int, default=64)
    parser.add_argument("--n-inits", type=int, default=1024)
    parser.add_argument("--shard-networks", type=int, default=8, help="0 skips the whole-shard timing")
    parser.add_argument("--shard-train-steps", type=int, default=500)
    parser.add_argument(
        "--autodiff-jacobians", action="store_true",
        help="(b) differentiates the step with torch.func instead of the cell's analytic Jacobians",
    )
    args = parser.parse_args()

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, load {os.getloadavg()}")
    # warm up lazy imports (torch.func) so they are not billed to the first timed run
    find_fixed_points(lambda h, x: torch.tanh(2 * h), None, torch.randn(8, 1, dtype=torch.float64))

    for kind in ("gru", "lstm"):
        t0 = time.perf_counter()
        rnn, loss = train(kind, args.n_hidden, args.train_steps)
        print(f"\n== {kind.upper()} {args.n_hidden} units: trained {args.train_steps} steps "
              f"in {time.perf_counter() - t0:.1f}s, final MSE {loss:.4f}")
        step = step_function(rnn, kind)
        cell, params = project_cell(rnn, kind)
        trajectories = probe_states(rnn, kind)
        gen = torch.Generator().manual_seed(0)
        h0 = sample_initial_states(trajectories, args.n_inits, 0.5, generator=gen)
        x = torch.zeros(3, dtype=torch.float64)
        same = torch.allclose(cell.step(params, h0, x.expand(len(h0), -1)), step(h0, x.expand(len(h0), -1)))
        assert same, "the rnnuniv cell must be the same map as the baseline's step"

        times_a = []
        for _ in range(args.baseline_repeats):
            t0 = time.perf_counter()
            h_a, q_a, iters_a = baseline_adam(step, x, h0)
            times_a.append(time.perf_counter() - t0)
        keep_a = _select_points(h0, h_a, x.expand(len(h0), -1), q_a, 1e-3, 10.0, None)
        fixed_a = h_a[keep_a][q_a[keep_a] <= TOL_Q]

        times_b = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            result = find_fixed_points(
                lambda h, u: cell.step(params, h, u), x, h0,
                jacobian=None if args.autodiff_jacobians else lambda h, u: cell.jacobian(params, h, u),
            )
            times_b.append(time.perf_counter() - t0)
        fixed_b = result.points[result.is_fixed]

        ta, tb = statistics.median(times_a), statistics.median(times_b)
        matched = (
            int((torch.cdist(fixed_a, fixed_b).min(1).values < 1e-3).sum())
            if len(fixed_a) and len(fixed_b) else 0
        )  # fmt: skip
        print(f"(a) Adam baseline : {ta:8.2f} s  ({iters_a} iters)  unique fixed points "
              f"{len(fixed_a):4d}  max q (all states) {float(q_a.max()):.2e}  "
              f"states with q<=1e-12: {int((q_a <= TOL_Q).sum())}/{len(q_a)}")
        print(f"(b) this finder   : {tb:8.2f} s  unique fixed points {len(fixed_b):4d}  "
              f"max q (fixed) {float(result.q[result.is_fixed].max()) if len(fixed_b) else math.nan:.2e}  "
              f"max q (reported) {float(result.q.max()) if len(result) else math.nan:.2e}")
        print(f"speed-up (a)/(b): {ta / tb:.1f}x;  baseline fixed points also found by (b): "
              f"{matched}/{len(fixed_a)};  times (b) {[round(t, 2) for t in times_b]}")
        print(f"summary (b): {summarize(result)}")
        print(f"load {os.getloadavg()}")
        if args.shard_networks:
            time_shard(kind, args.shard_networks, args.n_hidden, args.n_inits, args.shard_train_steps)


if __name__ == "__main__":
    main()
