"""Hidden states of trained networks on the task's shared probe inputs.

Every network of a task sees the same probe set (``Task.probe``), so their states can be compared
sample by sample (SVCCA, CKA, ...) and used to seed the fixed-point search.
"""

from __future__ import annotations

import numpy as np
import torch

from .cells import Cell, Params, select
from .io import CorruptFileError
from .tasks import Probe

#: Statuses of networks whose states are analysed (untrained twins serve as a baseline).
ANALYSED = ("kept", "untrained")


def probe_states(cell: Cell, params: Params, probe: Probe, n_hidden: int) -> dict[str, np.ndarray]:
    """Run every network on the probe set.

    Returns float32 arrays: ``hidden`` ``[N, K, T, n]``, ``cell`` ``[N, K, T, n]`` (LSTM only),
    ``outputs`` ``[N, K, T, p]`` and ``probe_loss`` ``[N]`` (MSE against the probe targets).
    """
    inputs = probe.inputs.to(params["w_rec"].device, params["w_rec"].dtype)
    with torch.no_grad():
        states = cell.run(params, inputs)  # [N, K, T, S]
        hidden = cell.hidden(states, n_hidden)
        outputs = cell.readout(params, hidden)
        loss = (outputs - probe.targets.to(outputs)).pow(2).flatten(1).mean(dim=1)
    result = {
        "hidden": hidden.float().cpu().numpy(),
        "outputs": outputs.float().cpu().numpy(),
        "probe_loss": loss.float().cpu().numpy(),
    }
    if cell.architecture == "lstm":
        result["cell"] = states[..., n_hidden:].float().cpu().numpy()
    return result


def state_rows(states: dict[str, np.ndarray], wanted: list[str], path) -> list[int]:
    """Rows of a states file (``network_ids``) holding the ``wanted`` networks, in that order; a
    missing network is an error naming the file."""
    position = {nid: i for i, nid in enumerate(states["network_ids"].tolist())}
    missing = [nid for nid in wanted if nid not in position]
    if missing:
        raise CorruptFileError(path, f"no probe states for networks {missing}")
    return [position[nid] for nid in wanted]


def subset(params: Params, metadata_ids: list[str], wanted: list[str]) -> Params:
    """The stacked parameters of the ``wanted`` networks, in that order."""
    position = {nid: i for i, nid in enumerate(metadata_ids)}
    missing = [w for w in wanted if w not in position]
    if missing:
        raise KeyError(f"networks not in the weights file: {missing}")
    return select(params, torch.tensor([position[w] for w in wanted], dtype=torch.long))
