"""DSelect-k: experts shared by all tasks, each task choosing k of them with a smooth, sparse gate."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor, nn

from multitask.errors import ConfigError
from multitask.models._base import Batch, MultiTaskModel
from multitask.models._experts import GateInput, as_shape, check_tasks, common_output_size, mix, stack_outputs
from multitask.models._registry import register
from multitask.tasks import Task

if TYPE_CHECKING:
    from multitask.models._registry import ModelParts


def smooth_step(t: Tensor, gamma: float) -> Tensor:
    r"""The cubic smooth step: 0 for ``t ≤ −γ/2``, 1 for ``t ≥ γ/2``, ``−2t³/γ³ + 3t/(2γ) + 1/2`` between (Eq. 4)."""
    inner = -2.0 / gamma**3 * t**3 + 1.5 / gamma * t + 0.5
    return torch.where(t <= -gamma / 2, torch.zeros_like(t), torch.where(t >= gamma / 2, torch.ones_like(t), inner))


class _SelectGate(nn.Module):
    """One task's DSelect-k gate: ``k`` single-expert selectors, combined by a softmax over them."""

    def __init__(self, gate_features: int, num_experts: int, k: int, gamma: float) -> None:
        super().__init__()
        self.num_bits = max(1, math.ceil(math.log2(num_experts)))
        self.k, self.num_experts, self.gamma = k, num_experts, gamma
        self.selectors = nn.Linear(gate_features, k * self.num_bits)
        self.mixture = nn.Linear(gate_features, k)
        codes = torch.arange(2**self.num_bits)
        self.register_buffer("codes", (codes[:, None] >> torch.arange(self.num_bits)[None, :] & 1).float())  # [2^m, m]
        # code c selects expert c mod E: with E not a power of two no mass is lost on codes that name no expert
        self.register_buffer("assignment", nn.functional.one_hot(codes % num_experts, num_experts).float())

    def forward(self, gate_input: Tensor) -> tuple[Tensor, Tensor]:
        """Gate weights ``[N, E]`` and each selector's distribution over experts ``[N, k, E]``."""
        z = smooth_step(self.selectors(gate_input).view(-1, self.k, self.num_bits), self.gamma)  # [N, k, m]
        codes: Tensor = self.codes  # type: ignore[assignment]
        # r_i(c) = Π_j (s_ij if bit_j(c) else 1 − s_ij): a product of Bernoullis, so Σ_c r_i(c) = 1 over the 2^m codes
        factors = codes * z[:, :, None, :] + (1 - codes) * (1 - z[:, :, None, :])  # [N, k, 2^m, m]
        assignment: Tensor = self.assignment  # type: ignore[assignment]
        selected = factors.prod(dim=-1) @ assignment  # [N, k, E]
        weights = torch.einsum("nk,nke->ne", self.mixture(gate_input).softmax(dim=-1), selected)
        return weights, selected


