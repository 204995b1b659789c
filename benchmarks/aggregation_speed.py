"""Speed and peak memory of one full training step with gradient aggregation, against hand-written steps and TorchJD.

One step = forward, per-task losses, per-task gradients (where the method needs them), the
aggregation, the optimiser step (Adam, lr 1e-3), from a batch already in memory. Models, both
`multitask.models.HardSharing` with T linear regression heads (random targets):

- ``mlp``: shared MLP 512 → 512 → 512 (ReLU), heads 512 → 1, batch 256;
- ``cnn``: shared Conv(3→32, 3, pad 1)-ReLU-MaxPool2-Conv(32→64, 3, pad 1)-ReLU-MaxPool2-Flatten-
  Linear(64·8·8 → 256)-ReLU on 3×32×32 inputs, heads 256 → 1, batch 64 (``--cnn-batch``).

Rows for each model and each T (``--tasks``):

- ``hand: summed loss``: plain PyTorch, ``losses.sum().backward()`` (the floor);
- ``hand: loop of T grads``: plain PyTorch, T ``autograd.grad`` calls for the shared parameters,
  heads by one backward, the mean written into ``.grad`` (what LibMTL does);
- ``hand: features-first``: plain PyTorch in TorchJD's structure: ``z = model.encode(batch)``, T
  small ``autograd.grad(L_t, z)`` through the heads (``[T, B, H]``), then one
  ``autograd.grad(z, shared, grad_outputs=..., is_grads_batched=True)`` through the trunk for the
  Jacobian blocks ``[T, *p.shape]``, heads by one backward, the mean written into ``.grad``;
- ``ew (Trainer)``: the library's Trainer with the default strategy (``trainer._train_step``);
- ``<method> (Trainer)`` for every method of ``multitask.aggregation.names()`` on the parameters
  (``Strategy(aggregation=create(name))``), then ``upgrad (Trainer, update_by_backward)``
  (``Trainer(engine=JacobianEngine(update_by_backward=True))``), ``mgda (Trainer, on='representation')``
  and ``upgrad (Trainer, on='representation')`` (``Strategy(aggregation=..., on="representation")``);
- ``plain loop + multitask.backward: <method>`` for EW (``Strategy(tasks=...)``, no aggregation) and
  every method of ``names()``: a plain loop, ``zero_grad``, ``outputs = model(batch)``,
  ``multitask.task_losses(tasks, outputs, batch)``, ``multitask.backward(losses, strategy,
  shared_params=model.shared_parameters(), features=model.shared_features())``, ``optimizer.step()``
  (the strategy built with its tasks before the optimiser, which also holds its parameters);
- ``torchjd: <Method>``: TorchJD's ``mtl_backward(losses, features=features)`` then
  ``jac_to_grad(shared_params, aggregator)``, for each method TorchJD also has;
- ``torchjd autogram: <Method>``: TorchJD's ``autogram.Engine(encoder, batch_dim=None)``:
  ``compute_gramian(losses)``, its ``<Method>Weighting`` on the Gramian, ``losses.backward(weights)``,
  for each Gramian weighting TorchJD has.

Every row has its own model built from the same seed (same initial weights) and its own optimiser.
Timing is interleaved: for each (model, T) all steps are built and warmed up (2 steps each), then
for ``--repeats`` rounds every step runs once, in an order shuffled per round (seeded), so that
load from elsewhere on the machine spreads evenly over the rows; the table gives each row's
median. Peak memory is measured afterwards, on untimed calls of each step under ``torch.profiler``
(``profile_memory=True``; see `peak_memory`): the most bytes held at once above what was held when
the step started. It is compared with EW's peak plus one float32 ``[T, P]`` Jacobian (P = number
of shared parameters).

Ratios: each row's median over ``hand: summed loss``, over ``hand: loop of T grads`` and over
``hand: features-first``, and for the library's parameter-level rows (Trainer and
``multitask.backward``) over TorchJD's step for the same method (``mtl_backward`` path, and the
autogram path where TorchJD has one). The issue's targets at T = 10: EW (Trainer and
``multitask.backward``) ≤ 1.05 × summed loss; every parameter-level method ≤ 1.05 × features-first
and ≤ 0.9 × TorchJD (Nash-MTL ≤ 0.5 ×); representation rows ≤ 1.5 × summed loss; peak memory
≤ EW + one ``[T, P]`` Jacobian. The script prints a markdown table per (model, T) and those
targets (met / missed), and writes ``aggregation_speed.md`` and ``aggregation_speed.csv`` to
``--output-dir`` (default ``benchmarks/results``; the CSV starts with ``#`` lines giving the
command, date, versions and threads: ``pandas.read_csv(path, comment="#")``).

    python benchmarks/aggregation_speed.py [--repeats 10] [--tasks 2 5 10] [--model mlp cnn] [--threads N]
        [--cnn-batch 64] [--no-memory] [--output-dir benchmarks/results]

Quick check: ``python benchmarks/aggregation_speed.py --tasks 2 --repeats 2 --no-memory``. Run time:
each (model, T) runs every step ``repeats + 4`` times (2 warm-up, 2 for memory; ``repeats + 2`` with
``--no-memory``). On 2 cores shared with other work (1 thread), one round of the former 40 steps
took about 8 s for the MLP and 43 s for the CNN at T = 10, 5 s and 13 s at T = 2; the 15 rows added
since (``hand: features-first`` and the ``multitask.backward`` loops) cost about a quarter more, so
the defaults need roughly 25 minutes on such a loaded machine and less on an idle one;
``--cnn-batch 32`` about halves the CNN's share.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
import functools
import gc
import importlib.metadata
import json
import os
import platform
import random
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

import multitask
from multitask import Strategy, Task, Trainer
from multitask.aggregation import MGDA, Aggregator, UPGrad, create, names
from multitask.jacobian import JacobianEngine
from multitask.models import MLP, HardSharing

SEED = 0
WARMUP = 2
LR = 1e-3
NASH_TARGET = 0.5
BACKWARD_PREFIX = "plain loop + multitask.backward: "
# the library's rows that aggregate per-parameter gradients (Trainer and multitask.backward): TorchJD's ratios, targets
PARAMETER_KINDS = ("jacobian", "gramian", "backward")

# our registry name -> TorchJD class name
TORCHJD_AGGREGATORS = {
    "upgrad": "UPGrad",
    "mgda": "MGDA",
    "dualproj": "DualProj",
    "pcgrad": "PCGrad",
    "imtl_g": "IMTLG",
    "cagrad": "CAGrad",
    "nash_mtl": "NashMTL",
    "graddrop": "GradDrop",
    "aligned_mtl": "AlignedMTL",
    "config": "ConFIG",
    "gradvac": "GradVac",
    "mean": "Mean",
    "sum": "Sum",
}
# TorchJD's Gramian weightings (usable with its autogram engine)
TORCHJD_WEIGHTINGS = {
    "upgrad": "UPGradWeighting",
    "mgda": "MGDAWeighting",
    "dualproj": "DualProjWeighting",
    "pcgrad": "PCGradWeighting",
    "imtl_g": "IMTLGWeighting",
    "cagrad": "CAGradWeighting",
    "aligned_mtl": "AlignedMTLWeighting",
    "gradvac": "GradVacWeighting",
}
# constructor arguments, chosen to match our defaults where a method has hyper-parameters
TORCHJD_ARGUMENTS: dict[str, Callable[[int], dict[str, Any]]] = {
    "cagrad": lambda num_tasks: {"c": 0.5},
    "nash_mtl": lambda num_tasks: {"n_tasks": num_tasks, "max_norm": 0.0, "update_weights_every": 1},
    "gradvac": lambda num_tasks: {"beta": 0.5},
    "aligned_mtl": lambda num_tasks: {"scale_mode": "min"},
}

FOOTNOTES = [
    "Each row has its own copy of the model (same seed, same initial weights) and its own Adam optimiser (lr 1e-3).",
    "TorchJD rows: `mtl_backward(losses, features=features)` then `jac_to_grad(shared_params, aggregator)` "
    "with its defaults (`optimize_gramian_computation=False`); autogram rows: `Engine(encoder, batch_dim=None)`, "
    "`compute_gramian(losses)`, `<Method>Weighting()(gramian)`, `losses.backward(weights)` (the heads then get "
    "`w_t ∇L_t` where ours get `∇L_t`; same cost).",
    "TorchJD arguments vs ours: CAGrad c=0.5 in both (TorchJD norm_eps=1e-4 vs ours 1e-6; TorchJD solves the dual "
    "with cvxpy/CLARABEL, ours with SciPy SLSQP); NashMTL n_tasks=T, update_weights_every=1, max_norm=0 (no "
    "clipping, as ours; TorchJD's default is 1.0), optim_niter=20 convex-concave cvxpy/ECOS iterations vs our "
    "damped Newton to tol 1e-9; GradVac beta=0.5 in both (TorchJD eps=1e-8); AlignedMTL scale_mode='min' and "
    "mean preference in both; MGDA: TorchJD Frank-Wolfe (epsilon=1e-3, max_iters=100) vs our exact NNLS QP; "
    "UPGrad/DualProj: TorchJD quadprog QPs vs our NNLS; GradDrop identity f and no leak in both; ConFIG: TorchJD "
    "takes the pseudo-inverse of the [T, P] unit-gradient matrix, ours works on the Gramian; IMTL-G, PCGrad, Mean, "
    "Sum: no hyper-parameters.",
    "`hand: features-first` is TorchJD's structure written by hand (T `autograd.grad(L_t, z)` through the heads, "
    "one `autograd.grad(z, shared, grad_outputs=[T, B, H], is_grads_batched=True)` through the trunk), the "
    "reference for the methods' targets; the library's CPU default (`JacobianEngine(batched=None)`) pulls the T "
    "rows back through the trunk by a loop of T passes instead.",
    "`plain loop + multitask.backward` rows: the library's update seam in a hand-written loop, no Trainer "
    "(`zero_grad`, `model(batch)`, `multitask.task_losses`, `multitask.backward(..., features="
    "model.shared_features())`, `optimizer.step()`), compared like the Trainer rows (× features-first, × TorchJD "
    "for the same method).",
    "`on='representation'` (MGDA-UB for MGDA) takes the weights from the gradients w.r.t. the encoder's output, "
    "so it is a different update from TorchJD's; no TorchJD ratio is given for it.",
    "Peak memory: one untimed step under `torch.profiler.profile(profile_memory=True)` (after one more in a "
    "discarded profiling session, so that the frees of the previous step's tensors are seen), the largest "
    "'Total Allocated' of its '[memory]' events, from its value at the start of the step (bytes held above it); "
    "× (EW + [T, P]) = peak ÷ (peak of `ew (Trainer)` + 4·T·P bytes).",
]


@dataclass
class Row:
    """One timed variant of a training step."""

    label: str
    kind: str  # hand, ew, jacobian, gramian, representation, backward, torchjd, autogram
    method: str | None = None
    step: Callable[[], object] | None = None
    note: str = ""
    times: list[float] = field(default_factory=list)
    peak_bytes: float | None = None

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None


@dataclass
class Setup:
    """The model kind, T, and the one batch every row of this (model, T) trains on."""

    model: str
    num_tasks: int
    batch: dict[str, Tensor]

    @property
    def task_names(self) -> list[str]:
        return [f"t{i}" for i in range(self.num_tasks)]

    def build(self) -> tuple[HardSharing, list[Task]]:
        """A fresh model, always with the same initial weights."""
        torch.manual_seed(SEED)
        if self.model == "mlp":
            encoder: nn.Module = MLP(512, [512, 512])
            width = 512
        else:
            encoder = nn.Sequential(
                nn.Conv2d(3, 32, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(32, 64, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Flatten(),
                nn.Linear(64 * 8 * 8, 256),
                nn.ReLU(),
            )
            width = 256
        tasks = [Task(name, nn.Linear(width, 1), "regression") for name in self.task_names]
        return HardSharing(encoder, tasks), tasks

    def losses(self, model: HardSharing, features: Tensor) -> list[Tensor]:
        """Per-task mean squared errors from the shared features."""
        return [(model.heads[name](features).squeeze(1) - self.batch[name]).pow(2).mean() for name in self.task_names]


def make_setup(model: str, num_tasks: int, cnn_batch: int = 64) -> Setup:
    generator = torch.Generator().manual_seed(SEED + 1)
    if model == "mlp":
        x = torch.randn(256, 512, generator=generator)
        targets = {f"t{i}": x[:, i] + 0.1 * torch.randn(256, generator=generator) for i in range(num_tasks)}
    else:
        x = torch.randn(cnn_batch, 3, 32, 32, generator=generator)
        targets = {f"t{i}": torch.randn(cnn_batch, generator=generator) for i in range(num_tasks)}
    return Setup(model, num_tasks, {"x": x, **targets})


def shared_size(setup: Setup) -> int:
    model, _ = setup.build()
    return sum(p.numel() for p in model.shared_parameters())


# ---------------------------------------------------------------------------------------------- steps

Fill = Callable[[], object]  # writes one step's gradients into .grad


def full_step(setup: Setup, fill_for: Callable[[HardSharing, list[Task]], Fill], extra: Iterable[Tensor] = ()) -> Fill:
    """A step on its own model and Adam optimiser: zero the gradients, ``fill()`` writes ``.grad``, step.

    ``fill = fill_for(model, tasks)`` is made once for the fresh model; ``extra`` parameters (e.g.
    a strategy's) are optimised with the model's.
    """
    model, tasks = setup.build()
    fill = fill_for(model, tasks)
    optimizer = torch.optim.Adam([*model.parameters(), *extra], lr=LR)

    def step() -> None:
        optimizer.zero_grad(set_to_none=True)
        fill()
        optimizer.step()

    return step


def guarded(label: str, kind: str, method: str | None, build: Callable[[], Fill]) -> Row:
    """The row of the step ``build()`` makes, or 'n/a (error)' where building it fails."""
    try:
        return Row(label, kind, method, step=build())
    except Exception as error:  # any failure to build is reported, not fatal
        return Row(label, kind, method, note=f"n/a ({type(error).__name__}: {error})")


def trainer_step(setup: Setup, strategy: Strategy | None, engine: JacobianEngine | None = None) -> Fill:
    model, tasks = setup.build()
    trainer = Trainer(model, tasks, strategy=strategy, engine=engine, progress=False, device="cpu", lr=LR)
    groups = [(setup.batch, tuple(trainer.task_names))]
    return lambda: trainer._train_step(groups)


def mean_of_rows(setup: Setup, rows: Callable[[Tensor, list[Tensor], list[nn.Parameter]], Sequence[Tensor]]) -> Fill:
    """Plain PyTorch: the shared parameters get the mean of the Jacobian blocks ``rows(z, losses, shared)``
    (``[T, *p.shape]`` each), the heads their own task's gradient by one backward of the summed loss."""

    def fill_for(model: HardSharing, tasks: list[Task]) -> Fill:
        shared = list(model.shared_parameters())
        shared_ids = {id(p) for p in shared}
        heads = [p for p in model.parameters() if id(p) not in shared_ids]

        def fill() -> None:
            features = model.encode(setup.batch)
            values = setup.losses(model, features)
            blocks = rows(features, values, shared)
            torch.autograd.backward(torch.stack(values).sum(), inputs=heads)
            for parameter, block in zip(shared, blocks, strict=True):
                parameter.grad = block.mean(0)

        return fill

    return full_step(setup, fill_for)


def loop_rows(features: Tensor, values: list[Tensor], shared: list[nn.Parameter]) -> list[Tensor]:
    """T ``autograd.grad`` calls from the losses to the shared parameters."""
    grads = [torch.autograd.grad(value, shared, retain_graph=True) for value in values]
    return [torch.stack(column) for column in zip(*grads, strict=True)]


def features_first_rows(features: Tensor, values: list[Tensor], shared: list[nn.Parameter]) -> Sequence[Tensor]:
    """T small ``autograd.grad`` calls to ``z`` through the heads, then one batched pass through the trunk."""
    cotangents = torch.stack([torch.autograd.grad(value, features, retain_graph=True)[0] for value in values])
    return torch.autograd.grad(features, shared, grad_outputs=cotangents, is_grads_batched=True)


def hand_steps(setup: Setup) -> list[Row]:
    """The three plain-PyTorch baselines, each on its own model and Adam optimiser."""

    def summed_for(model: HardSharing, tasks: list[Task]) -> Fill:
        return lambda: torch.autograd.backward(torch.stack(setup.losses(model, model.encode(setup.batch))).sum())

    return [
        Row("hand: summed loss", "hand", step=full_step(setup, summed_for)),
        Row("hand: loop of T grads", "hand", step=mean_of_rows(setup, loop_rows)),
        Row("hand: features-first", "hand", step=mean_of_rows(setup, features_first_rows)),
    ]


def backward_step(setup: Setup, aggregation: Aggregator | None) -> Fill:
    """A plain loop around ``multitask.backward`` (the strategy set up with its tasks before the optimiser)."""
    strategy = Strategy(aggregation=aggregation, tasks=setup.task_names)

    def fill_for(model: HardSharing, tasks: list[Task]) -> Fill:
        def fill() -> None:
            losses = multitask.task_losses(tasks, model(setup.batch), setup.batch)
            multitask.backward(
                losses, strategy, shared_params=model.shared_parameters(), features=model.shared_features()
            )

        return fill

    return full_step(setup, fill_for, strategy.parameters())


def torchjd_object(module: Any, name: str, key: str, num_tasks: int) -> Any:
    """TorchJD's ``module.<name>`` built with the arguments that match our defaults for method ``key``."""
    factory: Callable[..., Any] = getattr(module, name)
    arguments = TORCHJD_ARGUMENTS[key](num_tasks) if key in TORCHJD_ARGUMENTS else {}
    return factory(**arguments)


def torchjd_rows(setup: Setup) -> list[Row]:
    """TorchJD's ``mtl_backward`` + ``jac_to_grad`` and autogram rows ('n/a (reason)' where one cannot be built)."""
    labels = [(f"torchjd: {name}", "torchjd", key, name) for key, name in TORCHJD_AGGREGATORS.items()] + [
        (f"torchjd autogram: {name.removesuffix('Weighting')}", "autogram", key, name)
        for key, name in TORCHJD_WEIGHTINGS.items()
    ]
    try:
        import torchjd.aggregation as jd_aggregation
        from torchjd.autogram import Engine
        from torchjd.autojac import jac_to_grad, mtl_backward
    except ImportError as error:
        return [Row(label, kind, key, note=f"n/a ({error})") for label, kind, key, _ in labels]

    def jac_step(name: str, key: str) -> Fill:
        aggregator = torchjd_object(jd_aggregation, name, key, setup.num_tasks)

        def fill_for(model: HardSharing, tasks: list[Task]) -> Fill:
            shared = list(model.shared_parameters())

            def fill() -> None:
                features = model.encode(setup.batch)
                mtl_backward(setup.losses(model, features), features=features)
                jac_to_grad(shared, aggregator)

            return fill

        return full_step(setup, fill_for)

    def gram_step(name: str, key: str) -> Fill:
        weighting = torchjd_object(jd_aggregation, name, key, setup.num_tasks)

        def fill_for(model: HardSharing, tasks: list[Task]) -> Fill:
            engine = Engine(model.encoder, batch_dim=None)

            def fill() -> None:
                losses = torch.stack(setup.losses(model, model.encode(setup.batch)))
                torch.autograd.backward(losses, weighting(engine.compute_gramian(losses)))

            return fill

        return full_step(setup, fill_for)

    makers = {"torchjd": jac_step, "autogram": gram_step}
    return [guarded(label, kind, key, functools.partial(makers[kind], name, key)) for label, kind, key, name in labels]


def build_rows(setup: Setup) -> list[Row]:
    rows = hand_steps(setup)
    rows.append(Row("ew (Trainer)", "ew", step=trainer_step(setup, None)))
    for name in names():
        rows.append(Row(f"{name} (Trainer)", "jacobian", name, trainer_step(setup, Strategy(aggregation=create(name)))))
    by_backward = JacobianEngine(update_by_backward=True)
    step = trainer_step(setup, Strategy(aggregation=UPGrad()), by_backward)
    rows.append(Row("upgrad (Trainer, update_by_backward)", "gramian", "upgrad", step))
    for name, aggregator in (("mgda", MGDA), ("upgrad", UPGrad)):
        strategy = Strategy(aggregation=aggregator(), on="representation")
        rows.append(
            Row(f"{name} (Trainer, on='representation')", "representation", name, trainer_step(setup, strategy))
        )
    rows.append(Row(f"{BACKWARD_PREFIX}ew", "ew", step=backward_step(setup, None)))
    for name in names():
        rows.append(Row(f"{BACKWARD_PREFIX}{name}", "backward", name, backward_step(setup, create(name))))
    rows.extend(torchjd_rows(setup))
    return rows


# --------------------------------------------------------------------------------------------- timing


def warm_up(rows: list[Row]) -> None:
    """Run each step ``WARMUP`` times; a failing step becomes 'n/a (error)', warnings go into its note."""
    for row in rows:
        if row.step is None:
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                for _ in range(WARMUP):
                    row.step()
            except Exception as error:  # a broken variant is reported, not fatal
                row.step, row.note = None, f"n/a ({type(error).__name__}: {str(error).splitlines()[0][:150]})"
        messages = sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0][:120]}" for w in caught})
        if messages and row.step is not None:
            row.note = "; ".join(messages)


