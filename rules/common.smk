# Shared definitions: config validation, the population, input functions, wildcard constraints.
import json
from functools import cache

import pandas
from snakemake.utils import validate

from rnnuniv import figures as figure_registry
from rnnuniv.networks import passed_networks, read_training_records
from rnnuniv.population import base_shards, build_population, needed_shards, shards
from rnnuniv.similarity.registry import (
    EXTRA_METRICS,
    check_metric_names,
    feature_metrics,
    metric_options,
)

# training keys that change no weight: not train-rule params (rules/train.smk); global only
BOOKKEEPING_KEYS = ("log_every", "checkpoint_every")


def _check_replaced_keys(config):
    """Name the new key when a config still uses one that was replaced."""
    sections = [("training", config.get("training") or {})] + [
        (f"tasks.{t}.training", (v or {}).get("training") or {})
        for t, v in (config.get("tasks") or {}).items()
    ]
    for where, section in sections:
        if "loss_threshold" in section:
            raise ValueError(
                f"{where}.loss_threshold was replaced by keep.max_normalised_error "
                "(validation MSE / target variance; per task: tasks.<task>.keep)"
            )
        if where != "training" and set(BOOKKEEPING_KEYS) & set(section):
            raise ValueError(
                f"{where}: log_every and checkpoint_every are global (training.*) only"
            )


_check_replaced_keys(config)
validate(config, "../schemas/config.schema.yaml")
check_metric_names(config["similarity"]["extra_metrics"])

TASKS = list(config["tasks"])

# Job priorities (Snakemake schedules the highest first among the jobs it can start). The
# cheap per-shard jobs that unblock others (probe states, similarity features) go first, then the
# long ones (fixed points, the all-pairs matrices), so that the many short jobs (topology graphs,
# dynamics, embeddings, figure panels) are left to fill both cores at the end. Unprioritised, a
# shard's states job could wait in the queue until the end of the run and its fixed points (40 s)
# then ran alone after every other job (the 0e05b0c default run, 2 cores). Results do not depend
# on the order.
PRIORITY_STATES = 3
PRIORITY_FEATURES = 2
PRIORITY_LONG = 1  # fixed points, the all-pairs matrices


def population_config(task):
    """The population section with the task's oversampled groups (tasks.<task>.oversample)."""
    oversample = config["tasks"][task].get("oversample")
    return {
        **config["population"],
        **({"oversample": oversample} if oversample else {}),
    }


@cache
def population(task):
    """Every network of a task (the same table the population rule writes)."""
    return build_population(task, population_config(task), config.get("study_seed", 0))


def task_shards(task):
    """The shards the study needs, in population order: every shard but those of oversampling
    seeds that earlier shards made unnecessary (rnnuniv.population.needed_shards). An oversampled
    group's decision reads training records (rule train is a checkpoint), so call it from input
    functions only; for a task without oversampling it reads nothing."""
    return needed_shards(
        population(task),
        config["population"]["n_seeds"],
        lambda shard: _passed(task, shard),
    )


def trained_shards(task):
    """task_shards that hold trained networks (every shard: untrained twins share their
    trained twin's shard)."""
    table = population(task)
    trained = set(table.loc[table["trained"], "shard"])
    return [shard for shard in task_shards(task) if shard in trained]


def all_shard_outputs(wildcards):
    """Probe states and fixed points of every analysed shard of every task (rule all)."""
    return [
        path for task in TASKS for path in all_states(task) + all_fixed_points(task)
    ]


def training_config(task):
    """Global training settings with the task's overrides, as JSON for the train script;
    without the bookkeeping keys, which change no weight (see rules/train.smk)."""
    merged = {**config["training"], **config["tasks"][task].get("training", {})}
    merged = {k: v for k, v in merged.items() if k not in BOOKKEEPING_KEYS}
    return json.dumps(merged, sort_keys=True)


class BookkeepingOptions:
    """Command-line options that change no weight; deliberately not a builtin type (see rules/train.smk)."""

    def __init__(self, **options):
        self.options = options

    def __str__(self):
        return " ".join(
            f"--{key.replace('_', '-')} {int(value)}"
            for key, value in sorted(self.options.items())
        )


def keep_rule(task):
    """The keep rule's parameters: top-level `keep` with the task's overrides."""
    keep = {"max_normalised_error": 0.05, **config.get("keep", {})}  # schema default
    return {**keep, **config["tasks"][task].get("keep", {})}


def fixed_point_options(task):
    """Fixed-point search options, global with the task's overrides, as JSON."""
    merged = {**config["fixed_points"], **config["tasks"][task].get("fixed_points", {})}
    return json.dumps(merged, sort_keys=True)


def task_params(task):
    return json.dumps(config["tasks"][task].get("params", {}), sort_keys=True)


def all_states(task):
    return expand(
        "results/{task}/states/{shard}.npz", task=task, shard=task_shards(task)
    )


def all_fixed_points(task):
    """Fixed-point tables of every shard of trained networks."""
    return expand(
        "results/{task}/fixed_points/{shard}.csv", task=task, shard=trained_shards(task)
    )


def all_graphs(task):
    """Topology graphs of every shard of trained networks."""
    return expand(
        "results/{task}/topology/{shard}.json", task=task, shard=trained_shards(task)
    )


