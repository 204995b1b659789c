"""The aggregation step behind `multitask.backward`: per-task gradients → the aggregated update in ``.grad``.

It computes the Jacobian (or its Gramian, or the representation's) with the `JacobianEngine`,
asks the strategy for the update or its weights, writes it into the shared parameters' ``.grad``
with the penalties' gradients, and sums what a multi-process run (`ProcessGroup`) must sum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import torch
from torch import Tensor

from multitask.aggregation import GramianAggregator, NonFiniteGradientError
from multitask.jacobian import JacobianEngine
from multitask.strategy import Strategy


class ProcessGroup(Protocol):
    """What `backward` needs of a multi-process run (`multitask.training.Distributed` is one).

    Each process passes its *share* of the global losses (values of the global batch, gradients of
    its rows; see `multitask.training.distributed`); sums over processes make the global gradients.
    """

    world_size: int

    def all_reduce(self, tensor: Tensor, kind: str) -> Tensor:
        """The sum of ``tensor`` over the processes (``kind`` labels it for accounting)."""
        ...

    def sum_tensors(self, tensors: Sequence[Tensor | None], like: Sequence[Tensor], kind: str) -> list[Tensor | None]:
        """Sums over the processes of several tensors (None counts as zeros shaped like ``like[i]``)."""
        ...

    def sum_gradients(self, parameters: Sequence[Tensor], kind: str = "gradients") -> None:
        """Replace each parameter's ``.grad`` by its sum over the processes."""
        ...


