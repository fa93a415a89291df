"""Topology scaffolds and distances on hand-built networks whose skeletons are known exactly.

The n-bit memory ``h_i' = tanh(g_i h_i + 4 x_i)``, gains ``g_i = 2 + 0.2 i`` (readout ``y = h``),
has per unit the fixed points ``0`` (unstable) and ``+/- h*_i`` (``h* ~ 0.96``, stable), so
``3^n`` fixed points: ``2^n`` memories, one per code, ``n 2^(n-1)`` index-1 saddles (one zero
coordinate) linking the two memories on either side, and saddles of higher index. A pulse
``+/- 1`` on channel k sets bit k. Extra units ``h_e' = tanh(0.5 h_e)`` decay to 0 and change
nothing. The same memory is built as a vanilla network (any size, signed permutation of units,
and a random rotation of the whole state space by conjugating the map) and as a GRU with the
reset gate held open and the update gate nearly closed; all must have the same scaffold.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest
import torch

from rnnuniv import io, topology
from rnnuniv.cells import make_cell
from rnnuniv.fixedpoints import find_fixed_points
from rnnuniv.tasks import make_task

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
DOUBLE = torch.float64
FAST = dict(adam_iters=0, outlier_distance_scale=None)  # Newton from a grid finds every point
CODES = {"".join(c) for c in itertools.product("+-", repeat=3)}


def gains(bits: int) -> torch.Tensor:
    return 2.0 + 0.2 * torch.arange(bits, dtype=DOUBLE)


def memory_params(bits: int, extra: int = 0) -> dict[str, torch.Tensor]:
    """Vanilla n-bit memory (one network axis) with ``extra`` decaying units."""
    n = bits + extra
    w_rec = torch.diag(torch.cat([gains(bits), torch.full((extra,), 0.5, dtype=DOUBLE)]))
    w_in = torch.zeros(bits, n, dtype=DOUBLE)
    w_in[:, :bits] = 4 * torch.eye(bits, dtype=DOUBLE)
    w_out = torch.zeros(n, bits, dtype=DOUBLE)
    w_out[:bits] = torch.eye(bits, dtype=DOUBLE)
    params = {"w_in": w_in, "w_rec": w_rec, "bias": torch.zeros(n, dtype=DOUBLE), "w_out": w_out,
              "b_out": torch.zeros(bits, dtype=DOUBLE)}
    return {k: v.unsqueeze(0) for k, v in params.items()}


def signed_permutation(params, perm: torch.Tensor, signs: torch.Tensor):
    """The same vanilla tanh network in coordinates ``h~ = S P h`` (tanh is odd, bias 0)."""
    p = torch.eye(len(perm), dtype=DOUBLE)[perm] * signs[:, None]  # h~ = h @ p.T
    return {"w_in": params["w_in"] @ p.T, "w_rec": p @ params["w_rec"] @ p.T, "bias": params["bias"],
            "w_out": p @ params["w_out"], "b_out": params["b_out"]}


def gru_memory_params(bits: int, extra: int = 0) -> dict[str, torch.Tensor]:
    """GRU: r = sigmoid(30) ~ 1, z = sigmoid(-3); candidate c = tanh(4 x + U_c h) with U_c as above."""
    vanilla = {k: v[0] for k, v in memory_params(bits, extra).items()}
    n = bits + extra
    w_in = torch.zeros(bits, 3 * n, dtype=DOUBLE)
    w_in[:, 2 * n :] = vanilla["w_in"]
    w_rec = torch.zeros(n, 3 * n, dtype=DOUBLE)
    w_rec[:, 2 * n :] = vanilla["w_rec"]
    bias = torch.cat([torch.full((n,), 30.0), torch.full((n,), -3.0), torch.zeros(n)]).double()
    params = {"w_in": w_in, "w_rec": w_rec, "bias": bias, "bias_rec": torch.zeros(n, dtype=DOUBLE),
              "w_out": vanilla["w_out"], "b_out": vanilla["b_out"]}
    return {k: v.unsqueeze(0) for k, v in params.items()}


def grid(bits: int, size: int, basis: torch.Tensor | None = None) -> torch.Tensor:
    values = (-1.0, -0.5, 0.0, 0.5, 1.0)
    core = torch.tensor(list(itertools.product(values, repeat=bits)), dtype=DOUBLE)
    start = torch.cat([core, torch.zeros(len(core), size - bits, dtype=DOUBLE)], 1)
    return start if basis is None else start @ basis.T


def scaffold(dynamics: topology.Dynamics, bits: int, size: int, basis=None) -> tuple[nx.MultiDiGraph, dict]:
    fixed = find_fixed_points(dynamics.step, torch.zeros(bits, dtype=DOUBLE), grid(bits, size, basis)[None], **FAST)
    points = topology.points_from_fixed_points([[f] for f in fixed], dynamics)
    return topology.flipflop_graphs(dynamics, points, ["net"], max_steps=500)[0], points[0]


def cell_scaffold(architecture: str, params, bits: int, basis=None):
    size = params["w_rec"].shape[-2]
    return scaffold(topology.cell_dynamics(make_cell(architecture, "tanh"), params, size), bits, size, basis)


def rotated_scaffold(seed: int = 0, extra: int = 3) -> nx.MultiDiGraph:
    """The vanilla 3-bit memory with ``extra`` decaying units in coordinates ``z = Q h``, Q random."""
    size = 3 + extra
    q, _ = torch.linalg.qr(torch.randn(size, size, generator=torch.Generator().manual_seed(seed), dtype=DOUBLE))
    params = {k: v[0] for k, v in memory_params(3, extra).items()}
    cell = make_cell("vanilla", "tanh")

    def step(z, x):  # rows: h = z Q, z' = F(h) Q^T
        return cell.step(params, z @ q, x) @ q.T

    dynamics = topology.Dynamics(step, lambda z: cell.readout(params, z @ q), n_inputs=3)
    return scaffold(dynamics, 3, size, q)[0]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These maps are tiny: one thread avoids OpenMP spin-waits on a loaded machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def cube():
    return cell_scaffold("vanilla", memory_params(3), 3)


@pytest.fixture(scope="module")
def graphs(cube):
    perm, signs = torch.tensor([4, 2, 0, 1, 3]), torch.tensor([1.0, -1.0, 1.0, -1.0, -1.0], dtype=DOUBLE)
    return {
        "vanilla3": cube[0],
        "vanilla6": cell_scaffold("vanilla", memory_params(3, extra=3), 3)[0],
        "permuted5": cell_scaffold("vanilla", signed_permutation(
            {k: v[0] for k, v in memory_params(3, 2).items()}, perm, signs) | {}, 3,
            basis=(torch.eye(5, dtype=DOUBLE)[perm] * signs[:, None]))[0],
        "rotated6": rotated_scaffold(),
        "gru4": cell_scaffold("gru", gru_memory_params(3, extra=1), 3)[0],
        "two_bit": cell_scaffold("vanilla", memory_params(2, extra=1), 2)[0],
    }


def test_cube_scaffold(cube):
    graph, points = cube
    data = dict(graph.nodes(data=True))
    assert len(points["q"]) == 27  # every fixed point found, but only the 8 memories are nodes
    assert graph.number_of_nodes() == 8 and all(d["stability"] == "stable" for d in data.values())
    assert {d["code"] for d in data.values()} == CODES
    saddle_pairs = {frozenset((data[u]["code"], data[v]["code"]))
                    for u, v, e in graph.edges(data=True) if e["kind"] == "unstable"}
    hamming = {frozenset((a, b)) for a, b in itertools.combinations(CODES, 2)
               if sum(x != y for x, y in zip(a, b)) == 1}
    assert saddle_pairs == hamming  # 12 index-1 saddles, each linking the memories beside it
    for u, v, e in graph.edges(data=True):
        if e["kind"] == "input":
            expected = list(data[u]["code"])
            expected[e["channel"]] = "+" if e["sign"] > 0 else "-"
            assert data[v]["code"] == "".join(expected)
    assert graph.graph["saddles_by_index"] == {"2": 6, "3": 1}
    summary = topology.flipflop_summary(graph)
    assert summary["has_8_memories"] and summary["cube_scaffold"] and summary["saddle_cube"]
    assert summary["input_ideal"] and summary["n_unresolved"] == 0
    assert (summary["n_saddles_index1"], summary["n_saddles_higher"]) == (12, 7)


def test_same_scaffold_distance_zero_across_size_rotation_architecture(graphs):
    names = list(graphs)
    distance, classes = topology.flipflop_distance([graphs[k] for k in names])
    d = pd.DataFrame(distance, index=names, columns=names)
    np.testing.assert_array_equal(distance, distance.T)
    same = [k for k in names if k != "two_bit"]
    assert (d.loc[same, same].to_numpy() == 0.0).all()
    assert (d.loc["two_bit", same] > 0.1).all()
    assert classes.tolist() == [0, 0, 0, 0, 0, 1]  # 0 = the most frequent class
    for name in same:
        assert topology.flipflop_summary(graphs[name])["cube_scaffold"], name
    # the higher-saddle counts agree too, so comparing them keeps distance 0
    distance, _ = topology.flipflop_distance([graphs[k] for k in same], higher_saddles=True)
    np.testing.assert_array_equal(distance, 0.0)


def test_missing_link_is_a_different_scaffold(graphs):
    broken = graphs["vanilla3"].copy()
    u, v, key = next((u, v, k) for u, v, k, e in broken.edges(keys=True, data=True) if e["kind"] == "unstable")
    broken.remove_edge(u, v, key)
    broken.remove_edge(v, u, key)
    distance, classes = topology.flipflop_distance([graphs["vanilla3"], broken, graphs["two_bit"]])
    assert 0.0 < distance[0, 1] < distance[0, 2]
    assert len(set(classes.tolist())) == 3
    assert not topology.flipflop_summary(broken)["saddle_cube"]
    assert topology.flipflop_summary(broken)["cube_scaffold"]  # the input cube is intact


def test_rollouts_end_only_at_memories():
    """A start on the stable manifold of a saddle passes it and still ends at a memory."""
    cell = make_cell("vanilla", "tanh")
    params = memory_params(1)
    step = topology.cell_dynamics(cell, params, 1).step
    memories = torch.tensor([[[-0.9, ], [0.9]]], dtype=DOUBLE)
    h_star = float(find_fixed_points(step, torch.zeros(1, dtype=DOUBLE), memories, **FAST)[0].points.max())
    starts = torch.tensor([[[1e-6], [-1e-6]]], dtype=DOUBLE)  # beside the saddle at 0
    target = topology.relax_to_memories(
        step, starts, torch.ones(1, 2, dtype=torch.bool), torch.tensor([[[-h_star], [h_star]]], dtype=DOUBLE),
        torch.tensor([[0, 1]]), torch.full((1, 2), 0.02, dtype=DOUBLE), n_inputs=1, max_steps=500)
    assert target.tolist() == [[1, 0]]


def test_graph_json_round_trip(graphs):
    graph = graphs["gru4"]
    back = nx.node_link_graph(json.loads(json.dumps(topology.graph_to_json(graph))), edges="edges")
    assert back.number_of_edges() == graph.number_of_edges()
    assert dict(back.nodes(data=True)) == dict(graph.nodes(data=True))
    assert topology.flipflop_distance([graph, back])[0][0, 1] == 0.0


def rotation(theta: float) -> torch.Tensor:
    return torch.tensor([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]], dtype=DOUBLE)


def oscillator_graph(theta: float, n_conditions: int = 3):
    """Vanilla tanh, rows h' = tanh(h W): W = 1.05 R(theta) in 2 units, 0.5 I in 2 more."""
    w_rec = torch.zeros(4, 4, dtype=DOUBLE)
    w_rec[:2, :2] = 1.05 * rotation(theta)
    w_rec[2:, 2:] = 0.5 * torch.eye(2, dtype=DOUBLE)
    params = {"w_in": torch.zeros(1, 4, dtype=DOUBLE), "w_rec": w_rec, "bias": torch.zeros(4, dtype=DOUBLE),
              "w_out": torch.ones(4, 1, dtype=DOUBLE), "b_out": torch.zeros(1, dtype=DOUBLE)}
    dynamics = topology.cell_dynamics(make_cell("vanilla", "tanh"), {k: v[None] for k, v in params.items()}, 4)
    start = 0.3 * torch.randn(1, 64, 4, generator=torch.Generator().manual_seed(0), dtype=DOUBLE)
    conditions = np.linspace(0, 1, n_conditions)
    fixed = [find_fixed_points(dynamics.step, torch.tensor([x], dtype=DOUBLE), start, **FAST)[0] for x in conditions]
    points = topology.points_from_fixed_points([fixed], dynamics)
    chains, values = make_task("sine").condition_chains(conditions[:, None])
    return topology.bifurcation_graphs(points, chains, values, n_steps=100)[0]


