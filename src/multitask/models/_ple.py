"""CGC and PLE: task-specific and shared experts, mixed by per-task gates, over one or several levels."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

from torch import Tensor, nn

from multitask.errors import ConfigError
from multitask.models._base import Batch, MultiTaskModel
from multitask.models._experts import (
    GateInput,
    check_count,
    check_tasks,
    common_output_size,
    mix,
    stack_outputs,
)
from multitask.models._registry import register
from multitask.tasks import Task

if TYPE_CHECKING:
    from multitask.models._registry import ModelParts

ExpertFactory = Callable[[int], nn.Module]


class _ExtractionLevel(nn.Module):
    """One CGC block: per-task experts, shared experts, a gate per task (and one for the shared stream)."""

    def __init__(
        self,
        make_expert: ExpertFactory,
        task_names: Sequence[str],
        in_features: int,
        gate_features: int,
        num_task_experts: int,
        num_shared_experts: int,
        has_shared_gate: bool,
        where: str,
    ) -> None:
        super().__init__()
        self.task_experts = nn.ModuleDict(
            {name: nn.ModuleList(make_expert(in_features) for _ in range(num_task_experts)) for name in task_names}
        )
        self.shared_experts = nn.ModuleList(make_expert(in_features) for _ in range(num_shared_experts))
        every = [*self.shared_experts, *(e for experts in self.task_experts.values() for e in experts.children())]
        self.out_features = common_output_size(every, (in_features,), where)
        per_task = num_task_experts + num_shared_experts
        self.task_gates = nn.ModuleDict({name: nn.Linear(gate_features, per_task) for name in task_names})
        all_experts = len(task_names) * num_task_experts + num_shared_experts
        self.shared_gate = nn.Linear(gate_features, all_experts) if has_shared_gate else None

    def forward(
        self,
        task_inputs: dict[str, Tensor],
        shared_input: Tensor,
        task_gate_inputs: dict[str, Tensor],
        shared_gate_input: Tensor,
        tasks: Sequence[str],
    ) -> tuple[dict[str, Tensor], Tensor | None, dict[str, Tensor]]:
        shared = [expert(shared_input) for expert in self.shared_experts]
        own = {name: [expert(task_inputs[name]) for expert in self.task_experts[name].children()] for name in tasks}
        weights = {name: self.task_gates[name](task_gate_inputs[name]).softmax(dim=-1) for name in tasks}
        outputs = {name: mix(weights[name], stack_outputs(own[name] + shared)) for name in tasks}
        shared_output = None
        if self.shared_gate is not None:  # the shared stream mixes every expert of the level (Eq. 7)
            weights["shared"] = self.shared_gate(shared_gate_input).softmax(dim=-1)
            every = [out for name in self.task_experts for out in own[name]] + shared
            shared_output = mix(weights["shared"], stack_outputs(every))
        return outputs, shared_output, weights


class PLE(MultiTaskModel):
    r"""Progressive layered extraction: ``L`` stacked CGC levels with task-specific and shared experts.

    At each level, task ``t`` mixes its own experts and the shared experts with its gate:
    ``h_t = Σ_e g_t(z_t)_e f_e(z_t)`` over ``e ∈ experts_t ∪ shared`` (Eq. 4-5); below the last
    level a shared gate also mixes every expert of the level into the shared stream ``z_s`` that
    feeds the next level's shared experts (Eq. 7). Level 1 reads the input ``x`` (its gates read the
    gate input); level ``l+1`` reads ``z_t = h_t`` and ``z_s`` from level ``l``. Heads read ``h_t``
    of the last level. One level is `CGC`.

    Gate weights of the last forward pass are in ``last_gate_weights``: ``"level{l}/{task}"``
    ``[N, E_t + E_s]`` (the task's own experts first, then the shared ones) and, below the last
    level, ``"level{l}/shared"`` ``[N, T·E_t + E_s]`` (experts of tasks in order, then shared), with
    ``l`` counted from 1.

    Shared parameters: the shared experts and gates, the task experts below the last level (the
    shared gate mixes them), and the task gates below the last two levels (they feed those experts).

    Args:
        expert: ``in_features -> module``: builds one expert mapping ``[N, in_features]`` to
            ``[N, D]`` (called for every expert of every level; later levels get ``D``).
        tasks: The tasks; their heads take ``D`` features.
        in_features: Size of one input row.
        num_task_experts: Experts per task and level.
        num_shared_experts: Shared experts per level.
        num_levels: Extraction levels.
        input_key: Batch column of the input.
        gate_key: Batch column of the first level's gate input; None gates on the input.
        gate_features: Size of the ``gate_key`` column.

    References:
        Tang et al., "Progressive Layered Extraction (PLE): A Novel Multi-Task Learning (MTL)
        Model for Personalized Recommendations", RecSys 2020 (CGC: Sec. 4.2; PLE: Sec. 4.3).
    """

    hyperparameters = ("num_task_experts", "num_shared_experts", "num_levels")
    parts_used = frozenset({"expert"})

    @classmethod
    def from_parts(
        cls,
        parts: ModelParts,
        tasks: Sequence[Task],
        *,
        num_task_experts: int = 1,
        num_shared_experts: int = 1,
        num_levels: int = 2,
    ) -> PLE:
        """Levels of ``parts.expert`` experts over the input rows; one level is CGC (`multitask.models.create`)."""
        return PLE(
            parts.need("expert", "CGC" if num_levels == 1 else "PLE"),
            tasks,
            in_features=parts.in_features,
            num_task_experts=num_task_experts,
            num_shared_experts=num_shared_experts,
            num_levels=num_levels,
            input_key=parts.column(cls.__name__),
        )

    def __init__(
        self,
        expert: ExpertFactory,
        tasks: Sequence[Task],
        *,
        in_features: int,
        num_task_experts: int = 1,
        num_shared_experts: int = 1,
        num_levels: int = 2,
        input_key: str = "x",
        gate_key: str | None = None,
        gate_features: int | None = None,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        self.task_names = check_tasks(tasks, name)
        check_count(name, in_features=in_features, num_task_experts=num_task_experts, num_levels=num_levels)
        if num_shared_experts < 0:
            raise ConfigError(f"{name}: num_shared_experts must be 0 or more; got {num_shared_experts}")
        self.gate_input = GateInput(input_key, (in_features,), gate_key, gate_features, name)
        levels: list[_ExtractionLevel] = []
        size, gate_size = in_features, self.gate_input.gate_features
        for level in range(num_levels):
            block = _ExtractionLevel(
                expert,
                self.task_names,
                size,
                gate_size,
                num_task_experts,
                num_shared_experts,
                has_shared_gate=level < num_levels - 1,
                where=f"{name} level {level + 1}",
            )
            levels.append(block)
            size = gate_size = block.out_features
        self.levels = nn.ModuleList(levels)
        self.expert_features = size
        self.heads = nn.ModuleDict({task.name: task.head for task in tasks})
        self.last_gate_weights: dict[str, Tensor] = {}

    def forward(self, batch: Batch, tasks: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Outputs ``{task: h_t(last level's mixture for t)}`` for ``tasks`` (all when None)."""
        tasks = self._check_tasks(tasks)
        x, gate = self.gate_input.inputs(batch)
        task_inputs = dict.fromkeys(self.task_names, x)
        task_gates = dict.fromkeys(self.task_names, gate)
        shared_input, shared_gate = x, gate
        recorded: dict[str, Tensor] = {}
        for index, block in enumerate(self.levels):
            is_last = index == len(self.levels) - 1
            wanted = tasks if is_last else self.task_names
            task_inputs, shared_output, weights = block(task_inputs, shared_input, task_gates, shared_gate, wanted)
            recorded.update({f"level{index + 1}/{key}": w.detach() for key, w in weights.items()})
            task_gates = task_inputs
            if shared_output is not None:
                shared_input = shared_gate = shared_output
        self.last_gate_weights = recorded
        return {name: self.heads[name](task_inputs[name]) for name in tasks}

    def last_gates(self) -> dict[str, Tensor]:
        """The gate weights of the last forward pass (``last_gate_weights``)."""
        return dict(self.last_gate_weights)

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """Shared experts and gates; task experts below the last level; task gates below the last two."""
        last = len(self.levels) - 1
        for index, block in enumerate(self.levels):
            assert isinstance(block, _ExtractionLevel)
            yield from block.shared_experts.parameters()
            if block.shared_gate is not None:
                yield from block.shared_gate.parameters()
            if index < last:
                yield from block.task_experts.parameters()
            if index < last - 1:
                yield from block.task_gates.parameters()


class CGC(PLE):
    r"""Customized gate control: one `PLE` level, task-specific plus shared experts, a gate per task.

    ``ŷ_t = h_t(Σ_e g_t(x)_e f_e(x))`` over ``e ∈ experts_t ∪ shared`` with ``g_t(x) = softmax(W_t x)``
    (Eq. 4-5). Gate weights: ``last_gate_weights["level1/{task}"]`` ``[N, E_t + E_s]``.

    Args:
        expert: ``in_features -> module`` building one expert ``[N, in_features] -> [N, D]``.
        tasks: The tasks; their heads take ``D`` features.
        in_features: Size of one input row.
        num_task_experts: Experts per task.
        num_shared_experts: Shared experts.
        input_key: Batch column of the input.
        gate_key: Batch column of the gates' input; None gates on the input.
        gate_features: Size of the ``gate_key`` column.

    References:
        Tang et al., "Progressive Layered Extraction (PLE)", RecSys 2020, Sec. 4.2.
    """

    def __init__(
        self,
        expert: ExpertFactory,
        tasks: Sequence[Task],
        *,
        in_features: int,
        num_task_experts: int = 1,
        num_shared_experts: int = 1,
        input_key: str = "x",
        gate_key: str | None = None,
        gate_features: int | None = None,
    ) -> None:
        super().__init__(
            expert,
            tasks,
            in_features=in_features,
            num_task_experts=num_task_experts,
            num_shared_experts=num_shared_experts,
            num_levels=1,
            input_key=input_key,
            gate_key=gate_key,
            gate_features=gate_features,
        )


register("ple", PLE)
register("cgc", PLE, hyperparameters=("num_task_experts", "num_shared_experts"), num_levels=1)
