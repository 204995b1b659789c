"""Dynamic weight average: weights from the rate at which each task's loss fell over the last epochs."""

from __future__ import annotations

import torch
from torch import Tensor

from multitask.errors import check_number
from multitask.weighting._base import StepContext, Weighting, registry


@registry.register("dwa")
class DWA(Weighting):
    r"""Dynamic weight average: tasks whose loss falls slowly get more weight in the next epoch.

    ``w_t(k) = T exp(r_t(k−1)/τ) / Σ_s exp(r_s(k−1)/τ)`` with ``r_t(k−1) = L_t(k−1) / L_t(k−2)``,
    where ``L_t(k)`` is task t's mean training loss over epoch k (Eq. 7 of the paper); the first
    two epochs use ``w_t = 1``. The Trainer feeds the epoch means through `on_epoch_end`; the
    weights stay fixed within an epoch. A task with no labelled sample in an epoch (NaN mean)
    keeps its previous epoch's mean, and its ratio is 1 until it has two means; a zero previous
    mean counts as ``1e-12`` so that the ratio stays finite. The last two means and the current
    weights are buffers (checkpointed). Cost: negligible.

    Args:
        temperature: τ; larger values make the weights more uniform (the paper uses 2).

    References:
        Liu, Johns & Davison, "End-to-End Multi-Task Learning with Attention", CVPR 2019.
        arXiv:1803.10704.
    """

    def __init__(self, temperature: float = 2.0) -> None:
        super().__init__()
        self.temperature = check_number("temperature", temperature)
        self.register_buffer("last_means", torch.zeros(2, 0))
        self.register_buffer("seen", torch.zeros(2, 0, dtype=torch.bool))
        self.register_buffer("current", torch.zeros(0))

    def reset(self, num_tasks: int) -> None:
        """No history; unit weights."""
        self.last_means = torch.zeros(2, num_tasks)
        self.seen = torch.zeros(2, num_tasks, dtype=torch.bool)
        self.current = torch.ones(num_tasks)

    def weights(self, losses: Tensor, context: StepContext) -> Tensor:
        """The weights set at the end of the previous epoch."""
        return self.current.to(losses)

    def on_epoch_end(self, epoch: int, train_losses: Tensor) -> None:
        """Shift the history by one epoch and recompute the weights for the next epoch."""
        means = train_losses.detach().to(self.last_means)
        observed = ~torch.isnan(means)
        newest = torch.where(observed, means, self.last_means[1])
        self.last_means = torch.stack([self.last_means[1], newest])
        self.seen = torch.stack([self.seen[1], self.seen[1] | observed])
        if not bool(self.seen[0].any()):
            return  # fewer than two epochs of history: keep unit weights
        ratios = torch.where(
            self.seen[0], self.last_means[1] / self.last_means[0].clamp(min=1e-12), torch.ones_like(newest)
        )
        self.current = len(ratios) * torch.softmax(ratios / self.temperature, dim=0)
