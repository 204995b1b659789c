"""Explanations: gate usage of mixture-of-experts models, L2,1 feature selection, task clusters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from conftest import make_model, make_tasks, make_two_task_data
from multitask import Task, Trainer
from multitask.analysis import gate_history, gate_usage, plot_gate_usage, selected_features, task_clusters
from multitask.errors import ConfigError
from multitask.linear import LeastSquaresClustered, LeastSquaresL21
from multitask.models import MMoE


def _mmoe() -> tuple[MMoE, list[Task]]:
    torch.manual_seed(0)
    tasks = [Task("cls", nn.Linear(8, 1), "binary"), Task("reg", nn.Linear(8, 1), "regression")]
    return MMoE([nn.Sequential(nn.Linear(8, 8), nn.ReLU()) for _ in range(3)], tasks, in_features=8), tasks


def test_gate_usage_is_the_mean_gate_weight_over_the_data(tmp_path: Path) -> None:
    model, _ = _mmoe()
    data = make_two_task_data(300)
    usage = gate_usage(model, data, batch_size=128)
    expected = model.gate_weights(data[torch.arange(300)])
    for name in ("cls", "reg"):
        assert usage[name] == pytest.approx(expected[name].mean(dim=0).tolist(), abs=1e-6)
        assert sum(usage[name]) == pytest.approx(1.0)
    assert model.training  # mode restored
    assert plot_gate_usage(usage, tmp_path / "gates.png").stat().st_size > 1000


def test_gate_usage_needs_gates() -> None:
    tasks = make_tasks()
    with pytest.raises(ConfigError, match="no gates"):
        gate_usage(make_model(tasks), make_two_task_data(50))


def test_gate_history_reads_the_logged_epoch_means() -> None:
    model, tasks = _mmoe()
    trainer = Trainer(model, tasks, max_epochs=2, batch_size=100, progress=False)
    history = trainer.fit(make_two_task_data(300))
    gates = gate_history(history)
    assert set(gates) == {"cls", "reg"}
    assert len(gates["cls"]) == 2 and len(gates["cls"][0]) == 3
    assert sum(gates["reg"][-1]) == pytest.approx(1.0, abs=1e-5)


def test_l21_selects_the_features_the_tasks_share() -> None:
    generator = np.random.default_rng(0)
    x = generator.standard_normal((200, 10))
    true = np.zeros((10, 3))
    true[[1, 4, 7]] = generator.uniform(1.0, 2.0, size=(3, 3))  # three features used by every task
    y = x @ true + 0.1 * generator.standard_normal((200, 3))
    model = LeastSquaresL21(alpha=0.2).fit(x, y)
    chosen = selected_features(model, feature_names=[f"f{j}" for j in range(10)], task_names=["p", "q", "r"])
    assert sorted(chosen.selected) == ["f1", "f4", "f7"]
    assert all(sorted(features) == ["f1", "f4", "f7"] for features in chosen.per_task.values())
    assert chosen.row_norms[0] == 0.0


def test_selected_features_by_hand_from_a_coefficient_matrix() -> None:
    coef = np.array([[0.0, 2.0, -0.5], [0.0, 0.0, 1.0]])  # [T, d]
    chosen = selected_features(coef)
    assert chosen.selected == ["x1", "x2"]  # row norms 2 and sqrt(1.25): largest first
    assert chosen.per_task == {"task0": ["x1", "x2"], "task1": ["x2"]}


def test_task_clusters_of_a_clustered_model_and_of_plain_coefficients() -> None:
    generator = np.random.default_rng(1)
    x = generator.standard_normal((300, 8))
    centres = generator.standard_normal((2, 8))
    weights = np.stack([centres[0], centres[0], centres[0], centres[1], centres[1]])
    weights += 0.1 * generator.standard_normal(weights.shape)
    y = x @ weights.T + 0.1 * generator.standard_normal((300, 5))
    model = LeastSquaresClustered(alpha=1.0, beta=0.01, n_clusters=2).fit(x, y)
    labels = task_clusters(model, task_names=list("abcde"))
    assert labels == {"a": 0, "b": 0, "c": 0, "d": 1, "e": 1}
    opposite = task_clusters(np.array([[1.0, 0.0], [-1.0, 0.1], [0.9, 0.1]]), 2)
    assert opposite == {"task0": 0, "task1": 1, "task2": 0}  # a negated task is no cluster mate
    with pytest.raises(ConfigError, match="num_clusters"):
        task_clusters(np.eye(2), 3)
