"""The encoder sections: an MLP on feature vectors, a bag of embeddings on token ids, a CNN on images."""

from __future__ import annotations

from collections.abc import Sequence
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
from multitask.models import MLP, ConvNet


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


def _encoder_type(value: Any) -> str:
    """The encoder's ``type``, ``mlp`` when the mapping leaves it out."""
    found = value.get("type", "mlp") if isinstance(value, dict) else getattr(value, "type", "mlp")
    return found if isinstance(found, str) else repr(found)


#: An encoder section: ``type: mlp`` (the default) on feature vectors, ``type: bag_of_embeddings`` on token ids,
#: ``type: cnn`` on images.
EncoderConfig = Annotated[
    Annotated[MLPConfig, Tag("mlp")]
    | Annotated[BagOfEmbeddingsConfig, Tag("bag_of_embeddings")]
    | Annotated[CNNConfig, Tag("cnn")],
    Discriminator(_encoder_type),
]
