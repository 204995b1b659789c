"""The shape checks behind `Task`: head outputs against targets, mask columns and class indices, with their fixes."""

from __future__ import annotations

from torch import Tensor

from multitask.errors import ShapeError


def aligned_prediction(name: str, kind: str, prediction: Tensor, target: Tensor) -> Tensor:
    """Check a per-sample ``prediction`` against ``target`` and squeeze a trailing 1 where the kind allows it."""
    squeezable = prediction.dim() == 2 and target.dim() == 1 and prediction.shape[1] == 1
    if kind in ("binary", "regression") and squeezable:
        prediction = prediction[:, 0]
    hint = ""
    if kind == "multiclass":
        ok = prediction.dim() == 2 and target.dim() == 1 and prediction.shape[0] == target.shape[0]
        expected = f"logits [N, num_classes] for class indices [N={target.shape[0]}]"
        if target.dim() > 1:
            hint = f" (the labels {tuple(target.shape)} are per pixel: pass Task(..., dense=True))"
    else:
        ok = prediction.shape == target.shape
        expected = f"the target's shape {tuple(target.shape)}"
    if not ok:
        raise ShapeError(
            f"task {name!r}: head output has shape {tuple(prediction.shape)}, expected {expected}{hint}; "
            "check the head's output size"
        )
    return prediction


def aligned_dense_prediction(name: str, kind: str, prediction: Tensor, target: Tensor) -> Tensor:
    """Check a dense task's per-pixel ``prediction`` against its ``target``."""
    if kind == "multiclass":
        ok = (
            target.dim() >= 2
            and prediction.dim() == target.dim() + 1
            and prediction.shape[0] == target.shape[0]
            and prediction.shape[2:] == target.shape[1:]
        )
        spatial = ", ".join(str(size) for size in target.shape[1:])
        expected = f"logits [N, num_classes, {spatial}] for per-pixel class indices {tuple(target.shape)}"
        if target.dim() < 2:
            expected = f"per-pixel class indices [N, H, W] as labels, but they are {tuple(target.shape)}"
    else:
        ok = target.dim() >= 3 and prediction.shape == target.shape
        expected = f"the target's shape {tuple(target.shape)}"
        if target.dim() < 3:
            expected = f"a per-pixel target [N, C, H, W] (depth: C = 1), but it is {tuple(target.shape)}"
    if not ok:
        raise ShapeError(
            f"task {name!r} is dense: head output has shape {tuple(prediction.shape)}, expected {expected}; "
            "a dense head outputs a map per sample (e.g. a 1x1 convolution with one channel per class or "
            "value), at the target's spatial size"
        )
    return prediction


def dense_mask(name: str, kind: str, mask_key: str | None, explicit: Tensor, mask: Tensor) -> Tensor:
    """The ``mask_key`` column as a view that broadcasts against the target's mask."""
    if explicit.dim() == 1 and explicit.shape[0] == mask.shape[0]:  # whole images
        return explicit.reshape(-1, *[1] * (mask.dim() - 1))
    if kind == "regression" and mask.dim() >= 3 and explicit.shape == mask.shape[:1] + mask.shape[2:]:
        return explicit.unsqueeze(1)  # per pixel, for every channel
    if explicit.shape == mask.shape:
        return explicit
    raise ShapeError(
        f"task {name!r}: mask column {mask_key!r} has shape {tuple(explicit.shape)}; for targets "
        f"{tuple(mask.shape)} it must be [N], the target's shape, or (regression) the target's without dim 1"
    )


def check_classes(name: str, ignore_index: int, prediction: Tensor, target: Tensor, mask: Tensor) -> None:
    """Raise `ShapeError` when a labelled pixel's class index is outside the head's ``0 .. C − 1``."""
    num_classes = prediction.shape[1]
    outside = mask & ((target < 0) | (target >= num_classes))
    if bool(outside.any()):
        wrong = target[outside]
        raise ShapeError(
            f"task {name!r}: the head outputs {num_classes} classes per pixel but labelled pixels hold "
            f"class indices outside 0 .. {num_classes - 1} (from {int(wrong.min())} to {int(wrong.max())}); "
            f"give the head one output channel per class, and mark unlabelled pixels with "
            f"ignore_index={ignore_index}"
        )
