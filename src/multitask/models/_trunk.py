r"""A shared trunk under another sharing scheme: e.g. experts and gates over a pretrained encoder's pooled output."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from torch import Tensor, nn

from multitask.errors import ConfigError, DataError
from multitask.models._base import Batch, MultiTaskModel, Transient


class SharedTrunk(MultiTaskModel):
    r"""``ŷ = model({column: trunk(x)})``: a shared trunk, then any multi-task model on its output.

    Mixtures of experts (MMoE, CGC/PLE, DSelect-k) and cross-stitch read one feature vector per row; to
    put them on text, the trunk (e.g. a `multitask.models.TransformerEncoder`) turns the batch's inputs into
    the pooled representation ``z = trunk(x)`` and the inner model's experts and gates read ``z``
    (``MMoE([MLP(384, [64]) for _ in range(4)], tasks, in_features=384)`` on MiniLM's 384 features).

    Shared parameters: the trunk's and the inner model's shared ones. ``shared_features`` is ``z``; the
    inner model's experts come after ``z``, so not every shared path goes through it and aggregation on the
    representation is not offered (aggregation works on the parameters, Jacobian or Gramian).

    Args:
        trunk: The shared trunk; it receives the batch columns named by ``input_key``.
        model: The multi-task model on the trunk's output, reading the column ``column``.
        input_key: The batch column(s) passed to the trunk.
        column: The column under which the inner model reads the trunk's output (its ``input_key``).
    """

    reads = frozenset({"features", "tokens", "images"})

    def __init__(
        self,
        trunk: nn.Module,
        model: MultiTaskModel,
        *,
        input_key: str | Sequence[str] = "x",
        column: str = "x",
    ) -> None:
        super().__init__()
        if not isinstance(model, MultiTaskModel):
            raise ConfigError(f"SharedTrunk puts a multi-task model on the trunk; got {type(model).__name__}")
        self.trunk, self.model = trunk, model
        self.task_names = model.task_names
        self.input_keys = (input_key,) if isinstance(input_key, str) else tuple(input_key)
        self.column = column
        self._features: Transient[Tensor] = Transient()

    def forward(self, batch: Batch, tasks: Sequence[str] | None = None) -> dict[str, Tensor]:
        """The inner model's outputs on ``{column: trunk(x)}`` for ``tasks`` (all when None)."""
        missing = [key for key in self.input_keys if key not in batch]
        if missing:
            raise DataError(f"batch has no input column(s) {missing}; columns: {sorted(batch)} (set input_key=...)")
        features: Tensor = self.trunk(*[batch[key] for key in self.input_keys])
        self._features.value = features
        outputs: dict[str, Tensor] = self.model({self.column: features}, self._check_tasks(tasks))
        return outputs

    def shared_features(self) -> Tensor | None:
        """The trunk's output in the last forward pass."""
        return self._features.value

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """The trunk's parameters and the inner model's shared ones."""
        yield from self.trunk.parameters()
        yield from self.model.shared_parameters()

    def last_gates(self) -> dict[str, Tensor]:
        """The inner model's gates (MMoE, PLE, DSelect-k)."""
        return self.model.last_gates()

    def regularization(self) -> Tensor:
        """The inner model's penalty (soft sharing's coupling)."""
        return self.model.regularization()
