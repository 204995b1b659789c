"""MMoE and OMoE: experts shared by all tasks, mixed by one softmax gate per task (or one for all)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from torch import Tensor, nn

from multitask.models._base import Batch, MultiTaskModel
from multitask.models._experts import GateInput, as_shape, check_tasks, common_output_size, mix, stack_outputs
from multitask.models._registry import register
from multitask.tasks import Task

if TYPE_CHECKING:
    from multitask.models._registry import ModelParts


class MMoE(MultiTaskModel):
    r"""Multi-gate mixture of experts: ``ŷ_t = h_t(Σ_e g_t(x)_e f_e(x))`` with ``g_t(x) = softmax(W_t x)``.

    ``E`` experts ``f_e`` (any modules returning ``[N, D]``) are shared by all tasks; each task has
    its own gate ``g_t``, a linear map of the gate input followed by a softmax over the experts, and
    its own head ``h_t`` (the task's ``head``, applied to ``D`` features). With ``shared_gate=True``
    all tasks use one gate: the paper's OMoE baseline. Shared-Bottom, the paper's other baseline,
    is `HardSharing`.

    The gate weights of the last forward pass are kept in ``last_gate_weights`` (``{task: [N, E]}``,
    detached; with one shared gate every task maps to the same tensor); `gate_weights` computes them
    for any batch without running the experts. Their mean over a data set shows which experts each
    task uses.

    Args:
        experts: The expert modules; each maps the input ``[N, *in_features]`` to ``[N, D]``, the same ``D``.
        tasks: The tasks; their heads take ``D`` features.
        in_features: Size (or shape) of one input row; used to check the experts at construction.
        input_key: Batch column of the experts' input.
        gate_key: Batch column of the gates' input; None gates on the experts' input (flattened).
        gate_features: Size of the ``gate_key`` column.
        shared_gate: One gate for all tasks (OMoE) instead of one per task.

    Raises:
        ConfigError: Fewer than two tasks, no expert, experts with different output sizes, or a
            gate input size that does not match the input.

    References:
        Ma et al., "Modeling Task Relationships in Multi-task Learning with Multi-gate
        Mixture-of-Experts", KDD 2018 (Eq. 5-6; OMoE and Shared-Bottom in Sec. 4).

    Example:
        >>> import torch
        >>> from torch import nn
        >>> from multitask import Task
        >>> tasks = [Task("a", nn.Linear(8, 1), "binary"), Task("b", nn.Linear(8, 1), "regression")]
        >>> model = MMoE([nn.Linear(4, 8) for _ in range(3)], tasks, in_features=4)
        >>> outputs = model({"x": torch.randn(5, 4)})
        >>> tuple(outputs["a"].shape), tuple(model.last_gate_weights["b"].shape)
        ((5, 1), (5, 3))
    """

    hyperparameters = ("num_experts",)
    parts_used = frozenset({"expert"})

    @classmethod
    def from_parts(
        cls, parts: ModelParts, tasks: Sequence[Task], *, num_experts: int = 4, shared_gate: bool = False
    ) -> MMoE:
        """``num_experts`` experts of ``parts.expert`` over the input rows (`multitask.models.create`)."""
        expert = parts.need("expert", "OMoE" if shared_gate else "MMoE")
        experts = [expert(parts.in_features) for _ in range(num_experts)]
        return cls(
            experts, tasks, in_features=parts.in_features, shared_gate=shared_gate, input_key=parts.column(cls.__name__)
        )

    def __init__(
        self,
        experts: Sequence[nn.Module],
        tasks: Sequence[Task],
        *,
        in_features: int | Sequence[int],
        input_key: str = "x",
        gate_key: str | None = None,
        gate_features: int | None = None,
        shared_gate: bool = False,
    ) -> None:
        super().__init__()
        name = "OMoE" if shared_gate else "MMoE"
        self.task_names = check_tasks(tasks, name)
        shape = as_shape(in_features, name)
        self.gate_input = GateInput(input_key, shape, gate_key, gate_features, name)
        self.expert_features = common_output_size(experts, shape, name)
        self.experts = nn.ModuleList(experts)
        self.shared_gate = shared_gate
        num_experts, features = len(experts), self.gate_input.gate_features
        gate_names = ["all"] if shared_gate else list(self.task_names)
        self.gates = nn.ModuleDict({g: nn.Linear(features, num_experts) for g in gate_names})
        self.heads = nn.ModuleDict({task.name: task.head for task in tasks})
        self.last_gate_weights: dict[str, Tensor] = {}

    @property
    def num_experts(self) -> int:
        """The number of experts ``E``."""
        return len(self.experts)

    def _gate(self, task: str) -> nn.Module:
        return self.gates["all" if self.shared_gate else task]

    def gate_weights(self, batch: Batch, tasks: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Each task's softmax gate weights ``[N, E]`` on ``batch`` (rows sum to one)."""
        tasks = self._check_tasks(tasks)
        _, gate_input = self.gate_input.inputs(batch)
        return {name: self._gate(name)(gate_input).softmax(dim=-1) for name in tasks}

    def forward(self, batch: Batch, tasks: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Outputs ``{task: h_t(Σ_e g_t(x)_e f_e(x))}`` for ``tasks`` (all when None)."""
        tasks = self._check_tasks(tasks)
        x, _ = self.gate_input.inputs(batch)
        weights = self.gate_weights(batch, tasks)
        expert_outputs = stack_outputs([expert(x) for expert in self.experts])
        self.last_gate_weights = {name: w.detach() for name, w in weights.items()}
        return {name: self.heads[name](mix(weights[name], expert_outputs)) for name in tasks}

    def last_gates(self) -> dict[str, Tensor]:
        """The gate weights of the last forward pass (``last_gate_weights``)."""
        return dict(self.last_gate_weights)

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """The experts' parameters (and the gate's, when all tasks share it)."""
        yield from self.experts.parameters()
        if self.shared_gate:
            yield from self.gates.parameters()


register("mmoe", MMoE)
register("omoe", MMoE, shared_gate=True)
