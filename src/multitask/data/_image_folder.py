"""A folder of images whose per-task labels are the columns of a CSV file, one row per image."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, get_args

import numpy as np
import torch
from numpy.typing import NDArray

from multitask.data._cells import IGNORE_INDEX, MISSING_VALUES, is_missing, parses_as_float
from multitask.data._folders import image_dataset, split_three_ways
from multitask.data._images import check_size, read_size, require_dir, require_file
from multitask.data._lazy import LazyDataset
from multitask.data._mtdata import MultiTaskData, TaskInfo
from multitask.data._registry import register
from multitask.data._tabular import StrPath, read_csv_columns
from multitask.data._targets import TargetKind
from multitask.errors import ConfigError, DataError

#: An integer-like column with at most this many distinct values (and two rows per value on average) is
#: inferred multiclass; a text column with more is refused unless its kind is given.
MAX_INFERRED_CLASSES = 50
SPLITS = ("train", "val", "test")
_LAYOUT = (
    "ROOT/<image files, in any sub-folders> and a CSV file (ROOT/labels.csv) with a header row, one row per "
    "image: the image's path relative to ROOT in the image column, one label column per task"
)


@register(
    "image_folder",
    tasks=None,
    input="images",
    paths=("root", "labels"),
    description="your images in a folder, one task per label column of a CSV file",
)
def load_image_folder(
    root: StrPath,
    labels: StrPath = "labels.csv",
    *,
    image_column: str = "image",
    tasks: Sequence[str] | Mapping[str, TargetKind] | None = None,
    image_size: int | tuple[int, int] | None = None,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    split_column: str | None = None,
    seed: int = 0,
    num_threads: int = 0,
) -> MultiTaskData:
    """Images in a folder, with one task per label column of a CSV file (one row per image).

    The CSV file has a header row; ``image_column`` holds each image's path relative to ``root``, and
    every other column (or each column in ``tasks``) is one task, named after the column. Each task's
    kind is inferred from its non-empty cells, all rows together:

    - every value 0 or 1: ``binary``, float32 0/1 labels;
    - text, or integers with at most `MAX_INFERRED_CLASSES` distinct values and on average two rows per
      value: ``multiclass``, int64 indices into the distinct values in sorted order (numeric order for
      numbers), which are the task's ``classes``;
    - other numbers: ``regression``, float32.

    A mapping ``tasks={column: kind}`` sets the kinds instead (a binary column then needs 0/1 or exactly
    two distinct values, the later one in sorted order being 1). An empty cell (or one of `MISSING_VALUES`)
    is a missing label: NaN for float targets, ``-100`` for class indices, which the tasks mask out.

    Images are read when a batch is drawn (`LazyDataset`), as ``x: float32 [3, H, W]`` in [0, 1] (RGB /
    255), resized to ``image_size`` (bilinear); without it every image must have the same size (each
    file's header is read once to check). Splits: the ``split_column``'s ``train`` / ``val`` / ``test``
    cells, else a seeded random split ``1 − val − test`` / ``val_fraction`` / ``test_fraction``; a split
    without images is None.

    Args:
        root: The folder of the images.
        labels: The CSV file; a relative path is taken from ``root``.
        image_column: The column of image paths.
        tasks: The task columns (default: every column but the image and split columns), or
            ``{column: kind}`` with kinds ``"binary"``, ``"multiclass"`` or ``"regression"``.
        image_size: ``(height, width)`` or one int for square images; None: keep (then all sizes agree).
        val_fraction: Fraction of the images for validation (0: no validation split).
        test_fraction: Fraction for testing (0: no test split).
        split_column: A column of ``train``, ``val`` or ``test`` per image, instead of the random split.
        seed: Seed of the random split.
        num_threads: Threads decoding the images of a batch (0: the calling thread).

    Raises:
        ConfigError: Invalid fractions, kinds, ``image_size`` or ``tasks``.
        DataError: ``root`` or the CSV file is missing, the CSV is empty or lacks a named column, a listed
            image file is missing (the message names it and its row), a task column has no label or does
            not fit its kind, images differ in size without ``image_size``, or no image is for training.

    Example:
        ``load_image_folder("photos", tasks={"smiling": "binary", "age": "regression"}, image_size=64)``
    """
    size = check_size(image_size, "image_size")
    if not (val_fraction >= 0 and test_fraction >= 0 and val_fraction + test_fraction < 1):
        raise ConfigError(f"fractions must be ≥ 0 with a sum below 1; got {val_fraction}, {test_fraction}")
    root = require_dir(Path(root), "image folder", _LAYOUT)
    csv = require_file(root / labels, "image folder labels", _LAYOUT)  # an absolute `labels` stays as it is
    columns = read_csv_columns(csv)
    for role, name in (("image_column", image_column), ("split_column", split_column)):
        if name is not None and name not in columns:
            raise DataError(f"{csv} has no column {name!r} ({role}); its columns: {list(columns)}")
    kinds = _task_kinds(tasks, list(columns), csv, image_column, split_column)
    files = _image_files(root, columns[image_column], csv, image_column)
    if size is None:
        _check_same_size(files)
    encoded = {task: _encode(task, kind, columns[task], csv) for task, kind in kinds.items()}
    if split_column is not None:
        parts = _split_of_column(columns[split_column], csv, split_column)
        how = f"split from column {split_column!r}"
    else:
        parts = split_three_ways(len(files), val_fraction, test_fraction, np.random.default_rng(seed))
        how = f"random split {1 - val_fraction - test_fraction:g}/{val_fraction:g}/{test_fraction:g} (seed {seed})"
    splits: list[LazyDataset | None] = []
    for part in parts:
        rows = torch.from_numpy(part)
        targets = {task: values[rows] for task, (values, _) in encoded.items()}
        splits.append(image_dataset([files[i] for i in part], targets, size, num_threads) if len(part) else None)
    train, val, test = splits
    if train is None:
        raise DataError(f"{csv}: no image is in the training split ({how}); mark some rows train")
    return MultiTaskData(
        train=train,
        val=val,
        test=test,
        task_info={task: info for task, (_, info) in encoded.items()},
        name=root.name or str(root),
        source=f"images under {root}, labels from {csv}",
        preprocessing=f"RGB / 255{f', resized to {size} (bilinear)' if size else ''}; {how}",
    )


def _task_kinds(
    tasks: Sequence[str] | Mapping[str, TargetKind] | None,
    header: list[str],
    csv: Path,
    image_column: str,
    split_column: str | None,
) -> dict[str, TargetKind | None]:
    """Task column -> forced kind (None: infer), after checking the names against the CSV's header."""
    if tasks is None:
        names = [name for name in header if name not in (image_column, split_column)]
        if not names:
            raise DataError(f"{csv} has no label column besides {image_column!r}; add one column per task")
        kinds: dict[str, TargetKind | None] = dict.fromkeys(names)
    elif isinstance(tasks, Mapping):
        kinds = dict(tasks)
        wrong = {name: kind for name, kind in kinds.items() if kind not in get_args(TargetKind)}
        if wrong:
            raise ConfigError(f"task kinds must be one of {get_args(TargetKind)}; got {wrong}")
    elif isinstance(tasks, str) or not all(isinstance(name, str) for name in tasks):
        raise ConfigError(f"tasks must be a list of column names or {{column: kind}}; got {tasks!r}")
    else:
        kinds = dict.fromkeys(tasks)
    if not kinds:
        raise ConfigError("tasks is empty: name at least one label column (or pass None for all of them)")
    unknown = [name for name in kinds if name not in header]
    if unknown:
        raise DataError(f"{csv} has no task column(s) {unknown}; its columns: {header}")
    for name in kinds:
        if name in (image_column, split_column):
            role = "image" if name == image_column else "split"
            raise ConfigError(f"column {name!r} is the {role} column, not a task; leave it out of tasks")
        if name == "x":
            raise ConfigError(f"{csv}: a task cannot be named 'x' (the images' column); rename that column")
    return kinds


def _image_files(root: Path, cells: NDArray[Any], csv: Path, column: str) -> list[Path]:
    """The image file of each row; each must exist."""
    files = []
    for row, cell in enumerate(cells.tolist(), start=1):
        name = str(cell).strip()
        if not name:
            raise DataError(f"{csv}, data row {row}: the {column!r} cell is empty; give each row its image's path")
        path = root / name
        if not path.is_file():
            raise DataError(f"{csv}, data row {row} ({column} = {name!r}): image file {path} not found")
        files.append(path)
    return files


def _check_same_size(files: Sequence[Path]) -> None:
    first = read_size(files[0])
    for path in files[1:]:
        found = read_size(path)
        if found != first:
            raise DataError(
                f"images differ in size: {files[0]} is {first[0]}×{first[1]} (height × width) and {path} is "
                f"{found[0]}×{found[1]}; pass image_size to resize them all"
            )


def _encode(task: str, kind: TargetKind | None, values: NDArray[Any], csv: Path) -> tuple[torch.Tensor, TaskInfo]:
    """A task column's labels (float32 0/1, int64 class indices or float32 values) and its `TaskInfo`."""
    what = f"{csv}: task column {task!r}"
    missing = is_missing(values)
    cells = [str(value).strip() for value in values.tolist()]
    present = [cell for cell, gap in zip(cells, missing.tolist(), strict=True) if not gap]
    if not present:
        raise DataError(f"{what} has no label at all: every cell is empty or one of {sorted(MISSING_VALUES)}")
    numeric = all(map(parses_as_float, present))
    # numbers are classes by value ("1" and "1.0" are one class), in numeric order
    key = {cell: _number_name(float(cell)) for cell in set(present)} if numeric else {cell: cell for cell in present}
    names = sorted(set(key.values()), key=float) if numeric else sorted(set(key.values()))
    kind = kind or _infer_kind(what, names, len(present), numeric)
    description = f"column {task!r} of {csv.name}"
    if kind == "regression":
        if not numeric:
            bad = next(cell for cell in present if not parses_as_float(cell))
            raise DataError(f"{what} is regression but holds {bad!r}; it needs numbers (or empty cells)")
        labels = np.array([np.nan if gap else float(cell) for cell, gap in zip(cells, missing.tolist(), strict=True)])
        return torch.from_numpy(labels.astype(np.float32)), TaskInfo(task, kind, 1, description=description)
    index = {name: i for i, name in enumerate(names)}
    codes = np.array([index[key[cell]] if not gap else IGNORE_INDEX for cell, gap in zip(cells, missing, strict=True)])
    if kind == "multiclass":
        info = TaskInfo(task, kind, len(names), classes=tuple(names), description=description)
        return torch.from_numpy(codes.astype(np.int64)), info
    if numeric and set(names) <= {"0", "1"}:
        labels = np.array([float(key[cell]) if not gap else np.nan for cell, gap in zip(cells, missing, strict=True)])
    elif len(names) == 2:
        labels = np.where(missing, np.nan, codes).astype(np.float64)
        description += f": 1 = {names[1]!r}, 0 = {names[0]!r}"
    else:
        raise DataError(
            f"{what} is binary but has {len(names)} distinct values {names[:10]}; it needs 0/1 or exactly two "
            "values (the later one in sorted order is 1): use kind multiclass for more"
        )
    return torch.from_numpy(labels.astype(np.float32)), TaskInfo(task, kind, 1, description=description)


def _number_name(value: float) -> str:
    return str(int(value)) if value.is_integer() else str(value)


def _infer_kind(what: str, names: list[str], count: int, numeric: bool) -> TargetKind:
    """The kind of a column from its distinct values ``names`` (``count`` non-empty cells)."""
    if numeric:
        if set(names) <= {"0", "1"}:
            return "binary"
        integers = all(float(name).is_integer() for name in names)
        few = len(names) <= MAX_INFERRED_CLASSES and 2 * len(names) <= count
        return "multiclass" if integers and few else "regression"
    if len(names) > MAX_INFERRED_CLASSES:
        raise DataError(
            f"{what} holds text with {len(names)} distinct values, more than the {MAX_INFERRED_CLASSES} inferred "
            "as classes: if it is a label, give its kind in tasks={column: 'multiclass'}; else leave it out of tasks"
        )
    return "multiclass"


def _split_of_column(cells: NDArray[Any], csv: Path, column: str) -> list[NDArray[np.int64]]:
    """The rows of each split named in ``column``."""
    split = [str(cell).strip().lower() for cell in cells.tolist()]
    for row, value in enumerate(split, start=1):
        if value not in SPLITS:
            raise DataError(
                f"{csv}, data row {row}: {column} = {cells[row - 1]!r}; expected one of {', '.join(SPLITS)}"
            )
    names = np.array(split)
    return [np.flatnonzero(names == name).astype(np.int64) for name in SPLITS]