class DSelectK(MultiTaskModel):
    r"""Multi-task mixture of experts whose gates select ``k`` experts per task, differentiably.

    Each task's gate holds ``k`` selectors. Selector ``i`` maps the gate input to ``m = ⌈log₂ E⌉``
    numbers, squashes them with the cubic smooth step ``S`` and reads them as a soft binary code:
    ``r_i(e) = Π_j S(z_ij)^{b_j(e)} (1 − S(z_ij))^{1 − b_j(e)}`` where ``b(e)`` is expert ``e``'s code.
    The gate is ``g_t = Σ_i softmax(α)_i r_i`` (Eq. 5-7, per-example gating), and
    ``ŷ_t = h_t(Σ_e g_t(x)_e f_e(x))``. ``S`` is exactly 0 or 1 outside ``[−γ/2, γ/2]``, so trained
    gates become sparse: each task uses at most ``k`` experts. With ``E`` not a power of two,
    code ``c ≥ E`` selects expert ``c mod E`` (our choice; it keeps every selector a distribution
    over real experts). ``entropy_weight`` adds the paper's entropy penalty on the selectors (Sec. 3.3),
    ``λ Σ_i H(r_i)`` averaged over the batch, through `regularization`, pushing them to binary.

    Gate weights of the last forward pass: ``last_gate_weights`` ``{task: [N, E]}``.

    Args:
        experts: The expert modules; each maps ``[N, *in_features]`` to ``[N, D]``, the same ``D``.
        tasks: The tasks; their heads take ``D`` features.
        in_features: Size (or shape) of one input row.
        k: Selectors (the most experts a task uses), ``1 ≤ k ≤ E``.
        gamma: Width of the smooth step's transition.
        entropy_weight: Weight of the selectors' entropy penalty (0: none).
        input_key: Batch column of the experts' input.
        gate_key: Batch column of the gates' input; None gates on the input.
        gate_features: Size of the ``gate_key`` column.

    References:
        Hazimeh et al., "DSelect-k: Differentiable Selection in the Mixture of Experts with
        Applications to Multi-Task Learning", NeurIPS 2021. arXiv:2106.03760.
    """

    hyperparameters = ("num_experts", "k")
    parts_used = frozenset({"expert"})

    @classmethod
    def from_parts(cls, parts: ModelParts, tasks: Sequence[Task], *, num_experts: int = 4, k: int = 2) -> DSelectK:
        """``num_experts`` experts of ``parts.expert``, ``k`` selected per task (`multitask.models.create`)."""
        expert = parts.need("expert", "DSelect-k")
        experts = [expert(parts.in_features) for _ in range(num_experts)]
        return cls(experts, tasks, in_features=parts.in_features, k=k, input_key=parts.column(cls.__name__))

    def __init__(
        self,
        experts: Sequence[nn.Module],
        tasks: Sequence[Task],
        *,
        in_features: int | Sequence[int],
        k: int = 2,
        gamma: float = 1.0,
        entropy_weight: float = 0.0,
        input_key: str = "x",
        gate_key: str | None = None,
        gate_features: int | None = None,
    ) -> None:
        super().__init__()
        self.task_names = check_tasks(tasks, "DSelectK")
        shape = as_shape(in_features, "DSelectK")
        self.gate_input = GateInput(input_key, shape, gate_key, gate_features, "DSelectK")
        self.expert_features = common_output_size(experts, shape, "DSelectK")
        if not 1 <= k <= len(experts):
            raise ConfigError(f"DSelectK: k must be between 1 and the number of experts ({len(experts)}); got {k}")
        if not gamma > 0 or not entropy_weight >= 0:
            raise ConfigError(f"DSelectK: gamma must be > 0 and entropy_weight ≥ 0; got {gamma}, {entropy_weight}")
        self.experts = nn.ModuleList(experts)
        self.entropy_weight = entropy_weight
        features = self.gate_input.gate_features
        self.gates = nn.ModuleDict({name: _SelectGate(features, len(experts), k, gamma) for name in self.task_names})
        self.heads = nn.ModuleDict({task.name: task.head for task in tasks})
        self.last_gate_weights: dict[str, Tensor] = {}
        self._entropy: Tensor | None = None

    def gate_weights(self, batch: Batch, tasks: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Each task's gate weights ``[N, E]`` on ``batch`` (rows sum to one, at most ``k`` non-zero once trained)."""
        tasks = self._check_tasks(tasks)
        _, gate_input = self.gate_input.inputs(batch)
        return {name: self.gates[name](gate_input)[0] for name in tasks}

    def forward(self, batch: Batch, tasks: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Outputs ``{task: h_t(Σ_e g_t(x)_e f_e(x))}`` for ``tasks`` (all when None)."""
        tasks = self._check_tasks(tasks)
        x, gate_input = self.gate_input.inputs(batch)
        gated = {name: self.gates[name](gate_input) for name in tasks}
        expert_outputs = stack_outputs([expert(x) for expert in self.experts])
        self.last_gate_weights = {name: weights.detach() for name, (weights, _) in gated.items()}
        if self.entropy_weight > 0:
            entropies = [-(r * r.clamp_min(1e-12).log()).sum(dim=-1).sum(dim=-1).mean() for _, r in gated.values()]
            self._entropy = torch.stack(entropies).sum()
        return {name: self.heads[name](mix(weights, expert_outputs)) for name, (weights, _) in gated.items()}

    def regularization(self) -> Tensor:
        """``entropy_weight`` times the selectors' entropy in the last forward pass (zero when off)."""
        if self._entropy is None or not self.training:
            return super().regularization()
        return self.entropy_weight * self._entropy

    def last_gates(self) -> dict[str, Tensor]:
        """The gate weights of the last forward pass (``last_gate_weights``)."""
        return dict(self.last_gate_weights)

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """The experts' parameters."""
        return self.experts.parameters()


register("dselect_k", DSelectK)
