"""The update seam: `backward` turns the T task losses of a step into ``.grad``, for any training loop.

Every method of the library reaches a model through this one function: the `Trainer` calls it,
and so can a plain PyTorch loop, a Lightning ``training_step`` or a Hugging Face ``Trainer``
subclass. It knows nothing of the Trainer: float16 loss scaling and the multi-process reduction
are arguments.

The loop protocol (all of it; nothing else is needed):

1. ``strategy.setup(task_names)`` (or ``Strategy(..., tasks=task_names)``) *before* building the
   optimiser, over ``[*model.parameters(), *strategy.parameters()]``: learnable weightings create
   their parameters there.
2. Each step: ``optimizer.zero_grad()``; forward; ``losses = multitask.task_losses(tasks, outputs,
   batch)``; ``result = multitask.backward(losses, strategy, shared_params=..., features=...)``;
   if ``result.applied``: ``optimizer.step()``, then ``strategy.after_step(lr)`` (proximal
   regularisers).
3. After each epoch: ``strategy.on_epoch_end(epoch, mean_losses)`` with each task's mean
   training loss ``[T]`` (DWA-like methods; NaN for a task without labels in the epoch).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import torch
from torch import Tensor

from multitask.aggregation import GramianAggregator, NonFiniteGradientError
from multitask.errors import ConfigError, NonFiniteLossError, ShapeError
from multitask.jacobian import JacobianEngine
from multitask.strategy import Strategy
from multitask.tasks import TaskLosses
from multitask.weighting import StepContext

__all__ = ["BackwardResult", "ProcessGroup", "backward"]

_DEFAULT_ENGINE = JacobianEngine()


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


@dataclass(frozen=True)
class BackwardResult:
    """What one call of `backward` did.

    Attributes:
        weights: ``[T]`` the loss weights ``w`` the weighting used (detached).
        aggregation_weights: ``[T]`` the aggregator's task weights ``w'`` (the update is
            ``Σ_t w'_t ∇(w_t L_t)`` on the shared parameters), for methods that act through
            weights; None without an aggregation or for methods that need the whole Jacobian.
        applied: False when a non-finite step was skipped (``on_nonfinite="skip"``): then nothing was
            written into ``.grad`` and the caller must not step the optimiser. With a `GradScaler`, a
            float16 overflow is left to the scaler as PyTorch's AMP protocol has it: ``.grad`` holds
            inf, ``applied`` is True and ``scaler.step`` skips the step and lowers the scale.
        objective: The scalar objective ``Σ_t w_t L_t + penalties`` (detached), for logs.
        reason: Why the step was skipped (None when applied).
    """

    weights: Tensor
    aggregation_weights: Tensor | None
    applied: bool
    objective: Tensor
    reason: str | None = None


def backward(
    losses: TaskLosses | Tensor,
    strategy: Strategy | None = None,
    *,
    shared_params: Iterable[Tensor],
    task_params: Iterable[Tensor] | None = None,
    features: Tensor | Sequence[Tensor] | None = None,
    present: Tensor | None = None,
    penalty: Tensor | Callable[[], Tensor | None] | None = None,
    engine: JacobianEngine | None = None,
    scaler: torch.amp.GradScaler | float | None = None,
    process_group: ProcessGroup | None = None,
    on_nonfinite: Literal["raise", "skip"] = "raise",
    epoch: int = 0,
    step: int = 0,
    where: str | None = None,
) -> BackwardResult:
    r"""Fill ``.grad`` with the strategy's update for the task losses ``L [T]`` of one step.

    With weights ``w = weighting(L)`` (detached) and penalties ``Ω`` (``penalty=`` and the strategy's
    gradient-applied regularisers ``Σ α R(θ)``) the objective is
    ``f = Σ_t w_t L_t + weighting penalty + Ω``. Without an aggregation every parameter that ``f``
    reaches gets ``∇f`` (as ``f.backward()`` would). With an aggregation ``A``:

    - shared parameters ``θ_s``: ``A(J) + ∇_{θ_s} Ω`` with ``J = ∂(w ⊙ L)/∂θ_s [T, P]`` over the
      present tasks (for a `GramianAggregator`, ``A(J) = w'(J Jᵀ)ᵀ J``, computed without ever
      forming ``[T, P]``); with ``strategy.on == "representation"``, ``w'`` comes from the Gramian of
      ``∂(w ⊙ L)/∂z`` instead and the update is ``Σ_t w'_t ∇_{θ_s}(w_t L_t)``;
    - every other parameter (``task_params``: heads, learnable weights): ``∇f``, so each head gets
      its own task's gradient.

    Gradients accumulate into ``.grad`` like ``Tensor.backward()``: zero them before the call. A task
    whose loss is absent (``present`` False) is left out of the Jacobian. Nothing non-finite is ever
    written: a NaN/inf loss, Jacobian or update raises (`NonFiniteLossError`,
    `NonFiniteGradientError`) or, with ``on_nonfinite="skip"``, leaves ``.grad`` untouched and
    returns ``applied=False``.

    Args:
        losses: `multitask.task_losses`'s record, or a plain ``[T]`` tensor (then ``present=``).
        strategy: The update rule, set up for the tasks (see the module docstring); None: the sum.
        shared_params: The parameters the tasks share (``model.shared_parameters()``).
        task_params: Every other trained parameter; None finds them in the autograd graph of ``f``.
        features: The shared representation ``z`` (a tensor, or one per forward pass of the step)
            through which every shared parameter reaches the losses, e.g. `HardSharing`'s encoder
            output. It makes the Jacobian *features-first* (T backward passes through the heads to
            ``z``, then one through the trunk) and is required for ``on="representation"``.
        present: ``[T]`` bool, for a plain tensor of losses (None: all present).
        penalty: The model's penalties and the adversarial term, one scalar added to ``f`` (e.g.
            ``model.regularization()``; their gradient is added to the shared parameters' update;
            the strategy's own regularisers are added by `backward` itself),
            or a function returning it, called after the losses are found finite and the weights
            computed (for a term with side effects, such as an alternating adversary's own step).
        engine: How per-task gradients are computed (`JacobianEngine`; default: the fastest for the
            device, reported once).
        scaler: float16 loss scaling: a `torch.amp.GradScaler` (``.grad`` then holds the scaled
            update, as ``scaler.scale(loss).backward()`` leaves it, for ``scaler.step``) or its scale.
        process_group: A multi-process run's group; ``losses`` and ``penalty`` are then this
            process's shares and the gradients are summed over the processes.
        on_nonfinite: ``"raise"`` or ``"skip"`` (see above).
        epoch: Zero-based epoch, for epoch-aware weightings (`StepContext`).
        step: Zero-based global step, likewise.
        where: Where the run is, for error messages (default ``"step N"``).

    Returns:
        The weights used and whether the update was applied (`BackwardResult`).

    Raises:
        ConfigError: The strategy was never set up, or representation mode without ``features``.
        ShapeError: ``losses`` is not ``[T]`` for the strategy's ``T`` tasks.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> import multitask
        >>> from multitask.aggregation import UPGrad
        >>> from multitask.models import HardSharing
        >>> tasks = [multitask.Task(name, nn.Linear(4, 1), "regression") for name in ("a", "b")]
        >>> model = HardSharing(nn.Linear(3, 4), tasks)
        >>> strategy = multitask.Strategy(aggregation=UPGrad(), tasks=["a", "b"])
        >>> batch = {"x": torch.randn(8, 3), "a": torch.randn(8), "b": torch.randn(8)}
        >>> losses = multitask.task_losses(tasks, model(batch), batch)
        >>> result = multitask.backward(losses, strategy, shared_params=model.shared_parameters(),
        ...                             features=model.shared_features())
        >>> result.applied, tuple(result.aggregation_weights.shape), model.encoder.weight.grad is not None
        (True, (2,), True)
    """
    strategy = strategy if strategy is not None else _sum_strategy(losses)
    values, present_mask, names = _unpack(losses, present, strategy)
    parts = losses.parts if isinstance(losses, TaskLosses) and len(losses.parts) == values.numel() else None
    where = where or f"step {step + 1}"
    shared_all = tuple(shared_params)
    shared = [p for p in shared_all if p.requires_grad]
    engine = engine if engine is not None else (strategy.legacy_engine or _DEFAULT_ENGINE)
    scale_factor = _scale(scaler, values.device)
    nothing = torch.zeros(len(names), device=values.device)

    bad = [n for n, v in zip(names, values.detach().double().cpu().tolist(), strict=True) if not math.isfinite(v)]
    if bad:
        shown = {n: v for n, v in zip(names, values.detach().cpu().tolist(), strict=True)}
        if on_nonfinite == "raise":
            raise NonFiniteLossError(
                f"non-finite loss for task(s) {bad} at {where}: {shown}; "
                "lower the learning rate, clip gradients, or pass on_nonfinite='skip'"
            )
        return BackwardResult(nothing, None, False, nothing.sum(), f"non-finite loss for task(s) {bad}")

    all_reduce = (lambda t: process_group.all_reduce(t, "weighting")) if process_group is not None else None
    context = StepContext(present_mask, shared_all, epoch, step, all_reduce)
    objective, weights = strategy.objective(values, context)
    if callable(penalty):
        penalty = penalty()
    regularization = strategy.regularization()  # Strategy(regularizers=[...]), gradient-applied ones
    if regularization is not None:
        if process_group is not None:  # each process's share; the gradient sum over processes is the term's
            regularization = regularization / process_group.world_size
        penalty = regularization if penalty is None else penalty + regularization
    if penalty is not None:
        objective = objective + penalty
    strategy_ids = {id(p) for p in strategy.parameters()}

    if strategy.aggregation is None:
        _scaled(objective, scaler, scale_factor).backward()  # type: ignore[no-untyped-call]
        if process_group is not None:
            others = _others(task_params, objective, shared)
            process_group.sum_gradients([p for p in [*shared, *others] if id(p) not in strategy_ids])
        return BackwardResult(weights, None, True, objective.detach())

    feature_list = _features(features)
    if strategy.on == "representation" and feature_list is None:
        raise ConfigError(
            "aggregation on='representation' needs the shared representation: pass features= (e.g. "
            "model.shared_features() of a HardSharing model), or aggregate on='parameters'"
        )
    others = _others(task_params, objective, shared)
    step_state = _AggregationStep(strategy, engine, shared, others, strategy_ids, process_group, on_nonfinite, where)
    applied, task_weights = step_state.run(
        values * weights, parts, weights, present_mask, feature_list, scaler, scale_factor, objective, penalty
    )
    if not applied:
        return BackwardResult(weights, None, False, objective.detach(), "non-finite task gradients")
    return BackwardResult(weights, task_weights, True, objective.detach())


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


def _sum_strategy(losses: TaskLosses | Tensor) -> Strategy:
    names = losses.names if isinstance(losses, TaskLosses) else tuple(f"task{i}" for i in range(losses.numel()))
    return Strategy(tasks=names)


def _unpack(
    losses: TaskLosses | Tensor, present: Tensor | None, strategy: Strategy
) -> tuple[Tensor, Tensor, tuple[str, ...]]:
    """The loss vector ``[T]``, the present mask ``[T]`` (on the losses' device) and the task names."""
    if isinstance(losses, TaskLosses):
        if present is not None:
            raise ConfigError("present= is for a plain tensor of losses; a TaskLosses record carries its own")
        values, present = losses.values, losses.present
    elif isinstance(losses, Tensor):
        values = losses
    else:
        raise ConfigError(f"losses must be multitask.task_losses(...) or a [T] tensor; got {type(losses).__name__}")
    if values.dim() != 1 or values.numel() == 0:
        raise ShapeError(f"losses must be a non-empty vector [num_tasks]; got shape {tuple(values.shape)}")
    if not strategy.is_set_up:
        raise ConfigError(
            "the strategy was not set up for the tasks: call strategy.setup(task_names) (or build it as "
            "Strategy(..., tasks=task_names)) before building the optimiser, so that learnable weights are trained"
        )
    names = strategy.task_names
    if len(names) != values.numel():
        raise ShapeError(f"the strategy was set up for {len(names)} tasks {list(names)}; got {values.numel()} losses")
    if present is None:
        mask = torch.ones(values.numel(), dtype=torch.bool, device=values.device)
    else:
        if present.shape != values.shape:
            raise ShapeError(f"present must be [num_tasks] = [{values.numel()}]; got {tuple(present.shape)}")
        mask = present.to(device=values.device, dtype=torch.bool)
    return values, mask, names


def _features(features: Tensor | Sequence[Tensor] | None) -> list[Tensor] | None:
    """The representations as a list, or None when there are none that carry gradients."""
    if features is None:
        return None
    listed = [features] if isinstance(features, Tensor) else list(features)
    if not listed or not all(isinstance(f, Tensor) for f in listed):
        raise ConfigError("features must be a tensor or a list of tensors (the shared representation)")
    if not all(f.requires_grad for f in listed):
        return None  # no graph to the shared parameters (e.g. a frozen trunk): nothing to pull back
    return listed


def _others(task_params: Iterable[Tensor] | None, objective: Tensor, shared: Sequence[Tensor]) -> list[Tensor]:
    """The trained parameters that are not shared: given, or the leaves of ``objective``'s graph."""
    shared_ids = {id(p) for p in shared}
    if task_params is not None:
        seen: set[int] = set()
        result = []
        for p in task_params:
            if p.requires_grad and id(p) not in shared_ids and id(p) not in seen:
                seen.add(id(p))
                result.append(p)
        return result
    return [p for p in _graph_leaves(objective) if id(p) not in shared_ids]


def _graph_leaves(root: Tensor) -> list[Tensor]:
    """The leaf tensors that require grad in ``root``'s autograd graph, in first-seen order."""
    if root.grad_fn is None:
        return [root] if root.requires_grad else []
    leaves: list[Tensor] = []
    seen_nodes: set[int] = set()
    stack = [root.grad_fn]
    while stack:
        node = stack.pop()
        if id(node) in seen_nodes:
            continue
        seen_nodes.add(id(node))
        variable = getattr(node, "variable", None)  # AccumulateGrad nodes hold their leaf
        if isinstance(variable, Tensor):
            leaves.append(variable)
        stack.extend(child for child, _ in node.next_functions if child is not None)
    return leaves


def _scale(scaler: torch.amp.GradScaler | float | None, device: torch.device) -> float:
    if isinstance(scaler, torch.amp.GradScaler):
        # scaling a unit also initialises the scaler's state, which its step() needs even when we skip
        return float(scaler.scale(torch.ones((), device=device))) if scaler.is_enabled() else 1.0
    if scaler is None:
        return 1.0
    if isinstance(scaler, bool) or not isinstance(scaler, int | float) or not math.isfinite(scaler) or scaler <= 0:
        raise ConfigError(f"scaler must be a torch.amp.GradScaler or a positive loss scale; got {scaler!r}")
    return float(scaler)


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
