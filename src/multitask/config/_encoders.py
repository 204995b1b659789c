"""The encoder sections: an MLP on feature vectors, a bag of embeddings on token ids, a CNN on images."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Discriminator,
    Field,
    Tag,
    field_validator,
)

from multitask.adversarial import BagOfEmbeddings
from multitask.config._building import refuse_huge_layers
from multitask.config._common import LayerSizes, StrictModel
from multitask.errors import ConfigError
from multitask.models import MLP, ConvNet, TransformerEncoder, load_tokenizer, pretrained_minilm


class MLPConfig(StrictModel):
    """A multi-layer perceptron: hidden layer sizes and dropout."""

    type: Literal["mlp"] = "mlp"
    hidden: LayerSizes = Field(default_factory=lambda: [128, 64])
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)

    @refuse_huge_layers
    def build(self, num_features: int, in_shape: Sequence[int] | None = None) -> MLP:
        """``MLP(num_features, hidden, dropout=dropout)``, its output the last hidden layer (``in_shape`` unused)."""
        return MLP(num_features, self.hidden, None, self.dropout)


class BagOfEmbeddingsConfig(StrictModel):
    """A text encoder over token ids (`multitask.adversarial.BagOfEmbeddings`): the mean word vector, then an MLP.

    The vocabulary size is the data's (``movie_reviews``: the ids of its training vocabulary).
    """

    type: Literal["bag_of_embeddings"]
    dim: int = Field(default=64, gt=0)
    hidden: LayerSizes = Field(default_factory=lambda: [64])
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)

    @refuse_huge_layers
    def build(self, num_features: int, in_shape: Sequence[int] | None = None) -> BagOfEmbeddings:
        """``BagOfEmbeddings(num_features, dim, hidden, dropout)``: ``num_features`` is the vocabulary size."""
        return BagOfEmbeddings(num_features, self.dim, self.hidden, dropout=self.dropout)


class CNNConfig(StrictModel):
    """A convolutional trunk for images (`multitask.models.ConvNet`): stages of conv, batch norm, ReLU, max-pool.

    ``channels``: output channels per stage; ``readout``: ``flatten`` the last feature map (keeps
    where things are, as LeNet does) or ``average`` it over space, then an MLP of ``hidden`` layers;
    ``none`` returns the map itself (for dense tasks, whose heads are convolutions; per-sample heads
    then average it). ``mtan`` attends over the stages; its task heads read their own maps alike.
    """

    type: Literal["cnn"]
    channels: LayerSizes = Field(default_factory=lambda: [16, 32], min_length=1)
    kernel: int = Field(default=3, ge=1)
    pool: bool = True
    batch_norm: bool = True
    readout: Literal["flatten", "average", "none"] = "flatten"
    hidden: LayerSizes = Field(default_factory=list)
    dropout: float = Field(default=0.0, ge=0.0, lt=1.0)

    @field_validator("kernel")
    @classmethod
    def _odd(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(f"kernel must be odd (same padding); got {value}")
        return value

    @refuse_huge_layers
    def build(self, num_features: int, in_shape: Sequence[int] | None = None) -> ConvNet:
        """``ConvNet`` on ``num_features`` input channels of images shaped ``in_shape`` = ``(C, H, W)``.

        Raises:
            ConfigError: ``in_shape`` is not an image's ``(C, H, W)``.
        """
        if in_shape is None or len(in_shape) != 3:
            raise ConfigError(f"a cnn encoder reads images [C, H, W]; the data's rows have shape {in_shape}")
        return ConvNet(
            num_features,
            self.channels,
            kernel=self.kernel,
            pool=self.pool,
            batch_norm=self.batch_norm,
            hidden=self.hidden,
            dropout=self.dropout,
            readout=self.readout,
            in_size=in_shape[1:],
        )


class TransformerEncoderConfig(StrictModel):
    """A pretrained Hugging Face encoder read from a local folder (`multitask.models.TransformerEncoder`).

    ``path``: the folder ``save_pretrained`` wrote (``config.json``, the weights, the tokenizer's files); unset:
    the bundled all-MiniLM-L6-v2 (`multitask.models.pretrained_minilm`). ``pooling``: ``mean`` over the
    attention mask or the ``cls`` token's state; ``max_length``: the tokenizer's truncation length for the
    text data; ``freeze``: keep the encoder's weights fixed (then only the heads, or a ``task_lora`` model's
    adapters, train). The data's text is tokenised by this encoder's own tokenizer.
    """

    type: Literal["transformer"]
    path: Path | None = None
    pooling: Literal["mean", "cls"] = "mean"
    max_length: int = Field(default=64, gt=0, le=4096)
    freeze: bool = False

    def folder(self) -> Path:
        """``path``, or the bundled MiniLM's folder when unset."""
        return self.path if self.path is not None else pretrained_minilm()

    def build(self, num_features: int = 0, in_shape: Sequence[int] | None = None) -> TransformerEncoder:
        """``TransformerEncoder(folder, pooling, max_length, freeze)``; the input size and shape are the
        tokenizer's business (``num_features`` and ``in_shape`` are not read)."""
        return TransformerEncoder(self.folder(), pooling=self.pooling, max_length=self.max_length, freeze=self.freeze)

    def tokenizer(self) -> Any:
        """The encoder's tokenizer (loaded from its folder), with which the text data is tokenised."""
        return load_tokenizer(self.folder())


def _encoder_type(value: Any) -> str:
    """The encoder's ``type``, ``mlp`` when the mapping leaves it out."""
    found = value.get("type", "mlp") if isinstance(value, dict) else getattr(value, "type", "mlp")
    return found if isinstance(found, str) else repr(found)


#: An encoder section: ``type: mlp`` (the default) on feature vectors, ``type: bag_of_embeddings`` on token ids,
#: ``type: cnn`` on images, ``type: transformer`` on text (a pretrained Hugging Face encoder).
EncoderConfig = Annotated[
    Annotated[MLPConfig, Tag("mlp")]
    | Annotated[BagOfEmbeddingsConfig, Tag("bag_of_embeddings")]
    | Annotated[CNNConfig, Tag("cnn")]
    | Annotated[TransformerEncoderConfig, Tag("transformer")],
    Discriminator(_encoder_type),
]
