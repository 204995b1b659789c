"""CelebA: 40 binary face attributes per image, read from the published attribute and partition lists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from multitask.data._dataset import ArrayDataset
from multitask.data._folders import image_dataset
from multitask.data._images import check_size, require_dir, require_file
from multitask.data._mtdata import MultiTaskData, TaskInfo
from multitask.data._registry import register
from multitask.data._tabular import StrPath
from multitask.errors import DataError

_LAYOUT = (
    "ROOT/img_align_celeba/<name>.jpg, ROOT/list_attr_celeba.txt (count, 40 attribute names, then "
    "'<name>.jpg' and 40 values of 1/-1 per line) and ROOT/list_eval_partition.txt ('<name>.jpg 0|1|2')"
)

#: The 40 attributes of the published ``list_attr_celeba.txt``, in its order (the tasks `load_celeba` reads).
CELEBA_ATTRIBUTES = ("5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
                     "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair",
                     "Bushy_Eyebrows", "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair",
                     "Heavy_Makeup", "High_Cheekbones", "Male", "Mouth_Slightly_Open", "Mustache",
                     "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin", "Pointy_Nose", "Receding_Hairline",
                     "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair", "Wavy_Hair", "Wearing_Earrings",
                     "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace", "Wearing_Necktie", "Young")  # fmt: skip


def read_celeba_attributes(path: Path) -> tuple[list[str], list[str], np.ndarray]:
    """``(attribute names, file names, values [N, 40] of 0/1)`` from ``list_attr_celeba.txt``.

    Raises:
        DataError: The header or a row is malformed (the message names the line).
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    if len(lines) < 3 or not lines[0].strip().isdigit():
        raise DataError(f"{path}: expected a count, the attribute names, then one line per image; layout: {_LAYOUT}")
    names = lines[1].split()
    files, rows = [], []
    for number, line in enumerate(lines[2:], start=3):
        cells = line.split()
        if not cells:
            continue
        if len(cells) != len(names) + 1 or any(c not in ("1", "-1") for c in cells[1:]):
            raise DataError(f"{path}, line {number}: expected a file name and {len(names)} values of 1 or -1")
        files.append(cells[0])
        rows.append([c == "1" for c in cells[1:]])
    if int(lines[0]) != len(files):
        raise DataError(f"{path}: the first line says {lines[0].strip()} images but {len(files)} are listed")
    return names, files, np.array(rows, dtype=np.float32).reshape(len(files), len(names))


@register(
    "celeba",
    tasks=dict.fromkeys(CELEBA_ATTRIBUTES, "binary"),
    input="images",
    paths=("root",),
    task_arguments=("multilabel",),
    description="CelebA aligned faces: 40 binary attributes, one task each (Sener & Koltun 2018)",
)
def load_celeba(
    root: StrPath,
    *,
    multilabel: bool = False,
    image_size: int | tuple[int, int] | None = 64,
    num_threads: int = 0,
) -> MultiTaskData:
    """CelebA (Liu et al. 2015): 202,599 aligned face images, each with 40 binary attributes.

    Tasks: one binary task per attribute, named as in the attribute list (``Smiling``, ``Male``, ...),
    float32 0/1 (the file's -1 is 0); with ``multilabel=True`` one task ``attributes`` with targets
    ``[N, 40]``. This is the 40-task set-up of Sener & Koltun (2018). Splits: the official partition in
    ``list_eval_partition.txt`` (0 train: 162,770; 1 val: 19,867; 2 test: 19,962). Images
    (``img_align_celeba/*.jpg``, 178×218) are read when a batch is drawn (`LazyDataset`) as ``x [3, H, W]``
    in [0, 1] resized to ``image_size`` (default 64×64, as Sener & Koltun; bilinear). The attributes are
    held in memory.

    Args:
        root: The folder holding ``img_align_celeba`` and the two lists.
        multilabel: One 40-label task instead of 40 binary tasks.
        image_size: ``(height, width)``, one int for square, or None to keep 218×178.
        num_threads: Threads decoding the images of a batch.

    Raises:
        DataError: A file or folder is missing, a list is malformed, or an image is listed in one list only.

    References:
        Liu, Luo, Wang & Tang, "Deep Learning Face Attributes in the Wild", ICCV 2015.
    """
    size = check_size(image_size, "image_size")
    root = require_dir(Path(root), "CelebA", _LAYOUT)
    folder = require_dir(root / "img_align_celeba", "CelebA", _LAYOUT)
    names, files, values = read_celeba_attributes(require_file(root / "list_attr_celeba.txt", "CelebA", _LAYOUT))
    partition: dict[str, int] = {}
    partition_file = require_file(root / "list_eval_partition.txt", "CelebA", _LAYOUT)
    for number, line in enumerate(partition_file.read_text(encoding="utf-8").splitlines(), start=1):
        cells = line.split()
        if not cells:
            continue
        if len(cells) != 2 or cells[1] not in ("0", "1", "2"):
            raise DataError(f"{partition_file}, line {number}: expected '<name>.jpg 0|1|2'; got {line!r}")
        partition[cells[0]] = int(cells[1])
    unlisted = [f for f in files if f not in partition]
    if unlisted or len(partition) != len(files):
        extra = sorted(set(partition) - set(files))
        raise DataError(f"CelebA: the two lists disagree: {unlisted[:3]} lack a partition, {extra[:3]} lack attributes")
    split_of = np.array([partition[f] for f in files])
    labels = torch.from_numpy(values)
    splits: list[ArrayDataset | None] = []
    for code in (0, 1, 2):
        rows = np.flatnonzero(split_of == code)
        if len(rows) == 0:
            splits.append(None)
            continue
        index = torch.from_numpy(rows)
        columns = {"attributes": labels[index]} if multilabel else {n: labels[index, j] for j, n in enumerate(names)}
        splits.append(image_dataset([folder / files[i] for i in rows], columns, size, num_threads))
    if splits[0] is None:
        raise DataError(f"CelebA: {partition_file} assigns no image to the training split (0)")
    if multilabel:
        infos = {"attributes": TaskInfo("attributes", "multilabel", len(names), classes=tuple(names))}
    else:
        infos = {n: TaskInfo(n, "binary", 1, description=f"attribute {n}") for n in names}
    return MultiTaskData(
        train=splits[0],
        val=splits[1],
        test=splits[2],
        task_info=infos,
        name="CelebA",
        source="CelebA (Liu et al. 2015), aligned-and-cropped images, from ROOT",
        licence="CelebA agreement: non-commercial research and educational use only",
        preprocessing=f"attributes -1/1 -> 0/1; RGB / 255 resized to {size}; official partition",
    )
