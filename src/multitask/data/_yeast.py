"""The yeast multi-label data set (14 gene functional classes) as 14 binary tasks or one multi-label task."""

from __future__ import annotations

import gzip

import numpy as np
import torch

from multitask.data._cache import package_file
from multitask.data._dataset import ArrayDataset
from multitask.data._mtdata import MultiTaskData, TaskInfo
from multitask.data._registry import register
from multitask.errors import ConfigError, DataError

YEAST_REQUIREMENT = "river==0.26.1"
YEAST_FEATURES = 103
YEAST_LABELS = 14


@register(
    "yeast",
    tasks={f"class{i}": "binary" for i in range(1, YEAST_LABELS + 1)},
    input="features",
    task_arguments=("multilabel",),
    description="yeast genes (MULAN): 14 functional classes, one binary task each, from 103 features",
)
def load_yeast(
    *, multilabel: bool = False, val_fraction: float = 0.1, test_fraction: float = 0.38, seed: int = 0
) -> MultiTaskData:
    """Yeast (Elisseeff & Weston 2002): 2,417 genes, 103 expression and phylogenetic features, 14 functional classes.

    Tasks: by default one binary task per class, ``class1`` ... ``class14`` (float32 0/1), a gene having 4.2
    classes on average; with ``multilabel=True`` one task ``labels`` with targets ``[N, 14]`` (metrics per
    label, then averaged). Features ``x [N, 103]`` are standardised with the training mean and std.

    Split: at random (seeded), ``test_fraction`` of the genes for testing (0.38 ≈ MULAN's 917 of 2,417) and
    ``val_fraction`` for validation, the rest for training. river's file does not mark MULAN's train/test
    split, so the rows are drawn rather than taken from it.

    Args:
        multilabel: One multi-label task instead of 14 binary tasks.
        val_fraction: Fraction of the genes in the validation split.
        test_fraction: Fraction in the test split.
        seed: Seed of the split.

    Raises:
        DataError: river (which ships yeast.csv.gz) is not installed; the message says how to install it.

    References:
        Elisseeff & Weston, "A Kernel Method for Multi-Labelled Classification", NeurIPS 2001. Data: the MULAN
        repository (Tsoumakas et al., JMLR 2011), as ``river/datasets/yeast.csv.gz`` in river 0.26.1.
    """
    if not (val_fraction > 0 and test_fraction > 0 and val_fraction + test_fraction < 1):
        raise ConfigError(f"fractions must be positive with a sum below 1; got {val_fraction}, {test_fraction}")
    path = package_file("river", "datasets/yeast.csv.gz", YEAST_REQUIREMENT)
    with gzip.open(path, "rt", encoding="utf-8") as file:
        header = file.readline().strip().split(",")
        table = np.loadtxt(file, delimiter=",", dtype=np.float64, ndmin=2)
    if len(header) != YEAST_FEATURES + YEAST_LABELS or table.shape[1] != len(header):
        raise DataError(f"{path}: expected {YEAST_FEATURES} features and {YEAST_LABELS} labels; got {table.shape}")
    features, labels = table[:, :YEAST_FEATURES], table[:, YEAST_FEATURES:].astype(np.float32)
    n = len(table)
    order = np.random.default_rng(seed).permutation(n)
    n_test, n_val = round(test_fraction * n), round(val_fraction * n)
    test, val, train = (np.sort(part) for part in np.split(order, [n_test, n_test + n_val]))
    mean, std = features[train].mean(axis=0), features[train].std(axis=0)
    x = torch.from_numpy(((features - mean) / np.where(std > 0, std, 1.0)).astype(np.float32))
    names = tuple(f"class{i}" for i in range(1, YEAST_LABELS + 1))
    if multilabel:
        columns = {"labels": torch.from_numpy(labels)}
        infos = {"labels": TaskInfo("labels", "multilabel", YEAST_LABELS, classes=names, description="14 classes")}
    else:
        columns = {name: torch.from_numpy(labels[:, i].copy()) for i, name in enumerate(names)}
        infos = {name: TaskInfo(name, "binary", 1, description=f"gene has functional {name}") for name in names}
    everything = ArrayDataset(x=x, **columns)
    return MultiTaskData(
        train=everything.subset(torch.from_numpy(train)),
        val=everything.subset(torch.from_numpy(val)),
        test=everything.subset(torch.from_numpy(test)),
        task_info=infos,
        feature_names=header[:YEAST_FEATURES],
        name="yeast",
        source="yeast (Elisseeff & Weston 2001) from MULAN, as river/datasets/yeast.csv.gz in the PyPI package "
        "river 0.26.1",
        licence="no licence stated by MULAN; river: BSD-3-Clause",
        preprocessing="features standardised (training statistics); random split",
    )
