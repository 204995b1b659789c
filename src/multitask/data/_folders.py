"""Image classification data in class-per-folder layouts: Office-31, Office-Home (one task per domain) and ImageNet."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from multitask.data._dataset import ArrayDataset
from multitask.data._images import Size, check_size, image_files, read_image, require_dir
from multitask.data._lazy import LazyDataset
from multitask.data._mtdata import MultiTaskData, TaskInfo
from multitask.data._registry import register
from multitask.data._tabular import StrPath
from multitask.errors import ConfigError, DataError

OFFICE31_DOMAINS = {"amazon": "amazon", "dslr": "dslr", "webcam": "webcam"}
OFFICE_HOME_DOMAINS = {"art": "Art", "clipart": "Clipart", "product": "Product", "real_world": "Real World"}
_OFFICE31_LAYOUT = "ROOT/{amazon,dslr,webcam}/images/<class>/*.jpg (31 classes)"
_OFFICE_HOME_LAYOUT = "ROOT/{Art,Clipart,Product,Real World}/<class>/*.jpg (65 classes; 'Real_World' also accepted)"
_IMAGENET_LAYOUT = "ROOT/train/<wnid>/*.JPEG and ROOT/val/<wnid>/*.JPEG (validation images sorted into class folders)"


def class_folder_files(folder: Path, what: str, layout: str) -> tuple[list[Path], list[str]]:
    """Every image in ``folder/<class>/``, sorted, with its class name.

    Raises:
        DataError: ``folder`` is missing, has no class folders, or a class folder has no image.
    """
    require_dir(folder, what, layout)
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if not classes:
        raise DataError(f"{what}: {folder} has no class folders; expected layout: {layout}")
    files: list[Path] = []
    labels: list[str] = []
    for name in classes:
        images = image_files(folder / name)
        if not images:
            raise DataError(f"{what}: class folder {folder / name} holds no image file; expected layout: {layout}")
        files += images
        labels += [name] * len(images)
    return files, labels


def image_dataset(files: Sequence[Path], columns: dict[str, Any], size: Size | None, num_threads: int) -> LazyDataset:
    """A `LazyDataset` whose ``x`` is each file read as ``float32 [3, H, W]`` in [0, 1], resized to ``size``."""
    paths = list(files)

    def read(i: int) -> dict[str, NDArray[np.float32]]:
        return {"x": read_image(paths[i], size)}

    return LazyDataset(len(paths), read, ["x"], columns, num_threads=num_threads)


def split_three_ways(n: int, val_fraction: float, test_fraction: float, rng: np.random.Generator) -> list[NDArray[Any]]:
    """Sorted row numbers ``[train, val, test]`` of a random split of ``n`` rows, ``round(fraction * n)`` held out each.

    A zero fraction gives an empty part; every other part must get at least one row.

    Raises:
        DataError: A part with a positive fraction (or the training part) would be empty.
    """
    order = rng.permutation(n)
    n_test, n_val = round(test_fraction * n), round(val_fraction * n)
    if n - n_test - n_val < 1 or (val_fraction > 0 and n_val < 1) or (test_fraction > 0 and n_test < 1):
        raise DataError(f"cannot split {n} images {1 - val_fraction - test_fraction:g}/{val_fraction}/{test_fraction}")
    return [np.sort(order[n_test + n_val :]), np.sort(order[n_test : n_test + n_val]), np.sort(order[:n_test])]


def _load_office(
    name: str,
    root: StrPath,
    domains: dict[str, str],
    subfolder: str,
    layout: str,
    *,
    image_size: int | tuple[int, int] | None,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    num_threads: int,
) -> MultiTaskData:
    size = check_size(image_size, "image_size")
    if not (val_fraction > 0 and test_fraction > 0 and val_fraction + test_fraction < 1):
        raise ConfigError(f"fractions must be positive with a sum below 1; got {val_fraction}, {test_fraction}")
    root = require_dir(Path(root), name, layout)
    found: dict[str, tuple[list[Path], list[str]]] = {}
    for task, folder_name in domains.items():
        folder = root / folder_name
        if not folder.is_dir() and " " in folder_name:
            folder = root / folder_name.replace(" ", "_")
        found[task] = class_folder_files(folder / subfolder if subfolder else folder, f"{name} {task}", layout)
    classes = sorted({label for _, labels in found.values() for label in labels})
    index = {label: i for i, label in enumerate(classes)}
    splits: list[dict[str, ArrayDataset]] = [{}, {}, {}]
    rng = np.random.default_rng(seed)
    for task, (files, labels) in found.items():
        codes = torch.tensor([index[label] for label in labels])
        for split, rows in zip(splits, split_three_ways(len(files), val_fraction, test_fraction, rng), strict=True):
            split[task] = image_dataset([files[i] for i in rows], {task: codes[rows]}, size, num_threads)
    infos = {
        task: TaskInfo(task, "multiclass", len(classes), classes=tuple(classes), description=f"object class in {task}")
        for task in domains
    }
    return MultiTaskData(
        train=splits[0],
        val=splits[1],
        test=splits[2],
        task_info=infos,
        name=name,
        preprocessing=f"RGB / 255, resized to {size} (bilinear); per-domain random split "
        f"{1 - val_fraction - test_fraction:g}/{val_fraction:g}/{test_fraction:g}",
    )


@register(
    "office31",
    tasks=dict.fromkeys(OFFICE31_DOMAINS, "multiclass"),
    input="images",
    multi_input=True,
    paths=("root",),
    description="Office-31: one 31-class object task per domain (amazon, dslr, webcam)",
)
def load_office31(
    root: StrPath,
    *,
    image_size: int | tuple[int, int] | None = 224,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
    num_threads: int = 0,
) -> MultiTaskData:
    """Office-31 (Saenko et al. 2010) as multi-input data: one 31-class task per domain (amazon, dslr, webcam).

    Expects ``root/<domain>/images/<class>/*.jpg``, the layout of the published archive. Images are read
    from disk when a batch is drawn (`LazyDataset`), as ``x: float32 [3, H, W]`` in [0, 1] resized to
    ``image_size`` (bilinear; None keeps each file's size, which then must agree within a batch). Each
    domain is split at random (seeded) into train/val/test, 60/20/20 by default as in LibMTL's Office
    benchmark; class indices follow the sorted class folder names of all domains.

    Args:
        root: The folder holding the domain folders.
        image_size: ``(height, width)`` or one int for square images; None: keep.
        val_fraction: Fraction of each domain for validation.
        test_fraction: Fraction for testing.
        seed: Seed of the splits.
        num_threads: Threads decoding the images of a batch (0: the calling thread).

    Raises:
        DataError: A domain or class folder is missing or empty (the message names it and the layout).

    References:
        Saenko et al., "Adapting Visual Category Models to New Domains", ECCV 2010; Lin & Zhang, "LibMTL: A
        Python Library for Multi-Task Learning", JMLR 2023 (the multi-task protocol).
    """
    data = _load_office(
        "Office-31",
        root,
        OFFICE31_DOMAINS,
        "images",
        _OFFICE31_LAYOUT,
        image_size=image_size,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        num_threads=num_threads,
    )
    return _with_source(data, "Office-31 (Saenko et al. 2010), from ROOT", "research use (no licence stated)")


@register(
    "office_home",
    tasks=dict.fromkeys(OFFICE_HOME_DOMAINS, "multiclass"),
    input="images",
    multi_input=True,
    paths=("root",),
    description="Office-Home: one 65-class object task per domain (art, clipart, product, real world)",
)
def load_office_home(
    root: StrPath,
    *,
    image_size: int | tuple[int, int] | None = 224,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
    num_threads: int = 0,
) -> MultiTaskData:
    """Office-Home (Venkateswara et al. 2017): one 65-class task per domain (art, clipart, product, real_world).

    Expects ``root/<Domain>/<class>/*.jpg`` with the domain folders ``Art``, ``Clipart``, ``Product`` and
    ``Real World`` (or ``Real_World``). Otherwise as `load_office31`.

    Raises:
        DataError: A domain or class folder is missing or empty (the message names it and the layout).

    References:
        Venkateswara et al., "Deep Hashing Network for Unsupervised Domain Adaptation", CVPR 2017.
    """
    data = _load_office(
        "Office-Home",
        root,
        OFFICE_HOME_DOMAINS,
        "",
        _OFFICE_HOME_LAYOUT,
        image_size=image_size,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        seed=seed,
        num_threads=num_threads,
    )
    return _with_source(data, "Office-Home (Venkateswara et al. 2017), from ROOT", "research and education only")


@register(
    "imagenet",
    tasks={"label": "multiclass"},
    input="images",
    paths=("root",),
    description="ImageNet (ILSVRC-2012) in class folders as one 1,000-class task",
)
def load_imagenet(
    root: StrPath,
    *,
    image_size: int | tuple[int, int] | None = 224,
    val_fraction: float = 0.01,
    seed: int = 0,
    num_threads: int = 0,
) -> MultiTaskData:
    """ImageNet (ILSVRC-2012) in its class-per-folder layout, as one task ``label`` (e.g. a transfer source task).

    Expects ``root/train/<wnid>/*.JPEG`` and ``root/val/<wnid>/*.JPEG`` (the 50,000 validation images sorted
    into class folders, as the usual preparation scripts do). Classes are the sorted training folder names
    (``classes`` in the task info); a validation folder with an unknown class is an error. The official
    validation images are the test split; ``val_fraction`` of the training images (seeded) are the
    validation split. Images are read lazily as in `load_office31`.

    Raises:
        DataError: ``train`` or ``val`` is missing, empty or has a class not in ``train``.

    References:
        Russakovsky et al., "ImageNet Large Scale Visual Recognition Challenge", IJCV 2015.
    """
    size = check_size(image_size, "image_size")
    if not 0 < val_fraction < 1:
        raise ConfigError(f"val_fraction must be in (0, 1); got {val_fraction}")
    root = require_dir(Path(root), "ImageNet", _IMAGENET_LAYOUT)
    train_files, train_labels = class_folder_files(root / "train", "ImageNet train", _IMAGENET_LAYOUT)
    test_files, test_labels = class_folder_files(root / "val", "ImageNet val", _IMAGENET_LAYOUT)
    classes = sorted(set(train_labels))
    index = {name: i for i, name in enumerate(classes)}
    unknown = sorted(set(test_labels) - set(index))
    if unknown:
        raise DataError(f"ImageNet val has classes {unknown[:5]} with no train folder; expected: {_IMAGENET_LAYOUT}")
    codes = torch.tensor([index[name] for name in train_labels])
    order = np.random.default_rng(seed).permutation(len(train_files))
    held = max(1, round(val_fraction * len(train_files)))
    val_rows, train_rows = np.sort(order[:held]), np.sort(order[held:])
    if len(train_rows) == 0:
        raise DataError(f"ImageNet train has {len(train_files)} images: none left after the validation split")

    def part(files: Sequence[Path], labels: torch.Tensor) -> LazyDataset:
        return image_dataset(files, {"label": labels}, size, num_threads)

    return MultiTaskData(
        train=part([train_files[i] for i in train_rows], codes[train_rows]),
        val=part([train_files[i] for i in val_rows], codes[val_rows]),
        test=part(test_files, torch.tensor([index[name] for name in test_labels])),
        task_info={"label": TaskInfo("label", "multiclass", len(classes), classes=tuple(classes))},
        name="ImageNet",
        source="ILSVRC-2012 (Russakovsky et al. 2015), from ROOT",
        licence="ImageNet terms of access: non-commercial research and education",
        preprocessing=f"RGB / 255, resized to {size} (bilinear); {val_fraction:g} of train held out for validation",
    )


def _with_source(data: MultiTaskData, source: str, licence: str) -> MultiTaskData:
    return replace(data, source=source, licence=licence)
