# Stage summary: the headline numbers of the run (silhouettes of architecture and activation in
# every distance space, within/between distances, trained vs untrained similarity, the topology
# universality numbers) and, in words, whether the paper's claim held.
#   in:  results/{task}/cca/**/distance.npy + index.csv, results/{task}/topology/distance.npy +
#        index.csv + summary.json, for every task
#   out: results/summary.json, results/summary.md


rule summary:
    input:
        # task-major, space-minor: the order scripts/summary.py expects
        distances=[
            f"results/{task}/{SPACE_DIRS[space]}/distance.npy"
            for task in TASKS
            for space in EMBEDDING_SPACES
        ],
        indices=[
            f"results/{task}/{SPACE_DIRS[space]}/index.csv"
            for task in TASKS
            for space in EMBEDDING_SPACES
        ],
        untrained_distances=expand(
            "results/{task}/cca/untrained/distance.npy", task=TASKS
        ),
        untrained_indices=expand("results/{task}/cca/untrained/index.csv", task=TASKS),
        topology_summaries=expand("results/{task}/topology/summary.json", task=TASKS),
        connectivity=expand("results/{task}/dynamics/correlations.json", task=TASKS),
        random_mode="results/random_mode/table.csv",
    output:
        json="results/summary.json",
        markdown=report(
            "results/summary.md",
            caption="../report/summary.rst",
            category="Summary",
        ),
    log:
        "logs/summary.log",
    benchmark:
        "benchmarks/results/summary.tsv"
    conda:
        "../envs/rnnuniv.yaml"
    params:
        tasks=TASKS,
        spaces=EMBEDDING_SPACES,
        separated=config["summary"]["separated_silhouette"],
        mixed=config["summary"]["mixed_silhouette"],
    shell:
        "python3 scripts/summary.py --tasks {params.tasks:q} --spaces {params.spaces:q}"
        " --distances {input.distances:q} --indices {input.indices:q}"
        " --untrained-distances {input.untrained_distances:q}"
        " --untrained-indices {input.untrained_indices:q}"
        " --topology-summaries {input.topology_summaries:q}"
        " --separated {params.separated} --mixed {params.mixed}"
        " --connectivity {input.connectivity:q} --random-mode {input.random_mode:q}"
        " --output-json {output.json:q} --output-md {output.markdown:q} > {log:q} 2>&1"
