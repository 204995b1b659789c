"""The ``model`` section: the sharing scheme, its encoder and the architectures' hyper-parameters."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Literal

from pydantic import (
    Field,
    model_validator,
)
from torch import nn

from multitask import models
from multitask.config._building import refuse_huge_layers
from multitask.config._common import StrictModel
from multitask.config._encoders import (
    BagOfEmbeddingsConfig,
    CNNConfig,
    EncoderConfig,
    MLPConfig,
    TransformerEncoderConfig,
)
from multitask.config._tasks import HeadConfig
from multitask.errors import ConfigError
from multitask.layout import LINEAR, MTL, STL
from multitask.models import MLP, ModelFactory, ModelParts, MultiTaskModel
from multitask.tasks import Task

# The architectures (`multitask.models.names`; the default first) and what each declares it reads.
ARCHITECTURES: tuple[str, ...] = ("hard_sharing", *sorted(set(models.names()) - {"hard_sharing"}))
METHODS: tuple[str, ...] = (STL, MTL, LINEAR, *ARCHITECTURES)
if TYPE_CHECKING:
    Architecture = str
    Method = str
else:  # for pydantic: the names, with the errors and suggestions of a Literal
    Architecture = Literal[ARCHITECTURES]
    Method = Literal[METHODS]
# The model-section fields each architecture reads besides the encoder: the parts it is made of (``expert``,
# ``private``) and its hyper-parameters, as its class declares them (`multitask.models.info`).
ARCHITECTURE_PARAMS: dict[str, tuple[str, ...]] = {
    name: (
        *sorted(models.info(name).parts_used & {"expert", "private"}),
        *models.info(name).hyperparameters,
    )
    for name in ARCHITECTURES
}


def readers_of(kind: str) -> list[str]:
    """The architectures that can read ``kind`` of input (``"features"``, ``"tokens"``, ``"images"``)."""
    return [name for name in ARCHITECTURES if kind in models.info(name).reads]


# Architectures whose models expose shared features (`MultiTaskModel.shared_features`), which an adversary plays on.
SHARED_FEATURES = tuple(name for name in ARCHITECTURES if models.info(name).has_shared_representation)


class ModelConfig(StrictModel):
    """The sharing scheme of the ``mtl`` method, its encoder, and the architectures' hyper-parameters.

    ``encoder`` is the shared trunk (``hard_sharing``, ``shared_private``), each column
    (``cross_stitch``), the network that is copied (``soft_sharing``, ``coupled``) and, unless
    ``expert`` is given, each expert of the mixture-of-experts models. ``shared_private``: ``private``
    is each task's private encoder (default: the encoder's shape), ``orthogonality`` the weight γ of
    ``Σ_t ‖S_tᵀ H_t‖²_F``; the task heads read the shared and private features side by side.
    Architectures named in ``compare.methods`` read the same fields. ``encoder`` (and ``private``) is an
    MLP on feature vectors or, for token ids, a bag of embeddings (``type: bag_of_embeddings``).
    ``task_lora``: per-task low-rank adapters of ``rank`` (scaled by ``alpha / rank``) in the encoder's
    ``target_modules`` (default: ``query`` and ``value`` layers when it has them, else every linear layer),
    ``scheme`` ``lora`` (one adapter per task) or ``mtl_lora`` (shared projections, per-task transforms),
    with the encoder's own weights frozen unless ``freeze_encoder`` is false (`multitask.models.TaskLoRA`).
    """

    type: Architecture = "hard_sharing"
    encoder: EncoderConfig = Field(default_factory=MLPConfig)
    expert: MLPConfig | None = None
    num_experts: int = Field(default=4, gt=0)
    num_task_experts: int = Field(default=1, gt=0)
    num_shared_experts: int = Field(default=1, ge=0)
    num_levels: int = Field(default=2, gt=0)
    k: int = Field(default=2, gt=0)
    lam: float = Field(default=0.01, ge=0, allow_inf_nan=False)
    self_weight: float = Field(default=0.9, ge=0, le=1)
    private: EncoderConfig | None = None
    orthogonality: float = Field(default=0.01, ge=0, allow_inf_nan=False)
    rank: int = Field(default=8, gt=0)
    alpha: float = Field(default=16.0, gt=0, allow_inf_nan=False)
    scheme: Literal["lora", "mtl_lora"] = "lora"
    target_modules: list[str] | None = None
    freeze_encoder: bool = True

    @model_validator(mode="after")
    def _consistent(self) -> ModelConfig:
        if self.expert is not None:
            width, expected = _out_width(self.expert), _out_width(self.encoder)
            if width != expected:
                raise ValueError(
                    f"expert must output the encoder's width ({expected}) so that the task heads fit; "
                    f"its last hidden layer has {width}"
                )
        if self.k > self.num_experts:
            raise ValueError(f"k ({self.k}) must be at most num_experts ({self.num_experts})")
        return self

    def check_used(self, architectures: Collection[str]) -> None:
        """Refuse hyper-parameters that none of ``architectures`` reads (a likely typo or a wrong type)."""
        used = {field for name in architectures for field in ARCHITECTURE_PARAMS[name]}
        fields = type(self).model_fields
        candidates = self.model_fields_set - used - {"type", "encoder"}
        unused = sorted(f for f in candidates if getattr(self, f) != fields[f].get_default(call_default_factory=True))
        if unused:
            readers = {f: [a for a, ps in ARCHITECTURE_PARAMS.items() if f in ps] for f in unused}
            detail = "; ".join(f"model.{f} is read only by {', '.join(readers[f])}" for f in unused)
            trained = ", ".join(sorted(architectures)) or "none"
            raise ValueError(f"{detail}; the trained architectures ({trained}) do not use it")

    def build(
        self,
        architecture: str,
        heads: Mapping[str, HeadConfig],
        num_features: int,
        in_shape: Sequence[int] | None = None,
        input_key: str | Sequence[str] = "x",
    ) -> ModelFactory:
        """``tasks -> model``: ``architecture`` (`multitask.models.create`) made of this section's parts.

        The parts are the encoder, the experts (``expert``, else built like the encoder; MLPs on feature
        vectors), each task's private encoder (``private``, else like the encoder) and, for the architectures
        whose heads read something else than the encoder's output (``mtan``, ``shared_private``), the tasks'
        ``heads`` sections at that width; the hyper-parameters are the fields the architecture declares
        (`multitask.models.info`). ``num_features`` is the encoders' input size (the vocabulary for token ids,
        the channels for images), ``in_shape`` one input row's shape, ``input_key`` the batch column read.
        """
        expert_spec = self.expert or self.encoder
        private_spec = self.private or self.encoder

        def expert(in_features: int) -> MLP:
            if not isinstance(expert_spec, MLPConfig):
                raise ConfigError(
                    f"{architecture} builds MLP experts on feature vectors; model.encoder is {expert_spec.type}"
                )
            return expert_spec.build(in_features)

        def head(task: Task, width: int) -> MLP:  # the task's head section, reading ``width`` features
            return heads[task.name].build(width, _out_features(task.head))

        parts = ModelParts(
            encoder=lambda: self.encoder.build(num_features, in_shape),
            in_features=num_features,
            expert=expert,
            private=lambda: private_spec.build(num_features, in_shape),
            head=head,
            in_shape=tuple(in_shape) if in_shape is not None else None,
            input_key=input_key if isinstance(input_key, str) else tuple(input_key),
        )
        hyperparameters = {name: getattr(self, name) for name in models.info(architecture).hyperparameters}

        @refuse_huge_layers
        def build(tasks: Sequence[Task]) -> MultiTaskModel:
            return models.create(architecture, tasks, parts, **hyperparameters)

        return build


def _out_features(head: nn.Module) -> int:
    """The output width of a head a config built (an `MLP`)."""
    width = getattr(head, "out_features", None)
    if not isinstance(width, int):
        raise ConfigError(f"cannot tell the output width of head {type(head).__name__}")
    return width


def _out_width(encoder: MLPConfig | BagOfEmbeddingsConfig | CNNConfig | TransformerEncoderConfig) -> int | None:
    """The encoder's output width (an MLP without hidden layers: its input's; a transformer's: unknown here)."""
    if isinstance(encoder, TransformerEncoderConfig):
        return None
    if encoder.hidden:
        return encoder.hidden[-1]
    if isinstance(encoder, CNNConfig):
        return encoder.channels[-1]
    return encoder.dim if isinstance(encoder, BagOfEmbeddingsConfig) else None
