"""The CAGrad toy (Liu et al. 2021, Fig. 1; reused by Nash-MTL and FAMO): from (−8.5, 7.5), EW stalls in a log valley.

Scaled down from the papers' 100k Adam steps at lr 1e-3 to at most 9,000 steps at lr 5e-3. Measured from
(−8.5, 7.5): MGDA reaches the Pareto set after ~7,000 steps and Nash-MTL after ~2,600; EW is still in
task 1's valley (θ₁ ≈ −5, θ₂ > 0) after 10,000 steps (it slides out after ~14,000 at this lr and reaches
the set after ~25,300; at the papers' lr 1e-3 it is still in the valley after 50,000). CAGrad (c = 0.5)
leaves the valley too but needs ~17,400 steps at this lr to reach the set, so within the default budget
it is only checked to be out of the valley and closer to the set than EW; a slow test runs 20,000 steps,
where CAGrad has reached the set and EW has not.
"""

from __future__ import annotations

import importlib.util
import sys
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import torch

from multitask.aggregation import AggregationWarning

EXAMPLE = Path(__file__).parents[2] / "examples" / "aggregation_toy.py"

START, STEPS, LR = (-8.5, 7.5), 9000, 5e-3


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("aggregation_toy", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["aggregation_toy"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def example() -> ModuleType:
    return load_example()


@pytest.fixture(scope="module")
def runs(example: ModuleType) -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AggregationWarning)  # Nash-MTL on antiparallel gradients at the set
        return {
            name: example.optimise(example.METHODS[name](), START, STEPS, LR)
            for name in ("EW", "MGDA", "CAGrad", "Nash-MTL")
        }


def test_hand_written_jacobian_matches_autograd(example: ModuleType) -> None:
    points = torch.rand(200, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 22 - 11
    points = torch.cat([points, torch.tensor(example.STARTS, dtype=torch.float64)])
    for scale in (1.0, 0.1):
        for theta in points:
            values, jacobian = example.jacobian(theta, scale)
            point = theta.clone().requires_grad_(True)
            losses = example.losses(point, scale)
            expected = torch.stack([torch.autograd.grad(losses[t], point, retain_graph=True)[0] for t in range(2)])
            torch.testing.assert_close(jacobian, expected, rtol=1e-9, atol=1e-9)
            torch.testing.assert_close(values, example.losses(theta, scale))


def test_pareto_segment_is_pareto_stationary(example: ModuleType) -> None:
    for x in torch.linspace(-6.5, 6.5, 14, dtype=torch.float64).tolist():
        _, jacobian = example.jacobian(torch.tensor([x, example.PARETO_THETA2], dtype=torch.float64))
        assert example.min_norm(jacobian) < 5e-3, x


@pytest.mark.parametrize("name", ["MGDA", "Nash-MTL"])
def test_mgda_and_nash_mtl_reach_the_pareto_set(runs: dict[str, Any], name: str) -> None:
    run = runs[name]
    assert run.is_pareto(), (run.trajectory[-1], run.stationarity, run.distance)


def test_ew_stays_in_the_log_valley(runs: dict[str, Any]) -> None:
    run = runs["EW"]
    theta = run.trajectory[-1]
    assert not run.is_pareto()
    assert run.steps == STEPS
    assert abs(float(theta[0]) + 5) < 1.0 and float(theta[1]) > 0, theta  # task 1's valley: θ₁ ≈ −5, upper half


def test_cagrad_leaves_the_valley_and_gets_closer_than_ew(runs: dict[str, Any]) -> None:
    cagrad, ew = runs["CAGrad"], runs["EW"]
    assert float(cagrad.trajectory[-1][1]) < 0, cagrad.trajectory[-1]
    assert cagrad.distance < ew.distance - 2.0, (cagrad.distance, ew.distance)


@pytest.mark.slow
def test_cagrad_reaches_the_pareto_set_where_ew_does_not(example: ModuleType) -> None:
    steps = 20_000
    cagrad = example.optimise(example.METHODS["CAGrad"](), START, steps, LR)
    ew = example.optimise(example.METHODS["EW"](), START, steps, LR)
    assert cagrad.is_pareto(), (cagrad.trajectory[-1], cagrad.stationarity, cagrad.distance)
    assert not ew.is_pareto() and ew.steps == steps, (ew.trajectory[-1], ew.distance)
