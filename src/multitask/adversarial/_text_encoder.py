"""`BagOfEmbeddings`: a fast text encoder for token ids (mean of word embeddings, then an MLP)."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from multitask.errors import ConfigError, ShapeError
from multitask.models import MLP


class BagOfEmbeddings(nn.Module):
    """Token ids ``[N, L]`` → the mean of their embeddings (padding left out) → an MLP → features ``[N, d]``.

    The order of words is ignored, as in fastText (Joulin et al., "Bag of Tricks for Efficient Text
    Classification", EACL 2017); on sentiment it is close to recurrent encoders at a small fraction of
    their cost, which is what two CPU cores afford. Any other module (a CNN, an LSTM, a transformer
    encoder) can take its place in `multitask.models.SharedPrivate` or `multitask.models.HardSharing`.

    Args:
        vocab_size: Number of token ids (including padding and unknown).
        embedding_dim: Size of each word vector.
        hidden: Sizes of the MLP's hidden layers; the last is the output width ``d``
            (no layer: the mean embedding itself).
        dropout: Dropout after each hidden activation.
        padding_idx: The padding id, left out of the mean.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_dim: int = 64,
        hidden: Sequence[int] = (64,),
        *,
        dropout: float = 0.0,
        padding_idx: int = 0,
    ) -> None:
        super().__init__()
        if vocab_size <= 0 or embedding_dim <= 0:
            raise ConfigError(f"vocab_size and embedding_dim must be positive; got {vocab_size}, {embedding_dim}")
        if not 0 <= padding_idx < vocab_size:
            raise ConfigError(f"padding_idx must be a token id in [0, {vocab_size}); got {padding_idx}")
        self.embedding = nn.EmbeddingBag(vocab_size, embedding_dim, mode="mean", padding_idx=padding_idx)
        self.mlp = MLP(embedding_dim, hidden, None, dropout)
        self.out_features = self.mlp.out_features
        self.vocab_size = vocab_size

    def forward(self, tokens: Tensor) -> Tensor:
        """Features ``[N, d]`` of token ids ``[N, L]`` (a row of padding only gives a zero mean)."""
        if tokens.dim() != 2:
            raise ShapeError(f"token ids must be [N, L]; got shape {tuple(tokens.shape)}")
        result: Tensor = self.mlp(self.embedding(tokens))
        return result
