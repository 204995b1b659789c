"""Multi-input data in a config (``newsgroup``, ``movie_reviews``): adversarial training runs from a config file."""

from __future__ import annotations

import copy
import csv
import math
import random
import re
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from scipy.io import savemat
from scipy.sparse import csc_matrix
from torch import nn

from multitask import data
from multitask.adversarial import BagOfEmbeddings
from multitask.cli import main
from multitask.config import parse_config
from multitask.data import MultiTaskData
from multitask.data._newsgroup import NEWSGROUP_FILES
from multitask.errors import ConfigError, DataError
from multitask.experiment import build_model, input_size, load_data, run_experiment
from multitask.models import SharedPrivate
from multitask.tasks import Task
from multitask.training.checkpoint import list_checkpoints, load_checkpoint

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "configs" / "newsgroup_adversarial.yaml"
TWO_TASKS = ["comp_vs_sci_1", "rec_vs_talk_2"]  # a subset of the four: fewer single-task runs, a faster test
TERMS = 24  # vocabulary of the fixture: terms 0-5 say "group 2", 6-11 "group 1", 12-15 mark the task, the rest noise


def write_newsgroup(folder: Path, n: int = 120, seed: int = 0) -> Path:
    """Four files in MALSAR's Newsgroup format (sparse term counts ``fea [n, d]``, ``gnd [n, 1]`` in {1, 2}).

    A post's label is which of two blocks of terms it uses more; each task's posts also carry a term of their own,
    so the task of a post can be read from its features (which the discriminator learns, and the adversary fights).
    """
    generator = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for index, name in enumerate(NEWSGROUP_FILES.values()):
        gnd = generator.integers(1, 3, size=n)
        counts = generator.poisson(0.3, size=(n, TERMS)).astype(np.float64)
        counts[gnd == 2, 0:6] += generator.poisson(1.5, size=(int((gnd == 2).sum()), 6))
        counts[gnd == 1, 6:12] += generator.poisson(1.5, size=(int((gnd == 1).sum()), 6))
        counts[:, 12 + index] += 2 + generator.poisson(1.0, size=n)
        savemat(str(folder / name), {"fea": csc_matrix(counts), "gnd": gnd.reshape(-1, 1).astype(np.float64)})
    return folder


def newsgroup_config(folder: Path) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": "tiny-newsgroup",
        "seed": 0,
        "data": {"type": "newsgroup", "folder": str(folder), "val_fraction": 0.2, "test_fraction": 0.25},
        "tasks": [{"name": name, "kind": "binary", "metrics": ["accuracy", "auc"]} for name in TWO_TASKS],
        "model": {
            "type": "shared_private",
            "encoder": {"hidden": [16]},
            "private": {"hidden": [8]},
            "orthogonality": 0.001,
        },
        "strategy": {"adversary": {"scheme": "alternating", "discriminator_lr": 0.01}},
        "training": {"epochs": 3, "batch_size": 16, "optimizer": {"lr": 0.01}},
        "compare": {"methods": ["stl", "mtl"]},
    }
    return raw


def columns(path: Path) -> dict[str, list[float]]:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    return {key: [float(row[key]) for row in rows] for key in rows[0]}


