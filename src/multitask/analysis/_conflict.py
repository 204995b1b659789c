"""Gradient conflict: cosines and magnitudes of the task gradients on the shared parameters, sampled during training."""

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

from multitask._plots import heatmap, nan_mean, pyplot, save_png
from multitask.analysis._probe import (
    check_every,
    named_shared_parameters,
    pair_names,
    release_step_gradients,
    step_gradients,
)
from multitask.data import Step
from multitask.errors import DataError, ShapeError
from multitask.jacobian import JacobianEngine
from multitask.layout import CONFLICT_FILE
from multitask.training.callbacks import Callback, StepResult
from multitask.training.checkpoint import atomic_write_bytes

if TYPE_CHECKING:
    from multitask.training.trainer import Trainer


def gradient_conflict(jacobian: Tensor) -> tuple[Tensor, Tensor]:
    r"""Pairwise cosine similarities and norms of the task gradients (the rows of ``J``).

    ``cos_ij = ⟨g_i, g_j⟩ / (‖g_i‖ ‖g_j‖)``; a negative cosine is a conflict: a step along ``g_i``
    increases task j's loss to first order (Yu et al., "Gradient Surgery for Multi-Task Learning",
    NeurIPS 2020, Def. 1). A zero gradient has NaN cosines.

    Args:
        jacobian: ``[T, P]``, one task gradient per row.

    Returns:
        ``(cosine [T, T], norms [T])`` in float64.
    """
    if jacobian.dim() != 2:
        raise ShapeError(f"jacobian must be [num_tasks, num_params]; got {tuple(jacobian.shape)}")
    rows = jacobian.detach().double()
    return _cosines(rows @ rows.T)


def _cosines(gramian: Tensor) -> tuple[Tensor, Tensor]:
    """``(cosine [T, T], norms [T])`` from the Gramian ``G = J Jᵀ`` (NaN cosines for zero gradients)."""
    norms = gramian.diagonal().clamp(min=0).sqrt()
    outer = norms[:, None] * norms[None, :]
    cosine = torch.where(outer > 0, gramian / outer.clamp(min=1e-300), torch.full_like(gramian, math.nan))
    return cosine.clamp(-1.0, 1.0), norms


def update_contributions(jacobian: Tensor, update: Tensor) -> Tensor:
    r"""Each task's share of the shared update: the projection ``c_t = ⟨g_t, d⟩ / ‖d‖²``.

    For the plain sum ``d = Σ_t g_t`` the shares add up to one; a negative share means the update
    works against that task. NaN when ``d = 0``.

    Args:
        jacobian: ``[T, P]`` task gradients.
        update: ``[P]`` the update direction (e.g. the gradient the optimiser received).
    """
    if jacobian.dim() != 2 or update.dim() != 1 or update.numel() != jacobian.shape[1]:
        raise ShapeError(f"need jacobian [T, P] and update [P]; got {tuple(jacobian.shape)} and {tuple(update.shape)}")
    d = update.detach().double()
    squared = float(d @ d)
    if squared == 0.0:
        return torch.full((jacobian.shape[0],), math.nan, dtype=torch.float64)
    return (jacobian.detach().double() @ d) / squared