def test_sine_signature_is_topological_and_smooth_quantities_separate():
    slow, fast = oscillator_graph(0.2), oscillator_graph(0.4)
    sig = np.stack([topology.signature(g, 3, "sine") for g in (slow, fast)])
    # one unstable spiral per condition (the origin), no slow mode (|lambda| = 1.05: tau ~ 20 < T)
    np.testing.assert_array_equal(sig[0], [[0, 1, 0, 1, 0]] * 3)
    np.testing.assert_array_equal(topology.signature_distance(sig), 0.0)  # frequency is not topology
    assert topology.signature_classes(sig).tolist() == [0, 0]
    rows = topology.smooth_rows(slow, 3, "sine")
    assert [r["linearized_frequency"] for r in rows] == pytest.approx([0.2 / (2 * math.pi)] * 3, rel=1e-9)
    assert [r["principal_modulus"] for r in rows] == pytest.approx([1.05] * 3, rel=1e-9)
    assert slow.number_of_edges() == 2  # continued from each condition to the next


def test_sine_summary_tracks_commanded_frequency():
    """h' = tanh(1.05 R(2 pi w(x)) h): linearised frequency equals the commanded one at every x."""
    task = make_task("sine", n_freqs=5)

    def step(h, x):
        theta = 2 * math.pi * task.frequency(x[..., :1])
        c, s = torch.cos(theta), torch.sin(theta)
        return torch.tanh(1.05 * torch.cat([c * h[..., :1] - s * h[..., 1:], s * h[..., :1] + c * h[..., 1:]], -1))

    names, inputs = zip(*task.fixed_point_conditions())
    start = 0.3 * torch.randn(1, 32, 2, generator=torch.Generator().manual_seed(0), dtype=DOUBLE)
    fixed = [find_fixed_points(step, torch.as_tensor(x, dtype=DOUBLE), start, **FAST)[0] for x in inputs]
    points = topology.points_from_fixed_points([fixed])
    chains, values = task.condition_chains(np.array(inputs))
    graph = topology.bifurcation_graphs(points, chains, values, condition_names=names)[0]
    summary = topology.sine_summary(graph, values, task.frequency)
    assert summary["frac_oscillatory"] == 1.0 and summary["n_conditions"] == 5
    assert summary["freq_correlation"] == pytest.approx(1.0, abs=1e-9)
    assert summary["freq_median_rel_error"] < 1e-9


