"""The task kinds and the built-in losses of each kind, per sample and per pixel, with their defaults."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal, get_args

import torch.nn.functional as F
from torch import Tensor

from multitask.errors import ShapeError

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


def _cosine(prediction: Tensor, target: Tensor) -> Tensor:
    """``1 − cos(n̂, n)`` per pixel for vectors along dim 1 (``[N, C, H, W]`` -> ``[N, H, W]``)."""
    if prediction.dim() < 3 or prediction.shape[1] < 2:
        raise ShapeError(f"the cosine loss needs vectors [N, C, H, W] with C >= 2; got {tuple(prediction.shape)}")
    return 1 - (F.normalize(prediction, dim=1) * F.normalize(target, dim=1)).sum(dim=1)


# Built-in losses return one value per labelled entry (reduction "none"); the Task averages them.
BUILTIN_LOSSES: dict[str, dict[str, LossFn]] = {
    "binary": {"bce": _bce},
    "multiclass": {"cross_entropy": _cross_entropy},
    "multilabel": {"bce": _bce},
    "regression": {"mse": _mse, "l1": _l1, "huber": _huber},
}
DEFAULT_LOSS = {"binary": "bce", "multiclass": "cross_entropy", "multilabel": "bce", "regression": "mse"}
# Dense (per-pixel) losses return one value per pixel (cross-entropy, cosine) or per entry [N, C, H, W] (l1, mse,
# huber); the Task averages them over labelled pixels or entries. L1 for depth as MTAN and LibMTL.
BUILTIN_DENSE_LOSSES: dict[str, dict[str, LossFn]] = {
    "multiclass": {"cross_entropy": _cross_entropy},
    "regression": {"l1": _l1, "mse": _mse, "huber": _huber, "cosine": _cosine},
}
DEFAULT_DENSE_LOSS = {"multiclass": "cross_entropy", "regression": "l1"}
