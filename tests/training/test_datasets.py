"""The Trainer reads any PyTorch pipeline: map-style Datasets (in worker processes), streams, the user's DataLoaders."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, IterableDataset

from _killing import kill_after_step
from multitask import Task, Trainer
from multitask.data import ArrayDataset, EpochSampler, LoaderOptions
from multitask.errors import ConfigError, DataError
from multitask.models import MLP, HardSharing
from multitask.training import Callback
from multitask.training.checkpoint import list_checkpoints

SCRIPT = Path(__file__).with_name("_dataset_run.py")


def table(n: int = 96, seed: int = 1) -> dict[str, Tensor]:
    x = torch.randn(n, 5, generator=torch.Generator().manual_seed(seed))
    return {"x": x, "a": (x[:, 0] > 0).float(), "b": x[:, 1] - 2 * x[:, 2]}


class Rows(Dataset[dict[str, Any]]):
    """A user's map-style dataset over a table: dict items of tensors and Python numbers."""

    def __init__(self, columns: dict[str, Tensor], noise: float = 0.0, as_tuples: bool = False) -> None:
        self.columns, self.noise, self.as_tuples = columns, noise, as_tuples

    def __len__(self) -> int:
        return len(self.columns["x"])

    def __getitem__(self, i: int) -> Any:
        x = self.columns["x"][i]
        if self.noise:
            x = x + self.noise * torch.randn_like(x)  # random augmentation from torch's global generator
        a, b = float(self.columns["a"][i]), float(self.columns["b"][i])
        return (x, a, b) if self.as_tuples else {"x": x, "a": a, "b": b}


class Stream(IterableDataset[dict[str, Any]]):
    def __init__(self, columns: dict[str, Tensor]) -> None:
        self.columns = columns

    def __iter__(self) -> Any:
        for i in range(len(self.columns["x"])):
            yield {key: value[i] for key, value in self.columns.items()}


def make(seed: int = 0, dropout: float = 0.0) -> tuple[HardSharing, list[Task]]:
    torch.manual_seed(seed)
    tasks = [Task("a", nn.Linear(8, 1), "binary"), Task("b", nn.Linear(8, 1), "regression")]
    return HardSharing(MLP(5, [8], dropout=dropout), tasks), tasks


def fit(data: Any, *, epochs: int = 1, dropout: float = 0.0, **options: Any) -> dict[str, Tensor]:
    model, tasks = make(dropout=dropout)
    trainer = Trainer(model, tasks, max_epochs=epochs, batch_size=16, progress=False, seed=7, **options)
    trainer.fit(data)
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_same(expected: dict[str, Tensor], actual: dict[str, Tensor]) -> None:
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), f"{name} differs"


def test_a_dataset_and_a_dataloader_on_epoch_sampler_train_exactly_like_the_array_dataset() -> None:
    columns = table()
    reference = fit(ArrayDataset(**columns), epochs=2, dropout=0.2)
    assert_same(reference, fit(Rows(columns), epochs=2, dropout=0.2))
    assert_same(reference, fit(Rows(columns), epochs=2, dropout=0.2, loading=LoaderOptions(num_workers=2)))
    loader = DataLoader(Rows(columns), batch_size=16, sampler=EpochSampler(96, seed=7), num_workers=2)
    assert_same(reference, fit(loader, epochs=2, dropout=0.2))
    # and the library's order really matters: another sampler seed trains differently
    other = DataLoader(Rows(columns), batch_size=16, sampler=EpochSampler(96, seed=8))
    assert not torch.equal(reference["encoder.0.weight"], fit(other, epochs=2, dropout=0.2)["encoder.0.weight"])


def test_random_augmentation_is_the_same_with_zero_one_or_two_workers() -> None:
    columns = table()
    plain = fit(Rows(columns), epochs=2)
    noisy = fit(Rows(columns, noise=0.3), epochs=2)
    assert not torch.equal(plain["encoder.0.weight"], noisy["encoder.0.weight"])  # noise was applied
    for workers in (1, 2):
        assert_same(noisy, fit(Rows(columns, noise=0.3), epochs=2, loading=LoaderOptions(num_workers=workers)))
    # the batch seeds come from the run's seed: a second run draws the same noise, but not the same as seed 8's
    assert_same(noisy, fit(Rows(columns, noise=0.3), epochs=2))