def integrator_points(decay: list[float]):
    """CDI-like linear map h' = diag(decay) h + (relevant stream) e_1, fixed points per context."""
    rates = torch.tensor(decay, dtype=DOUBLE)

    def step(h, x):
        relevant = (x[..., 0:2] * x[..., 2:4]).sum(-1, keepdim=True)
        return rates * h + relevant * torch.nn.functional.one_hot(torch.tensor(0), len(decay)).double()

    task = make_task("cdi")
    _, inputs = zip(*task.fixed_point_conditions())
    start = torch.zeros(1, 41, len(decay), dtype=DOUBLE)
    start[0, :, 0] = torch.linspace(-1, 1, 41, dtype=DOUBLE)
    fixed = [find_fixed_points(step, torch.as_tensor(x, dtype=DOUBLE), start, **FAST)[0] for x in inputs]
    return task, np.array(inputs), topology.points_from_fixed_points([fixed])[0]


@pytest.mark.parametrize("decay, line, slow_modes", [
    ([1.0, 0.5], True, 1),                # perfect integrator: a line of fixed points, lambda = 1
    ([math.exp(-1 / 5), 0.5], False, 0),  # leaky, tau = 5 steps: one point, no slow mode
    ([1.0, 0.999, 0.5], True, 2),         # integration spread over two slow modes (Fig. 3f)
])
def test_line_attractor_from_slow_points(decay, line, slow_modes):
    task, inputs, points = integrator_points(decay)
    # probe speed 0.05 per step, spread 1: the line (extent 2) spans the trajectories
    summary = topology.cdi_summary(points, inputs, 0.05, 1.0, task.n_steps)
    assert summary["line_attractor"] is line
    assert summary["line_attractor_ctx0"] is line and summary["line_attractor_ctx1"] is line
    assert summary["n_slow_modes"] == slow_modes
    assert summary["n_slow_modes_ctx0"] == summary["n_slow_modes_ctx1"] == slow_modes


