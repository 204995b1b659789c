"""A run with an alternating adversary, interrupted and resumed from a checkpoint, ends as an uninterrupted one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _marker import marked_data, marked_model

from multitask import Strategy, Trainer
from multitask.adversarial import Adversary, DANNSchedule
from multitask.training import Callback, StepResult


class Crash(Exception):
    pass


class CrashAt(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, trainer: Trainer, step: StepResult) -> None:
        if step.global_step + 1 == self.step:
            raise Crash


def _trainer(run_dir: Path | None, crash_at: int | None = None) -> Trainer:
    model, tasks = marked_model()
    adversary = Adversary(scheme="alternating", schedule=DANNSchedule(), hidden=(16,), lr=1e-2)
    return Trainer(
        model,
        tasks,
        strategy=Strategy(adversary=adversary),
        max_epochs=2,
        batch_size=32,
        run_dir=run_dir,
        checkpoint_every=3,
        callbacks=[CrashAt(crash_at)] if crash_at is not None else [],
        progress=False,
        device="cpu",
        seed=1,
    )


def _state(trainer: Trainer) -> dict[str, torch.Tensor]:
    state = {f"model.{k}": v for k, v in trainer.model.state_dict().items()}
    state.update({f"strategy.{k}": v for k, v in trainer.strategy.state_dict().items() if isinstance(v, torch.Tensor)})
    return state


def test_resume_continues_the_adversarial_game_exactly(tmp_path: Path) -> None:
    data = marked_data(0, n=100)  # 4 steps per epoch
    reference = _trainer(None)
    reference_history = reference.fit(data)

    with pytest.raises(Crash):
        _trainer(tmp_path / "crashed", crash_at=7).fit(data)  # second epoch; last checkpoint at step 6
    resumed = _trainer(tmp_path / "crashed")
    resumed_history = resumed.fit(data, resume=True)

    expected, actual = _state(reference), _state(resumed)
    assert expected.keys() == actual.keys()
    assert any(key.startswith("strategy.adversary.discriminator") for key in actual)
    for key in expected:
        assert torch.equal(expected[key], actual[key]), f"{key} differs after resume"
    for key in ("adversary/accuracy", "adversary/loss", "adversary/coefficient"):
        assert [r[key] for r in resumed_history] == [r[key] for r in reference_history]
    assert (tmp_path / "crashed" / "adversary.png").is_file()
