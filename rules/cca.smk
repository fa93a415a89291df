# Stage CCA-matrix, in two steps:
#   similarity_features (per shard): the per-network part of every metric (SVD of the centred
#     probe states, DSA eigenvalues), computed once and stored.
#   Metrics and their options: rnnuniv.similarity.registry (EXTRA_METRICS).
#     in:  results/{task}/states/{shard}.npz
#     out: results/{task}/similarity/{shard}.npz
#   cca_matrix (per task): the pairwise part, streamed from the features in bounded memory; one
#     pass gives SVCCA (the paper's matrix), its untrained-twin version, the supplementary
#     metrics and the SVCCA sensitivity to the number of components.
#     in:  results/{task}/similarity/*.npz, results/{task}/networks.csv
#     out: results/{task}/cca/distance.npy + index.csv, cca/untrained/..., cca/{metric}/... for
#          metric in extra_metrics, cca/sensitivity/k{k}/... for k in sensitivity_components
# Resources from benchmarks/bench_similarity_memory.py (paper sizes, see its header).


rule similarity_features:
    input:
        "results/{task}/states/{shard}.npz",
    output:
        "results/{task}/similarity/{shard}.npz",
    log:
        "logs/{task}/similarity/{shard}.log",
    benchmark:
        "benchmarks/results/{task}/similarity/{shard}.tsv"
    priority: PRIORITY_FEATURES
    conda:
        "../envs/rnnuniv.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        width=similarity_width(),
        options=metric_arguments("feature_options"),
        device=config.get("device", "auto"),
    shell:
        "python3 scripts/similarity_features.py --states {input:q} --width {params.width}"
        " {params.options} --device {params.device:q} --threads {threads}"
        " --output {output:q} > {log:q} 2>&1"


rule cca_matrix:
    input:
        features=lambda wildcards: all_similarity_features(wildcards.task),
        networks="results/{task}/networks.csv",
    output:
        distance="results/{task}/cca/distance.npy",
        index="results/{task}/cca/index.csv",
        untrained="results/{task}/cca/untrained/distance.npy",
        untrained_index="results/{task}/cca/untrained/index.csv",
        metrics=expand(
            "results/{{task}}/cca/{metric}/{name}",
            metric=config["similarity"]["extra_metrics"],
            name=["distance.npy", "index.csv"],
        ),
        sensitivity=expand(
            "results/{{task}}/cca/sensitivity/k{k}/{name}",
            k=config["similarity"]["sensitivity_components"],
            name=["distance.npy", "index.csv"],
        ),
    log:
        "logs/{task}/cca/cca_matrix.log",
    benchmark:
        "benchmarks/results/{task}/cca/cca_matrix.tsv"
    priority: PRIORITY_LONG
    conda:
        "../envs/rnnuniv.yaml"
    threads: config["similarity"].get("threads", 2)  # schema default
    resources:
        mem_mb=cca_matrix_mem_mb,
        runtime=cca_matrix_runtime,
    params:
        n_components=config["similarity"]["n_components"],
        sensitivity=" ".join(map(str, config["similarity"]["sensitivity_components"])),
        metrics=metric_arguments("options"),
        block_memory_mb=config["similarity"]["block_memory_mb"],
        output_dir=subpath(output.distance, parent=True),
        device=config.get("device", "auto"),
    shell:
        "python3 scripts/cca_matrix.py --features {input.features:q}"
        " --networks {input.networks:q} --n-components {params.n_components}"
        " --sensitivity-components {params.sensitivity} {params.metrics}"
        " --block-memory-mb {params.block_memory_mb}"
        " --device {params.device:q} --threads {threads}"
        " --output-dir {params.output_dir:q} > {log:q} 2>&1"
