"""Figure panels of the study, by theme, and the one registry that declares them.

- :mod:`.registry`: each kind of panel's function, inputs and context (:data:`KINDS`), and the
  lettered panels of each figure (:data:`FIGURES`); rules/figures.smk reads only this.
- :mod:`.data`: the panel request and the readers of the files panels draw.
- :mod:`.trials`: the task and example trajectories (figures 1-3 a, b).
- :mod:`.points`: example networks' fixed points (flip-flop scaffold, sine oscillation centres).
- :mod:`.spectra`: eigenvalues and linear response at each network's reference point (3e, 3f).
- :mod:`.geometry`: distance matrix and MDS embeddings of the similarity spaces and topology.
- :mod:`.comparisons`: trained vs untrained (figure 4) and training losses, over every task.
- :mod:`.connectivity`: connectivity-dynamics figures figC1-figC3.

Adding a panel: write ``panel_<name>(request, options) -> Figure`` in the module of its theme
(docstring: what it draws, from which inputs), add a :class:`~.registry.Kind` to
:data:`~.registry.KINDS` and place it on a figure in :data:`~.registry.FIGURES`. Importing this
package imports no plotting library; the panel modules are imported when a panel is drawn.
"""

from .registry import FIGURES, KINDS, Input, Kind, draw, example_shards, figure_panels, panel_context, panel_inputs

__all__ = ["FIGURES", "KINDS", "Input", "Kind", "draw", "example_shards", "figure_panels", "panel_context",
           "panel_inputs"]
