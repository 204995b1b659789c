"""Task affinity: TAG's look-ahead inter-task affinity during one joint run, and the pairwise transfer matrix."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from multitask._plots import heatmap, pyplot, save_png
from multitask.analysis._grouping import TaskGrouping, select_groups
from multitask.analysis._probe import (
    StepGradients,
    check_every,
    named_shared_parameters,
    probing,
    release_step_gradients,
    step_gradients,
    step_losses,
)
from multitask.data import Step
from multitask.errors import ConfigError, DataError
from multitask.jacobian import JacobianEngine
from multitask.layout import AFFINITY_FILE
from multitask.models import MultiTaskModel
from multitask.tasks import Task
from multitask.training.callbacks import Callback, StepResult
from multitask.training.checkpoint import atomic_write_bytes

if TYPE_CHECKING:
    from multitask.training.trainer import Trainer


@dataclass
class TaskAffinity:
    """A matrix ``A [T, T]`` whose entry ``(i, j)`` says how much task i helps task j (positive: helps).

    Attributes:
        task_names: Row and column order.
        matrix: ``A[i][j]``, the effect of source task i on target task j.
        kind: ``"lookahead"`` (TAG's ``Ẑ_{i→j}``, unitless) or ``"pairwise"`` (relative change of j's
            metric when trained with i rather than alone, in percent).
        samples: Steps averaged (lookahead) or pair trainings (pairwise).
        steps: Global step of each look-ahead sample.
        history: ``[S, T, T]`` per-sample look-ahead matrices (empty for pairwise).
    """

    task_names: list[str]
    matrix: list[list[float]]
    kind: str = "lookahead"
    samples: int = 0
    steps: list[int] = field(default_factory=list)
    history: list[list[list[float]]] = field(default_factory=list)

    def array(self) -> np.ndarray[Any, Any]:
        """The matrix as a float array ``[T, T]``."""
        return np.asarray(self.matrix, dtype=float).reshape(len(self.task_names), len(self.task_names))

    def group(self, num_groups: int, **options: Any) -> TaskGrouping:
        """The recommended grouping for ``num_groups`` models (see `select_groups`)."""
        return select_groups(self.array(), num_groups, task_names=self.task_names, **options)

    def to_json(self) -> str:
        """The affinity as JSON (NaN written as null)."""
        payload = {
            "kind": self.kind,
            "tasks": self.task_names,
            "samples": self.samples,
            "matrix": _nulls(self.matrix),
            "steps": self.steps,
            "history": _nulls(self.history),
        }
        return json.dumps(payload, indent=1)

    def write(self, path: str | Path) -> Path:
        """Write `to_json` atomically to ``path`` (``affinity.json`` when ``path`` is a folder)."""
        path = Path(path)
        if path.is_dir():
            path = path / AFFINITY_FILE
        atomic_write_bytes(path, self.to_json().encode())
        return path

    @classmethod
    def read(cls, path: str | Path) -> TaskAffinity:
        """Read an ``affinity.json`` file (or the one in a folder)."""
        path = Path(path)
        if path.is_dir():
            path = path / AFFINITY_FILE
        try:
            payload = json.loads(path.read_text())
            return cls(
                list(payload["tasks"]),
                _nans(payload["matrix"]),
                str(payload["kind"]),
                int(payload["samples"]),
                [int(s) for s in payload.get("steps", [])],
                _nans(payload.get("history", [])),
            )
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise DataError(f"cannot read a task affinity from {path}: {error}") from error

    def plot(self, path: str | Path) -> Path:
        """Heatmap of the matrix: rows are the source task i, columns the target task j."""
        plt = pyplot()
        size = 2.4 + 0.75 * len(self.task_names)
        figure, ax = plt.subplots(figsize=(size + 1.0, size))
        label = "TAG look-ahead affinity Z(i→j)" if self.kind == "lookahead" else "pairwise transfer (%) i→j"
        fmt = "{:+.3f}" if self.kind == "lookahead" else "{:+.1f}"
        values = self.array().copy()
        if self.kind == "lookahead":
            np.fill_diagonal(values, np.nan)  # self-affinity is on another scale; grouping ignores it
        heatmap(ax, values, self.task_names, self.task_names, title=label, fmt=fmt)
        ax.set_ylabel("source task i")
        ax.set_xlabel("target task j")
        figure.tight_layout()
        return save_png(figure, path)


def lookahead_affinity(
    model: MultiTaskModel,
    tasks: Sequence[Task] | Mapping[str, Task],
    groups: Step,
    lr: float,
    *,
    engine: JacobianEngine | None = None,
    device: torch.device | str | None = None,
    gradients: StepGradients | None = None,
) -> Tensor:
    r"""TAG's look-ahead inter-task affinity on one step: ``Z [T, T]`` with ``Z[i, j] = Z_{i→j}``.

    ``Z_{i→j} = 1 − L_j(X, θ_{s|i}, θ_j) / L_j(X, θ_s, θ_j)`` with the look-ahead shared parameters
    ``θ_{s|i} = θ_s − η ∇_{θ_s} L_i(X, θ_s, θ_i)`` (Fifty et al. 2021, Eq. 1-2): the relative drop of
    task j's loss on the same batch ``X`` after a gradient step on the shared parameters for task i
    alone. Positive: i's update helps j; negative: it hurts j. The per-task gradients come from one
    batched backward pass (`JacobianEngine`); each look-ahead is one forward pass without gradients.
    The model runs in evaluation mode under a forked RNG and is left as it was. Entries of tasks
    without labels in the step (or with a zero loss) are NaN.

    Args:
        model: The multi-task model.
        tasks: Its tasks (in the model's order).
        groups: The step's batches ``[(batch, task names), ...]`` (e.g. from ``Callback.on_step_start``).
        lr: The look-ahead step size ``η`` (TAG uses the training learning rate).
        engine: The Jacobian engine (default: a fresh one).
        device: Where to run (default: the model's device).
        gradients: The step's losses and shared gradients when already measured on these batches
            (`step_gradients`); None computes them.

    References:
        Fifty, Amid, Zhao, Yu, Anil & Finn, "Efficiently Identifying Task Groupings for Multi-Task
        Learning", NeurIPS 2021. arXiv:2109.04617.
    """
    if not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
        raise ConfigError(f"lr (the look-ahead step size) must be a positive number; got {lr!r}")
    by_name = dict(tasks) if isinstance(tasks, Mapping) else {task.name: task for task in tasks}
    engine = engine or JacobianEngine()
    shared = named_shared_parameters(model)
    num_tasks = len(by_name)
    result = torch.full((num_tasks, num_tasks), math.nan, dtype=torch.float64)
    with probing(model):
        if gradients is None:
            before, present = step_losses(model, by_name, groups, device)
            index = present.nonzero().flatten().tolist()
            if not index:
                return result
            blocks = engine.gradients(before[index], [p for _, p in shared])
        else:
            before, present = gradients.losses, gradients.present
            index = present.nonzero().flatten().tolist()
            if not index:
                return result
            blocks = [block[index] for block in gradients.blocks]
        reference = before.detach().double().cpu()
        with torch.no_grad():
            for row, i in enumerate(index):
                moved = {name: p.detach() - lr * block[row] for (name, p), block in zip(shared, blocks, strict=True)}
                after, _ = step_losses(model, by_name, groups, device, parameters=moved)
                after = after.double().cpu()
                for j in index:
                    if reference[j] > 0:
                        result[i, j] = 1.0 - after[j] / reference[j]
    return result


class TaskAffinityMonitor(Callback):
    r"""Measures TAG's look-ahead inter-task affinity every ``every`` steps of a joint run and averages it.

    ``Ẑ_{i→j} = (1/S) Σ_s Z^s_{i→j}`` over the sampled steps (the paper averages over every step;
    sampling every few steps trades precision for time: each sample costs one batched backward pass
    and ``T`` forward passes). See `lookahead_affinity` for ``Z``. The average is kept in
    `affinity`, written to ``RUN_DIR/affinity.json`` after every epoch and plotted at the end
    (``affinity.png``); it is part of the checkpoint. `TaskAffinity.group` then recommends which tasks
    to train together. Like `GradientConflictMonitor`, one monitor can serve several runs: each
    fresh fit with two or more tasks starts a new average, single-task runs are skipped.

    Args:
        every: Sample every this many steps (the first step is always sampled).
        lr: Look-ahead step size ``η``; None uses the optimiser's current learning rate.
        chunk_size: Tasks per batched backward pass.
        keep_history: Also keep every sample's matrix (for curves).

    References:
        Fifty, Amid, Zhao, Yu, Anil & Finn, "Efficiently Identifying Task Groupings for Multi-Task
        Learning", NeurIPS 2021. arXiv:2109.04617.
    """

    def __init__(
        self, every: int = 10, *, lr: float | None = None, chunk_size: int | None = None, keep_history: bool = True
    ) -> None:
        self.every = check_every(every)
        if lr is not None and not (isinstance(lr, int | float) and math.isfinite(lr) and lr > 0):
            raise ConfigError(f"lr must be a positive number or None (the optimiser's); got {lr!r}")
        self.lr = lr
        self.engine = JacobianEngine(chunk_size)
        self.keep_history = keep_history
        self.affinity = TaskAffinity([], [])
        self._sum = np.zeros((0, 0))
        self._count = np.zeros((0, 0))
        self._active = True

    def on_fit_start(self, trainer: Trainer) -> None:
        # A fresh fit starts a new average; a resumed one (its state already loaded) continues it.
        names = list(trainer.task_names)
        self._active = len(names) > 1
        if trainer.global_step == 0 or self.affinity.task_names != names:
            size = len(names)
            self.affinity = TaskAffinity(names, np.full((size, size), np.nan).tolist())
            self._sum, self._count = np.zeros((size, size)), np.zeros((size, size))

    def on_step_start(self, trainer: Trainer, groups: Step) -> None:
        if not self._active or trainer.global_step % self.every != 0:
            return
        lr = self.lr if self.lr is not None else float(trainer.optimizer.param_groups[0]["lr"])
        measured = step_gradients(trainer, groups, self.engine)  # shared with a conflict monitor on this step
        z = lookahead_affinity(
            trainer.model, trainer.tasks, groups, lr, engine=self.engine, device=trainer.device, gradients=measured
        )
        values = z.numpy()
        finite = np.isfinite(values)
        self._sum[finite] += values[finite]
        self._count[finite] += 1
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(self._count > 0, self._sum / np.maximum(self._count, 1), np.nan)
        self.affinity.matrix = mean.tolist()
        self.affinity.samples += 1
        if self.keep_history:
            self.affinity.steps.append(trainer.global_step)
            self.affinity.history.append(values.tolist())

    def on_step_end(self, trainer: Trainer, step: StepResult) -> None:
        release_step_gradients(trainer)

    def on_epoch_end(self, trainer: Trainer, record: Mapping[str, float]) -> None:
        if trainer.run_dir is not None and self.affinity.samples:
            self.affinity.write(trainer.run_dir / AFFINITY_FILE)

    def on_fit_end(self, trainer: Trainer) -> None:
        if trainer.run_dir is not None and self.affinity.samples:
            self.affinity.write(trainer.run_dir / AFFINITY_FILE)
            self.affinity.plot(trainer.run_dir / "affinity.png")

    def state_dict(self) -> dict[str, Any]:
        a = self.affinity
        return {
            "task_names": a.task_names,
            "sum": self._sum.tolist(),
            "count": self._count.tolist(),
            "samples": a.samples,
            "steps": a.steps,
            "history": a.history,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._sum = np.asarray(state["sum"], dtype=float)
        self._count = np.asarray(state["count"], dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(self._count > 0, self._sum / np.maximum(self._count, 1), np.nan)
        self.affinity = TaskAffinity(
            list(state["task_names"]), mean.tolist(), "lookahead", int(state["samples"]), list(state["steps"])
        )
        self.affinity.history = [list(map(list, h)) for h in state["history"]]


def _nulls(values: Any) -> Any:
    if isinstance(values, list):
        return [_nulls(v) for v in values]
    return None if isinstance(values, float) and math.isnan(values) else values


def _nans(values: Any) -> Any:
    if isinstance(values, list):
        return [_nans(v) for v in values]
    return math.nan if values is None else float(values)
