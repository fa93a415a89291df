# Stage CCA-matrix: geometry distances between the kept networks of a task (SVCCA, as in the
# paper), the supplementary metrics (CKA, Procrustes, DSA), and SVCCA including untrained twins.
#   in:  results/{task}/states/*.npz, results/{task}/networks.csv
#   out: results/{task}/cca/distance.npy + index.csv, results/{task}/cca/{metric}/distance.npy +
#        index.csv for metric in extra_metrics and "untrained"


rule cca_matrix:
    input:
        states=lambda wildcards: all_states(wildcards.task),
        networks="results/{task}/networks.csv",
    output:
        distance="results/{task}/cca/distance.npy",
        index="results/{task}/cca/index.csv",
    log:
        "logs/{task}/cca/svcca.log",
    benchmark:
        "benchmarks/results/{task}/cca/svcca.tsv"
    conda:
        "../envs/rnnuniv.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        n_components=config["similarity"]["n_components"],
    shell:
        "python3 scripts/cca_matrix.py --states {input.states:q}"
        " --networks {input.networks:q} --metric svcca"
        " --n-components {params.n_components} --no-progress --threads {threads}"
        " --output {output.distance:q} --index {output.index:q} > {log:q} 2>&1"


rule cca_untrained:
    input:
        states=lambda wildcards: all_states(wildcards.task),
        networks="results/{task}/networks.csv",
    output:
        distance="results/{task}/cca/untrained/distance.npy",
        index="results/{task}/cca/untrained/index.csv",
    log:
        "logs/{task}/cca/untrained.log",
    benchmark:
        "benchmarks/results/{task}/cca/untrained.tsv"
    conda:
        "../envs/rnnuniv.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        n_components=config["similarity"]["n_components"],
    shell:
        "python3 scripts/cca_matrix.py --states {input.states:q}"
        " --networks {input.networks:q} --metric svcca --statuses kept untrained"
        " --n-components {params.n_components} --no-progress --threads {threads}"
        " --output {output.distance:q} --index {output.index:q} > {log:q} 2>&1"


rule similarity_metric:
    input:
        states=lambda wildcards: all_states(wildcards.task),
        networks="results/{task}/networks.csv",
    output:
        distance="results/{task}/cca/{metric}/distance.npy",
        index="results/{task}/cca/{metric}/index.csv",
    log:
        "logs/{task}/cca/{metric}.log",
    benchmark:
        "benchmarks/results/{task}/cca/{metric}.tsv"
    conda:
        "../envs/rnnuniv.yaml"
    threads: 2
    resources:
        mem_mb=8000,
        runtime=120,
    params:
        options=lambda wildcards: metric_options(wildcards.metric),
    shell:
        "python3 scripts/cca_matrix.py --states {input.states:q}"
        " --networks {input.networks:q} --metric {wildcards.metric} {params.options}"
        " --no-progress --threads {threads}"
        " --output {output.distance:q} --index {output.index:q} > {log:q} 2>&1"
