"""A plain multi-layer perceptron, the default encoder and head for tabular data."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn


class MLP(nn.Sequential):
    """``Linear → ReLU (→ Dropout)`` blocks, then an optional final linear layer.

    Args:
        in_features: Input size.
        hidden: Sizes of the hidden layers (each followed by ReLU and dropout).
        out_features: Size of a final linear layer without activation; None for none (an encoder
            whose output is the last hidden layer).
        dropout: Dropout probability after each hidden activation.
    """

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int] = (),
        out_features: int | None = None,
        dropout: float = 0.0,
    ) -> None:
        layers: list[nn.Module] = []
        size = in_features
        for width in hidden:
            layers += [nn.Linear(size, width), nn.ReLU()]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            size = width
        if out_features is not None:
            layers.append(nn.Linear(size, out_features))
        if not layers:
            layers.append(nn.Identity())
        super().__init__(*layers)
        self.out_features = out_features if out_features is not None else size

    def forward(self, x: Tensor) -> Tensor:
        """Apply the layers in order."""
        for layer in self:
            x = layer(x)
        return x
