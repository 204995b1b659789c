"""Shared encoders for the bundled benchmarks: Sener & Koltun's LeNet trunk and a recommender's embedding tower."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

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