def time_rows(rows: list[Row], repeats: int, seed: int) -> None:
    """``repeats`` rounds; each runs every step once, in a per-round shuffled order."""
    live = [row for row in rows if row.step is not None]
    order = random.Random(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(repeats):
            order.shuffle(live)
            gc.collect()
            for row in live:
                assert row.step is not None
                started = time.perf_counter()
                row.step()
                row.times.append(time.perf_counter() - started)


@contextlib.contextmanager
def quiet_stderr() -> Iterator[None]:
    """Silence the profiler's start/stop lines, which are written to file descriptor 2."""
    saved = os.dup(2)
    try:
        with Path(os.devnull).open("w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_memory(step: Callable[[], object]) -> float:
    """Most bytes held at once during one call of ``step``, above what was held when it started (CPU allocator).

    The profiler's "Total Allocated" counts only memory it saw allocated, in this or an earlier
    session: a free of a tensor allocated before any profiling is invisible. So a first, discarded
    session runs the step once (the tensors a step frees at its start, e.g. the previous ``.grad``,
    then come from a profiled call), and the measured session's counter is read relative to its
    value before the session's first memory event.
    """
    from torch.profiler import ProfilerActivity, profile

    gc.collect()
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings(), quiet_stderr():
        warnings.simplefilter("ignore")
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True):
            step()
        gc.collect()
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
            step()
        path = Path(folder) / "trace.json"
        profiler.export_chrome_trace(str(path))
        events = json.loads(path.read_text())["traceEvents"]
    memory = sorted((e for e in events if e.get("name") == "[memory]"), key=lambda e: float(e["ts"]))
    if not memory:
        return 0.0
    start = float(memory[0]["args"]["Total Allocated"]) - float(memory[0]["args"]["Bytes"])
    return max(0.0, *(float(e["args"]["Total Allocated"]) - start for e in memory))


# --------------------------------------------------------------------------------------------- output


@dataclass
class Table:
    """Results of one (model, T)."""

    model: str
    num_tasks: int
    num_shared: int
    rows: list[Row]

    def find(self, label: str) -> Row | None:
        return next((row for row in self.rows if row.label == label), None)

    def reference(self, kind: str, method: str | None) -> Row | None:
        return next((row for row in self.rows if row.kind == kind and row.method == method), None)

    def ratios(self, row: Row) -> dict[str, float | None]:
        """× summed, × loop, × features-first, × TorchJD (mtl_backward and autogram), × (EW + [T, P]) memory."""

        def over(other: Row | None, value: float | None) -> float | None:
            base = other.median if other is not None else None
            return value / base if value is not None and base else None

        median = row.median
        library = row.kind in PARAMETER_KINDS
        ew = self.find("ew (Trainer)")
        memory = None
        if row.peak_bytes is not None and ew is not None and ew.peak_bytes is not None:
            memory = row.peak_bytes / (ew.peak_bytes + 4.0 * self.num_tasks * self.num_shared)
        return {
            "summed": over(self.find("hand: summed loss"), median),
            "loop": over(self.find("hand: loop of T grads"), median),
            "features_first": over(self.find("hand: features-first"), median),
            "torchjd": over(self.reference("torchjd", row.method), median) if library else None,
            "autogram": over(self.reference("autogram", row.method), median) if library else None,
            "memory": memory,
        }

    def markdown(self) -> list[str]:
        lines = [
            f"### {self.model}, T = {self.num_tasks} (P = {self.num_shared:,} shared parameters)",
            "",
            "| step | median ms | × summed | × loop | × features-first | × TorchJD | × TorchJD autogram | peak MB"
            " | × (EW + [T, P]) | note |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for row in self.rows:
            ratios = self.ratios(row)
            median = row.median
            cells = [
                row.label,
                "—" if median is None else _ms(median),
                *(_ratio(ratios[key]) for key in ("summed", "loop", "features_first", "torchjd", "autogram")),
                "—" if row.peak_bytes is None else f"{row.peak_bytes / 1e6:.1f}",
                _ratio(ratios["memory"]),
                row.note.replace("|", "/"),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        return lines

    def csv_rows(self) -> list[dict[str, object]]:
        result = []
        for row in self.rows:
            ratios = self.ratios(row)
            result.append(
                {
                    "model": self.model,
                    "num_tasks": self.num_tasks,
                    "num_shared_params": self.num_shared,
                    "step": row.label,
                    "kind": row.kind,
                    "method": row.method or "",
                    "median_ms": "" if row.median is None else f"{1e3 * row.median:.4f}",
                    "repeats": len(row.times),
                    "ratio_summed": _csv(ratios["summed"]),
                    "ratio_loop": _csv(ratios["loop"]),
                    "ratio_features_first": _csv(ratios["features_first"]),
                    "ratio_torchjd": _csv(ratios["torchjd"]),
                    "ratio_torchjd_autogram": _csv(ratios["autogram"]),
                    "peak_mb": "" if row.peak_bytes is None else f"{row.peak_bytes / 1e6:.3f}",
                    "ratio_memory_ew_plus_jacobian": _csv(ratios["memory"]),
                    "note": row.note,
                }
            )
        return result


def _ms(seconds: float) -> str:
    ms = 1e3 * seconds
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}"


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _csv(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def targets(table: Table) -> list[tuple[str, float | None, str, float]]:
    """(what, value, comparison, target) for the issue's targets on one (model, T)."""
    checks: list[tuple[str, float | None, str, float]] = []
    for row in table.rows:
        if row.kind == "ew":
            checks.append((f"{row.label} × hand summed loss", table.ratios(row)["summed"], "≤", 1.05))
    for row in table.rows:
        if row.kind not in PARAMETER_KINDS:
            continue
        ratios = table.ratios(row)
        checks.append((f"{row.label} × hand features-first", ratios["features_first"], "≤", 1.05))
        limit = NASH_TARGET if row.method == "nash_mtl" else 0.9
        for kind, what in (("torchjd", "mtl_backward"), ("autogram", "autogram")):
            if table.reference(kind, row.method) is not None:
                checks.append((f"{row.label} × TorchJD ({what})", ratios[kind], "≤", limit))
    for row in table.rows:
        if row.kind == "representation":
            checks.append((f"{row.label} × hand summed loss", table.ratios(row)["summed"], "≤", 1.5))
    for row in table.rows:
        if row.kind in (*PARAMETER_KINDS, "representation"):
            checks.append(
                (f"{row.label} peak memory × (EW + one [T, P] Jacobian)", table.ratios(row)["memory"], "≤", 1.0)
            )
    return checks


def summary(tables: list[Table]) -> list[str]:
    lines: list[str] = []
    for model in dict.fromkeys(table.model for table in tables):
        of_model = [table for table in tables if table.model == model]
        table = next((t for t in of_model if t.num_tasks == 10), max(of_model, key=lambda t: t.num_tasks))
        note = "" if table.num_tasks == 10 else " (the targets are stated at T = 10; T = 10 was not run)"
        lines += [
            f"### Targets, {model}, T = {table.num_tasks}{note}",
            "",
            "| target | value | limit | result |",
            "|---|---:|---:|---|",
        ]
        met = total = 0
        for what, value, comparison, limit in targets(table):
            if value is None:
                result = "not measured"
            elif value <= limit:
                result, met, total = "met", met + 1, total + 1
            else:
                result, total = f"missed by {100 * (value / limit - 1):.1f}%", total + 1
            shown = "—" if value is None else f"{value:.2f}"
            lines.append(f"| {what} | {shown} | {comparison} {limit:g} | {result} |")
        lines += ["", f"{met} of {total} measured targets met.", ""]
    return lines


def header(arguments: argparse.Namespace) -> list[str]:
    try:
        torchjd_version = importlib.metadata.version("torchjd")
    except importlib.metadata.PackageNotFoundError:
        torchjd_version = "not installed"
    command = "python benchmarks/aggregation_speed.py " + " ".join(
        [f"--repeats {arguments.repeats}", "--tasks " + " ".join(map(str, arguments.tasks))]
        + ["--model " + " ".join(arguments.model)]
        + ([f"--cnn-batch {arguments.cnn_batch}"] if arguments.cnn_batch != 64 else [])
        + ([f"--threads {arguments.threads}"] if arguments.threads is not None else [])
        + (["--no-memory"] if arguments.no_memory else [])
    )
    return [
        "# Aggregation speed: one full training step",
        "",
        f"- command: `{command}`",
        f"- date: {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}",
        f"- torch {torch.__version__}, torchjd {torchjd_version}, Python {platform.python_version()}, "
        f"{torch.get_num_threads()} torch thread(s) (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}), "
        f"{os.cpu_count()} CPU(s) visible",
        f"- median of {arguments.repeats} interleaved rounds per row, after {WARMUP} warm-up steps",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10, help="timed rounds per (model, T) (default 10)")
    parser.add_argument("--tasks", type=int, nargs="+", default=[2, 5, 10], help="numbers of tasks T")
    parser.add_argument("--model", nargs="+", choices=["mlp", "cnn"], default=["mlp", "cnn"])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: leave torch's)")
    parser.add_argument("--cnn-batch", type=int, default=64, help="the CNN's batch size (default 64)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    parser.add_argument("--output-dir", type=Path, default=Path(__file__).resolve().parent / "results")
    arguments = parser.parse_args()
    if arguments.repeats < 1 or arguments.cnn_batch < 1 or any(t < 1 for t in arguments.tasks):
        parser.error("--repeats, --tasks and --cnn-batch must be positive")
    if arguments.threads is not None:
        torch.set_num_threads(arguments.threads)

    head = header(arguments)
    lines = list(head)
    print("\n".join(lines), flush=True)
    tables = []
    started = time.perf_counter()
    for model in arguments.model:
        for num_tasks in arguments.tasks:
            setup = make_setup(model, num_tasks, arguments.cnn_batch)
            rows = build_rows(setup)
            warm_up(rows)
            time_rows(rows, arguments.repeats, seed=SEED + num_tasks)
            if not arguments.no_memory:
                for row in rows:
                    if row.step is not None:
                        row.peak_bytes = peak_memory(row.step)
            table = Table(model, num_tasks, shared_size(setup), rows)
            for row in rows:
                row.step = None  # frees the models before the next (model, T)
            tables.append(table)
            block = ["", *table.markdown()]
            print("\n".join(block), f"\n({time.perf_counter() - started:.0f} s so far)", flush=True)
            lines += block
            gc.collect()

    closing = ["", "## Targets", "", *summary(tables), "## Notes", "", *(f"- {note}" for note in FOOTNOTES)]
    print("\n".join(closing))
    lines += closing
    arguments.output_dir.mkdir(parents=True, exist_ok=True)
    (arguments.output_dir / "aggregation_speed.md").write_text("\n".join(lines) + "\n")
    records = [record for table in tables for record in table.csv_rows()]
    with (arguments.output_dir / "aggregation_speed.csv").open("w", newline="") as handle:
        handle.write("".join(f"# {line.removeprefix('- ')}\n" for line in head[2:]))
        writer = csv.DictWriter(handle, fieldnames=list(records[0]))
        writer.writeheader()
        writer.writerows(records)
    print(f"\nwrote {arguments.output_dir / 'aggregation_speed.md'} and .csv ({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
