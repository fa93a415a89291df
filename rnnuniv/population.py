"""The population of networks: the product of the configured hyperparameters, cut into shards.

A network is named once, by a readable id such as ``gru-tanh-h64-l2_1e-4-s07``, and every later
file is indexed by that id in the order of this table. Its seed is a stable hash of the study seed,
the task and the id, so adding a configuration never changes the seeds of the others.

A shard is the unit of work for the scheduler: up to ``shard_size`` networks of one task,
architecture, activation and hidden size, trained together as one batched computation, and the
untrained twins of those networks (``include_untrained``), which every stage handles in the same
job as their trained twins: a twin costs an initialisation and a probe run, far less than the
start-up of a job of its own.

Oversampling: a group (architecture-activation) whose networks rarely pass the keep rule can train
more seeds than ``n_seeds``, as the paper trained many networks and kept those that solved the
task. The extra seeds come after the others (seed indices ``n_seeds``, ``n_seeds + 1``, ...), so
the first ``n_seeds`` networks and their seeds are the same as without oversampling, and they get no
untrained twin: the untrained baseline stays ``n_seeds`` networks per group.

A group's shards are trained in seed order, each only while the earlier ones passed the keep rule
fewer than ``n_seeds`` times (:func:`needed_shards`): the manifest keeps the first ``n_seeds``
passing networks by seed index, so a later shard could only add surplus. Which networks are
analysed is therefore the same as if every seed were trained.
"""

from __future__ import annotations

import itertools
import zlib
from collections import Counter
from typing import Any, Callable

import pandas as pd

from .networks import COMBINATION_COLUMNS

COLUMNS = [
    "network_id",
    "task",
    "architecture",
    "activation",
    "n_hidden",
    "l2",
    "learning_rate",
    "seed_index",
    "seed",
    "trained",
    "shard",
]


def format_float(value: float) -> str:
    """Short, filename-safe form of a hyperparameter: 1e-4 -> '1e-4', 0.002 -> '2e-3', 0 -> '0'."""
    if value == 0:
        return "0"
    mantissa, exponent = f"{value:.6e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"


def network_id(
    architecture: str,
    activation: str,
    n_hidden: int,
    l2: float,
    seed_index: int,
    trained: bool = True,
    learning_rate: float | None = None,
) -> str:
    """``gru-tanh-h64-l2_1e-4-s07``; ``-lr_...`` when the study varies the learning rate."""
    lr = "" if learning_rate is None else f"-lr_{format_float(learning_rate)}"
    base = f"{architecture}-{activation}-h{n_hidden}-l2_{format_float(l2)}{lr}-s{seed_index:02d}"
    return base if trained else f"{base}-untrained"


def network_seed(study_seed: int, task: str, trained_id: str) -> int:
    """A 31-bit seed from a stable hash (CRC-32), identical on every machine and Python version."""
    return zlib.crc32(f"{study_seed}:{task}:{trained_id}".encode()) & 0x7FFFFFFF


def shard_id(architecture: str, activation: str, n_hidden: int, index: int) -> str:
    return f"{architecture}-{activation}-h{n_hidden}-{index:03d}"


def width_scaled_learning_rate(lr: float, n_hidden: int, population: dict[str, Any]) -> float:
    """``lr * reference / n`` with ``reference = population["lr_reference_width"]`` (Adam moves each
    weight by about lr per step, so an n x n matrix's operator norm by up to about n lr); ``lr``
    itself without a reference width."""
    reference = population.get("lr_reference_width")
    return float(lr) if reference is None else float(lr) * float(reference) / float(n_hidden)


