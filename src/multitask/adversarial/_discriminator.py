"""The task discriminator: from shared features, logits over the tasks a sample may have come from."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from multitask.errors import ConfigError


class TaskDiscriminator(nn.Module):
    """An MLP ``features [N, d] → logits [N, T]``: which of the T tasks each sample came from.

    ``Linear → ReLU (→ Dropout)`` per hidden layer, then a linear layer to T logits. Liu et al.
    (2017) use one linear layer and a softmax (``hidden=()``); a hidden layer makes the adversary
    stronger, so that the shared space is cleared of more than linearly separable task information.

    Args:
        in_features: Width ``d`` of the shared features; None infers it at the first forward pass
            (a lazy first layer), which is what a config relies on.
        num_tasks: T ≥ 2.
        hidden: Hidden layer sizes.
        dropout: Dropout after each hidden activation.
    """

    def __init__(
        self, in_features: int | None, num_tasks: int, hidden: Sequence[int] = (64,), dropout: float = 0.0
    ) -> None:
        super().__init__()
        if num_tasks < 2:
            raise ConfigError(f"a task discriminator needs at least two tasks to tell apart; got {num_tasks}")
        if in_features is not None and in_features <= 0:
            raise ConfigError(f"in_features must be positive; got {in_features}")
        if any(width <= 0 for width in hidden):
            raise ConfigError(f"hidden layer sizes must be positive; got {list(hidden)}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"dropout must be in [0, 1); got {dropout}")
        self.in_features, self.num_tasks = in_features, num_tasks
        layers: list[nn.Module] = []
        size = in_features
        for width in [*hidden, num_tasks]:
            layers.append(nn.Linear(size, width) if size is not None else nn.LazyLinear(width))
            size = width
        self.layers = nn.Sequential(*_interleave(layers, dropout))

    def forward(self, features: Tensor) -> Tensor:
        """Logits ``[N, T]`` for features ``[N, d]``."""
        result: Tensor = self.layers(features)
        return result


def _interleave(linears: list[nn.Module], dropout: float) -> list[nn.Module]:
    """``Linear, ReLU, (Dropout,)`` for every layer but the last, which stays a bare linear layer."""
    result: list[nn.Module] = []
    for index, layer in enumerate(linears):
        result.append(layer)
        if index < len(linears) - 1:
            result.append(nn.ReLU())
            if dropout > 0:
                result.append(nn.Dropout(dropout))
    return result
