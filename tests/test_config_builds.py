"""Each config section builds what it validates once, and every run gets objects of its own.

Validation used to build the strategy three times (the strategy section, the cross-section check with the task
names, the experiment); a stateful weighting was then shared by every Trainer of every seed.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from multitask.adversarial import Adversary
from multitask.aggregation import UPGrad
from multitask.config import StrategyConfig, parse_config
from multitask.errors import ConfigError
from multitask.weighting import DWA


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Counts the constructions of DWA, UPGrad and Adversary."""
    counts: Counter[str] = Counter()
    for cls in (DWA, UPGrad, Adversary):
        original = cls.__init__

        def counting(self: Any, *args: Any, __original: Any = original, __name: str = cls.__name__, **kw: Any) -> None:
            counts[__name] += 1
            __original(self, *args, **kw)

        monkeypatch.setattr(cls, "__init__", counting)
    return counts


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
