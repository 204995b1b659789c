"""``curves.png`` shows the weights that shaped the update, and epochs are counted from 1 everywhere."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from conftest import make_model, make_tasks
from multitask import Strategy, Trainer
from multitask.aggregation import GradDrop, UPGrad
from multitask.data import ArrayDataset
from multitask.training.callbacks import curves_figure, weight_panels
from multitask.weighting import UW


def _fit(data: ArrayDataset, run_dir: Path, strategy: Strategy | None = None) -> Trainer:
    tasks = make_tasks()
    trainer = Trainer(
        make_model(tasks), tasks, strategy=strategy, max_epochs=3, batch_size=100, run_dir=run_dir, progress=False
    )
    trainer.fit(data.subset(range(800)), data.subset(range(800, 1000)))
    return trainer


def test_with_upgrad_the_plotted_weights_are_the_logged_aggregation_weights(
    tmp_path: Path, two_task_data: ArrayDataset
) -> None:
    trainer = _fit(two_task_data, tmp_path, Strategy(aggregation=UPGrad()))
    history = trainer.history
    panels = weight_panels(history, trainer.task_names, aggregation="UPGrad")
    # equal weighting's w = 1 says nothing under an aggregator: only w' is drawn
    assert [keys for _, keys in panels] == [[f"aggregation_weight/{name}" for name in trainer.task_names]]
    assert panels[0][0].startswith("UPGrad weights $w'_t$")
    logged = {key: [record[key] for record in history] for key in panels[0][1]}
    assert any(abs(value - 1.0) > 1e-3 for values in logged.values() for value in values)  # not the flat 1.0
    figure = curves_figure(history, trainer.task_names, aggregation="UPGrad")
    (ax,) = [ax for ax in figure.axes if ax.get_title() == panels[0][0]]
    plotted = {line.get_label(): list(line.get_ydata()) for line in ax.lines}
    assert plotted == {key.split("/", 1)[1]: values for key, values in logged.items()}
    # and they are the file's numbers: metrics.csv holds the same weights, epochs 1..3
    with (tmp_path / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert [row["epoch"] for row in rows] == ["1", "2", "3"]
    for key, values in logged.items():
        assert np.allclose([float(row[key]) for row in rows], values)
    assert [json.loads(line)["epoch"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert [int(line.get_xdata()[0]) for line in ax.lines] == [1, 1]


def test_learned_loss_weights_under_an_aggregator_get_their_own_panel(two_task_data: ArrayDataset) -> None:
    tasks = make_tasks()
    strategy = Strategy(weighting=UW(), aggregation=UPGrad())
    trainer = Trainer(make_model(tasks), tasks, strategy=strategy, max_epochs=2, batch_size=100, progress=False)
    trainer.fit(two_task_data.subset(range(800)))
    keys = [keys for _, keys in weight_panels(trainer.history, trainer.task_names, aggregation="UPGrad")]
    assert keys == [
        [f"aggregation_weight/{name}" for name in trainer.task_names],
        [f"weight/{name}" for name in trainer.task_names],
    ]


def test_an_aggregator_without_task_weights_is_named_on_the_loss_weight_panel(two_task_data: ArrayDataset) -> None:
    tasks = make_tasks()
    trainer = Trainer(
        make_model(tasks),
        tasks,
        strategy=Strategy(aggregation=GradDrop()),
        max_epochs=1,
        batch_size=100,
        progress=False,
    )
    trainer.fit(two_task_data.subset(range(400)))
    ((title, keys),) = weight_panels(trainer.history, trainer.task_names, aggregation="GradDrop")
    assert keys == [f"weight/{name}" for name in trainer.task_names]
    assert "then GradDrop (no per-task weights)" in title


@pytest.mark.parametrize("aggregation", [None, "UPGrad"])
def test_without_any_weights_logged_no_weight_row_is_drawn(aggregation: str | None) -> None:
    history = [{"epoch": 1.0, "train/a/loss": 1.0}, {"epoch": 2.0, "train/a/loss": math.nan}]
    assert weight_panels(history, ["a"], aggregation=aggregation) == []
    figure = curves_figure(history, ["a"], aggregation=aggregation)
    assert len(figure.axes) == 1
