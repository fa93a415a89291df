"""The supplementary similarity metrics (beside SVCCA): one registry that every stage reads.

A metric is one :class:`Metric` entry in :data:`EXTRA_METRICS`, keyed by its name (the name used
in ``similarity.extra_metrics``, in ``results/{task}/cca/{name}/`` and in the summary's spaces).
Whatever reads a metric asks this registry: the features stage (which per-network parts to
compute, with which options), the CCA-matrix stage (how to get each matrix), the config check
(which names are valid), the rules (wildcards, options passed on) and the figures (titles).

A metric is of one of two kinds:

* **streamed**: a function of each network's stored SVD (:mod:`.features`), i.e. of the cross
  products ``C_ij = U_i^T U_j`` weighted per network. ``streamed(options)`` returns an object with
  ``name``, ``weights(singular [N, M], ranks [N], width) -> [N, width]`` and
  ``score(cross [r, c, R, R], w_rows, w_cols, rows, cols) -> [r, c]`` (see :mod:`.streaming`);
  all streamed metrics share one pass over the features. ``full_width``: the metric uses every
  stored column (CKA, Procrustes), so the features must keep ``feature_rank`` of them.
* **per-network features**: ``per_network(states [trials, time, units] tensor, options) -> [r]``
  is computed once per network by the features stage and stored as ``feature_key`` [n, r];
  ``pairwise(features [N, r], options) -> [N, N]`` compares them (DSA: eigenvalues, Wasserstein).

``options`` and ``feature_options`` name the ``similarity`` config keys the pairwise and the
per-network part read (each an :class:`Option`; the scripts turn them into ``--key-name`` flags
and the rules pass exactly these keys, so changing an option reruns only the stage that uses it).
Every matrix has a zero diagonal and is symmetric. ``reference`` is the in-memory all-pairs
function of the states (tests, :func:`rnnuniv.similarity.distance_matrix`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np

__all__ = ["EXTRA_METRICS", "Metric", "Option", "check_metric_names", "feature_metrics", "metric_options"]


@dataclass(frozen=True)
class Option:
    """One ``similarity`` config key a metric reads: its type, default and command-line help."""

    type: type
    default: Any
    help: str
    choices: tuple | None = None


@dataclass(frozen=True)
class Metric:
    """A similarity metric: how the stages compute it (module docstring)."""

    name: str
    title: str
    streamed: Callable[[dict], Any] | None = None
    per_network: Callable[[Any, dict], np.ndarray] | None = None
    pairwise: Callable[[np.ndarray, dict], np.ndarray] | None = None
    feature_key: str | None = None
    options: dict[str, Option] = field(default_factory=dict)
    feature_options: dict[str, Option] = field(default_factory=dict)
    full_width: bool = False
    reference: Callable | None = None

    def __post_init__(self):
        if (self.streamed is None) == (self.per_network is None):
            raise ValueError(f"metric {self.name!r}: give either streamed or per_network (+ pairwise)")
        if (self.per_network is None) != (self.pairwise is None):
            raise ValueError(f"metric {self.name!r}: per_network and pairwise go together")

    @property
    def key(self) -> str | None:
        """Name of the per-network array in the features file (None for a streamed metric)."""
        if self.per_network is None:
            return None
        return self.feature_key or f"{self.name}_features"


# The entries' functions import their modules when called, so that reading the registry (the
# rules do, at every parse) does not import torch.


def _cka(options: dict):
    from rnnuniv.similarity.streaming import CKA

    return CKA()


def _cka_reference(states, **options) -> np.ndarray:
    from rnnuniv.similarity.metrics import cka_distance_matrix

    return cka_distance_matrix(states, **options)


def _procrustes(options: dict):
    from rnnuniv.similarity.streaming import Procrustes

    return Procrustes(options.get("procrustes_kind", "angular"))


def _procrustes_reference(states, **options) -> np.ndarray:
    from rnnuniv.similarity.metrics import procrustes_distance_matrix

    return procrustes_distance_matrix(states, **options)


def _dsa_features(states, options: dict) -> np.ndarray:
    from rnnuniv.similarity.dsa import dsa_eigenvalues

    return dsa_eigenvalues(states, int(options["dsa_n_delays"]), int(options["dsa_rank"]))


def _dsa_pairwise(eigenvalues: np.ndarray, options: dict) -> np.ndarray:
    from rnnuniv.similarity.dsa import wasserstein_eigenvalue_matrix

    return wasserstein_eigenvalue_matrix(eigenvalues)


def _dsa_reference(trajectories, *args, **options) -> np.ndarray:
    from rnnuniv.similarity.dsa import dsa_distance_matrix

    return dsa_distance_matrix(trajectories, *args, **options)


EXTRA_METRICS: dict[str, Metric] = {
    metric.name: metric
    for metric in (
        Metric(
            "cka",
            "CKA",
            streamed=_cka,
            full_width=True,
            reference=_cka_reference,
        ),
        Metric(
            "procrustes",
            "Procrustes",
            streamed=_procrustes,
            options={
                "procrustes_kind": Option(str, "angular", "Procrustes variant", ("angular", "euclidean"))
            },
            full_width=True,
            reference=_procrustes_reference,
        ),
        Metric(
            "dsa",
            "DSA",
            per_network=_dsa_features,
            pairwise=_dsa_pairwise,
            feature_key="dsa_eigenvalues",
            feature_options={
                "dsa_n_delays": Option(int, 5, "DSA: delays of the Hankel embedding"),
                "dsa_rank": Option(int, 10, "DSA: rank of the delay-embedded DMD operator"),
            },
            reference=_dsa_reference,
        ),
    )
}


def check_metric_names(names: Iterable[str]) -> list[str]:
    """``names`` as a list; an unregistered name is a ValueError naming the valid ones."""
    names = list(names)
    unknown = [n for n in names if n not in EXTRA_METRICS]
    if unknown:
        raise ValueError(
            f"unknown similarity metric(s) {unknown}; registered in "
            f"rnnuniv.similarity.registry.EXTRA_METRICS: {', '.join(EXTRA_METRICS)}"
        )
    return names


def feature_metrics(names: Iterable[str]) -> list[Metric]:
    """The metrics among ``names`` that have a per-network part (computed by the features stage)."""
    return [EXTRA_METRICS[n] for n in check_metric_names(names) if EXTRA_METRICS[n].per_network]


def metric_options(names: Iterable[str], config: dict, part: str = "options") -> dict:
    """``{key: value}`` of the options (``part="options"``) or feature options
    (``part="feature_options"``) of the metrics ``names``, from ``config`` (the ``similarity``
    section) or each option's default."""
    chosen = {}
    for name in check_metric_names(names):
        for key, option in getattr(EXTRA_METRICS[name], part).items():
            chosen[key] = option.type(config.get(key, option.default))
    return chosen


def add_option_arguments(parser, part: str = "options") -> None:
    """Add ``--key-name`` for every option (or feature option) of every registered metric."""
    seen = set()
    for metric in EXTRA_METRICS.values():
        for key, option in getattr(metric, part).items():
            if key in seen:
                continue
            seen.add(key)
            parser.add_argument(
                f"--{key.replace('_', '-')}",
                dest=key,
                type=option.type,
                default=option.default,
                choices=option.choices,
                help=f"{option.help} (metric {metric.name}; default {option.default})",
            )
