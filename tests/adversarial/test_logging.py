"""The game's diagnostics reach the epoch records, the metrics files and a plot."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import torch
from _marker import marked_data
from torch import nn

from multitask import Strategy, Task, Trainer
from multitask.adversarial import Adversary, DANNSchedule
from multitask.models import MLP, SharedPrivate


def test_records_hold_accuracy_loss_coefficient_and_orthogonality(tmp_path: Path) -> None:
    torch.manual_seed(0)
    tasks = [Task(f"t{t}", nn.Linear(8 + 4, 1), "binary") for t in range(3)]
    model = SharedPrivate(MLP(9, [8]), lambda: MLP(9, [4]), tasks, gamma=0.01)
    adversary = Adversary(schedule=DANNSchedule(), hidden=())
    trainer = Trainer(
        model,
        tasks,
        strategy=Strategy(adversary=adversary),
        max_epochs=2,
        batch_size=50,
        run_dir=tmp_path,
        progress=False,
        device="cpu",
    )
    history = trainer.fit(marked_data(0, n=100), val=marked_data(1, n=50))
    for record in history:
        assert 0.0 <= record["adversary/accuracy"] <= 1.0
        assert record["adversary/loss"] > 0 and record["model/orthogonality"] > 0
    # 2 steps per epoch: the coefficient of the last step of each epoch, λ_p at p = 1/4 and 3/4
    assert history[0]["adversary/coefficient"] == DANNSchedule()(1 / 4)
    assert history[1]["adversary/coefficient"] == DANNSchedule()(3 / 4)
    with (tmp_path / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert math.isclose(float(rows[-1]["adversary/accuracy"]), history[-1]["adversary/accuracy"])
    assert (tmp_path / "adversary.png").stat().st_size > 0


def test_a_shared_private_model_without_adversary_logs_its_orthogonality_only() -> None:
    torch.manual_seed(0)
    tasks = [Task(f"t{t}", nn.Linear(8 + 4, 1), "binary") for t in range(3)]
    model = SharedPrivate(MLP(9, [8]), lambda: MLP(9, [4]), tasks, gamma=0.0)
    trainer = Trainer(model, tasks, max_epochs=1, batch_size=50, progress=False, device="cpu")
    record = trainer.fit(marked_data(0, n=100))[-1]
    assert record["model/orthogonality"] > 0
    assert not any(key.startswith("adversary/") for key in record)
