# Stage train: the population table, one batched training job per shard, the manifest.
#   in:  config (population, training, tasks)
#   out: results/{task}/population.csv, results/{task}/shards/{shard}/weights.safetensors,
#        results/{task}/shards/{shard}/train.json, results/{task}/networks.csv


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
        population=json.dumps(config["population"], sort_keys=True),
        study_seed=config.get("study_seed", 0),
    shell:
        "python3 scripts/population.py --task {wildcards.task:q}"
        " --population {params.population:q} --study-seed {params.study_seed}"
        " --output {output:q} > {log:q} 2>&1"


rule train:
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
                * ("untrained" not in wildcards.shard)
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
    shell:
        "python3 scripts/train.py --population {input.population:q}"
        " --shard {wildcards.shard:q} --task {wildcards.task:q}"
        " --task-params {params.task_params:q} --training {params.training:q}"
        " --device {params.device:q} --threads {threads}"
        " --checkpoint {params.checkpoint:q}"
        " --weights {output.weights:q} --records {output.records:q} > {log:q} 2>&1"


rule manifest:
    input:
        population="results/{task}/population.csv",
        records=_all_records,
    output:
        "results/{task}/networks.csv",
    log:
        "logs/{task}/manifest.log",
    benchmark:
        "benchmarks/results/{task}/manifest.tsv"
    conda:
        "../envs/rnnuniv.yaml"
    shell:
        "python3 scripts/manifest.py --population {input.population:q}"
        " --records {input.records:q} --output {output:q} > {log:q} 2>&1"
