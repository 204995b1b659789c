"""Penalties on a deep model's parameters (L1, L2, L2,1 across tasks, trace norm), by gradient or by proximal step."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
from torch import Tensor

from multitask.errors import ConfigError

__all__ = ["L1", "L2", "L21", "Regularizer", "TraceNorm"]


class Regularizer(ABC):
    r"""A penalty ``α · Ω(θ)`` on given tensors, applied by gradient (``objective += penalty()``) or by proximal step.

    With ``proximal=False`` add `objective_term` to the loss before ``backward``; with
    ``proximal=True`` `objective_term` is zero and `step` applies the proximal operator
    ``θ ← argmin_z ½‖z − θ‖² + η α Ω(z)`` after each optimiser step of size ``η`` (proximal
    gradient descent: exact zeros for L1 and L2,1, exact low rank for the trace norm). Either way
    the regulariser is independent of how the task losses are weighted or their gradients
    aggregated, so it composes with any strategy.

    Args:
        tensors: The parameters it acts on.
        alpha: Strength ``α ≥ 0``.
        proximal: Apply it by proximal step instead of through the gradient.
    """

    def __init__(self, tensors: Sequence[Tensor], alpha: float, *, proximal: bool = False) -> None:
        name = type(self).__name__
        if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not math.isfinite(alpha) or alpha < 0:
            raise ConfigError(f"{name}: alpha must be a finite number ≥ 0; got {alpha!r}")
        self.tensors = list(tensors)
        if not self.tensors:
            raise ConfigError(f"{name}: needs at least one tensor to act on")
        self.alpha, self.proximal = float(alpha), proximal

    def penalty(self) -> Tensor:
        """``α · Ω(θ)``."""
        return self.alpha * self.value()

    def objective_term(self) -> Tensor:
        """What to add to the objective: the penalty, or zero when it is applied by proximal step."""
        return torch.zeros((), device=self.tensors[0].device) if self.proximal else self.penalty()

    @torch.no_grad()
    def step(self, step_size: float) -> None:
        """The proximal step for an optimiser step of size ``step_size`` (a no-op unless ``proximal``)."""
        if self.proximal and self.alpha > 0:
            self.prox_(step_size * self.alpha)

    @abstractmethod
    def value(self) -> Tensor:
        """``Ω(θ)``."""

    @abstractmethod
    def prox_(self, threshold: float) -> None:
        """In place, ``θ ← argmin_z ½‖z − θ‖² + threshold · Ω(z)``."""


class L1(Regularizer):
    r"""``α Σ|θ|`` (lasso); proximal step: soft thresholding ``sign(θ) max(|θ| − ηα, 0)``."""

    def value(self) -> Tensor:
        return torch.stack([t.abs().sum() for t in self.tensors]).sum()

    def prox_(self, threshold: float) -> None:
        for t in self.tensors:
            t.copy_(t.sign() * (t.abs() - threshold).clamp_min(0))


class L2(Regularizer):
    r"""``α Σθ²`` (weight decay); proximal step: shrinkage ``θ / (1 + 2ηα)``."""

    def value(self) -> Tensor:
        return torch.stack([t.square().sum() for t in self.tensors]).sum()

    def prox_(self, threshold: float) -> None:
        for t in self.tensors:
            t.div_(1 + 2 * threshold)


class _AcrossTasks(Regularizer):
    """A penalty on the matrix ``W [T, P]`` whose row ``t`` is task ``t``'s tensor, flattened."""

    def __init__(self, tensors: Sequence[Tensor], alpha: float, *, proximal: bool = False) -> None:
        super().__init__(tensors, alpha, proximal=proximal)
        name = type(self).__name__
        if len(self.tensors) < 2:
            raise ConfigError(f"{name}: needs one tensor per task, at least two; got {len(self.tensors)}")
        shapes = [tuple(t.shape) for t in self.tensors]
        if len(set(shapes)) != 1:
            raise ConfigError(f"{name}: the task tensors must have the same shape; got {shapes}")

    def matrix(self) -> Tensor:
        """``W [T, P]``: one row per task."""
        return torch.stack([t.reshape(-1) for t in self.tensors])

    def _write(self, matrix: Tensor) -> None:
        for t, row in zip(self.tensors, matrix, strict=True):
            t.copy_(row.view_as(t))


class L21(_AcrossTasks):
    r"""``α Σ_p ‖W_{:,p}‖₂``: the L2,1 group norm across tasks, which keeps or drops each input for all tasks together.

    ``W [T, P]`` stacks the tasks' tensors (e.g. each task's first-layer weights); column ``p``
    holds every task's weight on parameter ``p``. Proximal step: group soft thresholding
    ``W_{:,p} ← max(0, 1 − ηα / ‖W_{:,p}‖) W_{:,p}``.

    References:
        Argyriou, Evgeniou & Pontil, "Multi-Task Feature Learning", NeurIPS 2006;
        Obozinski, Taskar & Jordan, "Joint covariate selection and joint subspace selection for
        multiple classification problems", Statistics and Computing 2010.
    """

    def value(self) -> Tensor:
        result: Tensor = torch.linalg.vector_norm(self.matrix(), dim=0).sum()
        return result

    def prox_(self, threshold: float) -> None:
        matrix = self.matrix()
        norms = torch.linalg.vector_norm(matrix, dim=0, keepdim=True)
        self._write(matrix * (1 - threshold / norms.clamp_min(1e-12)).clamp_min(0))


class TraceNorm(_AcrossTasks):
    r"""``α ‖W‖_*``: the trace (nuclear) norm of the stacked task tensors ``W [T, P]``, favouring a low-rank ``W``.

    Proximal step: singular-value soft thresholding ``W ← U max(Σ − ηα, 0) Vᵀ``.

    References:
        Pong, Tseng, Ji & Ye, "Trace Norm Regularization: Reformulations, Algorithms, and
        Multi-task Learning", SIAM J. Optimization 2010; Ji & Ye, ICML 2009.
    """

    def value(self) -> Tensor:
        result: Tensor = torch.linalg.matrix_norm(self.matrix(), ord="nuc")
        return result

    def prox_(self, threshold: float) -> None:
        u, s, vh = torch.linalg.svd(self.matrix(), full_matrices=False)
        self._write(u @ torch.diag((s - threshold).clamp_min(0)) @ vh)
