"""Batched shard training: learning, divergence isolation, determinism, exact resumption."""

import pytest
import torch

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from rnnuniv.cells import make_cell
from rnnuniv.networks import keep_status, normalised_error
from rnnuniv.population import build_population, format_float, needed_shards, network_id, shards
from rnnuniv.tasks import make_task
from rnnuniv.training import TrainingConfig, target_variance, train_shard, validation_trials

ROOT = Path(__file__).resolve().parent.parent

SEEDS = [11, 12, 13, 14]


def _train(arch="vanilla", lrs=(0.02,) * 4, n_steps=250, activation="tanh", **kwargs):
    task = make_task("flipflop", n_steps=30)
    config = TrainingConfig(n_steps=n_steps, batch_size=32, lr_decay_steps=500, checkpoint_every=0)
    return train_shard(
        make_cell(arch, activation), task, 16, SEEDS, [1e-5] * 4, list(lrs), config, progress=False, **kwargs
    )


def test_shard_of_four_learns_the_flip_flop():
    _, records = _train()
    errors = normalised_error([r["validation_loss"] for r in records], [r["target_variance"] for r in records])
    assert (errors <= 0.05).all(), errors
    assert all("status" not in r for r in records), "training decides nothing"
    assert all(r["loss_curve"][0] > 5 * r["loss_curve"][-1] for r in records)


def test_diverging_network_is_recorded_and_does_not_disturb_the_others():
    lrs = [0.02, 0.02, 1e6, 0.02]
    params, records = _train(lrs=lrs, n_steps=40, activation="relu")
    reference, _ = _train(lrs=[0.02] * 4, n_steps=40, activation="relu")
    assert records[2]["diverged_step"] is not None and records[2]["diverged_step"] >= 0
    for i in (0, 1, 3):
        assert records[i]["diverged_step"] is None
        for key in params:
            torch.testing.assert_close(params[key][i], reference[key][i], atol=1e-5, rtol=1e-4)


def test_same_seeds_give_bit_identical_weights():
    a, _ = _train(arch="gru", n_steps=20)
    b, _ = _train(arch="gru", n_steps=20)
    for key in a:
        assert torch.equal(a[key], b[key])


def test_killed_run_resumes_from_checkpoint_to_identical_weights(tmp_path):
    checkpoint = tmp_path / "shard.safetensors"
    task = make_task("flipflop", n_steps=20)
    config = TrainingConfig(n_steps=30, batch_size=16, checkpoint_every=10)
    cell = make_cell("lstm", "tanh")
    args = (cell, task, 8, SEEDS, [1e-4] * 4, [0.01] * 4, config)
    uninterrupted, records = train_shard(*args, progress=False)
    train_shard(*args, checkpoint=checkpoint, progress=False, stop_after=17)
    assert checkpoint.exists()
    resumed, resumed_records = train_shard(*args, checkpoint=checkpoint, progress=False)
    for key in uninterrupted:
        assert torch.equal(uninterrupted[key], resumed[key]), key
    assert resumed_records[0]["loss_curve"] == records[0]["loss_curve"]


def test_untrained_networks_keep_their_initial_weights():
    cell = make_cell("gru", "relu")
    params, records = train_shard(
        cell,
        make_task("cdi", n_steps=10),
        8,
        SEEDS,
        [0.0] * 4,
        [0.01] * 4,
        TrainingConfig(n_steps=0),
        progress=False,
    )
    init = cell.init_params(4, 8, 1, SEEDS)
    assert all(r["steps_completed"] == 0 and r["diverged_step"] is None for r in records)
    assert torch.equal(params["w_rec"], init["w_rec"])


