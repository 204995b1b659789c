"""MovieLens 100K as a two-objective recommendation problem: rating regression and "liked" classification."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray

from multitask.data._cache import package_file
from multitask.data._dataset import ArrayDataset
from multitask.data._mtdata import MultiTaskData, TaskInfo
from multitask.data._registry import register
from multitask.errors import ConfigError, DataError

MOVIELENS_REQUIREMENT = "recbole==1.2.1"
_FOLDER = "dataset_example/ml-100k"


def read_atomic_file(path: Path) -> dict[str, list[str]]:
    """Read a RecBole atomic file: tab-separated, a header of ``name:type`` fields; returns name -> cells.

    Raises:
        DataError: A row has a different number of fields than the header.
    """
    with path.open(encoding="utf-8") as file:
        header = file.readline().rstrip("\n").split("\t")
        names = [field.split(":")[0] for field in header]
        columns: dict[str, list[str]] = {name: [] for name in names}
        for number, line in enumerate(file, start=2):
            if not line.strip():
                continue
            cells = line.rstrip("\n").split("\t")
            if len(cells) != len(names):
                raise DataError(f"{path}, line {number}: {len(cells)} fields, expected {len(names)} ({names})")
            for name, cell in zip(names, cells, strict=True):
                columns[name].append(cell)
    return columns


def _standardise(values: NDArray[np.float64]) -> NDArray[np.float64]:
    present = ~np.isnan(values)
    mean, std = values[present].mean(), values[present].std()
    return np.where(present, (values - mean) / (std if std > 0 else 1.0), 0.0)


def _user_features(users: dict[str, list[str]]) -> tuple[dict[str, int], NDArray[np.float32], list[str]]:
    ids = {user: i for i, user in enumerate(users["user_id"])}
    age = _standardise(np.array(users["age"], dtype=np.float64))
    male = np.array([g == "M" for g in users["gender"]], dtype=np.float64)
    occupations = sorted(set(users["occupation"]))
    one_hot = np.array([[o == name for name in occupations] for o in users["occupation"]], dtype=np.float64)
    names = ["age", "gender=M", *(f"occupation={name}" for name in occupations)]
    return ids, np.column_stack([age, male, one_hot]).astype(np.float32), names


def _item_features(items: dict[str, list[str]]) -> tuple[dict[str, int], NDArray[np.float32], list[str]]:
    ids = {item: i for i, item in enumerate(items["item_id"])}
    # RecBole writes the one unknown year as "unkonwn"; any cell that is not a number is a missing year.
    years = np.array([float(y) if y.strip().isdigit() else np.nan for y in items["release_year"]])
    genres_of = [set(cell.split()) for cell in items["class"]]
    genres = sorted(set().union(*genres_of))
    multi_hot = np.array([[name in g for name in genres] for g in genres_of], dtype=np.float64)
    names = ["release_year", "release_year_missing", *(f"genre={name}" for name in genres)]
    features = np.column_stack([_standardise(years), np.isnan(years), multi_hot])
    return ids, features.astype(np.float32), names


@register(
    "movielens_100k",
    tasks={"rating": "regression", "liked": "binary"},
    input="ids",
    input_columns=("user", "item", "user_features", "item_features"),
    description="MovieLens 100K ratings: the stars (regression) and rating >= 4 (binary), user and item ids",
)
def load_movielens_100k(*, val_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0) -> MultiTaskData:
    """MovieLens 100K: 100,000 ratings (1-5 stars) of 1,682 movies by 943 users, with user and item side information.

    Tasks (one row per rating): ``rating``: the star rating as a float (regression; RMSE is the square root
    of the ``mse`` metric); ``liked``: rating >= 4 (binary; about 55% of the ratings).

    Columns: ``user`` and ``item``: int64 indices (0-942, 0-1681) for ``nn.Embedding`` (sizes in
    ``num_embeddings``); ``user_features [23]``: standardised age, gender (1 = M), one-hot occupation (21);
    ``item_features [21]``: standardised release year, a missing-year flag, multi-hot genres (19 incl.
    ``unknown``). Standardisation is over the user and item tables (no labels are involved); zip codes,
    titles and timestamps are not used.

    Split: by interaction, at random (seeded): ``test_fraction`` of the ratings are the test split,
    ``val_fraction`` the validation split, the rest training, so a user's or item's ratings are spread over
    the three splits (the usual warm-start protocol). Not by construction but in practice, test users and
    items have training ratings: with seed 0, every test user and all but 24 of the test items. Read from
    RecBole's atomic files in about 0.3 s; not cached.

    Args:
        val_fraction: Fraction of the ratings in the validation split.
        test_fraction: Fraction of the ratings in the test split.
        seed: Seed of the split.

    Raises:
        DataError: recbole (which ships the files) is not installed; the message says how to install it.

    References:
        Harper & Konstan, "The MovieLens Datasets: History and Context", ACM TiiS 2015.
    """
    if not (val_fraction > 0.0 and test_fraction > 0.0 and val_fraction + test_fraction < 1.0):
        raise ConfigError(
            f"val_fraction and test_fraction must be positive with a sum below 1; got "
            f"{val_fraction} and {test_fraction}"
        )
    files = {
        kind: package_file("recbole", f"{_FOLDER}/ml-100k.{kind}", MOVIELENS_REQUIREMENT)
        for kind in ("inter", "user", "item")
    }
    inter = read_atomic_file(files["inter"])
    user_ids, user_x, _ = _user_features(read_atomic_file(files["user"]))
    item_ids, item_x, _ = _item_features(read_atomic_file(files["item"]))
    unknown = (
        sorted({u for u in inter["user_id"] if u not in user_ids})[:5]
        + sorted({i for i in inter["item_id"] if i not in item_ids})[:5]
    )
    if unknown:
        raise DataError(f"{files['inter']} rates users or items missing from the .user/.item files: {unknown}")
    users = torch.tensor([user_ids[u] for u in inter["user_id"]])
    items = torch.tensor([item_ids[i] for i in inter["item_id"]])
    rating = torch.tensor(np.array(inter["rating"], dtype=np.float32))
    everything = ArrayDataset(
        user=users,
        item=items,
        user_features=torch.from_numpy(user_x)[users],
        item_features=torch.from_numpy(item_x)[items],
        rating=rating,
        liked=(rating >= 4).float(),
    )
    n = len(everything)
    order = torch.from_numpy(np.random.default_rng(seed).permutation(n))
    n_test, n_val = round(test_fraction * n), round(val_fraction * n)
    test, val, train = order[:n_test], order[n_test : n_test + n_val], order[n_test + n_val :]
    tasks = {
        "rating": TaskInfo("rating", "regression", 1, metrics=("mse", "mae"), description="stars, 1-5"),
        "liked": TaskInfo("liked", "binary", 1, metrics=("auc", "accuracy"), description="rating >= 4"),
    }
    return MultiTaskData(
        train=everything.subset(train.sort().values),
        val=everything.subset(val.sort().values),
        test=everything.subset(test.sort().values),
        task_info=tasks,
        num_embeddings={"user": len(user_ids), "item": len(item_ids)},
        name="MovieLens 100K",
        source="GroupLens MovieLens 100K (Harper & Konstan 2015), RecBole's atomic files in the PyPI package "
        "recbole 1.2.1",
        licence="GroupLens terms: research use, acknowledge the source, no redistribution or commercial use "
        "without permission",
        preprocessing="user/item ids to indices; age and release year standardised; occupation one-hot; genres "
        "multi-hot; random split by interaction",
    )
