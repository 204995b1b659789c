"""GradNorm: learn task weights so that the tasks' gradient norms train at balanced rates."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from multitask.errors import ConfigError, check_number
from multitask.weighting._base import StepContext, Weighting, registry
from multitask.weighting._optim import OwnAdam


@registry.register("gradnorm")
class GradNorm(Weighting):
    r"""GradNorm: task weights tuned so that each weighted gradient norm matches its training rate.

    On the last shared layer's weight ``W`` (the last shared parameter with two or more
    dimensions, as in Sec. 3.2 of the paper), with ``G_t = ‖∇_W w_t L_t‖ = w_t ‖∇_W L_t‖``,
    ``Ḡ = mean_t G_t``, the inverse training rate ``r_t = L̃_t / mean_s L̃_s`` and
    ``L̃_t = L_t / L_t(0)``, the weights minimise (Eq. 2)

    ``L_grad = Σ_t |G_t − Ḡ · r_t^α|``  with ``Ḡ · r_t^α`` held constant.

    Each step: the objective uses the current weights ``w`` (detached: the network's update is
    ``Σ_t w_t ∇L_t``); then ``∂L_grad/∂w_t = sign(G_t − Ḡ r_t^α) ‖∇_W L_t‖`` (exact, since
    ``G_t`` is linear in ``w_t``; no second-order terms) drives one step of GradNorm's own Adam
    on ``w``, and ``w`` is clipped at ``1e-6`` and renormalised to ``Σ_t w_t = T`` (Sec. 3.2).
    ``w`` is a buffer, not a parameter, so the Trainer's optimiser never sees it; ``w`` and the
    Adam state are in the checkpoint. ``L_t(0)`` is the task's loss at the first step where it is
    present; absent tasks are left out of ``Ḡ``, the rates and the update. Without gradients
    (e.g. a call under ``torch.no_grad``) the weights are returned unchanged.
    Cost: one extra backward pass per task from its loss to ``W`` (through its head only). In a
    multi-process run the per-task gradients on ``W`` are summed over the processes (``T × |W|``
    numbers per step), so the norms are those of the global batch.

    Args:
        alpha: Asymmetry α: how strongly tasks that train slowly are pulled up (the paper uses
            values from 0.12 to 1.5 depending on how different the tasks are).
        lr: Learning rate of the weights' own Adam optimiser.

    References:
        Chen, Badrinarayanan, Lee & Rabinovich, "GradNorm: Gradient Normalization for Adaptive
        Loss Balancing in Deep Multitask Networks", ICML 2018. arXiv:1711.02257.
    """

    def __init__(self, alpha: float = 1.5, lr: float = 0.025) -> None:
        super().__init__()
        self.alpha = check_number("alpha", alpha, strict=False)
        self.lr = check_number("lr", lr)
        self.optimizer = OwnAdam(lr)
        self.register_buffer("loss_weights", torch.zeros(0))
        self.register_buffer("initial_losses", torch.zeros(0))
        self.register_buffer("has_initial", torch.zeros(0, dtype=torch.bool))

    def reset(self, num_tasks: int) -> None:
        """``w_t = 1``; no initial losses yet; fresh optimiser."""
        self.loss_weights = torch.ones(num_tasks)
        self.initial_losses = torch.zeros(num_tasks)
        self.has_initial = torch.zeros(num_tasks, dtype=torch.bool)
        self.optimizer.reset()

    def weights(self, losses: Tensor, context: StepContext) -> Tensor:
        """The current weights; then one GradNorm update of them (when the losses carry gradients)."""
        used = self.loss_weights.detach().clone().to(losses)
        if not losses.requires_grad or not torch.is_grad_enabled():
            return used
        present = context.present.to(self.has_initial.device)
        detached = losses.detach().to(self.initial_losses)
        first = present & ~self.has_initial
        self.initial_losses[first] = detached[first]
        self.has_initial |= first
        layer = _last_shared_layer(context.shared_parameters)
        if not bool(present.any()):
            return used
        rows = torch.nonzero(present).flatten().tolist()
        grads = torch.zeros(len(rows), *layer.shape, dtype=layer.dtype, device=layer.device)
        for row, index in enumerate(rows):
            if losses[index].requires_grad:
                (grad,) = torch.autograd.grad(losses[index], layer, retain_graph=True, allow_unused=True)
                if grad is not None:
                    grads[row] = grad.detach()
        if context.all_reduce is not None:  # multi-process: the gradients of the global batch
            grads = context.all_reduce(grads)
        norms = torch.zeros_like(self.loss_weights)
        norms[rows] = torch.linalg.vector_norm(grads.reshape(len(rows), -1), dim=1).to(norms)
        weighted = self.loss_weights * norms
        mean_norm = weighted[present].mean()
        relative = detached / self.initial_losses.clamp(min=1e-12)
        rates = relative / relative[present].mean().clamp(min=1e-12)
        targets = mean_norm * rates.clamp(min=0) ** self.alpha
        grad_w = torch.where(present, torch.sign(weighted - targets) * norms, torch.zeros_like(norms))
        self.optimizer.step(self.loss_weights, grad_w)
        with torch.no_grad():
            self.loss_weights.clamp_(min=1e-6)
            self.loss_weights.mul_(self.num_tasks / self.loss_weights.sum())
        return used

    def get_extra_state(self) -> dict[str, Any]:
        """The own optimiser's state (tensors and plain Python, loadable with ``weights_only=True``)."""
        return {"optimizer": self.optimizer.state_dict()}

    def set_extra_state(self, state: Any) -> None:
        """Restore the own optimiser's state."""
        self.optimizer.load_state_dict(state["optimizer"])


def _last_shared_layer(parameters: tuple[Tensor, ...]) -> Tensor:
    for parameter in reversed(parameters):
        if parameter.dim() >= 2 and parameter.requires_grad:
            return parameter
    raise ConfigError(
        "GradNorm needs the model's shared parameters (a trainable weight matrix among them): use it through "
        "the Trainer, or pass StepContext(present=..., shared_parameters=tuple(model.shared_parameters()))"
    )
