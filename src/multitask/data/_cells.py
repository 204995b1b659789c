"""Cells of a CSV file: which mean "missing", and how numeric and label columns are parsed."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from multitask.errors import DataError

#: Cells that mean "no value" in numeric and label columns (compared after strip + lower-casing).
MISSING_VALUES = frozenset({"", "?", "na", "n/a", "nan", "null"})
#: Class index of a missing multiclass label (PyTorch's default ``ignore_index``).
IGNORE_INDEX = -100


def is_missing(values: NDArray[Any]) -> NDArray[np.bool_]:
    if values.dtype.kind in "fc":
        return np.asarray(np.isnan(values), dtype=bool)
    if values.dtype.kind in "iub":
        return np.zeros(len(values), dtype=bool)
    # map() chains run at C speed: this is called on every numeric and label column.
    lowered = map(str.lower, map(str.strip, map(str, values.tolist())))
    return np.fromiter(map(MISSING_VALUES.__contains__, lowered), bool, len(values))


def to_float(values: NDArray[Any], what: str, hint: str = "") -> NDArray[np.float64]:
    """Parse a column to float64; missing cells become NaN.

    Raises:
        DataError: A cell is not a number, or is infinite (``inf``, ``1e999``): the message names ``what``
            and the row.
    """
    try:  # fast path: numbers, or strings without missing markers other than "nan"
        return _finite(values.astype(np.float64), what)
    except ValueError:
        pass
    missing = is_missing(values)
    out = np.full(len(values), np.nan)
    try:
        out[~missing] = values[~missing].astype(np.float64)
    except ValueError:
        bad = next(v for v in values[~missing] if not parses_as_float(v))
        raise DataError(
            f"{what} must be numeric but holds {bad!r}; {hint}mark missing cells with one of {sorted(MISSING_VALUES)}"
        ) from None
    return _finite(out, what)


def _finite(numbers: NDArray[np.float64], what: str) -> NDArray[np.float64]:
    infinite = np.isinf(numbers)
    if infinite.any():
        row = int(np.argmax(infinite))
        raise DataError(
            f"{what} holds {numbers[row]} in data row {row + 1}: values must be finite (leave the cell empty "
            "for a missing value)"
        )
    return numbers


def parses_as_float(value: Any) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True
