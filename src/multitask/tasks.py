"""`Task`: what one task is — its head, loss, metrics, where its labels live and how missing ones are marked."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from multitask.errors import ConfigError, DataError, ShapeError, UnknownNameError
from multitask.metrics import DEFAULT_METRICS, Metric, builtin_metric, nanmean

TaskKind = Literal["binary", "multiclass", "multilabel", "regression"]
TASK_KINDS: tuple[str, ...] = get_args(TaskKind)
LossFn = Callable[[Tensor, Tensor], Tensor]


def _bce(prediction: Tensor, target: Tensor) -> Tensor:
    return F.binary_cross_entropy_with_logits(prediction, target, reduction="none")


def _cross_entropy(prediction: Tensor, target: Tensor) -> Tensor:
    return F.cross_entropy(prediction, target, reduction="none")


def _mse(prediction: Tensor, target: Tensor) -> Tensor:
    return F.mse_loss(prediction, target, reduction="none")


def _l1(prediction: Tensor, target: Tensor) -> Tensor:
    return F.l1_loss(prediction, target, reduction="none")


def _huber(prediction: Tensor, target: Tensor) -> Tensor:
    return F.huber_loss(prediction, target, reduction="none")


# Built-in losses return one value per labelled entry (reduction "none"); the Task averages them.
BUILTIN_LOSSES: dict[str, dict[str, LossFn]] = {
    "binary": {"bce": _bce},
    "multiclass": {"cross_entropy": _cross_entropy},
    "multilabel": {"bce": _bce},
    "regression": {"mse": _mse, "l1": _l1, "huber": _huber},
}
DEFAULT_LOSS = {"binary": "bce", "multiclass": "cross_entropy", "multilabel": "bce", "regression": "mse"}


@dataclass(frozen=True)
class TaskEvaluation:
    """A task's loss and metrics on one split, with the number of labelled entries they used."""

    loss: float
    metrics: dict[str, float]
    num_labelled: int


