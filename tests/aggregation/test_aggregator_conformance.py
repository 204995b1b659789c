"""Every registered aggregator: constructible by name, shape and finiteness checks, degenerate inputs, state."""

from __future__ import annotations

import io
import warnings

import pytest
import torch
from _jacobians import DEGENERATE, ONE_TASK, TYPICAL
from torch import Tensor

from multitask import aggregation
from multitask.aggregation import (
    AggregationWarning,
    Aggregator,
    GramianAggregator,
    NonFiniteGradientError,
)
from multitask.errors import ShapeError, UnknownNameError

NAMES = aggregation.names()
# T = 1: these reduce to the plain gradient; CAGrad gives (1 + c) g and Nash-MTL g / ‖g‖ (their papers' scales).
PLAIN_FOR_ONE_TASK = [n for n in NAMES if n not in ("cagrad", "nash_mtl")]


def test_every_exported_method_is_registered_and_listed() -> None:
    exported = {
        name
        for name in aggregation.__all__
        if isinstance(getattr(aggregation, name), type)
        and issubclass(getattr(aggregation, name), Aggregator)
        and getattr(aggregation, name) not in (Aggregator, GramianAggregator)
    }
    registered = {type(aggregation.create(name)).__name__ for name in NAMES}
    assert exported == registered
    assert len(NAMES) == 13
    with pytest.raises(UnknownNameError, match="allowed"):
        aggregation.create("nope")


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("key", list(TYPICAL))
def test_update_has_shape_and_dtype_of_a_row(name: str, key: str) -> None:
    jacobian = TYPICAL[key].float()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AggregationWarning)
        update = aggregation.create(name)(jacobian)
    assert update.shape == (jacobian.shape[1],) and update.dtype == torch.float32
    assert bool(torch.isfinite(update).all())


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("key", list(DEGENERATE))
def test_zero_and_rank_deficient_jacobians_give_finite_updates(name: str, key: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AggregationWarning)
        update = aggregation.create(name)(DEGENERATE[key])
    assert bool(torch.isfinite(update).all())
    if key == "zero_3x4":
        assert bool((update == 0).all())


@pytest.mark.parametrize("name", PLAIN_FOR_ONE_TASK)
@pytest.mark.parametrize("key", list(ONE_TASK))
def test_one_task_reduces_to_its_gradient(name: str, key: str) -> None:
    jacobian = ONE_TASK[key]
    torch.testing.assert_close(aggregation.create(name)(jacobian), jacobian[0])


def test_one_task_scales_of_cagrad_and_nash_mtl() -> None:
    g = ONE_TASK["one_task_1x6"]
    torch.testing.assert_close(aggregation.CAGrad(c=0.4)(g), 1.4 * g[0])
    torch.testing.assert_close(aggregation.NashMTL()(g), g[0] / g[0].norm())


@pytest.mark.parametrize("name", NAMES)
def test_non_finite_jacobian_raises_naming_the_row(name: str) -> None:
    jacobian = TYPICAL["random_5x20"].clone()
    jacobian[3, 2] = float("nan")
    with pytest.raises(NonFiniteGradientError, match=r"row\(s\) \[3\]"):
        aggregation.create(name)(jacobian)
    jacobian[3, 2] = float("inf")
    with pytest.raises(NonFiniteGradientError):
        aggregation.create(name)(jacobian)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("bad", [torch.zeros(3), torch.zeros(0, 4), torch.zeros(2, 3, dtype=torch.long)])
def test_bad_shapes_raise_shape_error(name: str, bad: Tensor) -> None:
    with pytest.raises(ShapeError):
        aggregation.create(name)(bad)


@pytest.mark.parametrize("name", [n for n in NAMES if isinstance(aggregation.create(n), GramianAggregator)])
def test_gramian_weights_give_the_update(name: str) -> None:
    jacobian = TYPICAL["random_5x20"]
    aggregator = aggregation.create(
        name, **({"generator": torch.Generator().manual_seed(1)} if name in ("pcgrad", "gradvac") else {})
    )
    weights = aggregator.weights(jacobian @ jacobian.T)
    again = aggregation.create(
        name, **({"generator": torch.Generator().manual_seed(1)} if name in ("pcgrad", "gradvac") else {})
    )
    torch.testing.assert_close(weights @ jacobian, again(jacobian))
    with pytest.raises(ShapeError):
        aggregator.weights(torch.zeros(2, 3))


@pytest.mark.parametrize("name", NAMES)
def test_state_round_trips_through_a_weights_only_checkpoint(name: str) -> None:
    kwargs = {"generator": torch.Generator().manual_seed(3)} if name in ("pcgrad", "gradvac", "graddrop") else {}
    first = aggregation.create(name, **kwargs)
    first.setup(5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AggregationWarning)
        first(TYPICAL["random_5x20"])
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    kwargs = {"generator": torch.Generator().manual_seed(99)} if kwargs else {}
    second = aggregation.create(name, **kwargs)
    second.setup(5)
    second.load_state_dict(state)
    jacobian = TYPICAL["random_5x20"] + 0.3
    torch.testing.assert_close(second(jacobian), first(jacobian))


def test_rows_name_their_tasks_and_are_checked() -> None:
    aggregator = aggregation.GradVac()
    aggregator.setup(4)
    aggregator(TYPICAL["random_2x10"], torch.tensor([1, 3]))
    assert bool((aggregator.targets[[0, 2]] == 0).all()) and float(aggregator.targets[1, 3].abs()) > 0
    with pytest.raises(ShapeError, match="set up for 4 tasks"):
        aggregator(TYPICAL["random_2x10"], [1, 4])
    with pytest.raises(ShapeError, match="distinct"):
        aggregator(TYPICAL["random_2x10"], [1, 1])
