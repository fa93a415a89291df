# Universality and individuality in the dynamics of large populations of recurrent networks.
# DAG: train -> extract-states -> fixed-points -> topology-graph -> CCA-matrix -> figures.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/train.smk"
include: "rules/states.smk"
include: "rules/fixed_points.smk"
include: "rules/topology.smk"
include: "rules/cca.smk"
include: "rules/dynamics.smk"
include: "rules/random_mode.smk"
include: "rules/figures.smk"
include: "rules/summary.smk"


localrules:
    all,


rule all:
    default_target: True
    input:
        expand("results/{task}/networks.csv", task=TASKS),
        expand("results/{task}/topology/summary.json", task=TASKS),
        expand("results/{task}/cca/distance.npy", task=TASKS),
        expand("results/{task}/cca/untrained/distance.npy", task=TASKS),
        expand(
            "results/{task}/cca/{metric}/distance.npy",
            task=TASKS,
            metric=config["similarity"]["extra_metrics"],
        ),
        expand(
            "results/{task}/cca/sensitivity/k{k}/distance.npy",
            task=TASKS,
            k=config["similarity"]["sensitivity_components"],
        ),
        expand("results/{task}/dynamics/correlations.json", task=TASKS),
        "results/random_mode/table.csv",
        FIGURE_TARGETS,
        "results/summary.json",
        "results/summary.md",
        # last: depends on the train checkpoints of oversampled groups (see rule manifest)
        all_shard_outputs,
