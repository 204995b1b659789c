"""Tests of the CSV reader, the feature encoder and `load_tabular`."""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np
import pytest
import torch

from multitask.data import _tabular
from multitask.data._cells import IGNORE_INDEX
from multitask.data._tabular import TabularEncoder, load_tabular, read_csv_columns
from multitask.data._targets import TargetSpec
from multitask.errors import ConfigError, DataError

TRAIN = """age,job,city,y_bin,y_str,y_cls,y_reg
20,a,x,0,no,red,1.5
30,b,x,1,yes,green,2.5
40,a,y,1,yes,?,NA
50,b,y,0,no,blue,
,a,x,,?,red,nan
60,b,y,1,no,green,3.0
"""
VAL = """age,job,city,y_bin,y_str,y_cls,y_reg
35,c,x,1,yes,blue,1.0
?,a,z,NA,no,,2.0
"""


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def columns(**values: list[str]) -> dict[str, np.ndarray]:
    return {name: np.array(cells, dtype=object) for name, cells in values.items()}


def test_doctests() -> None:
    assert doctest.testmod(_tabular, raise_on_error=True).failed == 0


def test_encoder_standardises_numbers_with_train_statistics() -> None:
    train = columns(age=["1", "2", "3", ""], const=["5", "5", "5", "5"])
    encoder = TabularEncoder(numeric=["age", "const"]).fit(train)
    std = np.std([1.0, 2.0, 3.0])
    expected = [[-1 / std, 0], [0, 0], [1 / std, 0], [0, 0]]  # missing -> mean -> 0; std 0 -> 1
    np.testing.assert_allclose(encoder.transform(train), expected, rtol=1e-6)
    assert encoder.transform(columns(age=["4"], const=["7"])).dtype == np.float32
    np.testing.assert_allclose(encoder.transform(columns(age=["4"], const=["7"])), [[2 / std, 2]], rtol=1e-6)


def test_encoder_one_hot_vocabulary_comes_from_train_only() -> None:
    encoder = TabularEncoder(numeric=["n"], categorical=["job", "city"])
    encoder.fit(columns(n=["1", "2"], job=["b", "a"], city=["x", "x"]))
    assert encoder.feature_names == ["n", "job=a", "job=b", "city=x"]
    assert encoder.num_features == 4
    x = encoder.transform(columns(n=["1", "1"], job=["a", "unseen"], city=["new", "x"]))
    # an unseen category is an all-zero block, not an error
    np.testing.assert_array_equal(x[:, 1:], [[1, 0, 0], [0, 0, 1]])
    plain = encoder.transform({"n": [1.0, 1.0], "job": ["a", "unseen"], "city": ["new", "x"]})
    np.testing.assert_array_equal(plain, x)  # plain sequences and numbers work too


def test_encoder_errors() -> None:
    with pytest.raises(DataError, match="not fitted"):
        TabularEncoder(numeric=["n"]).transform(columns(n=["1"]))
    with pytest.raises(DataError, match=r"missing; available columns: \['m'\]"):
        TabularEncoder(numeric=["n"]).fit(columns(m=["1"]))
    with pytest.raises(DataError, match="declare it categorical"):
        TabularEncoder(numeric=["n"]).fit(columns(n=["1", "abc"]))
    with pytest.raises(DataError, match="no values in the training rows"):
        TabularEncoder(numeric=["n"]).fit(columns(n=["?", ""]))
    with pytest.raises(ConfigError, match="more than once"):
        TabularEncoder(numeric=["n"], categorical=["n"])


def test_read_csv_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "a.csv", "a, b,c\n1, x, y\n\n2,  z ,w\n")
    data = read_csv_columns(path)
    assert list(data) == ["a", "b", "c"]
    assert data["b"].tolist() == ["x", "z "]  # only spaces after the delimiter are dropped
    assert data["a"].dtype == object
    data = read_csv_columns(path, header=False, names=["p", "q", "r"], usecols=["r", "p"])
    assert list(data) == ["r", "p"]
    assert data["p"].tolist() == ["a", "1", "2"]
    assert list(read_csv_columns(path, header=False)) == ["0", "1", "2"]


def test_read_csv_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(DataError, match=r"CSV file not found: .*nope\.csv"):
        read_csv_columns(missing)
    ragged = write(tmp_path, "ragged.csv", "a,b\n1,2\n3,4\n5\n")
    with pytest.raises(DataError, match="line 4: found 1 fields, expected 2"):
        read_csv_columns(ragged)
    with pytest.raises(DataError, match=r"no column\(s\) \['z'\]; available columns: \['a', 'b'\]"):
        read_csv_columns(write(tmp_path, "ok.csv", "a,b\n1,2\n"), usecols=["z"])
    with pytest.raises(DataError, match="no data rows"):
        read_csv_columns(write(tmp_path, "empty.csv", "a,b\n"))
    with pytest.raises(DataError, match="more than once"):
        read_csv_columns(write(tmp_path, "dup.csv", "a,a\n1,2\n"))


