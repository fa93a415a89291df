"""Device dispatch: the compiled CPU kernels are chosen for CPU tensors only; GPU paths match the CPU.

The first tests need no GPU: they check the decision (:func:`rnnuniv.fused.choose_backend`), that a
non-CPU tensor never reaches :func:`rnnuniv.native.load` (run on torch's ``meta`` device, which has
shapes but no data), and ``device: auto``. The tests marked ``cuda`` run a shard's training steps,
the fixed-point finder, probe states and SVCCA on a GPU and compare them with the CPU; they skip
where there is none.
"""

import pytest
import torch

from rnnuniv import fused, native, runtime
from rnnuniv.cells import ARCHITECTURES, make_cell

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (none here)")


@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_native_kernels_chosen_for_cpu_float_tensors_only(architecture):
    assert fused.choose_backend("auto", "cpu", torch.float32, architecture) == "native"
    assert fused.choose_backend("auto", torch.device("cpu"), torch.float64, architecture) == "native"
    for device in ("cuda", "cuda:1", "meta", "mps"):
        assert fused.choose_backend("auto", device, torch.float32, architecture) == "torch"
    assert fused.choose_backend("auto", "cpu", torch.float16, architecture) == "torch"
    assert fused.choose_backend("torch", "cpu", torch.float32, architecture) == "torch"


def test_native_backend_on_a_gpu_is_an_error_naming_the_device():
    with pytest.raises(RuntimeError, match="cuda"):
        fused.choose_backend("native", "cuda", torch.float32, "gru")
    with pytest.raises(ValueError, match="backend"):
        fused.choose_backend("fast", "cpu", torch.float32, "gru")


def test_non_cpu_tensors_never_load_the_native_kernels(monkeypatch):
    """A whole recurrence, forward and backward, on non-CPU tensors runs without touching the build."""

    def forbidden():
        raise AssertionError("native.load called for a non-CPU tensor")

    monkeypatch.setattr(native, "load", forbidden)
    cell = make_cell("lstm", "tanh")
    params = cell.init_params(3, 5, 2, seeds=[0, 1])
    params = {k: v.to("meta").requires_grad_() for k, v in params.items()}
    inputs = torch.empty(2, 4, 6, 3, device="meta")
    states = fused.run(cell, params, inputs)
    assert states.shape == (2, 4, 6, 10) and states.device.type == "meta"
    grads = torch.autograd.grad(states.sum(), [params["w_rec"], params["w_in"]])
    assert grads[0].shape == params["w_rec"].shape and grads[0].device.type == "meta"
    # and the same call on CPU tensors does ask for them
    with pytest.raises(AssertionError, match="native.load called"):
        fused.run(cell, {k: torch.zeros(v.shape) for k, v in params.items()}, torch.zeros(inputs.shape))


