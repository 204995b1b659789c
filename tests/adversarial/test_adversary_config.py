"""``strategy.adversary`` in a config: validated up front, built into the `Strategy`, refused with single-input data."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from _marker import marked_data, marked_model

from multitask import Trainer
from multitask.adversarial import Adversary, ConstantSchedule, DANNSchedule, TaskDiscriminator
from multitask.config import StrategyConfig, parse_config
from multitask.errors import ConfigError

CSV_CONFIG: dict[str, Any] = {
    "data": {"type": "csv", "train": "train.csv", "numeric": ["a"]},
    "tasks": [{"name": "y1", "kind": "binary"}, {"name": "y2", "kind": "binary"}],
}


def test_the_adversary_section_builds_the_adversary() -> None:
    section = {
        "scheme": "alternating",
        "weight": 0.05,
        "schedule": "dann",
        "gamma": 5.0,
        "discriminator_hidden": [32, 16],
        "discriminator_lr": 0.01,
    }
    strategy = StrategyConfig.model_validate({"weighting": "uw", "adversary": section}).strategy()
    adversary = strategy.adversary
    assert isinstance(adversary, Adversary)
    assert (adversary.scheme, adversary.weight, adversary.hidden, adversary.lr) == ("alternating", 0.05, (32, 16), 0.01)
    assert isinstance(adversary.schedule, DANNSchedule) and adversary.schedule.gamma == 5.0
    strategy.setup(["a", "b", "c"])
    assert isinstance(adversary.discriminator, TaskDiscriminator) and adversary.discriminator.num_tasks == 3
    default = StrategyConfig.model_validate({"adversary": {}}).strategy().adversary
    assert default is not None and default.scheme == "reversal" and isinstance(default.schedule, ConstantSchedule)


def test_a_config_built_strategy_trains_on_multi_input_data() -> None:
    strategy = StrategyConfig.model_validate({"adversary": {"schedule": "dann", "weight": 0.5}}).strategy()
    model, tasks = marked_model()
    trainer = Trainer(model, tasks, strategy=strategy, max_epochs=2, batch_size=64, progress=False, device="cpu")
    history = trainer.fit(marked_data(0, n=128))
    assert history[-1]["adversary/coefficient"] == pytest.approx(DANNSchedule()(3 / 4))  # 2 steps an epoch
    assert 0.0 <= history[-1]["adversary/accuracy"] <= 1.0
    assert isinstance(trainer.strategy.adversary, Adversary)
    discriminator = trainer.strategy.adversary.discriminator
    assert discriminator is not None
    assert next(discriminator.parameters()).shape == (64, 16)  # the lazy first layer found the feature width


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"scheme": "gan"}, r"strategy\.adversary\.scheme: unknown value 'gan'; allowed: reversal, alternating"),
        ({"weight": -1}, r"strategy\.adversary\.weight: Input should be greater than or equal to 0"),
        ({"gamma": 5.0}, r"strategy\.adversary: gamma is read only by schedule: dann"),
        ({"discriminator_lr": 0.1}, r"strategy\.adversary: discriminator_lr is read only by scheme: alternating"),
        ({"discriminator_hidden": [0]}, r"strategy\.adversary: discriminator_hidden sizes must be positive"),
        ({"lambda": 1}, r"strategy\.adversary\.lambda: unknown key; allowed keys: scheme, weight, schedule"),
    ],
)
def test_mistakes_name_the_field(tmp_path: Path, section: dict[str, Any], message: str) -> None:
    (tmp_path / "train.csv").write_text("a,y1,y2\n1,0,1\n2,1,0\n")
    raw = copy.deepcopy(CSV_CONFIG)
    raw["strategy"] = {"adversary": section}
    with pytest.raises(ConfigError, match=message):
        parse_config(raw, base_dir=tmp_path)


def test_single_input_data_is_refused_when_the_config_is_read(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("a,y1,y2\n1,0,1\n2,1,0\n")
    raw = copy.deepcopy(CSV_CONFIG)
    raw["strategy"] = {"adversary": {"scheme": "reversal"}}
    with pytest.raises(ConfigError, match=r"strategy\.adversary needs multi-input data .* data type csv"):
        parse_config(raw, base_dir=tmp_path)
