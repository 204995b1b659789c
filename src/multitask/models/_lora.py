r"""Per-task low-rank adapters inside a shared encoder: each task runs the encoder with its own adapter.

A frozen (or fine-tuned) backbone is shared by every task; selected linear layers of it get a low-rank
update per task, so each task has its own parameters *inside* the encoder at a small cost:

- ``scheme="lora"``: one LoRA adapter per task (Hu et al., "LoRA: Low-Rank Adaptation of Large Language
  Models", ICLR 2022, applied per task as in the task-specific modules of MTLoRA, Agiza et al., CVPR 2024):
  ``h_t = W x + (α / r) B_t A_t x`` with ``A_t ∈ R^{r×d_in}``, ``B_t ∈ R^{d_out×r}``. The adapters are
  task-specific; the shared parameters are the backbone's trainable ones (none when it is frozen).
- ``scheme="mtl_lora"``: MTL-LoRA (Yang et al., "MTL-LoRA: Low-Rank Adaptation for Multi-Task Learning",
  AAAI 2025): ``h_t = W x + (α / r) Σ_{i=1}^{n} softmax(ω_t / τ)_i B_i Λ_t A x``, a shared down-projection
  ``A``, ``n`` shared up-projections ``B_i`` mixed by task weights ``ω_t ∈ R^n`` (temperature ``τ``), and a
  task-specific ``Λ_t ∈ R^{r×r}`` in the low-rank space. ``A`` and the ``B_i`` are shared (with a frozen
  backbone: the adapters are the only shared parameters, so gradient aggregation acts on them alone);
  ``Λ_t`` and ``ω_t`` are task-specific.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor, nn

from multitask.errors import ConfigError, DataError
from multitask.models._base import Batch, MultiTaskModel
from multitask.models._registry import register
from multitask.tasks import Task

if TYPE_CHECKING:
    from multitask.models._registry import ModelParts

LoRAScheme = Literal["lora", "mtl_lora"]
#: The linear layers adapted by default: the attention's query and value projections of BERT-style encoders
#: (the LoRA paper's choice, W_q and W_v).
DEFAULT_TARGETS: tuple[str, ...] = ("query", "value")


class MultiTaskLoRALinear(nn.Module):
    r"""A linear layer with one low-rank update per task: ``y = W x + b + (α / r) ΔW_t x`` for the active task.

    ``ΔW_t = B_t A_t`` (``scheme="lora"``) or ``Σ_i softmax(ω_t / τ)_i B_i Λ_t A`` (``"mtl_lora"``; see the
    module docstring). Up-projections start at zero, so every task's output equals the base layer's until
    training moves them (the LoRA initialisation); ``A`` is drawn like a linear layer's weight (Kaiming
    uniform), ``Λ_t`` starts at the identity. The MTL-LoRA mixing weights ``ω_t`` are drawn from ``N(0, 1)``:
    with ``B_i = 0`` and equal weights the ``B_i`` would get equal gradients and stay equal for ever.
    With no active task (`active` None) the layer is the base layer.
    """

    def __init__(
        self,
        base: nn.Linear,
        task_names: Sequence[str],
        *,
        rank: int,
        alpha: float,
        scheme: LoRAScheme = "lora",
        up_projections: int = 3,
        temperature: float = 0.5,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if rank <= 0 or up_projections <= 0 or temperature <= 0 or alpha <= 0:
            raise ConfigError(
                f"rank, alpha, up_projections and temperature must be positive; got {rank}, {alpha}, "
                f"{up_projections}, {temperature}"
            )
        self.base = base
        self.scheme: LoRAScheme = scheme
        self.rank, self.scaling, self.temperature = rank, alpha / rank, temperature
        self.dropout = nn.Dropout(dropout)
        self.active: str | None = None
        d_in, d_out = base.in_features, base.out_features
        if scheme == "lora":
            self.down = nn.ParameterDict({t: nn.Parameter(_kaiming(rank, d_in)) for t in task_names})
            self.up = nn.ParameterDict({t: nn.Parameter(torch.zeros(d_out, rank)) for t in task_names})
        elif scheme == "mtl_lora":
            self.shared_down = nn.Parameter(_kaiming(rank, d_in))
            self.shared_up = nn.Parameter(torch.zeros(up_projections, d_out, rank))
            self.transform = nn.ParameterDict({t: nn.Parameter(torch.eye(rank)) for t in task_names})
            self.mixing = nn.ParameterDict({t: nn.Parameter(torch.randn(up_projections)) for t in task_names})
        else:
            raise ConfigError(f"unknown adapter scheme {scheme!r}; allowed: lora, mtl_lora")

    def forward(self, x: Tensor) -> Tensor:
        """The base layer's output plus the active task's low-rank update."""
        y: Tensor = self.base(x)
        task = self.active
        if task is None:
            return y
        h: Tensor = self.dropout(x)
        delta: Tensor
        if self.scheme == "lora":
            delta = h @ self.down[task].T @ self.up[task].T
        else:
            low = h @ self.shared_down.T @ self.transform[task].T  # Λ_t A x, [..., r]
            weights = torch.softmax(self.mixing[task] / self.temperature, dim=0)
            up = torch.einsum("i,ior->or", weights, self.shared_up)  # Σ_i w_i B_i
            delta = low @ up.T
        return y + self.scaling * delta

    def shared_adapter_parameters(self) -> Iterator[nn.Parameter]:
        """The adapter parameters every task uses (MTL-LoRA's ``A`` and ``B_i``; none for per-task LoRA)."""
        if self.scheme == "mtl_lora":
            yield self.shared_down
            yield self.shared_up


def _kaiming(rows: int, columns: int) -> Tensor:
    weight = torch.empty(rows, columns)
    nn.init.kaiming_uniform_(weight, a=math.sqrt(5))
    return weight


class TaskLoRA(MultiTaskModel):
    r"""A shared encoder with per-task low-rank adapters in its linear layers, one head per task.

    ``ŷ_t = head_t(encoder_t(x))``, where ``encoder_t`` is the shared encoder with task t's adapter active
    in every adapted layer (`MultiTaskLoRALinear`; the schemes and their papers are in the module
    docstring): each task runs the encoder once with its own adapter. With ``freeze_encoder`` the
    backbone's weights stay as they are (bit-identical) and only the adapters and heads train.

    Shared parameters (what gradient aggregation acts on): the encoder's trainable weights and, for
    ``mtl_lora``, the shared down- and up-projections. Task-specific: per-task LoRA adapters, MTL-LoRA's
    ``Λ_t`` and ``ω_t``, the heads. The tasks do not read one shared representation (each has its own
    encoder pass), so aggregation works on the parameters (Jacobian or Gramian), not on the representation.

    Args:
        encoder: Any module; it receives the batch columns named by ``input_key`` and contains the linear
            layers to adapt (e.g. a `multitask.models.TransformerEncoder`).
        tasks: The tasks; their heads read the encoder's output.
        rank: ``r``, the adapters' rank.
        alpha: ``α``; the update is scaled by ``α / r``.
        scheme: ``"lora"`` (one adapter per task) or ``"mtl_lora"``.
        target_modules: Adapt the ``nn.Linear`` layers whose name (the last part of its dotted path) is one of
            these; None: the attention's ``query`` and ``value`` projections when the encoder has layers of those
            names (BERT-style encoders; the LoRA paper's choice), else every linear layer of the encoder.
        up_projections: ``n``, MTL-LoRA's number of shared up-projections.
        temperature: ``τ``, MTL-LoRA's softmax temperature.
        dropout: Dropout on the adapters' input.
        freeze_encoder: Freeze every weight of the encoder that is not an adapter's.
        input_key: Batch column (or columns) passed to the encoder.

    Raises:
        ConfigError: No linear layer of the encoder matches ``target_modules`` (the message lists them).
    """

    reads = frozenset({"features", "tokens"})
    hyperparameters = ("rank", "alpha", "scheme", "target_modules", "freeze_encoder")

    @classmethod
    def from_parts(
        cls,
        parts: ModelParts,
        tasks: Sequence[Task],
        *,
        rank: int = 8,
        alpha: float = 16.0,
        scheme: LoRAScheme = "lora",
        target_modules: Sequence[str] | None = None,
        freeze_encoder: bool = True,
    ) -> TaskLoRA:
        """The parts' encoder with adapters in its ``target_modules`` (see `TaskLoRA`)."""
        return cls(
            parts.encoder(),
            tasks,
            rank=rank,
            alpha=alpha,
            scheme=scheme,
            target_modules=target_modules,
            freeze_encoder=freeze_encoder,
            input_key=parts.input_key,
        )

    def __init__(
        self,
        encoder: nn.Module,
        tasks: Sequence[Task],
        *,
        rank: int = 8,
        alpha: float = 16.0,
        scheme: LoRAScheme = "lora",
        target_modules: Sequence[str] | None = None,
        up_projections: int = 3,
        temperature: float = 0.5,
        dropout: float = 0.0,
        freeze_encoder: bool = True,
        input_key: str | Sequence[str] = "x",
    ) -> None:
        super().__init__()
        names = [task.name for task in tasks]
        if not names or len(set(names)) != len(names):
            raise ConfigError(f"TaskLoRA needs at least one task and unique task names; got {names}")
        self.task_names = tuple(names)
        if freeze_encoder:
            for parameter in encoder.parameters():
                parameter.requires_grad_(False)

        def adapter(layer: nn.Linear) -> MultiTaskLoRALinear:
            return MultiTaskLoRALinear(
                layer,
                names,
                rank=rank,
                alpha=alpha,
                scheme=scheme,
                up_projections=up_projections,
                temperature=temperature,
                dropout=dropout,
            )

        self.adapted = _insert_adapters(encoder, target_modules, adapter)
        self.encoder = encoder
        self.heads = nn.ModuleDict({task.name: task.head for task in tasks})
        self.input_keys = (input_key,) if isinstance(input_key, str) else tuple(input_key)

    def encode(self, batch: Batch, task: str) -> Tensor:
        """The encoder's output for ``batch`` with ``task``'s adapters active."""
        missing = [key for key in self.input_keys if key not in batch]
        if missing:
            raise DataError(f"batch has no input column(s) {missing}; columns: {sorted(batch)} (set input_key=...)")
        for layer in self.adapted:
            layer.active = task
        try:
            features: Tensor = self.encoder(*[batch[key] for key in self.input_keys])
        finally:
            for layer in self.adapted:
                layer.active = None
        return features

    def forward(self, batch: Batch, tasks: Sequence[str] | None = None) -> dict[str, Tensor]:
        """Outputs ``{task: head_t(encoder_t(x))}`` for ``tasks`` (all when None), one encoder pass each."""
        return {name: self.heads[name](self.encode(batch, name)) for name in self._check_tasks(tasks)}

    def shared_parameters(self) -> Iterator[nn.Parameter]:
        """The encoder's trainable weights that are not per-task (and MTL-LoRA's shared projections)."""
        per_task = {id(p) for p in self._task_adapter_parameters()}
        return (p for p in self.encoder.parameters() if p.requires_grad and id(p) not in per_task)

    def adapter_parameters(self) -> Iterator[nn.Parameter]:
        """Every adapter parameter (shared and per task)."""
        for layer in self.adapted:
            yield from (p for name, p in layer.named_parameters() if not name.startswith("base."))

    def _task_adapter_parameters(self) -> Iterator[nn.Parameter]:
        shared = {id(p) for layer in self.adapted for p in layer.shared_adapter_parameters()}
        return (p for p in self.adapter_parameters() if id(p) not in shared)


def _insert_adapters(
    encoder: nn.Module, targets: Sequence[str] | None, adapter: Callable[[nn.Linear], MultiTaskLoRALinear]
) -> list[MultiTaskLoRALinear]:
    """Replace the encoder's chosen ``nn.Linear`` layers by their adapted wrappers, in place (see `TaskLoRA`)."""
    linear = [(name, m) for name, m in encoder.named_modules() if isinstance(m, nn.Linear) and name]
    last = {name: name.rsplit(".", 1)[-1] for name, _ in linear}
    if targets is None:
        defaults = [(name, m) for name, m in linear if last[name] in DEFAULT_TARGETS]
        chosen = defaults or linear
    else:
        chosen = [(name, m) for name, m in linear if last[name] in targets]
    if not chosen:
        available = sorted(set(last.values())) or ["none"]
        raise ConfigError(
            f"no linear layer of the encoder is named {list(targets or [])}; its linear layers are named "
            f"{available} (set target_modules, or leave it unset for the defaults)"
        )
    adapted = []
    for name, module in chosen:
        parent_name, _, attribute = name.rpartition(".")
        parent = encoder.get_submodule(parent_name) if parent_name else encoder
        wrapper = adapter(module)
        setattr(parent, attribute, wrapper)
        adapted.append(wrapper)
    return adapted


register("task_lora", TaskLoRA)
