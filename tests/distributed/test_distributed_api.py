"""`Distributed`: detection, clear set-up errors, counted reductions, and processes that disagree."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import _distributed_cases as cases
import pytest
import torch

from multitask import Trainer
from multitask.errors import ConfigError, DistributedError
from multitask.training.distributed import Distributed, is_main_process


@pytest.fixture
def group_of_one(tmp_path: Path) -> Iterator[Distributed]:
    distributed = Distributed.init("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        yield distributed
    finally:
        distributed.close()


def test_one_process_is_not_distributed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert Distributed.resolve(None) is None and Distributed.resolve(False) is None
    assert is_main_process()
    with pytest.raises(ConfigError, match="distributed must be True, False, None or a Distributed"):
        Distributed.resolve("yes")  # type: ignore[arg-type]


def test_missing_torchrun_variables_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    for name in ("MASTER_ADDR", "MASTER_PORT", "RANK"):
        monkeypatch.delenv(name, raising=False)
    model, tasks = cases._model("ew")
    with pytest.raises(ConfigError, match=r"\['MASTER_ADDR', 'MASTER_PORT', 'RANK'\].*torchrun --nproc_per_node"):
        Trainer(model, tasks, progress=False)
    with pytest.raises(ConfigError, match="MASTER_ADDR"):
        Distributed.init()


@pytest.mark.parametrize(("value", "message"), [("soon", "must be a number of seconds"), ("-1", "must be positive")])
def test_bad_timeout_is_refused(monkeypatch: pytest.MonkeyPatch, value: str, message: str) -> None:
    monkeypatch.setenv("MULTITASK_DIST_TIMEOUT", value)
    with pytest.raises(ConfigError, match=message):
        Distributed.init("gloo", init_method="file:///nonexistent/store", rank=0, world_size=1)


def test_sums_keep_none_where_no_process_has_a_value(group_of_one: Distributed) -> None:
    like = [torch.zeros(2, 3), torch.zeros(4), torch.zeros(1, dtype=torch.float64)]
    values = [None, torch.arange(4.0), torch.ones(1, dtype=torch.float64)]
    summed = group_of_one.sum_tensors(values, like, "test")
    assert summed[0] is None
    assert torch.equal(summed[1], torch.arange(4.0))  # type: ignore[arg-type]
    assert summed[2] is not None and summed[2].dtype == torch.float64
    # one all-reduce per dtype: float32 6 zeros (None) + 4 values + 2 flags; float64 1 value + 1 flag
    assert group_of_one.bytes_by_kind["test"] == (6 + 4 + 2) * 4 + (1 + 1) * 8


def test_training_device_is_the_local_gpu_for_cuda(group_of_one: Distributed) -> None:
    assert group_of_one.training_device("cuda") == torch.device("cuda", 0)
    assert group_of_one.training_device("cpu") == torch.device("cpu")
    expected = torch.device("cuda", 0) if torch.cuda.is_available() else torch.device("cpu")
    assert group_of_one.training_device() == expected


def _disagreeing_worker(rank: int, world_size: int, store: str, out: str) -> None:
    distributed = Distributed.init("gloo", init_method=f"file://{store}", rank=rank, world_size=world_size, timeout=30)
    model, tasks = cases._model("ew")
    trainer = Trainer(model, tasks, max_epochs=1, progress=False, seed=rank, distributed=distributed)
    try:
        trainer.fit(cases.make_data())
    except DistributedError as error:
        Path(out, f"rank{rank}.error").write_text(str(error))


def test_processes_with_different_settings_refuse_to_start(tmp_path: Path) -> None:
    codes = cases.launch(_disagreeing_worker, 2, str(tmp_path / "store"), str(tmp_path))
    assert codes == [0, 0]
    for rank in range(2):
        message = (tmp_path / f"rank{rank}.error").read_text()
        assert "with seed = " in message and "every process must build the same model" in message