def test_tuple_items_need_their_names() -> None:
    columns = table()
    reference = fit(ArrayDataset(**columns))
    assert_same(reference, fit(Rows(columns, as_tuples=True), loading=LoaderOptions(item_names=("x", "a", "b"))))
    with pytest.raises(DataError, match=r"tuples of 3 parts: name the parts.*item_names"):
        fit(Rows(columns, as_tuples=True))


class Interrupt(Callback):
    """Raises before step ``at`` (after the previous step's checkpoint was written)."""

    def __init__(self, at: int) -> None:
        self.at = at

    def on_step_start(self, trainer: Trainer, groups: Any) -> None:
        if trainer.global_step == self.at:
            raise KeyboardInterrupt


def resumed(data: Any, tmp_path: Path, at: int, epochs: int = 2, **options: Any) -> dict[str, Tensor]:
    for attempt, callbacks in enumerate([[Interrupt(at)], []]):
        model, tasks = make(dropout=0.2)
        trainer = Trainer(
            model,
            tasks,
            max_epochs=epochs,
            batch_size=16,
            progress=False,
            seed=7,
            run_dir=tmp_path,
            checkpoint_every=1,
            callbacks=callbacks,
            **options,
        )
        if attempt == 0:
            with pytest.raises(KeyboardInterrupt):
                trainer.fit(data)
        else:
            trainer.fit(data, resume=True)
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_resume_inside_an_epoch_replays_the_augmented_batches(tmp_path: Path) -> None:
    columns = table()
    reference = fit(Rows(columns, noise=0.3), epochs=2, dropout=0.2, loading=LoaderOptions(num_workers=2))
    actual = resumed(Rows(columns, noise=0.3), tmp_path, at=9, loading=LoaderOptions(num_workers=2))
    assert_same(reference, actual)


def test_a_dataloader_on_epoch_sampler_resumes_exactly(tmp_path: Path) -> None:
    columns = table()

    def loader() -> DataLoader[Any]:
        return DataLoader(Rows(columns), batch_size=16, sampler=EpochSampler(96, seed=7))

    assert_same(fit(loader(), epochs=2, dropout=0.2), resumed(loader(), tmp_path, at=8))


def test_a_dataloader_that_cannot_seek_restarts_the_epoch_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    columns = table()
    loader = DataLoader(Rows(columns), batch_size=16, shuffle=False)
    with caplog.at_level(logging.WARNING, logger="multitask"):
        result = resumed(loader, tmp_path, at=9)  # epoch 2, step 4
    messages = [r.getMessage() for r in caplog.records if "cannot skip" in r.getMessage()]
    assert len(messages) == 1 and "epoch 2" in messages[0] and "EpochSampler" in messages[0]
    # the restarted epoch ran in full: 6 + 6 steps in the log, and the epoch's losses are whole-epoch means
    model_state = result
    assert model_state  # trained to the end
    lines = (tmp_path / "metrics.csv").read_text().strip().splitlines()
    assert len(lines) == 3  # header + 2 epochs


def test_a_stream_trains_and_evaluates() -> None:
    columns = table()
    model, tasks = make()
    trainer = Trainer(model, tasks, max_epochs=2, batch_size=16, progress=False, seed=7)
    history = trainer.fit(Stream(columns), Stream(table(32, seed=2)))
    assert len(history) == 2 and history[-1]["val/a/loss"] == history[-1]["val/a/loss"]
    assert trainer.global_step == 12  # 96 rows in batches of 16, twice
    reference = Trainer(*make(), max_epochs=1, progress=False)  # evaluation of a stream = of the same table
    assert trainer.evaluate(Stream(columns)) == trainer.evaluate(ArrayDataset(**columns))
    del reference


