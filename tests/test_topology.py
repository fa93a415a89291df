"""Topology graphs and distances on hand-built networks whose skeletons are known exactly.

The n-bit memory ``h_i' = tanh(g_i h_i + 4 x_i)``, gains ``g_i = 2 + 0.2 i`` (readout ``y = h``),
has per unit the fixed points ``0`` (``d tanh(g h)/dh = g``: unstable) and ``+/- h*_i`` with
``h* = tanh(g h*) ~ 0.96`` (derivative ``g (1 - h*^2) < 0.2``: stable), so ``3^n`` fixed points:
``2^n`` attractors, one per code, and saddles with one unstable direction per zero coordinate.
Distinct gains make every unstable eigenvalue simple, so eigenvectors (hence unstable-manifold
edges) do not depend on the basis. A pulse ``+/- 1`` on channel k sets bit k
(``tanh(-2.3 + 4) > 0``): the input graph is the n-cube.
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


def memory_params(bits: int, coupling: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Vanilla n-bit memory with one network axis: w_rec = diag(gains) (+ coupling), w_in = 4 I, y = h."""
    eye = torch.eye(bits, dtype=DOUBLE)
    w_rec = torch.diag(gains(bits)) if coupling is None else torch.diag(gains(bits)) + coupling
    params = {"w_in": 4 * eye, "w_rec": w_rec, "bias": torch.zeros(bits, dtype=DOUBLE),
              "w_out": eye.clone(), "b_out": torch.zeros(bits, dtype=DOUBLE)}
    return {k: v.unsqueeze(0) for k, v in params.items()}


def gains(bits: int) -> torch.Tensor:
    return 2.0 + 0.2 * torch.arange(bits, dtype=DOUBLE)


def permute_units(params: dict[str, torch.Tensor], perm: torch.Tensor) -> dict[str, torch.Tensor]:
    """The same vanilla network with hidden units relabelled (unit perm[i] becomes unit i)."""
    return {"w_in": params["w_in"][..., perm], "w_rec": params["w_rec"][:, perm][:, :, perm],
            "bias": params["bias"][..., perm], "w_out": params["w_out"][:, perm],
            "b_out": params["b_out"]}


def grid(size: int, values=(-1.0, -0.5, 0.0, 0.5, 1.0)) -> torch.Tensor:
    return torch.tensor(list(itertools.product(values, repeat=size)), dtype=DOUBLE)


def cell_graph(params, bits: int) -> tuple[nx.MultiDiGraph, dict]:
    dynamics = topology.cell_dynamics(make_cell("vanilla", "tanh"), params, bits)
    fixed = find_fixed_points(dynamics.step, torch.zeros(bits, dtype=DOUBLE), grid(bits)[None], **FAST)
    points = topology.points_from_fixed_points([[f] for f in fixed], dynamics)
    return topology.flipflop_graphs(dynamics, points, ["net"])[0], points[0]


def embedded_cube_graph(seed: int = 0, extra: int = 3) -> nx.MultiDiGraph:
    """The 3-bit memory in 3 + extra dims (extra dims contract by 0.5), then rotated by random Q."""
    gen = torch.Generator().manual_seed(seed)
    dim = 3 + extra
    q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=DOUBLE))

    def step(z, x):
        u = z @ q  # coordinates in the original basis (rows: u = Q^T z)
        h = torch.tanh(gains(3) * u[..., :3] + 4 * x)
        return torch.cat([h, 0.5 * u[..., 3:]], -1) @ q.T

    def readout(z):
        return (z @ q)[..., :3]

    dynamics = topology.Dynamics(step, readout, n_inputs=3)
    start = torch.cat([grid(3), torch.zeros(125, extra, dtype=DOUBLE)], 1) @ q.T
    fixed = find_fixed_points(step, torch.zeros(3, dtype=DOUBLE), start[None], **FAST)
    points = topology.points_from_fixed_points([[f] for f in fixed], dynamics)
    return topology.flipflop_graphs(dynamics, points, ["rotated"])[0]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These maps are tiny: one thread avoids OpenMP spin-waits on a loaded machine (20x faster)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def cube():
    torch.manual_seed(0)
    return cell_graph(memory_params(3), 3)


@pytest.fixture(scope="module")
def graphs(cube):
    gen = torch.Generator().manual_seed(1)
    coupling = 0.05 * torch.randn(3, 3, generator=gen, dtype=DOUBLE)
    coupled, _ = cell_graph(memory_params(3, coupling), 3)
    permuted, _ = cell_graph(permute_units(memory_params(3, coupling), torch.tensor([2, 0, 1])), 3)
    two_bit, _ = cell_graph(memory_params(2), 2)
    return {"cube": cube[0], "rotated": embedded_cube_graph(), "coupled": coupled,
            "permuted": permuted, "two_bit": two_bit}


