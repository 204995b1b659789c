"""Tests of MultiTaskData, TaskInfo, combine and LazyDataset: tasks built from descriptions, multi-input
combination, lazily read columns, and a Trainer run on each."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from multitask import Task, Trainer
from multitask.data import ArrayDataset, LazyDataset, MultiTaskData, TabularData, TaskInfo, combine
from multitask.errors import ConfigError, DataError, ShapeError
from multitask.models import HardSharing


def two_task_data(n: int = 60, seed: int = 0) -> MultiTaskData:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=generator)
    data = ArrayDataset(x=x, sign=(x[:, 0] > 0).float(), bucket=(x[:, 1] > 0).long() + (x[:, 1] > 1).long())
    infos = {
        "sign": TaskInfo("sign", "binary"),
        "bucket": TaskInfo("bucket", "multiclass", 3, classes=("low", "mid", "high"), metrics=("accuracy",)),
    }
    return MultiTaskData(train=data, val=data.subset(torch.arange(10)), test=None, task_info=infos, name="toy")


def test_make_tasks_from_a_width_builds_linear_heads_with_the_suggested_metrics() -> None:
    data = two_task_data()
    tasks = data.make_tasks(8)
    assert [t.name for t in tasks] == ["sign", "bucket"]
    assert [t.kind for t in tasks] == ["binary", "multiclass"]
    heads = [t.head for t in tasks]
    assert all(isinstance(h, nn.Linear) and h.in_features == 8 for h in heads)
    assert [h.out_features for h in heads] == [1, 3]  # type: ignore[union-attr]
    assert list(tasks[1].metric_fns) == ["accuracy"]
    assert list(tasks[0].metric_fns) == ["auc", "accuracy", "f1", "log_loss"]  # the kind's defaults


def test_make_tasks_from_a_mapping_a_factory_and_a_subset() -> None:
    data = two_task_data()
    head = nn.Linear(2, 1)
    (task,) = data.make_tasks({"sign": head}, tasks=["sign"])
    assert task.head is head
    built = data.make_tasks(lambda info: nn.Linear(5, info.num_outputs + 1))
    assert [t.head.out_features for t in built] == [2, 4]  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="no head for task 'bucket'"):
        data.make_tasks({"sign": head})
    with pytest.raises(ConfigError, match=r"unknown task\(s\) \['nope'\]"):
        data.make_tasks(4, tasks=["nope"])


def test_a_dense_task_becomes_a_dense_task() -> None:
    task = TaskInfo("segmentation", "multiclass", 13, dense=True).make_task(nn.Conv2d(4, 13, 1))
    assert task.dense and list(task.metric_fns) == ["miou", "pixel_accuracy"]


def test_fields_match_tabular_data_and_from_tabular_keeps_everything() -> None:
    x = torch.randn(6, 2)
    table = TabularData(
        train=ArrayDataset(x=x, y=torch.zeros(6), c=torch.zeros(6, dtype=torch.long)),
        val=None,
        test=None,
        feature_names=["a", "b"],
        kinds={"y": "binary", "c": "multiclass"},
        classes={"c": ["p", "q", "r"]},
    )
    data = MultiTaskData.from_tabular(table, name="t", licence="CC0")
    assert data.tasks == table.tasks and data.kinds == table.kinds and data.classes == table.classes
    assert data.num_features == table.num_features == 2
    assert data.task_info["c"].num_outputs == 3 and data.licence == "CC0"
    assert data.sample_shapes() == {"x": (2,), "y": (), "c": ()}


def test_split_access_and_errors() -> None:
    data = two_task_data()
    assert data.dataset("train") is data.train
    with pytest.raises(DataError, match="no test split"):
        data.dataset("test")
    with pytest.raises(DataError, match="at least one task"):
        MultiTaskData(train=data.train, val=None, test=None, task_info={})
    with pytest.raises(DataError, match=r"unknown task\(s\) \['other'\]"):
        MultiTaskData(train={"other": data.train}, val=None, test=None, task_info=data.task_info)


def test_combine_renames_tasks_and_reads_the_original_label_columns() -> None:
    first, second = two_task_data(seed=0), two_task_data(n=30, seed=1)
    mixed = combine(a=(first, "sign"), b=(second, "bucket"))
    assert mixed.is_multi_input and mixed.tasks == ["a", "b"]
    assert isinstance(mixed.train, dict) and mixed.train["a"] is first.train and mixed.train["b"] is second.train
    assert mixed.task_info["b"].label_key == "bucket" and mixed.task_info["b"].num_outputs == 3
    assert mixed.test is None  # absent from both parts
    tasks = mixed.make_tasks(8)
    assert tasks[1].label_key == "bucket"
    with pytest.raises(ConfigError, match="has no task 'missing'"):
        combine(a=(first, "missing"))
    with pytest.raises(ConfigError, match="at least one task"):
        combine()


def test_combined_data_trains_as_multi_input() -> None:
    torch.manual_seed(0)
    first, second = two_task_data(n=200, seed=0), two_task_data(n=120, seed=1)
    mixed = combine(a=(first, "sign"), b=(second, "bucket"))
    tasks = mixed.make_tasks(16)
    model = HardSharing(nn.Sequential(nn.Linear(4, 16), nn.ReLU()), tasks)
    trainer = Trainer(model, tasks, max_epochs=12, batch_size=32, lr=0.03, progress=False)
    trainer.fit(mixed.train, mixed.val)
    results = trainer.evaluate(mixed.train)
    assert results["a"]["auc"] > 0.95  # sign of x0: linearly separable
    assert results["b"]["accuracy"] > 0.8  # thresholds on x1


# ------------------------------------------------------------------ LazyDataset
class CountingReader:
    """Returns sample i as an image filled with i; counts which samples were read."""

    def __init__(self) -> None:
        self.reads: list[int] = []

    def __call__(self, i: int) -> dict[str, np.ndarray]:
        self.reads.append(i)
        return {"image": np.full((1, 2, 2), float(i), dtype=np.float32)}


def test_lazy_dataset_reads_only_the_rows_of_a_batch() -> None:
    reader = CountingReader()
    data = LazyDataset(10, reader, ["image"], {"label": torch.arange(10) % 2})
    batch = data[torch.tensor([7, 2])]
    assert reader.reads == [7, 2]
    assert batch["image"].shape == (2, 1, 2, 2) and batch["image"][:, 0, 0, 0].tolist() == [7.0, 2.0]
    assert batch["label"].tolist() == [1, 0]
    assert len(data) == 10 and "image" in data and "label" in data and "other" not in data
    assert list(data.keys()) == ["image", "label"]
    assert data[3]["image"].shape == (1, 1, 2, 2)


def test_lazy_subset_maps_rows_without_reading() -> None:
    reader = CountingReader()
    data = LazyDataset(10, reader, ["image"], {"label": torch.arange(10)})
    part = data.subset(torch.tensor([9, 4, 5]))
    assert reader.reads == [] and len(part) == 3 and isinstance(part, LazyDataset)
    assert part[slice(0, 3)]["image"][:, 0, 0, 0].tolist() == [9.0, 4.0, 5.0]
    assert part[slice(0, 3)]["label"].tolist() == [9, 4, 5]
    nested = part.subset(torch.tensor([False, True, True]))
    assert nested[slice(0, 2)]["label"].tolist() == [4, 5]
    assert nested.columns["image"][:, 0, 0, 0].tolist() == [4.0, 5.0]  # a file column read in full on request


def test_lazy_dataset_threads_give_the_same_batch() -> None:
    serial = LazyDataset(8, CountingReader(), ["image"])
    threaded = LazyDataset(8, CountingReader(), ["image"], num_threads=3)
    index = torch.tensor([5, 1, 7, 0])
    assert torch.equal(serial[index]["image"], threaded[index]["image"])


def test_lazy_dataset_errors() -> None:
    with pytest.raises(DataError, match="empty"):
        LazyDataset(0, CountingReader(), ["image"])
    with pytest.raises(DataError, match="both read from files and held in memory"):
        LazyDataset(3, CountingReader(), ["image"], {"image": torch.zeros(3)})
    with pytest.raises(ShapeError, match="expected 3 rows"):
        LazyDataset(3, CountingReader(), ["image"], {"label": torch.zeros(4)})
    ragged = LazyDataset(3, lambda i: {"image": np.zeros(i + 1)}, ["image"])
    with pytest.raises(ShapeError, match="different shapes"):
        ragged[slice(0, 3)]
    with pytest.raises(DataError, match="no column 'image'"):
        LazyDataset(3, lambda i: {"other": np.zeros(1)}, ["image"])[slice(0, 2)]


def test_trainer_fits_and_evaluates_a_lazy_dataset() -> None:
    torch.manual_seed(0)
    labels = (torch.arange(64) % 2).float()

    def read(i: int) -> dict[str, np.ndarray]:  # the label is visible in the "image"
        return {"x": np.full((3,), 2.0 * float(labels[i]) - 1.0, dtype=np.float32)}

    data = LazyDataset(64, read, ["x"], {"odd": labels})
    tasks = [Task("odd", nn.Linear(4, 1), "binary")]
    model = HardSharing(nn.Sequential(nn.Linear(3, 4), nn.ReLU()), tasks)
    trainer = Trainer(model, tasks, max_epochs=20, batch_size=16, lr=0.05, progress=False)
    trainer.fit(data, data.subset(torch.arange(16)))
    assert trainer.evaluate(data)["odd"]["accuracy"] == 1.0
