"""The progress display: run → model → epoch → step, totals, statuses, summary lines, the run's plan and ETA."""

from __future__ import annotations

import csv
import io
import logging
import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from conftest import make_model, make_tasks, make_two_task_data
from multitask import training
from multitask.config import parse_config
from multitask.experiment import planned_trainings, run_experiment
from multitask.training import RunProgress, Trainer
from multitask.training.progress import ProgressBar


def fit(progress: Any, run_dir: Path | None = None, epochs: int = 3, **options: Any) -> Trainer:
    data = make_two_task_data(240)
    train, val = data.subset(torch.arange(180)), data.subset(torch.arange(180, 240))
    tasks = make_tasks()
    trainer = Trainer(
        make_model(tasks), tasks, max_epochs=epochs, batch_size=60, progress=progress, run_dir=run_dir, **options
    )
    trainer.fit(train, val)
    return trainer


def test_the_bars_show_the_run_the_model_and_its_epochs(tmp_path: Path) -> None:
    screen = io.StringIO()
    run = RunProgress(2, "demo", root=tmp_path, file=screen)
    fit(run, tmp_path / "mtl")
    fit(run, tmp_path / "seed-1" / "mmoe")
    run.close()
    text = screen.getvalue()
    assert "run demo  model 1/2 · mtl" in text and "run demo  model 2/2 · seed-1/mmoe" in text
    for epoch in (1, 2, 3):
        assert f"mtl  epoch {epoch}/3  step " in text
    assert "step 3/3" in text  # 180 rows in batches of 60
    assert "cls " in text and "reg " in text  # the running losses
    assert run.total == 2 and len(run.finished) == 2
    assert training.ProgressBar is ProgressBar


def test_a_status_is_shown_at_start_up_and_between_epochs(tmp_path: Path) -> None:
    screen = io.StringIO()
    run = RunProgress(1, file=screen)
    fit(run, tmp_path / "run", epochs=2)
    run.close()
    text = screen.getvalue()
    first, second = text.index("epoch 1/2  step"), text.index("epoch 2/2  step")
    assert text.index("preparing data…") < first
    between = text[first:second]
    assert "validating…" in between and "saving checkpoint…" in between and "epoch 1/2 done…" in between
    assert "saving the model…" in text[second:]


def test_one_summary_line_per_training_with_its_label_and_best_values(tmp_path: Path) -> None:
    screen = io.StringIO()
    run = RunProgress(2, root=tmp_path, file=screen)
    trainer = fit(run, tmp_path / "stl" / "cls", monitor="val/cls/accuracy")
    line = run.summaries[0]
    best = trainer.history[trainer.selection.best_epoch]
    assert line.startswith("✓ stl/cls (1/2)  3 epochs  ")
    assert f"cls/accuracy {best['val/cls/accuracy']:.4f}" in line and f"reg/mse {best['val/reg/mse']:.4f}" in line
    assert line in screen.getvalue()  # a permanent line above the bars
    lone = io.StringIO()
    trainer = fit(False, epochs=1, callbacks=[ProgressBar(file=lone)])  # a lone training: no run line, no index
    assert "run " not in lone.getvalue() and "epoch 1/1  step" in lone.getvalue()
    assert "✓ cls+reg  1 epoch  " in lone.getvalue()


def test_early_stopping_shows_in_the_summary(tmp_path: Path) -> None:
    run = RunProgress(1, file=io.StringIO())
    trainer = fit(run, epochs=30, patience=1, optimizer=lambda params: torch.optim.SGD(params, lr=0.0))
    assert trainer.epoch < 30
    assert f"stopped at epoch {trainer.epoch}/30" in run.summaries[0]


def test_nothing_is_shown_when_progress_is_false(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="multitask"):
        fit(False)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert not caplog.records


def test_without_bars_only_the_summary_lines_go_to_the_log(caplog: pytest.LogCaptureFixture) -> None:
    screen = io.StringIO()
    run = RunProgress(2, bars=False, file=screen)
    with caplog.at_level(logging.INFO, logger="multitask"):
        fit(run, epochs=2)
        fit(run, epochs=2)
    run.close()
    assert screen.getvalue() == ""
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2 and lines[0].startswith("✓ cls+reg (1/2)  2 epochs") and "(2/2)" in lines[1]


def test_more_trainings_than_planned_grow_the_total() -> None:
    run = RunProgress(1, file=io.StringIO())
    fit(run, epochs=1)
    fit(run, epochs=1)
    assert run.total == 2 and "(2/2)" in run.summaries[1]
    run.add_planned(-5)
    assert run.total == 2  # never below the trainings started


