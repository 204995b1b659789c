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
- ``ew (Trainer)``: the library's Trainer with the default strategy (``trainer._train_step``);
- every method of ``multitask.aggregation.names()`` through the Trainer in Jacobian mode, then
  ``upgrad (gramian mode)``, ``mgda (representation mode)`` and ``upgrad (representation mode)``;
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

Ratios: each row's median over ``hand: summed loss`` and over ``hand: loop of T grads``, and for
the library's rows over TorchJD's step for the same method (``mtl_backward`` path, and the
autogram path where TorchJD has one). The script prints a markdown table per (model, T) and the
issue's targets at T = 10 (met / missed), and writes ``aggregation_speed.md`` and
``aggregation_speed.csv`` to ``--output-dir`` (default ``benchmarks/results``; the CSV starts with
``#`` lines giving the command, date, versions and threads: ``pandas.read_csv(path, comment="#")``).

    python benchmarks/aggregation_speed.py [--repeats 10] [--tasks 2 5 10] [--model mlp cnn] [--threads N]
        [--cnn-batch 64] [--no-memory] [--output-dir benchmarks/results]

Quick check: ``python benchmarks/aggregation_speed.py --tasks 2 --repeats 2 --no-memory``. Run time:
each (model, T) runs every step ``repeats + 4`` times (2 warm-up, 2 for memory; ``repeats + 2`` with
``--no-memory``). On 2 cores shared with other work (1 thread), one round of all steps took about
8 s for the MLP and 43 s for the CNN at T = 10, 5 s and 13 s at T = 2, so the defaults need
roughly 20 minutes on such a loaded machine and less on an idle one; ``--cnn-batch 32`` about
halves the CNN's share.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime
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
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from multitask import Strategy, Task, Trainer
from multitask.aggregation import MGDA, UPGrad, create, names
from multitask.models import MLP, HardSharing

SEED = 0
WARMUP = 2
LR = 1e-3
NASH_TARGET = 0.5

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
    "Representation mode (MGDA-UB for MGDA) takes the weights from the gradients w.r.t. the encoder's output, "
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
    kind: str  # hand, ew, jacobian, gramian, representation, torchjd, autogram
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
        tasks = [Task(f"t{i}", nn.Linear(width, 1), "regression") for i in range(self.num_tasks)]
        return HardSharing(encoder, tasks), tasks

    def losses(self, model: HardSharing, features: Tensor) -> list[Tensor]:
        """Per-task mean squared errors from the shared features."""
        return [
            (model.heads[f"t{i}"](features).squeeze(1) - self.batch[f"t{i}"]).pow(2).mean()
            for i in range(self.num_tasks)
        ]


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


def trainer_step(setup: Setup, strategy: Strategy | None) -> Callable[[], object]:
    model, tasks = setup.build()
    trainer = Trainer(model, tasks, strategy=strategy, progress=False, device="cpu", lr=LR)
    groups = [(setup.batch, tuple(trainer.task_names))]
    return lambda: trainer._train_step(groups)


def hand_steps(setup: Setup) -> list[Row]:
    """The two plain-PyTorch baselines, each on its own model and Adam optimiser."""
    model, _ = setup.build()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)

    def summed() -> None:
        optimizer.zero_grad(set_to_none=True)
        torch.autograd.backward(torch.stack(setup.losses(model, model.encode(setup.batch))).sum())
        optimizer.step()

    loop_model, _ = setup.build()
    loop_optimizer = torch.optim.Adam(loop_model.parameters(), lr=LR)
    shared = list(loop_model.shared_parameters())
    shared_ids = {id(p) for p in shared}
    heads = [p for p in loop_model.parameters() if id(p) not in shared_ids]

    def loop() -> None:
        loop_optimizer.zero_grad(set_to_none=True)
        values = setup.losses(loop_model, loop_model.encode(setup.batch))
        grads = [torch.autograd.grad(value, shared, retain_graph=True) for value in values]
        torch.autograd.backward(torch.stack(values).sum(), inputs=heads)
        for k, parameter in enumerate(shared):
            parameter.grad = torch.stack([g[k] for g in grads]).mean(0)
        loop_optimizer.step()

    return [Row("hand: summed loss", "hand", step=summed), Row("hand: loop of T grads", "hand", step=loop)]


def torchjd_object(module: Any, name: str, key: str, num_tasks: int) -> Any:
    """TorchJD's ``module.<name>`` built with the arguments that match our defaults for method ``key``."""
    factory: Callable[..., Any] = getattr(module, name)
    arguments = TORCHJD_ARGUMENTS[key](num_tasks) if key in TORCHJD_ARGUMENTS else {}
    return factory(**arguments)