@dataclass(frozen=True, eq=False)
class Task:
    """One task of a multi-task model.

    Missing labels: a float target that is NaN (binary, multi-label, regression) or a class index
    equal to ``ignore_index`` (multi-class) is missing; ``mask_key`` names an optional boolean batch
    column (``[N]`` or the target's shape) that marks labelled entries explicitly. Missing entries
    contribute nothing to the loss or the metrics; a batch with no label for the task contributes
    no gradient for it (its loss is a constant zero, never NaN).

    Shapes: binary and regression heads may output ``[N]`` or ``[N, 1]`` for a target ``[N]``;
    multi-class heads output logits ``[N, C]`` for class indices ``[N]``; multi-label heads and
    multi-output regression output ``[N, L]`` for a target ``[N, L]``.

    Args:
        name: Key of the task in outputs, metrics and logs (no ``/``).
        head: The task's own module, applied to the shared representation.
        kind: ``"binary"``, ``"multiclass"``, ``"multilabel"`` or ``"regression"``.
        loss: A built-in loss name for the kind (binary/multilabel: ``bce``; multiclass:
            ``cross_entropy``; regression: ``mse``, ``l1``, ``huber``) or a callable
            ``(prediction, target) -> loss``; a callable may reduce to a scalar unless labels are
            missing inside a row of a 2-D target, where it must return per-entry losses.
        metrics: Built-in metric names (see `multitask.metrics.BUILTIN_METRICS`) or a mapping of
            name to `Metric`. The first one is the task's main metric. Defaults depend on the kind.
        target_key: Batch column of the labels; defaults to ``name``.
        ignore_index: Class index that marks a missing multi-class label.
        mask_key: Optional batch column of booleans, True where the label is present.
    """

    name: str
    head: nn.Module
    kind: TaskKind
    loss: str | LossFn | None = None
    metrics: Sequence[str] | Mapping[str, Metric] | None = None
    target_key: str | None = None
    ignore_index: int = -100
    mask_key: str | None = None
    loss_fn: LossFn = field(init=False, repr=False)
    metric_fns: dict[str, Metric] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ConfigError(f"task name must be non-empty and contain no '/'; got {self.name!r}")
        if self.kind not in TASK_KINDS:
            raise UnknownNameError(f"task {self.name!r}: unknown kind {self.kind!r}; allowed: {', '.join(TASK_KINDS)}")
        if not isinstance(self.head, nn.Module):
            raise ConfigError(f"task {self.name!r}: head must be an nn.Module; got {type(self.head).__name__}")
        object.__setattr__(self, "loss_fn", self._resolve_loss())
        object.__setattr__(self, "metric_fns", self._resolve_metrics())

    def _resolve_loss(self) -> LossFn:
        loss = DEFAULT_LOSS[self.kind] if self.loss is None else self.loss
        if callable(loss):
            return loss
        available = BUILTIN_LOSSES[self.kind]
        if loss not in available:
            raise UnknownNameError(
                f"task {self.name!r}: unknown loss {loss!r} for a {self.kind} task; allowed: {', '.join(available)}"
            )
        return available[loss]

    def _resolve_metrics(self) -> dict[str, Metric]:
        metrics = DEFAULT_METRICS[self.kind] if self.metrics is None else self.metrics
        if isinstance(metrics, Mapping):
            resolved = dict(metrics)
            for key, value in resolved.items():
                if not isinstance(value, Metric):
                    raise ConfigError(
                        f"task {self.name!r}: metric {key!r} must be a multitask.metrics.Metric "
                        f"(a function and its direction); got {type(value).__name__}"
                    )
        elif isinstance(metrics, str):
            raise ConfigError(f"task {self.name!r}: metrics must be a list of names; got the string {metrics!r}")
        else:
            resolved = {name: builtin_metric(self.kind, name) for name in metrics}
        if not resolved:
            raise ConfigError(f"task {self.name!r}: needs at least one metric")
        return resolved

    @property
    def label_key(self) -> str:
        """The batch column that holds this task's labels."""
        return self.target_key or self.name

    @property
    def main_metric(self) -> str:
        """The first metric, used when a single number per task is wanted."""
        return next(iter(self.metric_fns))

    # ----- labels and shapes -----
    def labels(self, batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
        """This task's ``(target, mask)`` in ``batch``; ``mask`` is True where a label is present."""
        if self.label_key not in batch:
            raise DataError(
                f"task {self.name!r}: batch has no column {self.label_key!r} for its labels; "
                f"columns: {sorted(batch)} (set Task(target_key=...))"
            )
        target = batch[self.label_key]
        if self.kind == "multiclass":
            mask = target != self.ignore_index
        elif target.is_floating_point():
            mask = ~torch.isnan(target)
        else:
            mask = torch.ones_like(target, dtype=torch.bool)
        if self.mask_key is not None:
            if self.mask_key not in batch:
                raise DataError(f"task {self.name!r}: batch has no mask column {self.mask_key!r}")
            explicit = batch[self.mask_key].to(torch.bool)
            if explicit.dim() == 1 and mask.dim() == 2:
                explicit = explicit[:, None]
            mask = mask & explicit
        return target, mask

    def align(self, prediction: Tensor, target: Tensor) -> Tensor:
        """Check ``prediction`` against ``target`` and squeeze a trailing 1 where the kind allows it."""
        squeezable = prediction.dim() == 2 and target.dim() == 1 and prediction.shape[1] == 1
        if self.kind in ("binary", "regression") and squeezable:
            prediction = prediction[:, 0]
        if self.kind == "multiclass":
            ok = prediction.dim() == 2 and target.dim() == 1 and prediction.shape[0] == target.shape[0]
            expected = f"logits [N, num_classes] for class indices [N={target.shape[0]}]"
        else:
            ok = prediction.shape == target.shape
            expected = f"the target's shape {tuple(target.shape)}"
        if not ok:
            raise ShapeError(
                f"task {self.name!r}: head output has shape {tuple(prediction.shape)}, expected {expected}; "
                "check the head's output size"
            )
        return prediction

    # ----- loss -----
    def compute_loss(self, prediction: Tensor, batch: Mapping[str, Tensor]) -> tuple[Tensor, int]:
        """The mean loss over labelled entries of ``batch`` and how many there were.

        With no labelled entry the loss is a constant ``0`` (no gradient, never NaN).
        """
        target, mask = self.labels(batch)
        prediction = self.align(prediction, target)
        count = int(mask.sum())
        return self._masked_loss(prediction, target, mask, count), count

    def masked_loss(self, prediction: Tensor, target: Tensor, mask: Tensor) -> Tensor:
        """Mean of the loss over the entries where ``mask`` is True (aligned prediction and target)."""
        return self._masked_loss(prediction, target, mask, int(mask.sum()))

    def _masked_loss(self, prediction: Tensor, target: Tensor, mask: Tensor, count: int) -> Tensor:
        if count == 0:
            return torch.zeros((), device=prediction.device, dtype=prediction.dtype)
        if count == mask.numel():  # every entry labelled: no selection (its backward is a scatter)
            value = self.loss_fn(prediction, self._target_for_loss(target))
            return value.mean() if value.dim() > 0 else value
        if mask.dim() == 1 or bool((mask.all(dim=1) | ~mask.any(dim=1)).all()):
            # every row is fully labelled or fully unlabelled: select rows, the loss may reduce
            rows = mask if mask.dim() == 1 else mask.all(dim=1)
            value = self.loss_fn(prediction[rows], self._target_for_loss(target[rows]))
            return value.mean() if value.dim() > 0 else value
        # 2-D target with entries missing inside rows: per-entry losses, averaged over labelled ones
        filled = torch.where(mask, target, torch.zeros_like(target))
        value = self.loss_fn(prediction, self._target_for_loss(filled))
        if value.shape != mask.shape:
            raise ShapeError(
                f"task {self.name!r}: labels are missing inside rows, so the loss must return one value per "
                f"entry {tuple(mask.shape)} (reduction='none'); it returned {tuple(value.shape)}"
            )
        return (value * mask).sum() / count

    def _target_for_loss(self, target: Tensor) -> Tensor:
        if self.kind == "multiclass":
            return target.long()
        return target.float() if not target.is_floating_point() else target

    # ----- evaluation -----
    def evaluate(self, prediction: Tensor, target: Tensor, mask: Tensor) -> TaskEvaluation:
        """Loss and metrics on a whole split (labelled entries only); metrics are NaN without labels."""
        prediction = self.align(prediction, target)
        count = int(mask.sum())
        if count == 0:
            return TaskEvaluation(math.nan, {name: math.nan for name in self.metric_fns}, 0)
        with torch.no_grad():
            loss = self.masked_loss(prediction, target, mask)
            if target.dim() == 1 or self.kind == "multiclass":
                values = {
                    name: metric(prediction[mask], self._target_for_loss(target[mask]))
                    for name, metric in self.metric_fns.items()
                }
            else:  # per column, then the mean over columns (macro average)
                values = {
                    name: nanmean(
                        [
                            metric(prediction[:, j][mask[:, j]], self._target_for_loss(target[:, j][mask[:, j]]))
                            for j in range(target.shape[1])
                        ]
                    )
                    for name, metric in self.metric_fns.items()
                }
        return TaskEvaluation(float(loss), values, count)

    def transform_output(self, prediction: Tensor) -> Tensor:
        """Head output to a user-facing prediction: probabilities for classification, values otherwise."""
        if self.kind in ("binary", "multilabel"):
            prediction = torch.sigmoid(prediction)
        elif self.kind == "multiclass":
            prediction = prediction.softmax(dim=-1)
        if self.kind in ("binary", "regression") and prediction.dim() == 2 and prediction.shape[1] == 1:
            prediction = prediction[:, 0]
        return prediction
