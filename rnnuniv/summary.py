"""The headline numbers: do networks separate by architecture in geometry but not in topology?

For each task and each network-by-network distance matrix ``D`` [N, N] (SVCCA and the other
geometry metrics, and the fixed-point topology distance), :func:`separation` measures how the
networks group by a label (architecture, activation):

* silhouette ``s = mean_i (b_i - a_i) / max(a_i, b_i)`` (``a_i``: mean distance to the rest of i's
  group, ``b_i``: smallest mean distance to another group), in [-1, 1];
* mean within-group distance, mean between-group distance and their ratio (< 1: clustered).

The paper's claim (Maheswaranathan et al. 2019) holds for a task when the architectures separate
in CCA space (``s_cca >= separated``) and not in topology space (``s_topology < mixed``);
:func:`universality_verdict` states which, with the thresholds used.

Also here: the trained-versus-untrained similarity groups of figure 4
(:func:`untrained_comparison`) and the linearised response of figure 3f
(:func:`linear_response_by_modes`). Everything is a pure function of arrays.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import pandas as pd


__all__ = [
    "LABELS",
    "finite_subset",
    "separation",
    "universality_verdict",
    "untrained_comparison",
    "linear_response_by_modes",
    "as_bool",
    "to_markdown",
]

LABELS = ("architecture", "activation")


def finite_subset(distance) -> np.ndarray:
    """Boolean mask [N] of networks kept so that the sub-matrix ``D[keep][:, keep]`` is finite.

    Greedy: while a non-finite entry remains, drop the network with the most non-finite entries
    among those still kept (ties: the first). A network whose states had zero variance has a
    whole row of nan and is the only one dropped.
    """
    d = np.asarray(distance, dtype=np.float64)
    if d.ndim != 2 or d.shape[0] != d.shape[1]:
        raise ValueError(f"distance must be a square [N, N] matrix, got shape {d.shape}")
    bad = ~np.isfinite(d)
    bad = bad | bad.T
    keep = np.ones(d.shape[0], dtype=bool)
    while True:
        counts = (bad & keep[None, :]).sum(1) * keep
        if counts.size == 0 or counts.max() == 0:
            return keep
        keep[int(np.argmax(counts))] = False


def separation(distance, labels: Mapping[str, np.ndarray]) -> dict:
    """How well each label groups the networks of one distance matrix.

    distance [N, N]; labels: name -> [N] values. Networks with non-finite distances are dropped
    first (:func:`finite_subset`). Returns ``{"n_networks", "n_dropped_nonfinite", <label>:
    {"n_groups", "silhouette", "mean_within", "mean_between", "ratio"}}``; numbers that are
    undefined (fewer than 2 groups, or every network its own group) are nan.
    """
    from rnnuniv.embedding import silhouette, within_between  # scikit-learn: only when needed

    d = np.asarray(distance, dtype=np.float64)
    keep = finite_subset(d)
    d = d[np.ix_(keep, keep)]
    result: dict = {"n_networks": int(keep.sum()), "n_dropped_nonfinite": int((~keep).sum())}
    for name, values in labels.items():
        values = np.asarray(values)
        if values.shape != keep.shape:
            raise ValueError(f"labels {name!r} have shape {values.shape}, expected {keep.shape}")
        kept_values = values[keep].astype(str)
        result[name] = {
            "n_groups": int(len(np.unique(kept_values))),
            "silhouette": silhouette(d, kept_values),
            **within_between(d, kept_values),
        }
    return result


def universality_verdict(
    cca_silhouette: float, topology_silhouette: float, separated: float = 0.25, mixed: float = 0.1
) -> dict:
    """Whether the claim held: architectures separate in CCA space and not in topology space.

    held  <=>  s_cca >= separated  and  s_topology < mixed   (architecture-label silhouettes).
    Returns ``{"status": "held" | "not held" | "undetermined", "reason": str, "separated": ...,
    "mixed": ...}``; undetermined when either silhouette is nan (too few networks or labels).
    """
    if not 0 <= mixed <= separated <= 1:
        raise ValueError(f"need 0 <= mixed <= separated <= 1, got mixed={mixed}, separated={separated}")
    verdict = {"separated": float(separated), "mixed": float(mixed)}
    if not (math.isfinite(cca_silhouette) and math.isfinite(topology_silhouette)):
        return {
            **verdict,
            "status": "undetermined",
            "reason": "a silhouette is undefined (needs at least two architectures with kept "
            "networks and more networks than architectures in both spaces)",
        }
    geometry = cca_silhouette >= separated
    topology = topology_silhouette < mixed
    parts = [
        f"architectures {'separate' if geometry else 'do not separate'} in CCA space "
        f"(silhouette {cca_silhouette:.2f} {'>=' if geometry else '<'} {separated:g})",
        f"{'do not separate' if topology else 'separate'} in topology space "
        f"(silhouette {topology_silhouette:.2f} {'<' if topology else '>='} {mixed:g})",
    ]
    return {**verdict, "status": "held" if geometry and topology else "not held",
            "reason": "; ".join(parts)}


def as_bool(values) -> np.ndarray:
    """Booleans from a CSV column that may hold bools or the strings 'True'/'False'."""
    values = pd.Series(values)
    if values.dtype == bool:
        return values.to_numpy()
    return values.astype(str).str.lower().isin(("true", "1", "yes")).to_numpy()


def untrained_comparison(distance, trained, activation) -> dict[str, np.ndarray]:
    """Figure 4: SVCCA similarity ``1 - d`` of network pairs (i < j), in three groups.

    distance [N, N] (SVCCA distance = 1 - mean canonical correlation); trained [N] bool;
    activation [N]. Groups: ``trained_other_activation`` (both trained, activations differ),
    ``trained_untrained_same_activation`` (one trained, one untrained, same activation) and, for
    reference, ``trained_same_activation`` (both trained, same activation). Non-finite pairs are
    left out. The paper's point: trained networks are more alike across activations than a
    trained network is to an untrained one of its own kind.
    """
    d = np.asarray(distance, dtype=np.float64)
    trained = np.asarray(trained, dtype=bool)
    activation = np.asarray(activation).astype(str)
    upper = np.triu(np.ones(d.shape, dtype=bool), k=1) & np.isfinite(d)
    both = trained[:, None] & trained[None, :]
    one = trained[:, None] ^ trained[None, :]
    same = activation[:, None] == activation[None, :]
    groups = {
        "trained_other_activation": both & ~same,
        "trained_untrained_same_activation": one & same,
        "trained_same_activation": both & same,
    }
    return {name: 1.0 - d[mask & upper] for name, mask in groups.items()}


def linear_response_by_modes(
    eigenvalues, right, left, input_direction, readout, n_steps: int
) -> np.ndarray:
    """Figure 3f: readout of the linearised dynamics after ``n_steps`` of a unit input, keeping
    the ``k`` leading modes, for ``k = 1..K``.

    Around a fixed point, ``dh_{t+1} = J dh_t + B u`` with ``J = R diag(lambda) L``. A constant
    unit input ``u`` from ``dh_0 = 0`` gives ``dh_T = sum_i r_i (l_i . B u) g_i`` with
    ``g_i = sum_{t<T} lambda_i^t = (1 - lambda_i^T) / (1 - lambda_i)`` (``T`` when
    ``lambda_i = 1``). Keeping the ``k`` largest-modulus modes:

        y_k = Re sum_{i<k} (w_out^T r_i[:n]) (l_i . b) g_i,   b = B u  [S]

    Shapes: eigenvalues [K] (modulus-sorted, largest first), right [S, K], left [K, S],
    input_direction b [S], readout w_out [n, p] (n <= S: the LSTM readout sees only h). Returns
    [K, p], row ``k - 1`` = ``y_k``.
    """
    lam = np.asarray(eigenvalues, dtype=np.complex128)
    right = np.asarray(right, dtype=np.complex128)
    left = np.asarray(left, dtype=np.complex128)
    b = np.asarray(input_direction, dtype=np.complex128)
    readout = np.asarray(readout, dtype=np.float64)
    n_modes = min(lam.shape[0], right.shape[1], left.shape[0])
    lam, right, left = lam[:n_modes], right[:, :n_modes], left[:n_modes]
    near_one = np.abs(1.0 - lam) < 1e-12
    gain = np.where(near_one, float(n_steps), (1.0 - lam**n_steps) / np.where(near_one, 1.0, 1.0 - lam))
    n = readout.shape[0]
    per_mode = (right[:n].T @ readout) * ((left @ b) * gain)[:, None]  # [K, p]
    return np.cumsum(per_mode, axis=0).real


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, (float, np.floating)):
        return "nan" if not math.isfinite(value) else f"{value:.3f}"
    return str(value)


def to_markdown(summary: dict) -> str:
    """Human-readable summary.md of the dict written to summary.json."""
    thresholds = summary["thresholds"]
    lines = [
        "# Universality and individuality: summary of this run",
        "",
        "Silhouette of the architecture (and activation) labels in each network-by-network "
        "distance matrix; within/between = mean distance within vs between architectures.",
        f"The claim holds for a task when the architecture silhouette is >= {thresholds['separated']:g} "
        f"in CCA (SVCCA) space and < {thresholds['mixed']:g} in topology space.",
        "",
    ]
    for task, entry in summary["tasks"].items():
        verdict = entry["verdict"]
        lines += [f"## {task}", "", f"**Claim {verdict['status']}**: {verdict['reason']}.", ""]
        lines += [
            "| space | networks | silhouette (architecture) | silhouette (activation) "
            "| within | between | within/between |",
            "|---|---|---|---|---|---|---|",
        ]
        for space, numbers in entry["spaces"].items():
            arch = numbers.get("architecture", {})
            act = numbers.get("activation", {})
            lines.append(
                f"| {space} | {numbers['n_networks']} | {_fmt(arch.get('silhouette'))} "
                f"| {_fmt(act.get('silhouette'))} | {_fmt(arch.get('mean_within'))} "
                f"| {_fmt(arch.get('mean_between'))} | {_fmt(arch.get('ratio'))} |"
            )
        untrained = entry.get("untrained_similarity", {})
        if untrained:
            lines += ["", "Median SVCCA similarity (figure 4): " + ", ".join(
                f"{name.replace('_', ' ')} {_fmt(value['median'])} (n={value['n_pairs']})"
                for name, value in untrained.items()
            ) + "."]
        topology = entry.get("topology_summary") or {}
        if topology:
            lines += ["", "Topology universality numbers (topology/summary.json):", ""]
            for key, value in topology.items():
                if isinstance(value, dict):
                    lines.append(f"- {key}:")
                    lines += [f"  - {name}: " + (", ".join(f"{k} {_fmt(v)}" for k, v in inner.items())
                                                 if isinstance(inner, dict) else _fmt(inner))
                              for name, inner in value.items()]
                else:
                    lines.append(f"- {key}: {_fmt(value)}")
        lines.append("")
    return "\n".join(lines)