@dataclass
class ConflictHistory:
    """Sampled gradient statistics: one entry per sampled step.

    Attributes:
        task_names: The tasks, in row order.
        steps: Global step of each sample (the number of updates done before it).
        epochs: Epoch of each sample.
        cosine: ``[S, T, T]`` cosine matrices (NaN for a task absent from the step).
        norms: ``[S, T]`` gradient norms.
        contribution: ``[S, T]`` shares ``⟨g_t, d⟩ / ‖d‖²`` of the update the optimiser received (NaN when unknown).
    """

    task_names: list[str]
    steps: list[int] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)
    cosine: list[list[list[float]]] = field(default_factory=list)
    norms: list[list[float]] = field(default_factory=list)
    contribution: list[list[float]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.steps)

    def mean_cosine(self) -> np.ndarray[Any, Any]:
        """``[T, T]``: each pair's cosine averaged over the samples where both tasks were present."""
        return nan_mean(np.asarray(self.cosine, dtype=float).reshape(-1, len(self.task_names), len(self.task_names)))

    def magnitude_ratio(self) -> np.ndarray[Any, Any]:
        """``[T, T]``: mean of ``‖g_i‖ / ‖g_j‖`` over the samples (row task over column task)."""
        norms = np.asarray(self.norms, dtype=float).reshape(-1, len(self.task_names))
        with np.errstate(invalid="ignore", divide="ignore"):
            ratios = norms[:, :, None] / norms[:, None, :]
        ratios[~np.isfinite(ratios)] = np.nan
        return nan_mean(ratios)

    def conflict_rate(self) -> np.ndarray[Any, Any]:
        """``[T, T]``: share of samples with a negative cosine."""
        cos = np.asarray(self.cosine, dtype=float).reshape(-1, len(self.task_names), len(self.task_names))
        negative = np.where(np.isfinite(cos), (cos < 0).astype(float), np.nan)
        return nan_mean(negative)

    def most_conflicting(self) -> tuple[str, str, float] | None:
        """The pair with the most negative mean cosine, or None without samples."""
        mean = self.mean_cosine()
        pairs = [(mean[i, j], i, j) for i, j in pair_names(self.task_names) if math.isfinite(mean[i, j])]
        if not pairs:
            return None
        value, i, j = min(pairs)
        return self.task_names[i], self.task_names[j], float(value)

    def append(self, step: int, epoch: int, cosine: Tensor, norms: Tensor, contribution: Tensor | None = None) -> None:
        """Add one sample (tensors of shape ``[T, T]``, ``[T]``, ``[T]``)."""
        num_tasks = len(self.task_names)
        self.steps.append(int(step))
        self.epochs.append(int(epoch))
        self.cosine.append(cosine.double().cpu().reshape(num_tasks, num_tasks).tolist())
        self.norms.append(norms.double().cpu().reshape(num_tasks).tolist())
        missing = [math.nan] * num_tasks
        self.contribution.append(contribution.double().cpu().tolist() if contribution is not None else missing)

    # ----- files -----
    def to_jsonl(self) -> str:
        """One JSON object per sample (NaN written as null)."""
        lines = []
        for k in range(len(self)):
            record = {
                "step": self.steps[k],
                "epoch": self.epochs[k],
                "tasks": self.task_names,
                "cosine": _nulls(self.cosine[k]),
                "norms": _nulls(self.norms[k]),
                "contribution": _nulls(self.contribution[k]),
            }
            lines.append(json.dumps(record) + "\n")
        return "".join(lines)

    def write(self, path: str | Path) -> Path:
        """Write `to_jsonl` atomically to ``path``."""
        path = Path(path)
        atomic_write_bytes(path, self.to_jsonl().encode())
        return path

    @classmethod
    def read(cls, path: str | Path) -> ConflictHistory:
        """Read a ``conflict.jsonl`` file (or the one in a folder)."""
        path = Path(path)
        if path.is_dir():
            path = path / CONFLICT_FILE
        if not path.is_file():
            raise DataError(f"no gradient conflict log at {path} (train with GradientConflictMonitor)")
        history: ConflictHistory | None = None
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                if history is None:
                    history = cls(list(record["tasks"]))
                history.steps.append(int(record["step"]))
                history.epochs.append(int(record["epoch"]))
                history.cosine.append(_nans(record["cosine"]))
                history.norms.append(_nans(record["norms"]))
                history.contribution.append(_nans(record["contribution"]))
            except (ValueError, KeyError, TypeError) as error:
                raise DataError(f"{path}:{number}: not a gradient conflict record ({error})") from error
        if history is None:
            raise DataError(f"{path} holds no gradient conflict record")
        return history

    def state(self) -> dict[str, Any]:
        """Plain containers, for checkpoints."""
        return {
            "task_names": list(self.task_names),
            "steps": list(self.steps),
            "epochs": list(self.epochs),
            "cosine": self.cosine,
            "norms": self.norms,
            "contribution": self.contribution,
        }

    # ----- plots -----
    def plot_heatmap(self, path: str | Path) -> Path:
        """Mean cosine (left) and share of conflicting samples (right) for each pair of tasks."""
        plt = pyplot()
        size = 2.2 + 0.7 * len(self.task_names)
        figure, axes = plt.subplots(1, 2, figsize=(2 * size + 1.0, size), squeeze=False)
        names = self.task_names
        heatmap(axes[0][0], self.mean_cosine(), names, names, title=f"mean gradient cosine ({len(self)} samples)")
        rate = self.conflict_rate()
        heatmap(axes[0][1], rate, names, names, title="share of samples with cos < 0", symmetric=False, fmt="{:.2f}")
        axes[0][1].images[0].set_cmap("Reds")
        axes[0][1].images[0].set_clim(0, 1)
        figure.tight_layout()
        return save_png(figure, path)

    def plot_curves(self, path: str | Path) -> Path:
        """Over training steps: each pair's cosine, each task's gradient norm and its share of the update."""
        plt = pyplot()
        cos = np.asarray(self.cosine, dtype=float).reshape(-1, len(self.task_names), len(self.task_names))
        norms = np.asarray(self.norms, dtype=float).reshape(-1, len(self.task_names))
        shares = np.asarray(self.contribution, dtype=float).reshape(-1, len(self.task_names))
        has_shares = bool(np.isfinite(shares).any())
        panels = 3 if has_shares else 2
        figure, axes = plt.subplots(1, panels, figsize=(4.6 * panels, 3.4), squeeze=False)
        for i, j in pair_names(self.task_names):
            axes[0][0].plot(self.steps, cos[:, i, j], label=f"{self.task_names[i]}–{self.task_names[j]}", lw=1)
        axes[0][0].axhline(0.0, color="black", lw=0.8)
        axes[0][0].set_title("gradient cosine per pair")
        for t, name in enumerate(self.task_names):
            axes[0][1].plot(self.steps, norms[:, t], label=name, lw=1)
            if has_shares:
                axes[0][2].plot(self.steps, shares[:, t], label=name, lw=1)
        axes[0][1].set_yscale("log")
        axes[0][1].set_title("gradient norm ‖g_t‖")
        if has_shares:
            axes[0][2].set_title("share of the update ⟨g_t, d⟩/‖d‖²")
        for ax in axes[0]:
            ax.set_xlabel("step")
            ax.legend(fontsize=7)
        figure.tight_layout()
        return save_png(figure, path)


