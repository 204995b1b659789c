"""Task grouping: hand-computed selections, the branch and bound against brute force, errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from multitask.analysis import select_groups
from multitask.analysis._grouping import group_scores
from multitask.errors import ConfigError, DataError

# A[i, j] = effect of i on j. Tasks 0, 1, 2 help each other, 3 and 4 help each other, the blocks hurt.
BLOCKS = np.array(
    [
        [0.0, 0.4, 0.2, -0.1, -0.1],
        [0.4, 0.0, 0.2, -0.1, -0.1],
        [0.2, 0.2, 0.0, -0.1, -0.1],
        [-0.1, -0.1, -0.1, 0.0, 0.3],
        [-0.1, -0.1, -0.1, 0.3, 0.0],
    ]
)


def test_group_scores_by_hand() -> None:
    membership, scores = group_scores(BLOCKS)
    group = int(np.flatnonzero((membership == [True, True, True, False, False]).all(axis=1))[0])
    # onto task 0 from 1 and 2: (0.4 + 0.2) / 2; onto 2 from 0 and 1: (0.2 + 0.2) / 2
    assert scores[group].tolist()[:3] == pytest.approx([0.3, 0.3, 0.2])
    assert scores[group, 3] == -math.inf
    single = int(np.flatnonzero((membership == [False, False, False, True, False]).all(axis=1))[0])
    assert scores[single, 3] == 0.0  # alone: neither helped nor hurt


def test_partition_picks_the_blocks() -> None:
    grouping = select_groups(BLOCKS, 2, task_names=list("abcde"))
    assert grouping.groups == (("a", "b", "c"), ("d", "e"))
    # (0.3 + 0.3 + 0.2 + 0.3 + 0.3) / 5
    assert grouping.score == pytest.approx(1.4 / 5)
    assert grouping.exact and not grouping.overlap
    one = select_groups(BLOCKS, 1, task_names=list("abcde"))
    assert one.groups == (tuple("abcde"),)


def test_cover_may_reuse_a_task_and_scores_the_best_group_for_each() -> None:
    # 0 and 1 help each other a lot, 1 and 2 too, 0 and 2 hurt each other
    affinity = np.array([[0.0, 1.0, -1.0], [1.0, 0.0, 1.0], [-1.0, 1.0, 0.0]])
    cover = select_groups(affinity, 2, overlap=True)
    assert set(cover.groups) == {("task0", "task1"), ("task1", "task2")}
    assert cover.score == pytest.approx(1.0)
    partition = select_groups(affinity, 2)
    assert partition.score < cover.score  # a partition must leave task 0 or task 2 without task 1


def test_singleton_score_minus_infinity_forbids_single_task_models() -> None:
    affinity = np.array([[0.0, -1.0, -1.0], [-1.0, 0.0, 0.5], [-1.0, 0.5, 0.0]])
    assert ("task0",) in select_groups(affinity, 2).groups
    forced = select_groups(affinity, 2, singleton_score=-math.inf)
    assert all(len(g) > 1 for g in forced.groups)


def _brute_force(affinity: np.ndarray, k: int, overlap: bool) -> float:
    membership, scores = group_scores(affinity)
    best = -math.inf
    for size in range(1, k + 1):
        for chosen in itertools.combinations(range(len(scores)), size):
            rows = membership[list(chosen)]
            if not overlap and (rows.sum(axis=0) != 1).any():
                continue
            per_task = scores[list(chosen)].max(axis=0)
            if np.isfinite(per_task).all():
                best = max(best, float(per_task.mean()))
    return best


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("overlap", [True, False])
def test_search_is_exact_against_brute_force(seed: int, overlap: bool) -> None:
    affinity = np.random.default_rng(seed).normal(size=(4, 4))
    for k in (1, 2, 3):
        grouping = select_groups(affinity, k, overlap=overlap)
        assert grouping.score == pytest.approx(_brute_force(affinity, k, overlap))
        assert len(grouping.groups) <= k
        assert sorted({t for g in grouping.groups for t in g}) == sorted(grouping.task_names)


def test_node_budget_returns_a_valid_grouping_marked_inexact() -> None:
    affinity = np.random.default_rng(0).normal(size=(7, 7))
    grouping = select_groups(affinity, 3, overlap=True, budget=50)
    assert not grouping.exact
    assert sorted({t for g in grouping.groups for t in g}) == sorted(grouping.task_names)
    assert grouping.score <= select_groups(affinity, 3, overlap=True).score + 1e-12


def test_bad_inputs_say_what_is_wrong() -> None:
    with pytest.raises(DataError, match="square"):
        select_groups(np.zeros((2, 3)), 1)
    with pytest.raises(DataError, match="NaN"):
        select_groups(np.array([[0.0, np.nan], [1.0, 0.0]]), 1)
    with pytest.raises(ConfigError, match="num_groups"):
        select_groups(BLOCKS, 6)
    with pytest.raises(DataError, match="names"):
        select_groups(BLOCKS, 2, task_names=["a"])
