"""Tests of the multi-task batch loaders: coverage, reproducibility, resumption and task sampling."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch

from multitask.data import ArrayDataset, MultiInputLoader, SingleInputLoader
from multitask.data._loaders import Step
from multitask.errors import ConfigError, DataError, ShapeError


def indexed(n: int, seed: int = 0) -> ArrayDataset:
    """A dataset whose ``idx`` column holds each row's position, so batches reveal the order."""
    return ArrayDataset(idx=torch.arange(n), x=torch.randn(n, 2, generator=torch.Generator().manual_seed(seed)))


def single_indices(steps: list[Step]) -> list[list[int]]:
    assert all(len(step) == 1 for step in steps)
    return [step[0][0]["idx"].tolist() for step in steps]


def multi_indices(steps: list[Step]) -> list[list[tuple[str, list[int]]]]:
    """Per step, the (task, row indices) of each group."""
    out = []
    for step in steps:
        groups = []
        for batch, names in step:
            assert len(names) == 1
            groups.append((names[0], batch["idx"].tolist()))
        out.append(groups)
    return out


# ----- SingleInputLoader -----
@pytest.mark.parametrize(("n", "batch_size"), [(10, 3), (12, 4), (7, 10), (1, 1)])
def test_single_input_visits_every_row_once_per_epoch(n: int, batch_size: int) -> None:
    loader = SingleInputLoader(indexed(n), ["a", "b"], batch_size)
    steps = list(loader.epoch(0, seed=3))
    assert len(steps) == len(loader) == math.ceil(n / batch_size)
    batches = single_indices(steps)
    assert sorted(i for b in batches for i in b) == list(range(n))
    assert all(len(b) == batch_size for b in batches[:-1])
    assert all(step[0][1] == ("a", "b") for step in steps)
    first = steps[0][0][0]
    torch.testing.assert_close(first["x"], loader.dataset.columns["x"][first["idx"]])


def test_single_input_order_is_a_function_of_seed_and_epoch() -> None:
    loader = SingleInputLoader(indexed(50), ["a"], 8)
    order = single_indices(list(loader.epoch(2, seed=7)))
    assert single_indices(list(loader.epoch(2, seed=7))) == order
    assert single_indices(list(SingleInputLoader(indexed(50), ["a"], 8).epoch(2, seed=7))) == order
    assert single_indices(list(loader.epoch(3, seed=7))) != order
    assert single_indices(list(loader.epoch(2, seed=8))) != order


def test_single_input_without_shuffle_is_in_order() -> None:
    loader = SingleInputLoader(indexed(7), ["a"], 3, shuffle=False)
    assert single_indices(list(loader.epoch(5, seed=1))) == [[0, 1, 2], [3, 4, 5], [6]]


@pytest.mark.parametrize("start", [0, 1, 3, 6, 7])
def test_single_input_resume_yields_the_tail_of_the_epoch(start: int) -> None:
    loader = SingleInputLoader(indexed(20), ["a"], 3)  # 7 steps
    full = single_indices(list(loader.epoch(4, seed=11)))
    assert single_indices(list(loader.epoch(4, seed=11, start=start))) == full[start:]


# ----- MultiInputLoader: every task at every step -----
SIZES = {"big": 23, "mid": 10, "small": 4}


def multi_datasets(sizes: dict[str, int] = SIZES) -> dict[str, ArrayDataset]:
    return {name: indexed(n, seed=i) for i, (name, n) in enumerate(sizes.items())}


@pytest.mark.parametrize("sampling", ["round_robin", "proportional", "uniform"])
def test_multi_input_all_tasks_every_step(sampling: str) -> None:
    loader = MultiInputLoader(multi_datasets(), 5, sampling=sampling)  # type: ignore[arg-type]
    assert len(loader) == math.ceil(23 / 5)
    steps = multi_indices(list(loader.epoch(0, seed=1)))
    assert len(steps) == len(loader)
    for groups in steps:
        assert [name for name, _ in groups] == ["big", "mid", "small"]
    big = [i for groups in steps for name, b in groups if name == "big" for i in b]
    assert sorted(big) == list(range(23))  # the largest task is read exactly once


def test_multi_input_batches_come_from_the_task_dataset() -> None:
    datasets = multi_datasets()
    loader = MultiInputLoader(datasets, 5)
    for step in loader.epoch(0, seed=2):
        for batch, (name,) in step:
            torch.testing.assert_close(batch["x"], datasets[name].columns["x"][batch["idx"]])


def test_small_task_stream_covers_all_rows_before_repeating() -> None:
    loader = MultiInputLoader({"big": indexed(100), "small": indexed(10)}, 4, steps_per_epoch=25)
    stream = [
        i for groups in multi_indices(list(loader.epoch(0, seed=5))) for name, b in groups if name == "small" for i in b
    ]
    # the stream is a sequence of passes, each a permutation of the small task's rows
    passes = [stream[k : k + 10] for k in range(0, len(stream), 10)]
    assert len(passes) >= 4
    for rows in passes[:-1]:
        assert sorted(rows) == list(range(10))
    assert len(set(passes[-1])) == len(passes[-1])
    assert len({tuple(rows) for rows in passes[:-1]}) > 1  # reshuffled, not replayed


# ----- MultiInputLoader: one task per step -----
def drawn_tasks(loader: MultiInputLoader, epoch: int = 0, seed: int = 0) -> list[str]:
    names = []
    for step in loader.epoch(epoch, seed):
        assert len(step) == 1
        names.append(step[0][1][0])
    return names


