"""Topology of the fixed points: the scaffold of the dynamics, and distances between scaffolds.

The claim tested (Maheswaranathan et al. 2019): the geometry of the dynamics differs by
architecture, the *topology* of the fixed points -- which exist, their stability, how inputs and
unstable manifolds connect them -- is universal. Modules, by concept:

- :mod:`.points`: per-network point sets read from the fixed-point shard, nodes, JSON;
- :mod:`.flipflop`: the flip-flop scaffold (memories, saddle links, input pulses);
- :mod:`.signatures`: sine and CDI condition grids as topological signatures, smooth tables;
- :mod:`.lines`: CDI line attractors from slow points and slow modes;
- :mod:`.distance`: WL/isomorphism and signature distances, classes, universality numbers;
- :mod:`.stage`: which of these each task gets, and the topology stages' work per shard and task.
"""

import importlib

# names -> submodule, imported on first use (PEP 562): a job that needs one submodule, e.g. the
# fixed-point stage reading .lines, does not pay for networkx and the rest at start-up
_NAMES_BY_SUBMODULE = {
    "points": (
        "Dynamics", "Points", "add_nodes", "add_outputs", "cell_dynamics", "code",
        "graph_from_json", "graph_to_json", "points_from_fixed_points", "points_from_shard",
        "skeleton_nodes",
    ),
    "flipflop": (
        "flipflop_graphs", "flipflop_summary", "input_graph", "memory_label", "relax_to_memories",
        "saddle_graph",
    ),
    "signatures": (
        "SIGNATURE_FEATURES", "bifurcation_graphs", "condition_chains", "principal_node",
        "signature", "sine_summary", "smooth_rows",
    ),
    "lines": (
        "LINE_DEFAULTS", "cdi_contexts", "cdi_summary", "line_attractor", "slow_mode_counts",
    ),
    "distance": (
        "by_frequency", "flipflop_distance", "isomorphism_classes", "signature_classes",
        "signature_distance", "universality_summary", "wl_features", "wl_labels",
    ),
}
_SUBMODULE_OF = {name: module for module, names in _NAMES_BY_SUBMODULE.items() for name in names}
__all__ = list(_SUBMODULE_OF)


def __getattr__(name: str):
    if name in _SUBMODULE_OF:
        value = getattr(importlib.import_module(f".{_SUBMODULE_OF[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
