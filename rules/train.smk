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
        mem_mb=lambda wildcards, attempt: 4000 * 2 ** (attempt - 1),
        runtime=lambda wildcards, attempt: 1440 * attempt,
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
