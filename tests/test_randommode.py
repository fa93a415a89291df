"""The random-mode model against exact identities and the iid dynamic mean-field theory."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from rnnuniv.dynamics import participation_rank, spectral_radius
from rnnuniv.randommode import (
    KINDS,
    coupling,
    iid_coupling,
    largest_lyapunov,
    run_point,
    simulate,
    spectrum,
    step_function,
    tanh_jacobian_times,
)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("rank", [1.0, 1.7, 12.5, 63.0, 64.0])
def test_spectrum_has_the_asked_rank_and_gain(kind, rank):
    d = spectrum(kind, 64, 1.7, rank)
    assert d.shape == (64,) and (d >= 0).all()
    assert np.all(np.diff(d) <= 1e-15)
    assert participation_rank(torch.diag(torch.as_tensor(d))).item() == pytest.approx(rank, abs=1e-6)
    assert np.mean(d**2) == pytest.approx(1.7**2, rel=1e-12)


def test_spectrum_rejects_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        spectrum("lognormal", 10, 1.0, 2.0)
    with pytest.raises(ValueError, match="rank"):
        spectrum("power", 10, 1.0, 11.0)
    with pytest.raises(ValueError, match="rank"):
        spectrum("flat", 10, 1.0, 0.5)


@pytest.mark.parametrize("overlap", [0.0, 0.5, 1.0])
def test_coupling_variance_equals_mean_square_spectrum(overlap):
    d = spectrum("power", 50, 2.3, 7.0)
    j = coupling(50, d, seed=3, overlap=overlap)
    # orthonormal modes: sum_ij J_ij^2 = sum_i d_i^2 exactly
    assert 50 * j.pow(2).mean().item() == pytest.approx(np.mean(d**2), rel=1e-10)
    torch.testing.assert_close(torch.linalg.svdvals(j), torch.as_tensor(d), atol=1e-10, rtol=0)
    assert participation_rank(j).item() == pytest.approx(7.0, abs=1e-6)
    if overlap == 1.0:
        torch.testing.assert_close(j, j.T, atol=1e-10, rtol=0)
    assert torch.equal(j, coupling(50, d, seed=3, overlap=overlap))


def test_flat_spectrum_haar_modes_has_every_eigenvalue_on_the_circle():
    j = coupling(80, spectrum("flat", 80, 1.3, 80.0), seed=0)
    moduli = torch.linalg.eigvals(j).abs()
    torch.testing.assert_close(moduli, torch.full_like(moduli, 1.3), atol=1e-10, rtol=0)


def test_iid_coupling_variance():
    j = iid_coupling(400, 1.5, seed=1)
    assert 400 * j.pow(2).mean().item() == pytest.approx(1.5**2, rel=0.02)
    assert not torch.equal(j, iid_coupling(400, 1.5, seed=2))


# -- iid dynamic mean-field theory (N = 1000; times measured in the module docstring) ------------
@pytest.mark.parametrize("gain, expected", [(2.0, 1.9248), (3.0, 5.4463)])
def test_iid_flow_mean_square_matches_mean_field(gain, expected):
    states = simulate(iid_coupling(1000, gain, seed=0), 8000, kind="flow", dt=0.1, seed=0, n_warmup=1000)
    assert states.shape == (8000, 1000)
    assert states.pow(2).mean().item() == pytest.approx(expected, rel=0.03)


def test_iid_map_mean_square_and_lyapunov_match_mean_field():
    j = iid_coupling(1000, 3.0, seed=0)
    states = simulate(j, 2000, kind="map", seed=0, n_warmup=200)
    assert states.pow(2).mean().item() == pytest.approx(6.305, rel=0.03)
    assert largest_lyapunov(j, 800, kind="map", start=states[-1]) == pytest.approx(0.3103, abs=0.03)


def test_below_transition_activity_decays_and_exponent_is_log_spectral_radius():
    j = iid_coupling(200, 0.5, seed=4)
    states = simulate(j, 10, kind="map", seed=0, n_warmup=300)
    assert states.abs().max().item() < 1e-30
    flow = simulate(j, 10, kind="flow", dt=0.1, seed=0, n_warmup=2000)
    assert flow.abs().max().item() < 1e-10
    expected = math.log(spectral_radius(j).item())
    assert largest_lyapunov(j, 1500, kind="map", seed=0, n_warmup=50) == pytest.approx(expected, abs=0.02)


@pytest.mark.parametrize("kind", ["flow", "map"])
def test_tanh_jacobian_times_equals_the_autodiff_jacobian(kind):
    j = iid_coupling(30, 1.8, seed=2)
    gen = torch.Generator().manual_seed(1)
    x, frame = torch.randn(2, 30, generator=gen, dtype=torch.float64), torch.randn(2, 30, 3, generator=gen, dtype=torch.float64)
    step = step_function(j, kind, 0.1)
    full = torch.stack([torch.func.jacrev(step)(row) for row in x])  # [2, n, n]
    torch.testing.assert_close(tanh_jacobian_times(j, kind, 0.1)(x, None, frame), full @ frame, rtol=0, atol=1e-13)
    # the exponent with the closed form equals the one through a vmapped jvp (another phi object)
    start = simulate(j, 1, kind=kind, seed=0, n_warmup=300)[-1]
    closed = largest_lyapunov(j, 300, kind=kind, start=start)
    autodiff = largest_lyapunov(j, 300, kind=kind, start=start, phi=lambda v: torch.tanh(v))
    assert closed == pytest.approx(autodiff, abs=1e-12) and closed != 0.0


def test_run_point_reports_the_realised_coupling():
    row = run_point(100, 2.0, 10.0, spectrum_kind="exponential", n_steps=400, n_lyapunov_steps=100,
                    n_warmup=200, n_blocks=4, seed=0)
    assert row["participation_rank"] == pytest.approx(10.0, abs=1e-6)
    assert row["realised_gain"] == pytest.approx(2.0, rel=1e-10)
    assert 1.0 <= row["dimension_naive"] <= 100 and row["mean_square"] > 0
    assert math.isfinite(row["lyapunov_max"])


def test_script_writes_the_grid_table(tmp_path):
    import importlib.util
    from pathlib import Path

    import pandas as pd

    from rnnuniv.randommode import TABLE_COLUMNS

    path = Path(__file__).resolve().parents[1] / "scripts" / "random_mode.py"
    spec = importlib.util.spec_from_file_location("random_mode_script", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    options = {"n_units": 100, "gains": [0.5, 3.0], "rank_fractions": [0.1, 1.0], "spectra": ["flat"],
               "n_warmup": 300, "n_steps": 200, "n_lyapunov_steps": 400, "n_blocks": 4}
    output = tmp_path / "table.csv"
    assert script.main(["--options", json.dumps(options), "--output", str(output)]) == 0
    table = pd.read_csv(output)
    assert tuple(table.columns) == TABLE_COLUMNS and len(table) == 4
    assert table["rank"].tolist() == [10.0, 100.0, 10.0, 100.0]
    np.testing.assert_allclose(table["participation_rank"], table["rank"], atol=1e-6)
    low, high = table[table["gain"] == 0.5], table[table["gain"] == 3.0]
    assert low["settled"].all() and low["dimension"].isna().all() and (low["lyapunov_max"] < 0).all()
    assert (~high["settled"]).all() and (high["dimension"] >= 1).all()
    assert high["lyapunov_max"].iloc[-1] > 0  # full rank at g = 3: chaotic
    with pytest.raises(SystemExit, match="unknown"):
        script.main(["--options", json.dumps({"n_unit": 10}), "--output", str(output)])


def test_connectivity_panels_render(tmp_path):
    """figC1-figC3 from small tables, including a task without kept networks."""
    import pandas as pd

    from rnnuniv import plots
    from rnnuniv.figures import KINDS as PANEL_KINDS

    modes = pd.DataFrame([
        {"kind": "power", "n": 100, "gain": g, "rank": r, "dimension": np.nan if g < 1 else r / 5,
         "lyapunov_max": -0.5 if g < 1 else 0.1, "mean_square": 0.0 if g < 1 else 1.0, "settled": g < 1}
        for g in (0.5, 2.0) for r in (5.0, 100.0)
    ])
    modes.to_csv(tmp_path / "modes.csv", index=False)
    rows = [{"network_id": f"n{i}", "architecture": a, "n_hidden": 8, "participation_rank_candidate": 2.0 + i,
             "participation_ratio_cross": 1.0 + i / 2, "gain_candidate": 1.8, "lyapunov_1": -0.1 * i,
             "lyapunov_2": -0.3 - 0.1 * i} for i, a in enumerate(["vanilla", "gru", "gru"])]
    pd.DataFrame(rows).to_csv(tmp_path / "a.csv", index=False)
    pd.DataFrame(columns=list(rows[0])).to_csv(tmp_path / "b.csv", index=False)

    class Args:
        tasks = ["a", "b"]
        inputs = {"random_mode": str(tmp_path / "modes.csv"), "a_dynamics": str(tmp_path / "a.csv"),
                  "b_dynamics": str(tmp_path / "b.csv")}

    options = plots.setup_style({"dpi": 50})
    for kind in ("connectivity_dimension", "lyapunov_spectra", "random_mode_phase"):
        fig = PANEL_KINDS[kind].resolve()(Args, options)
        plots.save_panel(fig, tmp_path / f"{kind}.pdf", tmp_path / f"{kind}.png", dpi=50)
        assert (tmp_path / f"{kind}.png").stat().st_size > 1000