def build_population(task: str, population: dict[str, Any], study_seed: int) -> pd.DataFrame:
    """Every network of one task, one row each, in a fixed order (see :data:`COLUMNS`).

    ``population`` holds the config's lists: ``architectures``, ``activations``, ``hidden_sizes``,
    ``l2``, ``learning_rates``, the number of seeds ``n_seeds``, ``shard_size`` and
    ``include_untrained`` (an untrained twin of every network, sharing its seed and its shard, for
    comparisons with networks at initialisation). With ``lr_reference_width`` set, a network of ``n`` units
    trains at ``lr * lr_reference_width / n`` (the ids keep the configured ``lr``). An optional
    ``oversample`` maps a group ``"<architecture>-<activation>"`` to its own ``n_seeds`` (at least
    the population's) and optionally ``shard_size``, for groups that rarely pass the keep rule.
    """
    rows = []
    oversample = checked_oversample(population)
    variants = [True, False] if population.get("include_untrained", False) else [True]
    for trained, arch, act, n_hidden in itertools.product(
        variants,
        population["architectures"],
        population["activations"],
        population["hidden_sizes"],
    ):
        extra = oversample.get(f"{arch}-{act}", {})
        n_trained_seeds = int(extra.get("n_seeds", population["n_seeds"]))
        n_seeds = n_trained_seeds if trained else population["n_seeds"]
        shard_size = int(extra.get("shard_size", population["shard_size"]))
        group = itertools.product(
            enumerate(itertools.product(population["l2"], population["learning_rates"])), range(n_seeds)
        )
        for (combination, (l2, lr)), seed_index in group:
            # a twin goes to its trained twin's shard: the position of the trained network
            position = combination * n_trained_seeds + seed_index
            varied_lr = lr if len(population["learning_rates"]) > 1 else None
            name = network_id(arch, act, n_hidden, l2, seed_index, learning_rate=varied_lr)
            rows.append(
                {
                    "network_id": name if trained else f"{name}-untrained",
                    "task": task,
                    "architecture": arch,
                    "activation": act,
                    "n_hidden": int(n_hidden),
                    "l2": float(l2),
                    "learning_rate": width_scaled_learning_rate(lr, n_hidden, population),
                    "seed_index": seed_index,
                    "seed": network_seed(study_seed, task, name),
                    "trained": trained,
                    "shard": shard_id(arch, act, n_hidden, position // shard_size),
                }
            )
    table = pd.DataFrame(rows, columns=COLUMNS)
    if table["network_id"].duplicated().any():
        raise ValueError("duplicate network ids: hyperparameter lists contain repeated values")
    return table


def checked_oversample(population: dict[str, Any]) -> dict[str, dict[str, int]]:
    """The ``oversample`` entries of ``population`` for its own groups, checked: each key has the
    form ``<architecture>-<activation>`` and trains at least ``n_seeds`` seeds. Entries for groups
    this population does not have are dropped (a config merged over config.yaml inherits its
    entries, e.g. a study of tanh networks only)."""
    oversample = population.get("oversample") or {}
    groups = {f"{a}-{b}" for a in population["architectures"] for b in population["activations"]}
    for group, entry in oversample.items():
        if group.count("-") != 1:
            raise ValueError(f"oversample: {group!r} is not of the form <architecture>-<activation>")
        if group in groups and int(entry["n_seeds"]) < int(population["n_seeds"]):
            raise ValueError(
                f"oversample: {group} trains {entry['n_seeds']} seeds, fewer than the "
                f"population's n_seeds = {population['n_seeds']}"
            )
    return {group: entry for group, entry in oversample.items() if group in groups}


def shards(table: pd.DataFrame) -> list[str]:
    """Shard ids in population order."""
    return list(dict.fromkeys(table["shard"]))


def base_shards(table: pd.DataFrame, n_seeds: int) -> list[str]:
    """Shards every study trains, in population order: those holding an untrained twin or a seed
    with ``seed_index < n_seeds`` (the rest hold oversampling seeds only)."""
    base = ~table["trained"].astype(bool) | (table["seed_index"] < n_seeds)
    return shards(table[base])


def needed_shards(table: pd.DataFrame, n_seeds: int, passed: Callable[[str], set[str]]) -> list[str]:
    """The shards to train, in population order.

    Every :func:`base_shards` shard is needed. A shard of oversampling seeds only (all
    ``seed_index >= n_seeds``) is needed while some hyperparameter combination among its networks
    has fewer than ``n_seeds`` passing networks in the earlier needed shards. ``passed(shard)``
    gives the ids of a trained shard's networks under the keep threshold
    (:func:`rnnuniv.networks.passed_networks`); it is called in population order, once per shard,
    and only for a shard whose successor is in question, so that a workflow can train the shards
    of a group one after the other (rule ``manifest``).
    """
    base = set(base_shards(table, n_seeds))
    trained = table["trained"].astype(bool)
    key = table[list(COMBINATION_COLUMNS)].apply(tuple, axis=1)
    needed: list[str] = []
    counted: set[str] = set()
    passing: Counter = Counter()  # passing networks per combination in the counted shards
    for shard in shards(table):
        if shard in base:
            needed.append(shard)
            continue
        combinations = set(key[table["shard"] == shard])
        for earlier in needed:
            if earlier in counted:
                continue
            earlier_rows = (table["shard"] == earlier) & trained
            if combinations.isdisjoint(key[earlier_rows]):
                continue
            counted.add(earlier)
            passing.update(key[earlier_rows & table["network_id"].astype(str).isin(passed(earlier))])
        if any(passing[c] < n_seeds for c in combinations):
            needed.append(shard)
    return needed