def test_multi_input_with_one_dataloader_per_task(tmp_path: Path) -> None:
    a, b = table(64, seed=1), table(32, seed=2)
    loaders = {
        "a": DataLoader(Rows(a), batch_size=16, sampler=EpochSampler(64, seed=1)),
        "b": DataLoader(Rows(b), batch_size=8, sampler=EpochSampler(32, seed=2)),
    }
    model, tasks = make(dropout=0.2)
    trainer = Trainer(model, tasks, max_epochs=2, progress=False, seed=7, sampling="proportional", tasks_per_step=1)
    trainer.fit(loaders)
    # 4 + 4 batches per epoch, one task per step
    assert trainer.global_step == 16
    assert set(trainer.evaluate({"a": Rows(a), "b": loaders["b"]})) == {"a", "b"}
    # resuming mid-epoch repositions each task's loader after the batches it already gave
    expected = {k: v.clone() for k, v in model.state_dict().items()}
    actual = resumed(loaders, tmp_path, at=11, epochs=2, sampling="proportional", tasks_per_step=1)
    assert_same(expected, actual)


def test_multi_input_datasets_with_per_task_batch_sizes_and_temperature() -> None:
    data = {"a": Rows(table(64, seed=1)), "b": ArrayDataset(**table(32, seed=2))}
    model, tasks = make()
    seen: list[tuple[str, int]] = []

    class Sizes(Callback):
        def on_step_start(self, trainer: Trainer, groups: Any) -> None:
            seen.extend((names[0], len(batch["x"])) for batch, names in groups)

    trainer = Trainer(
        model,
        tasks,
        max_epochs=1,
        batch_size={"a": 16, "b": 4},
        sampling="temperature",
        temperature=2.0,
        tasks_per_step=1,
        callbacks=[Sizes()],
        progress=False,
    )
    trainer.fit(data)
    assert {size for name, size in seen if name == "a"} == {16} and {size for name, size in seen if name == "b"} == {4}
    assert len(seen) == 12  # 64/16 + 32/4 batches, one task per step
    with pytest.raises(ConfigError, match="temperature"):
        Trainer(*make(), sampling="temperature", progress=False).fit(data)
    with pytest.raises(ConfigError, match="per-task batch sizes need multi-input data"):
        Trainer(*make(), batch_size={"a": 4, "b": 4}, progress=False).fit(Rows(table()))


def test_a_mix_of_datasets_and_loaders_is_refused() -> None:
    data = {"a": Rows(table(64)), "b": DataLoader(Rows(table(32)), batch_size=8)}
    with pytest.raises(DataError, match="mixes datasets with DataLoaders"):
        Trainer(*make(), progress=False).fit(data)


# ----- checks on batches as they arrive (point 5) -----
def test_a_missing_label_column_in_a_dataset_is_caught_at_its_first_batch() -> None:
    class NoB(Rows):
        def __getitem__(self, i: int) -> Any:
            item = super().__getitem__(i)
            del item["b"]
            return item

    model, tasks = make()
    trainer = Trainer(model, tasks, max_epochs=1, batch_size=16, progress=False)
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(DataError, match=r"task 'b': training data, epoch 1, step 1: the batch has no column 'b'"):
        trainer.fit(NoB(table()))
    assert all(torch.equal(p, q) for p, q in zip(before, model.parameters(), strict=True))  # no weight touched


def test_binary_labels_outside_0_1_in_a_stream_are_refused_before_the_update() -> None:
    columns = table()
    columns["a"] = columns["a"].clone()
    columns["a"][40] = 3.0  # batch 3
    model, tasks = make()
    trainer = Trainer(model, tasks, max_epochs=1, batch_size=16, shuffle=False, progress=False)
    message = r"task 'a': training data, epoch 1, step 3: column 'a' holds 3 \(values from 0 to 3\)"
    with pytest.raises(DataError, match=message):
        trainer.fit(Stream(columns))
    assert trainer.global_step == 2


def test_class_indices_beyond_the_head_are_refused_with_the_step() -> None:
    columns = table()
    columns["c"] = torch.randint(0, 3, (96,))
    columns["c"][20] = 5
    torch.manual_seed(0)
    tasks = [Task("c", nn.Linear(8, 3), "multiclass")]
    trainer = Trainer(HardSharing(MLP(5, [8]), tasks), tasks, batch_size=16, shuffle=False, progress=False)
    with pytest.raises(DataError, match=r"task 'c': training data, epoch 1, step 2: .*class index 5 .* 3 classes"):
        trainer.fit(DataLoader(ClassRows(columns), batch_size=16))


