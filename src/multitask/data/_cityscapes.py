"""Cityscapes (semantic segmentation + disparity) from its published leftImg8bit, gtFine and disparity folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from multitask.data._cells import IGNORE_INDEX
from multitask.data._dataset import hold_out
from multitask.data._images import check_size, read_image, read_label_image, require_dir
from multitask.data._lazy import LazyDataset
from multitask.data._mtdata import MultiTaskData, TaskInfo
from multitask.data._registry import register
from multitask.data._tabular import StrPath
from multitask.errors import ConfigError, DataError

_LAYOUT = (
    "ROOT/leftImg8bit/{train,val}/<city>/<name>_leftImg8bit.png, ROOT/gtFine/{train,val}/<city>/"
    "<name>_gtFine_labelIds.png and (for disparity) ROOT/disparity/{train,val}/<city>/<name>_disparity.png"
)
# Cityscapes label id (0-33) -> train id of the 19 evaluated classes, and -> category (1-7 = flat ...
# vehicle; 0 = void), from the dataset's labels table (cityscapesScripts, helpers/labels.py).
_TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12, 26: 13,
              27: 14, 28: 15, 31: 16, 32: 17, 33: 18}  # fmt: skip
_CATEGORIES = {**dict.fromkeys(range(7, 11), 1), **dict.fromkeys(range(11, 17), 2), **dict.fromkeys(range(17, 21), 3),
               21: 4, 22: 4, 23: 5, 24: 6, 25: 6, **dict.fromkeys(range(26, 34), 7)}  # fmt: skip
CITYSCAPES_CLASSES = ("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
                      "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train",
                      "motorcycle", "bicycle")  # fmt: skip
CITYSCAPES_CATEGORIES = ("flat", "construction", "object", "nature", "sky", "human", "vehicle")


def _lookup(num_classes: Literal[19, 7]) -> NDArray[np.int64]:
    """Label id (0-255) -> class index, ``IGNORE_INDEX`` for ids not evaluated."""
    table = np.full(256, IGNORE_INDEX, dtype=np.int64)
    if num_classes == 19:
        for label_id, train_id in _TRAIN_IDS.items():
            table[label_id] = train_id
    else:
        for label_id, category in _CATEGORIES.items():
            table[label_id] = category - 1
    return table


def _samples(root: Path, split: str, with_disparity: bool) -> list[tuple[Path, Path, Path | None]]:
    images = require_dir(root / "leftImg8bit" / split, "Cityscapes", _LAYOUT)
    files = sorted(images.glob("*/*_leftImg8bit.png"))
    if not files:
        raise DataError(f"Cityscapes: {images} has no <city>/*_leftImg8bit.png file; expected layout: {_LAYOUT}")
    samples = []
    for image in files:
        stem = image.name[: -len("_leftImg8bit.png")]
        city = image.parent.name
        label = root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png"
        disparity = root / "disparity" / split / city / f"{stem}_disparity.png" if with_disparity else None
        for needed in (label, disparity):
            if needed is not None and not needed.is_file():
                raise DataError(f"Cityscapes: {needed} is missing (for {image.name}); expected layout: {_LAYOUT}")
        samples.append((image, label, disparity))
    return samples


@register(
    "cityscapes",
    tasks={"segmentation": "multiclass", "disparity": "regression"},
    input="images",
    dense=True,
    paths=("root",),
    task_arguments=("disparity",),
    description="Cityscapes: 19-class (or 7-category) segmentation and disparity, per pixel",
)
def load_cityscapes(
    root: StrPath,
    *,
    num_classes: Literal[19, 7] = 19,
    disparity: bool = True,
    image_size: int | tuple[int, int] | None = (128, 256),
    val_fraction: float = 0.1,
    seed: int = 0,
    num_threads: int = 0,
) -> MultiTaskData:
    """Cityscapes for dense multi-task learning: semantic segmentation and disparity (inverse depth).

    Reads the published layout (``leftImg8bit_trainvaltest.zip``, ``gtFine_trainvaltest.zip`` and
    ``disparity_trainvaltest.zip`` unpacked into ``root``). Samples are read from disk when a batch is
    drawn (`LazyDataset`) and resized to ``image_size`` (default 128×256, as MTAN and LibMTL): images
    bilinearly, labels and disparity by nearest neighbour.

    Columns: ``x [3, H, W]`` RGB in [0, 1]; ``segmentation [H, W]`` int64: the 19 evaluated classes
    (train ids, `CITYSCAPES_CLASSES`) or, with ``num_classes=7``, the 7 categories (`CITYSCAPES_CATEGORIES`,
    as MTAN's 7-class version); every other label id is ``-100`` (ignored). ``disparity [1, H, W]``
    float32 = ``(p - 1) / 256`` for stored value ``p > 0``, NaN where ``p = 0`` (no measurement), as the
    dataset's documentation defines it. The public test set has no labels, so ``val`` is the test split
    and ``val_fraction`` of ``train`` (seeded) the validation split.

    Both tasks are dense (per pixel): `MultiTaskData.make_tasks` builds them as ``Task(..., dense=True)``
    (``TaskInfo.dense``).

    Args:
        root: The folder holding ``leftImg8bit``, ``gtFine`` and ``disparity``.
        num_classes: 19 (classes) or 7 (categories).
        disparity: Include the disparity task (needs the ``disparity`` folder).
        image_size: ``(height, width)``, one int for square, or None to keep 1024×2048.
        val_fraction: Fraction of the training images held out for validation (0: none).
        seed: Seed of that split.
        num_threads: Threads reading the files of a batch.

    Raises:
        DataError: A folder or file is missing (the message names it and the expected layout).

    References:
        Cordts et al., "The Cityscapes Dataset for Semantic Urban Scene Understanding", CVPR 2016.
    """
    if num_classes not in (19, 7):
        raise ConfigError(f"num_classes must be 19 (classes) or 7 (categories); got {num_classes}")
    if not 0 <= val_fraction < 1:
        raise ConfigError(f"val_fraction must be in [0, 1); got {val_fraction}")
    size = check_size(image_size, "image_size")
    root = require_dir(Path(root), "Cityscapes", _LAYOUT)
    lookup = _lookup(num_classes)
    columns = ["x", "segmentation", *(["disparity"] if disparity else [])]

    def dataset(split: str) -> LazyDataset:
        samples = _samples(root, split, disparity)

        def read(i: int) -> dict[str, NDArray[Any]]:
            image, label, disparity_file = samples[i]
            out = {"x": read_image(image, size), "segmentation": lookup[read_label_image(label, size)]}
            if disparity_file is not None:
                raw = read_label_image(disparity_file, size).astype(np.float32)
                out["disparity"] = np.where(raw > 0, (raw - 1.0) / 256.0, np.nan).astype(np.float32)[None]
            return out

        return LazyDataset(len(samples), read, columns, num_threads=num_threads)

    train, test = dataset("train"), dataset("val")
    val = None
    if val_fraction:
        train, val = hold_out(train, val_fraction, np.random.default_rng(seed), "Cityscapes")
    names = CITYSCAPES_CLASSES if num_classes == 19 else CITYSCAPES_CATEGORIES
    infos = {
        "segmentation": TaskInfo(
            "segmentation", "multiclass", num_classes, classes=names, metrics=("miou", "pixel_accuracy"), dense=True
        )
    }
    if disparity:
        infos["disparity"] = TaskInfo("disparity", "regression", 1, metrics=("abs_err", "rel_err"), dense=True)
    return MultiTaskData(
        train=train,
        val=val,
        test=test,
        task_info=infos,
        name="Cityscapes",
        source="Cityscapes (Cordts et al. 2016), from ROOT",
        licence="Cityscapes terms of use: non-commercial research and teaching",
        preprocessing=f"resized to {size}; label ids -> {num_classes} classes (others -100); disparity (p-1)/256",
    )
