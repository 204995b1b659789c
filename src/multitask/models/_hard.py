"""Hard parameter sharing: one shared encoder, one head per task."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING

from torch import Tensor, nn

from multitask.errors import ConfigError, DataError
from multitask.models._base import Batch, MultiTaskModel, Transient
from multitask.models._registry import register
from multitask.tasks import Task

if TYPE_CHECKING:
    from multitask.models._registry import ModelParts


class HardSharing(MultiTaskModel):
    r"""A shared encoder followed by one head per task: ``ŷ_t = head_t(encoder(x))``.

    The classic multi-task architecture (Caruana, "Multitask Learning", Machine Learning 1997). It
    serves both kinds of data: with one input for all tasks (every batch carries all labels) and
    with one dataset per task (each batch belongs to one task). When tasks have different input
    spaces, ``adapters`` map each task's input into the encoder's input space first.

    Args:
        encoder: Any module; it receives the batch columns named by ``input_key`` as positional
            arguments and returns the shared representation.
        tasks: The tasks; their ``head`` modules become this model's heads.
        input_key: Batch column (or columns) passed to the encoder.
        adapters: Optional per-task modules applied to the input before the encoder.

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from multitask import Task
        >>> tasks = [Task("a", nn.Linear(8, 1), "binary"), Task("b", nn.Linear(8, 3), "multiclass")]
        >>> model = HardSharing(nn.Sequential(nn.Linear(4, 8), nn.ReLU()), tasks)
        >>> {name: tuple(out.shape) for name, out in model({"x": torch.randn(5, 4)}).items()}
        {'a': (5, 1), 'b': (5, 3)}
    """

    has_shared_representation = True

    reads = frozenset({"features", "tokens", "images"})

    @classmethod
    def from_parts(cls, parts: ModelParts, tasks: Sequence[Task]) -> HardSharing:
        """The parts' encoder, shared by every task's head (`multitask.models.create`)."""
        return cls(parts.encoder(), tasks, input_key=parts.input_key)

    def __init__(
        self,
        encoder: nn.Module,
        tasks: Sequence[Task],
        *,
        input_key: str | Sequence[str] = "x",
        adapters: Mapping[str, nn.Module] | None = None,
    ) -> None:
        super().__init__()
        if not tasks:
            raise ConfigError("HardSharing needs at least one task")
        names = [task.name for task in tasks]
        if len(set(names)) != len(names):
            raise ConfigError(f"task names must be unique; got {names}")
        unknown = sorted(set(adapters or {}) - set(names))
        if unknown:
            raise ConfigError(f"adapters for unknown task(s) {unknown}; tasks are {names}")
        self.task_names = tuple(names)
        self.encoder = encoder
        self.heads = nn.ModuleDict({task.name: task.head for task in tasks})
        self.adapters = nn.ModuleDict(dict(adapters or {}))
        self.input_keys = (input_key,) if isinstance(input_key, str) else tuple(input_key)
        self._features: Transient[Tensor] = Transient()

    def inputs(self, batch: Batch) -> list[Tensor]:
        """The encoder's positional inputs taken from ``batch``."""
        missing = [key for key in self.input_keys if key not in batch]
        if missing:
            raise DataError(f"batch has no input column(s) {missing}; columns: {sorted(batch)} (set input_key=...)")
        return [batch[key] for key in self.input_keys]

    def encode(self, batch: Batch, task: str | None = None) -> Tensor:
        """The shared representation of ``batch`` (after ``task``'s adapter, when it has one)."""
        inputs = self.inputs(batch)
        if task is not None and task in self.adapters:
            inputs = [self.adapters[task](*inputs)]
        elif task is None and len(self.adapters) > 0:
            raise ConfigError(
                "this model has per-task adapters: call it with the batch's task, e.g. model(batch, ['a'])"
            )
        result: Tensor = self.encoder(*inputs)
        return result

    def forward(self, batch: Batch, tasks: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Outputs ``{task: head(encoder(x))}`` for ``tasks`` (all when None)."""
        tasks = self._check_tasks(tasks)
        if len(self.adapters) > 0:
            if len(tasks) != 1:
                raise ConfigError("with per-task adapters each batch belongs to one task: pass tasks=[name]")
            features = self.encode(batch, tasks[0])
        else:
            features = self.encode(batch)
        self._features.value = features
        return {name: self.heads[name](features) for name in tasks}

    def shared_features(self) -> Tensor | None:
        """The encoder's output in the last forward pass."""
        return self._features.value

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """The encoder's parameters."""
        return self.encoder.parameters()


register("hard_sharing", HardSharing)