def test_cube_nodes_and_saddle_edges(cube):
    graph, points = cube
    data = dict(graph.nodes(data=True))
    assert graph.number_of_nodes() == 27
    stable = [v for v, d in data.items() if d["stability"] == "stable"]
    assert len(stable) == 8
    assert {data[v]["code"] for v in stable} == {"".join(c) for c in itertools.product("+-", repeat=3)}
    assert sorted(d["n_unstable"] for d in data.values()) == [0] * 8 + [1] * 12 + [2] * 6 + [3]
    for v, d in data.items():
        if d["n_unstable"] != 1:
            continue
        h = points["points"][d["index"]]
        zero = int(np.argmin(np.abs(h)))
        targets = {w for _, w, e in graph.out_edges(v, data=True) if e["kind"] == "unstable"}
        expected = set()
        for bit in "+-":  # the two attractors on either side of the saddle's zero coordinate
            code = ["+" if y > 0 else "-" for y in h]
            code[zero] = bit
            expected.add("".join(code))
        assert {data[w]["code"] for w in targets} == expected
        assert all(data[w]["stability"] == "stable" for w in targets)
    # the source (origin) has 3 real unstable modes, each followed both ways to a face saddle
    origin = next(v for v, d in data.items() if d["n_unstable"] == 3)
    ends = [w for _, w, e in graph.out_edges(origin, data=True) if e["kind"] == "unstable"]
    assert len(ends) == 6 and {data[w]["n_unstable"] for w in ends} == {2}
    summary = topology.flipflop_summary(graph)
    assert summary["eight_stable"] and summary["input_cube"] and summary["input_ideal"]
    assert summary["saddles_linking"] == 12 and summary["n_unresolved"] == 0


def test_cube_input_edges_flip_one_bit(cube):
    graph, _ = cube
    data = dict(graph.nodes(data=True))
    inputs = [(u, v, e) for u, v, e in graph.edges(data=True) if e["kind"] == "input"]
    assert len(inputs) == 8 * 3 * 2
    for u, v, e in inputs:
        expected = list(data[u]["code"])
        expected[e["channel"]] = "+" if e["sign"] > 0 else "-"
        assert data[v]["code"] == "".join(expected)
    assert nx.is_isomorphic(topology.input_graph(graph), nx.hypercube_graph(3))


def test_two_bit_memory_is_a_square(graphs):
    summary = topology.flipflop_summary(graphs["two_bit"])
    assert summary["n_stable"] == 4 and summary["input_cube"] and summary["input_ideal"]
    assert summary["saddles_linking"] == 4


def test_flipflop_distance_is_zero_exactly_for_isomorphic_graphs(graphs):
    names = list(graphs)
    distance, classes = topology.flipflop_distance([graphs[k] for k in names])
    d = pd.DataFrame(distance, index=names, columns=names)
    np.testing.assert_array_equal(distance, distance.T)
    np.testing.assert_array_equal(np.diag(distance), 0.0)
    # invariant to rotating (and embedding) the state space and to permuting hidden units
    assert d.loc["cube", "rotated"] == 0.0
    assert d.loc["coupled", "permuted"] == 0.0
    # coupling breaks the invariant coordinate planes (the source's branches no longer end on face
    # saddles), a different graph, but the memory is the same cube
    assert topology.flipflop_summary(graphs["coupled"])["input_ideal"]
    assert 0.0 < d.loc["cube", "coupled"]
    assert d.loc["cube", "two_bit"] > 0.1
    assert classes.tolist() == [0, 0, 1, 1, 2]
    # a missing input edge is a different graph: positive distance
    broken = graphs["cube"].copy()
    u, v, key = next((u, v, k) for u, v, k, e in broken.edges(keys=True, data=True) if e["kind"] == "input" and u != v)
    broken.remove_edge(u, v, key)
    distance, _ = topology.flipflop_distance([graphs["cube"], broken])
    assert 0.0 < distance[0, 1] < d.loc["cube", "two_bit"]


def test_graph_json_round_trip(graphs):
    graph = graphs["cube"]
    text = json.dumps(topology.graph_to_json(graph))
    back = nx.node_link_graph(json.loads(text), edges="edges")  # networkx alone reads it
    assert back.number_of_edges() == graph.number_of_edges()
    assert dict(back.nodes(data=True)) == dict(graph.nodes(data=True))
    assert topology.flipflop_distance([graph, back])[0][0, 1] == 0.0


def rotation(theta: float) -> torch.Tensor:
    return torch.tensor([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]], dtype=DOUBLE)