def load(tmp_path: Path, **kwargs: object) -> _tabular.TabularData:
    options: dict[str, object] = {
        "numeric": ["age"],
        "categorical": ["job", "city"],
        "targets": {
            "bin": {"column": "y_bin", "kind": "binary"},
            "str": TargetSpec("y_str", "binary"),
            "pos": {"column": "y_str", "kind": "binary", "positive": "no"},
            "cls": {"column": "y_cls", "kind": "multiclass"},
            "y_reg": "regression",
        },
    }
    return load_tabular(write(tmp_path, "train.csv", TRAIN), **{**options, **kwargs})  # type: ignore[arg-type]


def test_load_tabular_encodes_features_and_targets(tmp_path: Path) -> None:
    data = load(tmp_path, val=write(tmp_path, "val.csv", VAL), test=write(tmp_path, "test.csv", VAL))
    assert data.feature_names == ["age", "job=a", "job=b", "city=x", "city=y"]
    assert data.num_features == 5
    assert data.kinds == {"bin": "binary", "str": "binary", "pos": "binary", "cls": "multiclass",
                          "y_reg": "regression"}  # fmt: skip
    assert data.classes == {"cls": ["blue", "green", "red"]}
    train, val = data.train.columns, data.val.columns  # type: ignore[union-attr]
    assert train["x"].dtype == torch.float32 and train["x"].shape == (6, 5)
    nan = float("nan")
    torch.testing.assert_close(train["bin"], torch.tensor([0, 1, 1, 0, nan, 1]), equal_nan=True)
    torch.testing.assert_close(train["str"], torch.tensor([0, 1, 1, 0, nan, 0]), equal_nan=True)
    torch.testing.assert_close(train["pos"], torch.tensor([1, 0, 0, 1, nan, 1]), equal_nan=True)
    assert train["cls"].tolist() == [2, 1, IGNORE_INDEX, 0, 2, 1]
    assert train["cls"].dtype == torch.int64
    torch.testing.assert_close(train["y_reg"], torch.tensor([1.5, 2.5, nan, nan, nan, 3.0]), equal_nan=True)
    # val: unseen job "c" and city "z" -> zero blocks; missing age -> train mean -> 0; missing labels
    torch.testing.assert_close(val["x"][:, 1:], torch.tensor([[0.0, 0, 1, 0], [1, 0, 0, 0]]))
    assert val["x"][1, 0] == 0
    torch.testing.assert_close(val["bin"], torch.tensor([1, nan]), equal_nan=True)
    assert val["cls"].tolist() == [0, IGNORE_INDEX]
    assert data.test is not None and len(data.test) == 2


def test_val_fraction_splits_train_with_a_seed(tmp_path: Path) -> None:
    first = load(tmp_path, val_fraction=1 / 3, seed=3)
    again = load(tmp_path, val_fraction=1 / 3, seed=3)
    assert first.val is not None and again.val is not None and first.test is None
    assert (len(first.train), len(first.val)) == (4, 2)
    torch.testing.assert_close(first.val.columns["x"], again.val.columns["x"])
    assert len(first.train) + len(first.val) == 6
    # the scaler was fitted on the 4 remaining training rows only, so over them age has mean 0
    assert abs(float(first.train.columns["x"][:, 0].mean())) < 1e-6


def test_load_tabular_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="CSV file not found"):
        load_tabular(tmp_path / "missing.csv", numeric=["age"], targets={"y_bin": "binary"})
    with pytest.raises(DataError, match=r"no column\(s\) \['salary'\]"):
        load(tmp_path, numeric=["salary"])
    no_labels = write(tmp_path, "nolabels.csv", "a,y\n1,?\n2,\n")
    with pytest.raises(DataError, match=r"'y'.*has no labels in the training rows"):
        load_tabular(no_labels, numeric=["a"], targets={"y": "regression"})
    with pytest.raises(DataError, match=r"train.csv: binary target .c. .*exactly two distinct .*; set positive to the"):
        load(tmp_path, targets={"c": {"column": "y_cls", "kind": "binary"}})
    with pytest.raises(DataError, match="never occurs in training"):
        load(tmp_path, targets={"c": {"column": "y_cls", "kind": "binary", "positive": "purple"}})
    bad_val = write(tmp_path, "bad_val.csv", VAL.replace("yes,blue", "maybe,blue"))
    with pytest.raises(DataError, match="val: binary target 'str' holds 'maybe'"):
        load(tmp_path, val=bad_val)
    with pytest.raises(ConfigError, match="either a `val` file or `val_fraction`"):
        load(tmp_path, val=bad_val, val_fraction=0.5)
    with pytest.raises(ConfigError, match="both features and targets"):
        load(tmp_path, numeric=["age", "y_reg"])
    with pytest.raises(ConfigError, match="target kind must be one of"):
        load(tmp_path, targets={"y": {"column": "y_bin", "kind": "ordinal"}})
    with pytest.raises(ConfigError, match="got keys"):
        load(tmp_path, targets={"y": {"col": "y_bin", "kind": "binary"}})


def test_unseen_class_in_val_is_ignored_with_a_warning(tmp_path: Path) -> None:
    val = write(tmp_path, "val.csv", VAL.replace("blue", "purple", 1))
    with pytest.warns(UserWarning, match=r"classes \['purple'\] not seen in training"):
        data = load(tmp_path, val=val)
    assert data.val is not None and data.val.columns["cls"].tolist() == [IGNORE_INDEX, IGNORE_INDEX]
