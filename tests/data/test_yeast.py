"""Tests of the yeast multi-label loader: 14 binary tasks or one multi-label task, on the real file."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from multitask.data import _yeast, load_yeast
from multitask.errors import ConfigError, DataError

needs_river = pytest.mark.skipif(
    importlib.util.find_spec("river") is None, reason="river missing: `pip install --no-deps river==0.26.1`"
)


@pytest.fixture
def fake_yeast(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    rng = np.random.default_rng(0)
    header = [f"Att{i}" for i in range(1, 104)] + [f"Class{i}" for i in range(1, 15)]
    rows = np.column_stack([rng.normal(size=(50, 103)), rng.integers(0, 2, size=(50, 14))])
    path = tmp_path / "river" / "datasets" / "yeast.csv.gz"
    path.parent.mkdir(parents=True)
    with gzip.open(path, "wt") as file:
        file.write(",".join(header) + "\n" + "\n".join(",".join(f"{v:g}" for v in row) for row in rows) + "\n")
    monkeypatch.setattr(_yeast, "package_file", lambda package, rel, req: tmp_path / package / rel)
    return path


def test_binary_and_multilabel_views_agree(fake_yeast: Path) -> None:
    binary = load_yeast(seed=2, val_fraction=0.2, test_fraction=0.2)
    multi = load_yeast(seed=2, val_fraction=0.2, test_fraction=0.2, multilabel=True)
    assert binary.tasks == [f"class{i}" for i in range(1, 15)] and multi.tasks == ["labels"]
    assert multi.task_info["labels"].kind == "multilabel" and multi.task_info["labels"].num_outputs == 14
    for split in ("train", "val", "test"):
        stacked = torch.stack([binary.dataset(split).columns[t] for t in binary.tasks], dim=1)
        assert torch.equal(stacked, multi.dataset(split).columns["labels"])
    x = binary.dataset("train").columns["x"]
    assert torch.allclose(x.mean(dim=0), torch.zeros(103), atol=1e-5)  # standardised on the training rows
    assert [len(binary.dataset(s)) for s in ("train", "val", "test")] == [30, 10, 10]


def test_errors(fake_yeast: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="fractions"):
        load_yeast(test_fraction=0.0)
    with gzip.open(fake_yeast, "wt") as file:
        file.write("a,b\n1,2\n")
    with pytest.raises(DataError, match="103 features and 14 labels"):
        load_yeast()
    monkeypatch.undo()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match=r"pip install --no-deps river==0\.26\.1"):
        load_yeast()


@needs_river
def test_real_yeast() -> None:
    data = load_yeast(multilabel=True)
    parts = [data.dataset(s) for s in ("train", "val", "test")]
    assert sum(len(p) for p in parts) == 2_417  # Elisseeff & Weston's 2,417 genes
    assert parts[0].columns["x"].shape[1] == 103 and parts[0].columns["labels"].shape[1] == 14
    labels = torch.cat([p.columns["labels"] for p in parts])
    assert abs(float(labels.sum(dim=1).mean()) - 4.24) < 0.01  # label cardinality 4.237 (MULAN)
    assert len(parts[2]) == 918