def test_shard_job_trains_its_networks_and_initialises_their_twins(tmp_path):
    """scripts/train.py on a shard of trained networks and their untrained twins: the trained
    networks get exactly the weights of training them alone (the twins do not enter their batch),
    each twin gets its trained twin's initial weights, and the records follow the shard's rows."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import train as train_script

    population = {"architectures": ["vanilla"], "activations": ["tanh"], "hidden_sizes": [8], "l2": [1e-4],
                  "learning_rates": [0.01], "n_seeds": 3, "shard_size": 3, "include_untrained": True}
    table = build_population("flipflop", population, study_seed=0)
    assert table["shard"].nunique() == 1 and (~table["trained"]).sum() == 3
    table.to_csv(tmp_path / "population.csv", index=False)
    training = {"n_steps": 6, "batch_size": 8, "validation_batch_size": 16, "checkpoint_every": 0}
    argv = ["--population", str(tmp_path / "population.csv"), "--shard", "vanilla-tanh-h8-000",
            "--task", "flipflop", "--task-params", json.dumps({"n_steps": 10}), "--training",
            json.dumps(training), "--device", "cpu", "--no-progress",
            "--weights", str(tmp_path / "w.safetensors"), "--records", str(tmp_path / "r.json")]
    assert train_script.main(argv) == 0
    from rnnuniv.io import load_weights

    params, meta = load_weights(tmp_path / "w.safetensors")
    assert meta["network_ids"] == table["network_id"].tolist()
    records = json.loads((tmp_path / "r.json").read_text())["networks"]
    assert [r["network_id"] for r in records] == meta["network_ids"]
    assert [r["steps_completed"] for r in records] == [6, 6, 6, 0, 0, 0]
    trained = table[table["trained"]]
    cell, task = make_cell("vanilla", "tanh"), make_task("flipflop", n_steps=10)
    alone, _ = train_shard(cell, task, 8, trained["seed"].tolist(), trained["l2"].tolist(),
                           trained["learning_rate"].tolist(), TrainingConfig(**training), progress=False)
    init = cell.init_params(task.n_inputs, 8, task.n_outputs, trained["seed"].tolist())
    for key in alone:
        assert torch.equal(params[key][:3], alone[key]), key
        assert torch.equal(params[key][3:], init[key]), key
    assert not torch.equal(params["w_rec"][:3], params["w_rec"][3:])


def test_population_ids_seeds_and_shards():
    population = {
        "architectures": ["gru", "lstm"],
        "activations": ["tanh", "relu"],
        "hidden_sizes": [64],
        "l2": [1e-4, 1e-3],
        "learning_rates": [0.01],
        "n_seeds": 3,
        "shard_size": 4,
        "include_untrained": True,
    }
    table = build_population("flipflop", population, study_seed=0)
    assert len(table) == 2 * 2 * 2 * 3 * 2
    assert network_id("gru", "tanh", 64, 1e-4, 7) == "gru-tanh-h64-l2_1e-4-s07"
    assert format_float(2.5e-3) == "2.5e-3" and format_float(0) == "0"
    for shard, group in table.groupby("shard"):
        assert group["trained"].sum() <= 4
        assert group[["architecture", "activation", "n_hidden"]].nunique().max() == 1
    # every twin shares its trained twin's shard (one job trains the one and initialises the other)
    twins = table[~table["trained"]].assign(trained_id=lambda t: t["network_id"].str.removesuffix("-untrained"))
    twin_shards = twins.merge(table, left_on="trained_id", right_on="network_id", suffixes=("", "_trained"))
    assert len(twin_shards) == len(twins) and (twin_shards["shard"] == twin_shards["shard_trained"]).all()
    assert table["shard"].nunique() == 2 * 2 * 2  # 6 seeds per (arch, act): 2 shards of 4 trained
    twin = table.set_index("network_id")
    assert twin.loc["gru-tanh-h64-l2_1e-4-s00", "seed"] == twin.loc["gru-tanh-h64-l2_1e-4-s00-untrained", "seed"]
    again = build_population("flipflop", {**population, "architectures": ["lstm"]}, study_seed=0)
    merged = again.merge(table, on="network_id")
    assert (merged["seed_x"] == merged["seed_y"]).all()
    assert table["seed"].nunique() == len(table) // 2


def test_checkpoint_written_under_another_config_is_not_resumed(tmp_path, caplog):
    """A checkpoint records its fingerprint; a changed weight-affecting setting (here the learning
    rate decay) or seed starts the shard afresh, and the log names what differs. Bookkeeping
    settings (checkpoint interval) are not part of the fingerprint."""
    checkpoint = tmp_path / "shard.safetensors"
    task = make_task("flipflop", n_steps=10)
    cell = make_cell("vanilla", "tanh")
    config = TrainingConfig(n_steps=12, batch_size=8, checkpoint_every=4)
    args = (cell, task, 8, SEEDS, [1e-4] * 4, [0.01] * 4)
    fresh, _ = train_shard(*args, config, progress=False)
    train_shard(*args, config, checkpoint=checkpoint, progress=False, stop_after=5)
    # the checkpoint interval does not matter: resumed, and identical to the fresh run
    with caplog.at_level(logging.INFO):
        resumed, records = train_shard(
            *args, TrainingConfig(n_steps=12, batch_size=8, checkpoint_every=3), checkpoint=checkpoint,
            progress=False, stop_after=1,
        )  # fmt: skip
    assert records[0]["steps_completed"] == 6 and "afresh" not in caplog.text
    other = TrainingConfig(n_steps=12, batch_size=8, checkpoint_every=4, lr_decay_rate=0.9)
    reference, _ = train_shard(*args, other, progress=False)
    with caplog.at_level(logging.WARNING):
        changed, records = train_shard(*args, other, checkpoint=checkpoint, progress=False)
    assert "afresh" in caplog.text and "training.lr_decay_rate" in caplog.text
    assert records[0]["steps_completed"] == 12
    for key in reference:
        assert torch.equal(reference[key], changed[key]), key
    caplog.clear()
    train_shard(*args, other, checkpoint=checkpoint, progress=False, stop_after=3)
    seeds = [21, 12, 13, 14]
    with caplog.at_level(logging.WARNING):
        train_shard(cell, task, 8, seeds, [1e-4] * 4, [0.01] * 4, other, checkpoint=checkpoint, progress=False)
    assert "afresh" in caplog.text and "seeds" in caplog.text


def test_grand_mean_output_scores_exactly_one_and_target_output_zero():
    """normalised error = MSE / Var(target); the grand mean of the target scores 1 exactly."""
    for name in ("flipflop", "sine", "cdi"):
        task = make_task(name)
        _, targets = validation_trials(task, [5, 6], 64)
        variance = target_variance(targets)
        mean = targets.double().flatten(1).mean(1).view(-1, 1, 1, 1)
        mse = (mean - targets.double()).pow(2).flatten(1).mean(1)
        np.testing.assert_allclose(normalised_error(mse, variance), 1.0, rtol=1e-12)
        assert (normalised_error(torch.zeros(2), variance) == 0).all()


def test_keep_rule_statuses():
    table = pd.DataFrame({
        "trained": [True, True, True, True, False],
        "validation_loss": [0.01, 0.2, np.nan, 0.01, 0.9],
        "target_variance": [0.5, 0.5, 0.5, 0.5, 0.5],
        "diverged_step": [np.nan, np.nan, np.nan, 7, np.nan],
    })  # fmt: skip
    out = keep_status(table, max_normalised_error=0.05)
    assert out["status"].tolist() == ["kept", "above-threshold", "diverged", "diverged", "untrained"]
    np.testing.assert_allclose(out["normalised_error"][:2], [0.02, 0.4])
    assert keep_status(table, 0.5)["status"][1] == "kept"


def test_cap_makes_kept_networks_beyond_the_first_by_seed_surplus():
    """Two combinations; the cap of 2 binds in the first only, by seed index, not by error."""
    table = pd.DataFrame({
        "architecture": ["lstm"] * 6 + ["gru"] * 2,
        "activation": ["relu"] * 8,
        "n_hidden": [64] * 8,
        "l2": [1e-5] * 8,
        "learning_rate": [0.0015] * 8,
        "seed_index": [5, 0, 1, 3, 2, 4, 0, 1],
        "trained": [True] * 8,
        "validation_loss": [0.001, 0.04, 0.2, 0.02, 0.01, 0.001, 0.01, 0.01],
        "target_variance": [1.0] * 8,
        "diverged_step": [np.nan, np.nan, np.nan, np.nan, 12, np.nan, np.nan, np.nan],
    })  # fmt: skip
    out = keep_status(table, 0.05, max_kept_per_group=2)
    # lstm kept by seed: 0, 3, 4, 5 (1 is above threshold, 2 diverged): 0 and 3 stay kept
    assert out["status"].tolist() == [
        "surplus", "kept", "above-threshold", "kept", "diverged", "surplus", "kept", "kept"
    ]
    assert keep_status(table, 0.05, max_kept_per_group=8)["status"].tolist() == keep_status(table, 0.05)["status"].tolist()
    with pytest.raises(ValueError, match="max_kept_per_group"):
        keep_status(table, 0.05, max_kept_per_group=0)


def test_validation_loss_in_chunks_equals_one_pass():
    """Chunked validation (memory bound) gives the one-pass mean over trials, time and outputs."""
    from rnnuniv import training
    from rnnuniv.cells import make_cell
    from rnnuniv.tasks import make_task

    cell, task = make_cell("gru", "tanh"), make_task("flipflop", n_steps=12)
    seeds = [3, 4, 5]
    params = training.init_state(cell, task, 6, seeds, training.TrainingConfig(), "cpu").params
    inputs, targets = training.validation_trials(task, seeds, 150, "cpu")
    with torch.no_grad():
        one_pass = training.per_network_loss(cell, params, inputs, targets, 6)
    chunked, variance = training.validation_loss(cell, task, params, seeds, 6, 150)
    assert training.VALIDATION_CHUNK < 150
    torch.testing.assert_close(chunked, one_pass, rtol=1e-6, atol=0)
    torch.testing.assert_close(variance, training.target_variance(targets))


def test_non_finite_step_rolls_back_to_the_weights_before_the_update_and_halves_the_rate():
    """A network whose weights went non-finite returns exactly to its weights and optimiser state
    before its last update, its learning rate halves and it skips the step; the others step on.
    After max_rollbacks it is recorded as diverged."""
    from rnnuniv import training

    task = make_task("flipflop", n_steps=10)
    cell = make_cell("vanilla", "tanh")
    config = TrainingConfig(n_steps=10, batch_size=8, checkpoint_every=0, max_rollbacks=2)
    state = training.init_state(cell, task, 6, SEEDS, config)
    l2, lr = torch.full((4,), 1e-5), torch.full((4,), 0.01)
    training.train_step(cell, task, state, l2, lr, 6, config)
    before_update = {k: v.clone() for k, v in state.previous["param"].items()}
    moment_before = {k: v.clone() for k, v in state.previous["m"].items()}
    state.params["w_rec"][1, 0, 0] = float("inf")  # a runaway update of network 1
    others = {k: v[[0, 2, 3]].clone() for k, v in state.params.items()}
    training.train_step(cell, task, state, l2, lr, 6, config)
    for k in state.params:
        assert torch.equal(state.params[k][1], before_update[k][1]), k
        assert not torch.equal(state.params[k][[0, 2, 3]], others[k]), k  # the others stepped
    b1 = config.adam_betas[0]  # the skipped step decays m with a zero gradient
    assert torch.allclose(state.moments["m"]["w_rec"][1], b1 * moment_before["w_rec"][1])
    assert state.lr_scale.tolist() == [1.0, 0.5, 1.0, 1.0] and state.rollbacks.tolist() == [0, 1, 0, 0]
    assert state.alive.all()
    for step in range(2):  # two more runaways: the second exceeds max_rollbacks = 2
        state.params["w_rec"][1, 0, 0] = float("nan")
        training.train_step(cell, task, state, l2, lr, 6, config)
    assert state.rollbacks[1] == 2 and state.diverged_step.tolist() == [-1, 3, -1, -1]


def test_without_rollbacks_a_non_finite_step_freezes_the_network():
    lrs = [0.02, 0.02, 1e6, 0.02]
    task = make_task("flipflop", n_steps=30)
    config = TrainingConfig(n_steps=40, batch_size=32, lr_decay_steps=500, checkpoint_every=0, max_rollbacks=0)
    _, records = train_shard(make_cell("vanilla", "relu"), task, 16, SEEDS, [1e-5] * 4, lrs, config, progress=False)
    _, rescued = _train(lrs=lrs, n_steps=40, activation="relu")
    assert records[2]["n_rollbacks"] == 0 and records[2]["diverged_step"] is not None
    assert rescued[2]["n_rollbacks"] == 3 and rescued[2]["diverged_step"] > records[2]["diverged_step"]
    assert [r["n_rollbacks"] for r in rescued] == [0, 0, 3, 0]


def test_reference_width_scales_the_learning_rate_by_reference_over_width():
    population = {"architectures": ["gru"], "activations": ["tanh"], "hidden_sizes": [32, 64, 128],
                  "l2": [1e-5], "learning_rates": [0.003], "n_seeds": 2, "shard_size": 2}  # fmt: skip
    plain = build_population("sine", population, study_seed=0)
    assert (plain["learning_rate"] == 0.003).all()
    scaled = build_population("sine", {**population, "lr_reference_width": 32}, study_seed=0)
    rates = scaled.groupby("n_hidden")["learning_rate"].unique()
    assert {n: list(r) for n, r in rates.items()} == {32: [0.003], 64: [0.0015], 128: [0.00075]}
    assert (scaled["network_id"] == plain["network_id"]).all() and (scaled["seed"] == plain["seed"]).all()


def test_diverged_network_leaves_the_batched_computation(monkeypatch):
    """After network 2 diverges, the forward pass runs the 3 live networks only; their weights
    match a run in which nothing is removed (the shard of the same 4 seeds at a sane rate for
    network 2 would differ, so the reference is the survivors trained with network 2 present)."""
    import rnnuniv.training as training

    sizes = []
    real = training.per_network_loss

    def counting(cell, params, inputs, targets, n_hidden):
        if torch.is_grad_enabled():  # training steps, not the final validation
            sizes.append(inputs.shape[0])
        return real(cell, params, inputs, targets, n_hidden)

    monkeypatch.setattr(training, "per_network_loss", counting)
    lrs = [0.02, 0.02, 1e6, 0.02]
    params, records = _train(lrs=lrs, n_steps=40, activation="relu")
    step = records[2]["diverged_step"]
    assert step is not None and 0 <= step < 39
    assert sizes[: step + 1] == [4] * (step + 1), "everyone is computed until the divergence"
    assert set(sizes[step + 1 :]) == {3}, "the diverged network is not computed afterwards"
    curve_steps = np.array(records[2]["loss_curve_steps"])
    assert np.isnan(np.array(records[2]["loss_curve"])[curve_steps > step + 1]).all()
    assert all(np.isfinite(records[i]["loss_curve"]).all() for i in (0, 1, 3))


def test_shard_whose_networks_all_diverged_stops_early():
    _, records = _train(lrs=[1e6] * 4, n_steps=200, activation="relu")
    assert all(r["diverged_step"] is not None for r in records)
    last = max(r["diverged_step"] for r in records)
    assert all(r["steps_completed"] == last + 1 < 200 for r in records)


def test_oversampled_group_adds_seeds_without_twins_and_keeps_the_others():
    population = {
        "architectures": ["gru", "lstm"],
        "activations": ["tanh", "relu"],
        "hidden_sizes": [16],
        "l2": [1e-5],
        "learning_rates": [0.01],
        "n_seeds": 3,
        "shard_size": 2,
        "include_untrained": True,
    }
    plain = build_population("sine", population, study_seed=0)
    oversample = {"lstm-relu": {"n_seeds": 10, "shard_size": 4}}
    table = build_population("sine", {**population, "oversample": oversample}, study_seed=0)
    group = table[(table["architecture"] == "lstm") & (table["activation"] == "relu")]
    trained, twins = group[group["trained"]], group[~group["trained"]]
    assert list(trained["seed_index"]) == list(range(10))
    assert list(twins["seed_index"]) == [0, 1, 2], "the untrained baseline stays n_seeds"
    assert trained.groupby("shard").size().tolist() == [4, 4, 2]
    assert set(twins["shard"]) == {"lstm-relu-h16-000"}, "twins share their trained twins' shard"
    others = table[~table.index.isin(group.index)]
    plain_others = plain[~((plain["architecture"] == "lstm") & (plain["activation"] == "relu"))]
    pd.testing.assert_frame_equal(others.reset_index(drop=True), plain_others.reset_index(drop=True))
    shared = trained.merge(plain, on="network_id", suffixes=("", "_plain"))
    assert len(shared) == 3 and (shared["seed"] == shared["seed_plain"]).all()
    absent = build_population("sine", {**population, "oversample": {"vanilla-relu": {"n_seeds": 9}}}, 0)
    pd.testing.assert_frame_equal(absent, plain)  # a group this population lacks: nothing to do
    with pytest.raises(ValueError, match="not of the form"):
        build_population("sine", {**population, "oversample": {"lstmrelu": {"n_seeds": 9}}}, 0)
    with pytest.raises(ValueError, match="fewer than"):
        build_population("sine", {**population, "oversample": {"gru-tanh": {"n_seeds": 2}}}, 0)


def _oversampled_population(l2=(1e-5,)):
    population = {
        "architectures": ["gru", "lstm"],
        "activations": ["relu"],
        "hidden_sizes": [16],
        "l2": list(l2),
        "learning_rates": [0.01],
        "n_seeds": 3,
        "shard_size": 3,
        "include_untrained": True,
    }
    oversample = {"lstm-relu": {"n_seeds": 12, "shard_size": 4}}
    return build_population("sine", {**population, "oversample": oversample}, study_seed=0)


@pytest.mark.parametrize(
    "passing, expected_extra",
    [
        (range(12), []),  # the first shard passes 4 >= 3: no more shards
        ({0, 5}, ["lstm-relu-h16-001", "lstm-relu-h16-002"]),  # 1, then 2, then 2 + 0 < 3: all shards
        ({1, 4, 6, 9}, ["lstm-relu-h16-001"]),  # 1, then 3: stop after the second shard
        (set(), ["lstm-relu-h16-001", "lstm-relu-h16-002"]),
    ],
)
def test_oversampling_shards_train_in_seed_order_until_n_seeds_pass(passing, expected_extra):
    table = _oversampled_population()
    lstm = table[(table["architecture"] == "lstm") & table["trained"]]
    passing_ids = set(lstm.loc[lstm["seed_index"].isin(passing), "network_id"])
    asked = []

    def passed(shard):
        asked.append(shard)
        return passing_ids & set(table.loc[table["shard"] == shard, "network_id"])

    needed = needed_shards(table, 3, passed)
    base = ["gru-relu-h16-000", "lstm-relu-h16-000"]
    assert needed == [s for s in shards(table) if s in base + expected_extra]
    # each shard is asked about once, in seed order, and only to decide the shard after it
    assert asked == ["lstm-relu-h16-000", *expected_extra[:1]]
    assert needed_shards(table, 12, passed) == shards(table)  # n_seeds seeds: every shard is base


def test_oversampling_counts_passing_networks_per_hyperparameter_combination():
    # two l2 values: the shards hold 12 seeds of the first, then 12 of the second (shard_size 4)
    table = _oversampled_population(l2=(1e-5, 1e-4))
    lstm = table[(table["architecture"] == "lstm") & table["trained"]]
    assert lstm["shard"].nunique() == 6
    # every seed of the first l2 passes, none of the second: the second l2's base shard (seeds 0-3)
    # is needed, and its oversampling shards too, as that combination never reaches 3
    passing_ids = set(lstm.loc[lstm["l2"] == 1e-5, "network_id"])
    needed = needed_shards(table, 3, lambda shard: passing_ids & set(table.loc[table["shard"] == shard, "network_id"]))
    lstm_needed = [s for s in needed if s.startswith("lstm-relu-h16-0")]
    assert lstm_needed == ["lstm-relu-h16-000", "lstm-relu-h16-003", "lstm-relu-h16-004", "lstm-relu-h16-005"]


def test_manifest_marks_networks_of_unneeded_shards_and_refuses_missing_needed_records(tmp_path):
    sys.path.insert(0, str(ROOT / "scripts"))
    import manifest

    table = _oversampled_population()
    table.to_csv(tmp_path / "population.csv", index=False)
    paths = []
    for shard, rows in table.groupby("shard", sort=False):
        records = [
            {"network_id": r.network_id, "validation_loss": 0.01 if r.seed_index in (0, 1, 5) else 1.0,
             "target_variance": 0.5, "final_train_loss": 0.01, "diverged_step": None, "n_rollbacks": 0,
             "steps_completed": 10, "shard_wall_time_s": 1.0}
            for r in rows.itertuples()
        ]
        (tmp_path / f"{shard}.json").write_text(json.dumps({"networks": records}))
        paths.append(tmp_path / f"{shard}.json")
    needed = [p for p in paths if p.stem != "lstm-relu-h16-002"]  # 2 pass in 000, 1 in 001: 3
    args = ["--population", str(tmp_path / "population.csv"), "--max-normalised-error", "0.05",
            "--max-kept-per-group", "3", "--output", str(tmp_path / "networks.csv"), "--records"]
    assert manifest.main(args + [str(p) for p in needed]) == 0
    networks = pd.read_csv(tmp_path / "networks.csv")
    status = networks.set_index("network_id")["status"]
    unneeded = table.loc[table["shard"] == "lstm-relu-h16-002", "network_id"]
    assert (status[unneeded] == "not-needed").all()
    assert (status.drop(unneeded) != "not-needed").all()
    kept = networks[(networks["status"] == "kept") & (networks["architecture"] == "lstm")]
    assert sorted(kept["seed_index"]) == [0, 1, 5]
    assert ",0.0," not in (tmp_path / "networks.csv").read_text(), "counts stay integers"
    # the same records with the threshold tightened so that 001 decides nothing yet: 002 is needed
    with pytest.raises(SystemExit, match="no training record"):
        manifest.main(args[:3] + ["0.015"] + args[4:] + [str(p) for p in needed])


def _merged_over_default(path):
    """A config as Snakemake builds it from `--configfile path`: merged key by key over config.yaml."""

    def update(base, extra):
        for key, value in extra.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                update(base[key], value)
            else:
                base[key] = value
        return base

    default = yaml.safe_load((ROOT / "config.yaml").read_text())
    return update(default, yaml.safe_load((ROOT / path).read_text()))


@pytest.mark.parametrize("path", ["config.yaml", "configs/medium.yaml", "configs/paper.yaml"])
def test_shipped_configs_build_their_populations_with_the_oversampling_they_state(path):
    config = _merged_over_default(path)
    for task, task_config in config["tasks"].items():
        oversample = task_config.get("oversample", {})
        table = build_population(task, {**config["population"], "oversample": oversample}, 0)
        trained = table[table["trained"]]
        size = trained.groupby(["architecture", "activation"]).size()
        combinations = len(config["population"]["hidden_sizes"]) * len(config["population"]["l2"])
        combinations *= len(config["population"]["learning_rates"])
        for (architecture, activation), count in size.items():
            entry = oversample.get(f"{architecture}-{activation}", {})
            assert count == combinations * entry.get("n_seeds", config["population"]["n_seeds"])
    if path == "configs/paper.yaml":  # the paper's populations are not oversampled
        sine = config["tasks"]["sine"]["oversample"]
        assert all(entry["n_seeds"] == config["population"]["n_seeds"] for entry in sine.values())