def test_round_robin_cycles_tasks_in_order() -> None:
    loader = MultiInputLoader(multi_datasets(), 2, sampling="round_robin", tasks_per_step=1)
    assert len(loader) == math.ceil(sum(SIZES.values()) / 2)
    names = drawn_tasks(loader)
    assert names == [["big", "mid", "small"][i % 3] for i in range(len(loader))]


def test_round_robin_two_tasks_per_step() -> None:
    loader = MultiInputLoader(multi_datasets(), 2, sampling="round_robin", tasks_per_step=2, steps_per_epoch=4)
    steps = multi_indices(list(loader.epoch(0, seed=0)))
    assert [[name for name, _ in groups] for groups in steps] == [
        ["big", "mid"],
        ["small", "big"],
        ["mid", "small"],
        ["big", "mid"],
    ]


def big_draw_loader(sampling: str) -> MultiInputLoader:
    sizes = {"a": 100, "b": 300, "c": 600}
    return MultiInputLoader(
        multi_datasets(sizes),
        1,
        sampling=sampling,  # type: ignore[arg-type]
        tasks_per_step=1,
        steps_per_epoch=3000,
    )


@pytest.mark.parametrize(
    ("sampling", "expected"),
    [("proportional", {"a": 0.1, "b": 0.3, "c": 0.6}), ("uniform", {"a": 1 / 3, "b": 1 / 3, "c": 1 / 3})],
)
def test_random_sampling_frequencies(sampling: str, expected: dict[str, float]) -> None:
    names = drawn_tasks(big_draw_loader(sampling), seed=42)
    counts = Counter(names)
    for name, share in expected.items():
        assert counts[name] / len(names) == pytest.approx(share, abs=0.03), counts
    assert drawn_tasks(big_draw_loader(sampling), epoch=1, seed=42) != names


@pytest.mark.parametrize("sampling", ["round_robin", "proportional", "uniform"])
@pytest.mark.parametrize("tasks_per_step", [1, 2, None])
def test_multi_input_resume_matches_the_full_epoch(sampling: str, tasks_per_step: int | None) -> None:
    loader = MultiInputLoader(
        multi_datasets(),
        3,
        sampling=sampling,  # type: ignore[arg-type]
        tasks_per_step=tasks_per_step,
        steps_per_epoch=12,
    )
    full = multi_indices(list(loader.epoch(3, seed=9)))
    assert len(full) == 12
    assert multi_indices(list(loader.epoch(3, seed=9))) == full
    for start in [0, 1, 5, 11, 12]:
        assert multi_indices(list(loader.epoch(3, seed=9, start=start))) == full[start:]
    assert multi_indices(list(loader.epoch(4, seed=9))) != full


def test_multi_input_default_steps_per_epoch() -> None:
    assert len(MultiInputLoader(multi_datasets(), 4)) == math.ceil(23 / 4)
    assert len(MultiInputLoader(multi_datasets(), 4, tasks_per_step=2)) == math.ceil(37 / 8)
    assert len(MultiInputLoader(multi_datasets(), 4, steps_per_epoch=17)) == 17


# ----- errors -----
def test_bad_sampling_name() -> None:
    with pytest.raises(ConfigError, match=r"'random'.*allowed: round_robin, proportional, uniform"):
        MultiInputLoader(multi_datasets(), 4, sampling="random")  # type: ignore[arg-type]


@pytest.mark.parametrize("tasks_per_step", [0, -1, 4])
def test_tasks_per_step_out_of_range(tasks_per_step: int) -> None:
    with pytest.raises(ConfigError, match="tasks_per_step"):
        MultiInputLoader(multi_datasets(), 4, tasks_per_step=tasks_per_step)


@pytest.mark.parametrize("batch_size", [0, -2])
def test_non_positive_batch_size(batch_size: int) -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        MultiInputLoader(multi_datasets(), batch_size)
    with pytest.raises(ConfigError, match="batch_size"):
        SingleInputLoader(indexed(5), ["a"], batch_size)


def test_non_positive_steps_per_epoch() -> None:
    with pytest.raises(ConfigError, match="steps_per_epoch"):
        MultiInputLoader(multi_datasets(), 4, steps_per_epoch=-1)


def test_no_task_dataset() -> None:
    with pytest.raises(DataError):
        MultiInputLoader({}, 4)


def test_empty_array_dataset() -> None:
    with pytest.raises(DataError, match="empty"):
        ArrayDataset(x=torch.zeros(0, 3), y=torch.zeros(0))
    with pytest.raises(DataError):
        ArrayDataset()


def test_columns_of_different_lengths() -> None:
    with pytest.raises(ShapeError, match="same first dimension"):
        ArrayDataset(x=torch.zeros(5, 3), y=np.zeros(4))


def test_array_dataset_indexing_and_subset() -> None:
    data = ArrayDataset(x=np.arange(12.0).reshape(6, 2), y=torch.arange(6))
    assert len(data) == 6
    assert set(data.keys()) == {"x", "y"} and "x" in data
    assert data[torch.tensor([4, 1])]["y"].tolist() == [4, 1]
    assert data[2]["x"].tolist() == [[4.0, 5.0]]
    subset = data.subset(torch.tensor([True, False, True, False, False, True]))
    assert subset.columns["y"].tolist() == [0, 2, 5] and len(subset) == 3