def test_line_attractor_criteria():
    """A blob is not 1-D, a short line does not span the trajectories, a gap breaks the order."""
    rng = np.random.default_rng(0)
    ones = np.ones((40, 3), complex)
    ones[:, 1:] = 0.5
    q = np.zeros(40)
    line = np.c_[np.linspace(-1, 1, 40), np.zeros((40, 2))]
    assert topology.line_attractor(line, q, ones, 0.05, 1.0, 30)["line_attractor"]
    blob = rng.normal(size=(40, 3))
    assert not topology.line_attractor(blob, q, ones, 0.05, 1.0, 30)["line_attractor"]
    assert not topology.line_attractor(0.1 * line, q, ones, 0.05, 1.0, 30)["line_attractor"]
    gapped = line[np.r_[0:10, 30:40]]
    assert not topology.line_attractor(gapped, q[:20], ones[:20], 0.05, 1.0, 30)["line_attractor"]
    fast = np.full(40, 0.5 * (0.05 * 0.02) ** 2)  # speed 0.02 x the probe speed: not slow
    assert topology.line_attractor(line, fast, ones, 0.05, 1.0, 30)["n_slow_points"] == 0
    with pytest.raises(ValueError, match="unknown"):
        topology.line_attractor(line, q, ones, 0.05, 1.0, 30, line_tol=0.1)


