"""Lyapunov spectra, participation ratio, effective rank, and the dynamics script, on known answers."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from rnnuniv import io
from rnnuniv.cells import make_cell, select, step_function
from rnnuniv.connectivity import best_predictors, connectivity_summary, correlation_records, spearman_interval
from rnnuniv.dynamics import (
    CONNECTIVITY_METRICS,
    candidate_block,
    connectivity_metrics,
    effective_rank,
    lyapunov_spectrum,
    network_lyapunov_spectra,
    numerical_rank,
    coupling_gain,
    participation_rank,
    participation_ratio,
    spectral_radius,
)

F64 = torch.float64
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "dynamics.py"


def linear_step(matrix: torch.Tensor, input_weights: torch.Tensor | None = None):
    """``h' = A h (+ B x)`` on row vectors ``[..., n]``."""

    def step(h, x):
        out = h @ matrix.T
        return out if input_weights is None else out + x @ input_weights.T

    return step


def rotation_scaling(radius: float, angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return radius * torch.tensor([[c, -s], [s, c]], dtype=F64)


# -- Lyapunov spectrum ------------------------------------------------------------------------
def test_diagonal_linear_map_exponents_are_log_abs_eigenvalues():
    a = torch.tensor([0.3, -1.5, 0.9, 1.1, -0.05], dtype=F64)
    exponents = lyapunov_spectrum(
        linear_step(torch.diag(a)),
        torch.zeros(5, dtype=F64),
        torch.zeros(1, dtype=F64),
        n_steps=300,
        n_warmup=100,
    )
    expected = a.abs().log().sort(descending=True).values
    torch.testing.assert_close(exponents, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("seed", [0, 1])
def test_symmetric_linear_map_and_top_k(seed):
    gen = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(6, 6, generator=gen, dtype=F64))
    a = torch.tensor([1.3, 0.2, -0.7, 0.95, -1.05, 0.5], dtype=F64)
    matrix = basis @ torch.diag(a) @ basis.T
    expected = a.abs().log().sort(descending=True).values
    h0 = torch.randn(6, dtype=F64, generator=gen)
    full = lyapunov_spectrum(linear_step(matrix), h0, torch.zeros(1, dtype=F64), n_steps=400, n_warmup=200)
    top3 = lyapunov_spectrum(
        linear_step(matrix), h0, torch.zeros(1, dtype=F64), n_exponents=3, n_steps=400, n_warmup=200
    )
    every3 = lyapunov_spectrum(
        linear_step(matrix), h0, torch.zeros(1, dtype=F64), n_steps=400, n_warmup=200, qr_every=3
    )
    torch.testing.assert_close(full, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(top3, expected[:3], atol=1e-6, rtol=0)
    torch.testing.assert_close(every3, expected, atol=1e-6, rtol=0)


def test_rotation_scaling_has_a_double_exponent():
    matrix = torch.block_diag(rotation_scaling(0.8, 0.7), torch.diag(torch.tensor([1.2, 0.5], dtype=F64)))
    exponents = lyapunov_spectrum(
        linear_step(matrix), torch.zeros(4, dtype=F64), torch.zeros(1, dtype=F64), n_steps=400, n_warmup=200
    )
    expected = torch.tensor([math.log(1.2), math.log(0.8), math.log(0.8), math.log(0.5)], dtype=F64)
    torch.testing.assert_close(exponents, expected, atol=1e-6, rtol=0)


def test_tanh_map_at_its_stable_points():
    # h* = tanh(2 h*), by Newton; the exponent is log |f'(h*)| = log(2 (1 - h*^2))
    fixed = 0.95
    for _ in range(50):
        fixed -= (fixed - math.tanh(2 * fixed)) / (1 - 2 * (1 - math.tanh(2 * fixed) ** 2))
    assert abs(fixed - 0.9575) < 1e-4
    h0 = torch.tensor([[0.9], [-0.9], [0.99]], dtype=F64)  # a batch of three trajectories
    exponents = lyapunov_spectrum(
        lambda h, x: torch.tanh(2 * h), h0, torch.zeros(1, dtype=F64), n_steps=200, n_warmup=50
    )
    assert exponents.shape == (3, 1)
    torch.testing.assert_close(
        exponents, torch.full((3, 1), math.log(2 * (1 - fixed**2)), dtype=F64), atol=1e-6, rtol=0
    )


def test_driven_linear_map_input_layouts_agree():
    """The Jacobian of ``A h + B x`` is ``A`` whatever the input: shared [T, m], per trial [K, T, m]."""
    gen = torch.Generator().manual_seed(3)
    matrix = torch.diag(torch.tensor([0.9, -0.4, 0.6], dtype=F64))
    step = linear_step(matrix, torch.randn(3, 2, generator=gen, dtype=F64))
    sequence = torch.randn(250, 2, generator=gen, dtype=F64)
    h0 = torch.zeros(4, 3, dtype=F64)
    shared = lyapunov_spectrum(step, h0, sequence, n_warmup=100)
    per_trial = lyapunov_spectrum(step, h0, sequence.expand(4, 250, 2), n_warmup=100)
    expected = torch.tensor([0.9, 0.6, 0.4], dtype=F64).log().expand(4, 3)
    torch.testing.assert_close(shared, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(per_trial, expected, atol=1e-6, rtol=0)


def test_singular_direction_gives_minus_infinity():
    exponents = lyapunov_spectrum(
        linear_step(torch.diag(torch.tensor([0.5, 0.0], dtype=F64))),
        torch.zeros(2, dtype=F64),
        torch.zeros(1, dtype=F64),
        n_steps=20,
        n_warmup=5,
    )
    assert exponents[0].item() == pytest.approx(math.log(0.5), abs=1e-9)
    assert exponents[1].item() == -math.inf


@pytest.mark.parametrize("architecture", ["vanilla", "ugrnn", "gru", "lstm"])
def test_batched_networks_equal_one_at_a_time(architecture):
    cell = make_cell(architecture, "tanh")
    params = {k: v.to(F64) for k, v in cell.init_params(2, 5, 1, seeds=[1, 2, 3]).items()}
    params["bias"] = params["bias"] + 0.1  # a non-trivial operating point
    gen = torch.Generator().manual_seed(0)
    inputs = torch.randn(2, 12, 2, generator=gen, dtype=F64)
    batched = network_lyapunov_spectra(cell, params, inputs, n_exponents=4, n_warmup=3)  # [N, K, k]
    size = cell.state_size(5)
    assert batched.shape == (3, 2, 4)
    for i in range(3):
        step = step_function(cell, select(params, i))
        for k in range(2):
            single = lyapunov_spectrum(
                step, torch.zeros(1, size, dtype=F64), inputs[k], n_exponents=4, n_warmup=3
            )
            torch.testing.assert_close(batched[i, k], single[0], atol=1e-10, rtol=0)
    # the sum of all exponents is the mean log |det J_t|, computed here from full Jacobians
    step = step_function(cell, select(params, 0))
    state, log_det = torch.zeros(1, size, dtype=F64), 0.0
    full = lyapunov_spectrum(step, state, inputs[0], n_warmup=3)
    for t in range(12):
        jacobian = torch.func.jacrev(lambda s: step(s, inputs[0, t]))(state)[0, :, 0, :]
        if t >= 3:
            log_det += torch.linalg.slogdet(jacobian).logabsdet.item()
        state = step(state, inputs[0, t])
    assert full.sum().item() == pytest.approx(log_det / 9, abs=1e-9)


def test_lyapunov_rejects_bad_arguments():
    step = linear_step(torch.eye(2, dtype=F64))
    h0 = torch.zeros(2, dtype=F64)
    with pytest.raises(ValueError, match="n_steps"):
        lyapunov_spectrum(step, h0, torch.zeros(1, dtype=F64))
    with pytest.raises(ValueError, match="n_exponents"):
        lyapunov_spectrum(step, h0, torch.zeros(1, dtype=F64), n_exponents=3, n_steps=5)
    with pytest.raises(ValueError, match="n_warmup"):
        lyapunov_spectrum(step, h0, torch.zeros(5, 1, dtype=F64), n_warmup=5)
    with pytest.raises(ValueError, match="exceeds"):
        lyapunov_spectrum(step, h0, torch.zeros(5, 1, dtype=F64), n_steps=6)


# -- participation ratio ----------------------------------------------------------------------
def test_participation_ratio_known_values():
    d = 7
    isotropic = torch.cat([torch.eye(d), -torch.eye(d)]) * 3.0  # covariance exactly proportional to I
    assert participation_ratio(isotropic).item() == pytest.approx(d, abs=1e-12)
    gen = torch.Generator().manual_seed(0)
    sampled = torch.randn(40000, d, generator=gen, dtype=F64)
    assert participation_ratio(sampled).item() == pytest.approx(d, rel=0.01)
    rank_one = torch.randn(200, 1, generator=gen, dtype=F64) * torch.randn(1, d, generator=gen, dtype=F64)
    assert participation_ratio(rank_one).item() == pytest.approx(1.0, abs=1e-9)
    # variances (3, 1) along two rotated axes: PR = 4^2 / (9 + 1) = 1.6
    basis, _ = torch.linalg.qr(torch.randn(2, 2, generator=gen, dtype=F64))
    two = torch.cat([torch.eye(2), -torch.eye(2)]) * torch.tensor([3.0, 1.0], dtype=F64).sqrt() @ basis.T
    assert participation_ratio(two).item() == pytest.approx(1.6, abs=1e-12)
    assert math.isnan(participation_ratio(torch.ones(5, 3)).item())


def test_participation_ratio_batched_and_flattened():
    gen = torch.Generator().manual_seed(1)
    states = (
        torch.randn(3, 4, 10, 6, generator=gen, dtype=F64)
        * torch.tensor([1.0, 2.0, 0.1], dtype=F64).view(3, 1, 1, 1)
        @ torch.randn(6, 6, generator=gen, dtype=F64)
    )
    batched = participation_ratio(states.numpy(), batch_dims=1)
    assert batched.shape == (3,)
    for i in range(3):
        assert batched[i].item() == pytest.approx(
            participation_ratio(states[i].reshape(40, 6)).item(), rel=1e-12
        )


def test_cross_block_participation_ratio_exact_case():
    # every block has covariance exactly diag(3, 1) (rotated): tr(C)^2 / tr(C_a C_b) = 16 / 10
    gen = torch.Generator().manual_seed(2)
    basis, _ = torch.linalg.qr(torch.randn(2, 2, generator=gen, dtype=F64))
    block = torch.cat([torch.eye(2), -torch.eye(2)]) * torch.tensor([4.5, 1.5], dtype=F64).sqrt() @ basis.T
    states = torch.cat([block, block[[2, 0, 3, 1]], block])  # 3 blocks of 4 samples
    assert participation_ratio(states, n_blocks=3).item() == pytest.approx(1.6, abs=1e-12)
    assert participation_ratio(states.expand(2, 12, 2), batch_dims=1, n_blocks=3).tolist() == pytest.approx([1.6, 1.6])


def test_cross_block_participation_ratio_removes_the_white_noise_bias():
    # N = 200 white-noise units, 8 blocks of 100 samples: the naive PR ~ N / (1 + N / T) = 0.8 N
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(800, 200, generator=gen, dtype=F64)
    assert participation_ratio(noise).item() / 200 == pytest.approx(0.80, abs=0.02)
    assert participation_ratio(noise, n_blocks=8).item() / 200 == pytest.approx(1.0, abs=0.05)
    # [K, T, n] states: blocks are runs of whole trials
    trials = noise.reshape(8, 100, 200)
    assert participation_ratio(trials, n_blocks=8).item() == participation_ratio(noise, n_blocks=8).item()
    with pytest.raises(ValueError, match="n_blocks"):
        participation_ratio(noise, n_blocks=1)
    assert math.isnan(participation_ratio(torch.ones(6, 3), n_blocks=2).item())


def test_participation_rank_known_values():
    assert participation_rank(torch.diag(torch.tensor([1.0, 1.0, 0.0, 0.0]))).item() == pytest.approx(2.0)
    gen = torch.Generator().manual_seed(0)
    basis, _ = torch.linalg.qr(torch.randn(5, 5, generator=gen, dtype=F64))
    assert participation_rank(basis).item() == pytest.approx(5.0, abs=1e-12)
    # singular values (2, 1): (4 + 1)^2 / (16 + 1); batched; zero matrix -> NaN
    ranks = participation_rank(torch.stack([torch.diag(torch.tensor([2.0, 1.0])), torch.zeros(2, 2)]))
    assert ranks[0].item() == pytest.approx(25 / 17) and math.isnan(ranks[1].item())
    assert coupling_gain(3.0 * basis).item() == pytest.approx(3.0)


# -- connectivity -----------------------------------------------------------------------------
def test_effective_rank_known_values():
    assert effective_rank(torch.eye(9)).item() == pytest.approx(9.0, abs=1e-9)
    gen = torch.Generator().manual_seed(0)
    basis, _ = torch.linalg.qr(torch.randn(5, 5, generator=gen, dtype=F64))
    assert effective_rank(2.5 * basis).item() == pytest.approx(5.0, abs=1e-9)
    rank_one = torch.outer(torch.randn(6, generator=gen, dtype=F64), torch.randn(4, generator=gen, dtype=F64))
    assert effective_rank(rank_one).item() == pytest.approx(1.0, abs=1e-6)
    assert effective_rank(torch.diag(torch.tensor([1.0, 1.0, 0.0]))).item() == pytest.approx(2.0, abs=1e-9)
    # singular values (3, 1): p = (3/4, 1/4), exp(H) = 4 / 3^(3/4)
    assert effective_rank(np.diag([3.0, 1.0])).item() == pytest.approx(4 / 3**0.75, abs=1e-12)
    batch = torch.stack([torch.eye(4), torch.diag(torch.tensor([1.0, 0, 0, 0]))])
    torch.testing.assert_close(effective_rank(batch), torch.tensor([4.0, 1.0], dtype=F64))


def test_numerical_rank_and_spectral_radius():
    gen = torch.Generator().manual_seed(2)
    low = torch.randn(8, 3, generator=gen, dtype=F64) @ torch.randn(3, 8, generator=gen, dtype=F64)
    assert numerical_rank(low).item() == 3
    assert numerical_rank(low.float()).item() == 3
    assert numerical_rank(torch.randn(2, 6, 6, generator=gen)).tolist() == [6, 6]
    assert spectral_radius(rotation_scaling(0.7, 1.1)).item() == pytest.approx(0.7, abs=1e-12)
    matrix = torch.block_diag(rotation_scaling(0.7, 1.1), torch.tensor([[-1.3]], dtype=F64))
    assert spectral_radius(matrix).item() == pytest.approx(1.3, abs=1e-12)


@pytest.mark.parametrize(("architecture", "block"), [("vanilla", 0), ("ugrnn", 1), ("gru", 2), ("lstm", 2)])
def test_candidate_block_and_connectivity_metrics(architecture, block):
    cell = make_cell(architecture, "tanh")
    params = cell.init_params(2, 4, 1, seeds=[0, 1])
    w_rec = params["w_rec"]  # [2, 4, G 4]
    expected = w_rec[..., 4 * block : 4 * (block + 1)]
    torch.testing.assert_close(candidate_block(w_rec, architecture), expected)
    # saturate the gates so the next state is the candidate alone, tanh(h @ U_c) (LSTM: the new
    # cell state from c = 0), and check the block against the cell's own step. Gate biases:
    # UGRNN g closed; GRU r open, z closed; LSTM i open, f closed, o open.
    n = 4
    gate_bias = {"vanilla": [0.0], "ugrnn": [-50.0, 0.0], "gru": [50.0, -50.0, 0.0]}
    gate_bias["lstm"] = [50.0, -50.0, 0.0, 50.0]
    driven = {
        **params,
        "w_in": torch.zeros_like(params["w_in"]),
        "bias": torch.tensor(gate_bias[architecture]).repeat_interleave(n).expand(2, -1),
    }
    h = torch.randn(2, 3, n, generator=torch.Generator().manual_seed(4))
    state = torch.cat([h, torch.zeros_like(h)], -1) if architecture == "lstm" else h
    candidate = cell.step(driven, state, torch.zeros(2))[..., -n:]
    torch.testing.assert_close(candidate, torch.tanh(h @ candidate_block(w_rec, architecture)))
    metrics = connectivity_metrics(w_rec, architecture)
    assert tuple(metrics) == CONNECTIVITY_METRICS
    assert all(v.shape == (2,) for v in metrics.values())
    torch.testing.assert_close(metrics["spectral_radius_candidate"], spectral_radius(expected))
    torch.testing.assert_close(metrics["effective_rank_w_rec"], effective_rank(w_rec))
    assert metrics["numerical_rank_w_rec"].tolist() == [4, 4]
    with pytest.raises(ValueError, match="w_rec"):
        candidate_block(w_rec[..., :-1], architecture)


# -- the script -------------------------------------------------------------------------------
def load_script():
    spec = importlib.util.spec_from_file_location("dynamics_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def fake_shard(directory: Path, architecture: str, shard: str) -> tuple[dict, dict, np.ndarray]:
    """Weights, networks.csv and states of a shard of 3 networks, of which 2 are kept."""
    cell = make_cell(architecture, "tanh")
    n_hidden, ids = 4, [f"{shard}-s{i}" for i in range(3)]
    params = cell.init_params(2, n_hidden, 1, seeds=[10, 11, 12])
    meta = {
        "shard": shard,
        "task": "fake",
        "architecture": architecture,
        "activation": "tanh",
        "n_hidden": n_hidden,
        "network_ids": ids,
    }
    io.save_weights(directory / f"{shard}.safetensors", params, meta)
    statuses = ["kept", "failed", "kept"]
    io.write_csv(
        directory / f"{shard}.csv",
        pd.DataFrame({"network_id": ids, "architecture": architecture, "activation": "tanh",
                      "n_hidden": n_hidden, "l2": 1e-4, "status": statuses, "shard": shard}),
    )
    gen = torch.Generator().manual_seed(5)
    inputs = torch.randn(6, 10, 2, generator=gen)  # [K, T, m]
    with torch.no_grad():
        states = cell.run(params, inputs)  # [N, K, T, S]
    arrays = {
        "network_ids": np.array(ids),
        "hidden": states[..., :n_hidden].numpy(),
        "inputs": inputs.numpy(),
    }
    if architecture == "lstm":
        arrays["cell"] = states[..., n_hidden:].numpy()
    io.save_npz(directory / f"{shard}.npz", **arrays)
    return params, meta, inputs.numpy()


def run_shard(script, directory: Path, shard: str, options: dict) -> pd.DataFrame:
    output = directory / "dynamics" / f"{shard}.csv"
    code = script.main(
        [
            "shard",
            "--weights",
            str(directory / f"{shard}.safetensors"),
            "--networks",
            str(directory / f"{shard}.csv"),
            "--states",
            str(directory / f"{shard}.npz"),
            "--options",
            json.dumps(options),
            "--device",
            "cpu",
            "--threads",
            "1",
            "--output",
            str(output),
        ]
    )
    assert code == 0
    return pd.read_csv(output)


def test_script_end_to_end(tmp_path):
    script = load_script()
    options = {"n_exponents": 3, "n_trials": 2, "warmup_fraction": 0.2, "pr_blocks": 2}
    params, meta, inputs = fake_shard(tmp_path, "lstm", "lstm-tanh-h4-000")
    table = run_shard(script, tmp_path, "lstm-tanh-h4-000", options)
    kept = [meta["network_ids"][0], meta["network_ids"][2]]
    assert table["network_id"].tolist() == kept
    assert (table["architecture"] == "lstm").all() and (table["n_hidden"] == 4).all()
    assert table["l2"].tolist() == [1e-4, 1e-4]
    assert [c for c in table.columns if c.startswith("lyapunov_")] == [
        "lyapunov_1",
        "lyapunov_2",
        "lyapunov_3",
    ]

    chosen = {k: v.to(F64) for k, v in select(params, torch.tensor([0, 2])).items()}
    cell = make_cell("lstm", "tanh")
    states = io.load_npz(tmp_path / "lstm-tanh-h4-000.npz")
    expected_pr = participation_ratio(states["hidden"][[0, 2]], batch_dims=1).numpy()
    np.testing.assert_allclose(table["participation_ratio"], expected_pr, rtol=1e-9)
    # 6 trials in 2 interleaved blocks: trials (0, 2, 4) and (1, 3, 5)
    expected_cross = participation_ratio(
        states["hidden"][[0, 2]][:, [0, 2, 4, 1, 3, 5]], batch_dims=1, n_blocks=2
    ).numpy()
    np.testing.assert_allclose(table["participation_ratio_cross"], expected_cross, rtol=1e-9)
    np.testing.assert_allclose(
        table["effective_rank_w_rec"], effective_rank(chosen["w_rec"]).numpy(), rtol=1e-6
    )
    trials = [0, 5]  # two trials spread over six: the first and the last
    spectra = network_lyapunov_spectra(
        cell, chosen, torch.as_tensor(inputs[trials], dtype=F64), n_exponents=3, n_warmup=2
    ).mean(dim=1)
    np.testing.assert_allclose(table[["lyapunov_1", "lyapunov_2", "lyapunov_3"]], spectra.numpy(), rtol=1e-9)
    assert (np.diff(table[["lyapunov_1", "lyapunov_2", "lyapunov_3"]].to_numpy(), axis=1) <= 0).all()

    fake_shard(tmp_path, "gru", "gru-tanh-h4-000")
    run_shard(script, tmp_path, "gru-tanh-h4-000", options)
    summary_path, correlations_path = tmp_path / "summary.csv", tmp_path / "correlations.json"
    code = script.main(
        [
            "table",
            "--task",
            "fake",
            "--tables",
            str(tmp_path / "dynamics" / "lstm-tanh-h4-000.csv"),
            str(tmp_path / "dynamics" / "gru-tanh-h4-000.csv"),
            "--output-summary",
            str(summary_path),
            "--output-correlations",
            str(correlations_path),
        ]
    )
    assert code == 0
    summary = pd.read_csv(summary_path)
    assert len(summary) == 4 and summary["architecture"].tolist() == ["lstm", "lstm", "gru", "gru"]
    result = json.loads(correlations_path.read_text())
    assert result["task"] == "fake" and result["n_networks"] == 4
    groups = {(c["architecture"], c["connectivity"], c["dynamics"]): c for c in result["correlations"]}
    assert set(a for a, _, _ in groups) == {"all", "gru", "lstm"}
    assert groups[("gru", "effective_rank_w_rec", "lyapunov_1")]["rho"] is None  # two networks
    overall = groups[("all", "effective_rank_w_rec", "participation_ratio")]
    assert overall["n"] == 4 and -1 <= overall["rho"] <= 1
    assert overall["ci_low"] is None and result["bootstrap"]["n_bootstrap"] == 1000  # 4 < MIN_BOOTSTRAP_N
    assert set(result["best_predictor"]) == {"all", "gru", "lstm"} and result["best_predictor"]["gru"] is None


def test_correlations_known_ranks():
    table = pd.DataFrame(
        {
            "architecture": ["gru"] * 4 + ["lstm"] * 4,
            "effective_rank_w_rec": [1.0, 2.0, 3.0, 4.0, 1.0, 2.0, 3.0, 4.0],
            "effective_rank_candidate": [1.0, 2.0, 3.0, 4.0, 4.0, 3.0, 2.0, 1.0],
            "participation_ratio": [1.1, 1.5, 2.0, 9.0, 5.0, 4.0, 3.0, np.nan],
            "lyapunov_1": [-0.1, -0.2, -0.3, -np.inf, 0.0, 0.1, 0.2, 0.3],
        }
    )
    records = correlation_records(table, n_bootstrap=200, seed=0,
                                  connectivity=("effective_rank_w_rec", "effective_rank_candidate"),
                                  dynamics=("participation_ratio", "lyapunov_1"))
    groups = {(c["architecture"], c["connectivity"], c["dynamics"]): c for c in records}
    gru = groups[("gru", "effective_rank_w_rec", "participation_ratio")]
    assert gru["rho"] == pytest.approx(1.0) and gru["ci_low"] is None  # too few networks for an interval
    assert groups[("gru", "effective_rank_w_rec", "lyapunov_1")]["rho"] == pytest.approx(
        -1.0
    )  # -inf ranks last
    lstm = groups[("lstm", "effective_rank_w_rec", "participation_ratio")]
    assert lstm["n"] == 3 and lstm["rho"] == pytest.approx(-1.0)  # the NaN row is left out
    assert groups[("lstm", "effective_rank_candidate", "lyapunov_1")]["rho"] == pytest.approx(-1.0)
    best = best_predictors(records, dynamics="participation_ratio")
    assert best["gru"]["connectivity"] == "effective_rank_w_rec" and not best["gru"]["clear"]
    # a monotone relation stays monotone in every resample with >= 2 distinct values
    monotone = spearman_interval(np.arange(8.0), np.arange(8.0) ** 3, n_bootstrap=200)
    assert monotone["ci_low"] == pytest.approx(1.0) and monotone["ci_high"] == pytest.approx(1.0)


def test_bootstrap_interval_covers_zero_for_independent_columns_and_is_seeded():
    gen = np.random.default_rng(0)
    x, y = gen.normal(size=40), gen.normal(size=40)
    result = spearman_interval(x, y, n_bootstrap=500, seed=1)
    assert result["ci_low"] < 0 < result["ci_high"] and result["ci_low"] < result["rho"] < result["ci_high"]
    assert spearman_interval(x, y, n_bootstrap=500, seed=1) == result
    strong = spearman_interval(x, x + 0.3 * y, n_bootstrap=500, seed=1)
    assert strong["ci_low"] > 0.7
    assert spearman_interval([1.0, 2.0], [2.0, 1.0])["rho"] is None
    assert spearman_interval([1.0, 1.0, 1.0], [1.0, 2.0, 3.0])["rho"] is None


def test_connectivity_summary_lines():
    records = [
        {"architecture": "gru", "connectivity": c, "dynamics": "participation_ratio_cross", "n": 10,
         "rho": rho, "p_value": 0.01, "ci_low": rho - 0.2, "ci_high": min(rho + 0.2, 1.0)}
        for c, rho in (("participation_rank_candidate", 0.8), ("effective_rank_w_rec", -0.1))
    ]
    table = pd.DataFrame({"kind": ["power"], "gain": [2.0], "rank": [10.0], "n": [100],
                          "dimension": [12.5], "lyapunov_max": [0.1], "mean_square": [1.5]})
    summary, lines = connectivity_summary({"flipflop": {"n_networks": 10, "correlations": records}}, table)
    best = summary["tasks"]["flipflop"]["best_predictor"]["gru"]
    assert best["connectivity"] == "participation_rank_candidate" and best["clear"]
    text = "\n".join(lines)
    assert "best predictor of dimension is participation_rank_candidate (rho 0.80, [0.60, 1.00]" in text
    assert "| gru (10) | 0.80 [0.60, 1.00] | -0.10 [-0.30, 0.10] |" in text
    assert "| power | 2 | 10.0 | 12.5 | 0.125 | 0.100 | 1.500 |" in text
    assert summary["random_mode"][0]["dimension"] == 12.5


def test_script_help_and_empty_shard(tmp_path):
    script = load_script()
    with pytest.raises(SystemExit) as exit_info:
        script.main(["--help"])
    assert exit_info.value.code == 0
    fake_shard(tmp_path, "vanilla", "vanilla-tanh-h4-000")
    networks = pd.read_csv(tmp_path / "vanilla-tanh-h4-000.csv")
    networks["status"] = "failed"
    io.write_csv(tmp_path / "vanilla-tanh-h4-000.csv", networks)
    table = run_shard(script, tmp_path, "vanilla-tanh-h4-000", {"n_exponents": 2})
    assert table.empty and "lyapunov_2" in table.columns and "participation_ratio" in table.columns
