"""Trade-off fronts: preference grids, non-dominated points, exact hypervolume, the sweep on a conflicting pair."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
import torch

from multitask.analysis import (
    ParetoFront,
    ParetoPoint,
    hypervolume,
    nondominated,
    preference_grid,
    synthetic_task_groups,
)
from multitask.errors import ConfigError
from multitask.studies import pareto_sweep
from multitask.training import TrainerOptions


def test_preference_grid_is_positive_and_sums_to_one() -> None:
    two = preference_grid(2, 4)
    assert two == [(0.25, 0.75), (0.5, 0.5), (0.75, 0.25)]
    three = preference_grid(3, 6)
    assert len(three) == 10  # compositions of 6 into 3 positive parts: C(5, 2)
    assert all(min(p) > 0 and sum(p) == pytest.approx(1.0) for p in three)
    with pytest.raises(ConfigError):
        preference_grid(3, 2)


def test_nondominated_by_hand() -> None:
    points = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [2.5, 2.5], [1.0, 3.0]])
    assert nondominated(points).tolist() == [True, True, True, False, True]  # equal points do not dominate


def test_hypervolume_by_hand() -> None:
    # union of [1,4]x[3,4], [2,4]x[2,4], [3,4]x[1,4]: 3 + 4 + 3 - overlaps = 6
    assert hypervolume(np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]]), [4.0, 4.0]) == pytest.approx(6.0)
    assert hypervolume(np.array([[0.0, 0.0, 0.0]]), [1.0, 2.0, 3.0]) == pytest.approx(6.0)
    # boxes [1,3]^3 (volume 8) and [0,3]x[2,3]x[2,3] (3) overlap in [1,3]x[2,3]x[2,3] (2)
    assert hypervolume(np.array([[1.0, 1.0, 1.0], [0.0, 2.0, 2.0]]), [3.0, 3.0, 3.0]) == pytest.approx(8 + 3 - 2)
    assert hypervolume(np.array([[5.0, 0.0]]), [4.0, 4.0]) == 0.0  # beyond the reference: nothing


def _inclusion_exclusion(points: np.ndarray, reference: np.ndarray) -> float:
    total = 0.0
    for size in range(1, len(points) + 1):
        for subset in itertools.combinations(points, size):
            corner = np.max(subset, axis=0)
            total += (-1) ** (size + 1) * float(np.prod(np.clip(reference - corner, 0, None)))
    return total


@pytest.mark.parametrize("dimensions", [2, 3])
@pytest.mark.parametrize("seed", range(4))
def test_hypervolume_equals_inclusion_exclusion(dimensions: int, seed: int) -> None:
    points = np.random.default_rng(seed).uniform(size=(6, dimensions))
    reference = np.full(dimensions, 1.1)
    assert hypervolume(points, reference) == pytest.approx(_inclusion_exclusion(points, reference))


def test_front_flips_metrics_where_higher_is_better(tmp_path: Path) -> None:
    front = ParetoFront(["a", "b"], {"a": "auc", "b": "mse"}, {"a": True, "b": False})
    front.points = [
        ParetoPoint("linear", [0.5, 0.5], {"a": 0.9, "b": 2.0}),
        ParetoPoint("linear", [0.2, 0.8], {"a": 0.8, "b": 1.0}),
        ParetoPoint("linear", [0.1, 0.9], {"a": 0.7, "b": 1.5}),  # worse than the second on both
    ]
    front.reference = [0.6, 3.0]
    assert [p.preference for p in front.front("linear")] == [[0.5, 0.5], [0.2, 0.8]]
    # minimised: (-0.9, 2), (-0.8, 1) against (-0.6, 3): 0.3 * 1 + 0.2 * 1 (the second box beyond the first)
    assert front.hypervolume("linear") == pytest.approx(0.3 * 1.0 + 0.2 * 1.0)
    front.write(tmp_path)
    read = ParetoFront.read(tmp_path)
    assert read.hypervolume("linear") == pytest.approx(front.hypervolume("linear"))
    assert (tmp_path / "pareto.png").stat().st_size > 1000


def test_sweep_on_the_conflicting_pair_trades_one_task_for_the_other() -> None:
    problem = synthetic_task_groups(460, seed=0)
    pair = [t for t in problem.tasks() if t.name in ("a0", "adv")]
    train, test = problem.data.subset(torch.arange(60)), problem.data.subset(torch.arange(60, 460))
    front = pareto_sweep(
        problem.encoder(),
        pair,
        train,
        None,
        test,
        preferences=[(0.9, 0.1), (0.1, 0.9)],
        others={"one point": {"a0": 2.0, "adv": 2.0}, "linear": {"a0": 1.5, "adv": 2.5}},
        options=TrainerOptions(max_epochs=10, batch_size=10, lr=1e-2, progress=False),
    )
    assert front.methods == ["linear", "stch"]
    for method in front.methods:
        favour_a0, favour_adv = (p.values for p in front.points if p.method == method)
        assert favour_a0["a0"] < favour_adv["a0"] and favour_adv["adv"] < favour_a0["adv"], method
        assert front.hypervolume(method) > 0
    assert front.point_hypervolume("one point") >= 0
    assert set(front.others) == {"one point", "linear (point)"}  # a point named like a swept method is told apart
    with pytest.raises(ConfigError, match="two or three"):
        pareto_sweep(problem.encoder(), problem.tasks(), train, None, test)