class _AggregationStep:
    """One aggregation step's parts (the shared and other parameters, the engine, the reduction)."""

    def __init__(
        self,
        strategy: Strategy,
        engine: JacobianEngine,
        shared: list[Tensor],
        others: list[Tensor],
        strategy_ids: set[int],
        process_group: ProcessGroup | None,
        on_nonfinite: str,
        where: str,
    ) -> None:
        self.strategy, self.engine, self.shared, self.others = strategy, engine, shared, others
        self.group, self.on_nonfinite, self.where = process_group, on_nonfinite, where
        representation = strategy.on == "representation"
        # the strategy's own parameters get the same gradient on every process (global loss values)
        self.summed = [p for p in others if id(p) not in strategy_ids]
        if process_group is not None and representation:
            self.summed += shared
        aggregation = strategy.aggregation
        # a Gramian method that keeps the base rule "update = w(J Jᵀ) @ J" needs only G and w
        self.weights_suffice = (
            isinstance(aggregation, GramianAggregator) and type(aggregation).aggregate is GramianAggregator.aggregate
        )

    def run(
        self,
        weighted: Tensor,
        parts: Sequence[Tensor] | None,
        weights: Tensor,
        present: Tensor,
        features: list[Tensor] | None,
        scaler: torch.amp.GradScaler | float | None,
        scale: float,
        objective: Tensor,
        penalty: Tensor | None,
    ) -> tuple[bool, Tensor | None]:
        """Write the update; return whether to step and the aggregation weights (None: the method has none).

        A float16 overflow under an enabled `GradScaler` returns ``(True, None)`` with inf in the
        shared ``.grad``: ``scaler.step`` then skips the step and lowers the scale.
        """
        strategy, engine, shared = self.strategy, self.engine, self.shared
        overflow = (_enabled(scaler), None)
        rows = present.nonzero().flatten()
        task_weights: Tensor | None = None
        representation = strategy.on == "representation"
        if shared and rows.numel() > 0:
            scaled = weighted[rows] * scale
            # the same values one by one, when the unstacked losses are known: each task's backward pass
            # then runs through its own head only
            terms: Tensor | list[Tensor] = (
                scaled if parts is None else [(parts[r] * weights[r]) * scale for r in rows.tolist()]
            )
            feature_grads: list[Tensor] | None = None
            if features is not None:
                feature_grads = engine.feature_gradients(terms, features)
            if representation:
                assert features is not None and feature_grads is not None
                gramian = engine.block_gramian(feature_grads) / scale**2
                if self.group is not None:  # per-sample rows: the global Gramian is the sum
                    gramian = self.group.all_reduce(gramian, "gramian")
                task_weights = self._gramian_weights(gramian, present, rows, scaler)
                if task_weights is None:
                    return overflow
                combined = self._combine(task_weights[rows], feature_grads)
                torch.autograd.backward(features, grad_tensors=combined, inputs=shared, retain_graph=True)
            else:
                if feature_grads is not None:
                    assert features is not None
                    blocks = engine.pull_back(features, feature_grads, shared)
                else:
                    blocks = engine.gradients(terms, shared, check_unused=False)
                if self.group is not None:
                    blocks = self._sum_blocks(blocks)
                if self.weights_suffice:
                    gramian = engine.block_gramian(blocks) / scale**2
                    task_weights = self._gramian_weights(gramian, present, rows, scaler)
                    if task_weights is None:
                        return overflow
                    row_weights = task_weights[rows]
                    if engine.update_by_backward and self.group is None:
                        del blocks  # one more backward pass of Σ_t w'_t w_t L_t through the shared layers
                        if feature_grads is not None:
                            assert features is not None
                            combined = self._combine(row_weights, feature_grads)
                            torch.autograd.backward(features, grad_tensors=combined, inputs=shared, retain_graph=True)
                        else:
                            torch.autograd.backward((row_weights.to(scaled) @ scaled), inputs=shared, retain_graph=True)
                    else:  # blocks hold J · scale: their weighted sum is the scaled update
                        for parameter, block in zip(shared, blocks, strict=True):
                            update = row_weights.to(block.dtype) @ block.reshape(rows.numel(), -1)
                            _accumulate(parameter, update.view_as(parameter))
                elif not self._full_jacobian_update(blocks, present, rows, scale, scaler):
                    return overflow
        penalty_grads: Sequence[Tensor | None] = ()
        if shared and penalty is not None and penalty.requires_grad:
            # the parameter penalties are not task losses: their gradient is added to the update
            penalty_grads = torch.autograd.grad(
                _scaled(penalty, scaler, scale), shared, retain_graph=True, allow_unused=True
            )
            if self.group is None or representation:
                self._add(penalty_grads)
                penalty_grads = ()
        if self.others and objective.requires_grad:
            torch.autograd.backward(_scaled(objective, scaler, scale), inputs=self.others)
        if self.group is not None:
            # each process's penalty share (penalty / world size) and local gradients, summed in one all-reduce
            extra = list(penalty_grads)  # the same on every process: empty without a penalty on shared parameters
            local = [p.grad for p in self.summed] + extra
            summed = self.group.sum_tensors(local, [*self.summed, *shared[: len(extra)]], "gradients")
            for parameter, grad in zip(self.summed, summed, strict=False):
                parameter.grad = grad.to(parameter.dtype) if grad is not None else None
            if extra:
                self._add(summed[len(self.summed) :])
        return True, task_weights

    def _gramian_weights(
        self, gramian: Tensor, present: Tensor, rows: Tensor, scaler: torch.amp.GradScaler | float | None
    ) -> Tensor | None:
        """``w' [T]`` from the present tasks' Gramian (0 for absent tasks); None when it is not finite."""
        if not self._finite(gramian, "Jacobian", scaler):  # G is finite iff J is
            return None
        self.engine.warn_unused(gramian.diagonal() == 0)
        num_tasks = present.numel()
        full = torch.zeros(num_tasks, num_tasks, dtype=gramian.dtype, device=gramian.device)
        full[rows[:, None], rows] = gramian
        task_weights = self.strategy.aggregation_weights(full, present).detach()
        if not self._finite(task_weights, "aggregation weights", scaler):
            return None
        return task_weights

    def _full_jacobian_update(
        self,
        blocks: list[Tensor],
        present: Tensor,
        rows: Tensor,
        scale: float,
        scaler: torch.amp.GradScaler | float | None,
    ) -> bool:
        """Methods that need ``J [T, P]`` itself: concatenate, aggregate, write; False to skip."""
        jacobian = torch.cat([b.reshape(rows.numel(), -1) for b in blocks], dim=1)
        del blocks
        if scale != 1.0:
            jacobian /= scale
        norms = torch.linalg.vector_norm(jacobian, dim=1)  # finite iff the row is
        if not self._finite(norms, "Jacobian", scaler):
            return False
        self.engine.warn_unused(norms == 0)
        if rows.numel() < present.numel():  # the strategy drops the absent tasks' rows itself
            full = jacobian.new_zeros(present.numel(), jacobian.shape[1])
            full[rows] = jacobian
            jacobian = full
        update = self.strategy.aggregate(jacobian, present)
        if not self._finite(update, "aggregated update", scaler):
            return False
        if scale != 1.0:
            update = update * scale
        offset = 0
        for parameter in self.shared:
            size = parameter.numel()
            _accumulate(parameter, update[offset : offset + size].view_as(parameter))
            offset += size
        return True

    @staticmethod
    def _combine(row_weights: Tensor, feature_grads: list[Tensor]) -> list[Tensor]:
        """``Σ_t w'_t C[t]`` for each representation's feature gradients ``C [T, *z.shape]``."""
        return [torch.tensordot(row_weights.to(c.dtype), c, dims=1) for c in feature_grads]

    def _sum_blocks(self, blocks: list[Tensor]) -> list[Tensor]:
        """The Jacobian blocks of the global batch: the sum of the processes' blocks (one all-reduce)."""
        assert self.group is not None
        summed = self.group.sum_tensors(blocks, blocks, "jacobian")
        return [s if s is not None else torch.zeros_like(b) for s, b in zip(summed, blocks, strict=True)]

    def _add(self, grads: Sequence[Tensor | None]) -> None:
        """Add ``grads`` to the shared parameters' ``.grad``."""
        for parameter, grad in zip(self.shared, grads, strict=True):
            if grad is not None:
                _accumulate(parameter, grad)

    def _finite(self, values: Tensor, what: str, scaler: torch.amp.GradScaler | float | None) -> bool:
        """True when ``values`` is finite; else hand inf to the scaler, raise, or report a skip."""
        if bool(torch.isfinite(values).all()):
            return True
        if _enabled(scaler):  # float16 overflow: let the scaler skip this step and lower its scale
            for parameter in self.shared:
                parameter.grad = torch.full_like(parameter, math.inf)
            return False
        if self.on_nonfinite == "raise":
            raise NonFiniteGradientError(
                f"non-finite {what} of the task gradients at {self.where} (the losses are finite); "
                "lower the learning rate, clip gradients, or pass on_nonfinite='skip'"
            )
        return False


def _scaled(value: Tensor, scaler: torch.amp.GradScaler | float | None, scale: float) -> Tensor:
    if isinstance(scaler, torch.amp.GradScaler):
        result: Tensor = scaler.scale(value)
        return result
    return value * scale if scale != 1.0 else value


def _enabled(scaler: torch.amp.GradScaler | float | None) -> bool:
    return isinstance(scaler, torch.amp.GradScaler) and scaler.is_enabled()


def _accumulate(parameter: Tensor, grad: Tensor) -> None:
    grad = grad.to(parameter.dtype)
    parameter.grad = grad if parameter.grad is None else parameter.grad + grad
