"""The four 20 Newsgroups binary tasks distributed with the MALSAR toolbox, read from a folder of .mat files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray

from multitask.data._dataset import ArrayDataset
from multitask.data._mtdata import MultiTaskData, TaskInfo
from multitask.data._registry import register
from multitask.errors import ConfigError, DataError

#: Task name → file, as distributed with MALSAR (data/Newsgroup).
NEWSGROUP_FILES = {
    "comp_vs_sci_1": "comp.vs.sci_task1.mat",
    "comp_vs_sci_2": "comp.vs.sci_task2.mat",
    "rec_vs_talk_1": "rec.vs.talk_Task1.mat",
    "rec_vs_talk_2": "rec.vs.talk_Task2.mat",
}


@register(
    "newsgroup",
    tasks=dict.fromkeys(NEWSGROUP_FILES, "binary"),
    input="features",
    multi_input=True,
    paths=("folder",),
    description="20 Newsgroups as MALSAR's four binary tasks (comp vs sci, rec vs talk), term features",
)
def load_newsgroup(
    folder: str | Path,
    *,
    features: str = "tfidf",
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = 0,
) -> MultiTaskData:
    """Four binary text classification tasks from 20 Newsgroups, one dataset per task (multi-input data).

    Each file holds ``fea`` (``n × 2000`` sparse term counts, not TF-IDF; the columns' document
    frequencies correlate at 0.87-0.93 between files, as for one shared 2,000-word vocabulary) and
    ``gnd`` (``n × 1``, 1 or 2: which of two category groups a post is from; ``comp.vs.sci``:
    computing vs science, ``rec.vs.talk``: recreation vs talk, two splits of the subgroups each).
    Labels are float32 ``gnd == 2``; 1,545-1,875 posts per task.

    Features (float32 ``[n, 2000]`` in the column ``x``): ``"counts"``, the stored term counts;
    ``"tfidf"``, ``log(1 + count) · idf`` with ``idf = log((1 + m) / (1 + df)) + 1`` from the ``m``
    training posts of all four tasks, each row then scaled to unit L2 norm. Splits: per task, a
    seeded permutation into train / validation / test. Returns multi-input `MultiTaskData`
    (``{task: dataset}`` per split, columns ``x`` and the task's label column, named after it).

    Args:
        folder: The folder holding the four .mat files (e.g. MALSAR's ``data/Newsgroup``).
        features: ``"tfidf"`` or ``"counts"``.

    Raises:
        DataError: A file is missing or not the expected matrices.
    """
    from scipy.io import loadmat
    from scipy.sparse import issparse

    if features not in ("tfidf", "counts"):
        raise ConfigError(f"features must be 'tfidf' or 'counts'; got {features!r}")
    if not (0 <= val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ConfigError(f"need 0 ≤ val_fraction, 0 < test_fraction, sum < 1; got {val_fraction}, {test_fraction}")
    folder = Path(folder)
    missing = [name for name in NEWSGROUP_FILES.values() if not (folder / name).is_file()]
    if missing:
        raise DataError(f"{folder} lacks {missing}; give the folder of MALSAR's Newsgroup .mat files")
    tasks: dict[str, tuple[NDArray[np.float64], NDArray[np.float32]]] = {}
    for task, name in NEWSGROUP_FILES.items():
        try:
            content = loadmat(str(folder / name))
            fea = content["fea"]
            x = np.asarray(fea.toarray() if issparse(fea) else fea)
            gnd = np.asarray(content["gnd"]).reshape(-1)
        except (KeyError, ValueError, OSError) as error:
            raise DataError(f"{folder / name} is not a Newsgroup file with 'fea' and 'gnd': {error}") from error
        if x.ndim != 2 or x.shape[0] != gnd.shape[0] or not set(np.unique(gnd).tolist()) <= {1, 2}:
            raise DataError(f"{folder / name}: expected fea [n, d] and gnd [n] with labels 1/2")
        tasks[task] = (x.astype(np.float64), (gnd == 2).astype(np.float32))
    widths = {x.shape[1] for x, _ in tasks.values()}
    if len(widths) != 1:
        raise DataError(f"the Newsgroup files have different numbers of features: {sorted(widths)}")
    rows = {
        task: _split_rows(len(y), val_fraction, test_fraction, seed, i)
        for i, (task, (_, y)) in enumerate(tasks.items())
    }
    transform = _tfidf([tasks[t][0][rows[t]["train"]] for t in tasks]) if features == "tfidf" else None
    splits: dict[str, dict[str, ArrayDataset]] = {"train": {}, "val": {}, "test": {}}
    for task, (x, y) in tasks.items():
        for split, index in rows[task].items():
            if len(index) == 0:
                continue
            values = transform(x[index]) if transform is not None else x[index]
            splits[split][task] = ArrayDataset(
                x=torch.from_numpy(values.astype(np.float32)), **{task: torch.from_numpy(y[index])}
            )
    return MultiTaskData(
        train=splits["train"],
        val=splits["val"] or None,
        test=splits["test"],
        task_info={
            task: TaskInfo(task, "binary", metrics=("accuracy", "auc"), description=NEWSGROUP_FILES[task])
            for task in tasks
        },
        feature_names=[f"term_{i}" for i in range(widths.pop())],
        name="newsgroup",
        source="20 Newsgroups (Lang 1995), the four binary tasks distributed with the MALSAR toolbox (data/Newsgroup)",
        licence="not stated by MALSAR; 20 Newsgroups (Lang 1995) is distributed for research use",
        preprocessing=(
            f"labels gnd == 2; {features} features"
            f"{' (log1p counts × idf from the training posts, rows at unit norm)' if features == 'tfidf' else ''}; "
            f"per task a seeded split (test {test_fraction}, validation {val_fraction})"
        ),
    )


def _split_rows(
    n: int, val_fraction: float, test_fraction: float, seed: int, index: int
) -> dict[str, NDArray[np.int64]]:
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1000 + index)).numpy()
    n_test, n_val = round(n * test_fraction), round(n * val_fraction)
    if n - n_test - n_val < 1 or n_test < 1:
        raise DataError(f"a task has too few samples ({n}) for a train/validation/test split")
    return {"train": order[n_test + n_val :], "val": order[n_test : n_test + n_val], "test": order[:n_test]}


def _tfidf(training: list[NDArray[np.float64]]) -> Callable[[NDArray[np.float64]], NDArray[np.float64]]:
    """``counts → log(1 + counts) · idf``, rows at unit norm; ``idf`` from the training rows of every task."""
    stacked = np.concatenate(training)
    document_frequency = (stacked > 0).sum(axis=0)
    idf = np.log((1 + stacked.shape[0]) / (1 + document_frequency)) + 1

    def transform(counts: NDArray[np.float64]) -> NDArray[np.float64]:
        values = np.log1p(counts) * idf
        norms = np.linalg.norm(values, axis=1, keepdims=True)
        result: NDArray[np.float64] = values / np.maximum(norms, 1e-12)
        return result

    return transform
