"""Negative transfer: intervals by hand, verdicts with metric directions, files, the synthetic evidence."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from _analysis_runs import joint_run

from multitask.analysis import (
    NegativeTransferReport,
    confidence_interval,
    negative_transfer,
    synthetic_task_groups,
)
from multitask.errors import ConfigError, DataError
from multitask.studies import detect_negative_transfer
from multitask.training import TrainerOptions


def test_t_interval_by_hand() -> None:
    # mean 2, sample sd 1, n = 3: half-width t_{2, 0.975} / sqrt(3) = 4.302653 / 1.732051
    low, high = confidence_interval([1.0, 2.0, 3.0])
    assert (low, high) == pytest.approx((2 - 2.484138, 2 + 2.484138), abs=1e-5)
    low90, high90 = confidence_interval([1.0, 2.0, 3.0], confidence=0.9)
    assert low < low90 < high90 < high


def test_bootstrap_interval_lies_within_the_data_and_one_value_proves_nothing() -> None:
    values = [0.5, 1.0, 1.5, 2.0, 0.7]
    low, high = confidence_interval(values, interval="bootstrap")
    assert min(values) <= low < np.mean(values) < high <= max(values)
    assert confidence_interval(values, interval="bootstrap") == (low, high)  # seeded
    assert confidence_interval([3.0]) == (-math.inf, math.inf)
    with pytest.raises(ConfigError, match="interval"):
        confidence_interval(values, interval="normal")  # type: ignore[arg-type]


DIRECTIONS = {"a": {"mse": False}, "b": {"auc": True}, "c": {"auc": True}}
STL = [
    {"a": {"mse": 1.0}, "b": {"auc": 0.80}, "c": {"auc": 0.70}},
    {"a": {"mse": 1.1}, "b": {"auc": 0.82}, "c": {"auc": 0.72}},
]
MTL = [
    {"a": {"mse": 1.5}, "b": {"auc": 0.85}, "c": {"auc": 0.73}},
    {"a": {"mse": 1.7}, "b": {"auc": 0.88}, "c": {"auc": 0.69}},
]


def test_verdicts_read_each_metric_direction() -> None:
    report = negative_transfer(STL, MTL, DIRECTIONS, confidence=0.5)
    verdicts = {v.task: v for v in report.verdicts}
    # a: mse rises by 0.5 and 0.6 -> paired gains -0.5, -0.6 (lower is better)
    assert verdicts["a"].difference == pytest.approx(-0.55)
    assert verdicts["a"].relative == pytest.approx(-0.55 / 1.05 * 100)
    assert verdicts["a"].verdict == "hurts"
    assert verdicts["b"].verdict == "helps"  # +0.05, +0.06
    assert verdicts["c"].verdict == "no evidence"  # +0.03, -0.03
    assert report.hurt == ["a"] and report.helped == ["b"]
    # Δm of seed 0: (-0.5/1.0 + 0.05/0.8 + 0.03/0.7) / 3
    assert report.delta_m[0] == pytest.approx(100 * (-0.5 + 0.05 / 0.8 + 0.03 / 0.7) / 3)
    assert any(s.startswith("a is hurt") for s in report.suggestions)
    assert any("helps b" in s for s in report.suggestions)


def test_report_files_round_trip(tmp_path: Path) -> None:
    report = negative_transfer(STL, MTL, DIRECTIONS)
    report.write(tmp_path)
    read = NegativeTransferReport.read(tmp_path)
    assert read == report
    assert "| a | mse |" in (tmp_path / "negative_transfer.md").read_text()
    assert (tmp_path / "negative_transfer.png").stat().st_size > 1000
    single = negative_transfer(STL[:1], MTL[:1], DIRECTIONS)  # one seed: infinite intervals survive JSON
    single.write(tmp_path / "one")
    assert NegativeTransferReport.read(tmp_path / "one").verdicts[0].low == -math.inf


def test_bad_inputs_say_what_is_wrong() -> None:
    with pytest.raises(DataError, match="one multi-task result"):
        negative_transfer(STL, MTL[:1], DIRECTIONS)
    with pytest.raises(DataError, match="direction"):
        negative_transfer(STL, MTL, {"a": {"mse": False}})


def test_suggestions_cite_the_conflict_and_the_affinity() -> None:
    problem, conflict, affinity = joint_run()
    names = problem.task_names
    stl = [{t: {"mse": base} for t in names} for base in (1.0, 1.1, 1.2)]
    worse = {"adv": 1.0}  # three seeds: the adversarial task's error is about 1.0 higher each time
    mtl = [
        {t: {"mse": base + worse.get(t, 0.0) + noise} for t in names}
        for base, noise in ((1.0, 0.0), (1.1, 0.1), (1.2, -0.1))
    ]
    directions = {t: {"mse": False} for t in names}
    report = negative_transfer(stl, mtl, directions, conflict=conflict.history, affinity=affinity.affinity)
    text = "\n".join(report.suggestions)
    assert report.hurt == ["adv"]
    assert "Regroup:" in text and "→adv" in text
    assert "Conflict: adv's gradient points against a" in text
    assert "pcgrad" in text and "soft_sharing" in text


def _small_problem() -> tuple:
    problem = synthetic_task_groups(460, seed=0)
    return problem, problem.data.subset(torch.arange(60)), problem.data.subset(torch.arange(60, 460))


def test_synthetic_negative_transfer_flags_the_adversarial_task_only() -> None:
    problem, train, test = _small_problem()
    report = detect_negative_transfer(
        problem.encoder(),
        problem.tasks(),
        train,
        None,
        test,
        seeds=(0, 1, 2),
        options=TrainerOptions(max_epochs=10, batch_size=10, lr=1e-2, progress=False),
    )
    verdicts = {v.task: v.verdict for v in report.verdicts}
    assert verdicts["adv"] == "hurts"
    assert all(verdicts[t] != "hurts" for t in problem.group_b)  # helped by sharing with each other
    assert verdicts["b0"] == "helps"
    with pytest.raises(ConfigError, match="two seeds"):
        detect_negative_transfer(problem.encoder(), problem.tasks(), train, seeds=(0,))


@pytest.mark.slow
def test_synthetic_negative_transfer_over_five_seeds(tmp_path: Path) -> None:
    problem, train, test = _small_problem()
    report = detect_negative_transfer(
        problem.encoder(),
        problem.tasks(),
        train,
        None,
        test,
        seeds=range(5),
        run_dir=tmp_path,
        options=TrainerOptions(max_epochs=10, batch_size=10, lr=1e-2, progress=False),
    )
    verdicts = {v.task: v.verdict for v in report.verdicts}
    assert verdicts["adv"] == "hurts"
    assert verdicts["b0"] == verdicts["b1"] == "helps"
    assert report.delta_m_high < 0  # overall the adversarial task makes sharing everything a loss
    assert NegativeTransferReport.read(tmp_path) == report
