# Stage extract-states: hidden states of the kept and untrained networks on the shared probe set.
#   in:  results/{task}/shards/{shard}/weights.safetensors, results/{task}/networks.csv
#   out: results/{task}/states/{shard}.npz


rule extract_states:
    input:
        weights="results/{task}/shards/{shard}/weights.safetensors",
        networks="results/{task}/networks.csv",
    output:
        "results/{task}/states/{shard}.npz",
    log:
        "logs/{task}/states/{shard}.log",
    benchmark:
        "benchmarks/results/{task}/states/{shard}.tsv"
    # Scheduling (rules/common.smk, PRIORITY_*): cheap, and every later per-shard job waits for it.
    priority: PRIORITY_STATES
    conda:
        "../envs/rnnuniv.yaml"
    threads: 1
    resources:
        mem_mb=lambda wildcards, attempt: 8000 * 2 ** (attempt - 1),
        runtime=lambda wildcards, attempt: 30 * attempt,
    params:
        task_params=lambda wildcards: task_params(wildcards.task),
        device=config.get("device", "auto"),
    shell:
        "python3 scripts/extract_states.py --weights {input.weights:q}"
        " --networks {input.networks:q}"
        " --task {wildcards.task:q} --task-params {params.task_params:q}"
        " --device {params.device:q} --threads {threads} --output {output:q} > {log:q} 2>&1"
