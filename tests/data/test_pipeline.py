"""The data pipeline's parts: the epoch sampler, collation, task schedules, training-only transforms, options."""

from __future__ import annotations

import math
import os
from typing import Any

import pytest
import torch
from torch import Tensor
from torch.utils.data import Dataset

from multitask.data import (
    ArrayDataset,
    EpochSampler,
    LazyDataset,
    LoaderOptions,
    MultiInputLoader,
    SingleInputLoader,
    TaskSchedule,
    collate,
)
from multitask.errors import ConfigError, DataError


def indexed(n: int) -> ArrayDataset:
    return ArrayDataset(x=torch.arange(n, dtype=torch.float32)[:, None], i=torch.arange(n))


class Items(Dataset[dict[str, Any]]):
    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"x": torch.tensor([float(i)]), "i": i}


# ----- EpochSampler -----
def test_epoch_sampler_draws_the_single_input_loaders_order_and_seeks() -> None:
    loader = SingleInputLoader(indexed(50), ["a"], 50)
    sampler = EpochSampler(50, seed=7)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batch = next(loader.epoch(epoch, seed=7))[0][0]
        assert list(sampler) == batch["i"].tolist()
    sampler.set_epoch(2, start=20)
    assert len(sampler) == 30 and list(sampler) == batch["i"].tolist()[20:]
    sampler.set_epoch(2, cycle=1)
    assert sorted(sampler) == list(range(50)) and list(sampler) != batch["i"].tolist()
    assert list(EpochSampler(5, shuffle=False)) == [0, 1, 2, 3, 4]
    with pytest.raises(DataError, match="positive number of rows"):
        EpochSampler(0)
    with pytest.raises(DataError, match=r"outside 0 \.\. 50"):
        sampler.set_epoch(0, start=51)


# ----- collate -----
def test_collate_stacks_dict_items_names_tuples_and_passes_batches_through() -> None:
    batch = collate([{"x": torch.ones(2), "y": 1}, {"x": torch.zeros(2), "y": 0}])
    assert torch.equal(batch["x"], torch.tensor([[1.0, 1.0], [0.0, 0.0]])) and batch["y"].tolist() == [1, 0]
    named = collate([(torch.ones(2), 3.0)], item_names=("x", "y"))
    assert named["y"].dtype == torch.float64 and named["y"].tolist() == [3.0]
    whole = {"x": torch.ones(3, 2)}
    assert collate(whole)["x"] is whole["x"]
    with pytest.raises(DataError, match="name the parts"):
        collate([(torch.ones(2), 3.0)])
    with pytest.raises(DataError, match="has 2 parts but item_names names 3"):
        collate([(torch.ones(2), 3.0)], item_names=("x", "y", "z"))
    with pytest.raises(DataError, match="do not collate into one batch"):
        collate([{"x": torch.ones(2)}, {"x": torch.ones(3)}])
    with pytest.raises(DataError, match="must be dicts"):
        collate([3])


# ----- task schedules -----
@pytest.mark.parametrize("temperature", [1.0, 2.0, math.inf])
def test_temperature_sampling_frequencies_follow_n_to_the_one_over_tau(temperature: float) -> None:
    sizes = {"big": 4000, "mid": 400, "small": 40}
    datasets = {name: indexed(n) for name, n in sizes.items()}
    loader = MultiInputLoader(
        datasets, 4, sampling="temperature", temperature=temperature, tasks_per_step=1, steps_per_epoch=10_000
    )
    drawn = [step[0].source for step in loader.plan(0, seed=3)]
    expected = torch.tensor([n ** (1 / temperature) for n in sizes.values()], dtype=torch.float64)
    expected /= expected.sum()
    for name, p in zip(sizes, expected.tolist(), strict=True):
        assert abs(drawn.count(name) / 10_000 - p) < 0.02, (name, drawn.count(name), p)
    assert torch.allclose(loader.schedule.expected_frequencies(), expected)


def test_temperature_one_is_proportional_and_infinity_uniform() -> None:
    sizes = [300, 30, 3]
    generator_draws = {}
    rules = [("proportional", None), ("temperature", 1.0), ("uniform", None), ("temperature", math.inf)]
    for sampling, temperature in rules:
        schedule = TaskSchedule(sizes, sampling, 1, temperature)  # type: ignore[arg-type]
        generator = torch.Generator().manual_seed(0)
        generator_draws[(sampling, temperature)] = [schedule.draw(s, generator) for s in range(200)]
    assert generator_draws[("proportional", None)] == generator_draws[("temperature", 1.0)]
    assert generator_draws[("uniform", None)] == generator_draws[("temperature", math.inf)]
    with pytest.raises(ConfigError, match="needs a temperature"):
        TaskSchedule(sizes, "temperature", 1)
    with pytest.raises(ConfigError, match="only with sampling 'temperature'"):
        TaskSchedule(sizes, "uniform", 1, 2.0)


