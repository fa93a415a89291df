# Stage figures: 2-D MDS embeddings of every distance matrix, then one job per figure panel.
#   in:  results/{task}/cca/**/distance.npy + index.csv, results/{task}/topology/distance.npy,
#        results/{task}/states/*.npz, results/{task}/fixed_points/*, results/{task}/topology/*.json
#   out: results/{task}/embedding/{space}.csv, results/figures/{figure}/{panel}.pdf and .png
# Every panel is its own job (rule per figure, wildcard {panel}), with inputs chosen per panel,
# so one panel rebuilds alone; the `figures:` config section reaches only these jobs. Which panels
# exist and what each reads is declared once, in rnnuniv.figures.registry; example panels read only
# the shards of the networks they draw.

GEOMETRY_SPACES = ["cca", *config["similarity"]["extra_metrics"]]
EMBEDDING_SPACES = [*GEOMETRY_SPACES, "topology"]

# figure -> panel -> (kind, task or None for every task), from the one registry of panels
# (rnnuniv.figures.registry: kinds, their functions, inputs and context), for the configured tasks
FIGURES = figure_registry.figure_panels(TASKS)

# every panel PNG and PDF of every figure (targets of `rule all`; the PNGs go into the report)
FIGURE_TARGETS = [
    f"results/figures/{figure}/{panel}.{ext}"
    for figure, panels in FIGURES.items()
    for panel in panels
    for ext in ("pdf", "png")
]

# directory of each distance matrix under results/{task}/
SPACE_DIRS = {
    "cca": "cca",
    "topology": "topology",
    **{metric: f"cca/{metric}" for metric in config["similarity"]["extra_metrics"]},
}

# the config values a panel kind may declare as its context (registry: Kind.context); the input
# functions of the figure rules (panel_inputs, ...) are in rules/common.smk
FIGURE_CONTEXT = {
    "task_params": lambda task: config["tasks"][task].get("params", {}),
    "loss_thresholds": lambda task: {
        t: keep_rule(t)["max_normalised_error"] for t in TASKS
    },
}


rule embed:
    input:
        distance=lambda wildcards: f"results/{wildcards.task}/{SPACE_DIRS[wildcards.space]}/distance.npy",
        index=lambda wildcards: f"results/{wildcards.task}/{SPACE_DIRS[wildcards.space]}/index.csv",
        networks="results/{task}/networks.csv",
    output:
        "results/{task}/embedding/{space}.csv",
    log:
        "logs/{task}/embedding/{space}.log",
    benchmark:
        "benchmarks/results/{task}/embedding/{space}.tsv"
    wildcard_constraints:
        space="|".join(EMBEDDING_SPACES),
    conda:
        "../envs/rnnuniv.yaml"
    params:
        seed=config["embedding"]["seed"],
    shell:
        "python3 scripts/embed.py --distance {input.distance:q} --index {input.index:q}"
        " --networks {input.networks:q} --seed {params.seed}"
        " --output {output:q} > {log:q} 2>&1"


for _figure in FIGURES:

    rule:
        name:
            f"figure_{_figure}"
        input:
            unpack(panel_inputs),
        output:
            pdf=f"results/figures/{{figure,{_figure}}}/{{panel}}.pdf",
            png=report(
                f"results/figures/{{figure,{_figure}}}/{{panel}}.png",
                caption=f"../report/{_figure}.rst",
                category="Figures",
                subcategory=_figure,
                labels={"figure": "{figure}", "panel": "{panel}"},
            ),
        log:
            "logs/figures/{figure}/{panel}.log",
        benchmark:
            "benchmarks/results/figures/{figure}/{panel}.tsv"
        wildcard_constraints:
            panel="|".join(FIGURES[_figure]),
        conda:
            "../envs/rnnuniv.yaml"
        params:
            kind=lambda wildcards: FIGURES[wildcards.figure][wildcards.panel][0],
            tasks=panel_task_arguments,
            inputs=panel_inputs_json,
            options=json.dumps(config["figures"], sort_keys=True),
            context=panel_context_json,
        shell:
            "python3 scripts/figure.py --figure {wildcards.figure:q} --panel {wildcards.panel:q}"
            " --kind {params.kind:q} {params.tasks} --inputs {params.inputs:q}"
            " --options {params.options:q} --context {params.context:q}"
            " --pdf {output.pdf:q} --png {output.png:q} > {log:q} 2>&1"
