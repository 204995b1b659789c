"""The shared-private model: a shared encoder next to one private encoder per task; heads read both."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from multitask.errors import ConfigError, DataError, ShapeError
from multitask.models._base import Batch, MultiTaskModel, Transient
from multitask.models._registry import register
from multitask.tasks import Task

if TYPE_CHECKING:
    from multitask.models._registry import ModelParts


class SharedPrivate(MultiTaskModel):
    r"""A shared encoder ``E_s`` and a private encoder ``E_t`` per task; task t's head reads ``[s; h_t]``.

    ``s = E_s(x)``, ``h_t = E_t(x)``, ``ŷ_t = head_t([s; h_t])`` (concatenated on the last dimension).
    The shared features ``s`` are what an adversary plays on (`shared_features`, see
    `multitask.adversarial.Adversary`); the orthogonality constraint keeps the two spaces apart,

    ``L_diff = Σ_t ‖S_tᵀ H_t‖²_F``,

    where the rows of ``S_t`` and ``H_t`` are the shared and private features of the step's samples
    of task t; `regularization` returns ``γ L_diff``, which the Trainer adds to the objective.
    With the adversary this is the ASP-MTL model of Liu et al.; without both terms, their SP-MTL.
    The encoders are any modules mapping the batch's input columns to ``[N, d]`` (MLP, CNN, RNN or
    transformer text encoders); each head's input width is ``d_s + d_t``.

    Args:
        shared: The shared encoder.
        private: ``{task: encoder}``, or a factory called once per task (in task order).
        tasks: The tasks (at least two); their ``head`` modules become this model's heads.
        gamma: γ ≥ 0, the orthogonality weight (Liu et al. use 0.01; 0 turns the term off).
        input_key: Batch column (or columns) passed to every encoder.

    References:
        Liu, Qiu & Huang, "Adversarial Multi-task Learning for Text Classification", ACL 2017. arXiv:1704.05742.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from multitask import Task
        >>> tasks = [Task("a", nn.Linear(8 + 4, 1), "binary"), Task("b", nn.Linear(8 + 4, 1), "binary")]
        >>> model = SharedPrivate(nn.Linear(3, 8), lambda: nn.Linear(3, 4), tasks, gamma=0.01)
        >>> {name: tuple(out.shape) for name, out in model({"x": torch.randn(5, 3)}).items()}
        {'a': (5, 1), 'b': (5, 1)}
        >>> tuple(model.shared_features().shape), model.regularization().shape
        ((5, 8), torch.Size([]))
    """

    has_shared_representation = True

    reads = frozenset({"features", "tokens", "images"})
    hyperparameters = ("orthogonality",)
    parts_used = frozenset({"private", "head"})

    @classmethod
    def from_parts(cls, parts: ModelParts, tasks: Sequence[Task], *, orthogonality: float = 0.01) -> SharedPrivate:
        """The parts' encoder shared, ``parts.private`` (default: another encoder) per task, and each task's head
        rebuilt by ``parts.head`` to read ``[shared; private]`` (`multitask.models.create`)."""
        private = parts.private or parts.encoder
        shared = parts.encoder()
        width = _width(shared) + _width(private())
        head = parts.need("head", "shared_private")
        wide = [dataclasses.replace(task, head=head(task, width)) for task in tasks]
        return cls(shared, private, wide, gamma=orthogonality, input_key=parts.input_key)

    def __init__(
        self,
        shared: nn.Module,
        private: Mapping[str, nn.Module] | Callable[[], nn.Module],
        tasks: Sequence[Task],
        *,
        gamma: float = 0.01,
        input_key: str | Sequence[str] = "x",
    ) -> None:
        super().__init__()
        names = [task.name for task in tasks]
        if len(names) < 2:
            raise ConfigError(f"SharedPrivate needs at least two tasks; got {names}")
        if len(set(names)) != len(names):
            raise ConfigError(f"task names must be unique; got {names}")
        if not (math.isfinite(gamma) and gamma >= 0):
            raise ConfigError(f"gamma (the orthogonality weight) must be a finite number ≥ 0; got {gamma}")
        if isinstance(private, Mapping):
            wrong = sorted(set(private) ^ set(names))
            if wrong:
                raise ConfigError(f"private encoders must be given for exactly the tasks {names}; mismatch: {wrong}")
            encoders = {name: private[name] for name in names}
        else:
            encoders = {name: private() for name in names}
        if len({id(encoder) for encoder in encoders.values()} | {id(shared)}) != len(names) + 1:
            raise ConfigError("each task needs its own private encoder, distinct from the shared one")
        self.task_names = tuple(names)
        self.shared = shared
        self.private = nn.ModuleDict(encoders)
        self.heads = nn.ModuleDict({task.name: task.head for task in tasks})
        self.gamma = float(gamma)
        self.input_keys = (input_key,) if isinstance(input_key, str) else tuple(input_key)
        self._features: Transient[Tensor] = Transient()
        self._terms: Transient[dict[str, Tensor]] = Transient({})
        self.last_orthogonality: Tensor | None = None  # Σ_t ‖S_tᵀ H_t‖²_F at the last `regularization`

    def inputs(self, batch: Batch) -> list[Tensor]:
        """The encoders' positional inputs taken from ``batch``."""
        missing = [key for key in self.input_keys if key not in batch]
        if missing:
            raise DataError(f"batch has no input column(s) {missing}; columns: {sorted(batch)} (set input_key=...)")
        return [batch[key] for key in self.input_keys]

    def forward(self, batch: Batch, tasks: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Outputs ``{task: head_t([E_s(x); E_t(x)])}`` for ``tasks`` (all when None)."""
        tasks = self._check_tasks(tasks)
        inputs = self.inputs(batch)
        shared = _features(self.shared(*inputs), "shared")
        self._features.value = shared
        track = self.training and torch.is_grad_enabled()
        terms = self._terms.value if self._terms.value is not None else {}
        outputs = {}
        for name in tasks:
            private = _features(self.private[name](*inputs), f"private ({name})")
            if private.shape[0] != shared.shape[0]:
                raise ShapeError(
                    f"the private encoder of {name!r} returned {private.shape[0]} rows, not {shared.shape[0]}"
                )
            if track:  # the last training forward pass of each task enters the constraint (logged even when γ = 0)
                term = orthogonality(shared, private)
                terms[name] = term if self.gamma > 0 else term.detach()
            outputs[name] = self.heads[name](torch.cat([shared, private], dim=-1))
        self._terms.value = terms
        return outputs

    def regularization(self) -> Tensor:
        """``γ Σ_t ‖S_tᵀ H_t‖²_F`` over the training forward passes since the last call (then forgotten).

        The unweighted sum is kept in ``last_orthogonality`` (for logging; None when no training
        forward pass came before the call).
        """
        zero = torch.zeros((), device=next(self.parameters()).device)
        terms, self._terms.value = self._terms.value, {}
        if not terms:
            self.last_orthogonality = None
            return zero
        total = torch.stack(list(terms.values())).sum()
        self.last_orthogonality = total.detach()
        return self.gamma * total if self.gamma > 0 else zero

    def shared_features(self) -> Tensor | None:
        """The shared encoder's output in the last forward pass."""
        return self._features.value

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """The shared encoder's parameters."""
        return self.shared.parameters()


def orthogonality(shared: Tensor, private: Tensor) -> Tensor:
    """``‖Sᵀ H‖²_F`` for features ``S [N, d_s]`` and ``H [N, d_h]`` of the same N samples.

    Example:
        >>> orthogonality(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.eye(2))
        tensor(30.)
    """
    return (shared.float().T @ private.float()).square().sum()


def _features(value: object, which: str) -> Tensor:
    if not isinstance(value, Tensor) or value.dim() != 2:
        shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise ShapeError(f"the {which} encoder must return features [N, d]; got {shape}")
    return value


def _width(encoder: nn.Module) -> int:
    """An encoder's output width (its ``out_features``, as the library's encoders have)."""
    width = getattr(encoder, "out_features", None)
    if not isinstance(width, int):
        raise ConfigError(f"shared_private needs encoders with an int out_features; {type(encoder).__name__} has none")
    return width


register("shared_private", SharedPrivate)