def test_marginal_read_from_the_shard(cube):
    _, points = cube
    stored = dict(points, n_marginal=np.full(len(points["q"]), 7))
    nodes = topology.skeleton_nodes(stored, with_codes=True)
    assert {n["n_marginal"] for n in nodes} == {7}
    assert {n["n_marginal"] for n in topology.skeleton_nodes(points, marginal_tol=1e-3)} == {0}


def test_empty_population():
    distance, classes = topology.flipflop_distance([])
    assert distance.shape == (0, 0) and classes.shape == (0,)
    assert topology.signature_distance(np.zeros((0, 3, 5))).shape == (0, 0)
    table = pd.DataFrame(columns=["network_id", "architecture", "activation", "scaffold_class", "in_modal_class"])
    assert topology.universality_summary("flipflop", table, distance)["status"] == "no networks kept"


def test_scripts_end_to_end(tmp_path, cube):
    """topology_graph.py and topology_distance.py on a fake shard of two cube networks."""
    topology_graph, topology_distance = (load_script(name) for name in ("topology_graph", "topology_distance"))
    _, points = cube
    params = {k: torch.cat([v, v, v]).float() for k, v in memory_params(3).items()}
    ids = ["a", "b", "c"]  # c is not analysed (not in the fixed-points file)
    io.save_weights(tmp_path / "weights.safetensors", params,
                    {"architecture": "vanilla", "activation": "tanh", "n_hidden": 3, "network_ids": ids})
    n_points = len(points["q"])
    keys = ("points", "inputs", "q", "is_fixed", "eigenvalues", "n_unstable", "cluster", "condition_index")
    arrays = {k: np.concatenate([points[k], points[k]]) for k in keys}
    arrays["right_eigenvectors"] = np.concatenate([points["right_eigenvectors"][:, :, :2]] * 2)
    io.save_npz(tmp_path / "fp.npz", network_ids=np.array(["a", "b"]), condition_names=np.array(["zero"]),
                condition_inputs=np.zeros((1, 3), np.float32), marginal_tol=np.float64(1e-3),
                network_index=np.repeat([0, 1], n_points), **arrays)
    graph_path = tmp_path / "topology" / "s0.json"
    assert topology_graph.main(["--task", "flipflop", "--weights", str(tmp_path / "weights.safetensors"),
                                "--fixed-points", str(tmp_path / "fp.npz"), "--output", str(graph_path),
                                "--device", "cpu", "--options", '{"max_steps": 500}']) == 0
    record = json.loads(graph_path.read_text())
    assert set(record["networks"]) == {"a", "b"}
    assert record["networks"]["a"]["summary"]["cube_scaffold"] is True
    pd.DataFrame({"network_id": ids, "architecture": "vanilla", "activation": "tanh", "n_hidden": 3,
                  "status": ["kept", "kept", "above-threshold"], "shard": "s0"}).to_csv(
        tmp_path / "networks.csv", index=False)
    out = tmp_path / "topology"
    assert topology_distance.main([
        "--task", "flipflop", "--networks", str(tmp_path / "networks.csv"), "--graphs", str(graph_path),
        "--output-distance", str(out / "d.npy"), "--output-index", str(out / "index.csv"),
        "--output-networks", str(out / "networks.csv"), "--output-smooth", str(out / "smooth.csv"),
        "--output-summary", str(out / "summary.json")]) == 0
    np.testing.assert_array_equal(np.load(out / "d.npy"), np.zeros((2, 2)))
    index = pd.read_csv(out / "index.csv")
    assert list(index["network_id"]) == ["a", "b"] and list(index.columns) == [
        "network_id", "architecture", "activation", "n_hidden", "status", "shard"]
    table = pd.read_csv(out / "networks.csv")
    assert list(table["scaffold_class"]) == [0, 0] and table["in_modal_class"].all()
    assert table["has_8_memories"].all() and table["cube_scaffold"].all()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["by_architecture"]["vanilla"]["fraction_in_modal_class"] == 1.0
    assert summary["n_classes"] == 1 and summary["by_architecture_activation"]["vanilla/tanh"]["n_networks"] == 2


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_line_attractor_at_a_condition_without_points_is_none():
    """A trained CDI network may have no fixed or slow point at a context: no line, no crash."""
    from rnnuniv.topology.lines import line_attractor

    record = line_attractor(np.zeros((0,)), np.zeros(0), np.zeros((0,)), probe_speed=0.1,
                            probe_spread=1.0, n_steps=35)
    assert record["line_attractor"] is False
    assert record["n_points"] == 0 and record["n_slow_points"] == 0 and record["n_slow_modes"] == 0
