"""The ``tasks`` section: one entry per task (kind, labels, loss, metrics, head)."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    model_validator,
)

from multitask.config._common import StrictModel
from multitask.metrics import BUILTIN_DENSE_METRICS, BUILTIN_METRICS
from multitask.tasks import BUILTIN_DENSE_LOSSES, BUILTIN_LOSSES


class HeadConfig(StrictModel):
    """A task head: an MLP on the shared representation (no hidden layer: a linear head)."""

    hidden: list[int] = Field(default_factory=list)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)


class TaskConfig(StrictModel):
    """One task: its kind, where its labels are, its loss, metrics and head.

    ``dense``: per-pixel targets (segmentation, depth, normals; `multitask.Task` with ``dense=True``): a
    convolutional head on the encoder's feature maps, upsampled to the input's resolution.
    """

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$", max_length=64)
    kind: Literal["binary", "multiclass", "regression"]
    dense: bool = False
    column: str | None = None
    positive: str | None = None
    loss: str | None = None
    metrics: list[str] | None = None
    head: HeadConfig = Field(default_factory=HeadConfig)

    @model_validator(mode="after")
    def _known_names(self) -> TaskConfig:
        if self.dense and self.kind not in BUILTIN_DENSE_LOSSES:
            raise ValueError(
                f"dense tasks are multiclass (segmentation) or regression (depth, normals); got {self.kind}"
            )
        losses = BUILTIN_DENSE_LOSSES[self.kind] if self.dense else BUILTIN_LOSSES[self.kind]
        metrics = BUILTIN_DENSE_METRICS[self.kind] if self.dense else BUILTIN_METRICS[self.kind]
        what = f"{'dense ' if self.dense else ''}{self.kind} task"
        if self.loss is not None and self.loss not in losses:
            raise ValueError(f"unknown loss {self.loss!r} for a {what}; allowed: {', '.join(losses)}")
        for metric in self.metrics or []:
            if metric not in metrics:
                raise ValueError(f"unknown metric {metric!r} for a {what}; allowed: {', '.join(metrics)}")
        if self.positive is not None and self.kind != "binary":
            raise ValueError("positive applies to binary tasks only")
        return self
