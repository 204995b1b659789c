"""NYUv2 (13-class segmentation, depth, surface normals) in the pre-processed ``.npy`` layout of MTAN and LibMTL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from multitask.data._cells import IGNORE_INDEX
from multitask.data._dataset import hold_out
from multitask.data._images import require_dir
from multitask.data._lazy import LazyDataset
from multitask.data._mtdata import MultiTaskData, TaskInfo
from multitask.data._registry import register
from multitask.data._tabular import StrPath
from multitask.errors import ConfigError, DataError

_LAYOUT = (
    "ROOT/{train,val}/{image,label,depth,normal}/<i>.npy: image [H, W, 3] float, label [H, W] (-1 = unlabelled), "
    "depth [H, W, 1], normal [H, W, 3]"
)
_FOLDERS = ("image", "label", "depth", "normal")


def _stems(folder: Path) -> list[str]:
    """The sample names (``0``, ``1``, ...) of ``folder/*.npy``, in numeric order."""
    stems = [p.stem for p in folder.glob("*.npy")]
    if not stems:
        raise DataError(f"NYUv2: {folder} holds no .npy file; expected layout: {_LAYOUT}")
    return sorted(stems, key=lambda s: (len(s), s))


def read_nyuv2_sample(root: Path, stem: str) -> dict[str, NDArray[Any]]:
    """One sample: ``x [3, H, W]`` float32, ``segmentation [H, W]`` int64 (unlabelled = ``-100``),
    ``depth [1, H, W]`` and ``normal [3, H, W]`` float32 with invalid pixels (all-zero ground truth) as NaN."""
    image, label, depth, normal = (np.load(root / folder / f"{stem}.npy", allow_pickle=False) for folder in _FOLDERS)
    for name, array, ndim in (("image", image, 3), ("label", label, 2), ("depth", depth, 3), ("normal", normal, 3)):
        if array.ndim != ndim:
            raise DataError(f"NYUv2: {root / name / stem}.npy has shape {array.shape}; expected layout: {_LAYOUT}")
    segmentation = np.asarray(label).astype(np.int64)
    segmentation[segmentation < 0] = IGNORE_INDEX
    depth = np.moveaxis(depth, -1, 0).astype(np.float32)
    normal = np.moveaxis(normal, -1, 0).astype(np.float32)
    depth[:, depth.sum(axis=0) == 0] = np.nan  # as LibMTL's metrics: depth 0 means "no measurement"
    normal[:, np.abs(normal).sum(axis=0) == 0] = np.nan
    return {
        "x": np.moveaxis(image, -1, 0).astype(np.float32),
        "segmentation": segmentation,
        "depth": depth,
        "normal": normal,
    }


def _split(root: Path, num_threads: int) -> LazyDataset:
    require_dir(root, "NYUv2", _LAYOUT)
    stems = _stems(require_dir(root / "image", "NYUv2", _LAYOUT))
    for folder in _FOLDERS[1:]:
        present = {p.stem for p in require_dir(root / folder, "NYUv2", _LAYOUT).glob("*.npy")}
        missing = [s for s in stems if s not in present]
        if missing:
            raise DataError(f"NYUv2: {root / folder} lacks {[f'{s}.npy' for s in missing[:5]]}; layout: {_LAYOUT}")

    def read(i: int) -> dict[str, NDArray[Any]]:
        return read_nyuv2_sample(root, stems[i])

    return LazyDataset(len(stems), read, ["x", "segmentation", "depth", "normal"], num_threads=num_threads)


@register(
    "nyuv2",
    tasks={"segmentation": "multiclass", "depth": "regression", "normal": "regression"},
    input="images",
    dense=True,
    paths=("root",),
    description="NYUv2 (MTAN/LibMTL release): 13-class segmentation, depth and surface normals, per pixel",
)
def load_nyuv2(root: StrPath, *, val_fraction: float = 0.1, seed: int = 0, num_threads: int = 0) -> MultiTaskData:
    """NYUv2 for dense multi-task learning: 13-class semantic segmentation, depth and surface normals.

    Reads the pre-processed release used by MTAN (Liu et al. 2019) and LibMTL: ``root/train`` (795 images)
    and ``root/val`` (654), each with ``image``, ``label``, ``depth`` and ``normal`` folders of ``<i>.npy``
    files, images 288×384. Samples are read from disk when a batch is drawn (`LazyDataset`).

    Columns: ``x [3, H, W]`` (the stored image values, channels first); ``segmentation [H, W]`` int64 class
    indices 0-12, ``-100`` where unlabelled (stored as -1); ``depth [1, H, W]``; ``normal [3, H, W]``. Depth
    and normals are NaN where the ground truth is all zeros (no measurement), the library's mark of a
    missing label. Splits: ``root/val`` is the test split (as those papers report on it);
    ``val_fraction`` of ``root/train`` (seeded) is the validation split.

    The three tasks are dense (per pixel): their `TaskInfo` has ``dense=True`` and suggests LibMTL's
    metrics (segmentation: mIoU and pixel accuracy; depth: absolute and relative error; normals: mean and
    median angle error and the share of pixels within 11.25°, 22.5° and 30°) and losses (cross-entropy, L1,
    cosine); `MultiTaskData.make_tasks` builds them as ``Task(..., dense=True)``.

    Args:
        root: The folder holding ``train`` and ``val``.
        val_fraction: Fraction of the training images held out for validation (0: none).
        seed: Seed of that split.
        num_threads: Threads reading the files of a batch (0: the calling thread).

    Raises:
        DataError: A folder or file is missing or has the wrong shape (the message names it and the layout).

    References:
        Silberman et al., "Indoor Segmentation and Support Inference from RGBD Images", ECCV 2012; Liu, Johns
        & Davison, "End-to-End Multi-Task Learning with Attention", CVPR 2019 (the pre-processed release).
    """
    if not 0 <= val_fraction < 1:
        raise ConfigError(f"val_fraction must be in [0, 1); got {val_fraction}")
    root = require_dir(Path(root), "NYUv2", _LAYOUT)
    train, test = _split(root / "train", num_threads), _split(root / "val", num_threads)
    val = None
    if val_fraction:
        train, val = hold_out(train, val_fraction, np.random.default_rng(seed), "NYUv2")
    infos = {
        "segmentation": TaskInfo(
            "segmentation", "multiclass", 13, metrics=("miou", "pixel_accuracy"), dense=True, description="13 classes"
        ),
        "depth": TaskInfo("depth", "regression", 1, metrics=("abs_err", "rel_err"), dense=True),
        "normal": TaskInfo(
            "normal",
            "regression",
            3,
            loss="cosine",
            metrics=("mean_angle", "median_angle", "within_11.25", "within_22.5", "within_30"),
            dense=True,
        ),
    }
    return MultiTaskData(
        train=train,
        val=val,
        test=test,
        task_info=infos,
        name="NYUv2",
        source="NYU Depth v2 (Silberman et al. 2012), MTAN/LibMTL pre-processed .npy release, from ROOT",
        licence="NYU Depth v2: research use (no licence stated)",
        preprocessing="channels first; unlabelled class -1 -> -100; zero depth/normal -> NaN",
    )
