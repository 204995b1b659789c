"""TAG look-ahead affinity against a hand-made look-ahead, the monitor, pairwise transfer, synthetic evidence."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from _analysis_runs import joint_run

from conftest import make_model, make_tasks, make_two_task_data
from multitask import Trainer
from multitask.analysis import (
    TaskAffinity,
    TaskAffinityMonitor,
    lookahead_affinity,
    synthetic_task_groups,
)
from multitask.errors import ConfigError, DataError
from multitask.studies import pairwise_transfer, train_groups
from multitask.training import TrainerOptions


def _manual_lookahead(clones: list[torch.nn.Module], tasks: list, batch: dict, lr: float) -> np.ndarray:
    """Z[i, j] = 1 - L_j(θ_s - lr ∇_s L_i) / L_j(θ_s), stepping copies of the model by hand (one per task + 1)."""

    def losses(network: torch.nn.Module) -> list[torch.Tensor]:
        network.eval()
        outputs = network(batch)
        return [t.compute_loss(outputs[t.name].float(), batch)[0] for t in tasks]

    before = [float(v.detach()) for v in losses(clones[0])]
    result = np.zeros((len(tasks), len(tasks)))
    for i, clone in enumerate(clones[1:]):
        losses(clone)[i].backward()
        with torch.no_grad():
            for p in clone.shared_parameters():
                p -= lr * p.grad
        after = [float(v.detach()) for v in losses(clone)]
        result[i] = [1 - a / b for a, b in zip(after, before, strict=True)]
    return result


def test_lookahead_matches_a_step_taken_by_hand() -> None:
    tasks = make_tasks()
    model = make_model(tasks)
    model.train()
    batch = make_two_task_data(64)[torch.arange(64)]
    clones = [copy.deepcopy(model) for _ in range(len(tasks) + 1)]
    z = lookahead_affinity(model, tasks, [(batch, ("cls", "reg"))], lr=0.05)
    expected = _manual_lookahead(clones, tasks, batch, 0.05)
    np.testing.assert_allclose(z.numpy(), expected, rtol=1e-4, atol=1e-6)
    assert model.training  # mode restored
    assert all(p.grad is None for p in model.parameters())  # no gradient written
    assert (np.diag(z.numpy()) > 0).all()  # a small step on a task's own gradient lowers its loss


def test_lookahead_checks_its_step_size() -> None:
    tasks = make_tasks()
    batch = make_two_task_data(8)[torch.arange(8)]
    with pytest.raises(ConfigError, match="lr"):
        lookahead_affinity(make_model(tasks), tasks, [(batch, ("cls", "reg"))], lr=0.0)


def test_monitor_averages_its_samples_and_writes_them(tmp_path: Path) -> None:
    tasks = make_tasks()
    monitor = TaskAffinityMonitor(every=2, lr=0.01)
    Trainer(
        make_model(tasks), tasks, max_epochs=2, batch_size=200, run_dir=tmp_path, callbacks=[monitor], progress=False
    ).fit(make_two_task_data(600))
    affinity = monitor.affinity
    assert affinity.samples == 3 and affinity.steps == [0, 2, 4]
    np.testing.assert_allclose(affinity.array(), np.mean(affinity.history, axis=0))
    read = TaskAffinity.read(tmp_path)
    np.testing.assert_allclose(read.array(), affinity.array())
    assert (tmp_path / "affinity.png").stat().st_size > 1000
    restored = TaskAffinityMonitor()
    restored.load_state_dict(monitor.state_dict())
    np.testing.assert_allclose(restored.affinity.array(), affinity.array())


def test_synthetic_affinity_recovers_the_groups_and_the_grouping_picks_them() -> None:
    problem, _, monitor = joint_run()
    z = monitor.affinity.array()
    index = {name: k for k, name in enumerate(problem.task_names)}
    pairs = lambda g, h: [z[index[s], index[t]] for s in g for t in h if s != t]  # noqa: E731
    within = pairs(problem.group_a, problem.group_a) + pairs(problem.group_b, problem.group_b)
    across = pairs(problem.group_a, problem.group_b) + pairs(problem.group_b, problem.group_a)
    adversarial = pairs([problem.adversarial], problem.group_a) + pairs(problem.group_a, [problem.adversarial])
    assert min(within) > 0
    assert max(abs(v) for v in across) < 0.1 * min(within)  # the groups share nothing
    assert max(adversarial) < 0  # the adversarial task and group A hurt each other
    grouping = monitor.affinity.group(3)
    assert set(grouping.groups) == set(problem.true_groups)
    assert grouping.exact


def test_pairwise_transfer_signs_on_the_adversarial_pair() -> None:
    problem = synthetic_task_groups(460, seed=0)
    tasks = [t for t in problem.tasks() if t.name in ("a0", "a1", "adv")]
    train, val = problem.data.subset(torch.arange(60)), problem.data.subset(torch.arange(60, 460))
    matrix = pairwise_transfer(
        problem.encoder(),
        tasks,
        train,
        val,
        options=TrainerOptions(max_epochs=10, batch_size=10, lr=1e-2, progress=False),
    )
    assert matrix.kind == "pairwise" and matrix.samples == 3
    a = {(s, t): matrix.array()[i, j] for i, s in enumerate(matrix.task_names) for j, t in enumerate(matrix.task_names)}
    assert a[("a0", "adv")] < -10 and a[("adv", "a0")] < -10  # percent: both much worse together
    assert a[("a0", "a1")] + a[("a1", "a0")] > 0  # same factor: together they do better on the whole
    with pytest.raises(ConfigError, match="max_tasks"):
        pairwise_transfer(problem.encoder(), tasks, train, max_tasks=2)


def test_train_groups_runs_each_group_and_reports_every_task() -> None:
    problem = synthetic_task_groups(460, seed=0)
    train, test = problem.data.subset(torch.arange(60)), problem.data.subset(torch.arange(60, 460))
    grouping = TaskAffinity(
        problem.task_names, _block_affinity(problem.task_names, problem.true_groups).tolist()
    ).group(3)
    options = TrainerOptions(max_epochs=6, batch_size=10, lr=1e-2, progress=False)
    comparison = train_groups(problem.encoder(), problem.tasks(), grouping, train, None, test, options=options)
    assert comparison.methods == ["stl", "mtl", "groups"]
    assert set(comparison.results["groups"]) == set(problem.task_names)
    # the adversarial task trained alone matches its single-task model exactly (same seed, same run)
    assert comparison.results["groups"]["adv"] == comparison.results["stl"]["adv"]
    assert comparison.delta_m("groups") > comparison.delta_m("mtl")
    saved = json.loads(grouping.to_json())
    assert saved["groups"] == [list(g) for g in grouping.groups] and saved["overlap"] is False
    wrong = TaskAffinity(["a0", "b0"], [[0.0, 1.0], [1.0, 0.0]]).group(1)
    with pytest.raises(ConfigError, match="differ"):
        train_groups(problem.encoder(), problem.tasks(), wrong, train)


def test_unreadable_affinity_file_is_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "affinity.json").write_text("{not json")
    with pytest.raises(DataError, match="affinity"):
        TaskAffinity.read(tmp_path)


def _block_affinity(names: list[str], groups: list[tuple[str, ...]]) -> np.ndarray:
    matrix = np.full((len(names), len(names)), -1.0)
    for group in groups:
        for s in group:
            for t in group:
                matrix[names.index(s), names.index(t)] = 1.0
    return matrix
