"""Per-task metrics (each knows whether higher is better), per-pixel metrics from additive statistics, and Δm%."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from multitask.errors import DataError, ShapeError, UnknownNameError

MetricFn = Callable[[Tensor, Tensor], float]


@dataclass(frozen=True)
class Metric:
    """A metric over one task's labelled predictions.

    Args:
        fn: ``(prediction, target) -> float`` on labelled samples only (masking is done before the
            call). Predictions are raw head outputs (logits for classification).
        higher_is_better: The metric's direction; Δm% and early stopping read it.
    """

    fn: MetricFn
    higher_is_better: bool

    def __call__(self, prediction: Tensor, target: Tensor) -> float:
        if target.shape[0] == 0:
            return math.nan
        return float(self.fn(prediction, target))


def _binary_auc(scores: Tensor, target: Tensor) -> float:
    """ROC AUC as the Mann–Whitney statistic, ties counted one half: P(s⁺ > s⁻) + ½ P(s⁺ = s⁻)."""
    positives = target > 0.5
    num_pos = int(positives.sum())
    num_neg = int(target.numel()) - num_pos
    if num_pos == 0 or num_neg == 0:
        return math.nan  # undefined with a single class
    scores = scores.double()
    order = torch.argsort(scores)
    sorted_scores = scores[order]
    # average rank (1-based) of each group of tied scores
    _, inverse, counts = torch.unique_consecutive(sorted_scores, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).double()
    average_rank = ends - (counts.double() - 1) / 2
    ranks = torch.empty_like(scores)
    ranks[order] = average_rank[inverse]
    rank_sum = float(ranks[positives].sum())
    return (rank_sum - num_pos * (num_pos + 1) / 2) / (num_pos * num_neg)


def nanmean(values: list[float]) -> float:
    """The mean of the values that are not NaN (NaN when there are none)."""
    defined = [v for v in values if not math.isnan(v)]
    return sum(defined) / len(defined) if defined else math.nan


def _f1_from_counts(tp: float, fp: float, fn: float) -> float:
    denominator = 2 * tp + fp + fn
    return 2 * tp / denominator if denominator > 0 else 0.0


# ----- binary: prediction = logits [N], target = {0, 1} [N] -----
def binary_accuracy(prediction: Tensor, target: Tensor) -> float:
    """Share of samples whose thresholded logit (> 0) equals the label."""
    return float(((prediction > 0).float() == target).float().mean())


def binary_f1(prediction: Tensor, target: Tensor) -> float:
    """F1 of the positive class, ``2 TP / (2 TP + FP + FN)``, logits thresholded at 0."""
    predicted = prediction > 0
    actual = target > 0.5
    tp = float((predicted & actual).sum())
    fp = float((predicted & ~actual).sum())
    fn = float((~predicted & actual).sum())
    return _f1_from_counts(tp, fp, fn)


def binary_auc(prediction: Tensor, target: Tensor) -> float:
    """Area under the ROC curve (NaN when only one class is present)."""
    return _binary_auc(prediction, target)


def binary_log_loss(prediction: Tensor, target: Tensor) -> float:
    """Mean binary cross-entropy of the logits."""
    return float(F.binary_cross_entropy_with_logits(prediction.double(), target.double()))


# ----- multi-class: prediction = logits [N, C], target = class index [N] -----
def multiclass_accuracy(prediction: Tensor, target: Tensor) -> float:
    """Share of samples whose arg-max class equals the label."""
    return float((prediction.argmax(dim=-1) == target).float().mean())


def multiclass_f1(prediction: Tensor, target: Tensor) -> float:
    """Macro F1: the mean over classes that occur in the labels or predictions of one-vs-rest F1."""
    predicted = prediction.argmax(dim=-1)
    classes = torch.unique(torch.cat([predicted, target]))
    scores = []
    for c in classes:
        is_pred, is_true = predicted == c, target == c
        scores.append(
            _f1_from_counts(
                float((is_pred & is_true).sum()),
                float((is_pred & ~is_true).sum()),
                float((~is_pred & is_true).sum()),
            )
        )
    return sum(scores) / len(scores)


def multiclass_auc(prediction: Tensor, target: Tensor) -> float:
    """Macro one-vs-rest ROC AUC over the classes that have both positives and negatives."""
    probabilities = prediction.softmax(dim=-1)
    return nanmean([_binary_auc(probabilities[:, c], (target == c).float()) for c in range(prediction.shape[-1])])


def multiclass_log_loss(prediction: Tensor, target: Tensor) -> float:
    """Mean cross-entropy of the logits."""
    return float(F.cross_entropy(prediction.double(), target))


# ----- regression: prediction and target [N] -----
def mse(prediction: Tensor, target: Tensor) -> float:
    """Mean squared error."""
    return float(((prediction.double() - target.double()) ** 2).mean())


def mae(prediction: Tensor, target: Tensor) -> float:
    """Mean absolute error."""
    return float((prediction.double() - target.double()).abs().mean())


def r2(prediction: Tensor, target: Tensor) -> float:
    """Coefficient of determination, ``1 − Σ(y − ŷ)² / Σ(y − ȳ)²`` (NaN for a constant target)."""
    target = target.double()
    total = float(((target - target.mean()) ** 2).sum())
    if total == 0:
        return math.nan
    return 1.0 - float(((target - prediction.double()) ** 2).sum()) / total


_HIGHER, _LOWER = True, False
BUILTIN_METRICS: dict[str, dict[str, Metric]] = {
    "binary": {
        "accuracy": Metric(binary_accuracy, _HIGHER),
        "f1": Metric(binary_f1, _HIGHER),
        "auc": Metric(binary_auc, _HIGHER),
        "log_loss": Metric(binary_log_loss, _LOWER),
    },
    "multiclass": {
        "accuracy": Metric(multiclass_accuracy, _HIGHER),
        "f1": Metric(multiclass_f1, _HIGHER),
        "auc": Metric(multiclass_auc, _HIGHER),
        "log_loss": Metric(multiclass_log_loss, _LOWER),
    },
    # multi-label metrics are the binary ones computed per label and averaged (macro)
    "multilabel": {
        "accuracy": Metric(binary_accuracy, _HIGHER),
        "f1": Metric(binary_f1, _HIGHER),
        "auc": Metric(binary_auc, _HIGHER),
        "log_loss": Metric(binary_log_loss, _LOWER),
    },
    "regression": {
        "mse": Metric(mse, _LOWER),
        "mae": Metric(mae, _LOWER),
        "r2": Metric(r2, _HIGHER),
    },
}
DEFAULT_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("auc", "accuracy", "f1", "log_loss"),
    "multiclass": ("accuracy", "f1"),
    "multilabel": ("auc", "f1"),
    "regression": ("mse", "mae", "r2"),
}


def builtin_metric(kind: str, name: str) -> Metric:
    """The built-in metric ``name`` for tasks of ``kind``; raises `UnknownNameError` listing the choices."""
    available = BUILTIN_METRICS.get(kind)
    if available is None:
        raise UnknownNameError(f"unknown task kind {kind!r}; allowed: {', '.join(BUILTIN_METRICS)}")
    if name not in available:
        dense = name in BUILTIN_DENSE_METRICS.get(kind, {})
        hint = " (a per-pixel metric: pass Task(..., dense=True) for per-pixel targets)" if dense else ""
        raise UnknownNameError(f"unknown metric {name!r} for a {kind} task{hint}; allowed: {', '.join(available)}")
    return available[name]


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


def builtin_dense_metric(kind: str, name: str) -> DenseMetric:
    """The built-in metric ``name`` for dense tasks of ``kind``; raises `UnknownNameError` listing the choices."""
    available = BUILTIN_DENSE_METRICS.get(kind)
    if available is None:
        raise UnknownNameError(f"dense tasks are {' or '.join(BUILTIN_DENSE_METRICS)}; got kind {kind!r}")
    if name not in available:
        per_sample = name in BUILTIN_METRICS.get(kind, {})
        hint = " (a per-sample metric: dense tasks need per-pixel ones)" if per_sample else ""
        raise UnknownNameError(
            f"unknown metric {name!r} for a dense {kind} task{hint}; allowed: {', '.join(available)}"
        )
    return available[name]


def relative_gain(value: float, reference: float, higher_is_better: bool) -> float:
    """One metric's relative gain over a reference, in percent: ``100 · s · (M − B) / |B|``, positive: better.

    ``s = +1`` when higher is better, else ``−1``; NaN when ``B`` is 0 (NaN in, NaN out). (`delta_m`
    averages such terms over tasks and metrics, dividing by ``B`` itself as its papers do.)
    """
    if reference == 0:
        return math.nan
    return 100.0 * (1.0 if higher_is_better else -1.0) * (value - reference) / abs(reference)


def delta_m(
    results: Mapping[str, Mapping[str, float]],
    baseline: Mapping[str, Mapping[str, float]],
    higher_is_better: Mapping[str, Mapping[str, bool]],
) -> float:
    """Average relative improvement over a baseline, in percent (Δm%).

        Δm = (100 / T) Σ_t (1 / K_t) Σ_k (−1)^l_tk (M_tk − B_tk) / B_tk,

    with ``l_tk = 1`` when lower is better for metric k of task t. Positive means better than the
    baseline. Every task and metric of ``results`` is used; each must have a non-zero baseline.

    Args:
        results: ``{task: {metric: M_tk}}`` of the method being judged.
        baseline: ``{task: {metric: B_tk}}``, usually the single-task models.
        higher_is_better: ``{task: {metric: bool}}``.

    References:
        Maninis, Radosavovic & Kokkinos, "Attentive Single-Tasking of Multiple Tasks", CVPR 2019;
        Vandenhende et al., "Multi-Task Learning for Dense Prediction Tasks: A Survey", TPAMI 2021.
    """
    if not results:
        raise DataError("delta_m needs at least one task in results")
    per_task = []
    for task, metrics in results.items():
        if not metrics:
            raise DataError(f"delta_m: task {task!r} has no metrics")
        terms = []
        for name, value in metrics.items():
            try:
                reference = baseline[task][name]
                sign = 1.0 if higher_is_better[task][name] else -1.0
            except KeyError as error:
                raise DataError(f"delta_m: no baseline or direction for {task}/{name}") from error
            if reference == 0 or math.isnan(reference):
                raise DataError(f"delta_m: baseline {task}/{name} is {reference}; Δm needs a non-zero baseline")
            terms.append(sign * (value - reference) / reference)
        per_task.append(sum(terms) / len(terms))
    return 100.0 * sum(per_task) / len(per_task)
