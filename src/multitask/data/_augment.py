"""`ImageAugmentation`: random flips and padded crops of one sample's image, drawn from torch's global generator."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor
from torch.nn import functional

from multitask.errors import ConfigError, DataError


class ImageAugmentation:
    r"""Randomly flips an image left-right and/or crops it back to its size after zero-padding: one sample at a time.

    For an image ``x [C, H, W]`` and padding ``p``, the crop is the window
    ``pad(x, p)[:, i : i + H, j : j + W]`` with ``i, j`` drawn uniformly from ``{0, …, 2p}`` (``pad`` adds
    ``p`` rows or columns of zeros on each side), i.e. the image shifted by ``(i − p, j − p)`` pixels with
    zeros filling in; then, if ``hflip``, with probability 1/2 the columns are reversed:
    ``x'[:, :, w] = x[:, :, W − 1 − w]``. With ``p = 4`` and ``hflip`` on 32×32 images this is the standard
    CIFAR augmentation (He et al. 2016, Sec. 4.2; after Krizhevsky et al. 2012's crops and reflections).

    The random numbers come from torch's global generator (`torch.rand`, `torch.randint`), which the
    library's loaders seed per batch (in worker processes too), so augmented runs are reproducible. It
    is a training-time transform: pass it to the Trainer as its training transform, not to evaluation.

    Args:
        hflip: Flip left-right with probability 1/2.
        crop_padding: ``p``, the zero padding on each side before the random crop (0: no crop).
        key: The sample's image column.

    Raises:
        ConfigError: ``crop_padding`` is negative or not an int, ``hflip`` is not a bool, or ``key`` is empty.

    Example:
        >>> augment = ImageAugmentation(hflip=True, crop_padding=4)
        >>> sample = {"x": torch.rand(3, 32, 32), "label": torch.tensor(7)}
        >>> out = augment(sample)
        >>> out["x"].shape, out["label"] is sample["label"]
        (torch.Size([3, 32, 32]), True)

    References:
        Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep Convolutional Neural Networks",
        NeurIPS 2012. He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", CVPR 2016.
    """

    def __init__(self, hflip: bool = False, crop_padding: int = 0, key: str = "x") -> None:
        if not isinstance(hflip, bool):
            raise ConfigError(f"hflip must be True or False; got {hflip!r}")
        if isinstance(crop_padding, bool) or not isinstance(crop_padding, int) or crop_padding < 0:
            raise ConfigError(f"crop_padding must be an int ≥ 0 (pixels of zeros on each side); got {crop_padding!r}")
        if not isinstance(key, str) or not key:
            raise ConfigError(f"key must name the image column, e.g. 'x'; got {key!r}")
        self.hflip = hflip
        self.crop_padding = crop_padding
        self.key = key

    def __call__(self, sample: Mapping[str, Tensor]) -> dict[str, Tensor]:
        """A new sample dict: the image at ``key`` augmented, the other columns as they are.

        Raises:
            DataError: ``sample`` has no ``key``, or its value is not a ``[C, H, W]`` tensor.
        """
        if self.key not in sample:
            raise DataError(f"ImageAugmentation: the sample has no column {self.key!r}; it has {sorted(sample)}")
        image = sample[self.key]
        if not isinstance(image, Tensor) or image.dim() != 3:
            shape = tuple(image.shape) if isinstance(image, Tensor) else type(image).__name__
            raise DataError(
                f"ImageAugmentation: column {self.key!r} must be one image [C, H, W] (a sample, not a batch); "
                f"got {shape}"
            )
        p = self.crop_padding
        if p > 0:
            height, width = image.shape[1:]
            i, j = torch.randint(0, 2 * p + 1, (2,)).tolist()
            image = functional.pad(image, (p, p, p, p))[:, i : i + height, j : j + width]
        if self.hflip and bool(torch.rand(()) < 0.5):
            image = torch.flip(image, dims=(2,))
        return {**sample, self.key: image}

    def __repr__(self) -> str:
        return f"ImageAugmentation(hflip={self.hflip}, crop_padding={self.crop_padding}, key={self.key!r})"