def test_auto_device_follows_cuda_availability(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.resolve_device("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.resolve_device("auto") == torch.device("cuda")
    assert runtime.resolve_device("cpu") == torch.device("cpu")


# -- on a GPU -------------------------------------------------------------------------------------


@cuda
@pytest.mark.parametrize("architecture", ARCHITECTURES)
def test_shard_train_steps_on_cuda_match_cpu(architecture):
    from rnnuniv import training
    from rnnuniv.tasks import make_task

    cell, task = make_cell(architecture, "tanh"), make_task("flipflop", n_steps=20)
    config = training.TrainingConfig(n_steps=3, batch_size=8, checkpoint_every=0)
    finals = {}
    for device in ("cpu", "cuda"):
        state = training.init_state(cell, task, 6, [1, 2, 3], config, device)
        l2 = torch.full((3,), 1e-4, device=device)
        lr = torch.full((3,), 1e-2, device=device)
        for _ in range(config.n_steps):
            loss = training.train_step(cell, task, state, l2, lr, 6, config)
        assert loss.device.type == device
        finals[device] = {k: v.cpu() for k, v in state.params.items()}
    for key, value in finals["cpu"].items():
        torch.testing.assert_close(finals["cuda"][key], value, rtol=1e-4, atol=1e-5)


@cuda
def test_fixed_points_and_probe_states_on_cuda_match_cpu():
    from rnnuniv.fixedpoints import find_fixed_points
    from rnnuniv.probes import probe_states
    from rnnuniv.tasks import make_task

    cell = make_cell("gru", "tanh")
    task = make_task("flipflop", n_steps=30)
    params = cell.init_params(task.n_inputs, 8, task.n_outputs, seeds=[4, 5])
    probe = task.probe(seed=0)
    found, states = {}, {}
    for device in ("cpu", "cuda"):
        p = {k: v.to(device, torch.float64) for k, v in params.items()}
        states[device] = probe_states(cell, p, probe, 8)["hidden"]
        h0 = 0.3 * torch.randn(2, 64, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
        x = torch.zeros(task.n_inputs, dtype=torch.float64, device=device)
        results = find_fixed_points(lambda h, u, p=p: cell.step(p, h, u), x, h0.to(device))
        found[device] = [r.points[r.is_fixed].cpu() for r in results]
    torch.testing.assert_close(torch.as_tensor(states["cuda"]), torch.as_tensor(states["cpu"]), rtol=1e-5, atol=1e-6)
    for cpu_points, gpu_points in zip(found["cpu"], found["cuda"]):
        assert len(cpu_points) == len(gpu_points) > 0
        # the same set of fixed points (order may differ): every GPU point has a CPU point at it
        assert torch.cdist(gpu_points, cpu_points).min(dim=1).values.max() < 1e-6


@cuda
def test_svcca_on_cuda_matches_cpu():
    from rnnuniv import similarity

    gen = torch.Generator().manual_seed(0)
    states = [torch.randn(200, 6 + i, generator=gen, dtype=torch.float64) for i in range(3)]
    on_cpu = similarity.svcca_distance_matrix(states, n_components=4)
    on_gpu = similarity.svcca_distance_matrix([s.cuda() for s in states], n_components=4)
    torch.testing.assert_close(torch.as_tensor(on_gpu), torch.as_tensor(on_cpu), rtol=1e-8, atol=1e-10)


def test_build_name_differs_between_checkouts(monkeypatch, tmp_path):
    """Two checkouts sharing the extension cache must not rebuild each other's kernels."""
    here = native.build_name()
    assert here.startswith("rnnuniv_pointwise_") and here == native.build_name()
    monkeypatch.setattr(native, "SOURCE", tmp_path / "rnnuniv" / "csrc" / "pointwise.cpp")
    elsewhere = native.build_name()
    assert elsewhere != here and elsewhere.rsplit("_", 1)[0] == here.rsplit("_", 1)[0]


def _similarity_stage(tmp_path, device):
    """scripts/similarity_features.py on two shards, then scripts/cca_matrix.py, on ``device``:
    {output file: array}. States are seeded, so two devices see the same input."""
    import importlib.util
    from pathlib import Path

    import numpy as np
    import pandas as pd

    def script(name):
        path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    features, cca = script("similarity_features"), script("cca_matrix")
    rng = np.random.default_rng(0)
    ids = [f"n{i}" for i in range(6)]
    inputs = tmp_path / "inputs"
    inputs.mkdir(exist_ok=True)
    paths = []
    for shard in range(2):
        states = inputs / f"s{shard}.npz"
        hidden = rng.standard_normal((3, 4, 25, 8)).astype(np.float32).cumsum(2)
        np.savez(states, network_ids=np.array(ids[3 * shard : 3 * shard + 3]), hidden=hidden)
        paths.append(tmp_path / device / f"s{shard}.npz")
        features.main(["--states", str(states), "--width", "6", "--extra-metrics", "dsa", "--dsa-n-delays", "2", "--dsa-rank", "4",
                       "--device", device, "--output", str(paths[-1])])
    networks = inputs / "networks.csv"
    pd.DataFrame({"network_id": ids, "status": ["kept"] * 4 + ["untrained"] * 2}).to_csv(networks, index=False)
    out = tmp_path / device / "cca"
    cca.main(["--features", *map(str, paths), "--networks", str(networks), "--n-components", "4",
              "--sensitivity-components", "3", "--extra-metrics", "cka", "procrustes", "dsa",
              "--device", device, "--output-dir", str(out)])
    arrays = {p.relative_to(out).as_posix(): np.load(p) for p in sorted(out.rglob("distance.npy"))}
    for p in paths:
        with np.load(p) as stored:
            arrays.update({f"{p.name}:{k}": stored[k] for k in ("left", "singular_values", "dsa_eigenvalues")})
    return arrays


@cuda
def test_similarity_scripts_on_cuda_match_cpu(tmp_path):
    """--device cuda in both similarity scripts: every distance matrix equals the CPU's (1e-8), and
    so do the stored singular values and DSA eigenvalues (bases up to column signs)."""
    import numpy as np

    on_cpu = _similarity_stage(tmp_path, "cpu")
    on_gpu = _similarity_stage(tmp_path, "cuda")
    assert on_gpu.keys() == on_cpu.keys() and len(on_cpu) == 6 + 2 * 3
    for key, expected in on_cpu.items():
        if key.endswith(":left"):  # singular vectors are defined up to sign
            signs = np.sign((on_gpu[key] * expected).sum(-1, keepdims=True))
            np.testing.assert_allclose(on_gpu[key] * signs, expected, rtol=1e-6, atol=1e-8, err_msg=key)
        elif key.endswith(":dsa_eigenvalues"):
            np.testing.assert_allclose(np.sort_complex(on_gpu[key]), np.sort_complex(expected), atol=1e-6, err_msg=key)
        else:
            np.testing.assert_allclose(on_gpu[key], expected, rtol=1e-8, atol=1e-10, err_msg=key)
