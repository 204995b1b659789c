"""The Trainer's backward pass when the strategy aggregates per-task gradients (gradient aggregation).

The strategy's engine computes the Jacobian (or Gramian) of the weighted losses of the present
tasks with respect to the shared parameters (or the shared representation); the strategy
aggregates it; this module writes the update into the shared parameters' ``.grad``. Every other
parameter gets the ordinary gradient of the objective, so each head gets its own task's plain
gradient. Nothing non-finite is ever written into the weights.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from multitask.aggregation import GramianAggregator, NonFiniteGradientError
from multitask.aggregation._base import is_finite
from multitask.errors import ConfigError
from multitask.models._base import MultiTaskModel
from multitask.models._hard import HardSharing
from multitask.strategy import Strategy
from multitask.training.distributed import Distributed


class AggregationStep:
    """Fills ``.grad`` for one step of a strategy with gradient aggregation.

    Args:
        strategy: The strategy; its ``aggregation`` must be set.
        model: The model (representation mode needs a `HardSharing` model, whose encoder output
            is the shared representation).
        parameters: Every trained parameter (model and strategy).
        num_tasks: T.
        on_nonfinite: ``"raise"`` or ``"skip"`` for a non-finite Jacobian, Gramian or update.
        distributed: The process group of a multi-process run (None: one process). Then the
            Jacobian blocks are summed over the processes before anything is computed from them
            (the Gramian of the global batch is not the sum of the processes' Gramians), in
            representation mode the ``[T, T]`` Gramian is (its rows are per-sample, so it is), and
            the gradients that stay local (heads, penalties) are summed at the end.

    Raises:
        ConfigError: Representation mode with a model that has no single shared representation.
    """

    def __init__(
        self,
        strategy: Strategy,
        model: MultiTaskModel,
        parameters: Sequence[nn.Parameter],
        num_tasks: int,
        on_nonfinite: str,
        distributed: Distributed | None = None,
    ) -> None:
        if strategy.mode == "representation" and not isinstance(model, HardSharing):
            raise ConfigError(
                f"aggregation mode 'representation' needs a model whose shared representation is known "
                f"(HardSharing's encoder output); {type(model).__name__} has none: use mode='jacobian'"
            )
        self.strategy, self.model = strategy, model
        self.num_tasks, self.on_nonfinite = num_tasks, on_nonfinite
        self.shared = [p for p in model.shared_parameters() if p.requires_grad]
        shared_ids = {id(p) for p in self.shared}
        self.others = [p for p in parameters if p.requires_grad and id(p) not in shared_ids]
        self.distributed = distributed
        model_ids = {id(p) for p in model.parameters()}  # the strategy's own parameters get global gradients
        self.summed = [p for p in self.others if id(p) in model_ids]
        if distributed is not None and strategy.mode == "representation":
            self.summed += self.shared
        # a Gramian method that keeps the base rule "update = w(J Jᵀ) @ J" needs only G and w
        self.last_weights: Tensor | None = None  # the aggregator's task weights of the last step, when it has them
        aggregation = strategy.aggregation
        self.weights_suffice = (
            isinstance(aggregation, GramianAggregator) and type(aggregation).aggregate is GramianAggregator.aggregate
        )

    @contextlib.contextmanager
    def capture_representations(self, captured: list[Tensor]) -> Iterator[None]:
        """Collect the shared encoder's outputs during the forward pass (representation mode only)."""
        if self.strategy.mode != "representation":
            yield
            return
        assert isinstance(self.model, HardSharing)

        def keep(module: nn.Module, inputs: Any, output: Any) -> None:
            if not isinstance(output, Tensor):
                raise ConfigError(f"representation mode needs the encoder to return one tensor; got {type(output)}")
            captured.append(output)

        handle = self.model.encoder.register_forward_hook(keep)
        try:
            yield
        finally:
            handle.remove()

    def backward(
        self,
        objective: Tensor,
        weighted: Tensor,
        present: Tensor,
        representations: Sequence[Tensor],
        scaler: torch.amp.GradScaler,
        where: str,
        penalty: Tensor | None = None,
    ) -> bool:
        """Fill ``.grad``: the aggregator's update on shared parameters, ``∇ objective`` elsewhere.

        With float16 loss scaling the losses are scaled before differentiation and the Jacobian
        unscaled before aggregation, and a non-finite Jacobian is handed to the scaler, which skips
        the step and lowers the scale. Otherwise a non-finite Jacobian or update raises or skips the
        step (``on_nonfinite``). ``scaler`` is the Trainer's (float16 loss scaling on CUDA; disabled
        otherwise). ``penalty`` (parameter penalties, already part of ``objective``) also gets its
        gradient on the shared parameters, added to the update. Returns False when the step is to be
        skipped.
        """
        strategy, engine, shared = self.strategy, self.strategy.engine, self.shared
        device = weighted.device
        # scaling a unit also initialises the scaler's state, which its step() needs even when we skip
        scale = float(scaler.scale(torch.ones((), device=device))) if scaler.is_enabled() else 1.0
        rows = present.nonzero().flatten()
        self.last_weights = None
        if shared and rows.numel() > 0:
            if strategy.mode != "jacobian" or self.weights_suffice:
                # the update is w(G) @ J: G block by block, never the concatenated [T, P] matrix
                representation = strategy.mode == "representation"
                inputs = representations if representation else shared
                # w.r.t. the representation each task's path is its head only: a loop of T small backward
                # passes is cheaper there than a vmapped one (measured: 11 vs 26 ms, MLP 512, T = 10, CPU)
                blocks = engine.gradients(
                    weighted[rows] * scale, inputs, check_unused=False, batched=False if representation else None
                )
                if self.distributed is not None and not representation:
                    blocks = self._sum_blocks(blocks)
                gramian = engine.block_gramian(blocks) / scale**2
                if self.distributed is not None and strategy.mode == "representation":
                    gramian = self.distributed.all_reduce(gramian, "gramian")
                if not self._finite(gramian, "Jacobian", where, scaler):  # G is finite iff J is
                    return scaler.is_enabled()
                engine.warn_unused(gramian.diagonal() == 0)
                full = torch.zeros(self.num_tasks, self.num_tasks, dtype=gramian.dtype, device=device)
                full[rows[:, None], rows] = gramian
                task_weights = strategy.aggregation_weights(full, present).detach()
                if not self._finite(task_weights, "aggregation weights", where, scaler):
                    return False
                self.last_weights = task_weights
                if strategy.mode == "jacobian" or (self.distributed is not None and strategy.mode == "gramian"):
                    # blocks hold J · scale: their weighted sum is the scaled update
                    row_weights = task_weights[rows].to(blocks[0].dtype)
                    for parameter, block in zip(shared, blocks, strict=True):
                        update = row_weights @ block.reshape(rows.numel(), -1)
                        parameter.grad = update.view_as(parameter).to(parameter.dtype)
                else:  # one more backward pass of Σ_t w'_t w_t L_t, through the shared layers only
                    del blocks
                    torch.autograd.backward(
                        (task_weights.to(weighted) @ weighted) * scale, inputs=shared, retain_graph=True
                    )
            else:
                blocks = engine.gradients(weighted[rows] * scale, shared, check_unused=False)
                if self.distributed is not None:
                    blocks = self._sum_blocks(blocks)
                jacobian = torch.cat([b.reshape(rows.numel(), -1) for b in blocks], dim=1)
                del blocks
                if scale != 1.0:
                    jacobian /= scale
                norms = torch.linalg.vector_norm(jacobian, dim=1)  # finite iff the row is
                if not self._finite(norms, "Jacobian", where, scaler):
                    return scaler.is_enabled()
                engine.warn_unused(norms == 0)
                update = strategy.aggregate(jacobian, present)
                if not self._finite(update, "aggregated update", where, scaler):
                    return False
                if scale != 1.0:
                    update = update * scale
                offset = 0
                for parameter in shared:
                    size = parameter.numel()
                    parameter.grad = update[offset : offset + size].view_as(parameter).to(parameter.dtype)
                    offset += size
        penalty_grads: Sequence[Tensor | None] = ()
        if shared and penalty is not None and penalty.requires_grad:
            # the parameter penalties are not task losses: their gradient is added to the update
            penalty_grads = torch.autograd.grad(scaler.scale(penalty), shared, retain_graph=True, allow_unused=True)
            if self.distributed is None or strategy.mode == "representation":
                self._add(penalty_grads)
                penalty_grads = ()
        if self.others and objective.requires_grad:
            torch.autograd.backward(scaler.scale(objective), inputs=self.others)
        if self.distributed is not None:
            # each process's penalty share (penalty / world size) and local gradients, summed in one all-reduce
            extra = list(penalty_grads)  # the same on every process: empty without a penalty on shared parameters
            local = [p.grad for p in self.summed] + extra
            summed = self.distributed.sum_tensors(local, [*self.summed, *shared[: len(extra)]], "gradients")
            for parameter, grad in zip(self.summed, summed, strict=False):
                parameter.grad = grad.to(parameter.dtype) if grad is not None else None
            if extra:
                self._add(summed[len(self.summed) :])
        return True

    def _sum_blocks(self, blocks: list[Tensor]) -> list[Tensor]:
        """The Jacobian blocks of the global batch: the sum of the processes' blocks (one all-reduce)."""
        assert self.distributed is not None
        summed = self.distributed.sum_tensors(blocks, blocks, "jacobian")
        return [s if s is not None else torch.zeros_like(b) for s, b in zip(summed, blocks, strict=True)]

    def _add(self, grads: Sequence[Tensor | None]) -> None:
        """Add ``grads`` to the shared parameters' ``.grad``."""
        for parameter, grad in zip(self.shared, grads, strict=True):
            if grad is not None:
                grad = grad.to(parameter.dtype)
                parameter.grad = grad if parameter.grad is None else parameter.grad + grad

    def _finite(self, values: Tensor, what: str, where: str, scaler: torch.amp.GradScaler) -> bool:
        """True when ``values`` is finite; else hand inf to the scaler, raise, or report a skip."""
        if is_finite(values):
            return True
        if scaler.is_enabled():  # float16 overflow: let the scaler skip this step and lower its scale
            for parameter in self.shared:
                parameter.grad = torch.full_like(parameter, math.inf)
            return False
        if self.on_nonfinite == "raise":
            raise NonFiniteGradientError(
                f"non-finite {what} of the task gradients at {where} (the losses are finite); "
                "lower the learning rate, clip gradients, or pass on_nonfinite='skip'"
            )
        return False
