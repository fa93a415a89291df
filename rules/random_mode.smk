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
