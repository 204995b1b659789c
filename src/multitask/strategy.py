"""`Strategy`: how the per-task losses of one step become the objective or the update the optimiser follows."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from multitask.adversarial import Adversary
from multitask.aggregation import Aggregator, GramianAggregator
from multitask.errors import ConfigError, ShapeError
from multitask.jacobian import JacobianEngine
from multitask.regularizers import Regularizer
from multitask.weighting import EW, StepContext, Weighting

AggregationMode = Literal["jacobian", "gramian", "representation"]
Target = Literal["parameters", "representation"]


class Strategy(nn.Module):
    """Composes the parts of an update rule, each optional, as ``optax.chain`` composes transforms.

    A strategy says *what* the update is; `multitask.backward` (which the Trainer calls) turns it
    into ``.grad``, and its `multitask.jacobian.JacobianEngine` says *how* the per-task gradients
    are computed (batched or by a loop, in chunks, the update from the Jacobian or by one more
    backward pass), which changes the cost, never the update.

    A loss weighting (`multitask.weighting`) turns the losses ``[T]`` into weights and the scalar
    to back-propagate (`objective`). A gradient aggregation (`multitask.aggregation`) replaces
    that scalar's gradient on the model's *shared* parameters by the update the aggregator
    computes from the per-task Jacobian (`aggregate`), or from its Gramian (`aggregation_weights`).

    Composition: the aggregator sees the gradients of the *weighted* losses ``w_t L_t`` (rows
    ``w_t ∇L_t``), with ``w`` the weighting's detached weights; with the default equal weighting
    (``w_t = 1``) these are the plain task gradients. Every other parameter (task heads, a
    weighting's own learnable parameters) gets the ordinary gradient of `objective`, so each head
    gets its own task's gradient. Tasks absent from a step (``context.present`` False) are left
    out: their rows are dropped before aggregation, and stateful aggregators are told which tasks
    the remaining rows are. The strategy's state (learnable weights, histories, aggregator state)
    is part of its ``state_dict`` and so of every checkpoint.

    Set-up: a strategy must be set up for its tasks (`setup`, or ``tasks=`` here) *before* its
    parameters are handed to an optimiser: learnable weightings (UW, IMTL-L) and adversaries create
    their parameters there. `multitask.backward` refuses a strategy that was never set up.

    Args:
        weighting: How losses ``[T]`` become one scalar; equal weighting (the sum) by default.
        aggregation: How the task Jacobian ``[T, P]`` becomes the shared parameters' update; None
            (the default) back-propagates the weighting's scalar everywhere.
        on: What the aggregator's per-task gradients are taken with respect to. ``"parameters"``
            (default): the shared parameters, ``J = ∂(w ⊙ L)/∂θ``. ``"representation"``
            (`GramianAggregator` methods; a model exposing its shared representation ``z``, e.g.
            `HardSharing`): the weights come from the Gramian of the gradients w.r.t. ``z``
            (no per-task pass through the encoder); with `MGDA` this is MGDA-UB (Sener & Koltun,
            Sec. 3.3), which minimises an upper bound of MGDA's objective. The update is then
            ``Σ_t w'_t ∇θ (w_t L_t)``.
        regularizers: Penalties on parameters (`multitask.regularizers`: L1, L2, L2,1, trace norm).
            A gradient-applied one adds ``α Ω(θ)`` to the objective (with an aggregation its
            gradient is added to the aggregated update of the shared parameters it touches); a
            proximal one applies its proximal operator after every optimiser step (`after_step`),
            with the optimiser's learning rate as the step size.
        adversary: A task discriminator played against the model's shared features
            (`multitask.adversarial.Adversary`; multi-input data and a model exposing
            `shared_features`). Its term enters the objective like a parameter penalty (with an
            aggregation, its gradient is added to the shared parameters' update); its discriminator
            and that discriminator's optimiser are part of this strategy's state.
        tasks: Task names to set the strategy up for now (see `setup`); None leaves it to the caller
            (the `Trainer` sets it up itself).
        mode: Deprecated (kept for one release): ``"representation"`` is ``on="representation"``;
            ``"gramian"`` is ``on="parameters"`` computed with
            ``JacobianEngine(update_by_backward=True)`` (pass the engine to `multitask.backward`
            or the Trainer instead).
        chunk_size: Deprecated: pass ``JacobianEngine(chunk_size=...)`` to `multitask.backward` or the Trainer.
        batched: Deprecated: pass ``JacobianEngine(batched=...)`` to `multitask.backward` or the Trainer.
    """

    def __init__(
        self,
        weighting: Weighting | None = None,
        aggregation: Aggregator | None = None,
        *,
        on: Target = "parameters",
        regularizers: Sequence[Regularizer] = (),
        adversary: Adversary | None = None,
        tasks: Sequence[str] | None = None,
        mode: AggregationMode | None = None,
        chunk_size: int | None = None,
        batched: bool | None = None,
    ) -> None:
        super().__init__()
        if adversary is not None and not isinstance(adversary, Adversary):
            raise ConfigError(f"adversary must be a multitask.adversarial.Adversary; got {type(adversary).__name__}")
        wrong = [type(r).__name__ for r in regularizers if not isinstance(r, Regularizer)]
        if wrong:
            raise ConfigError(f"regularizers must be multitask.regularizers.Regularizer objects; got {wrong}")
        self.regularizers = list(regularizers)
        self.weighting = weighting if weighting is not None else EW()
        if aggregation is not None and not isinstance(aggregation, Aggregator):
            raise ConfigError(
                f"aggregation must be a multitask.aggregation.Aggregator; got {type(aggregation).__name__}"
            )
        if mode is not None:
            if mode not in ("jacobian", "gramian", "representation"):
                raise ConfigError(f"mode must be 'jacobian', 'gramian' or 'representation'; got {mode!r}")
            warnings.warn(
                "Strategy(mode=...) is deprecated: use Strategy(on='representation') for the representation, and "
                "JacobianEngine(update_by_backward=True) passed to multitask.backward or the Trainer for 'gramian'",
                DeprecationWarning,
                stacklevel=2,
            )
            on = "representation" if mode == "representation" else "parameters"
        if chunk_size is not None or batched is not None:
            warnings.warn(
                "Strategy(chunk_size=..., batched=...) is deprecated: pass JacobianEngine(chunk_size, batched=...) "
                "to multitask.backward or the Trainer",
                DeprecationWarning,
                stacklevel=2,
            )
        if on not in ("parameters", "representation"):
            raise ConfigError(f"on must be 'parameters' or 'representation'; got {on!r}")
        if (
            aggregation is not None
            and not isinstance(aggregation, GramianAggregator)
            and (on == "representation" or mode == "gramian")
        ):
            raise ConfigError(
                f"{type(aggregation).__name__} needs the full Jacobian (it is not a GramianAggregator); "
                "aggregate on='parameters' without update_by_backward"
            )
        self.aggregation = aggregation
        self.on: Target = on
        #: The engine the deprecated arguments asked for (None: the caller's, or the default one).
        self.legacy_engine = (
            JacobianEngine(chunk_size, batched=batched, update_by_backward=mode == "gramian")
            if mode == "gramian" or chunk_size is not None or batched is not None
            else None
        )
        self.adversary = adversary
        self.task_names: tuple[str, ...] = ()
        if tasks is not None:
            self.setup(tasks)

    @property
    def mode(self) -> AggregationMode:
        """The former single switch: ``"representation"``, ``"gramian"`` or ``"jacobian"`` (read-only)."""
        if self.on == "representation":
            return "representation"
        engine = self.legacy_engine
        return "gramian" if engine is not None and engine.update_by_backward else "jacobian"

    @property
    def is_set_up(self) -> bool:
        """True once `setup` has run (the task names are known and learnable state exists)."""
        return bool(self.task_names)

    def setup(self, task_names: Sequence[str]) -> None:
        """(Re)initialise the parts' state for these tasks; call it before building the optimiser.

        Learnable weightings and adversaries create their parameters here, so an optimiser built
        before this call would never train them. The Trainer calls it itself.
        """
        if isinstance(task_names, str) or not all(isinstance(name, str) for name in task_names):
            raise ConfigError(f"setup needs a list of task names; got {task_names!r}")
        self.weighting.setup(task_names)
        self.task_names = tuple(task_names)
        if self.aggregation is not None:
            self.aggregation.setup(len(task_names))
        if self.adversary is not None:
            self.adversary.setup(task_names)

    def objective(self, losses: Tensor, context: StepContext | None = None) -> tuple[Tensor, Tensor]:
        """The scalar to minimise for per-task losses ``[T]``, and the task weights ``[T]`` it used.

        ``context`` tells which tasks have labels in this step and gives the shared parameters
        (all tasks present and no parameters when None). The weights are computed once and
        returned detached, so that what is logged is exactly what the update used (methods with
        random weights draw them once per step; methods with their own update make it here).
        With an aggregation, this scalar's gradient is used for the non-shared parameters only.
        """
        context = self.weighting.prepare(losses, context)
        weights = self.weighting.weights(losses, context)
        value = weights @ losses + self.weighting.penalty(context).to(losses)
        return value, weights.detach()

    def regularization(self) -> Tensor | None:
        """The sum of the gradient-applied regularisers' terms ``Σ α Ω(θ)`` (None without any)."""
        terms = [r.objective_term() for r in self.regularizers if not r.proximal]
        return torch.stack(terms).sum() if terms else None

    def after_step(self, step_size: float) -> None:
        """Apply the proximal regularisers after an optimiser step of size ``step_size``."""
        for regularizer in self.regularizers:
            if regularizer.proximal:
                regularizer.step(step_size)

    def aggregate(self, jacobian: Tensor, present: Tensor | None = None) -> Tensor:
        """The shared parameters' update ``[P]`` from the Jacobian of the weighted losses ``[T, P]``.

        Rows of absent tasks (``present`` False) are dropped; with no task present the update is zero.
        """
        aggregation = self._require_aggregation()
        if present is None or bool(present.all()):
            whole: Tensor = aggregation(jacobian)
            return whole
        rows = self._present_rows(jacobian.shape[0], present, jacobian.device)
        if rows.numel() == 0:
            return torch.zeros(jacobian.shape[1], dtype=jacobian.dtype, device=jacobian.device)
        update: Tensor = aggregation(jacobian[rows], rows)
        return update

    def aggregation_weights(self, gramian: Tensor, present: Tensor | None = None) -> Tensor:
        """Weights ``[T]`` on the weighted losses from their Gramian ``[T, T]`` (0 for absent tasks)."""
        aggregation = self._require_aggregation()
        if not isinstance(aggregation, GramianAggregator):
            raise ConfigError(f"{type(aggregation).__name__} is not a GramianAggregator; it needs the Jacobian")
        rows = self._present_rows(gramian.shape[0], present, gramian.device)
        result = torch.zeros(gramian.shape[0], dtype=gramian.dtype, device=gramian.device)
        if rows.numel() > 0:
            result[rows] = aggregation.weights(gramian[rows][:, rows], rows).to(result)
        return result

    def on_epoch_end(self, epoch: int, train_losses: Tensor) -> None:
        """Called by the Trainer after each epoch with the mean training loss of each task ``[T]``."""
        self.weighting.on_epoch_end(epoch, train_losses)

    def _require_aggregation(self) -> Aggregator:
        if self.aggregation is None:
            raise ConfigError("this strategy has no aggregation; pass Strategy(aggregation=...)")
        return self.aggregation

    @staticmethod
    def _present_rows(num_tasks: int, present: Tensor | None, device: torch.device) -> Tensor:
        if present is None:
            return torch.arange(num_tasks, device=device)
        if present.shape != (num_tasks,):
            raise ShapeError(f"present must be [num_tasks] = [{num_tasks}]; got {tuple(present.shape)}")
        return present.to(device=device, dtype=torch.bool).nonzero().flatten()