def test_the_run_eta_learns_from_early_stopping() -> None:
    now = [0.0]
    run = RunProgress(3, file=io.StringIO(), bars=False, clock=lambda: now[0])
    done = SimpleNamespace(history=[], epoch=2, max_epochs=4, selection=SimpleNamespace(should_stop=True))
    run.start_training("first", max_epochs=4)
    for epoch in range(2):  # 2 of its 4 epochs of 10 steps, 1 s a step, then early stopping
        run.start_epoch(epoch, 10, 0)
        for _ in range(10):
            now[0] += 1.0
            run.step({})
    run.finish_training(done)  # type: ignore[arg-type]
    assert run.eta() == pytest.approx(2 * 20.0)  # two more trainings of 20 s each
    now[0] += 2.0  # the first one's evaluation and plots
    run.start_training("second", max_epochs=4)
    run.start_epoch(0, 10, 0)
    for _ in range(5):
        now[0] += 1.0
        run.step({})
    # the second is expected to stop at half its plan too: 15 more steps of 1 s and 2 s after its fit, then one
    # training of 22 s (start to start)
    assert run.eta() == pytest.approx(15.0 + 2.0 + 22.0)
    fresh = RunProgress(2, file=io.StringIO(), bars=False, clock=lambda: now[0])
    fresh.start_training("only", max_epochs=2)
    assert fresh.eta() is None  # no step, nothing finished: unknown


# ---------------------------------------------------------------------- the run's plan
def _write_csv(path: Path, rows: int, seed: int) -> None:
    rng = random.Random(seed)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["a", "b", "y1", "y2"])
        for _ in range(rows):
            a, b = rng.gauss(0, 1), rng.gauss(0, 1)
            writer.writerow([f"{a:.4f}", f"{b:.4f}", int(a > 0), f"{2 * a - b:.4f}"])


def _config(folder: Path, **changes: Any) -> dict[str, Any]:
    _write_csv(folder / "train.csv", 160, 0)
    _write_csv(folder / "test.csv", 60, 1)
    raw: dict[str, Any] = {
        "name": "tiny",
        "data": {"type": "csv", "train": "train.csv", "test": "test.csv", "val_fraction": 0.25, "numeric": ["a", "b"]},
        "tasks": [{"name": "y1", "kind": "binary", "metrics": ["auc"]}, {"name": "y2", "kind": "regression"}],
        "model": {"encoder": {"hidden": [8]}, "expert": {"hidden": [8]}, "num_experts": 2},
        "training": {"epochs": 1, "batch_size": 60},
        "compare": {"methods": ["stl", "mtl", "mmoe"]},
        "analysis": {"report": False},
    }
    for key, value in changes.items():
        raw[key] = raw[key] | value
    if "mmoe" not in raw["compare"]["methods"]:
        raw["model"] = {"encoder": {"hidden": [8]}}
    return raw


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"compare": {"methods": ["stl", "mtl"], "transfer": [["y1", "y2"]]}, "analysis": {"seeds": [1, 2]}},
        {"compare": {"methods": ["mtl"]}, "analysis": {"pareto": {"methods": ["linear"], "resolution": 3}}},
        {"compare": {"methods": ["mtl"]}, "analysis": {"groups": {"num_groups": 2, "source": "pairwise"}}},
    ],
    ids=["stl-mtl-mmoe", "seeds-transfer", "pareto", "pairwise-groups"],
)
def test_the_planned_trainings_are_the_fits_made(
    changes: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = parse_config(_config(tmp_path, **changes), base_dir=tmp_path)
    fits: list[str] = []  # the label each training should get
    original = Trainer.fit
    root = tmp_path / "run"

    def counted(self: Trainer, *args: Any, **kwargs: Any) -> Any:
        directory = self.run_dir
        fits.append(directory.relative_to(root).as_posix() if directory else "+".join(self.task_names))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Trainer, "fit", counted)
    monkeypatch.setattr("multitask.training.callbacks.plot_curves", lambda *args, **kwargs: None)  # speed
    planned = planned_trainings(config)
    run = RunProgress(file=io.StringIO())
    run_experiment(config, output=root, progress=run)
    if "groups" in changes.get("analysis", {}):  # the plan counts num_groups, the most there can be
        assert planned >= len(fits)
    else:
        assert planned == len(fits)
    assert run.total == len(fits) == len(run.summaries)  # the total corrected once the grouping is known
    assert run.name == "tiny"
    for index, (label, line) in enumerate(zip(fits, run.summaries, strict=True), start=1):
        assert line.startswith(f"✓ {label} ({index}/") and "  1 epoch  " in line
    assert f"({len(fits)}/{len(fits)})" in run.summaries[-1]
