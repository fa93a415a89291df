# Stage dynamics (beyond the paper): connectivity of the recurrent weights against the dynamics
# the kept networks run (participation ratios, Lyapunov spectrum), per shard and per task, with
# bootstrap intervals on the correlations and the best predictor of dimension per architecture.
#   in:  results/{task}/shards/{shard}/weights.safetensors, results/{task}/networks.csv, results/{task}/states/{shard}.npz
#   out: results/{task}/dynamics/{shard}.csv, results/{task}/dynamics/summary.csv,
#        results/{task}/dynamics/correlations.json


rule dynamics:
    input:
        weights="results/{task}/shards/{shard}/weights.safetensors",
        networks="results/{task}/networks.csv",
        states="results/{task}/states/{shard}.npz",
    output:
        "results/{task}/dynamics/{shard}.csv",
    log:
        "logs/{task}/dynamics/{shard}.log",
    benchmark:
        "benchmarks/results/{task}/dynamics/{shard}.tsv"
    conda:
        "../envs/rnnuniv.yaml"
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 3000 * 2 ** (attempt - 1),
        runtime=lambda wildcards, attempt: 60 * attempt,
    params:
        options=json.dumps(config.get("dynamics", {}), sort_keys=True),
        device=config.get("device", "auto"),
    shell:
        "python3 scripts/dynamics.py shard --weights {input.weights:q}"
        " --networks {input.networks:q} --states {input.states:q}"
        " --options {params.options:q} --device {params.device:q} --threads {threads}"
        " --output {output:q} > {log:q} 2>&1"


rule dynamics_table:
    input:
        # every shard of trained networks of the task
        tables=lambda wildcards: expand(
            "results/{task}/dynamics/{shard}.csv",
            task=wildcards.task,
            shard=trained_shards(wildcards.task),
        ),
    output:
        summary="results/{task}/dynamics/summary.csv",
        correlations="results/{task}/dynamics/correlations.json",
    log:
        "logs/{task}/dynamics/summary.log",
    benchmark:
        "benchmarks/results/{task}/dynamics/summary.tsv"
    conda:
        "../envs/rnnuniv.yaml"
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        options=json.dumps(config.get("dynamics", {}), sort_keys=True),
    shell:
        "python3 scripts/dynamics.py table --task {wildcards.task:q}"
        " --tables {input.tables:q} --options {params.options:q}"
        " --output-summary {output.summary:q}"
        " --output-correlations {output.correlations:q} > {log:q} 2>&1"
