"""A tiny randomly initialised BERT and its tokenizer, saved to a folder as a Hugging Face checkpoint (no download)."""

from __future__ import annotations

from pathlib import Path

SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
# the words the tokenizer knows (lower case; anything else becomes [UNK])
WORDS = (
    "the", "a", "cat", "dog", "sat", "ran", "on", "mat", "in", "park", "is", "was", "good", "bad", "very", "movie",
    "film", "great", "awful", "i", "liked", "hated", "it", "this", "and", "not", "fun", "boring", "story", "plot",
)  # fmt: skip
HIDDEN = 32


def write_tiny_bert(folder: Path, *, seed: int = 0) -> Path:
    """Writes a 2-layer BERT (hidden size `HIDDEN`) and a WordPiece tokenizer over `WORDS` into ``folder``.

    The folder then holds ``config.json``, ``model.safetensors`` and the tokenizer's files, as a checkpoint
    saved with ``save_pretrained`` does. Returns ``folder``.
    """
    import torch
    import transformers

    folder.mkdir(parents=True, exist_ok=True)
    vocab = {token: index for index, token in enumerate((*SPECIAL, *WORDS))}
    config = transformers.BertConfig(
        vocab_size=len(vocab),
        hidden_size=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    with torch.random.fork_rng(devices=[]):  # the caller's global generator is left as it was
        torch.manual_seed(seed)
        transformers.BertModel(config).save_pretrained(folder)
    # transformers 5: BertTokenizer is the fast (tokenizers) one, built from the vocabulary itself (``vocab=``)
    transformers.BertTokenizer(vocab=vocab).save_pretrained(folder)
    return folder
