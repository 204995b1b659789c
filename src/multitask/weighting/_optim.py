"""`OwnAdam`: the private optimiser of a weighting whose weights are not trained by the Trainer's optimiser."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor


class OwnAdam:
    """Adam on one state tensor of a weighting (GradNorm's weights, FAMO's logits), fed a gradient by hand.

    The optimiser is created on first use and re-created (keeping its state) when the tensor was
    replaced, e.g. by ``module.to(device)``; its ``state_dict`` holds only tensors and plain Python,
    so it goes into checkpoints through the module's extra state.

    Args:
        lr: Learning rate.
        weight_decay: Coupled L2 decay (Adam's ``weight_decay``).
    """

    def __init__(self, lr: float, weight_decay: float = 0.0) -> None:
        self.lr, self.weight_decay = lr, weight_decay
        self._optimizer: torch.optim.Adam | None = None
        self._pending: dict[str, Any] | None = None

    def step(self, tensor: Tensor, grad: Tensor) -> None:
        """One Adam step on ``tensor`` (in place) with gradient ``grad``."""
        if self._optimizer is None or self._optimizer.param_groups[0]["params"][0] is not tensor:
            previous = self._optimizer.state_dict() if self._optimizer is not None else self._pending
            self._optimizer = torch.optim.Adam([tensor], lr=self.lr, weight_decay=self.weight_decay)
            if previous is not None:
                self._optimizer.load_state_dict(previous)
            self._pending = None
        tensor.grad = grad.detach().to(tensor)
        self._optimizer.step()
        tensor.grad = None

    def state_dict(self) -> dict[str, Any] | None:
        """The optimiser's state (None before its first step)."""
        return self._optimizer.state_dict() if self._optimizer is not None else self._pending

    def load_state_dict(self, state: Mapping[str, Any] | None) -> None:
        """Restore a state from `state_dict`; applied at the next step."""
        self._optimizer = None
        self._pending = dict(state) if state is not None else None

    def reset(self) -> None:
        """Forget all state (a new run)."""
        self._optimizer, self._pending = None, None
