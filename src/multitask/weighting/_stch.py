"""Smooth Tchebycheff scalarisation: a smooth version of minimising the worst normalised task loss."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from multitask.errors import ConfigError, check_number
from multitask.weighting._base import StepContext, Weighting, check_num_tasks, check_preference, registry


@registry.register("stch")
class STCH(Weighting):
    r"""Smooth Tchebycheff scalarisation of the normalised log-losses.

    The Tchebycheff scalarisation ``max_t λ_t (f_t − z_t^*)`` minimises the worst task; its
    smooth version is ``g_μ = μ log Σ_t exp(λ_t (f_t − z_t^*) / μ)`` (Eq. 7 of the paper), which
    tends to the max as ``μ → 0``. For multi-task learning the authors' code takes
    ``f_t = log(L_t / n_t + ε)``, ``z^* = 0``, ``λ_t = 1`` and scales by T, where the nadir
    ``n_t`` is task t's mean training loss over the last warm-up epoch; during the warm-up
    epochs the objective is ``Σ_t log(L_t + ε)``. A preference ``p`` on the simplex sets
    ``λ_t = T p_t`` (the uniform preference is the authors' ``λ_t = 1``). So the objective after the
    warm-up is ``T μ log Σ_t exp(λ_t f_t / μ)``, whose gradient has weights
    ``w_t = T λ_t softmax(λ f/μ)_t / (L_t + ε n_t)`` (detached, over the present tasks; absent tasks
    get weight 0). The nadir is a buffer set by `on_epoch_end` (a task never seen in that epoch keeps
    ``n_t = 1``; with no warm-up all ``n_t = 1``). A negative loss raises an error naming the task.
    Cost: negligible.

    Args:
        mu: Smoothing μ > 0; smaller is closer to the hard max.
        preference: One non-negative entry per task summing to one (None: uniform), as in `Linear`.
        warmup_epochs: Epochs of the log-loss objective before switching; the nadir is the last one's mean.
        eps: ε inside the logs.

    References:
        Lin, Zhang, Yang, Liu, Wang & Zhang, "Smooth Tchebycheff Scalarization for Multi-Objective
        Optimization", ICML 2024. arXiv:2402.19078.
    """

    def __init__(
        self, mu: float = 1.0, warmup_epochs: int = 1, eps: float = 1e-8, preference: Sequence[float] | None = None
    ) -> None:
        super().__init__()
        self.preference = check_preference(preference) if preference is not None else None
        self.mu, self.eps = check_number("mu", mu), check_number("eps", eps)
        if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, int) or warmup_epochs < 0:
            raise ConfigError(f"warmup_epochs must be a non-negative integer; got {warmup_epochs!r}")
        self.warmup_epochs = warmup_epochs
        self.register_buffer("nadir", torch.zeros(0))

    def reset(self, num_tasks: int) -> None:
        """Nadir ``n_t = 1`` until the warm-up ends; the preference must have one entry per task."""
        if self.preference is not None:
            check_num_tasks("preference", self.preference, self.task_names)
        self.nadir = torch.ones(num_tasks)

    def weights(self, losses: Tensor, context: StepContext) -> Tensor:
        """Log-loss weights during warm-up, then ``w_t = T softmax(f/μ)_t / (L_t + ε n_t)``."""
        present = context.present.to(losses.device)
        self.check_positive(losses, present)
        values = losses.detach()
        zeros = torch.zeros_like(values)
        if context.epoch < self.warmup_epochs or not bool(present.any()):
            return torch.where(present, 1.0 / (values + self.eps), zeros)
        nadir = self.nadir.to(values)
        if self.preference is None:
            lambdas = torch.ones_like(values)
        else:
            lambdas = self.num_tasks * torch.tensor(self.preference, dtype=values.dtype, device=values.device)
        scaled = lambdas * torch.log(values / nadir + self.eps) / self.mu
        soft = torch.softmax(scaled.masked_fill(~present, -math.inf), dim=0)
        return torch.where(present, self.num_tasks * lambdas * soft / (values + self.eps * nadir), zeros)

    def on_epoch_end(self, epoch: int, train_losses: Tensor) -> None:
        """At the end of the last warm-up epoch, the nadir becomes that epoch's mean losses."""
        if epoch == self.warmup_epochs - 1:
            means = train_losses.detach().to(self.nadir)
            self.nadir = torch.where(torch.isnan(means) | (means <= 0), torch.ones_like(means), means)
