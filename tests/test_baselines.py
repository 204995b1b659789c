"""Single-task and transfer baselines, and the comparison table with Δm%."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from conftest import make_tasks, make_two_task_data
from multitask.baselines import compare, fresh_copy, train_multitask, train_single_task, train_transfer
from multitask.data import ArrayDataset
from multitask.errors import ConfigError
from multitask.metrics import delta_m
from multitask.models import MLP
from multitask.strategy import Strategy
from multitask.training import TrainerOptions
from multitask.training.checkpoint import load_checkpoint
from multitask.weighting import Linear


def _splits() -> tuple[ArrayDataset, ArrayDataset, ArrayDataset]:
    data = make_two_task_data(900)
    return (
        data.subset(torch.arange(600)),
        data.subset(torch.arange(600, 750)),
        data.subset(torch.arange(750, 900)),
    )


def test_fresh_copy_reinitialises_deterministically_and_leaves_the_original() -> None:
    torch.manual_seed(123)
    module = MLP(4, [8], 2)
    original = [p.clone() for p in module.parameters()]
    a, b, c = fresh_copy(module, seed=1), fresh_copy(module, seed=1), fresh_copy(module, seed=2)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters(), strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a.parameters(), c.parameters(), strict=True))
    assert not all(torch.equal(x, y) for x, y in zip(a.parameters(), original, strict=True))
    assert all(torch.equal(x, y) for x, y in zip(module.parameters(), original, strict=True))


def test_single_task_models_each_see_only_their_task() -> None:
    train, val, test = _splits()
    result = train_single_task(
        MLP(8, [16]),
        make_tasks(),
        train,
        val,
        test,
        options=TrainerOptions(max_epochs=5, progress=False, lr=3e-3, batch_size=32),
    )
    assert set(result.test) == {"cls", "reg"}
    assert set(result.histories) == {"cls", "reg"}
    assert all(not any(key.startswith("train/reg") for key in r) for r in result.histories["cls"])
    assert result.test["cls"]["accuracy"] > 0.85
    assert result.test["reg"]["r2"] > 0.8


def test_transfer_with_a_frozen_encoder_only_trains_the_new_head(tmp_path: Path) -> None:
    train, val, test = _splits()
    result = train_transfer(
        MLP(8, [16]),
        *make_tasks(),
        train,
        val,
        test,
        freeze_encoder=True,
        run_dir=tmp_path,
        options=TrainerOptions(max_epochs=3, progress=False),
    )
    assert result.method == "transfer:cls->reg"
    assert set(result.test) == {"reg"}
    before = load_checkpoint(tmp_path / "pretrain" / "model.pt")["model"]
    after = load_checkpoint(tmp_path / "finetune" / "model.pt")["model"]
    encoder_keys = [k for k in before if k.startswith("encoder.")]
    assert encoder_keys
    assert all(torch.equal(before[k], after[k]) for k in encoder_keys)


def test_transfer_needs_two_different_tasks() -> None:
    train, _, _ = _splits()
    task = make_tasks()[0]
    with pytest.raises(ConfigError, match="two different tasks"):
        train_transfer(MLP(8, [16]), task, task, train)


def test_compare_reports_delta_m_against_single_task_models(tmp_path: Path) -> None:
    train, val, test = _splits()
    comparison = compare(
        MLP(8, [16]),
        make_tasks(),
        train,
        val,
        test,
        run_dir=tmp_path,
        options=TrainerOptions(max_epochs=3, progress=False),
        transfer=[("cls", "reg")],
    )
    assert comparison.methods == ["stl", "mtl", "transfer:cls->reg"]
    directions = {
        "cls": {m: m != "log_loss" for m in comparison.results["mtl"]["cls"]},
        "reg": {"mse": False, "mae": False, "r2": True},
    }
    expected = delta_m(comparison.results["mtl"], comparison.results["stl"], directions)
    assert comparison.delta_m("mtl") == pytest.approx(expected)
    assert comparison.delta_m("stl") == pytest.approx(0.0)
    # the transfer run has only the target task: Δm over that task alone
    only_reg = delta_m(comparison.results["transfer:cls->reg"], {"reg": comparison.results["stl"]["reg"]}, directions)
    assert comparison.delta_m("transfer:cls->reg") == pytest.approx(only_reg)
    table = comparison.to_markdown()
    assert table.splitlines()[0].startswith("| method | cls auc |")
    assert (tmp_path / "results.md").read_text().strip() == table
    assert (tmp_path / "comparison.png").stat().st_size > 1000
    assert not math.isnan(comparison.delta_m("mtl"))


def test_compare_rejects_unknown_methods_and_pairs() -> None:
    train, _, _ = _splits()
    with pytest.raises(ConfigError, match="unknown method"):
        compare(MLP(8, [16]), make_tasks(), train, methods=["mmoe"])
    with pytest.raises(ConfigError, match="unknown task"):
        compare(MLP(8, [16]), make_tasks(), train, transfer=[("cls", "nope")])


def _budget() -> TrainerOptions:
    return TrainerOptions(max_epochs=2, progress=False, batch_size=64)


def test_the_deprecated_keyword_form_warns_and_trains_as_the_options_do() -> None:
    train, val, test = _splits()
    with_options = train_multitask(MLP(8, [16]), make_tasks(), train, val, test, seed=4, options=_budget())
    with pytest.warns(DeprecationWarning, match=r"options=TrainerOptions\(batch_size=\.\.\., max_epochs=\.\.\."):
        with_keywords = train_multitask(
            MLP(8, [16]), make_tasks(), train, val, test, seed=4, max_epochs=2, progress=False, batch_size=64
        )
    assert with_keywords.test == with_options.test
    with pytest.raises(ConfigError, match=r"unknown Trainer option.*max_epoch"), pytest.warns(DeprecationWarning):
        train_multitask(MLP(8, [16]), make_tasks(), train, max_epoch=2)


def test_single_task_runs_leave_the_multitask_options_out() -> None:
    # a weighting of 1.8·L on a task would change its training (a 1.8× learning rate); the single-task
    # models train on the plain loss, so the strategy must not reach them
    train, val, test = _splits()
    plain = train_single_task(MLP(8, [16]), make_tasks(), train, val, test, options=_budget())
    weighted = _budget().replace(strategy=lambda: Strategy(weighting=Linear([0.9, 0.1])), sampling="uniform")
    assert train_single_task(MLP(8, [16]), make_tasks(), train, val, test, options=weighted).test == plain.test
    multitask_plain = train_multitask(MLP(8, [16]), make_tasks(), train, val, test, options=_budget())
    multitask_weighted = train_multitask(MLP(8, [16]), make_tasks(), train, val, test, options=weighted)
    assert multitask_weighted.test != multitask_plain.test  # the same options do reach a multi-task model


def test_a_study_seed_replaces_the_options_seed_and_defaults_to_it() -> None:
    train, val, test = _splits()
    by_argument = train_multitask(MLP(8, [16]), make_tasks(), train, val, test, seed=3, options=_budget())
    by_options = train_multitask(MLP(8, [16]), make_tasks(), train, val, test, options=_budget().replace(seed=3))
    other = train_multitask(MLP(8, [16]), make_tasks(), train, val, test, seed=0, options=_budget().replace(seed=3))
    assert by_argument.test == by_options.test
    assert other.test != by_options.test