def oscillator_params(theta: float, contracting: int = 2) -> dict[str, torch.Tensor]:
    """Vanilla tanh, rows h' = tanh(h W): W = 1.05 R(theta) in the first 2 units, 0.5 I else."""
    n = 2 + contracting
    w_rec = torch.zeros(n, n, dtype=DOUBLE)
    w_rec[:2, :2] = 1.05 * rotation(theta)
    w_rec[2:, 2:] = 0.5 * torch.eye(contracting, dtype=DOUBLE)
    params = {"w_in": torch.zeros(1, n, dtype=DOUBLE), "w_rec": w_rec, "bias": torch.zeros(n, dtype=DOUBLE),
              "w_out": torch.ones(n, 1, dtype=DOUBLE), "b_out": torch.zeros(1, dtype=DOUBLE)}
    return {k: v.unsqueeze(0) for k, v in params.items()}


def oscillator_signature(params, n_conditions: int = 3):
    n = params["w_rec"].shape[-1]
    dynamics = topology.cell_dynamics(make_cell("vanilla", "tanh"), params, n)
    start = 0.3 * torch.randn(1, 64, n, generator=torch.Generator().manual_seed(0), dtype=DOUBLE)
    conditions = np.linspace(0, 1, n_conditions)
    fixed = [find_fixed_points(dynamics.step, torch.tensor([x], dtype=DOUBLE), start, **FAST)[0]
             for x in conditions]
    points = topology.points_from_fixed_points([fixed], dynamics)
    chains, values = topology.condition_chains("sine", conditions[:, None])
    graph = topology.bifurcation_graphs(points, chains, values)[0]
    return graph, topology.signature(graph, n_conditions, "sine")


@pytest.mark.parametrize("theta", [0.1, 0.3])
def test_oscillator_linearized_frequency(theta):
    graph, sig = oscillator_signature(oscillator_params(theta))
    data = [d for _, d in graph.nodes(data=True)]
    assert len(data) == 3  # one fixed point (the origin) per condition
    for d in data:
        assert d["frequency"] == pytest.approx(theta / (2 * math.pi), rel=1e-9)
        assert d["eig_modulus"] == pytest.approx(1.05, rel=1e-9) and d["n_unstable"] == 2
    np.testing.assert_allclose(sig[:, 5], theta / (2 * math.pi), rtol=1e-9)
    assert graph.number_of_edges() == 2  # continued from each condition to the next


def test_sine_summary_tracks_commanded_frequency():
    """h' = tanh(1.05 R(2 pi w(x)) h): linearised frequency equals the commanded one at every x."""
    task = make_task("sine", n_freqs=5)

    def step(h, x):
        theta = 2 * math.pi * task.frequency(x[..., :1])
        c, s = torch.cos(theta), torch.sin(theta)
        return torch.tanh(1.05 * torch.cat([c * h[..., :1] - s * h[..., 1:], s * h[..., :1] + c * h[..., 1:]], -1))

    dynamics = topology.Dynamics(step, lambda h: h[..., :1], n_inputs=1)
    names, inputs = zip(*task.fixed_point_conditions())
    start = 0.3 * torch.randn(1, 32, 2, generator=torch.Generator().manual_seed(0), dtype=DOUBLE)
    fixed = [find_fixed_points(step, torch.as_tensor(x, dtype=DOUBLE), start, **FAST)[0] for x in inputs]
    points = topology.points_from_fixed_points([fixed], dynamics)
    chains, values = topology.condition_chains("sine", np.array(inputs))
    graph = topology.bifurcation_graphs(points, chains, values, condition_names=names)[0]
    summary = topology.sine_summary(graph, values, task.frequency)
    assert summary["frequency_correlation"] == pytest.approx(1.0, abs=1e-9)
    assert summary["frequency_median_relative_error"] < 1e-9
    np.testing.assert_allclose(summary["linearized_frequency"], task.frequency(task.commands), rtol=1e-6)


def test_signature_distance_properties():
    perm = torch.tensor([3, 1, 0, 2])
    sigs = np.stack([
        oscillator_signature(oscillator_params(0.2))[1],
        oscillator_signature(permute_units(oscillator_params(0.2), perm))[1],
        oscillator_signature(oscillator_params(0.4))[1],
    ])
    distance = topology.signature_distance(sigs)
    np.testing.assert_allclose(distance, distance.T)
    np.testing.assert_array_equal(np.diag(distance), 0.0)
    assert distance[0, 1] == pytest.approx(0.0, abs=1e-12)  # permuting hidden units
    # only the frequency feature differs: (1/6) * |0.2 - 0.4| / (0.2 + 0.4)
    assert distance[0, 2] == pytest.approx((1 / 6) * (1 / 3), rel=1e-6)


