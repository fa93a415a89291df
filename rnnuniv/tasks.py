"""The three tasks of the study, as seeded generators of (inputs, targets) batches.

Every tensor is batch-major float32, ``[batch, time, channels]``, on the device of the
``torch.Generator`` passed to ``sample``. Step index ``k = 0..T-1`` is the output read after
the ``k+1``-th cell update (``h_{k+1} = F(h_k, x_k)``, ``y_k = h_{k+1} @ w_out + b_out``).

``flipflop`` (:class:`FlipFlop`, 3-bit flip-flop)
    inputs ``[B, T, 3]`` in {-1, 0, +1}: channel ``i`` pulses at step ``k`` with probability
    ``p_flip`` and a random sign; every channel pulses at ``k = 0``. targets ``[B, T, 3]``:
    ``y_k[i] = u_j[i]`` with ``j = max{j <= k : u_j[i] != 0}`` (sign of the last pulse).
``sine`` (:class:`SineWave`, frequency-cued sine wave)
    inputs ``[B, T, 1]``: a static command ``x`` from ``linspace(0, 1, n_freqs)``, constant over
    time. targets ``[B, T, 1]``: ``y_k = sin(2 pi w (k + 1))`` with ``w = w_min + (w_max - w_min) x``
    cycles per step. The phase counts cell updates (``t = k + 1 = 1..T``), so the first target,
    ``sin(2 pi w)``, already depends on the command and is reachable from a zero initial state.
``cdi`` (:class:`ContextIntegration`, context-dependent integration, Mante et al. 2013)
    inputs ``[B, T, 4]`` = ``[u1, u2, c1, c2]``: streams ``u_i,k = mu_i + sigma eps_i,k`` with
    per-trial ``mu_i ~ U[-mu_max, mu_max]`` and ``eps ~ N(0, 1)``; ``(c1, c2)`` a static one-hot
    context. targets ``[B, T, 1]``: ``y_k = sum_{j<=k} (c1 u1,j + c2 u2,j) / (mu_max T)``, the
    running sum of the selected stream, scaled so the noiseless final value ``mu / mu_max`` lies
    in [-1, 1]; the other stream is ignored. The output is required at every step (as in
    Maheswaranathan et al. 2019, Fig. 3a: the selected white-noise stream is integrated as the
    network's output). Default ``T = 35``: the shortest T (in steps of 5) at which the
    best-scaled leaky integrator with time constant 10 steps has a normalised error
    (MSE / Var(target)) of at least 0.1, twice the default keep threshold; at T = 30 it scores
    0.092, at T = 35 0.106.

Each task also gives a fixed, seeded :class:`Probe` set (identical for every network of the task)
and the constant input vectors at which fixed points are sought (``fixed_point_conditions``).

Each task owns its **input layout**; analyses and figures ask it instead of decoding channels:
``input_channels``, ``context_channels``/``context_of``, ``relevant_channel``, ``condition_chains``,
``reference_conditions``, ``rest_conditions``. The :class:`Task` defaults (one context, channel 0
relevant, conditions not chained, reference = weakest input) run a new task through topology and
figures without overriding them.
Build tasks by name with :func:`make_task`; :func:`task_to_dict` gives their JSON record.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import torch

__all__ = ["Probe", "Task", "FlipFlop", "SineWave", "ContextIntegration",
           "TASKS", "make_task", "task_to_dict", "task_from_dict"]


@dataclass(frozen=True)
class Probe:
    """A fixed probe set: ``inputs [K, T, m]``, ``targets [K, T, p]``, per-trial labels ``[K]``."""

    inputs: torch.Tensor
    targets: torch.Tensor
    conditions: dict[str, np.ndarray] = field(default_factory=dict)
    description: str = ""


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_float(name: str, value, low: float, high: float, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not (low < value if low_open else low <= value) or not value <= high:
        raise ValueError(f"{name} must be in {'(' if low_open else '['}{low}, {high}], got {value!r}")
    return value


class Task:
    """Interface shared by the tasks; subclasses are frozen dataclasses of their parameters."""

    name: ClassVar[str]
    n_inputs: ClassVar[int]
    n_outputs: ClassVar[int]
    n_steps: int
    chain_conditions: ClassVar[bool] = False  # fixed-point conditions form continuation chains
    # the probe condition that labels a trial in plots: (key of Probe.conditions, label, colormap)
    trial_label: ClassVar[tuple[str, str, str] | None] = None

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``(inputs [B, T, m], targets [B, T, p])``, fully determined by ``generator``'s state."""
        _check_int("batch_size", batch_size, 1)
        inputs = self._sample_inputs(batch_size, generator)
        return inputs, self.targets(inputs)

    def targets(self, inputs: torch.Tensor) -> torch.Tensor:
        """The deterministic target ``[B, T, p]`` of an input batch ``[B, T, m]``."""
        raise NotImplementedError

    def probe(self, seed: int = 0) -> Probe:
        """A fixed probe set, the same for every call with the same ``seed``."""
        raise NotImplementedError

    def fixed_point_conditions(self, n_grid: int | None = None) -> list[tuple[str, np.ndarray]]:
        """``(name, constant input [m] float32)`` pairs at which fixed points are sought."""
        raise NotImplementedError

    def _sample_inputs(self, batch_size: int, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    # -- input layout (defaults for a task with one context and no chained conditions) --------
    @property
    def input_channels(self) -> dict[str, int]:
        """Name -> index of every input channel; default ``"input 1"``, ``"input 2"``, ..."""
        return {f"input {i + 1}": i for i in range(self.n_inputs)}

    @property
    def context_channels(self) -> tuple[int, ...]:
        """The channels of a one-hot context, in context order; default none (one context)."""
        return ()

    @property
    def n_contexts(self) -> int:
        return max(1, len(self.context_channels))

    def context_of(self, inputs) -> np.ndarray:
        """Context ``[C]`` (0-based, largest context channel) of conditions ``[C, m]`` or trials ``[K, T, m]``."""
        first = _first_step(inputs, self.n_inputs)
        if not self.context_channels:
            return np.zeros(len(first), dtype=np.int64)
        return first[:, list(self.context_channels)].argmax(1)

    def relevant_channel(self, inputs) -> np.ndarray:
        """Per condition ``[C, m]`` (or trial), the input channel its output follows; default 0."""
        return np.zeros(len(_first_step(inputs, self.n_inputs)), dtype=np.int64)

    def input_strength(self, inputs) -> np.ndarray:
        """``sum_i |u_i|`` over the non-context channels of conditions ``[C, m]`` (or trials)."""
        first = _first_step(inputs, self.n_inputs)
        others = [i for i in range(first.shape[1]) if i not in self.context_channels]
        return np.abs(first[:, others]).sum(1)

    def condition_chains(self, condition_inputs) -> tuple[list[list[int]], np.ndarray]:
        """Fixed-point conditions ``[C, m]`` ordered into continuation chains, and each one's value
        along its chain ``[C]`` (the input on its :meth:`relevant_channel`). With
        ``chain_conditions``, one chain per context sorted by that value; else (the default) each
        condition alone. Conditions repeating an earlier input vector are left out."""
        inputs = _first_step(condition_inputs, self.n_inputs)
        value = inputs[np.arange(len(inputs)), self.relevant_channel(inputs)]
        if not self.chain_conditions:
            return [[c] for c in _distinct(inputs)], np.zeros(len(inputs))
        context = self.context_of(inputs)
        chains = [sorted((c for c in _distinct(inputs) if context[c] == k), key=lambda c: value[c])
                  for k in range(self.n_contexts)]
        return [chain for chain in chains if chain], value

    def reference_conditions(self, condition_inputs) -> np.ndarray:
        """Where networks are linearised for population spectra: the conditions ``[C, m]`` of context 0
        with the weakest :meth:`input_strength` (several only when tied)."""
        inputs = _first_step(condition_inputs, self.n_inputs)
        first = self.context_of(inputs) == 0
        if not first.any():
            return np.zeros(0, dtype=np.int64)
        strength = self.input_strength(inputs)
        return np.flatnonzero(first & (strength == strength[first].min()))

    def rest_conditions(self, condition_inputs) -> list[int | None]:
        """Per context, its first condition of weakest :meth:`input_strength` (None: no condition)."""
        inputs = _first_step(condition_inputs, self.n_inputs)
        context, strength = self.context_of(inputs), self.input_strength(inputs)
        where = [np.flatnonzero(context == k) for k in range(self.n_contexts)]
        return [int(c[np.argmin(strength[c])]) if c.size else None for c in where]

    def _set(self, name: str, value) -> None:
        object.__setattr__(self, name, value)  # normalise a field of a frozen dataclass


def _first_step(inputs, n_inputs: int) -> np.ndarray:
    """Conditions ``[C, m]`` as float64, or the first step of trials ``[K, T, m]``."""
    array = np.asarray(inputs.cpu() if isinstance(inputs, torch.Tensor) else inputs, dtype=np.float64)
    if array.ndim == 3:
        array = array[:, 0, :]
    if array.ndim != 2 or array.shape[1] != n_inputs:
        raise ValueError(f"inputs must be [C, {n_inputs}] or [K, T, {n_inputs}], got {array.shape}")
    return array


def _distinct(inputs: np.ndarray) -> list[int]:
    """Indices of the rows that do not repeat an earlier row."""
    return [c for c in range(len(inputs)) if not any(np.array_equal(inputs[c], inputs[d]) for d in range(c))]


def _cpu_generator(seed: int) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed(int(seed))


@dataclass(frozen=True)
class FlipFlop(Task):
    """N-bit flip-flop (default 3 bits): each output holds the sign of its channel's last pulse."""

    name: ClassVar[str] = "flipflop"
    trial_label: ClassVar[tuple[str, str, str]] = ("final_state", "final state code", "tab10")
    n_steps: int = 100    # T, steps per trial
    p_flip: float = 0.05  # probability that a channel pulses at a step k >= 1
    n_bits: int = 3       # channels (inputs = outputs)

    def __post_init__(self):
        self._set("n_steps", _check_int("n_steps", self.n_steps, 1))
        self._set("p_flip", _check_float("p_flip", self.p_flip, 0.0, 1.0))
        self._set("n_bits", _check_int("n_bits", self.n_bits, 1))

    @property
    def n_inputs(self) -> int:
        return self.n_bits

    @property
    def n_outputs(self) -> int:
        return self.n_bits

    @property
    def input_channels(self) -> dict[str, int]:
        return {f"bit {i + 1}": i for i in range(self.n_bits)}

    def _sample_inputs(self, batch_size, generator):
        shape = (batch_size, self.n_steps, self.n_bits)
        pulse = torch.rand(shape, generator=generator, device=generator.device) < self.p_flip
        pulse[:, 0, :] = True
        sign = 2.0 * torch.randint(0, 2, shape, generator=generator, device=generator.device) - 1.0
        return (pulse * sign).float()

    def targets(self, inputs):
        steps = torch.arange(inputs.shape[1], device=inputs.device).view(1, -1, 1)
        # index of the last pulse at or before each step (-1 before the first pulse)
        last = torch.where(inputs != 0, steps, -1).cummax(dim=1).values
        held = inputs.gather(1, last.clamp(min=0))
        return torch.where(last >= 0, held, 0.0).float()

    def probe(self, seed: int = 0, n_trials: int = 64) -> Probe:
        inputs, targets = self.sample(n_trials, _cpu_generator(seed))
        final_bits = (targets[:, -1, :] > 0).long()
        code = (final_bits * 2 ** torch.arange(self.n_bits)).sum(1)
        return Probe(inputs, targets,
                     {"n_pulses": (inputs != 0).sum((1, 2)).numpy(), "final_state": code.numpy()},
                     f"{n_trials} random flip-flop trials (seed {seed}); final_state codes the "
                     f"last target as sum_i [y_T,i > 0] 2^i")

    def fixed_point_conditions(self, n_grid=None):
        return [("zero", np.zeros(self.n_bits, dtype=np.float32))]


@dataclass(frozen=True)
class SineWave(Task):
    """Sine wave whose frequency is set by a static input command ``x`` in [0, 1]."""

    name: ClassVar[str] = "sine"
    trial_label: ClassVar[tuple[str, str, str]] = ("frequency", "frequency (cycles/step)", "viridis")
    n_inputs: ClassVar[int] = 1
    n_outputs: ClassVar[int] = 1
    chain_conditions: ClassVar[bool] = True
    n_steps: int = 500    # T, steps per trial
    n_freqs: int = 51     # commands x on linspace(0, 1, n_freqs)
    w_min: float = 0.01   # frequency (cycles/step) at x = 0
    w_max: float = 0.05   # frequency (cycles/step) at x = 1

    def __post_init__(self):
        self._set("n_steps", _check_int("n_steps", self.n_steps, 1))
        self._set("n_freqs", _check_int("n_freqs", self.n_freqs, 2))
        self._set("w_min", _check_float("w_min", self.w_min, 0.0, 0.5))
        self._set("w_max", _check_float("w_max", self.w_max, self.w_min, 0.5))

    @property
    def commands(self) -> np.ndarray:
        """The command grid ``linspace(0, 1, n_freqs)``, float32 ``[n_freqs]``."""
        return np.linspace(0.0, 1.0, self.n_freqs, dtype=np.float32)

    def frequency(self, x):
        """``w = w_min + (w_max - w_min) x`` in cycles per step."""
        return self.w_min + (self.w_max - self.w_min) * x

    @property
    def input_channels(self) -> dict[str, int]:
        return {"command": 0}  # conditions chain by x; the reference is the smallest x

    def _sample_inputs(self, batch_size, generator):
        index = torch.randint(0, self.n_freqs, (batch_size,), generator=generator,
                              device=generator.device)
        x = index.float() / (self.n_freqs - 1)
        return x.view(-1, 1, 1).expand(-1, self.n_steps, 1).contiguous()

    def targets(self, inputs):
        w = self.frequency(inputs[:, :1, :1].double())                       # [B, 1, 1]
        t = torch.arange(1, inputs.shape[1] + 1, device=inputs.device, dtype=torch.float64)
        return torch.sin(2 * torch.pi * w * t.view(1, -1, 1)).float()

    def probe(self, seed: int = 0) -> Probe:
        x = torch.from_numpy(self.commands)
        inputs = x.view(-1, 1, 1).expand(-1, self.n_steps, 1).contiguous()
        return Probe(inputs, self.targets(inputs),
                     {"x": self.commands, "frequency": self.frequency(self.commands)},
                     f"every command of the grid ({self.n_freqs} trials, noiseless; seed unused)")

    def fixed_point_conditions(self, n_grid=None):
        grid = self.commands if n_grid is None else np.linspace(
            0.0, 1.0, _check_int("n_grid", n_grid, 1), dtype=np.float32)
        return [(f"x={x:.3f}", np.array([x], dtype=np.float32)) for x in grid]


@dataclass(frozen=True)
class ContextIntegration(Task):
    """Integrate the stream (of two noisy streams) selected by a one-hot context; ignore the other."""

    name: ClassVar[str] = "cdi"
    trial_label: ClassVar[tuple[str, str, str]] = ("mean_relevant", "mean of relevant stream", "coolwarm")
    n_inputs: ClassVar[int] = 4
    n_outputs: ClassVar[int] = 1
    chain_conditions: ClassVar[bool] = True
    n_steps: int = 35     # T, steps per trial (see the schema: a tau = 10 leaky integrator fails)
    mu_max: float = 0.5   # stream means drawn from U[-mu_max, mu_max]
    sigma: float = 0.5    # std of the per-step Gaussian noise on each stream
    # with sigma = mu_max the noise on the final target has std 1 / sqrt(T) ~ 0.18

    PROBE_MEANS: ClassVar[int] = 11             # relevant-stream means per context in the probe
    PROBE_IRRELEVANT_MEANS: ClassVar[int] = 5   # irrelevant-stream means crossed with them
    PROBE_NOISE: ClassVar[float] = 0.1          # probe noise std, as a fraction of sigma

    def __post_init__(self):
        self._set("n_steps", _check_int("n_steps", self.n_steps, 1))
        self._set("mu_max", _check_float("mu_max", self.mu_max, 0.0, float("inf"), low_open=True))
        self._set("sigma", _check_float("sigma", self.sigma, 0.0, float("inf")))

    @property
    def input_channels(self) -> dict[str, int]:
        return {"stream 1": 0, "stream 2": 1, "context 1": 2, "context 2": 3}

    @property
    def context_channels(self) -> tuple[int, ...]:
        return (2, 3)

    def relevant_channel(self, inputs) -> np.ndarray:
        """The stream selected by the context: channel 0 in context 1, channel 1 in context 2. Conditions
        chain per context by this stream; the reference is the weakest streams in context 1."""
        return self.context_of(inputs)

    @property
    def target_scale(self) -> float:
        """Factor ``1 / (mu_max T)`` applied to the running sum."""
        return 1.0 / (self.mu_max * self.n_steps)

    def _streams(self, means, context, noise_std, generator) -> torch.Tensor:
        """Inputs ``[B, T, 4]`` from stream means ``[B, 2]`` and context indices ``[B]`` (0 or 1)."""
        noise = torch.randn((means.shape[0], self.n_steps, 2), generator=generator, device=means.device)
        streams = means.unsqueeze(1) + noise_std * noise
        onehot = torch.nn.functional.one_hot(context, 2).float().unsqueeze(1).expand(-1, self.n_steps, 2)
        return torch.cat([streams, onehot], dim=2).float()

    def _sample_inputs(self, batch_size, generator):
        device = generator.device
        means = self.mu_max * (2 * torch.rand((batch_size, 2), generator=generator, device=device) - 1)
        context = torch.randint(0, 2, (batch_size,), generator=generator, device=device)
        return self._streams(means, context, self.sigma, generator)

    def targets(self, inputs):
        selected = (inputs[..., 0:2] * inputs[..., 2:4]).sum(-1, keepdim=True)  # [B, T, 1]
        return (self.target_scale * selected.double().cumsum(dim=1)).float()

    def probe(self, seed: int = 0) -> Probe:
        relevant = np.linspace(-self.mu_max, self.mu_max, self.PROBE_MEANS)
        irrelevant = np.linspace(-self.mu_max, self.mu_max, self.PROBE_IRRELEVANT_MEANS)
        context, mu_rel, mu_irr = (a.ravel() for a in np.meshgrid(
            [0, 1], relevant, irrelevant, indexing="ij"))
        means = np.where(context[:, None] == 0, np.stack([mu_rel, mu_irr], 1),
                         np.stack([mu_irr, mu_rel], 1))                   # [K, 2] (u1, u2)
        inputs = self._streams(torch.tensor(means, dtype=torch.float32), torch.from_numpy(context),
                               self.PROBE_NOISE * self.sigma, _cpu_generator(seed))
        conditions = {"context": (context + 1).astype(np.int64),
                      "mean_relevant": mu_rel.astype(np.float32),
                      "mean_irrelevant": mu_irr.astype(np.float32)}
        return Probe(inputs, self.targets(inputs), conditions,
                     f"2 contexts x {self.PROBE_MEANS} relevant means x {self.PROBE_IRRELEVANT_MEANS} "
                     f"irrelevant means on linspace(-mu_max, mu_max); noise std "
                     f"{self.PROBE_NOISE} sigma (seed {seed})")

    def condition_grid(self, n_grid: int = 11) -> list[tuple[str, np.ndarray]]:
        """Per context, the relevant stream held at each of ``linspace(-mu_max, mu_max, n_grid)``
        (irrelevant stream 0): inputs for a bifurcation graph along the integrated variable."""
        conditions = []
        for context in (0, 1):
            for mu in np.linspace(-self.mu_max, self.mu_max, _check_int("n_grid", n_grid, 1)):
                u = np.zeros(4, dtype=np.float32)
                u[context], u[2 + context] = mu, 1.0
                conditions.append((f"context{context + 1},u={mu:+.3f}", u))
        return conditions

    def fixed_point_conditions(self, n_grid=None):
        """Each context with zero streams (``n_grid=None``), else :meth:`condition_grid` (n_grid)."""
        if n_grid is not None:
            return self.condition_grid(n_grid)
        return [("context1", np.array([0, 0, 1, 0], dtype=np.float32)),
                ("context2", np.array([0, 0, 0, 1], dtype=np.float32))]


TASKS: dict[str, type[Task]] = {cls.name: cls for cls in (FlipFlop, SineWave, ContextIntegration)}


def make_task(name: str, **params) -> Task:
    """Build the task registered as ``name`` with the given parameters (others at their defaults)."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; valid: {', '.join(TASKS)}")
    valid = [f.name for f in dataclasses.fields(TASKS[name])]
    for key in params:
        if key not in valid:
            raise ValueError(f"unknown parameter {key!r} for task {name!r}; valid: {', '.join(valid)}")
    return TASKS[name](**params)


def task_to_dict(task: Task) -> dict:
    """JSON-serialisable record ``{"name": ..., <parameter>: <value>, ...}``."""
    return {"name": task.name, **dataclasses.asdict(task)}


def task_from_dict(record: dict) -> Task:
    """Inverse of :func:`task_to_dict`."""
    params = dict(record)
    return make_task(params.pop("name"), **params)
