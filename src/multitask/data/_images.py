"""Reading image files (JPEG, PNG) into arrays with Pillow, and finding image files on disk."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from numpy.typing import NDArray

from multitask.errors import ConfigError, DataError

#: Image file suffixes the folder loaders collect (compared lower-cased).
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".webp"})
Size = tuple[int, int]


def _pillow() -> ModuleType:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow comes with matplotlib, a dependency
        raise DataError("reading image files needs Pillow: `pip install pillow`") from None
    return Image


def read_image(path: Path, size: Size | None = None) -> NDArray[np.float32]:
    """An RGB image as ``float32 [3, H, W]`` in [0, 1], resized (bilinear) to ``size = (H, W)`` if given."""
    image = _pillow()
    try:
        with image.open(path) as file:
            rgb = file.convert("RGB")
    except OSError as error:
        raise DataError(f"cannot read image {path}: {error}") from None
    if size is not None and rgb.size != (size[1], size[0]):
        rgb = rgb.resize((size[1], size[0]), image.Resampling.BILINEAR)
    array = np.asarray(rgb, dtype=np.float32) / 255.0
    return np.ascontiguousarray(array.transpose(2, 0, 1))


def read_size(path: Path) -> Size:
    """An image file's ``(height, width)``, from its header (the pixels are not decoded)."""
    image = _pillow()
    try:
        with image.open(path) as file:
            width, height = file.size
    except OSError as error:
        raise DataError(f"cannot read image {path}: {error}") from None
    return int(height), int(width)


def read_label_image(path: Path, size: Size | None = None) -> NDArray[Any]:
    """A single-channel label or depth image (8- or 16-bit PNG) as ``[H, W]``, resized by nearest neighbour."""
    image = _pillow()
    try:
        with image.open(path) as file:
            file.load()
            label = file
            if size is not None and label.size != (size[1], size[0]):
                label = label.resize((size[1], size[0]), image.Resampling.NEAREST)
            array = np.array(label)
    except OSError as error:
        raise DataError(f"cannot read label image {path}: {error}") from None
    if array.ndim != 2:
        raise DataError(f"{path} has {array.shape[2]} channels; expected a single-channel label image")
    return array


def image_files(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def require_dir(path: Path, what: str, layout: str) -> Path:
    """``path`` if it is a folder, else a `DataError` naming what is missing and the expected layout."""
    if not path.is_dir():
        raise DataError(f"{what}: folder {path} not found; expected layout: {layout}")
    return path


def require_file(path: Path, what: str, layout: str) -> Path:
    """``path`` if it is a file, else a `DataError` naming what is missing and the expected layout."""
    if not path.is_file():
        raise DataError(f"{what}: file {path} not found; expected layout: {layout}")
    return path


def check_size(size: Any, what: str) -> Size | None:
    """Accept None, an int (square) or ``(height, width)`` of positive ints."""
    if size is None:
        return None
    if isinstance(size, int):
        size = (size, size)
    if not (isinstance(size, tuple | list) and len(size) == 2 and all(isinstance(s, int) and s > 0 for s in size)):
        raise ConfigError(f"{what} must be an int or (height, width) of positive ints; got {size!r}")
    return int(size[0]), int(size[1])
