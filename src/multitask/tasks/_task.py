"""`Task`: what one task is — its head, loss, metrics, where its labels live and how missing ones are marked."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from multitask.errors import ConfigError, DataError, ShapeError, UnknownNameError
from multitask.metrics import (
    ANGLE_METRICS,
    DEFAULT_DENSE_METRICS,
    DEFAULT_METRICS,
    DenseMetric,
    Metric,
    builtin_dense_metric,
    builtin_metric,
    nanmean,
)
from multitask.tasks._evaluation import AnyMetric, TaskEvaluation, evaluation_from_statistics, statistic_fns
from multitask.tasks._losses import (
    BUILTIN_DENSE_LOSSES,
    BUILTIN_LOSSES,
    DEFAULT_DENSE_LOSS,
    DEFAULT_LOSS,
    TASK_KINDS,
    LossFn,
    TaskKind,
)
from multitask.tasks._shapes import aligned_dense_prediction, aligned_prediction, check_classes, dense_mask


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

    Dense (per-pixel) tasks, ``dense=True``: multi-class heads output logits ``[N, C, H, W]`` for
    class indices ``[N, H, W]`` (segmentation); regression heads output ``[N, C, H, W]`` for a target
    of that shape (depth: ``C = 1``; surface normals: ``C = 3``). Any number of spatial dimensions
    works the same way. The loss is averaged over the labelled pixels (entries, for per-entry losses)
    of the batch; a ``mask_key`` column may be ``[N]`` (whole images), ``[N, H, W]`` (pixels) or the
    target's shape. Dense metrics (`multitask.metrics.DenseMetric`) are computed from statistics that
    add up over batches, so a split is evaluated batch by batch (`batch_statistics`,
    `evaluate_statistics`) without holding its predictions.

    Args:
        name: Key of the task in outputs, metrics and logs (no ``/``).
        head: The task's own module, applied to the shared representation.
        kind: ``"binary"``, ``"multiclass"``, ``"multilabel"`` or ``"regression"``.
        loss: A built-in loss name for the kind (binary/multilabel: ``bce``; multiclass:
            ``cross_entropy``; regression: ``mse``, ``l1``, ``huber``; dense regression also ``cosine``,
            ``1 − cos(n̂, n)`` per pixel, for normals) or a callable ``(prediction, target) -> loss``; a
            callable may reduce to a scalar unless labels are missing inside a row of a 2-D target, where
            it must return per-entry losses. A dense task's callable returns per-pixel ``[N, H, W]`` or
            per-entry (the target's shape) losses, never a scalar. Default: ``bce``, ``cross_entropy``,
            ``mse``; dense regression ``l1``.
        metrics: Built-in metric names (see `multitask.metrics.BUILTIN_METRICS`, and
            `multitask.metrics.BUILTIN_DENSE_METRICS` for dense tasks) or a mapping of name to `Metric`
            (`DenseMetric` for dense tasks). The first one is the task's main metric. Defaults depend on the
            kind; dense: ``miou``, ``pixel_accuracy``; ``abs_err``, ``rel_err``; with the cosine loss the
            angle metrics (``mean_angle``, ``median_angle``, ``within_11.25``, ``within_22.5``, ``within_30``).
        target_key: Batch column of the labels; defaults to ``name``.
        ignore_index: Class index that marks a missing multi-class label.
        mask_key: Optional batch column of booleans, True where the label is present.
        dense: Per-pixel targets (segmentation, depth, normals); only multi-class and regression tasks.
    """

    name: str
    head: nn.Module
    kind: TaskKind
    loss: str | LossFn | None = None
    metrics: Sequence[str] | Mapping[str, AnyMetric] | None = None
    target_key: str | None = None
    ignore_index: int = -100
    mask_key: str | None = None
    dense: bool = False
    loss_fn: LossFn = field(init=False, repr=False)
    metric_fns: dict[str, AnyMetric] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or "/" in self.name or "." in self.name:
            raise ConfigError(
                f"task name must be a non-empty string without '/' or '.' (it keys modules and logs); got {self.name!r}"
            )
        if self.kind not in TASK_KINDS:
            raise UnknownNameError(f"task {self.name!r}: unknown kind {self.kind!r}; allowed: {', '.join(TASK_KINDS)}")
        if not isinstance(self.head, nn.Module):
            raise ConfigError(f"task {self.name!r}: head must be an nn.Module; got {type(self.head).__name__}")
        if self.dense and self.kind not in BUILTIN_DENSE_LOSSES:
            raise ConfigError(
                f"task {self.name!r}: dense tasks are 'multiclass' or 'regression'; got {self.kind!r} "
                "(a binary mask is a two-class multiclass task)"
            )
        object.__setattr__(self, "loss_fn", self._resolve_loss())
        object.__setattr__(self, "metric_fns", self._resolve_metrics())

    def _resolve_loss(self) -> LossFn:
        if self.dense:
            defaults, builtins = DEFAULT_DENSE_LOSS, BUILTIN_DENSE_LOSSES
        else:
            defaults, builtins = DEFAULT_LOSS, BUILTIN_LOSSES
        loss = defaults[self.kind] if self.loss is None else self.loss
        if callable(loss):
            return loss
        available = builtins[self.kind]
        if loss not in available:
            what = "dense " if self.dense else ""
            hint = " (cosine is for per-pixel vectors: Task(..., dense=True))" if loss == "cosine" else ""
            raise UnknownNameError(
                f"task {self.name!r}: unknown loss {loss!r} for a {what}{self.kind} task{hint}; "
                f"allowed: {', '.join(available)}"
            )
        return available[loss]

    def _default_metrics(self) -> Sequence[str]:
        if not self.dense:
            return DEFAULT_METRICS[self.kind]
        return ANGLE_METRICS if self.loss == "cosine" else DEFAULT_DENSE_METRICS[self.kind]

    def _resolve_metrics(self) -> dict[str, AnyMetric]:
        metrics = self._default_metrics() if self.metrics is None else self.metrics
        expected = DenseMetric if self.dense else Metric
        resolved: dict[str, AnyMetric]
        if isinstance(metrics, Mapping):
            resolved = dict(metrics)
            for key, value in resolved.items():
                if not isinstance(value, expected):
                    raise ConfigError(
                        f"task {self.name!r}: metric {key!r} must be a multitask.metrics.{expected.__name__} "
                        f"({'statistics, their metric' if self.dense else 'a function'} and its direction"
                        f"{'' if self.dense else '; DenseMetric is for Task(..., dense=True)'}); "
                        f"got {type(value).__name__}"
                    )
        elif isinstance(metrics, str):
            raise ConfigError(f"task {self.name!r}: metrics must be a list of names; got the string {metrics!r}")
        elif self.dense:
            resolved = {name: builtin_dense_metric(self.kind, name) for name in metrics}
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
            if self.dense:
                return target, mask & dense_mask(self.name, self.kind, self.mask_key, explicit, mask)
            if explicit.dim() == 1 and mask.dim() == 2:
                explicit = explicit[:, None]
            mask = mask & explicit
        return target, mask

    def align(self, prediction: Tensor, target: Tensor) -> Tensor:
        """Check ``prediction`` against ``target`` and squeeze a trailing 1 where the kind allows it."""
        if self.dense:
            return aligned_dense_prediction(self.name, self.kind, prediction, target)
        return aligned_prediction(self.name, self.kind, prediction, target)

    # ----- loss -----
    def compute_loss(self, prediction: Tensor, batch: Mapping[str, Tensor]) -> tuple[Tensor, int]:
        """The mean loss over labelled entries of ``batch`` and how many there were.

        With no labelled entry the loss is a constant ``0`` (no gradient, never NaN). For a dense task
        the entries are the labelled pixels (or, for per-entry losses, the valid entries of ``[N, C, H, W]``).
        """
        target, mask = self.labels(batch)
        prediction = self.align(prediction, target)
        if self.dense:
            return self._dense_loss(prediction, target, mask)
        count = int(mask.sum())
        return self._masked_loss(prediction, target, mask, count), count

    def masked_loss(self, prediction: Tensor, target: Tensor, mask: Tensor) -> Tensor:
        """Mean of the loss over the entries where ``mask`` is True (aligned prediction and target)."""
        if self.dense:
            return self._dense_loss(prediction, target, mask)[0]
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

    def _dense_loss(self, prediction: Tensor, target: Tensor, mask: Tensor) -> tuple[Tensor, int]:
        """Mean of the per-pixel (or per-entry) losses over the labelled ones, and their number."""
        values, used = self._dense_losses(prediction, target, mask)
        count = int(used.sum())
        if count == 0:
            return torch.zeros((), device=prediction.device, dtype=prediction.dtype), 0
        if count == used.numel():
            return values.mean(), count
        return torch.where(used, values, torch.zeros_like(values)).sum() / count, count

    def _dense_losses(self, prediction: Tensor, target: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """Per-pixel or per-entry losses (missing labels filled with 0) and the mask of those that count."""
        if self.kind == "multiclass":
            check_classes(self.name, self.ignore_index, prediction, target, mask)
        filled = torch.where(mask, target, torch.zeros_like(target))  # no NaN or ignore_index reaches the loss
        try:
            values = self.loss_fn(prediction, self._target_for_loss(filled))
        except ShapeError as error:
            raise ShapeError(f"task {self.name!r}: {error}") from error
        if values.shape == mask.shape:
            return values, mask
        if self.kind == "regression" and values.shape == mask.shape[:1] + mask.shape[2:]:
            return values, mask.all(dim=1)  # per pixel: a pixel counts when every channel is labelled
        per_pixel = tuple(mask.shape[:1] + mask.shape[2:]) if self.kind == "regression" else tuple(mask.shape)
        raise ShapeError(
            f"task {self.name!r} is dense: its loss must return one value per pixel {per_pixel} or per entry "
            f"{tuple(mask.shape)} (reduction='none'); it returned {tuple(values.shape)}"
        )

    def _target_for_loss(self, target: Tensor) -> Tensor:
        if self.kind == "multiclass":
            return target.long()
        return target.float() if not target.is_floating_point() else target

    # ----- evaluation -----
    def evaluate(self, prediction: Tensor, target: Tensor, mask: Tensor) -> TaskEvaluation:
        """Loss and metrics on a whole split (labelled entries only); metrics are NaN without labels."""
        if self.dense:
            return self.evaluate_statistics([self.batch_statistics(prediction, target, mask)])
        prediction = self.align(prediction, target)
        count = int(mask.sum())
        if count == 0:
            return TaskEvaluation(math.nan, {name: math.nan for name in self.metric_fns}, 0)
        with torch.no_grad():
            loss = self.masked_loss(prediction, target, mask)
            if target.dim() == 1 or self.kind == "multiclass":
                values = {
                    name: metric(prediction[mask], self._target_for_loss(target[mask]))
                    for name, metric in self._sample_metrics().items()
                }
            else:  # per column, then the mean over columns (macro average)
                values = {
                    name: nanmean(
                        [
                            metric(prediction[:, j][mask[:, j]], self._target_for_loss(target[:, j][mask[:, j]]))
                            for j in range(target.shape[1])
                        ]
                    )
                    for name, metric in self._sample_metrics().items()
                }
        return TaskEvaluation(float(loss), values, count)

    def _sample_metrics(self) -> dict[str, Metric]:
        return {name: metric for name, metric in self.metric_fns.items() if isinstance(metric, Metric)}

    def batch_statistics(self, prediction: Tensor, target: Tensor, mask: Tensor) -> dict[str, Tensor]:
        """A dense task's statistics of one batch: float64 tensors that add up over the batches of a split.

        ``"loss"`` holds ``[Σ loss over labelled pixels or entries, their number]``; the others are the
        metrics' statistics (see `multitask.metrics.DenseMetric`). Sum them key by key over batches (and
        processes) and pass the sums, or the per-batch list, to `evaluate_statistics`. They stay on the
        prediction's device.
        """
        if not self.dense:
            raise ConfigError(f"task {self.name!r}: evaluation statistics are for dense tasks (Task(dense=True))")
        prediction = self.align(prediction, target)
        with torch.no_grad():
            values, used = self._dense_losses(prediction, target, mask)
            loss_sum = torch.where(used, values.double(), torch.zeros((), dtype=torch.float64, device=values.device))
            statistics = {"loss": torch.stack([loss_sum.sum(), used.sum().double()])}
            for key, fn in statistic_fns(self.metric_fns).items():
                try:
                    statistics[key] = fn(prediction, target, mask).double()
                except ShapeError as error:
                    raise ShapeError(f"task {self.name!r}: {error}") from error
        return statistics

    def evaluate_statistics(self, parts: Sequence[Mapping[str, Tensor]]) -> TaskEvaluation:
        """Loss and metrics of a dense task from its `batch_statistics`, summed over ``parts`` in order."""
        return evaluation_from_statistics(self.metric_fns, parts)

    def transform_output(self, prediction: Tensor) -> Tensor:
        """Head output to a user-facing prediction: probabilities for classification, values otherwise.

        Dense tasks: class probabilities along dim 1 ``[N, C, H, W]``; with the cosine loss, unit vectors
        along dim 1 (the predicted normals); other regression values as they are.
        """
        if self.dense:
            if self.kind == "multiclass":
                return prediction.softmax(dim=1)
            return F.normalize(prediction, dim=1) if self.loss == "cosine" else prediction
        if self.kind in ("binary", "multilabel"):
            prediction = torch.sigmoid(prediction)
        elif self.kind == "multiclass":
            prediction = prediction.softmax(dim=-1)
        if self.kind in ("binary", "regression") and prediction.dim() == 2 and prediction.shape[1] == 1:
            prediction = prediction[:, 0]
        return prediction
