"""`TrainSteps`, a base of `Trainer`: an epoch of optimisation steps, each step, and the end of the epoch.

Each step forwards the step's batches, computes each task's loss over its labelled samples
(`multitask.task_losses`), turns them into ``.grad`` with `multitask.backward` (the one update rule,
which a user's own loop calls the same way), clips, steps, then calls ``strategy.after_step``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from multitask._backward import BackwardResult, backward
from multitask.data import Step
from multitask.errors import ConfigError, DataError, NonFiniteLossError, ShapeError
from multitask.jacobian import JacobianEngine
from multitask.models import MultiTaskModel
from multitask.strategy import Strategy
from multitask.tasks import Task, task_losses
from multitask.training._data import check_batch, check_classes
from multitask.training._distributed_step import DistributedStep
from multitask.training._selection import ModelSelection
from multitask.training.callbacks import Callback, StepResult
from multitask.training.distributed import Distributed

_log = logging.getLogger("multitask")


class EpochTotals:
    """What the steps of an epoch add up: per task the loss sums and label counts, the weights, the steps.

    Args:
        num_tasks: Number of tasks.
    """

    def __init__(self, num_tasks: int) -> None:
        self.loss_sums = torch.zeros(num_tasks, dtype=torch.float64)
        self.label_counts = torch.zeros(num_tasks, dtype=torch.float64)
        self.weight_sums = torch.zeros(num_tasks, dtype=torch.float64)
        self.updates = 0
        self.skipped = 0

    def add(self, values: Tensor, present: Tensor, weights: Tensor) -> None:
        """One applied step: its loss ``values [T]``, label counts ``present [T]`` and ``weights [T]`` (float64)."""
        self.loss_sums += values * present
        self.label_counts += present
        self.weight_sums += weights
        self.updates += 1

    def reset(self) -> None:
        """Zero everything, for the next epoch."""
        self.loss_sums.zero_()
        self.label_counts.zero_()
        self.weight_sums.zero_()
        self.updates = 0
        self.skipped = 0

    def state_dict(self) -> dict[str, Any]:
        """The totals, for a checkpoint (the checkpoint's ``epoch_accumulators``)."""
        return {
            "loss_sums": self.loss_sums,
            "label_counts": self.label_counts,
            "weight_sums": self.weight_sums,
            "updates": self.updates,
            "skipped": self.skipped,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what `state_dict` returned."""
        self.loss_sums = state["loss_sums"].clone()
        self.label_counts = state["label_counts"].clone()
        self.weight_sums = state["weight_sums"].clone()
        self.updates = state["updates"]
        self.skipped = state.get("skipped", 0)


def to_device(batch: Mapping[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    """``batch`` on ``device`` (copied asynchronously from pinned memory)."""
    return {key: value.to(device, non_blocking=True) for key, value in batch.items()}


def autocast(device: torch.device, dtype: torch.dtype, enabled: bool) -> contextlib.AbstractContextManager[Any]:
    """The forward pass's autocast to ``dtype`` on ``device``; nothing when mixed precision is off."""
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


class TrainSteps:
    """The epochs and optimisation steps of `Trainer` (a base of `Trainer`, which sets these attributes)."""

    model: MultiTaskModel
    tasks: dict[str, Task]
    task_names: tuple[str, ...]
    strategy: Strategy
    engine: JacobianEngine
    optimizer: Optimizer
    scheduler: LRScheduler | None
    scheduler_interval: Literal["epoch", "step"]
    scaler: torch.amp.GradScaler
    device: torch.device
    mixed_precision: bool
    grad_clip: float | None
    on_nonfinite: Literal["raise", "skip"]
    distributed: Distributed | None
    callbacks: list[Callback]
    checkpoint_every: int | None
    history: list[dict[str, float]]
    selection: ModelSelection
    epoch: int
    step_in_epoch: int
    global_step: int
    skipped_steps: int
    _amp_dtype: torch.dtype
    _distributed_step: DistributedStep | None
    _parameters: list[nn.Parameter]
    _shared_parameters: tuple[nn.Parameter, ...]
    _task_parameters: list[nn.Parameter]
    _last_step: BackwardResult | None
    _total_steps: int
    _totals: EpochTotals
    _epoch_seconds: float
    _unscanned: frozenset[str]
    _seen: set[str]

    if TYPE_CHECKING:  # defined by Trainer or its other bases

        @property
        def is_main_process(self) -> bool: ...

        def _save_checkpoint(self) -> None: ...

    def _run_epoch(self, steps: Iterator[Step], num_steps: int | None) -> None:
        started = time.perf_counter()
        for callback in self.callbacks:
            callback.on_epoch_start(self, self.epoch, num_steps, self.step_in_epoch)
        for groups in steps:
            for callback in self.callbacks:
                callback.on_step_start(self, groups)
            result = self._train_step(groups)
            self.step_in_epoch += 1
            self.global_step += 1
            for callback in self.callbacks:
                callback.on_step_end(self, result)
            if self.checkpoint_every is not None and self.global_step % self.checkpoint_every == 0:
                self._save_checkpoint()
        self._epoch_seconds = time.perf_counter() - started

    def _train_step(self, groups: Step) -> StepResult:
        self.model.train()
        outputs: dict[str, Tensor] = {}
        batches: dict[str, Mapping[str, Tensor]] = {}
        features: list[Tensor] = []
        use_features = self.model.has_shared_representation and bool(self._shared_parameters)
        where = f"epoch {self.epoch + 1}, step {self.step_in_epoch + 1}"
        forward_rng: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        if self._distributed_step is not None:
            self._distributed_step.distributed.position = where
            forward_rng = self._distributed_step.forward_rng(self.global_step, self.device)
        for batch, names in groups:  # data not checked up front: each batch, before the update
            unscanned = [name for name in names if name in self._unscanned]
            if unscanned:
                check_batch(self.tasks, batch, unscanned, f"training data, {where}")
                self._seen.update(unscanned)
        with autocast(self.device, self._amp_dtype, self.mixed_precision), forward_rng:
            for batch, names in groups:
                batch = to_device(batch, self.device)
                outputs.update(self._forward(batch, names, where))
                batches.update(dict.fromkeys(names, batch))
                check_classes(self.tasks, outputs, batch, names, f"training data, {where}")
                if use_features or self.strategy.adversary is not None:
                    features.append(self._shared_features(names))
            losses = task_losses(list(self.tasks.values()), outputs, batches)
        counts = {name: int(count) for name, count in zip(self.task_names, losses.counts.tolist(), strict=True)}
        loss_vector = losses.values
        if self._distributed_step is not None:  # global loss values; gradients of this process's share
            loss_vector, values, counts = self._distributed_step.global_losses(loss_vector, counts, self.task_names)
        else:
            values = loss_vector.detach().double().cpu()
        self.optimizer.zero_grad(set_to_none=True)
        labelled = torch.tensor([counts.get(name, 0) > 0 for name in self.task_names], device=self.device)
        representation = [f for f in features if isinstance(f, Tensor)] if use_features else []
        result = backward(
            losses if self._distributed_step is None else loss_vector,
            self.strategy,
            shared_params=self._shared_parameters,
            task_params=self._task_parameters,
            features=representation if representation and len(representation) == len(features) else None,
            present=labelled if self._distributed_step is not None else None,
            penalty=lambda: self._penalty(features, groups),
            engine=self.engine,
            scaler=self.scaler,
            process_group=self.distributed,
            on_nonfinite=self.on_nonfinite,
            epoch=self.epoch,
            step=self.global_step,
            where=where,
        )
        self._last_step = result
        if not result.applied:
            self.optimizer.zero_grad(set_to_none=True)
            return self._skip(values, counts)
        weights = result.weights
        if self.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self._parameters, self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.strategy.after_step(float(self.optimizer.param_groups[0]["lr"]))
        if self.scheduler is not None and self.scheduler_interval == "step":
            self.scheduler.step()
        present = torch.tensor([float(counts.get(name, 0)) for name in self.task_names], dtype=torch.float64)
        weight_values = weights.double().cpu()
        self._totals.add(values, present, weight_values)
        return StepResult(
            self.epoch,
            self.step_in_epoch,
            self.global_step,
            self._loss_dict(values, counts),
            dict(zip(self.task_names, weight_values.tolist(), strict=True)),
        )

    def _forward(self, batch: Mapping[str, Tensor], names: tuple[str, ...], where: str) -> dict[str, Tensor]:
        """The model on one batch; a shape mismatch becomes a `ShapeError` that shows the batch's columns."""
        try:
            outputs: dict[str, Tensor] = self.model(batch, names)
            return outputs
        except RuntimeError as error:
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            if isinstance(error, torch.OutOfMemoryError) or not any(
                word in message for word in ("shape", "size", "dimension", "mat1", "expected input", "channels")
            ):
                raise
            columns = ", ".join(f"{key} {list(value.shape)}" for key, value in batch.items())
            raise ShapeError(
                f"the model cannot take a batch of the training data ({where}; columns: {columns[:160]}): "
                f"{message[:200]}; check the encoder's input size against the data"
            ) from None

    def _shared_features(self, names: tuple[str, ...]) -> Tensor:
        features = self.model.shared_features()
        if features is None:
            raise ConfigError(f"{type(self.model).__name__}.shared_features() returned None after a forward pass")
        if self.strategy.adversary is not None and len(names) != 1:
            raise ConfigError(
                f"adversarial training needs one task per batch (multi-input data); got a batch for {names}"
            )
        return features

    def _penalty(self, features: list[Tensor], groups: Step) -> Tensor:
        """The model's penalty and the adversarial term (each process's share; backward adds the strategy's)."""
        penalty = self.model.regularization()  # e.g. soft sharing's λ Σ_t ‖b_t‖²
        if self.strategy.adversary is not None:  # the adversarial term: a penalty on the shared features
            penalty = penalty + self._adversarial_term(features, groups)
        if self.distributed is not None:  # each process's share; the gradient sum over processes is the penalty's
            penalty = penalty / self.distributed.world_size
        return penalty

    def _adversarial_term(self, shared: list[Tensor], groups: Step) -> Tensor:
        adversary = self.strategy.adversary
        assert adversary is not None
        task_ids = [self.task_names.index(names[0]) for _, names in groups]
        progress = min(1.0, self.global_step / self._total_steps)
        return adversary.objective_term(shared, task_ids, progress).to(self.device)

    def _skip(self, values: Tensor, counts: Mapping[str, int]) -> StepResult:
        """Count a step that leaves the weights untouched (``on_nonfinite="skip"``)."""
        self.skipped_steps += 1
        self._totals.skipped += 1
        return StepResult(self.epoch, self.step_in_epoch, self.global_step, self._loss_dict(values, counts), {}, True)

    def _loss_dict(self, values: Tensor, counts: Mapping[str, int]) -> dict[str, float]:
        pairs = zip(self.task_names, values.tolist(), strict=True)
        return {name: (value if counts.get(name, 0) > 0 else math.nan) for name, value in pairs}

    # ------------------------------------------------------------------ the end of an epoch
    def _check_labels_seen(self) -> None:
        """Data not scanned up front: a task read in this epoch without a single label is an error (nothing saved)."""
        for index, name in enumerate(self.task_names):
            if name in self._seen and self._totals.label_counts[index] == 0:
                raise DataError(
                    f"task {name!r} has no labelled sample in the training data: epoch {self.epoch + 1} read "
                    f"{self.step_in_epoch} steps of it and every label was missing (NaN, or ignore_index for classes)"
                )
        self._seen.clear()

    def _check_skipped(self) -> None:
        """Report the epoch's skipped steps; most of them skipped means the run diverged: stop, saving nothing."""
        skipped, steps = self._totals.skipped, self.step_in_epoch
        if skipped == 0 or (not self.is_main_process and 2 * skipped <= steps):
            return
        if 2 * skipped > steps:
            raise NonFiniteLossError(
                f"epoch {self.epoch + 1}: {skipped} of {steps} steps were skipped for NaN or infinite losses "
                "(on_nonfinite='skip'): the run diverged, nothing of this epoch is saved; lower the learning rate "
                "or set grad_clip"
            )
        _log.warning("epoch %d: %d of %d steps skipped for NaN or infinite losses", self.epoch + 1, skipped, steps)

    def _end_epoch(self, validate: Callable[[], Mapping[str, float]] | None, monitor: str | None) -> dict[str, float]:
        """The epoch's record (``validate`` gives its validation part), then model selection and the next epoch."""
        self._check_labels_seen()
        self._check_skipped()
        record: dict[str, float] = {
            "epoch": float(self.epoch + 1),
            "train/skipped_steps": float(self._totals.skipped),
        }
        totals = self._totals
        train_means = totals.loss_sums / totals.label_counts.clamp(min=1)
        train_means[totals.label_counts == 0] = math.nan
        for name, value in zip(self.task_names, train_means.tolist(), strict=True):
            record[f"train/{name}/loss"] = value
        mean_weights = totals.weight_sums / max(totals.updates, 1)
        for name, value in zip(self.task_names, mean_weights.tolist(), strict=True):
            record[f"weight/{name}"] = value
        if validate is not None:
            record.update(validate())
        record["lr"] = float(self.optimizer.param_groups[0]["lr"])
        record["time/epoch_s"] = self._epoch_seconds
        self.history.append(record)
        if monitor is not None:
            self.selection.update(record[monitor], self.epoch, self.model)
        self.strategy.on_epoch_end(self.epoch, train_means.to(self.device, torch.float32))
        if self.scheduler is not None and self.scheduler_interval == "epoch":
            self.scheduler.step()
        self.epoch += 1
        self.step_in_epoch = 0
        totals.reset()
        return record