def line_dynamics(slow: float) -> topology.Dynamics:
    """CDI-like linear map: h' = diag(slow, 0.5) h + (relevant stream) e_1; slow=1: line attractor."""
    decay = torch.tensor([slow, 0.5], dtype=DOUBLE)

    def step(h, x):
        relevant = (x[..., 0:2] * x[..., 2:4]).sum(-1, keepdim=True)
        return decay * h + relevant * torch.tensor([1.0, 0.0], dtype=DOUBLE)

    return topology.Dynamics(step, lambda h: h[..., :1], n_inputs=4)


@pytest.mark.parametrize("slow, expected", [(1.0, True), (0.9, False)])
def test_cdi_line_attractor(slow, expected):
    task = make_task("cdi")
    dynamics = line_dynamics(slow)
    names, inputs = zip(*task.fixed_point_conditions())
    start = torch.stack([torch.linspace(-1, 1, 21, dtype=DOUBLE), torch.zeros(21, dtype=DOUBLE)], 1)[None]
    fixed = [find_fixed_points(dynamics.step, torch.as_tensor(x, dtype=DOUBLE), start, **FAST,
                               manifold_length_scale=0.2)[0] for x in inputs]
    points = topology.points_from_fixed_points([fixed], dynamics)
    chains, values = topology.condition_chains("cdi", np.array(inputs))
    graph = topology.bifurcation_graphs(points, chains, values)[0]
    summary = topology.cdi_summary(points[0], np.array(inputs), graph)
    assert summary["line_attractor"] is expected
    if expected:
        assert graph.number_of_nodes() == 2  # one manifold node per context, not 21 points
        assert summary["contexts"][0]["line_eigenvalue"] == pytest.approx(1.0)
        assert summary["contexts"][0]["n_line_points"] == 21
    else:
        assert graph.number_of_nodes() == 2 and summary["contexts"][0]["n_line_points"] == 0


def test_empty_population():
    distance, classes = topology.flipflop_distance([])
    assert distance.shape == (0, 0) and classes.shape == (0,)
    assert topology.signature_distance(np.zeros((0, 3, 6))).shape == (0, 0)
    table = pd.DataFrame(columns=["network_id", "architecture", "eight_stable"])
    assert topology.universality_summary("flipflop", table, distance)["status"] == "no networks kept"


def test_scripts_end_to_end(tmp_path, cube):
    """topology_graph.py and topology_distance.py on a fake shard of two cube networks."""
    topology_graph, topology_distance = (load_script(name) for name in ("topology_graph", "topology_distance"))
    _, points = cube
    params = {k: torch.cat([v, v]).float() for k, v in memory_params(3).items()}
    ids = ["a", "b", "c"]  # c is not analysed (not in the fixed-points file)
    params = {k: torch.cat([v, v[:1]]) for k, v in params.items()}
    io.save_weights(tmp_path / "weights.safetensors", params,
                    {"architecture": "vanilla", "activation": "tanh", "n_hidden": 3, "network_ids": ids})
    n_points = len(points["q"])
    arrays = {k: np.concatenate([points[k], points[k]]) for k in
              ("points", "inputs", "q", "is_fixed", "eigenvalues", "n_unstable", "cluster", "condition_index")}
    io.save_npz(tmp_path / "fp.npz", network_ids=np.array(["a", "b"]), condition_names=np.array(["zero"]),
                condition_inputs=np.zeros((1, 3), np.float32),
                network_index=np.repeat([0, 1], n_points), **arrays)
    graph_path = tmp_path / "topology" / "s0.json"
    assert topology_graph.main(["--task", "flipflop", "--weights", str(tmp_path / "weights.safetensors"),
                                "--fixed-points", str(tmp_path / "fp.npz"), "--output", str(graph_path),
                                "--device", "cpu", "--options", '{"max_steps": 500}']) == 0
    record = json.loads(graph_path.read_text())
    assert set(record["networks"]) == {"a", "b"}
    assert record["networks"]["a"]["summary"]["input_ideal"] is True
    pd.DataFrame({"network_id": ids, "architecture": "vanilla", "activation": "tanh", "n_hidden": 3,
                  "status": ["kept", "kept", "above-threshold"], "shard": "s0"}).to_csv(
        tmp_path / "networks.csv", index=False)
    out = tmp_path / "topology"
    assert topology_distance.main(["--task", "flipflop", "--networks", str(tmp_path / "networks.csv"),
                                   "--graphs", str(graph_path), "--output-distance", str(out / "d.npy"),
                                   "--output-index", str(out / "index.csv"),
                                   "--output-summary", str(out / "summary.json")]) == 0
    np.testing.assert_array_equal(np.load(out / "d.npy"), np.zeros((2, 2)))
    assert list(pd.read_csv(out / "index.csv")["network_id"]) == ["a", "b"]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["fraction_input_cube"] == 1.0 and summary["by_architecture"]["vanilla"]["n_networks"] == 2


def load_script(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
