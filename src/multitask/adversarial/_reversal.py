"""The gradient reversal layer: the identity going forward, ``−λ`` times the gradient going back."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from multitask.errors import ConfigError


def check_coefficient(coefficient: float, what: str = "the gradient reversal coefficient λ") -> float:
    """``coefficient`` as a float after checking it is finite and ``≥ 0`` (`ConfigError` otherwise)."""
    value = float(coefficient)
    if not math.isfinite(value) or value < 0:
        raise ConfigError(f"{what} must be a finite number ≥ 0; got {coefficient}")
    return value


class _ReverseGradient(torch.autograd.Function):
    """``y = x``; ``∂L/∂x = −λ ∂L/∂y``."""

    @staticmethod
    def forward(ctx: Any, features: Tensor, coefficient: float) -> Tensor:
        ctx.coefficient = coefficient
        return features.view_as(features)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return grad * -ctx.coefficient, None


def reverse_gradient(features: Tensor, coefficient: float = 1.0) -> Tensor:
    """``features`` unchanged; in the backward pass their gradient is multiplied by ``−coefficient``.

    Args:
        features: Any tensor.
        coefficient: λ ≥ 0.

    Example:
        >>> x = torch.ones(3, requires_grad=True)
        >>> reverse_gradient(x, 0.5).sum().backward()
        >>> x.grad
        tensor([-0.5000, -0.5000, -0.5000])
    """
    result: Tensor = _ReverseGradient.apply(features, check_coefficient(coefficient))  # type: ignore[no-untyped-call]
    return result


class GradientReversal(nn.Module):
    r"""The gradient reversal layer (GRL) of domain-adversarial training.

    Forward: ``R_λ(x) = x``. Backward: ``∂R_λ/∂x = −λ I``, so the gradient reaching the layers
    below is ``−λ`` times the gradient arriving from above. Placed between a feature extractor
    and a discriminator, one backward pass of the discriminator's loss ``L_D`` trains the
    discriminator to minimise ``L_D`` and the feature extractor to maximise ``λ L_D``: the
    saddle point of the adversarial objective is sought by plain gradient descent on one sum.

    Args:
        coefficient: λ ≥ 0; it may be changed between steps (``layer.coefficient = ...``), e.g. by a
            `DANNSchedule`.

    References:
        Ganin & Lempitsky, "Unsupervised Domain Adaptation by Backpropagation", ICML 2015. arXiv:1409.7495.
    """

    def __init__(self, coefficient: float = 1.0) -> None:
        super().__init__()
        self.coefficient = check_coefficient(coefficient)

    def forward(self, features: Tensor) -> Tensor:
        """``features`` unchanged (their gradient is reversed and scaled by λ)."""
        return reverse_gradient(features, self.coefficient)

    def extra_repr(self) -> str:
        return f"coefficient={self.coefficient}"
