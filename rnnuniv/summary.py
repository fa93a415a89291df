"""The headline numbers: the paper's claims, one row each, with intervals, p-values and verdicts.

For each task, :func:`task_summary` turns the run's matrices and tables into

* ``claims``: rows (see :mod:`rnnuniv.claims`) for individuality (the SVCCA geometry separates
  architectures within each activation, and activations), universality (the topology distance
  does not separate architectures; the modal scaffold class is as frequent in every architecture),
  the figure-4 dissociation, and the task claims (flip-flop 8 memories + cube; sine linearised vs
  commanded frequency; CDI line attractor and more slow modes in gated architectures, Fig. 3f);
* ``silhouettes``: every silhouette of every distance space (architecture within each
  activation, pooled; activation; architecture x activation), chance-corrected, with interval and
  permutation p (:func:`rnnuniv.stats.silhouette_table`);
* ``within_between``: mean within / between-architecture distance per space, topology beside
  geometry;
* ``modal_class``, ``kept`` (kept fraction per architecture x activation) and ``sensitivity``
  (the individuality verdict at each SVCCA k, :func:`sensitivity_rows`).

Thresholds and resampling sizes come from the config's ``summary:`` section (``options``). Also
here: the figure-4 pair groups (:func:`untrained_comparison`) and the linearised response of
figure 3f (:func:`linear_response_by_modes`), used by the figures.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import pandas as pd


__all__ = [
    "LABELS",
    "DEFAULT_OPTIONS",
    "finite_subset",
    "untrained_comparison",
    "linear_response_by_modes",
    "as_bool",
    "task_summary",
    "sensitivity_rows",
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


DEFAULT_OPTIONS = {
    "n_bootstrap": 1000, "n_permutations": 1000, "seed": 0, "alpha": 0.05, "min_networks_per_group": 6,
    "separated": 0.25, "mixed": 0.1, "majority": 0.5, "frequency_correlation": 0.9,
    "geometry_space": "cca", "topology_space": "topology",
}
GATED = ("ugrnn", "gru", "lstm")


def _labels(index: pd.DataFrame, name: str) -> np.ndarray:
    return index[name].astype(str).to_numpy() if name in index else np.full(len(index), "?")


def _finite(distance, index: pd.DataFrame):
    keep = finite_subset(distance)
    return np.asarray(distance, dtype=np.float64)[np.ix_(keep, keep)], index[keep].reset_index(drop=True)


def powered_cells(index: pd.DataFrame, minimum: int) -> tuple[np.ndarray, dict[str, int]]:
    """Mask [N] of networks whose architecture x activation cell has >= ``minimum`` networks, and
    the cells left out (``"lstm|relu" -> 5``).

    An under-powered cell (too few kept networks for a silhouette interval to mean anything) is
    left out of the comparison rather than voiding it; the left-out cells are reported beside
    every verdict they touch.
    """
    if index is None or len(index) == 0 or "architecture" not in index or "activation" not in index:
        return np.ones(0 if index is None else len(index), dtype=bool), {}
    cells = index["architecture"].astype(str) + "|" + index["activation"].astype(str)
    sizes = cells.value_counts()
    small = {str(cell): int(n) for cell, n in sizes.items() if n < minimum}
    return (~cells.isin(list(small))).to_numpy(), dict(sorted(small.items()))


def _powered(distance, index: pd.DataFrame, minimum: int):
    keep, small = powered_cells(index, minimum)
    return np.asarray(distance)[np.ix_(keep, keep)], index[keep].reset_index(drop=True), small


def _left_out_note(small: dict[str, int], minimum: int) -> str:
    if not small:
        return ""
    listed = ", ".join(f"{cell} {n}" for cell, n in small.items())
    return f" [left out, fewer than {minimum} kept: {listed}]"


def _column(table: pd.DataFrame | None, name: str):
    """A column of an optional table, or None when the table or the column is absent."""
    if table is None or name not in table:
        return None
    return table[name]


def sensitivity_rows(matrices: Mapping[int, tuple], options: dict) -> list[dict]:
    """The individuality verdict (architecture silhouette in SVCCA space) at each SVCCA k.

    matrices: k -> (distance [N, N], index). Rows: k, statistic, lower, upper, p, n, verdict,
    reason, and ``changes`` (True where the verdict differs from the previous k's).
    """
    from rnnuniv import stats

    rows, previous = [], None
    for k in sorted(matrices):
        distance, index = _finite(*matrices[k])
        distance, index, _ = _powered(distance, index, options["min_networks_per_group"])
        claim = stats.architecture_claim(distance, _labels(index, "architecture"), _labels(index, "activation"),
                                         options["seed"], options["n_bootstrap"], options["n_permutations"])
        verdict = stats.separation_verdict(claim, options["separated"], options["alpha"],
                                           options["min_networks_per_group"])
        rows.append({"k": int(k), **{key: claim[key] for key in ("statistic", "lower", "upper", "p", "n")},
                     **verdict, "changes": previous is not None and verdict["verdict"] != previous})
        previous = verdict["verdict"]
    return rows


def task_summary(task: str, spaces: Mapping[str, tuple], untrained: tuple | None, networks: pd.DataFrame | None,
                 topology_networks: pd.DataFrame | None, sensitivity: Mapping[int, tuple],
                 topology_summary: dict | None, options: dict | None = None) -> dict:
    """Every claim of one task (module docstring). ``spaces``: space -> (distance, index)."""
    from rnnuniv import claims, stats

    o = {**DEFAULT_OPTIONS, **(options or {})}
    boot = {"n_bootstrap": o["n_bootstrap"], "n_permutations": o["n_permutations"], "seed": o["seed"]}
    minimum, alpha = o["min_networks_per_group"], o["alpha"]
    silhouettes, within_between = {}, {}
    left_out = {}
    for space, (distance, index) in spaces.items():
        distance, index = _finite(distance, index)
        distance, index, left_out[space] = _powered(distance, index, minimum)
        arch, act = _labels(index, "architecture"), _labels(index, "activation")
        if space in (o["geometry_space"], o["topology_space"]):
            silhouettes[space] = stats.silhouette_table(distance, arch, act, **boot)
        else:  # supplementary metrics: the headline silhouette only (keeps the job short)
            silhouettes[space] = {"architecture": stats.architecture_claim(
                distance, arch, act, o["seed"], o["n_bootstrap"], o["n_permutations"])}
        within_between[space] = claims.within_between_ratio(distance, arch, act)
    rows = []
    geometry, topology = o["geometry_space"], o["topology_space"]
    if geometry in silhouettes:
        table, note = silhouettes[geometry], _left_out_note(left_out[geometry], minimum)
        rows.append(claims.row("individuality: SVCCA geometry separates architectures (within activation)",
                               "silhouette*", table["architecture"],
                               _noted(stats.separation_verdict(table["architecture"], o["separated"], alpha, minimum), note)))
        rows.append(claims.row("individuality: SVCCA geometry separates activations", "silhouette*",
                               table["activation"],
                               _noted(stats.separation_verdict(table["activation"], o["separated"], alpha, minimum), note)))
    if topology in silhouettes:
        table, note = silhouettes[topology], _left_out_note(left_out[topology], minimum)
        rows.append(claims.row("universality: topology does not separate architectures", "silhouette*",
                               table["architecture"],
                               _noted(stats.mixing_verdict(table["architecture"], o["mixed"], minimum), note)))
    modal = None
    in_modal = _column(topology_networks, "in_modal_class")
    if in_modal is not None:
        keep, small_topology = powered_cells(topology_networks, minimum)
        t = topology_networks[keep].reset_index(drop=True)
        in_modal = t["in_modal_class"]
        modal = claims.modal_class_by_architecture(as_bool(in_modal), _labels(t, "architecture"),
                                                   _labels(t, "activation"), o["n_permutations"], o["seed"])
        smallest = min(modal["fractions"].values()) if modal["fractions"] else math.nan
        if min(modal["counts"].values(), default=0) < minimum:
            verdict = {"verdict": "inconclusive", "reason": f"too few networks per architecture (minimum {minimum})"}
        elif modal["p"] < alpha:
            verdict = {"verdict": "not held", "reason": f"modal-class fractions differ by architecture (p = {modal['p']:.3g})"}
        elif smallest >= o["majority"]:
            verdict = {"verdict": "held", "reason": f"every architecture >= {o['majority']:g} in the modal class, "
                       f"no difference (p = {modal['p']:.3g})"}
        else:
            verdict = {"verdict": "inconclusive", "reason": f"no difference detected, but an architecture has "
                       f"{smallest:.2f} < {o['majority']:g} in the modal class"}
        rows.append(claims.row("universality: same modal scaffold class in every architecture",
                               "chi-square", {"statistic": modal["chi_square"], "p": modal["p"], "n": modal["n"],
                                              "lower": math.nan, "upper": math.nan},
                               _noted(verdict, _left_out_note(small_topology, minimum))))
    else:
        rows.append(claims.not_available("universality: same modal scaffold class in every architecture",
                                         "chi-square", "topology/networks.csv with in_modal_class not available"))
    figure4 = None
    if untrained is not None:
        distance, index = _finite(*untrained)
        trained = as_bool(index["trained"]) if "trained" in index else np.ones(len(index), dtype=bool)
        figure4 = claims.figure4_claim(distance, trained, _labels(index, "activation"), **boot)
        rows.append(claims.row("figure 4: trained vs untrained (same activation) more similar than trained "
                               "pairs of other activations", "median difference",
                               figure4, stats.difference_verdict(figure4, alpha, minimum)))
    rows += _task_rows(task, topology_networks, o, boot)
    return {"claims": rows, "slow_modes": _slow_modes(topology_networks), "silhouettes": silhouettes, "within_between": within_between,
            "modal_class": modal, "figure4": figure4, "left_out": left_out,
            "kept": claims.kept_fractions(networks) if networks is not None and "status" in networks else [],
            "sensitivity": sensitivity_rows(sensitivity, o) if sensitivity else [],
            "topology_summary": topology_summary or {}}


def _noted(verdict: dict, note: str) -> dict:
    return {**verdict, "reason": verdict["reason"] + note} if note else verdict


def _slow_modes(table: pd.DataFrame | None) -> dict:
    """Mean (and count) of n_slow_modes per architecture (Fig. 3e/f); empty when not available."""
    modes = _column(table, "n_slow_modes")
    if modes is None:
        return {}
    values = pd.to_numeric(modes, errors="coerce")
    return {str(a): {"mean": float(values[table["architecture"] == a].mean()),
                     "n": int(values[table["architecture"] == a].notna().sum())}
            for a in sorted(table["architecture"].astype(str).unique())}


def _task_rows(task: str, table: pd.DataFrame | None, o: dict, boot: dict) -> list[dict]:
    """The task-specific claims from topology/networks.csv (absent column: a 'not available' row)."""
    from rnnuniv import claims, stats

    minimum = o["min_networks_per_group"]
    cells = None if table is None else np.char.add(_labels(table, "architecture"), _labels(table, "activation"))
    rows = []

    def fraction(claim, flags):
        result = claims.fraction_claim(flags, cells, boot["n_bootstrap"], boot["seed"])
        rows.append(claims.row(claim, "fraction", result, stats.level_verdict(result, o["majority"], minimum)))

    if task == "flipflop" or (table is not None and "has_8_memories" in table):
        name = "flip-flop: 8 memories with the cube scaffold (Fig. 1e)"
        memories, cube = _column(table, "has_8_memories"), _column(table, "cube_scaffold")
        if memories is None or cube is None:
            rows.append(claims.not_available(name, "fraction", "has_8_memories / cube_scaffold not available"))
        else:
            fraction(name, as_bool(memories) & as_bool(cube))
    if task == "sine" or (table is not None and "freq_correlation" in table):
        name = "sine: linearised frequency tracks the commanded one (Fig. 2d)"
        values = _column(table, "freq_correlation")
        if values is None:
            rows.append(claims.not_available(name, "median correlation", "freq_correlation not available"))
        else:
            result = claims.median_claim(pd.to_numeric(values, errors="coerce"), cells, boot["n_bootstrap"], boot["seed"])
            rows.append(claims.row(name, "median correlation", result,
                                   stats.level_verdict(result, o["frequency_correlation"], minimum)))
    if task == "cdi" or (table is not None and ("line_attractor" in table or "n_slow_modes" in table)):
        name = "CDI: line attractor (Fig. 3b)"
        flags = _column(table, "line_attractor")
        if flags is None:
            rows.append(claims.not_available(name, "fraction", "line_attractor not available"))
        else:
            fraction(name, as_bool(flags))
        name = "CDI: gated architectures use more slow modes than vanilla (Fig. 3f)"
        modes = _column(table, "n_slow_modes")
        if modes is None:
            rows.append(claims.not_available(name, "mean difference", "n_slow_modes not available"))
        else:
            arch = _labels(table, "architecture")
            result = claims.mean_difference_claim(pd.to_numeric(modes, errors="coerce"), np.isin(arch, GATED),
                                                  cells, _labels(table, "activation"), **boot)
            result["groups"] = stats.group_sizes(np.where(np.isin(arch, GATED), "gated", "vanilla"))
            rows.append(claims.row(name, "mean difference (gated - vanilla)", result,
                                   stats.difference_verdict(result, o["alpha"], minimum)))
    return rows
