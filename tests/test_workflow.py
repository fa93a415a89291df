"""The Snakemake workflow end to end on the tiny config, incrementality, and config validation."""

import pandas as pd
import yaml

from conftest import TINY_CONFIG, copy_workflow, run_snakemake


def test_tiny_workflow_trains_every_network(tiny_workflow):
    config = yaml.safe_load(TINY_CONFIG.read_text())
    for task in config["tasks"]:
        table = pd.read_csv(tiny_workflow / "results" / task / "networks.csv")
        trained = table[table["trained"]]
        oversampled = config["tasks"][task].get("oversample", {})
        extra = sum(entry["n_seeds"] - config["population"]["n_seeds"] for entry in oversampled.values())
        assert len(trained) == 4 + extra
        assert (~table["trained"]).sum() == 4, "oversampled seeds get no untrained twin"
        assert set(table["status"]) <= {"kept", "surplus", "above-threshold", "diverged", "untrained", "not-needed"}
        population = pd.read_csv(tiny_workflow / "results" / task / "population.csv")
        assert list(table.columns[: len(population.columns)]) == list(population.columns)
        error = table["validation_loss"] / table["target_variance"]
        assert (table["normalised_error"] - error).abs().max() < 1e-9
        keep = config["tasks"][task].get("keep", config["keep"])["max_normalised_error"]
        done = table["trained"] & table["diverged_step"].isna()
        passed = table["status"].isin(["kept", "surplus"])
        assert (passed == (done & (table["normalised_error"] <= keep))).all()
        kept_per_group = table[table["status"] == "kept"].groupby(["architecture", "activation"]).size()
        assert (kept_per_group <= config["population"]["n_seeds"]).all()
        assert (table.loc[~table["trained"], "status"] == "untrained").all()
        unneeded = table.groupby("shard")["status"].apply(lambda status: (status == "not-needed").all())
        for shard in table["shard"].unique():
            weights = tiny_workflow / "results" / task / "shards" / shard / "weights.safetensors"
            assert not weights.exists() if unneeded[shard] else weights.stat().st_size > 0
            log = tiny_workflow / "logs" / task / "train" / f"{shard}.log"
            if unneeded[shard]:
                assert not log.exists(), f"{shard} was trained, though not needed"
                # never trained: earlier seeds of its group had passed n_seeds networks
                first = table[table["shard"] == shard].iloc[0]
                group = table[(table["architecture"] == first["architecture"])
                              & (table["activation"] == first["activation"])
                              & table["trained"] & (table["status"] != "not-needed")]
                assert group["status"].isin(["kept", "surplus"]).sum() >= config["population"]["n_seeds"]
                continue
            assert "slurm_job_id=" in log.read_text()


def test_second_run_does_nothing(tiny_workflow):
    result = run_snakemake(tiny_workflow, "-n", "--cores", "2", "--configfile", "tests/data/tiny.yaml")
    assert result.returncode == 0, result.stderr
    assert "Nothing to be done" in result.stdout + result.stderr


def _bad_config_message(tmp_path, edit):
    workdir = copy_workflow(tmp_path / "wf")
    config = yaml.safe_load(TINY_CONFIG.read_text())
    edit(config)
    (workdir / "bad.yaml").write_text(yaml.safe_dump(config))
    result = run_snakemake(workdir, "-n", "--cores", "1", "--configfile", "bad.yaml", timeout=120)
    assert result.returncode != 0
    assert not (workdir / "results").exists()
    return result.stdout + result.stderr


def test_unknown_architecture_is_named(tmp_path):
    message = _bad_config_message(tmp_path, lambda c: c["population"]["architectures"].append("elman"))
    assert "'elman' is not one of" in message and "architectures" in message


def test_unknown_key_and_impossible_value_are_named(tmp_path):
    def edit(config):
        config["population"]["n_seedz"] = 3

    assert "n_seedz" in _bad_config_message(tmp_path, edit)

    def edit_flip(config):
        config["tasks"]["flipflop"]["params"]["p_flip"] = 1.5

    message = _bad_config_message(tmp_path / "2", edit_flip)
    assert "p_flip" in message and "1.5" in message


def test_replaced_loss_threshold_names_the_new_key(tmp_path):
    def edit(config):
        config["training"]["loss_threshold"] = 0.05

    message = _bad_config_message(tmp_path, edit)
    assert "training.loss_threshold" in message and "keep.max_normalised_error" in message


def test_unregistered_metric_is_named(tmp_path):
    message = _bad_config_message(tmp_path, lambda c: c["similarity"]["extra_metrics"].append("cosine"))
    assert "'cosine'" in message and "EXTRA_METRICS" in message