def similarity_width():
    """Columns of left singular vectors stored per network: the largest k any analysis needs."""
    needed = list(config["similarity"]["sensitivity_components"])
    n_components = config["similarity"]["n_components"]
    if isinstance(n_components, int):
        needed.append(n_components)
    if not isinstance(n_components, int) or any(
        EXTRA_METRICS[name].full_width for name in config["similarity"]["extra_metrics"]
    ):
        needed.append(config["similarity"]["feature_rank"])
    return max(needed)


def metric_arguments(part):
    """Command-line options of the configured metrics (rnnuniv.similarity.registry): for the
    features stage (part "feature_options": only metrics with a per-network part, and their
    options) or the pairwise stage (part "options")."""
    names = config["similarity"]["extra_metrics"]
    if part == "feature_options":
        names = [metric.name for metric in feature_metrics(names)]
    options = metric_options(names, config["similarity"], part)
    return " ".join(
        [
            *(["--extra-metrics", *names] if names else []),
            *(f"--{key.replace('_', '-')} {value}" for key, value in options.items()),
        ]
    )


def all_similarity_features(task):
    return expand(
        "results/{task}/similarity/{shard}.npz", task=task, shard=task_shards(task)
    )


def cca_matrix_mem_mb(wildcards):
    """MB: ~0.7 GB base + one features file + the row block + 7 float64 N x N matrices, x1.5 + 0.5 GB.

    benchmarks/bench_similarity_memory.py: peak RSS - row block - matrices = 0.73-0.79 GB at the
    paper's sine sizes, flat in N; at the paper's full N = 5,760 (CDI sizes, 2 GB blocks) the peak
    was 3,809 MB against the 7,129 this gives (README, Paper scale).
    """
    n = len(population(wildcards.task))
    matrices_mb = 7 * n * n * 8 / 2**20
    block_mb = config["similarity"]["block_memory_mb"]
    return int(1.5 * (600 + block_mb + matrices_mb) + 500)


def cca_matrix_runtime(wildcards):
    """Minutes: N^2 / 2 pairs at 2 ms per pair (2 threads, width 32).

    Measured at the paper's full N = 5,760: 0.159 ms per pair for CDI (3,850 probe samples, load
    ~2). A sine pair (25,500 samples) costs at most 6.6x that, ~1.05 ms, if all of it scaled with
    the samples (the small SVDs do not); 2 ms is ~2x headroom for the largest task, 9.2 h at N = 5,760.
    """
    n = len(population(wildcards.task))
    return int(max(10, n * n / 2 * 2e-3 / 60))


def _base_records(wildcards):
    """Training records of the shards every study needs: seeds below n_seeds (and their twins)."""
    return expand(
        "results/{task}/shards/{shard}/train.json",
        task=wildcards.task,
        shard=base_shards(population(wildcards.task), config["population"]["n_seeds"]),
    )


def _oversampling_records(wildcards):
    """Training records of the shards of oversampling seeds the keep rule needs. Each is decided
    from the records of the shards before it (rule train is a checkpoint), so a group's shards
    train one after the other and stop once n_seeds networks passed (rnnuniv.population).
    """
    base = set(_base_records(wildcards))
    paths = expand(
        "results/{task}/shards/{shard}/train.json",
        task=wildcards.task,
        shard=task_shards(wildcards.task),
    )
    return [path for path in paths if path not in base]


def _passed(task, shard):
    records = checkpoints.train.get(task=task, shard=shard).output.records
    return passed_networks(
        read_training_records([records]), keep_rule(task)["max_normalised_error"]
    )


# Figure panels (rules/figures.smk): inputs, context and task arguments of a panel, as the one
# registry of panels declares them (rnnuniv.figures.registry); FIGURES, FIGURE_CONTEXT and
# GEOMETRY_SPACES are defined in rules/figures.smk.
def figure_shards(task, scope):
    """Shard ids of a registry shard scope: every shard, trained shards, or the shards of the
    example networks, read from networks.csv (a checkpoint: rule manifest)."""
    if scope == "all":
        return task_shards(task)
    if scope == "trained":
        return trained_shards(task)
    networks = pandas.read_csv(
        checkpoints.manifest.get(task=task).output[0], dtype={"network_id": str}
    )
    return figure_registry.example_shards(networks, fallback=trained_shards(task)[:1])


def panel_inputs(wildcards):
    """Named input files of one panel, as the registry declares them."""
    kind, task = FIGURES[wildcards.figure][wildcards.panel]
    return figure_registry.panel_inputs(
        kind, task, TASKS, figure_shards, GEOMETRY_SPACES
    )


def panel_inputs_json(wildcards, input):
    return json.dumps(
        {
            name: value if isinstance(value, str) else list(value)
            for name, value in input.items()
        },
        sort_keys=True,
    )


def panel_context_json(wildcards):
    kind, task = FIGURES[wildcards.figure][wildcards.panel]
    context = figure_registry.panel_context(kind, task, FIGURE_CONTEXT)
    return json.dumps(context, sort_keys=True)


def panel_task_arguments(wildcards):
    """--task T for a single-task panel, --tasks A B C for a panel over every task."""
    task = FIGURES[wildcards.figure][wildcards.panel][1]
    return f"--task {task}" if task else "--tasks " + " ".join(TASKS)


wildcard_constraints:
    task="|".join(TASKS),
    shard="[a-z0-9_.-]+-[0-9]{3}",
    metric="|".join(EXTRA_METRICS),
