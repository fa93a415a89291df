# Stage train: the population table, one batched training job per shard, the manifest.
#   in:  config (population, training, tasks, keep)
#   out: results/{task}/population.csv, results/{task}/shards/{shard}/weights.safetensors,
#        results/{task}/shards/{shard}/train.json, results/{task}/networks.csv
#
# Training writes facts (weights, losses, target variance); rule `manifest` applies the keep
# rule (keep.max_normalised_error) and writes the statuses every later stage reads. Changing the
# threshold reruns `manifest` and what reads networks.csv, never `train`.
#
# Bookkeeping values that change no weight (training.log_every, training.checkpoint_every) must
# not trigger a rerun. Snakemake 9 decides reruns from recorded metadata: the `code` trigger
# compares the rule's *unformatted* shell template (Persistence._code: `rule.shellcmd`), and the
# `params` trigger compares the repr of each non-derived param *of a builtin type* (int, str,
# list, dict, ...; pandas objects by hash); any other object is "unrepresentable" and skipped
# (Persistence._serialize_param_builtin, _params). So the bookkeeping options travel as a
# `BookkeepingOptions` param: formatted into the command line by str(), invisible to the
# params trigger, and lint-clean (a global in the shell template is not). The checkpoint
# fingerprint (rnnuniv.checkpoints.shard_fingerprint) leaves them out too.
# tests/test_faults.py::test_checkpoint_and_log_interval_changes_plan_nothing guards this.
# (BookkeepingOptions is defined in rules/common.smk.)


rule population:
    output:
        "results/{task}/population.csv",
    log:
        "logs/{task}/population.log",
    benchmark:
        "benchmarks/results/{task}/population.tsv"
    conda:
        "../envs/rnnuniv.yaml"
    params:
        population=lambda wildcards: json.dumps(
            population_config(wildcards.task), sort_keys=True
        ),
        study_seed=config.get("study_seed", 0),
    shell:
        "python3 scripts/population.py --task {wildcards.task:q}"
        " --population {params.population:q} --study-seed {params.study_seed}"
        " --output {output:q} > {log:q} 2>&1"


# a checkpoint: whether an oversampling shard is needed depends on the records of the shards
# before it (rules/common.smk: _oversampling_records)
checkpoint train:
    input:
        population="results/{task}/population.csv",
    output:
        weights="results/{task}/shards/{shard}/weights.safetensors",
        records="results/{task}/shards/{shard}/train.json",
    log:
        "logs/{task}/train/{shard}.log",
    benchmark:
        "benchmarks/results/{task}/train/{shard}.tsv"
    conda:
        "../envs/rnnuniv.yaml"
    threads: 1
    resources:
        # Peak: backward's activations (3 G + 9 widths of n per trial and step, +2 for the LSTM;
        # measured 17 for a sine GRU-256 shard: 6.0 GB for 10 networks) or validation's states
        # (S x validation_batch_size; 10.7 GB measured for 40), float32, x shard_size networks.
        mem_mb=lambda wildcards, attempt: attempt
        * int(
            2000
            + 4e-6
            * config["population"]["shard_size"]
            * json.loads(task_params(wildcards.task)).get("n_steps", 500)
            * int(wildcards.shard.split("-h")[1].split("-")[0])
            * max(
                (
                    3
                    * {"vanilla": 1, "ugrnn": 2, "gru": 3, "lstm": 4}[
                        wildcards.shard.split("-")[0]
                    ]
                    + 9
                    + 2 * ("lstm" in wildcards.shard)
                )
                * json.loads(training_config(wildcards.task))["batch_size"],
                (1 + ("lstm" in wildcards.shard))
                * json.loads(training_config(wildcards.task))["validation_batch_size"],
            )
        ),
        # Matmul FLOPs of the steps at 3e10 FLOP/s (half the measured sustained rate), capped at
        # 48 h per attempt: a retry resumes from the checkpoint.
        runtime=lambda wildcards, attempt: attempt
        * min(
            2880,
            30
            + int(
                6
                * json.loads(training_config(wildcards.task))["n_steps"]
                * json.loads(training_config(wildcards.task))["batch_size"]
                * config["population"]["shard_size"]
                * json.loads(task_params(wildcards.task)).get("n_steps", 500)
                * int(wildcards.shard.split("-h")[1].split("-")[0]) ** 2
                * {"vanilla": 1, "ugrnn": 2, "gru": 3, "lstm": 4}[
                    wildcards.shard.split("-")[0]
                ]
                / 3e10
                / 60
            ),
        ),
    params:
        task_params=lambda wildcards: task_params(wildcards.task),
        training=lambda wildcards: training_config(wildcards.task),
        device=config.get("device", "auto"),
        checkpoint="results/{task}/checkpoints/{shard}.safetensors",
        bookkeeping=BookkeepingOptions(
            log_every=config["training"].get("log_every", 10),
            checkpoint_every=config["training"].get("checkpoint_every", 200),
        ),
    shell:
        "python3 scripts/train.py --population {input.population:q}"
        " --shard {wildcards.shard:q} --task {wildcards.task:q}"
        " --task-params {params.task_params:q} --training {params.training:q}"
        " {params.bookkeeping}"
        " --device {params.device:q} --threads {threads}"
        " --checkpoint {params.checkpoint:q}"
        " --weights {output.weights:q} --records {output.records:q} > {log:q} 2>&1"


# a checkpoint: example figure panels choose their shards from networks.csv (rules/figures.smk)
checkpoint manifest:
    input:
        population="results/{task}/population.csv",
        records=_base_records,
        # last: a checkpoint-dependent input function (Snakemake keeps the incomplete flag of the
        # last input function only)
        oversampling_records=_oversampling_records,
    output:
        "results/{task}/networks.csv",
    log:
        "logs/{task}/manifest.log",
    benchmark:
        "benchmarks/results/{task}/manifest.tsv"
    conda:
        "../envs/rnnuniv.yaml"
    params:
        max_normalised_error=lambda wildcards: keep_rule(wildcards.task)[
            "max_normalised_error"
        ],
        max_kept_per_group=config["population"]["n_seeds"],
    shell:
        "python3 scripts/manifest.py --population {input.population:q}"
        " --records {input.records:q} {input.oversampling_records:q}"
        " --max-normalised-error {params.max_normalised_error}"
        " --max-kept-per-group {params.max_kept_per_group}"
        " --output {output:q} > {log:q} 2>&1"
