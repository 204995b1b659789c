"""EW and linear scalarisation: fixed weights; the preference vector is validated."""

from __future__ import annotations

import pytest
import torch
from _helpers import context

from multitask.errors import ConfigError
from multitask.weighting import EW, Linear


def test_ew_is_the_sum() -> None:
    assert EW()(torch.tensor([2.0, 3.0])).item() == 5.0


def test_linear_weights_are_num_tasks_times_the_preference() -> None:
    weighting = Linear([0.25, 0.75])
    weighting.setup(["a", "b"])
    weights = weighting.weights(torch.tensor([2.0, 4.0]), context(True, True))
    assert torch.allclose(weights, torch.tensor([0.5, 1.5]))
    assert weighting(torch.tensor([2.0, 4.0])).item() == pytest.approx(7.0)


def test_uniform_preference_is_equal_weighting() -> None:
    losses = torch.tensor([0.3, 1.2, 5.0])
    assert torch.allclose(Linear([1 / 3] * 3)(losses), EW()(losses))


@pytest.mark.parametrize(
    ("preference", "message"),
    [
        ([0.5, 0.4], r"preference must sum to one; got \[0.5, 0.4\] \(sum 0.9\)"),
        ([1.2, -0.2], r"preference\[1\] must be >= 0; got -0.2"),
        ([], "preference must be a list with one number per task"),
        ([0.5, "half"], r"preference\[1\] must be a number"),
        ([float("nan"), 1.0], r"preference\[0\] must be a number"),
    ],
)
def test_bad_preference_is_a_clear_error(preference: list[float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Linear(preference)


def test_preference_of_the_wrong_length_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"preference has 3 entries but there are 2 tasks \(income, marital\)"):
        Linear([0.2, 0.3, 0.5]).setup(["income", "marital"])