class GradientConflictMonitor(Callback):
    r"""Samples the task gradients on the shared parameters every ``every`` steps and records their conflict.

    At a sampled step, before the update, it computes the per-task Jacobian ``J [T, P]`` of the
    step's task losses with respect to the model's shared parameters (`multitask.jacobian.JacobianEngine`,
    one batched backward pass) on the step's own batches, then records the cosine ``cos_ij`` of
    every pair of task gradients, each norm ``‖g_t‖`` (their ratios are the magnitude differences
    PCGrad's analysis names as the second cause of trouble), and, after the step, each task's share
    ``⟨g_t, d⟩ / ‖d‖²`` of the gradient ``d`` the optimiser received on the shared parameters
    (with equal weighting the shares sum to one; not recorded under CUDA loss scaling).

    One monitor can be passed to several runs (e.g. through `multitask.baselines.compare`): every
    fresh fit with two or more tasks starts a new log in its own run folder, and single-task runs
    are skipped.

    The probe leaves no trace on training: it runs the model in evaluation mode (no dropout) under
    a forked RNG, restores the mode, and takes gradients with ``torch.autograd.grad`` (no
    ``.grad`` written). Tasks without labels in a step get NaN entries. The samples are kept in
    `history`, written to ``RUN_DIR/conflict.jsonl`` after every epoch, and plotted at the end
    (``conflict_heatmap.png``, ``conflict_curves.png``); they are part of the checkpoint, so a resumed
    run continues the same log.

    Args:
        every: Sample every this many steps (the first step is always sampled).
        chunk_size: Tasks per batched backward pass (see `JacobianEngine`).
        plot: Write the two plots at the end of training (with a run folder).

    References:
        Yu et al., "Gradient Surgery for Multi-Task Learning", NeurIPS 2020 (conflicting gradients and
        magnitude differences, Sec. 3).

    Example:
        >>> monitor = GradientConflictMonitor(every=10)
        >>> # Trainer(model, tasks, callbacks=[monitor]).fit(train); monitor.history.mean_cosine()
    """

    def __init__(self, every: int = 10, *, chunk_size: int | None = None, plot: bool = True) -> None:
        self.every = check_every(every)
        self.engine = JacobianEngine(chunk_size)
        self.plot = plot
        self.history = ConflictHistory([])
        self._pending: tuple[int, int, Tensor, Tensor, list[Tensor]] | None = None
        self._active = True

    def on_fit_start(self, trainer: Trainer) -> None:
        # A fresh fit starts a new log; a resumed one (its state already loaded) continues it.
        self._active = len(trainer.task_names) > 1
        if trainer.global_step == 0 or self.history.task_names != list(trainer.task_names):
            self.history = ConflictHistory(list(trainer.task_names))

    def on_step_start(self, trainer: Trainer, groups: Step) -> None:
        self._pending = None
        if not self._active or trainer.global_step % self.every != 0:
            return
        blocks, present = self.measure(trainer, groups)
        num_tasks = len(trainer.task_names)
        gramian = torch.zeros(num_tasks, num_tasks, dtype=torch.float64)
        for block in blocks:  # G = J Jᵀ block by block: the [T, P] matrix is never concatenated
            rows = block.reshape(num_tasks, -1).double()
            gramian += (rows @ rows.T).cpu()
        cosine, norms = _cosines(gramian)
        absent = ~present
        cosine[absent, :] = math.nan
        cosine[:, absent] = math.nan
        norms[absent] = math.nan
        self._pending = (trainer.global_step, trainer.epoch, cosine, norms, blocks)

    def measure(self, trainer: Trainer, groups: Step) -> tuple[list[Tensor], Tensor]:
        """Per-parameter blocks ``[T, *p.shape]`` of the Jacobian on the step's batches and ``present [T]``.

        Rows of tasks without labels in the step are zero. A `TaskAffinityMonitor` sampling the same
        step shares these gradients (`step_gradients`).
        """
        measured = step_gradients(trainer, groups, self.engine)
        return measured.blocks, measured.present

    def on_step_end(self, trainer: Trainer, step: StepResult) -> None:
        release_step_gradients(trainer)
        if self._pending is None:
            return
        global_step, epoch, cosine, norms, blocks = self._pending
        self._pending = None
        contribution = None
        if not step.skipped and not trainer.scaler.is_enabled():
            grads = [p.grad for _, p in named_shared_parameters(trainer.model)]
            if all(g is not None for g in grads):
                num_tasks = len(blocks[0]) if blocks else 0
                dots = torch.zeros(num_tasks, dtype=torch.float64)
                squared = 0.0
                for block, grad in zip(blocks, grads, strict=True):
                    assert grad is not None
                    d = grad.detach().double().reshape(-1)
                    dots += (block.reshape(num_tasks, -1).double() @ d).cpu()
                    squared += float(d @ d)
                contribution = dots / squared if squared > 0 else torch.full((num_tasks,), math.nan)
                contribution[torch.isnan(norms)] = math.nan
        self.history.append(global_step, epoch, cosine, norms, contribution)

    def on_epoch_end(self, trainer: Trainer, record: Mapping[str, float]) -> None:
        if trainer.run_dir is not None and len(self.history):
            self.history.write(trainer.run_dir / CONFLICT_FILE)

    def on_fit_end(self, trainer: Trainer) -> None:
        if trainer.run_dir is None or not len(self.history):
            return
        self.history.write(trainer.run_dir / CONFLICT_FILE)
        if self.plot:
            self.history.plot_heatmap(trainer.run_dir / "conflict_heatmap.png")
            self.history.plot_curves(trainer.run_dir / "conflict_curves.png")

    def state_dict(self) -> dict[str, Any]:
        return {"history": self.history.state()}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        saved = state["history"]
        self.history = ConflictHistory(
            list(saved["task_names"]),
            list(saved["steps"]),
            list(saved["epochs"]),
            list(saved["cosine"]),
            list(saved["norms"]),
            list(saved["contribution"]),
        )


def _nulls(values: Sequence[Any]) -> list[Any]:
    return [
        _nulls(v) if isinstance(v, list) else (None if isinstance(v, float) and math.isnan(v) else v) for v in values
    ]


def _nans(values: Sequence[Any]) -> list[Any]:
    return [_nans(v) if isinstance(v, list) else (math.nan if v is None else float(v)) for v in values]
