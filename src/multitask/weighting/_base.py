"""The loss-weighting contract: per-task losses ``[T]`` → weights ``[T]`` and one scalar to minimise."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor, nn

from multitask._registry import Registry


class Weighting(nn.Module, ABC):
    """Turns per-task losses ``[T]`` into the scalar to minimise: ``weights(losses) · losses + penalty()``.

    State (learnable log-variances, loss histories, ...) lives in parameters and buffers, so it is
    saved in checkpoints with the rest of the strategy. A task absent from a step (no labelled
    sample in its batch) has a constant zero loss there.
    """

    def forward(self, losses: Tensor) -> Tensor:
        """The scalar objective ``Σ_t w_t L_t + penalty``."""
        return self.weights(losses) @ losses + self.penalty().to(losses)

    @abstractmethod
    def weights(self, losses: Tensor) -> Tensor:
        """Weights ``[T]`` for the losses ``[T]`` of this step."""

    def penalty(self) -> Tensor:
        """The method's own additive term (e.g. uncertainty weighting's ``Σ log σ_t``); zero by default."""
        return torch.zeros(())

    def on_epoch_end(self, epoch: int, train_losses: Tensor) -> None:
        """Hook called after each epoch with the mean training loss of each task ``[T]``; no-op by default.

        Epoch-level methods (e.g. dynamic weight average) update their state here; the Trainer calls
        it, so the user has nothing to remember.
        """


registry: Registry[Weighting] = Registry("weighting")
