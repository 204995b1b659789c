"""The Trainer end to end: it learns, selects and stops, handles bad input, and both kinds of data."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import make_model, make_tasks, make_two_task_data
from multitask import Strategy, Task, Trainer
from multitask.data import ArrayDataset
from multitask.errors import ConfigError, DataError, NonFiniteLossError, ShapeError
from multitask.models import MLP, HardSharing
from multitask.training import Callback, StepResult
from multitask.training.callbacks import tensorboard_available
from multitask.training.progress import progress_wanted
from multitask.weighting import StepContext, Weighting


def _split(data: ArrayDataset) -> tuple[ArrayDataset, ArrayDataset, ArrayDataset]:
    n = len(data)
    return (
        data.subset(torch.arange(0, int(0.7 * n))),
        data.subset(torch.arange(int(0.7 * n), int(0.85 * n))),
        data.subset(torch.arange(int(0.85 * n), n)),
    )


def test_single_input_run_reaches_stated_accuracy(two_task_data: ArrayDataset) -> None:
    train, val, test = _split(two_task_data)
    tasks = make_tasks()
    trainer = Trainer(make_model(tasks), tasks, max_epochs=15, batch_size=32, lr=3e-3, progress=False)
    history = trainer.fit(train, val)
    results = trainer.evaluate(test)
    assert len(history) == 15
    assert results["cls"]["accuracy"] > 0.93
    assert results["cls"]["auc"] > 0.98
    assert results["reg"]["r2"] > 0.95
    assert history[-1]["train/reg/loss"] < history[0]["train/reg/loss"]


def test_multi_input_run_learns_each_task_from_its_own_dataset() -> None:
    # Two tasks with different input spaces (8 and 5 features), one shared encoder behind adapters.
    generator = torch.Generator().manual_seed(0)
    xa, xb = torch.randn(900, 8, generator=generator), torch.randn(300, 5, generator=generator)
    task_a = ArrayDataset(x=xa, a=(xa[:, 0] - xa[:, 1] > 0).float())
    task_b = ArrayDataset(x=xb, b=(xb[:, :3].sum(1) > 0).long() + (xb[:, 3] > 1).long())
    tasks = [Task("a", nn.Linear(16, 1), "binary"), Task("b", nn.Linear(16, 3), "multiclass")]
    adapters = {"a": nn.Linear(8, 12), "b": nn.Linear(5, 12)}
    torch.manual_seed(0)
    model = HardSharing(MLP(12, [32, 16]), tasks, adapters=adapters)
    trainer = Trainer(model, tasks, max_epochs=12, batch_size=32, lr=3e-3, progress=False, sampling="proportional")
    train = {"a": task_a.subset(torch.arange(700)), "b": task_b.subset(torch.arange(220))}
    test = {"a": task_a.subset(torch.arange(700, 900)), "b": task_b.subset(torch.arange(220, 300))}
    trainer.fit(train)
    results = trainer.evaluate(test)
    assert results["a"]["auc"] > 0.97
    assert results["b"]["accuracy"] > 0.8
    predictions = trainer.predict(test)
    assert predictions["a"].shape == (200,)
    assert predictions["b"].shape == (80, 3)
    assert torch.allclose(predictions["b"].sum(1), torch.ones(80))


def test_task_sampling_one_task_per_step_only_updates_drawn_head() -> None:
    data = {"cls": make_two_task_data(200).subset(torch.arange(200)), "reg": make_two_task_data(100, seed=1)}
    tasks = make_tasks()
    seen: list[tuple[str, ...]] = []

    class Record(Callback):
        def on_step_end(self, trainer: Trainer, step: StepResult) -> None:
            seen.append(tuple(name for name, value in step.losses.items() if not math.isnan(value)))

    trainer = Trainer(
        make_model(tasks), tasks, max_epochs=1, batch_size=20, tasks_per_step=1, callbacks=[Record()], progress=False
    )
    trainer.fit(data)
    assert seen[:4] == [("cls",), ("reg",), ("cls",), ("reg",)]  # round robin, one task a step
    assert len(seen) == math.ceil(300 / 20)


def test_a_batch_without_labels_for_a_task_gives_it_no_gradient_and_no_nan() -> None:
    data = make_two_task_data(64)
    regression = data.columns["reg"].clone()
    regression[:32] = math.nan  # unshuffled order below: the first batch has no regression label
    data = ArrayDataset(x=data.columns["x"], cls=data.columns["cls"], reg=regression)
    tasks = make_tasks()
    model = make_model(tasks)
    head_before = [p.detach().clone() for p in model.heads["reg"].parameters()]
    observed: list[tuple[dict[str, float], bool, list[torch.Tensor]]] = []

    class Inspect(Callback):
        def on_step_end(self, trainer: Trainer, step: StepResult) -> None:
            grads = [p.grad for p in model.heads["reg"].parameters()]
            params = [p.detach().clone() for p in model.heads["reg"].parameters()]
            observed.append((step.losses, all(g is None for g in grads), params))

    trainer = Trainer(model, tasks, max_epochs=1, batch_size=32, shuffle=False, callbacks=[Inspect()], progress=False)
    trainer.fit(data)
    (first_losses, first_no_grad, first_params), (second_losses, second_no_grad, second_params) = observed
    assert math.isnan(first_losses["reg"]) and math.isfinite(first_losses["cls"])  # absent, not a NaN loss
    assert first_no_grad
    assert all(torch.equal(b, a) for b, a in zip(head_before, first_params, strict=True))
    assert math.isfinite(second_losses["reg"]) and not second_no_grad
    assert not all(torch.equal(b, a) for b, a in zip(first_params, second_params, strict=True))
    for parameter in model.parameters():
        assert parameter.grad is None or torch.isfinite(parameter.grad).all()


def test_unlabelled_task_in_training_data_is_rejected_before_training() -> None:
    data = make_two_task_data(64)
    data = ArrayDataset(x=data.columns["x"], cls=data.columns["cls"], reg=torch.full((64,), math.nan))
    tasks = make_tasks()
    with pytest.raises(DataError, match="'reg' has no labelled sample"):
        Trainer(make_model(tasks), tasks, progress=False).fit(data)


def _nan_after(step: int) -> Callback:
    class Poison(Callback):
        def on_step_end(self, trainer: Trainer, result: StepResult) -> None:
            if result.global_step + 1 == step:
                with torch.no_grad():
                    trainer.model.heads["reg"].bias.fill_(math.inf)  # type: ignore[union-attr]

    return Poison()


def test_nonfinite_loss_raises_naming_task_and_step() -> None:
    tasks = make_tasks()
    trainer = Trainer(make_model(tasks), tasks, max_epochs=1, batch_size=100, callbacks=[_nan_after(3)], progress=False)
    with pytest.raises(NonFiniteLossError, match=r"\['reg'\] at epoch 1, step 4"):
        trainer.fit(make_two_task_data(1000))


def test_nonfinite_loss_can_skip_the_step_without_touching_weights() -> None:
    tasks = make_tasks()
    model = make_model(tasks)
    snapshots: list[dict[str, torch.Tensor]] = []

    class Snapshot(Callback):
        def on_step_end(self, trainer: Trainer, result: StepResult) -> None:
            snapshots.append({k: v.clone() for k, v in model.state_dict().items()})

    trainer = Trainer(
        model,
        tasks,
        max_epochs=1,
        batch_size=100,
        on_nonfinite="skip",
        callbacks=[_nan_after(3), Snapshot()],
        progress=False,
    )
    with pytest.raises(NonFiniteLossError, match=r"epoch 1: 7 of 10 steps were skipped .* the run diverged"):
        trainer.fit(make_two_task_data(1000))  # most steps skipped: the epoch ends in an error, nothing saved
    assert trainer.skipped_steps == 7  # steps 4..10 all see the poisoned head
    for before, after in itertools.pairwise(snapshots[3:]):  # steps 4.. were all skipped
        assert all(torch.equal(before[k], after[k]) for k in before)


def test_early_stopping_and_best_model_restore(two_task_data: ArrayDataset) -> None:
    train, val, _ = _split(two_task_data)
    tasks = make_tasks()
    model = make_model(tasks)
    best_states: dict[int, dict[str, torch.Tensor]] = {}

    class Keep(Callback):
        def on_epoch_end(self, trainer: Trainer, record: object) -> None:
            best_states[trainer.epoch - 1] = {k: v.clone() for k, v in model.state_dict().items()}

    # a large learning rate makes validation loss bounce, so patience triggers early
    trainer = Trainer(
        model,
        tasks,
        max_epochs=40,
        batch_size=16,
        lr=0.05,
        patience=3,
        monitor="val/cls/auc",
        callbacks=[Keep()],
        progress=False,
    )
    history = trainer.fit(train, val)
    scores = [record["val/cls/auc"] for record in history]
    assert len(history) < 40
    assert trainer.selection.best_epoch == max(range(len(scores)), key=lambda i: (scores[i], -i))
    assert len(history) == trainer.selection.best_epoch + 1 + 3  # stopped after 3 epochs without improvement
    restored = model.state_dict()
    assert all(torch.equal(restored[k], best_states[trainer.selection.best_epoch][k]) for k in restored)


def test_delta_m_monitor_uses_the_baseline(two_task_data: ArrayDataset) -> None:
    train, val, _ = _split(two_task_data)
    tasks = make_tasks()
    baseline = {"cls": {"auc": 0.9}, "reg": {"mse": 1.0}}
    trainer = Trainer(make_model(tasks), tasks, max_epochs=2, baseline=baseline, progress=False)
    history = trainer.fit(train, val)
    record = history[-1]
    expected = 100 / 2 * ((record["val/cls/auc"] - 0.9) / 0.9 - (record["val/reg/mse"] - 1.0) / 1.0)
    assert record["val/delta_m"] == pytest.approx(expected)
    assert trainer.selection.best_score == max(r["val/delta_m"] for r in history)


def test_gradient_clipping_bounds_the_update() -> None:
    tasks = make_tasks()
    model = make_model(tasks)
    norms: list[float] = []

    class Norm(Callback):
        def on_step_end(self, trainer: Trainer, result: StepResult) -> None:
            norms.append(float(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]).norm()))

    big = make_two_task_data(200)
    big = ArrayDataset(x=big.columns["x"] * 100, cls=big.columns["cls"], reg=big.columns["reg"] * 100)
    Trainer(
        model,
        tasks,
        max_epochs=1,
        batch_size=50,
        optimizer=lambda p: torch.optim.SGD(p, lr=1e-6),
        grad_clip=0.5,
        callbacks=[Norm()],
        progress=False,
    ).fit(big)
    assert max(norms) <= 0.5 + 1e-4


def test_mixed_precision_runs_on_cpu_with_bfloat16(two_task_data: ArrayDataset) -> None:
    train, val, test = _split(two_task_data)
    tasks = make_tasks()
    trainer = Trainer(
        make_model(tasks), tasks, max_epochs=6, batch_size=32, lr=3e-3, mixed_precision=True, progress=False
    )
    trainer.fit(train, val)
    assert trainer.evaluate(test)["cls"]["accuracy"] > 0.9


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"max_epochs": 0}, "max_epochs must be positive"),
        ({"batch_size": -1}, "batch_size must be positive"),
        ({"grad_clip": 0.0}, "grad_clip must be positive"),
        ({"on_nonfinite": "ignore"}, "on_nonfinite must be"),
    ],
)
def test_invalid_trainer_arguments(kwargs: dict[str, object], message: str) -> None:
    tasks = make_tasks()
    with pytest.raises(ConfigError, match=message):
        Trainer(make_model(tasks), tasks, **kwargs)  # type: ignore[arg-type]


def test_fit_validates_data_and_options_before_training(two_task_data: ArrayDataset) -> None:
    tasks = make_tasks()
    trainer = Trainer(make_model(tasks), tasks, progress=False)
    with pytest.raises(DataError, match="no column 'reg'"):
        trainer.fit(ArrayDataset(x=two_task_data.columns["x"], cls=two_task_data.columns["cls"]))
    with pytest.raises(DataError, match="empty"):
        trainer.fit(ArrayDataset(x=torch.zeros(0, 8), cls=torch.zeros(0), reg=torch.zeros(0)))
    with pytest.raises(DataError, match="unknown task"):
        trainer.fit({"cls": two_task_data, "reg": two_task_data, "other": two_task_data})
    with pytest.raises(ConfigError, match="unknown monitor 'val/cls/r2'"):
        Trainer(make_model(tasks), tasks, monitor="val/cls/r2").fit(two_task_data, two_task_data)
    with pytest.raises(ConfigError, match="needs validation data"):
        Trainer(make_model(tasks), tasks, patience=2).fit(two_task_data)
    with pytest.raises(ConfigError, match="do not match"):
        Trainer(make_model(tasks), list(reversed(tasks)))


def test_head_target_shape_mismatch_names_the_task(two_task_data: ArrayDataset) -> None:
    tasks = [Task("cls", nn.Linear(16, 2), "binary"), Task("reg", nn.Linear(16, 1), "regression")]
    trainer = Trainer(make_model(tasks), tasks, progress=False)
    with pytest.raises(ShapeError, match="task 'cls': head output has shape"):
        trainer.fit(two_task_data)


def test_run_dir_gets_logs_plot_model_and_checkpoints(tmp_path: Path, two_task_data: ArrayDataset) -> None:
    train, val, _ = _split(two_task_data)
    tasks = make_tasks()
    trainer = Trainer(make_model(tasks), tasks, max_epochs=3, run_dir=tmp_path, keep_checkpoints=2, progress=False)
    trainer.fit(train, val)
    assert (tmp_path / "metrics.csv").read_text().count("\n") == 4  # header + 3 epochs
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 3
    assert (tmp_path / "curves.png").stat().st_size > 1000
    assert (tmp_path / "model.pt").is_file()
    assert len(list((tmp_path / "checkpoints").iterdir())) == 2
    if tensorboard_available():
        assert any((tmp_path / "tensorboard").iterdir())


def test_progress_bars_only_on_a_terminal_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("sys.stderr.isatty", lambda: True)
    monkeypatch.setenv("CI", "true")
    assert not progress_wanted()
    monkeypatch.delenv("CI")
    assert progress_wanted()
    monkeypatch.setattr("sys.stderr.isatty", lambda: False)
    assert not progress_wanted()


def test_custom_weighting_plugs_in_through_the_strategy(two_task_data: ArrayDataset) -> None:
    class OnlyClassification(Weighting):
        def weights(self, losses: torch.Tensor, context: StepContext) -> torch.Tensor:
            return torch.tensor([1.0, 0.0], device=losses.device)

    tasks = make_tasks()
    model = make_model(tasks)
    reg_head = [p.clone() for p in model.heads["reg"].parameters()]
    history = Trainer(model, tasks, strategy=Strategy(OnlyClassification()), max_epochs=1, progress=False).fit(
        two_task_data
    )
    assert history[0]["weight/cls"] == 1.0 and history[0]["weight/reg"] == 0.0
    assert all(torch.equal(a, b) for a, b in zip(reg_head, model.heads["reg"].parameters(), strict=True))


def test_the_models_own_penalty_is_part_of_the_trained_objective(two_task_data: ArrayDataset) -> None:
    from multitask.models import SoftSharing

    def deviation_norm(lam: float) -> float:
        torch.manual_seed(0)
        tasks = make_tasks()
        model = SoftSharing(MLP(8, [32, 16]), tasks, lam=lam)
        Trainer(model, tasks, max_epochs=2, batch_size=32, lr=3e-3, progress=False).fit(two_task_data)
        return float(sum(p.square().sum() for p in model.deviations.parameters()))

    free, coupled = deviation_norm(0.0), deviation_norm(10.0)
    assert free > 0  # without coupling the task copies drift apart
    assert coupled < 0.1 * free  # λ Σ‖b_t‖² reaches the optimiser through the Trainer


def test_gate_usage_of_mixture_of_experts_is_logged_each_epoch(tmp_path: Path, two_task_data: ArrayDataset) -> None:
    from multitask.models import MMoE

    tasks = make_tasks(hidden=16)
    torch.manual_seed(0)
    model = MMoE([MLP(8, [16]) for _ in range(3)], tasks, in_features=8)
    history = Trainer(model, tasks, max_epochs=2, run_dir=tmp_path, progress=False).fit(two_task_data)
    for record in history:
        for task in ("cls", "reg"):
            usage = [record[f"gate/{task}/{expert}"] for expert in range(3)]
            assert sum(usage) == pytest.approx(1.0, abs=1e-5)  # mean softmax over the experts
    assert "gate/cls/0" in (tmp_path / "metrics.csv").read_text().splitlines()[0]
    plain_tasks = make_tasks()
    plain = Trainer(make_model(plain_tasks), plain_tasks, max_epochs=1, progress=False).fit(two_task_data)
    assert not any(key.startswith("gate/") for key in plain[0])


def test_step_start_callbacks_see_each_steps_batches_before_the_update(two_task_data: ArrayDataset) -> None:
    tasks = make_tasks()
    model = make_model(tasks)

    class Probe(Callback):
        def __init__(self) -> None:
            self.seen: list[tuple[int, tuple[str, ...], int]] = []
            self.weights_before: list[torch.Tensor] = []

        def on_step_start(
            self, trainer: Trainer, groups: list[tuple[dict[str, torch.Tensor], tuple[str, ...]]]
        ) -> None:
            for batch, names in groups:
                self.seen.append((trainer.global_step, names, len(batch["x"])))
            self.weights_before.append(next(model.parameters()).detach().clone())

    probe = Probe()
    trainer = Trainer(model, tasks, max_epochs=2, batch_size=50, progress=False, callbacks=[probe])
    trainer.fit(two_task_data.subset(torch.arange(200)))
    assert [step for step, _, _ in probe.seen] == list(range(8))
    assert all(names == ("cls", "reg") and size == 50 for _, names, size in probe.seen)
    # called before the update: the weights it saw at step k are those left by step k - 1
    assert not torch.equal(probe.weights_before[0], probe.weights_before[1])
