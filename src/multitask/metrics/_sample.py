"""Per-sample metrics (each knows whether higher is better) and the built-in ones of each task kind."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

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
