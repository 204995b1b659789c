"""Gradient conflict: cosines and norms by hand, the monitor leaves no trace, logs, resume, synthetic evidence."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from _analysis_runs import joint_run
from torch import nn

from conftest import make_model, make_tasks, make_two_task_data
from multitask import Task, Trainer
from multitask.analysis import ConflictHistory, GradientConflictMonitor, gradient_conflict, update_contributions
from multitask.data import ArrayDataset
from multitask.errors import ConfigError, ShapeError
from multitask.models import MLP, HardSharing


def test_cosines_and_norms_by_hand() -> None:
    jacobian = torch.tensor([[3.0, 4.0], [-3.0, -4.0], [4.0, -3.0], [0.0, 0.0]])
    cosine, norms = gradient_conflict(jacobian)
    assert norms.tolist() == [5.0, 5.0, 5.0, 0.0]
    assert cosine[0, 1].item() == pytest.approx(-1.0)
    assert cosine[0, 2].item() == pytest.approx(0.0)
    assert cosine[1, 1].item() == pytest.approx(1.0)
    assert math.isnan(cosine[0, 3].item())  # a zero gradient has no direction


def test_contributions_of_the_plain_sum_add_up_to_one() -> None:
    jacobian = torch.tensor([[1.0, 0.0, 2.0], [0.0, 3.0, -1.0]])
    shares = update_contributions(jacobian, jacobian.sum(dim=0))
    # d = (1, 3, 1), ‖d‖² = 11: <g1, d> = 3, <g2, d> = 8
    assert shares.tolist() == pytest.approx([3 / 11, 8 / 11])
    with pytest.raises(ShapeError):
        update_contributions(jacobian, torch.ones(2))


def _fit(monitor: GradientConflictMonitor | None, *, dropout: float = 0.0, **kwargs: object) -> Trainer:
    torch.manual_seed(0)
    tasks = make_tasks()
    model = HardSharing(MLP(8, [32, 16], dropout=dropout), tasks)
    callbacks = [monitor] if monitor is not None else []
    trainer = Trainer(model, tasks, max_epochs=2, batch_size=200, progress=False, callbacks=callbacks, **kwargs)  # type: ignore[arg-type]
    trainer.fit(make_two_task_data(600))
    return trainer


def test_the_monitor_leaves_no_trace_on_training() -> None:
    # dropout draws random numbers: the probe must fork the RNG and restore train mode
    plain = _fit(None, dropout=0.2)
    monitor = GradientConflictMonitor(every=1)
    probed = _fit(monitor, dropout=0.2)
    assert len(monitor.history) == 6  # 2 epochs x 3 steps
    for (name, a), b in zip(plain.model.state_dict().items(), probed.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_samples_every_n_steps_and_shares_sum_to_one_with_equal_weighting() -> None:
    monitor = GradientConflictMonitor(every=2)
    _fit(monitor)
    assert monitor.history.steps == [0, 2, 4]
    assert monitor.history.epochs == [0, 0, 1]
    shares = np.asarray(monitor.history.contribution)
    # no dropout: the probe's gradients are the update's terms, so <g1 + g2, d>/‖d‖² = 1
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, atol=1e-4)
    ratio = monitor.history.magnitude_ratio()
    assert ratio[0, 1] * ratio[1, 0] == pytest.approx(1.0, rel=0.2)  # mean of r and of 1/r: near reciprocal


def test_log_file_and_plots_round_trip(tmp_path: Path) -> None:
    monitor = GradientConflictMonitor(every=2)
    _fit(monitor, run_dir=tmp_path)
    read = ConflictHistory.read(tmp_path)
    assert read.task_names == ["cls", "reg"]
    assert read.steps == monitor.history.steps
    np.testing.assert_allclose(read.cosine, monitor.history.cosine)
    assert (tmp_path / "conflict_heatmap.png").stat().st_size > 1000
    assert (tmp_path / "conflict_curves.png").stat().st_size > 1000


def test_resumed_run_continues_the_same_log(tmp_path: Path) -> None:
    data = make_two_task_data(600)

    def trainer(epochs: int, run_dir: Path, monitor: GradientConflictMonitor) -> Trainer:
        tasks = make_tasks()
        return Trainer(
            make_model(tasks),
            tasks,
            max_epochs=epochs,
            batch_size=200,
            run_dir=run_dir,
            callbacks=[monitor],
            progress=False,
        )

    straight = GradientConflictMonitor(every=2, plot=False)
    trainer(3, tmp_path / "straight", straight).fit(data)
    first = GradientConflictMonitor(every=2, plot=False)
    trainer(2, tmp_path / "resumed", first).fit(data)
    second = GradientConflictMonitor(every=2, plot=False)
    trainer(3, tmp_path / "resumed", second).fit(data, resume=True)
    assert second.history.steps == straight.history.steps == [0, 2, 4, 6, 8]
    np.testing.assert_allclose(second.history.cosine, straight.history.cosine, atol=1e-6)
    assert ConflictHistory.read(tmp_path / "resumed").steps == straight.history.steps


def test_tasks_absent_from_a_step_get_no_cosine() -> None:
    generator = torch.Generator().manual_seed(0)
    x1, x2 = torch.randn(100, 8, generator=generator), torch.randn(100, 8, generator=generator)
    data = {"cls": ArrayDataset(x=x1, cls=(x1[:, 0] > 0).float()), "reg": ArrayDataset(x=x2, reg=x2[:, 1])}
    tasks = make_tasks()
    monitor = GradientConflictMonitor(every=1)
    Trainer(
        make_model(tasks), tasks, max_epochs=1, batch_size=50, tasks_per_step=1, callbacks=[monitor], progress=False
    ).fit(data)
    cosines = np.asarray(monitor.history.cosine)
    assert np.isnan(cosines[:, 0, 1]).all()  # one task per step: never two gradients to compare
    norms = np.asarray(monitor.history.norms)
    assert (np.isfinite(norms).sum(axis=1) == 1).all()


def test_single_task_runs_are_skipped_and_bad_settings_rejected() -> None:
    monitor = GradientConflictMonitor(every=1)
    task = Task("reg", nn.Linear(16, 1), "regression")
    Trainer(HardSharing(MLP(8, [16]), [task]), [task], max_epochs=1, callbacks=[monitor], progress=False).fit(
        make_two_task_data(100)
    )
    assert len(monitor.history) == 0
    with pytest.raises(ConfigError, match="every"):
        GradientConflictMonitor(every=0)


def test_synthetic_groups_adversarial_pair_conflicts() -> None:
    problem, conflict, _ = joint_run()
    names = problem.task_names
    cos = conflict.history.mean_cosine()
    index = {name: k for k, name in enumerate(names)}
    adv = index[problem.adversarial]
    for a in problem.group_a:
        assert cos[adv, index[a]] < -0.3, (a, cos[adv, index[a]])  # the negated target pulls the other way
    within = [cos[index[s], index[t]] for g in (problem.group_a, problem.group_b) for s in g for t in g if s < t]
    assert min(within) > 0.3
    across = [cos[index[a], index[b]] for a in problem.group_a for b in problem.group_b]
    assert max(abs(c) for c in across) < 0.1
    assert conflict.history.most_conflicting()[:2] in {(a, problem.adversarial) for a in problem.group_a}  # type: ignore[index]
