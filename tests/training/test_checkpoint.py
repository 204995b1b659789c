"""Checkpoints: atomic, verified, code-free; a damaged file gives a clear error naming it."""

from __future__ import annotations

import hashlib
import io
import pickle
from pathlib import Path

import pytest
import torch

from conftest import make_model, make_tasks, make_two_task_data
from multitask import Trainer
from multitask.errors import CheckpointError
from multitask.models import MLP, HardSharing
from multitask.training.checkpoint import MAGIC, list_checkpoints, load_checkpoint, save_checkpoint


def test_round_trip_keeps_tensors_and_plain_values(tmp_path: Path) -> None:
    state = {"w": torch.arange(6.0).reshape(2, 3), "step": 7, "history": [{"loss": 0.5}], "name": "run", "none": None}
    save_checkpoint(tmp_path / "c.pt", state)
    loaded = load_checkpoint(tmp_path / "c.pt")
    assert torch.equal(loaded["w"], state["w"])
    assert {k: v for k, v in loaded.items() if k != "w"} == {k: v for k, v in state.items() if k != "w"}
    assert not list(tmp_path.glob(".*tmp"))  # no temporary file left behind


def test_a_flipped_byte_is_detected_and_the_file_named(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"w": torch.randn(100)})
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=rf"{path}.*corrupt or truncated"):
        load_checkpoint(path)


def test_a_truncated_file_is_detected(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"w": torch.randn(100)})
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(CheckpointError, match=str(path)):
        load_checkpoint(path)
    path.write_bytes(MAGIC[:4])
    with pytest.raises(CheckpointError, match="bad header"):
        load_checkpoint(path)


def test_missing_file_and_foreign_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "absent.pt")
    foreign = tmp_path / "foreign.pt"
    torch.save({"w": torch.zeros(1)}, foreign)
    with pytest.raises(CheckpointError, match="not a multitask checkpoint"):
        load_checkpoint(foreign)


class _Payload:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (print, ("this must never run",))


def test_loading_never_unpickles_arbitrary_objects(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A file with a valid header and checksum whose payload pickles a callable is still refused.
    buffer = io.BytesIO()
    torch.save({"evil": _Payload()}, buffer, pickle_module=pickle)
    payload = buffer.getvalue()
    path = tmp_path / "evil.pt"
    path.write_bytes(MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload)
    with pytest.raises(CheckpointError, match="cannot be loaded"):
        load_checkpoint(path)
    assert "this must never run" not in capsys.readouterr().out


def test_resume_from_a_corrupt_latest_checkpoint_fails_loudly(tmp_path: Path) -> None:
    tasks = make_tasks()
    data = make_two_task_data(300)
    Trainer(make_model(tasks), tasks, max_epochs=2, run_dir=tmp_path, progress=False).fit(data)
    latest = list_checkpoints(tmp_path / "checkpoints")[-1]
    latest.write_bytes(latest.read_bytes()[: latest.stat().st_size // 2])
    trainer = Trainer(make_model(tasks), tasks, max_epochs=3, run_dir=tmp_path, progress=False)
    with pytest.raises(CheckpointError, match=latest.name):
        trainer.fit(data, resume=True)


def test_resume_refuses_a_checkpoint_of_other_tasks(tmp_path: Path) -> None:
    tasks = make_tasks()
    data = make_two_task_data(300)
    Trainer(make_model(tasks), tasks, max_epochs=1, run_dir=tmp_path, progress=False).fit(data)
    state = load_checkpoint(list_checkpoints(tmp_path / "checkpoints")[-1])
    state["task_names"] = ["x", "y"]
    with pytest.raises(CheckpointError, match=r"checkpoint is for tasks \['x', 'y'\]"):
        Trainer(make_model(tasks), tasks, progress=False).load_state_dict(state)


def test_resuming_a_finished_run_returns_its_history_without_training(tmp_path: Path) -> None:
    tasks = make_tasks()
    data = make_two_task_data(300)
    first = Trainer(make_model(tasks), tasks, max_epochs=2, run_dir=tmp_path, progress=False)
    history = first.fit(data)
    second = Trainer(make_model(tasks), tasks, max_epochs=2, run_dir=tmp_path, progress=False)
    assert second.fit(data, resume=True) == history
    assert second.global_step == first.global_step
    for a, b in zip(first.model.parameters(), second.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_resume_into_a_different_architecture_is_a_checkpoint_error(tmp_path: Path) -> None:
    tasks = make_tasks()
    data = make_two_task_data(300)
    Trainer(make_model(tasks), tasks, max_epochs=1, run_dir=tmp_path, progress=False).fit(data)
    wider = make_tasks(hidden=24)
    model = HardSharing(MLP(8, [32, 24]), wider)
    with pytest.raises(CheckpointError, match="does not fit this model"):
        Trainer(model, wider, max_epochs=2, run_dir=tmp_path, progress=False).fit(data, resume=True)
