# Stage summary: the paper's claims, one row each, with 95 % bootstrap intervals, permutation
# p-values and verdicts; silhouettes of every distance space, within/between ratios, modal scaffold
# class, kept fractions, and the individuality verdict at each SVCCA dimension k.
#   in:  results/{task}/cca/**/distance.npy + index.csv, results/{task}/topology/distance.npy +
#        index.csv + summary.json + networks.csv,
#        results/{task}/networks.csv, results/{task}/cca/sensitivity/k{k}/ (when configured)
#   out: results/summary.json, results/summary.md

# SVCCA dimensions of the sensitivity table (matrices made by the CCA stage); none configured: the
# table says "not available"
SENSITIVITY_K = list(config["similarity"].get("sensitivity_components", []))
# the summary options of scripts/summary.py (config key -> option name)
SUMMARY_OPTIONS = {
    "separated": config["summary"]["separated_silhouette"],
    "mixed": config["summary"]["mixed_silhouette"],
    **{
        key: config["summary"][key]
        for key in (
            "n_bootstrap",
            "n_permutations",
            "seed",
            "alpha",
            "min_networks_per_group",
            "majority",
            "frequency_correlation",
        )
        if key in config["summary"]
    },
}


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
        networks=expand("results/{task}/networks.csv", task=TASKS),
        topology_networks=expand("results/{task}/topology/networks.csv", task=TASKS),
        sensitivity_distances=[
            f"results/{task}/cca/sensitivity/k{k}/distance.npy"
            for task in TASKS
            for k in SENSITIVITY_K
        ],
        sensitivity_indices=[
            f"results/{task}/cca/sensitivity/k{k}/index.csv"
            for task in TASKS
            for k in SENSITIVITY_K
        ],
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
        ks=" ".join(str(k) for k in SENSITIVITY_K),
        options=json.dumps(SUMMARY_OPTIONS, sort_keys=True),
    shell:
        "python3 scripts/summary.py --tasks {params.tasks:q} --spaces {params.spaces:q}"
        " --distances {input.distances:q} --indices {input.indices:q}"
        " --untrained-distances {input.untrained_distances:q}"
        " --untrained-indices {input.untrained_indices:q}"
        " --topology-summaries {input.topology_summaries:q}"
        " --networks {input.networks:q}"
        " --topology-networks {input.topology_networks:q}"
        " --sensitivity-k {params.ks}"
        " --sensitivity-distances {input.sensitivity_distances:q}"
        " --sensitivity-indices {input.sensitivity_indices:q}"
        " --options {params.options:q}"
        " --connectivity {input.connectivity:q} --random-mode {input.random_mode:q}"
        " --output-json {output.json:q} --output-md {output.markdown:q} > {log:q} 2>&1"
