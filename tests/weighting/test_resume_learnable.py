"""Learnable and stateful weightings resume exactly: their parameters, buffers and own optimiser are checkpointed."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import make_model, make_tasks, make_two_task_data
from multitask import Strategy, Trainer
from multitask.training.checkpoint import list_checkpoints, load_checkpoint
from multitask.weighting import create


def _trainer(name: str, run_dir: Path, epochs: int) -> Trainer:
    tasks = make_tasks()
    return Trainer(
        make_model(tasks),
        tasks,
        strategy=Strategy(create(name)),
        max_epochs=epochs,
        batch_size=60,
        run_dir=run_dir,
        progress=False,
        seed=5,
    )


@pytest.mark.parametrize("name", ["gradnorm", "famo", "uw", "dwa"])
def test_resume_equals_uninterrupted_run(name: str, tmp_path: Path) -> None:
    data = make_two_task_data(300)
    reference = _trainer(name, tmp_path / "reference", epochs=4)
    reference.fit(data)
    _trainer(name, tmp_path / "resumed", epochs=2).fit(data)  # "interrupted" after two epochs
    resumed = _trainer(name, tmp_path / "resumed", epochs=4)
    resumed.fit(data, resume=True)
    for key, value in reference.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    for key, value in reference.strategy.state_dict().items():
        assert torch.equal(value, resumed.strategy.state_dict()[key]) if isinstance(value, torch.Tensor) else True
    assert [r["weight/cls"] for r in reference.history] == [r["weight/cls"] for r in resumed.history]


def test_checkpoint_holds_the_own_optimiser_state(tmp_path: Path) -> None:
    _trainer("gradnorm", tmp_path, epochs=1).fit(make_two_task_data(120))
    state = load_checkpoint(list_checkpoints(tmp_path / "checkpoints")[-1])  # torch.load(weights_only=True)
    extra = state["strategy"]["weighting._extra_state"]
    assert extra["optimizer"]["state"][0]["exp_avg"].shape == (2,)
    assert state["strategy"]["weighting.loss_weights"].sum().item() == pytest.approx(2.0)
