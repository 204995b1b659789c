"""The ``tasks`` section: one entry per task (kind, labels, loss, metrics, head)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pydantic import (
    Field,
    model_validator,
)
from torch import nn

from multitask.config._common import StrictModel
from multitask.data import TaskInfo
from multitask.errors import ConfigError
from multitask.metrics import BUILTIN_DENSE_METRICS, BUILTIN_METRICS
from multitask.models import MLP
from multitask.tasks import BUILTIN_DENSE_LOSSES, BUILTIN_LOSSES, Task


class HeadConfig(StrictModel):
    """A task head: an MLP on the shared representation (no hidden layer: a linear head)."""

    hidden: list[int] = Field(default_factory=list)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)

    def build(self, in_features: int, outputs: int) -> MLP:
        """``MLP(in_features, hidden, outputs, dropout)``."""
        return MLP(in_features, self.hidden, outputs, self.dropout)


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

    def build(
        self,
        in_features: int,
        outputs: int,
        in_shape: Sequence[int] | None = None,
        *,
        maps: bool = False,
        suggested: TaskInfo | None = None,
    ) -> Task:
        """The `Task`, its head reading ``in_features`` from the encoder and giving ``outputs`` values.

        The head is the ``head`` section's MLP on a feature vector; on feature maps (``maps``: a ``cnn`` encoder
        with ``readout: none``) a per-sample head averages the map first, and a dense head is convolutions
        upsampled to the input's ``(H, W)`` (``in_shape[1:]``). A dense task without its own loss or metrics
        takes the data's ``suggested`` ones (NYUv2's normals: the cosine loss and the angle metrics).

        Raises:
            ConfigError: A dense task whose input is not images ``(C, H, W)``.
        """
        loss, metrics = self.loss, self.metrics
        head: nn.Module
        if self.dense:
            if in_shape is None or len(in_shape) != 3:
                raise ConfigError(f"task {self.name}: a dense head needs the input images' (C, H, W); got {in_shape}")
            head = _dense_head(in_features, self.head.hidden, outputs, in_shape[1:])
            if suggested is not None:
                loss = loss or suggested.loss
                metrics = metrics or (list(suggested.metrics) if suggested.metrics else None)
        elif maps:
            head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), self.head.build(in_features, outputs))
        else:
            head = self.head.build(in_features, outputs)
        return Task(self.name, head, self.kind, loss=loss, metrics=metrics, dense=self.dense)


def _dense_head(in_channels: int, hidden: Sequence[int], outputs: int, size: Sequence[int]) -> nn.Sequential:
    """``[3×3 conv, ReLU] × len(hidden)``, a 1×1 convolution to ``outputs`` channels, bilinear upsampling to
    ``size``: a dense head on a feature map."""
    layers: list[nn.Module] = []
    channels = in_channels
    for width in hidden:
        layers += [nn.Conv2d(channels, width, 3, padding=1), nn.ReLU()]
        channels = width
    layers += [
        nn.Conv2d(channels, outputs, 1),
        nn.Upsample(size=(int(size[0]), int(size[1])), mode="bilinear", align_corners=False),
    ]
    return nn.Sequential(*layers)
