# Stage random_mode (beyond the paper): the random-mode model of Clark et al. 2024 over a grid of
# gain and effective rank, the theory the trained networks' connectivity is set against.
#   in:  the `random_mode:` config section only
#   out: results/random_mode/table.csv (not per task)


rule random_mode:
    output:
        "results/random_mode/table.csv",
    log:
        "logs/random_mode/table.log",
    benchmark:
        "benchmarks/results/random_mode/table.tsv"
    conda:
        "../envs/rnnuniv.yaml"
    # one thread: a 1000-unit matrix-vector step gains nothing from a second one
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        options=json.dumps(config.get("random_mode", {}), sort_keys=True),
    shell:
        "python3 scripts/random_mode.py --options {params.options:q} --threads {threads}"
        " --output {output:q} > {log:q} 2>&1"


# Figures of the connectivity-dynamics part (rnnuniv.plots_connectivity), merged into the figure
# registry of rules/figures.smk: figure -> panel -> (kind, task or None for every task), and the
# named inputs of each kind.
CONNECTIVITY_PANELS = {
    "figC1": {"a": ("connectivity_dimension", None)},
    "figC2": {"a": ("lyapunov_spectra", None)},
    "figC3": {"a": ("random_mode_phase", None)},
}
CONNECTIVITY_KIND_INPUTS = {
    "connectivity_dimension": lambda task: {
        "random_mode": "results/random_mode/table.csv",
        **{f"{t}_dynamics": f"results/{t}/dynamics/summary.csv" for t in TASKS},
    },
    "lyapunov_spectra": lambda task: {
        f"{t}_dynamics": f"results/{t}/dynamics/summary.csv" for t in TASKS
    },
    "random_mode_phase": lambda task: {"random_mode": "results/random_mode/table.csv"},
}
