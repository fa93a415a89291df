"""Topology of the fixed points: the scaffold of the dynamics, and distances between scaffolds.

The claim tested (Maheswaranathan et al. 2019): the geometry of the dynamics differs by
architecture, the *topology* of the fixed points -- which exist, their stability, how inputs and
unstable manifolds connect them -- is universal. Modules, by concept:

- :mod:`.points`: per-network point sets read from the fixed-point shard, nodes, JSON;
- :mod:`.flipflop`: the flip-flop scaffold (memories, saddle links, input pulses);
- :mod:`.signatures`: sine and CDI condition grids as topological signatures, smooth tables;
- :mod:`.lines`: CDI line attractors from slow points and slow modes;
- :mod:`.distance`: WL/isomorphism and signature distances, classes, universality numbers.
"""

from .distance import (
    by_frequency,
    flipflop_distance,
    isomorphism_classes,
    signature_classes,
    signature_distance,
    universality_summary,
    wl_features,
    wl_labels,
)
from .flipflop import (
    flipflop_graphs,
    flipflop_summary,
    input_graph,
    memory_label,
    relax_to_memories,
    saddle_graph,
)
from .lines import LINE_DEFAULTS, cdi_contexts, cdi_summary, line_attractor, slow_mode_counts
from .points import (
    Dynamics,
    Points,
    add_nodes,
    add_outputs,
    cell_dynamics,
    code,
    graph_from_json,
    graph_to_json,
    points_from_fixed_points,
    points_from_shard,
    skeleton_nodes,
)
from .signatures import (
    SIGNATURE_FEATURES,
    bifurcation_graphs,
    condition_chains,
    principal_node,
    signature,
    sine_summary,
    smooth_rows,
)

__all__ = [
    "Dynamics", "Points", "add_nodes", "add_outputs", "cell_dynamics", "code", "graph_from_json",
    "graph_to_json", "points_from_fixed_points", "points_from_shard", "skeleton_nodes",
    "flipflop_graphs", "flipflop_summary", "input_graph", "memory_label", "relax_to_memories",
    "saddle_graph", "SIGNATURE_FEATURES", "bifurcation_graphs", "condition_chains",
    "principal_node", "signature", "sine_summary", "smooth_rows", "LINE_DEFAULTS", "cdi_contexts",
    "cdi_summary", "line_attractor", "slow_mode_counts", "by_frequency", "flipflop_distance",
    "isomorphism_classes", "signature_classes", "signature_distance", "universality_summary",
    "wl_features", "wl_labels",
]  # fmt: skip
