"""`Strategy`: how the per-task losses of one step become the objective the optimiser follows."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from multitask.weighting import EW, StepContext, Weighting


class Strategy(nn.Module):
    """Composes the parts of an update rule, each optional, as ``optax.chain`` composes transforms.

    Today a strategy is a loss weighting (`multitask.weighting`); the Trainer asks it for
    `objective` once per step and back-propagates that scalar. The other families plug in here
    without a change to the Trainer's loop: gradient aggregation replaces the scalar's backward
    pass by an update computed from the per-task Jacobian, regularisers add penalties on the
    parameters, and adversarial training adds a discriminator game. The strategy's own state
    (learnable weights, histories) is part of its ``state_dict`` and so of every checkpoint.

    Args:
        weighting: How losses ``[T]`` become one scalar; equal weighting (the sum) by default.
    """

    def __init__(self, weighting: Weighting | None = None) -> None:
        super().__init__()
        self.weighting = weighting if weighting is not None else EW()

    def setup(self, task_names: Sequence[str]) -> None:
        """(Re)initialise the parts' state for these tasks; the Trainer calls it before building its optimiser."""
        self.weighting.setup(task_names)

    def objective(self, losses: Tensor, context: StepContext | None = None) -> tuple[Tensor, Tensor]:
        """The scalar to minimise for per-task losses ``[T]``, and the task weights ``[T]`` it used.

        ``context`` tells which tasks have labels in this step and gives the shared parameters
        (all tasks present and no parameters when None). The weights are computed once and
        returned detached, so that what is logged is exactly what the update used (methods with
        random weights draw them once per step; methods with their own update make it here).
        """
        context = self.weighting.prepare(losses, context)
        weights = self.weighting.weights(losses, context)
        value = weights @ losses + self.weighting.penalty(context).to(losses)
        return value, weights.detach()

    def on_epoch_end(self, epoch: int, train_losses: Tensor) -> None:
        """Called by the Trainer after each epoch with the mean training loss of each task ``[T]``."""
        self.weighting.on_epoch_end(epoch, train_losses)
