"""Per-pixel metrics of dense tasks, computed from additive statistics of each batch, and the built-in ones."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from multitask.errors import ShapeError
from multitask.metrics._sample import _HIGHER, _LOWER

# ----- dense (per-pixel) tasks: additive statistics of each batch, summed over a split -----
#: ``(prediction, target, mask) -> statistics``: a float64 tensor whose sum over batches gives the split's.
StatisticFn = Callable[[Tensor, Tensor, Tensor], Tensor]

#: Width of the angle histogram bins (degrees) behind the median angle: the median is exact to ±half a bin.
ANGLE_BIN_DEGREES = 0.01
_ANGLE_BINS = round(180 / ANGLE_BIN_DEGREES)
_ANGLE_THRESHOLDS = (11.25, 22.5, 30.0)


@dataclass(frozen=True)
class DenseMetric:
    """A metric of a dense (per-pixel) task, computed from statistics that add up over batches.

    A split is evaluated batch by batch: ``statistic`` summarises each batch in a fixed-size float64
    tensor (a confusion matrix, sums and counts, a histogram), the Trainer adds these up over the
    split (and over processes), and ``compute`` turns the sum into the metric. Metrics built on the
    same ``statistic`` function share its computation.

    Args:
        statistic: ``(prediction, target, mask) -> Tensor`` on one batch: raw head output ``[N, C, H, W]``,
            the target (class indices ``[N, H, W]`` or values ``[N, C, H, W]``) and the task's mask of
            labelled entries (the target's shape).
        compute: ``summed statistics -> float`` (NaN when undefined, e.g. no labelled pixel).
        higher_is_better: The metric's direction; Δm% and model selection read it.
    """

    statistic: StatisticFn
    compute: Callable[[Tensor], float]
    higher_is_better: bool

    def __call__(self, prediction: Tensor, target: Tensor, mask: Tensor) -> float:
        """The metric on one set of predictions at once (the statistic of a single batch)."""
        return float(self.compute(self.statistic(prediction, target, mask)))


def confusion_matrix(prediction: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Counts ``[C, C]`` of (true class, arg-max class) over labelled pixels.

    Logits ``[N, C, H, W]``, class indices ``[N, H, W]`` (any number of spatial dimensions).

    Raises:
        ShapeError: A labelled pixel's class is outside ``0 .. C − 1``.
    """
    num_classes = prediction.shape[1]
    labels = target[mask].long()
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ShapeError(
            f"the head outputs {num_classes} classes per pixel but the labels hold class indices "
            f"{int(labels.min())} .. {int(labels.max())}; unlabelled pixels must equal the task's ignore_index"
        )
    predicted = prediction.argmax(dim=1)[mask]
    counts = torch.bincount(labels * num_classes + predicted, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).double()


def mean_iou(confusion: Tensor) -> float:
    """Mean over classes present in the labels or the predictions of ``TP / (TP + FP + FN)``."""
    true_positives = confusion.diagonal()
    union = confusion.sum(dim=0) + confusion.sum(dim=1) - true_positives
    present = union > 0
    if not bool(present.any()):
        return math.nan
    return float((true_positives[present] / union[present]).mean())


def pixel_accuracy(confusion: Tensor) -> float:
    """Share of labelled pixels whose arg-max class is the label."""
    total = float(confusion.sum())
    return float(confusion.trace()) / total if total > 0 else math.nan


def absolute_errors(prediction: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """``[n, Σ|ŷ − y|, n_rel, Σ|ŷ − y| / |y|]`` over valid entries (the relative sum over those with ``y ≠ 0``)."""
    error = (prediction.double() - target.double())[mask].abs()
    reference = target.double()[mask].abs()
    nonzero = reference > 0
    return torch.stack(
        [
            torch.tensor(float(error.numel()), dtype=torch.float64, device=error.device),
            error.sum(),
            nonzero.sum().double(),
            (error[nonzero] / reference[nonzero]).sum(),
        ]
    )


def _absolute_error(statistics: Tensor) -> float:
    return float(statistics[1] / statistics[0]) if statistics[0] > 0 else math.nan


def _relative_error(statistics: Tensor) -> float:
    return float(statistics[3] / statistics[2]) if statistics[2] > 0 else math.nan


def angle_errors(prediction: Tensor, target: Tensor, mask: Tensor) -> Tensor:
    """Statistics of the angle (degrees) between predicted and true vectors along dim 1, per valid pixel.

    ``[n, Σ angle, n(angle < 11.25), n(angle < 22.5), n(angle < 30), histogram of angles in 0.01° bins]``;
    a pixel is valid when every channel of its target is (``mask.all(dim=1)``). Both vectors are
    L2-normalised, so the angle is ``arccos(n̂ · n / (‖n̂‖ ‖n‖))``, computed in float64.

    Raises:
        ShapeError: The prediction is not ``[N, C, ...]`` with ``C ≥ 2``.
    """
    if prediction.dim() < 3 or prediction.shape[1] < 2:
        raise ShapeError(
            f"angle metrics need vectors along dim 1, [N, C, H, W] with C >= 2 (normals: C = 3); "
            f"got {tuple(prediction.shape)}"
        )
    valid = mask.all(dim=1)
    predicted = F.normalize(prediction.double(), dim=1)
    actual = F.normalize(torch.where(mask, target, torch.zeros_like(target)).double(), dim=1)
    cosine = (predicted * actual).sum(dim=1)[valid].clamp(-1.0, 1.0)
    angle = torch.rad2deg(torch.acos(cosine))
    bins = (angle / ANGLE_BIN_DEGREES).long().clamp(0, _ANGLE_BINS - 1)
    head = [torch.tensor(float(angle.numel()), dtype=torch.float64, device=angle.device), angle.sum()]
    head += [(angle < threshold).sum().double() for threshold in _ANGLE_THRESHOLDS]
    return torch.cat([torch.stack(head), torch.bincount(bins, minlength=_ANGLE_BINS).double()])


def _mean_angle(statistics: Tensor) -> float:
    return float(statistics[1] / statistics[0]) if statistics[0] > 0 else math.nan


def _median_angle(statistics: Tensor) -> float:
    """The median from the histogram: the mean of the two middle values' bin centres (``np.median``'s rule)."""
    count = int(statistics[0])
    if count == 0:
        return math.nan
    cumulative = statistics[5:].cumsum(dim=0)
    # bin of the k-th smallest angle (0-based): the first bin whose cumulative count exceeds k
    positions = torch.tensor([(count - 1) // 2 + 1, count // 2 + 1], dtype=cumulative.dtype, device=cumulative.device)
    bins = torch.searchsorted(cumulative, positions)
    return float(((bins.double() + 0.5) * ANGLE_BIN_DEGREES).mean())


def _within(index: int) -> Callable[[Tensor], float]:
    def share(statistics: Tensor) -> float:
        return float(statistics[2 + index] / statistics[0]) if statistics[0] > 0 else math.nan

    return share


BUILTIN_DENSE_METRICS: dict[str, dict[str, DenseMetric]] = {
    "multiclass": {
        "miou": DenseMetric(confusion_matrix, mean_iou, _HIGHER),
        "pixel_accuracy": DenseMetric(confusion_matrix, pixel_accuracy, _HIGHER),
    },
    "regression": {
        "abs_err": DenseMetric(absolute_errors, _absolute_error, _LOWER),
        "rel_err": DenseMetric(absolute_errors, _relative_error, _LOWER),
        "mean_angle": DenseMetric(angle_errors, _mean_angle, _LOWER),
        "median_angle": DenseMetric(angle_errors, _median_angle, _LOWER),
        "within_11.25": DenseMetric(angle_errors, _within(0), _HIGHER),
        "within_22.5": DenseMetric(angle_errors, _within(1), _HIGHER),
        "within_30": DenseMetric(angle_errors, _within(2), _HIGHER),
    },
}
#: Dense defaults: segmentation as MTAN's Table 1, depth errors; normals (the ``cosine`` loss) get `ANGLE_METRICS`.
DEFAULT_DENSE_METRICS: dict[str, tuple[str, ...]] = {
    "multiclass": ("miou", "pixel_accuracy"),
    "regression": ("abs_err", "rel_err"),
}
ANGLE_METRICS: tuple[str, ...] = ("mean_angle", "median_angle", "within_11.25", "within_22.5", "within_30")