def torchjd_rows(setup: Setup) -> list[Row]:
    """TorchJD's ``mtl_backward`` + ``jac_to_grad`` and autogram rows ('n/a (reason)' where one cannot be built)."""
    try:
        import torchjd.aggregation as jd_aggregation
        from torchjd.autogram import Engine
        from torchjd.autojac import jac_to_grad, mtl_backward
    except ImportError as error:
        note = f"n/a ({error})"
        return [Row(f"torchjd: {name}", "torchjd", key, note=note) for key, name in TORCHJD_AGGREGATORS.items()] + [
            Row(f"torchjd autogram: {name.removesuffix('Weighting')}", "autogram", key, note=note)
            for key, name in TORCHJD_WEIGHTINGS.items()
        ]

    rows = []
    for key, name in TORCHJD_AGGREGATORS.items():
        label = f"torchjd: {name}"
        try:
            aggregator = torchjd_object(jd_aggregation, name, key, setup.num_tasks)
        except Exception as error:  # any failure to build is reported, not fatal
            rows.append(Row(label, "torchjd", key, note=f"n/a ({type(error).__name__}: {error})"))
            continue
        model, _ = setup.build()
        optimizer = torch.optim.Adam(model.parameters(), lr=LR)
        shared = list(model.shared_parameters())

        def step(
            model: HardSharing = model,
            optimizer: torch.optim.Optimizer = optimizer,
            shared: list[nn.Parameter] = shared,
            aggregator: Any = aggregator,
        ) -> None:
            optimizer.zero_grad(set_to_none=True)
            features = model.encode(setup.batch)
            mtl_backward(setup.losses(model, features), features=features)
            jac_to_grad(shared, aggregator)
            optimizer.step()

        rows.append(Row(label, "torchjd", key, step=step))

    for key, name in TORCHJD_WEIGHTINGS.items():
        label = f"torchjd autogram: {name.removesuffix('Weighting')}"
        model, _ = setup.build()
        try:
            weighting = torchjd_object(jd_aggregation, name, key, setup.num_tasks)
            engine = Engine(model.encoder, batch_dim=None)
        except Exception as error:  # any failure to build is reported, not fatal
            rows.append(Row(label, "autogram", key, note=f"n/a ({type(error).__name__}: {error})"))
            continue
        optimizer = torch.optim.Adam(model.parameters(), lr=LR)

        def gram_step(
            model: HardSharing = model,
            optimizer: torch.optim.Optimizer = optimizer,
            engine: Any = engine,
            weighting: Any = weighting,
        ) -> None:
            optimizer.zero_grad(set_to_none=True)
            losses = torch.stack(setup.losses(model, model.encode(setup.batch)))
            gramian = engine.compute_gramian(losses)
            weights = weighting(gramian)
            torch.autograd.backward(losses, weights)
            optimizer.step()

        rows.append(Row(label, "autogram", key, step=gram_step))
    return rows


def build_rows(setup: Setup) -> list[Row]:
    rows = hand_steps(setup)
    rows.append(Row("ew (Trainer)", "ew", step=trainer_step(setup, None)))
    for name in names():
        rows.append(Row(name, "jacobian", name, step=trainer_step(setup, Strategy(aggregation=create(name)))))
    gramian = Strategy(aggregation=UPGrad(), mode="gramian")
    rows.append(Row("upgrad (gramian mode)", "gramian", "upgrad", trainer_step(setup, gramian)))
    for name, aggregator in (("mgda", MGDA), ("upgrad", UPGrad)):
        strategy = Strategy(aggregation=aggregator(), mode="representation")
        rows.append(Row(f"{name} (representation mode)", "representation", name, trainer_step(setup, strategy)))
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
        """× summed, × loop, × TorchJD (mtl_backward), × TorchJD (autogram), × (EW + [T, P]) memory."""

        def over(other: Row | None, value: float | None) -> float | None:
            base = other.median if other is not None else None
            return value / base if value is not None and base else None

        median = row.median
        library = row.kind in ("jacobian", "gramian")
        ew = self.find("ew (Trainer)")
        memory = None
        if row.peak_bytes is not None and ew is not None and ew.peak_bytes is not None:
            memory = row.peak_bytes / (ew.peak_bytes + 4.0 * self.num_tasks * self.num_shared)
        return {
            "summed": over(self.find("hand: summed loss"), median),
            "loop": over(self.find("hand: loop of T grads"), median),
            "torchjd": over(self.reference("torchjd", row.method), median) if library else None,
            "autogram": over(self.reference("autogram", row.method), median) if library else None,
            "memory": memory,
        }

    def markdown(self) -> list[str]:
        lines = [
            f"### {self.model}, T = {self.num_tasks} (P = {self.num_shared:,} shared parameters)",
            "",
            "| step | median ms | × summed | × loop | × TorchJD | × TorchJD autogram | peak MB | × (EW + [T, P])"
            " | note |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for row in self.rows:
            ratios = self.ratios(row)
            median = row.median
            cells = [
                row.label,
                "—" if median is None else _ms(median),
                *(_ratio(ratios[key]) for key in ("summed", "loop", "torchjd", "autogram")),
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
    ew = table.find("ew (Trainer)")
    if ew is not None:
        checks.append(("ew (Trainer) × hand summed loss", table.ratios(ew)["summed"], "≤", 1.05))
    for row in table.rows:
        if row.kind not in ("jacobian", "gramian"):
            continue
        ratios = table.ratios(row)
        checks.append((f"{row.label} × hand loop of T grads", ratios["loop"], "≤", 1.15))
        limit = NASH_TARGET if row.method == "nash_mtl" else 0.9
        if table.reference("torchjd", row.method) is not None:
            checks.append((f"{row.label} × TorchJD (mtl_backward)", ratios["torchjd"], "≤", limit))
        if table.reference("autogram", row.method) is not None:
            checks.append((f"{row.label} × TorchJD (autogram)", ratios["autogram"], "≤", limit))
    for row in table.rows:
        if row.kind == "representation":
            checks.append((f"{row.label} × hand summed loss", table.ratios(row)["summed"], "≤", 1.5))
    for row in table.rows:
        if row.kind in ("jacobian", "gramian", "representation"):
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
