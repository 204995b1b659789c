"""CSV files as columns of strings, read fast and checked: the first step of tabular data."""

from __future__ import annotations

import csv
import gc
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from os import PathLike
from pathlib import Path
from typing import NoReturn

import numpy as np
from numpy.typing import NDArray

from multitask.errors import DataError

StrPath = str | PathLike[str]


def read_csv_columns(
    path: StrPath,
    *,
    header: bool = True,
    names: Sequence[str] | None = None,
    usecols: Sequence[str] | None = None,
    skipinitialspace: bool = True,
    delimiter: str = ",",
) -> dict[str, NDArray[np.object_]]:
    """Read a CSV file into columns of strings (NumPy object arrays), one per column name.

    Blank lines are skipped. Cells are not converted: parsing is the encoders' job.

    Args:
        path: The CSV file.
        header: Whether the first row holds the column names.
        names: Column names to use instead (required width: every row's); with ``header=True`` they
            replace the header row. Without header or names, columns are named ``"0"``, ``"1"``, ...
        usecols: Return only these columns (default: all), in this order.
        skipinitialspace: Drop spaces right after each delimiter (``"a, b"`` reads as ``["a", "b"]``).
        delimiter: The field separator.

    Returns:
        ``{column name: 1-D object array of str}``, all of the same length.

    Raises:
        DataError: The file is missing or has no data rows, a row has the wrong number of fields
            (the message names the line), names repeat, or ``usecols`` names an unknown column.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"CSV file not found: {path} (resolved to {path.resolve()}); check the path")
    try:  # utf-8-sig: a byte-order mark (as spreadsheet programs write) is not part of the first name
        with path.open(newline="", encoding="utf-8-sig") as file, _gc_paused():
            reader = csv.reader(file, delimiter=delimiter, skipinitialspace=skipinitialspace)
            header_row = next(filter(None, reader), None) if header else None
            rows = list(filter(None, reader))  # blank lines read as [] and are dropped
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path} is not UTF-8 text (byte {error.start}: {error.object[error.start : error.start + 1]!r}); "
            "save it as UTF-8 (e.g. from latin-1: iconv -f latin1 -t utf-8)"
        ) from None
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror or error}") from None
    if header_row is not None and names is not None and len(header_row) != len(names):
        raise DataError(f"`names` has {len(names)} entries but the header of {path} has {len(header_row)}")
    width = len(names) if names is not None else len(header_row) if header_row is not None else None
    if rows and set(map(len, rows)) != {width or len(rows[0])}:
        _raise_ragged(path, header_row is not None, width, delimiter, skipinitialspace)
    if not rows:
        raise DataError(f"{path} has no data rows")
    columns_names = list(names) if names is not None else header_row or [str(i) for i in range(len(rows[0]))]
    repeated = sorted({name for name in columns_names if columns_names.count(name) > 1})
    if repeated:
        raise DataError(f"{path}: column names {repeated} appear more than once; pass unique `names`")
    wanted = list(usecols) if usecols is not None else columns_names
    unknown = [name for name in wanted if name not in columns_names]
    if unknown:
        raise DataError(f"{path} has no column(s) {unknown}; available columns: {columns_names}")
    table = np.array(rows, dtype=object)  # [rows, columns]: every row has the same width
    return {name: table[:, columns_names.index(name)].copy() for name in wanted}


def _raise_ragged(path: Path, has_header: bool, width: int | None, delimiter: str, skip: bool) -> NoReturn:
    """Find the first row whose width differs (slow path, only on error) and say where it is."""
    source = "`names`" if width is not None and not has_header else "the header" if has_header else "line 1"
    with path.open(newline="", encoding="utf-8-sig") as file:
        reader = csv.reader(file, delimiter=delimiter, skipinitialspace=skip)
        for row in reader:
            if not row:
                continue
            if width is None:
                width = len(row)
            elif len(row) != width:
                raise DataError(
                    f"{path}, line {reader.line_num}: found {len(row)} fields, expected {width} "
                    f"(the width of {source}); fix or remove that row"
                )
    raise AssertionError("unreachable: a ragged row was detected")  # pragma: no cover


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector: building millions of row lists (none of them cyclic) otherwise
    triggers it over and over, which doubles the time to read a large file."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
