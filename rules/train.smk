# Stage train: the population table, one batched training job per shard, the manifest.
#   in:  config (population, training, tasks, keep)
#   out: results/{task}/population.csv, results/{task}/shards/{shard}/weights.safetensors,
#        results/{task}/shards/{shard}/train.json, results/{task}/networks.csv
#
# Training writes facts (weights, losses, target variance); rule `manifest` applies the keep
# rule (keep.max_normalised_error) and writes the statuses every later stage reads. Changing the
# threshold reruns `manifest` and what reads networks.csv, never `train`.
#
# Bookkeeping values that change no weight (training.log_every, training.checkpoint_every) are
# not in the train rule's `params`: they enter the command line through the module-level
# constants below, formatted into the shell template. Snakemake 9 decides reruns from the
# recorded metadata: the `params` trigger compares the serialised values of the job's
# (non-derived) params, and the `code` trigger compares the rule's *unformatted* shell template
# (`rule.shellcmd`, see snakemake/persistence Persistence._code). A value formatted in from
# a global changes neither, so changing it plans no train job; the checkpoint fingerprint
# (rnnuniv.training.shard_fingerprint) leaves them out too.
LOG_EVERY = config["training"].get("log_every", 10)
CHECKPOINT_EVERY = config["training"].get("checkpoint_every", 200)


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
        mem_mb=2000,
        runtime=120,
    params:
        task_params=lambda wildcards: task_params(wildcards.task),
        training=lambda wildcards: training_config(wildcards.task),
        device=config.get("device", "auto"),
        checkpoint="results/{task}/checkpoints/{shard}.safetensors",
    shell:
        "python3 scripts/train.py --population {input.population:q}"
        " --shard {wildcards.shard:q} --task {wildcards.task:q}"
        " --task-params {params.task_params:q} --training {params.training:q}"
        " --log-every {LOG_EVERY} --checkpoint-every {CHECKPOINT_EVERY}"
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
    params:
        max_normalised_error=lambda wildcards: keep_rule(wildcards.task)[
            "max_normalised_error"
        ],
    shell:
        "python3 scripts/manifest.py --population {input.population:q}"
        " --records {input.records:q}"
        " --max-normalised-error {params.max_normalised_error}"
        " --output {output:q} > {log:q} 2>&1"