@pytest.fixture
def no_curves(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip drawing each run's ``curves.png`` (matplotlib takes most of a tiny run's time; tested elsewhere)."""
    monkeypatch.setattr("multitask.training.callbacks.plot_curves", lambda *args, **kwargs: None)


def test_the_config_reads_the_task_names_the_loaders_declare() -> None:
    assert tuple(data.info("newsgroup").tasks or ()) == tuple(NEWSGROUP_FILES)
    raw = {
        "data": {"type": "movie_reviews"},
        "tasks": [{"name": "imdb", "kind": "binary"}, {"name": "yelp", "kind": "binary"}],
    }
    with pytest.raises(ConfigError, match=r"movie_reviews has tasks imdb, rotten_tomatoes; unknown: yelp"):
        parse_config(raw)


def test_adversarial_shared_private_trains_from_a_config_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], no_curves: None
) -> None:
    folder = write_newsgroup(tmp_path / "newsgroup")
    raw = newsgroup_config(folder.relative_to(tmp_path))  # relative to the config file's folder
    path = tmp_path / "asp.yaml"
    path.write_text(yaml.safe_dump(raw))
    output = tmp_path / "run"
    assert main(["train", str(path), "--output", str(output)]) == 0
    assert "Δm% of mtl against single-task models" in capsys.readouterr().out
    assert (output / "config.yaml").is_file() and (output / "results.csv").is_file()
    assert (output / "mtl" / "adversary.png").is_file()
    metrics = columns(output / "mtl" / "metrics.csv")
    assert len(metrics["adversary/accuracy"]) == 3
    assert all(0.0 <= value <= 1.0 for value in metrics["adversary/accuracy"])
    assert all(value > 0 for value in metrics["model/orthogonality"])
    for name in TWO_TASKS:  # the adversary plays in the multi-task run only
        assert not any(key.startswith("adversary/") for key in columns(output / "stl" / name / "metrics.csv"))
    with (output / "results.csv").open(newline="") as handle:
        results = {(row["method"], row["task"], row["metric"]): float(row["value"]) for row in csv.DictReader(handle)}
    accuracy = [results["mtl", name, "accuracy"] for name in TWO_TASKS]
    assert min(accuracy) > 0.75, accuracy  # easy labels: measured 0.93 and 0.90 (30 test posts each)
    assert main(["evaluate", str(output)]) == 0  # the saved config (every adversary key) reads back
    assert "| mtl |" in capsys.readouterr().out


def test_the_adversary_applies_to_every_multi_task_method_and_not_to_baselines(tmp_path: Path, no_curves: None) -> None:
    raw = newsgroup_config(write_newsgroup(tmp_path / "newsgroup", n=80))
    raw["model"] = {"type": "hard_sharing", "encoder": {"hidden": [16]}, "private": {"hidden": [8]}}
    raw["strategy"] = {"adversary": {"scheme": "reversal", "schedule": "dann"}}
    raw["training"]["epochs"] = 2
    raw["compare"] = {"methods": ["mtl", "shared_private"], "transfer": [TWO_TASKS]}
    comparison = run_experiment(parse_config(raw), output=tmp_path / "run", progress=False)
    assert set(comparison.results) == {"mtl", "shared_private", f"transfer:{TWO_TASKS[0]}->{TWO_TASKS[1]}"}
    for method in ("mtl", "shared_private"):
        assert "adversary/accuracy" in columns(tmp_path / "run" / method / "metrics.csv")
    for stage in ("pretrain", "finetune"):
        transfer = columns(tmp_path / "run" / f"transfer-{TWO_TASKS[0]}-to-{TWO_TASKS[1]}" / stage / "metrics.csv")
        assert not any(key.startswith("adversary/") for key in transfer)


def test_every_architecture_trains_on_multi_input_data(tmp_path: Path, no_curves: None) -> None:
    raw = newsgroup_config(write_newsgroup(tmp_path / "newsgroup", n=60))
    del raw["strategy"]
    methods = ["stl", "mtl", "mmoe", "ple", "dselect_k", "cross_stitch", "soft_sharing", "coupled"]
    raw["model"] = {"type": "hard_sharing", "encoder": {"hidden": [8]}, "num_experts": 2, "lam": 0.1}
    raw["training"]["epochs"] = 1
    raw["compare"] = {"methods": methods}
    comparison = run_experiment(parse_config(raw), output=tmp_path / "run", progress=False)
    assert list(comparison.results) == methods
    assert all(set(per_task) == set(TWO_TASKS) for per_task in comparison.results.values())


def test_temperature_sampling_per_task_batch_sizes_and_workers_from_a_config(tmp_path: Path, no_curves: None) -> None:
    raw = newsgroup_config(write_newsgroup(tmp_path / "newsgroup", n=60))
    del raw["strategy"]
    raw["model"] = {"type": "hard_sharing", "encoder": {"hidden": [8]}}
    sizes = dict(zip(TWO_TASKS, [8, 4], strict=True))
    raw["training"].update(
        {"epochs": 1, "batch_size": sizes, "sampling": "temperature", "temperature": 2.0, "tasks_per_step": 1}
    )
    raw["training"]["num_workers"] = 1
    config = parse_config(raw)
    comparison = run_experiment(config, output=tmp_path / "run", progress=False)
    assert all(set(per_task) == set(TWO_TASKS) for per_task in comparison.results.values())
    rows = {name: len(load_data(config).dataset("train", name)) for name in TWO_TASKS}
    steps = math.ceil(sum(Fraction(rows[name], sizes[name]) for name in TWO_TASKS))  # one task per step
    mtl_lines = (tmp_path / "run" / "mtl" / "metrics.csv").read_text().splitlines()
    assert len(mtl_lines) == 2  # one epoch
    (last,) = list_checkpoints(tmp_path / "run" / "mtl" / "checkpoints")[-1:]
    assert load_checkpoint(last)["progress"]["global_step"] == steps
    # each single-task model trained on its own batch size: its own number of steps
    for name in TWO_TASKS:
        (single,) = list_checkpoints(tmp_path / "run" / "stl" / name / "checkpoints")[-1:]
        assert load_checkpoint(single)["progress"]["global_step"] == -(-rows[name] // sizes[name])


def test_load_data_keeps_the_configs_tasks_in_its_order(tmp_path: Path) -> None:
    raw = newsgroup_config(write_newsgroup(tmp_path / "newsgroup", n=40))
    raw["tasks"] = [{"name": "rec_vs_talk_1", "kind": "binary"}, {"name": "comp_vs_sci_2", "kind": "binary"}]
    data = load_data(parse_config(raw))
    assert isinstance(data, MultiTaskData) and data.tasks == ["rec_vs_talk_1", "comp_vs_sci_2"]
    for split in (data.train, data.val, data.test):
        assert isinstance(split, dict) and list(split) == ["rec_vs_talk_1", "comp_vs_sci_2"]
    assert len(data.test["comp_vs_sci_2"]) == 10  # type: ignore[index]  # 40 posts, test_fraction 0.25
    assert data.num_features == TERMS


def write_reviews(path: Path, per_source: int = 150, seed: int = 0) -> Path:
    """Reviews in the movie-reviews CSV format (text, label, source): the sentiment is in a few words."""
    rng = random.Random(seed)
    filler = ["the", "film", "plot", "actor", "scene", "story", "music", "ending", "cast", "was"]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label", "source"])
        for source, extra in (("books", "page"), ("films", "screen")):
            for _ in range(per_source):
                label = rng.randint(0, 1)
                sentiment = rng.choices(["good", "great"] if label else ["bad", "dull"], k=2)
                words = [*rng.choices(filler, k=8), extra, *sentiment]
                rng.shuffle(words)
                writer.writerow([" ".join(words), label, source])
    return path


def reviews_config(path: Path) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "data": {"type": "movie_reviews", "path": str(path), "min_frequency": 1},
        "tasks": [{"name": "books", "kind": "binary", "metrics": ["accuracy"]}, {"name": "films", "kind": "binary"}],
        "model": {"type": "shared_private", "encoder": {"type": "bag_of_embeddings", "dim": 8, "hidden": [8]}},
        "strategy": {"adversary": {}},
        "training": {"epochs": 8, "batch_size": 16, "optimizer": {"lr": 0.03}},
        "compare": {"methods": ["mtl"]},
    }
    return raw


def test_movie_reviews_train_with_a_bag_of_embeddings_encoder(tmp_path: Path, no_curves: None) -> None:
    config = parse_config(reviews_config(write_reviews(tmp_path / "reviews.csv")))
    data = load_data(config)
    vocabulary = data.num_embeddings["tokens"]  # type: ignore[union-attr]
    assert input_size(config, data) == vocabulary == 2 + 10 + 2 + 4  # padding, unknown, filler, markers, sentiment
    tasks = [Task("books", nn.Linear(8, 1), "binary"), Task("films", nn.Linear(8, 1), "binary")]
    model = build_model(config, "shared_private", vocabulary)(tasks)
    assert isinstance(model, SharedPrivate) and isinstance(model.shared, BagOfEmbeddings)
    assert model.shared.embedding.num_embeddings == vocabulary
    comparison = run_experiment(config, output=tmp_path / "run", progress=False)
    accuracy = [comparison.results["mtl"][name]["accuracy"] for name in ("books", "films")]
    assert min(accuracy) > 0.8, accuracy  # two sentiment words per review: measured 1.0 and 1.0
    assert "adversary/accuracy" in columns(tmp_path / "run" / "mtl" / "metrics.csv")


def test_a_task_the_data_lacks_stops_before_the_run_folder_is_written(tmp_path: Path) -> None:
    raw = reviews_config(write_reviews(tmp_path / "reviews.csv"))
    raw["tasks"][1]["name"] = "music"
    config = parse_config(raw)  # a CSV of one's own: its sources (task names) are known once it is read
    with pytest.raises(ConfigError, match=r"^tasks: movie-reviews has tasks books, films; unknown: music$"):
        run_experiment(config, output=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()
    (tmp_path / "empty").mkdir()
    missing_files = parse_config(newsgroup_config(tmp_path / "empty"))
    with pytest.raises(DataError, match="lacks"):
        run_experiment(missing_files, output=tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


NEWSGROUP = {"type": "newsgroup", "folder": "."}
REVIEWS = {"type": "movie_reviews"}
BOE = {"type": "bag_of_embeddings"}
MISTAKES: list[tuple[str, dict[str, Any], str]] = [
    (
        "adversary on single-input data",
        {"data": {"type": "census_income"}, "tasks": [{"name": "income", "kind": "binary"}]},
        "strategy.adversary needs multi-input data (one dataset per task, so that each sample has a task to predict); "
        "data type census_income gives one dataset for all tasks: use data type newsgroup or movie_reviews",
    ),
    ("unknown task", {"tasks": [{"name": "comp_vs_sci_3", "kind": "binary"}]}, "newsgroup has tasks comp_vs_sci_1, "),
    (
        "unknown review source",
        {"data": REVIEWS, "tasks": [{"name": "yelp", "kind": "binary"}], "model": {"encoder": BOE}},
        "movie_reviews has tasks imdb, rotten_tomatoes; unknown: yelp",
    ),
    (
        "not binary",
        {"tasks": [{"name": "comp_vs_sci_1", "kind": "regression"}, {"name": "comp_vs_sci_2", "kind": "binary"}]},
        "tasks[0].kind: comp_vs_sci_1 of newsgroup is binary; got regression",
    ),
    (
        "a label column",
        {
            "tasks": [
                {"name": "comp_vs_sci_1", "kind": "binary", "column": "y"},
                {"name": "comp_vs_sci_2", "kind": "binary"},
            ]
        },
        "tasks[0]: column and positive describe CSV label columns",
    ),
    (
        "no training data left",
        {"data": {**NEWSGROUP, "val_fraction": 0.5, "test_fraction": 0.5}},
        "data: val_fraction + test_fraction must be below 1 to leave training data; got 0.5 + 0.5",
    ),
    ("missing folder", {"data": {**NEWSGROUP, "folder": "nowhere"}}, "data.folder: folder not found: "),
    ("unknown data key", {"data": {**NEWSGROUP, "path": "x"}}, "data.path: unknown key; allowed keys: type, folder,"),
    (
        "one task",
        {"tasks": [{"name": "comp_vs_sci_1", "kind": "binary"}]},
        "strategy.adversary needs at least two tasks",
    ),
    ("no multi-task run", {"compare": {"methods": ["stl"]}}, "strategy.adversary applies to multi-task models only"),
    (
        "a model without shared features",
        {"compare": {"methods": ["stl", "mtl", "mmoe"]}},
        "strategy.adversary plays on the models' shared features, and mmoe has none: train hard_sharing or ",
    ),
    (
        "token encoder on feature vectors",
        {"model": {"encoder": BOE}},
        "model.encoder.type: data type newsgroup gives feature vectors (column x): use type mlp",
    ),
    (
        "feature encoder on token ids",
        {"data": REVIEWS, "tasks": [{"name": "imdb", "kind": "binary"}, {"name": "rotten_tomatoes", "kind": "binary"}]},
        "model.encoder.type: data type movie_reviews gives text (token ids): use type bag_of_embeddings or transformer",
    ),
    (
        "experts on token ids",
        {
            "data": REVIEWS,
            "tasks": [{"name": "imdb", "kind": "binary"}, {"name": "rotten_tomatoes", "kind": "binary"}],
            "model": {"type": "mmoe", "encoder": BOE},
            "strategy": {},
        },
        "data type movie_reviews gives token ids, which mmoe cannot read (experts, gates or columns are MLPs",
    ),
    ("unknown encoder", {"model": {"encoder": {"type": "lstm"}}}, "model.encoder.type: unknown type 'lstm'; allowed:"),
    (
        "unknown encoder key",
        {"model": {"encoder": {**BOE, "vocab": 10}}},
        "model.encoder.vocab: unknown key; allowed keys: type, dim, hidden, dropout",
    ),
]


@pytest.mark.parametrize(("changes", "expected"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_each_mistake_gives_one_clear_line(tmp_path: Path, changes: dict[str, Any], expected: str) -> None:
    raw = newsgroup_config(Path())
    raw["tasks"] = raw["tasks"][:2]
    raw["model"] = {"type": "hard_sharing"}
    raw["strategy"] = {"adversary": {}}
    raw["compare"] = {"methods": ["stl", "mtl"]}
    raw.update(copy.deepcopy(changes))
    with pytest.raises(ConfigError) as raised:
        parse_config(raw, base_dir=tmp_path, source="c.yaml")
    message = str(raised.value)
    assert "\n" not in message and message.startswith("c.yaml: ")
    assert expected in message, message


@pytest.mark.skipif(
    not (REPO.parent / "shared" / "data" / "newsgroup").is_dir(), reason="needs ../shared/data/newsgroup"
)
def test_the_shipped_example_config_trains(tmp_path: Path, no_curves: None) -> None:
    raw = yaml.safe_load(EXAMPLE.read_text())
    assert (EXAMPLE.parent / raw["data"]["folder"]).resolve() == (
        REPO.parent / "shared" / "data" / "newsgroup"
    ).resolve()
    raw["data"]["folder"] = str((EXAMPLE.parent / raw["data"]["folder"]).resolve())
    raw["training"]["epochs"] = 1
    path = tmp_path / "example.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True))
    assert main(["train", str(path), "--output", str(tmp_path / "run"), "--methods", "mtl"]) == 0
    metrics = columns(tmp_path / "run" / "mtl" / "metrics.csv")
    assert set(metrics) >= {"adversary/accuracy", "adversary/coefficient", "model/orthogonality"}


def test_the_config_page_shows_the_shipped_example_and_a_valid_reviews_config() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", (REPO / "docs" / "config.md").read_text(), flags=re.S)
    newsgroup = [block for block in blocks if "type: newsgroup" in block]
    assert newsgroup == [EXAMPLE.read_text()]  # the page shows the file as it is
    (reviews,) = [block for block in blocks if "type: movie_reviews" in block]
    config = parse_config(yaml.safe_load(reviews))  # the package's file: no path to check
    assert config.model.encoder.type == "bag_of_embeddings" and config.strategy.adversary is not None
