# Stage figures: 2-D MDS embeddings of every distance matrix, then one job per figure panel.
#   in:  results/{task}/cca/**/distance.npy + index.csv, results/{task}/topology/distance.npy,
#        results/{task}/states/*.npz, results/{task}/fixed_points/*, results/{task}/topology/*.json
#   out: results/{task}/embedding/{space}.csv, results/figures/{figure}/{panel}.pdf and .png
# Every panel is its own job (rule per figure, wildcard {panel}), with inputs chosen per panel,
# so one panel rebuilds alone; the `figures:` config section reaches only these jobs.

GEOMETRY_SPACES = ["cca", *config["similarity"]["extra_metrics"]]
EMBEDDING_SPACES = [*GEOMETRY_SPACES, "topology"]

# figure -> panel -> (kind of plot in scripts/figure.py, task or None for every task)
_PANELS = {
    "fig1_flipflop": {
        "a": ("task", "flipflop"),
        "b": ("trajectories", "flipflop"),
        "c": ("cca_matrix", "flipflop"),
        "d": ("cca_mds", "flipflop"),
        "e": ("flipflop_points", "flipflop"),
        "f": ("topology_mds", "flipflop"),
    },
    "fig2_sine": {
        "a": ("task", "sine"),
        "b": ("trajectories", "sine"),
        "c": ("cca_mds", "sine"),
        "d": ("sine_points", "sine"),
        "e": ("topology_mds", "sine"),
    },
    "fig3_cdi": {
        "a": ("task", "cdi"),
        "b": ("trajectories_points", "cdi"),
        "c": ("cca_mds", "cdi"),
        "d": ("topology_mds", "cdi"),
        "e": ("eigenvalues", "cdi"),
        "f": ("linear_response", "cdi"),
    },
    "fig4_untrained": {"a": ("untrained", None)},
    "figS_loss": {"a": ("loss", None)},
    "figS_metrics": {
        "abcdefgh"[number]: ("metrics", task) for number, task in enumerate(TASKS)
    },
    **CONNECTIVITY_PANELS,  # figC1-figC3, defined in rules/random_mode.smk
}
# only the panels of the configured tasks
FIGURES = {
    figure: {
        panel: spec
        for panel, spec in panels.items()
        if spec[1] is None or spec[1] in TASKS
    }
    for figure, panels in _PANELS.items()
}
FIGURES = {figure: panels for figure, panels in FIGURES.items() if panels}


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

# fixed-point arrays of every shard of trained networks
_fixed_point_arrays = lambda task: expand(
    "results/{task}/fixed_points/{shard}.npz", task=task, shard=trained_shards(task)
)
# named inputs of each kind of panel, given its task: only the files that panel reads
_KIND_INPUTS = {
    "task": lambda task: {
        "networks": f"results/{task}/networks.csv",
        "states": all_states(task),
    },
    "trajectories": lambda task: {
        "networks": f"results/{task}/networks.csv",
        "states": all_states(task),
    },
    "trajectories_points": lambda task: {
        "networks": f"results/{task}/networks.csv",
        "states": all_states(task),
        "fixed_points": _fixed_point_arrays(task),
    },
    "cca_matrix": lambda task: {
        "distance": f"results/{task}/cca/distance.npy",
        "index": f"results/{task}/cca/index.csv",
    },
    "cca_mds": lambda task: {
        "embedding": f"results/{task}/embedding/cca.csv",
        "summary": "results/summary.json",
    },
    "topology_mds": lambda task: {
        "embedding": f"results/{task}/embedding/topology.csv",
        "summary": "results/summary.json",
    },
    "flipflop_points": lambda task: {
        "networks": f"results/{task}/networks.csv",
        "states": all_states(task),
        "fixed_points": _fixed_point_arrays(task),
        "graphs": all_graphs(task),
    },
    "sine_points": lambda task: {
        "networks": f"results/{task}/networks.csv",
        "states": all_states(task),
        "fixed_points": _fixed_point_arrays(task),
        "fixed_tables": all_fixed_points(task),
    },
    "eigenvalues": lambda task: {
        "networks": f"results/{task}/networks.csv",
        "fixed_points": _fixed_point_arrays(task),
    },
    "linear_response": lambda task: {
        "networks": f"results/{task}/networks.csv",
        "fixed_points": _fixed_point_arrays(task),
        "weights": expand(
            "results/{task}/shards/{shard}/weights.safetensors",
            task=task,
            shard=trained_shards(task),
        ),
    },
    "untrained": lambda task: {
        **{
            f"{t}_{name}": f"results/{t}/cca/untrained/{name}.{ext}"
            for t in TASKS
            for name, ext in (("distance", "npy"), ("index", "csv"))
        },
        "summary": "results/summary.json",
    },
    "loss": lambda task: {f"{t}_networks": f"results/{t}/networks.csv" for t in TASKS},
    "metrics": lambda task: {
        **{space: f"results/{task}/embedding/{space}.csv" for space in GEOMETRY_SPACES},
        "summary": "results/summary.json",
    },
    **CONNECTIVITY_KIND_INPUTS,
}
PANEL_INPUTS = {
    figure: {panel: _KIND_INPUTS[kind](task) for panel, (kind, task) in panels.items()}
    for figure, panels in FIGURES.items()
}
# what a panel needs from outside the `figures:` section (task parameters, loss thresholds)
_KIND_CONTEXT = {
    "task": lambda task: {"task_params": config["tasks"][task].get("params", {})},
    "sine_points": lambda task: {
        "task_params": config["tasks"][task].get("params", {})
    },
    "linear_response": lambda task: {
        "task_params": config["tasks"][task].get("params", {})
    },
    "loss": lambda task: {
        "loss_thresholds": {t: keep_rule(t)["max_normalised_error"] for t in TASKS}
    },
}
PANEL_CONTEXT = {
    figure: {
        panel: json.dumps(
            _KIND_CONTEXT.get(kind, lambda task: {})(task), sort_keys=True
        )
        for panel, (kind, task) in panels.items()
    }
    for figure, panels in FIGURES.items()
}
# --task T for a single-task panel, --tasks A B C for a panel over every task
PANEL_TASK_ARGUMENTS = {
    figure: {
        panel: f"--task {task}" if task else "--tasks " + " ".join(TASKS)
        for panel, (kind, task) in panels.items()
    }
    for figure, panels in FIGURES.items()
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
            unpack(lambda wildcards: PANEL_INPUTS[wildcards.figure][wildcards.panel]),
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
            tasks=lambda wildcards: PANEL_TASK_ARGUMENTS[wildcards.figure][
                wildcards.panel
            ],
            inputs=lambda wildcards: json.dumps(
                PANEL_INPUTS[wildcards.figure][wildcards.panel], sort_keys=True
            ),
            options=json.dumps(config["figures"], sort_keys=True),
            context=lambda wildcards: PANEL_CONTEXT[wildcards.figure][wildcards.panel],
        shell:
            "python3 scripts/figure.py --figure {wildcards.figure:q} --panel {wildcards.panel:q}"
            " --kind {params.kind:q} {params.tasks} --inputs {params.inputs:q}"
            " --options {params.options:q} --context {params.context:q}"
            " --pdf {output.pdf:q} --png {output.png:q} > {log:q} 2>&1"
