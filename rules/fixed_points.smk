# Stage fixed-points: fixed points of every kept network at the task's conditions, linearised.
#   in:  results/{task}/shards/{shard}/weights.safetensors, results/{task}/networks.csv, results/{task}/states/{shard}.npz
#   out: results/{task}/fixed_points/{shard}.npz, results/{task}/fixed_points/{shard}.csv


rule fixed_points:
    input:
        weights="results/{task}/shards/{shard}/weights.safetensors",
        networks="results/{task}/networks.csv",
        states="results/{task}/states/{shard}.npz",
    output:
        npz="results/{task}/fixed_points/{shard}.npz",
        table="results/{task}/fixed_points/{shard}.csv",
    log:
        "logs/{task}/fixed_points/{shard}.log",
    benchmark:
        "benchmarks/results/{task}/fixed_points/{shard}.tsv"
    priority: PRIORITY_LONG
    conda:
        "../envs/rnnuniv.yaml"
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 8000 * 2 ** (attempt - 1),
        runtime=lambda wildcards, attempt: 720 * attempt,
    params:
        task_params=lambda wildcards: task_params(wildcards.task),
        options=lambda wildcards: fixed_point_options(wildcards.task),
        device=config.get("device", "auto"),
    shell:
        "python3 scripts/fixed_points.py --weights {input.weights:q}"
        " --networks {input.networks:q} --states {input.states:q}"
        " --task {wildcards.task:q} --task-params {params.task_params:q}"
        " --options {params.options:q} --device {params.device:q} --threads {threads}"
        " --output-npz {output.npz:q} --output-csv {output.table:q} > {log:q} 2>&1"
