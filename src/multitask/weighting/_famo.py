"""FAMO: fast adaptive multitask optimisation, balancing the tasks' loss decrease rates in O(1) per step."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from multitask.errors import check_number
from multitask.weighting._base import StepContext, Weighting, masked_softmax, registry
from multitask.weighting._optim import OwnAdam


@registry.register("famo")
class FAMO(Weighting):
    r"""FAMO: weights that make every task's log-loss fall at the same rate, with no per-task gradient.

    With logits ``ξ`` and ``z = softmax(ξ)`` the update direction is the gradient of
    ``Σ_t (z_t / c) log(L_t − L_t^* + ε)``, ``c = Σ_t z_t / (L_t − L_t^* + ε)`` (Eq. 4 and
    Algorithm 1 of the paper, with ``L^* = 0``), i.e. the weights ``w_t = z_t / (c (L_t + ε))``,
    which sum to one. After each step the logits follow the observed decrease of the log-losses
    ``δ_t = log(L_t^{prev} + ε) − log(L_t + ε)``: ``ξ ← ξ − β (J_z(ξ)ᵀ δ + γ ξ)`` with
    ``J_z(ξ)ᵀ δ = z ⊙ (δ − zᵀδ)``, here by FAMO's own Adam (learning rate β, weight decay γ, as
    the authors' code). Like LibMTL, ``δ`` compares this step's losses with the previous step's
    (consecutive batches) instead of re-evaluating the batch after the update, so FAMO costs no
    extra forward pass; ``δ_t`` is 0 for a task absent from either step, and absent tasks get
    weight 0. ``ξ`` is a buffer, not a parameter (the Trainer's optimiser never sees it); ``ξ``,
    the previous losses and the Adam state are in the checkpoint. A negative loss raises an
    error naming the task. Cost: negligible.

    Args:
        lr: β, learning rate of the logits' Adam.
        gamma: γ, the logits' weight decay.
        eps: ε inside the log.

    References:
        Liu, Liang, Stone & Liu, "FAMO: Fast Adaptive Multitask Optimization", NeurIPS 2023.
        arXiv:2306.03792.
    """

    def __init__(self, lr: float = 0.025, gamma: float = 0.01, eps: float = 1e-8) -> None:
        super().__init__()
        self.lr, self.eps = check_number("lr", lr), check_number("eps", eps)
        self.gamma = check_number("gamma", gamma, strict=False)
        self.optimizer = OwnAdam(lr, weight_decay=gamma)
        self.register_buffer("logits", torch.zeros(0))
        self.register_buffer("previous_losses", torch.zeros(0))
        self.register_buffer("previous_present", torch.zeros(0, dtype=torch.bool))

    def reset(self, num_tasks: int) -> None:
        """``ξ = 0`` (uniform ``z``), no previous step, fresh optimiser."""
        self.logits = torch.zeros(num_tasks)
        self.previous_losses = torch.zeros(num_tasks)
        self.previous_present = torch.zeros(num_tasks, dtype=torch.bool)
        self.optimizer.reset()

    def weights(self, losses: Tensor, context: StepContext) -> Tensor:
        """Update ``ξ`` from the previous step's loss decrease (in training), then ``w_t = z_t / (c (L_t + ε))``."""
        present = context.present.to(self.logits.device)
        self.check_positive(losses, present)
        current = losses.detach().to(self.logits)
        if torch.is_grad_enabled() and losses.requires_grad:
            both = present & self.previous_present
            if bool(both.any()):
                decrease = (self.previous_losses + self.eps).log() - (current + self.eps).log()
                delta = torch.where(both, decrease, torch.zeros_like(current))
                z = torch.softmax(self.logits, dim=0)
                self.optimizer.step(self.logits, z * (delta - (z * delta).sum()))
            self.previous_losses = torch.where(present, current, self.previous_losses)
            self.previous_present = present.clone()
        z = masked_softmax(self.logits, present)
        inverse = z / (current + self.eps)
        total = inverse.sum()
        result = inverse / total if bool(total > 0) else inverse
        return result.to(losses)

    def get_extra_state(self) -> dict[str, Any]:
        """The own optimiser's state (tensors and plain Python, loadable with ``weights_only=True``)."""
        return {"optimizer": self.optimizer.state_dict()}

    def set_extra_state(self, state: Any) -> None:
        """Restore the own optimiser's state."""
        self.optimizer.load_state_dict(state["optimizer"])
