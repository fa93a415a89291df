# Stage topology-graph: each kept network's fixed-point scaffold as a graph, and the
# network-to-network topology distances with the universality numbers.
#   in:  results/{task}/shards/{shard}/weights.safetensors, results/{task}/fixed_points/{shard}.npz,
#        results/{task}/networks.csv
#   out: results/{task}/topology/{shard}.json, results/{task}/topology/distance.npy + index.csv,
#        results/{task}/topology/networks.csv (scaffold class and task numbers per kept network),
#        results/{task}/topology/smooth.csv, results/{task}/topology/summary.json


rule topology_graph:
    input:
        weights="results/{task}/shards/{shard}/weights.safetensors",
        fixed_points="results/{task}/fixed_points/{shard}.npz",
    output:
        "results/{task}/topology/{shard}.json",
    log:
        "logs/{task}/topology/{shard}.log",
    benchmark:
        "benchmarks/results/{task}/topology/{shard}.tsv"
    conda:
        "../envs/rnnuniv.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        task_params=lambda wildcards: task_params(wildcards.task),
        options=json.dumps(config["topology"]["graph"], sort_keys=True),
        device=config.get("device", "auto"),
    shell:
        "python3 scripts/topology_graph.py --task {wildcards.task:q}"
        " --task-params {params.task_params:q} --weights {input.weights:q}"
        " --fixed-points {input.fixed_points:q} --options {params.options:q}"
        " --device {params.device:q} --threads {threads} --output {output:q} > {log:q} 2>&1"


rule topology_distance:
    input:
        networks="results/{task}/networks.csv",
        graphs=lambda wildcards: all_graphs(wildcards.task),
    output:
        distance="results/{task}/topology/distance.npy",
        index="results/{task}/topology/index.csv",
        networks="results/{task}/topology/networks.csv",
        smooth="results/{task}/topology/smooth.csv",
        summary="results/{task}/topology/summary.json",
    log:
        "logs/{task}/topology/distance.log",
    benchmark:
        "benchmarks/results/{task}/topology/distance.tsv"
    conda:
        "../envs/rnnuniv.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        wl_iterations=config["topology"]["wl_iterations"],
        higher_saddles=(
            "--higher-saddles"
            if config["topology"].get("compare_higher_saddles")
            else ""
        ),
    shell:
        "python3 scripts/topology_distance.py --task {wildcards.task:q}"
        " --networks {input.networks:q} --graphs {input.graphs:q}"
        " --wl-iterations {params.wl_iterations} {params.higher_saddles}"
        " --output-distance {output.distance:q} --output-index {output.index:q}"
        " --output-networks {output.networks:q} --output-smooth {output.smooth:q}"
        " --output-summary {output.summary:q} > {log:q} 2>&1"
