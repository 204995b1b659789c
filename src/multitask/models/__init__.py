"""Sharing schemes: how tasks share parameters.

Every architecture is also created by name from the same parts: `names()`, `info(name)` and
`create(name, tasks, ModelParts(...), **hyperparameters)` (as timm's ``create_model``).

Shared-Bottom (the mixture-of-experts papers' baseline) is `HardSharing`.
"""

from multitask.models._base import MultiTaskModel
from multitask.models._coupled import CoupledNetworks
from multitask.models._cross_stitch import CrossStitch
from multitask.models._dselect_k import DSelectK
from multitask.models._encoders import ConvNet, LeNet, RecommenderEncoder
from multitask.models._hard import HardSharing
from multitask.models._lora import LoRAScheme, MultiTaskLoRALinear, TaskLoRA
from multitask.models._mlp import MLP
from multitask.models._mmoe import MMoE
from multitask.models._mtan import MTAN
from multitask.models._ple import CGC, PLE
from multitask.models._registry import ModelFactory, ModelInfo, ModelParts, create, info, names
from multitask.models._shared_private import SharedPrivate
from multitask.models._soft import SoftSharedConv2d, SoftSharedLinear, SoftSharing, soft_sharing_penalty
from multitask.models._transformer import TransformerEncoder, load_tokenizer, pretrained_minilm
from multitask.models._trunk import SharedTrunk

__all__ = [
    "CGC",
    "MLP",
    "MTAN",
    "PLE",
    "ConvNet",
    "CoupledNetworks",
    "CrossStitch",
    "DSelectK",
    "HardSharing",
    "LeNet",
    "LoRAScheme",
    "MMoE",
    "ModelFactory",
    "ModelInfo",
    "ModelParts",
    "MultiTaskLoRALinear",
    "MultiTaskModel",
    "RecommenderEncoder",
    "SharedPrivate",
    "SharedTrunk",
    "SoftSharedConv2d",
    "SoftSharedLinear",
    "SoftSharing",
    "TaskLoRA",
    "TransformerEncoder",
    "create",
    "info",
    "load_tokenizer",
    "names",
    "pretrained_minilm",
    "soft_sharing_penalty",
]
