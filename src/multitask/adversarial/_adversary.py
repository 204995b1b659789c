"""`Adversary`: the task-discriminator game on the shared features, in either of its two training schemes."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal, get_args

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.optim import Optimizer

from multitask.adversarial._discriminator import TaskDiscriminator
from multitask.adversarial._reversal import reverse_gradient
from multitask.adversarial._schedules import Schedule, as_schedule
from multitask.errors import ConfigError, ShapeError

Scheme = Literal["reversal", "alternating"]
SCHEMES: tuple[str, ...] = get_args(Scheme)
OptimizerFactory = Callable[[Iterable[nn.Parameter]], Optimizer]


class Adversary(nn.Module):
    r"""A task discriminator ``D`` played against the shared encoder ``E``; part of a `Strategy`.

    Every sample of a step carries the index ``t`` of the task whose dataset it came from
    (multi-input data). ``D`` reads the shared features ``s = E(x)`` and predicts ``t``; its loss
    is the cross-entropy over the step's ``N`` samples,

    ``L_D = −(1/N) Σ_t Σ_{i ∈ task t} log softmax(D(s_i))_t``,

    and the game is Liu et al.'s adversarial loss (the paper sums where we average):

        min_E max_D  Σ_t Σ_i log softmax(D(E(x_i^t)))_t      (D: tell the tasks apart; E: make it fail)

    so that, at the saddle point, even the best discriminator does no better than chance (``1/T``
    with balanced tasks): the shared features are distributed alike for every task. With the task losses ``L_task``
    (any weighting) and the coefficient ``λ_p`` of ``schedule`` at training progress ``p``, each
    step follows one of two schemes:

    - ``"reversal"`` (Ganin & Lempitsky 2015): one backward pass of
      ``L_task + w · L_D(D(R_λ(s)))`` with the gradient reversal layer ``R_λ``: ``D`` gets
      ``+w ∇_D L_D`` and is trained by the Trainer's optimiser; ``E`` gets ``−w λ_p ∇_E L_D``.
    - ``"alternating"`` (the classic description of the game, as for GANs): first one step of
      ``D``'s own optimiser on ``L_D(D(s.detach()))``; then the model step minimises
      ``L_task − w λ_p L_D(D(s))`` with ``D`` held fixed (its parameters are not in the
      Trainer's optimiser and receive no gradient from the model step).

    The adversarial term enters the objective as a penalty, like a model's regularisation, so it
    composes with any loss weighting and with gradient aggregation (whose shared update then gets
    the term's gradient added). The last step's discriminator loss and accuracy (measured before
    the discriminator's update) are kept in ``last_loss``, ``last_accuracy``; the Trainer logs
    their epoch means as ``adversary/loss`` and ``adversary/accuracy``.

    Args:
        discriminator: ``features [N, d] → logits [N, T]``; any module. None: a `TaskDiscriminator`
            with ``hidden`` layers, created for the tasks by `setup`.
        scheme: ``"reversal"`` or ``"alternating"``.
        weight: ``w ≥ 0``, the adversarial loss weight (Liu et al. use 0.05).
        schedule: The coefficient ``λ_p``: a `Schedule` (e.g. `DANNSchedule`) or a constant ``λ ≥ 0``.
        in_features: Width ``d`` of the shared features for the default discriminator (None: inferred
            at the first step).
        hidden: Hidden layer sizes of the default discriminator.
        optimizer: ``params → Optimizer`` for the discriminator's own steps (``"alternating"`` only);
            Adam with ``lr`` by default. Its state is part of this module's ``state_dict``.
        lr: Learning rate of the default discriminator optimiser.

    References:
        Liu, Qiu & Huang, "Adversarial Multi-task Learning for Text Classification", ACL 2017.
        arXiv:1704.05742. Ganin & Lempitsky, "Unsupervised Domain Adaptation by Backpropagation",
        ICML 2015. arXiv:1409.7495.
    """

    discriminator: nn.Module | None

    def __init__(
        self,
        discriminator: nn.Module | None = None,
        *,
        scheme: Scheme = "reversal",
        weight: float = 1.0,
        schedule: Schedule | float = 1.0,
        in_features: int | None = None,
        hidden: Sequence[int] = (64,),
        optimizer: OptimizerFactory | None = None,
        lr: float = 1e-3,
    ) -> None:
        super().__init__()
        if scheme not in SCHEMES:
            raise ConfigError(f"scheme must be one of {', '.join(SCHEMES)}; got {scheme!r}")
        if not (math.isfinite(weight) and weight >= 0):
            raise ConfigError(f"the adversarial weight must be a finite number ≥ 0; got {weight}")
        if not (math.isfinite(lr) and lr > 0):
            raise ConfigError(f"the discriminator's lr must be positive; got {lr}")
        if optimizer is not None and scheme != "alternating":
            raise ConfigError("a discriminator optimizer is used by scheme='alternating' only")
        if discriminator is not None and not isinstance(discriminator, nn.Module):
            raise ConfigError(f"discriminator must be an nn.Module; got {type(discriminator).__name__}")
        self.scheme: Scheme = scheme
        self.weight = float(weight)
        self.schedule = as_schedule(schedule)
        self.in_features, self.hidden, self.lr = in_features, tuple(hidden), lr
        self._optimizer_factory = optimizer
        self._given = discriminator is not None
        self.discriminator = discriminator
        self.num_tasks = 0
        self._optimizer: Optimizer | None = None
        self._setups = 0
        self.last_loss: Tensor | None = None
        self.last_accuracy: Tensor | None = None
        self.last_count = 0
        self.last_coefficient = math.nan

    def setup(self, task_names: Sequence[str]) -> None:
        """(Re)initialise for these tasks: the default discriminator is created anew, a given one re-initialised
        (from the second call on: each Trainer starts a fresh game), and the discriminator's optimiser built.

        Raises:
            ConfigError: Fewer than two tasks.
        """
        if len(task_names) < 2:
            raise ConfigError(
                f"adversarial training needs at least two tasks (the discriminator tells tasks apart); "
                f"got {list(task_names)}"
            )
        self.num_tasks = len(task_names)
        if not self._given:
            self.discriminator = TaskDiscriminator(self.in_features, self.num_tasks, self.hidden)
        elif self._setups > 0:
            assert self.discriminator is not None
            for module in self.discriminator.modules():
                reset = getattr(module, "reset_parameters", None)
                if callable(reset):
                    reset()
        self._setups += 1
        self._optimizer = None
        if self.scheme == "alternating":
            factory = self._optimizer_factory or (lambda params: torch.optim.Adam(params, lr=self.lr))
            self._optimizer = factory(self._discriminator().parameters())

    def separately_trained_parameters(self) -> list[nn.Parameter]:
        """Parameters the Trainer's optimiser must leave out: the discriminator's with ``"alternating"``."""
        if self.scheme != "alternating":
            return []
        return list(self._discriminator().parameters())

    def coefficient(self, progress: float) -> float:
        """λ at training progress ``p ∈ [0, 1]``."""
        return self.schedule(progress)

    def objective_term(self, features: Sequence[Tensor], task_ids: Sequence[int], progress: float) -> Tensor:
        """The adversarial term of this step's objective (alternating: after the discriminator's own step).

        Args:
            features: The shared features of each group of the step, ``[N_g, d]`` each.
            task_ids: The task index of each group (every sample of a group belongs to its task).
            progress: Training progress ``p ∈ [0, 1]`` for the schedule.

        Returns:
            ``w L_D(D(R_λ(s)))`` (reversal) or ``−w λ L_D(D(s))`` with ``D`` fixed (alternating).
        """
        discriminator = self._discriminator()
        if len(features) != len(task_ids):
            raise ShapeError(f"one task index per feature group expected; got {len(task_ids)} for {len(features)}")
        if not features:
            raise ConfigError("the adversary got no shared features in this step")
        shared = torch.cat([_flat(f) for f in features])
        labels = torch.cat(
            [
                torch.full((f.shape[0],), t, dtype=torch.long, device=shared.device)
                for f, t in zip(features, task_ids, strict=True)
            ]
        )
        lam = self.coefficient(progress)
        self.last_coefficient = lam
        if self.scheme == "reversal":
            logits = self._logits(discriminator, reverse_gradient(shared, lam))
            loss = F.cross_entropy(logits, labels)
            self._record(loss, logits, labels)
            return self.weight * loss
        assert self._optimizer is not None, "setup() builds the discriminator's optimizer"
        logits = self._logits(discriminator, shared.detach())
        loss = F.cross_entropy(logits, labels)
        self._record(loss, logits, labels)
        self._optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        self._optimizer.step()
        self._optimizer.zero_grad(set_to_none=True)
        fixed = {name: p.detach() for name, p in discriminator.named_parameters()}
        fixed.update(dict(discriminator.named_buffers()))
        logits = torch.func.functional_call(discriminator, fixed, (shared,))
        return -self.weight * lam * F.cross_entropy(self._check_logits(logits, shared.shape[0]), labels)

    def _logits(self, discriminator: nn.Module, shared: Tensor) -> Tensor:
        return self._check_logits(discriminator(shared), shared.shape[0])

    def _check_logits(self, logits: Any, count: int) -> Tensor:
        if not isinstance(logits, Tensor) or logits.shape != (count, self.num_tasks):
            shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
            raise ShapeError(f"the discriminator must return logits [N, T] = [{count}, {self.num_tasks}]; got {shape}")
        return logits

    def _record(self, loss: Tensor, logits: Tensor, labels: Tensor) -> None:
        self.last_loss = loss.detach()
        self.last_accuracy = (logits.detach().argmax(dim=1) == labels).float().mean()
        self.last_count = int(labels.shape[0])

    def _discriminator(self) -> nn.Module:
        if self.discriminator is None:
            raise ConfigError(
                "call Adversary.setup(task_names) first (the Trainer does it), to create the discriminator"
            )
        return self.discriminator

    def get_extra_state(self) -> dict[str, Any]:
        """The discriminator optimiser's state (``"alternating"``), so that checkpoints resume it exactly."""
        return {"optimizer": self._optimizer.state_dict() if self._optimizer is not None else None}

    def set_extra_state(self, state: Any) -> None:
        """Restore what `get_extra_state` saved."""
        saved = state.get("optimizer") if isinstance(state, dict) else None
        if (saved is None) != (self._optimizer is None):
            raise ConfigError("the checkpoint's adversary was trained with another scheme; build the same Adversary")
        if self._optimizer is not None and saved is not None:
            self._optimizer.load_state_dict(saved)

    def extra_repr(self) -> str:
        return f"scheme={self.scheme!r}, weight={self.weight}, schedule={self.schedule!r}"


def _flat(features: Tensor) -> Tensor:
    """Features ``[N, ...]`` as float32 ``[N, d]`` (the discriminator reads vectors)."""
    if features.dim() < 2:
        raise ShapeError(f"shared features must be [N, d]; got shape {tuple(features.shape)}")
    return features.reshape(features.shape[0], -1).float()
