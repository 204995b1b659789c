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

The aggregation step itself (the Jacobian or Gramian, the update, the multi-process sums) is in
`multitask._backward_step`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from multitask._backward_step import ProcessGroup, _AggregationStep, _scaled
from multitask.errors import ConfigError, NonFiniteLossError, ShapeError
from multitask.jacobian import JacobianEngine
from multitask.strategy import Strategy
from multitask.tasks import TaskLosses
from multitask.weighting import StepContext

__all__ = ["BackwardResult", "ProcessGroup", "backward"]

_DEFAULT_ENGINE = JacobianEngine()


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
