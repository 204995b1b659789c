"""Shared encoders for the bundled benchmarks: Sener & Koltun's LeNet trunk and a recommender's embedding tower."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from multitask.errors import ConfigError
from multitask.models._mlp import MLP


class LeNet(nn.Module):
    """The shared trunk Sener & Koltun (2018) use on MultiMNIST: two 5×5 convolutions, max-pooling, a 50-unit layer.

    Input ``[N, 1, 28, 28]``; output ``[N, width]``.

    References:
        Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018.
    """

    def __init__(self, width: int = 50) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 10, 5), nn.MaxPool2d(2), nn.ReLU(), nn.Conv2d(10, 20, 5), nn.MaxPool2d(2), nn.ReLU()
        )
        self.project = nn.Sequential(nn.Flatten(), nn.Linear(20 * 4 * 4, width), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        return self.project(self.features(x))  # type: ignore[no-any-return]


class RecommenderEncoder(nn.Module):
    """User and item embeddings joined with their side features, through an MLP (e.g. MovieLens).

    ``(user, item, user_features, item_features) -> [N, hidden[-1]]``; ``side_features`` is the width
    of the user and item side features together.
    """

    def __init__(
        self, num_users: int, num_items: int, side_features: int, dim: int = 32, hidden: Sequence[int] = (128, 64)
    ) -> None:
        super().__init__()
        self.users, self.items = nn.Embedding(num_users, dim), nn.Embedding(num_items, dim)
        self.mlp = MLP(2 * dim + side_features, list(hidden))

    def forward(self, user: Tensor, item: Tensor, user_features: Tensor, item_features: Tensor) -> Tensor:
        joined = torch.cat([self.users(user), self.items(item), user_features, item_features], dim=1)
        return self.mlp(joined)  # type: ignore[no-any-return]


class ConvNet(nn.Module):
    """Convolution stages, then the last feature map pooled or flattened, then an optional MLP: a trunk for images.

    Stage ``i``: ``Conv2d(c_{i−1}, c_i, k, padding=k // 2) → BatchNorm2d → ReLU → MaxPool2d(2)`` (batch
    norm and pooling optional). The stages are kept apart (`stages`) so that models that work on
    feature maps, such as `MTAN`, can use them as their backbone blocks. ``readout="average"``
    averages the last map over space (any image size; where an object is is lost), ``"flatten"``
    keeps every position (as LeNet does; needs ``in_size``, e.g. to tell MultiMNIST's left digit
    from the right one), ``"none"`` returns the last feature map ``[N, c_L, h, w]`` itself (for dense
    heads; no hidden layers). Input ``[N, C, H, W]``; output ``[N, hidden[-1]]``, or the read-out
    width without hidden layers.

    Args:
        in_channels: Channels of the input images.
        channels: Output channels of each stage (at least one).
        kernel: Odd kernel size of every convolution.
        pool: Halve the resolution after each stage.
        batch_norm: Batch normalisation after each convolution.
        hidden: Hidden layer sizes of the MLP after the read-out.
        dropout: Dropout after each hidden layer.
        readout: ``"average"`` (global average pooling), ``"flatten"`` or ``"none"`` (the feature map).
        in_size: The input images' ``(H, W)``; required by ``readout="flatten"``.
    """

    def __init__(
        self,
        in_channels: int,
        channels: Sequence[int],
        *,
        kernel: int = 3,
        pool: bool = True,
        batch_norm: bool = True,
        hidden: Sequence[int] = (),
        dropout: float = 0.0,
        readout: str = "average",
        in_size: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if readout not in ("average", "flatten", "none"):
            raise ConfigError(f"ConvNet: readout must be 'average', 'flatten' or 'none'; got {readout!r}")
        if readout == "none" and hidden:
            raise ConfigError("ConvNet: readout 'none' returns the feature map; hidden layers need a read-out")
        if readout == "flatten" and (in_size is None or len(in_size) != 2 or min(in_size) < 1):
            raise ConfigError(f"ConvNet: readout 'flatten' needs the input's (H, W) as in_size; got {in_size!r}")
        if not channels or in_channels < 1 or any(c < 1 for c in channels):
            raise ConfigError(f"ConvNet: needs positive in_channels and channels; got {in_channels}, {list(channels)}")
        if kernel < 1 or kernel % 2 == 0:
            raise ConfigError(f"ConvNet: kernel must be a positive odd size (same padding); got {kernel}")
        stages: list[nn.Module] = []
        previous = in_channels
        for width in channels:
            layers: list[nn.Module] = [nn.Conv2d(previous, width, kernel, padding=kernel // 2)]
            if batch_norm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(nn.ReLU())
            if pool:
                layers.append(nn.MaxPool2d(2))
            stages.append(nn.Sequential(*layers))
            previous = width
        self.stages = nn.ModuleList(stages)
        self.out_channels = previous
        self.readout = readout
        if readout == "flatten":
            assert in_size is not None
            self.map_shape = self._map_shape(in_channels, (int(in_size[0]), int(in_size[1])))
            width = self.map_shape[0] * self.map_shape[1] * self.map_shape[2]
            if width == 0:
                raise ConfigError(f"ConvNet: {len(stages)} stages leave nothing of a {tuple(in_size)} image")
            read: list[nn.Module] = [nn.Flatten()]
        elif readout == "none":
            width, read = previous, [nn.Identity()]
        else:
            width, read = previous, [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.read_width = width
        self.project = nn.Sequential(*read, MLP(width, list(hidden), None, dropout))
        self.out_features: int = hidden[-1] if hidden else width

    def _map_shape(self, in_channels: int, size: tuple[int, int]) -> tuple[int, int, int]:
        """The last stage's output shape ``(C, H, W)`` for an input of ``size`` (one probe in evaluation mode)."""
        self.eval()
        try:
            with torch.no_grad():
                x = torch.zeros(1, in_channels, *size)
                for stage in self.stages:
                    x = stage(x)
        except RuntimeError as error:  # a pooled map smaller than the pooling window
            raise ConfigError(f"ConvNet: {len(self.stages)} stages leave nothing of a {size} image: {error}") from None
        finally:
            self.train()
        return (int(x.shape[1]), int(x.shape[2]), int(x.shape[3]))

    def forward(self, x: Tensor) -> Tensor:
        for stage in self.stages:
            x = stage(x)
        return self.project(x)  # type: ignore[no-any-return]
