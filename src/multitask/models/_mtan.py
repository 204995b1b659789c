"""MTAN: one shared backbone, with per-task soft attention masks over its feature maps."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from multitask.errors import ConfigError
from multitask.models._base import Batch, MultiTaskModel
from multitask.models._experts import as_shape, check_tasks, column
from multitask.models._registry import register
from multitask.tasks import Task

if TYPE_CHECKING:
    from multitask.models._registry import ModelParts


def _attention(in_channels: int, channels: int) -> nn.Sequential:
    """``g`` then ``h`` of Eq. 1: 1×1 conv, BN, ReLU, then 1×1 conv, BN, sigmoid: a mask in (0, 1)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, channels, 1),
        nn.BatchNorm2d(channels),
        nn.ReLU(),
        nn.Conv2d(channels, channels, 1),
        nn.BatchNorm2d(channels),
        nn.Sigmoid(),
    )


def _carry(in_channels: int, channels: int) -> nn.Sequential:
    """``f`` of Eq. 1: 3×3 conv, BN, ReLU, mapping a task's features to the next block's channels."""
    return nn.Sequential(nn.Conv2d(in_channels, channels, 3, padding=1), nn.BatchNorm2d(channels), nn.ReLU())


def _resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    """``x`` at spatial ``size``: average pooling to shrink (encoder), bilinear interpolation to grow (decoder)."""
    if tuple(x.shape[-2:]) == size:
        return x
    if x.shape[-2] >= size[0] and x.shape[-1] >= size[1]:
        return F.adaptive_avg_pool2d(x, size)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class MTAN(MultiTaskModel):
    r"""Multi-task attention network: a shared backbone and, per task, an attention module at every block.

    The backbone is a sequence of blocks producing feature maps ``p_j`` ``[N, C_j, H_j, W_j]``.
    Task ``t`` keeps its own features ``â_j = a_j ⊙ p_j``, with the soft mask
    ``a_j = h_j(g_j([p_j ; f_j(â_{j−1})]))`` (Eq. 1): ``g_j``, ``h_j`` are 1×1 convolutions with
    batch norm (ReLU, then sigmoid), ``f_j`` a 3×3 convolution with batch norm and ReLU, resized to
    block ``j``'s resolution (pooled when it shrinks, interpolated when it grows, so decoders work
    too); the first mask reads ``p_1`` alone. Head ``t`` reads ``â_L`` of the last block: pool and
    classify for classification, a convolutional decoder for dense prediction. The paper feeds the
    masks the output of each block's first layer ``u_j``; blocks here are opaque modules, so the
    masks read the block's output ``p_j``.

    Shared parameters: the backbone. Task-specific: the attention modules and the heads.

    Args:
        blocks: The backbone's blocks, applied in order to ``[N, *in_shape]``; each returns a feature map.
        tasks: The tasks (at least two); their heads read ``[N, C_L, H_L, W_L]``.
        in_shape: Shape of one input row ``(C, H, W)``, to size the attention modules at construction.
        input_key: Batch column of the input.

    References:
        Liu, Johns & Davison, "End-to-End Multi-Task Learning with Attention", CVPR 2019. arXiv:1803.10704.
    """

    reads = frozenset({"images"})
    parts_used = frozenset({"head"})

    @classmethod
    def from_parts(cls, parts: ModelParts, tasks: Sequence[Task]) -> MTAN:
        """Attention over the stages of the parts' `ConvNet` (`multitask.models.create`).

        With a read-out (``flatten`` or ``average``) each head reads its task's last attended map the way the
        encoder reads the shared one, then ``parts.head(task, width)``; with ``readout="none"`` the tasks' heads
        read the maps as they are.
        """
        from multitask.models._encoders import ConvNet

        trunk = parts.encoder()
        if not isinstance(trunk, ConvNet):
            raise ConfigError(
                f"mtan attends over a convolutional encoder's stages; the encoder is {type(trunk).__name__}"
            )
        if parts.in_shape is None:
            raise ConfigError("mtan needs the input images' shape (C, H, W) to size its attention modules")
        if (
            trunk.readout == "none"
        ):  # the heads read feature maps: a task's last attended map has the shared map's shape
            return cls(list(trunk.stages), tasks, in_shape=parts.in_shape, input_key=parts.column(cls.__name__))
        head = parts.need("head", "mtan")
        readout: list[nn.Module] = (
            [nn.Flatten()] if trunk.readout == "flatten" else [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        )
        pooled = [
            dataclasses.replace(task, head=nn.Sequential(*copy.deepcopy(readout), head(task, trunk.read_width)))
            for task in tasks
        ]
        return cls(list(trunk.stages), pooled, in_shape=parts.in_shape, input_key=parts.column(cls.__name__))

    def __init__(
        self, blocks: Sequence[nn.Module], tasks: Sequence[Task], *, in_shape: Sequence[int], input_key: str = "x"
    ) -> None:
        super().__init__()
        self.task_names = check_tasks(tasks, "MTAN")
        if len(blocks) == 0:
            raise ConfigError("MTAN: needs at least one backbone block")
        shape = as_shape(in_shape, "MTAN")
        self.blocks = nn.ModuleList(blocks)
        self.sizes = self._probe(shape)
        channels = [c for c, _, _ in self.sizes]
        self.attention = nn.ModuleDict(
            {
                task: nn.ModuleList(_attention(c if j == 0 else 2 * c, c) for j, c in enumerate(channels))
                for task in self.task_names
            }
        )
        self.carry = nn.ModuleDict(
            {
                task: nn.ModuleList(_carry(channels[j - 1], c) for j, c in enumerate(channels) if j > 0)
                for task in self.task_names
            }
        )
        self.heads = nn.ModuleDict({task.name: task.head for task in tasks})
        self.input_key = input_key

    def _probe(self, shape: tuple[int, ...]) -> list[tuple[int, int, int]]:
        was_training = self.training
        self.eval()
        sizes: list[tuple[int, int, int]] = []
        x = torch.zeros(2, *shape)
        try:
            with torch.no_grad():
                for index, block in enumerate(self.blocks):
                    try:
                        x = block(x)
                    except Exception as error:  # say which block failed on which input
                        raise ConfigError(
                            f"MTAN: block {index} fails on an input of shape {tuple(x.shape)}: {error}"
                        ) from error
                    if not isinstance(x, Tensor) or x.dim() != 4:
                        found = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
                        raise ConfigError(f"MTAN: block {index} must return a feature map [N, C, H, W]; got {found}")
                    sizes.append((int(x.shape[1]), int(x.shape[2]), int(x.shape[3])))
        finally:
            self.train(was_training)
        return sizes

    def forward(self, batch: Batch, tasks: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Outputs ``{task: h_t(â_L)}`` for ``tasks`` (all when None)."""
        tasks = self._check_tasks(tasks)
        x = column(batch, self.input_key)
        shared: list[Tensor] = []
        for block in self.blocks:
            x = block(x)
            shared.append(x)
        outputs = {}
        for task in tasks:
            attention = list(self.attention[task].children())
            carry = list(self.carry[task].children())
            attended = attention[0](shared[0]) * shared[0]
            for j in range(1, len(shared)):
                _, height, width = self.sizes[j]
                carried = _resize(carry[j - 1](attended), (height, width))
                attended = attention[j](torch.cat([shared[j], carried], dim=1)) * shared[j]
            outputs[task] = self.heads[task](attended)
        return outputs

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """The backbone's parameters."""
        return self.blocks.parameters()


register("mtan", MTAN)