class ClassRows(Dataset[dict[str, Any]]):
    """Rows of ``x`` and one multiclass column ``c``."""

    def __init__(self, columns: dict[str, Tensor]) -> None:
        self.columns = columns

    def __len__(self) -> int:
        return 96

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"x": self.columns["x"][i], "c": int(self.columns["c"][i])}


def test_a_task_without_any_label_in_a_dataset_fails_at_the_end_of_the_first_epoch(tmp_path: Path) -> None:
    columns = table()
    columns["b"] = torch.full((96,), float("nan"))
    model, tasks = make()
    trainer = Trainer(model, tasks, max_epochs=2, batch_size=16, progress=False, run_dir=tmp_path)
    with pytest.raises(DataError, match=r"task 'b' has no labelled sample in the training data: epoch 1 read 6 steps"):
        trainer.fit(Rows(columns))
    assert not list_checkpoints(tmp_path / "checkpoints")  # nothing saved


def test_the_same_label_checks_on_a_table_up_front() -> None:
    columns = table()
    columns["a"] = columns["a"] * 2
    with pytest.raises(DataError, match=r"task 'a': the training data's column 'a' holds 2 \(values from 0 to 2\)"):
        Trainer(*make(), progress=False).fit(ArrayDataset(**columns))


def test_a_bad_item_type_says_what_it_got() -> None:
    class Strings(Rows):
        def __getitem__(self, i: int) -> Any:
            return {**super().__getitem__(i), "name": f"row {i}"}

    with pytest.raises(DataError, match="batch column 'name' holds str values"):
        Trainer(*make(), progress=False).fit(Strings(table()))
    with pytest.raises(DataError, match=r"training data must be an ArrayDataset.*DataLoader"):
        Trainer(*make(), progress=False).fit([1, 2, 3])  # type: ignore[arg-type]


# ----- SIGKILL mid-epoch -----
def _run(run_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(run_dir), *extra], capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
@pytest.mark.parametrize("own_loader", [False, True], ids=["dataset+augmentation", "own DataLoader"])
def test_sigkill_inside_an_epoch_then_resume_equals_the_uninterrupted_run(tmp_path: Path, own_loader: bool) -> None:
    extra = ("--loader",) if own_loader else ()
    reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    reference = _run(reference_dir, *extra)
    assert reference.returncode == 0, reference.stderr
    command = [sys.executable, str(SCRIPT), str(killed_dir), *extra]
    killed_at = kill_after_step(command, killed_dir / "checkpoints", 8 + 3)  # inside the second epoch (8 steps each)
    assert not (killed_dir / "final.pt").exists() and killed_at % 8 != 0 and killed_at < 24
    resumed_run = _run(killed_dir, "--resume", *extra)
    assert resumed_run.returncode == 0, resumed_run.stderr
    expected = torch.load(reference_dir / "final.pt", weights_only=True)
    actual = torch.load(killed_dir / "final.pt", weights_only=True)
    for name in expected:
        assert torch.equal(expected[name], actual[name]), f"{name} differs after resume"


def test_validation_batches_of_a_dataset_are_checked_too() -> None:
    columns = table(32, seed=2)
    columns["a"] = columns["a"] - 1  # labels -1 / 0
    with pytest.raises(
        DataError, match=r"task 'a': validation data, batch 1: column 'a' holds -1 \(values from -1 to 0\)"
    ):
        Trainer(*make(), max_epochs=1, progress=False).fit(ArrayDataset(**table()), Rows(columns))


def test_an_array_dataset_is_sliced_in_the_training_process_even_with_workers() -> None:
    from multitask.data import SingleInputLoader

    loader = SingleInputLoader(ArrayDataset(**table()), ["a"], 16, options=LoaderOptions(num_workers=2))
    assert loader.reader.in_process
    lazy_like = SingleInputLoader(Rows(table()), ["a"], 16, options=LoaderOptions(num_workers=2))
    assert not lazy_like.reader.in_process
