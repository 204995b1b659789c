"""Each config section builds what it validates once, and every run gets objects of its own.

Validation used to build the strategy three times (the strategy section, the cross-section check with the task
names, the experiment); a stateful weighting was then shared by every Trainer of every seed.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from multitask.adversarial import Adversary
from multitask.aggregation import UPGrad
from multitask.config import CNNConfig, StrategyConfig, parse_config
from multitask.errors import ConfigError
from multitask.experiment import run_experiment
from multitask.models import MLP, MMoE
from multitask.weighting import DWA


def _count_constructions(monkeypatch: pytest.MonkeyPatch, classes: tuple[type, ...]) -> Counter[str]:
    """A counter of each class's constructions (by class name) from now to the end of the test."""
    counts: Counter[str] = Counter()
    for cls in classes:
        original = cls.__init__

        def counting(self: Any, *args: Any, __original: Any = original, __name: str = cls.__name__, **kw: Any) -> None:
            counts[__name] += 1
            __original(self, *args, **kw)

        monkeypatch.setattr(cls, "__init__", counting)
    return counts


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts the constructions of DWA, UPGrad and Adversary."""
    return _count_constructions(monkeypatch, (DWA, UPGrad, Adversary))


def _config(**strategy: Any) -> dict[str, Any]:
    return {
        "data": {"type": "newsgroup", "folder": "."},
        "tasks": [{"name": "comp_vs_sci_1", "kind": "binary"}, {"name": "rec_vs_talk_1", "kind": "binary"}],
        "strategy": strategy,
    }


def test_validating_a_config_builds_its_strategy_once(built: Counter[str]) -> None:
    parse_config(
        _config(weighting="dwa", aggregation="upgrad", aggregation_mode="gramian", adversary={}),
        source="test",
    )
    assert built == Counter({"DWA": 1, "UPGrad": 1, "Adversary": 1})


def test_each_build_is_a_new_strategy(built: Counter[str]) -> None:
    section = StrategyConfig.model_validate({"weighting": "dwa", "aggregation": "upgrad"})
    first, second = section.build(), section.build()
    assert first is not second and first.weighting is not second.weighting
    assert first.aggregation is not second.aggregation
    assert built == Counter({"DWA": 3, "UPGrad": 3})  # validation, then the two builds


def test_the_task_check_reuses_the_validated_strategy(built: Counter[str]) -> None:
    with pytest.raises(ConfigError, match=r"strategy.weighting_params: preference has 3 entries but there are 2"):
        parse_config(_config(weighting="linear", weighting_params={"preference": [0.2, 0.3, 0.5]}), source="t")
    parse_config(_config(weighting="dwa"), source="test")
    assert built["DWA"] == 1


# ---------------------------------------------------------------------------------------------- the other sections
def _full(tmp_path: Path) -> dict[str, Any]:
    rows = ["a,b,c,y1,y2"] + [f"{i % 7},{i % 5},{'uv'[i % 2]},{i % 2},{i / 10}" for i in range(60)]
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    return {
        "data": {"type": "csv", "train": str(tmp_path / "train.csv"), "numeric": ["a", "b"], "categorical": ["c"]},
        "tasks": [
            {"name": "y1", "kind": "binary", "head": {"hidden": [4]}},
            {"name": "y2", "kind": "regression"},
        ],
        "model": {"type": "mmoe", "encoder": {"hidden": [8, 6]}, "num_experts": 3},
        "strategy": {"weighting": "dwa"},
        "training": {"epochs": 1, "batch_size": 16, "scheduler": {"name": "cosine"}},
        "compare": {"methods": ["stl", "mtl"]},
    }


@pytest.fixture
def modules(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts the constructions of MLPs, MMoE models, Adam optimisers and cosine schedules."""
    return _count_constructions(monkeypatch, (MLP, MMoE, torch.optim.Adam, torch.optim.lr_scheduler.CosineAnnealingLR))


def test_validating_builds_no_module_optimiser_or_schedule(tmp_path: Path, modules: Counter[str]) -> None:
    parse_config(_full(tmp_path), source="test")
    assert modules == Counter()  # the sections describe; their build() methods build


def test_each_section_builds_what_it_describes_anew_each_call(tmp_path: Path, modules: Counter[str]) -> None:
    config = parse_config(_full(tmp_path), source="test")
    first, second = config.model.encoder.build(5), config.model.encoder.build(5)
    assert first is not second and [m.out_features for m in first.modules() if isinstance(m, nn.Linear)] == [8, 6]
    head = config.tasks[0].build(6, 1)
    assert isinstance(head.head, MLP) and head.head.out_features == 1 and head.name == "y1" and head.kind == "binary"
    factory = config.model.build("mmoe", {t.name: t.head for t in config.tasks}, 5)
    model = factory([config.tasks[0].build(6, 1), config.tasks[1].build(6, 1)])
    assert isinstance(model, MMoE) and len(model.experts) == 3
    parameters = [nn.Parameter(torch.zeros(2))]
    optimizer = config.training.optimizer.build()(parameters)
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.defaults["lr"] == config.training.optimizer.lr
    scheduler_factory = config.training.build_scheduler()
    assert scheduler_factory is not None
    schedule = scheduler_factory(optimizer)
    assert isinstance(schedule, torch.optim.lr_scheduler.CosineAnnealingLR) and schedule.T_max == 1
    assert modules["Adam"] == 1 and modules["CosineAnnealingLR"] == 1 and modules["MMoE"] == 1
    with pytest.raises(ConfigError, match=r"a cnn encoder reads images \[C, H, W\]"):
        CNNConfig(type="cnn").build(3, (12,))


def test_a_run_builds_one_strategy_per_multitask_trainer(
    tmp_path: Path, built: Counter[str], modules: Counter[str]
) -> None:
    config = parse_config(_full(tmp_path), source="test")
    assert built["DWA"] == 1  # validation
    run_experiment(config, output=tmp_path / "run", progress=False)
    # the mtl Trainer gets a DWA of its own; the two single-task Trainers train on the plain loss and build none
    assert built["DWA"] == 2
    assert modules["MMoE"] == 1 and modules["Adam"] == 3 and modules["CosineAnnealingLR"] == 3  # one per Trainer