def test_per_task_batch_sizes() -> None:
    loader = MultiInputLoader({"a": indexed(40), "b": indexed(9)}, {"a": 8, "b": 3})
    assert len(loader) == 5  # max(40 / 8, 9 / 3)
    step = next(loader.epoch(0, seed=0))
    assert [len(batch["i"]) for batch, _ in step] == [8, 3]
    with pytest.raises(ConfigError, match=r"unknown \['c'\], missing \['b'\]"):
        MultiInputLoader({"a": indexed(4), "b": indexed(4)}, {"a": 2, "c": 2})


# ----- reading -----
def test_map_datasets_give_the_same_batches_as_tables_with_and_without_workers() -> None:
    table = list(SingleInputLoader(indexed(37), ["a"], 8).epoch(1, seed=4))
    for workers in (0, 2):
        options = LoaderOptions(num_workers=workers)
        items = list(SingleInputLoader(Items(37), ["a"], 8, options=options).epoch(1, seed=4))
        assert len(items) == len(table) == 5
        for (got, _), (want, _) in zip([s[0] for s in items], [s[0] for s in table], strict=True):
            assert torch.equal(got["i"], want["i"]) and torch.equal(got["x"], want["x"])


def flip_sign(sample: dict[str, Tensor]) -> dict[str, Tensor]:
    return {**sample, "x": -sample["x"] + torch.rand(()) * 0}


def test_a_transform_is_applied_per_sample_to_the_loaders_rows_only() -> None:
    loader = SingleInputLoader(indexed(10), ["a"], 4, shuffle=False, transform=flip_sign)
    batch = next(loader.epoch(0, seed=0))[0][0]
    assert batch["x"][:, 0].tolist() == [-0.0, -1.0, -2.0, -3.0] and batch["i"].tolist() == [0, 1, 2, 3]
    untouched = next(SingleInputLoader(indexed(10), ["a"], 4, shuffle=False).epoch(0, seed=0))[0][0]
    assert untouched["x"][:, 0].tolist() == [0.0, 1.0, 2.0, 3.0]


def test_reading_leaves_the_training_generators_where_they_were() -> None:
    class Random(Items):
        def __getitem__(self, i: int) -> dict[str, Any]:
            return {"x": torch.rand(1), "i": i}

    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    batches = list(SingleInputLoader(Random(20), ["a"], 5).epoch(0, seed=1))
    assert torch.equal(torch.rand(3), expected)
    again = list(SingleInputLoader(Random(20), ["a"], 5).epoch(0, seed=1))
    assert all(torch.equal(a[0][0]["x"], b[0][0]["x"]) for a, b in zip(batches, again, strict=True))


def test_loader_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="non-negative"):
        LoaderOptions(num_workers=-1)
    with pytest.raises(ConfigError, match="need worker processes"):
        LoaderOptions(persistent_workers=True)
    with pytest.raises(ConfigError, match="need worker processes"):
        LoaderOptions(prefetch_factor=4)
    with pytest.raises(ConfigError, match="distinct"):
        LoaderOptions(item_names=("x", "x"))
    assert LoaderOptions(num_workers=2, prefetch_factor=4).data_loader_kwargs() == {
        "num_workers": 2,
        "pin_memory": False,
        "persistent_workers": False,
        "prefetch_factor": 4,
    }


def test_persistent_workers_read_every_epoch() -> None:
    options = LoaderOptions(num_workers=1, persistent_workers=True)
    loader = SingleInputLoader(Items(12), ["a"], 4, options=options)
    for epoch in range(3):
        rows = torch.cat([step[0][0]["i"] for step in loader.epoch(epoch, seed=0)])
        assert sorted(rows.tolist()) == list(range(12))


def test_lazy_datasets_files_are_read_in_the_worker_processes() -> None:
    """The image loaders (CelebA, Office, NYUv2, Cityscapes, image folders) return LazyDatasets: with workers
    their files are read there, and the batches are the same as read in the training process."""

    def read(i: int) -> dict[str, Any]:
        return {"pixels": torch.full((2, 2), float(i)), "pid": torch.tensor(os.getpid())}

    lazy = LazyDataset(30, read, ["pixels", "pid"], {"label": torch.arange(30)})
    in_process = list(SingleInputLoader(lazy, ["label"], 8).epoch(0, seed=2))
    in_workers = list(SingleInputLoader(lazy, ["label"], 8, options=LoaderOptions(num_workers=2)).epoch(0, seed=2))
    assert {int(p) for step in in_process for p in step[0][0]["pid"]} == {os.getpid()}
    worker_pids = {int(p) for step in in_workers for p in step[0][0]["pid"]}
    assert os.getpid() not in worker_pids and len(worker_pids) == 2
    for (a, _), (b, _) in zip([s[0] for s in in_process], [s[0] for s in in_workers], strict=True):
        assert torch.equal(a["pixels"], b["pixels"]) and torch.equal(a["label"], b["label"])
