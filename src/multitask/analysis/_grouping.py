"""Task grouping: which tasks to train together, given a task affinity matrix and a number of models."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from multitask.errors import ConfigError, DataError

MAX_GROUPING_TASKS = 16  # 2^16 - 1 candidate groups
_PARTITION_NODE_COST = 25  # a partition node (Python) costs about as much as 25 cover candidates (NumPy)


@dataclass(frozen=True)
class TaskGrouping:
    """A choice of task groups, one model per group, and how well the affinities say it serves each task.

    Attributes:
        task_names: The tasks.
        groups: The groups (tasks in their original order).
        assignment: For each task, the group that serves it (the one with the highest score for it).
        task_scores: Each task's score in its serving group: the mean affinity onto it from the group's other tasks.
        score: The mean of ``task_scores`` (the objective that was maximised).
        exact: Whether the search proved this grouping optimal (False when the search budget ran out).
        overlap: Whether a task could be in several groups.
    """

    task_names: tuple[str, ...]
    groups: tuple[tuple[str, ...], ...]
    assignment: dict[str, tuple[str, ...]]
    task_scores: dict[str, float]
    score: float
    exact: bool
    overlap: bool

    def __str__(self) -> str:
        return " | ".join("{" + ", ".join(group) + "}" for group in self.groups)

    def to_json(self) -> str:
        """The grouping as JSON."""
        payload = {
            "tasks": list(self.task_names),
            "groups": [list(g) for g in self.groups],
            "assignment": {t: list(g) for t, g in self.assignment.items()},
            "task_scores": self.task_scores,
            "score": self.score,
            "exact": self.exact,
            "overlap": self.overlap,
        }
        return json.dumps(payload, indent=1)


def group_scores(affinity: np.ndarray[Any, Any], singleton_score: float = 0.0) -> tuple[np.ndarray[Any, Any], ...]:
    """Every non-empty subset of tasks (bit masks ``1 .. 2^T − 1``) and each member's score in it.

    Returns:
        ``(membership [C, T] bool, scores [C, T])``: the score of member j of group G is
        ``mean_{i ∈ G, i ≠ j} A[i, j]`` (``singleton_score`` when G = {j}); non-members get −inf.
    """
    size = affinity.shape[0]
    masks = np.arange(1, 2**size, dtype=np.int64)
    membership = ((masks[:, None] >> np.arange(size)[None, :]) & 1).astype(bool)
    off_diagonal = affinity.copy()
    np.fill_diagonal(off_diagonal, 0.0)
    counts = membership.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        scores = (membership.astype(float) @ off_diagonal) / np.maximum(counts - 1, 1)
    scores = np.where(counts == 1, singleton_score, scores)
    scores = np.where(membership, scores, -np.inf)
    return membership, scores


def select_groups(
    affinity: np.ndarray[Any, Any] | Sequence[Sequence[float]],
    num_groups: int,
    *,
    task_names: Sequence[str] | None = None,
    overlap: bool = False,
    singleton_score: float = 0.0,
    budget: int = 20_000_000,
) -> TaskGrouping:
    r"""The groups of tasks to train together with at most ``num_groups`` models (TAG's network selection).

    With an affinity ``A[i, j]`` (how much task i helps task j), a group ``G`` serves each member
    ``j`` with the score ``s(G, j) = mean_{i ∈ G \ {j}} A[i, j]``: the mean affinity onto j from the
    other tasks of its group (Fifty et al. 2021, Sec. 3.2). A selection of groups is scored by
    ``(1/T) Σ_j max_{G ∋ j} s(G, j)``: every task is served by the group that is best for it. By
    default the groups partition the tasks (each task is trained in exactly one model); with
    ``overlap=True`` a task may belong to several groups and is served by the best of them, which is
    TAG's (and Standley et al. 2020's) network selection. A task alone gets ``singleton_score``
    (default 0: trained alone it is neither helped nor hurt by other tasks; the authors' code scores
    it −∞, which forbids single-task models, reproduced by ``singleton_score=-math.inf``).

    The problem is NP-hard (it contains set cover), and the paper solves it exactly by branch and
    bound. So does this function. Partitions are enumerated block by block. Covers: the
    ``2^T − 1`` candidate groups are searched depth-first, most useful first; the objective is a
    facility-location function (submodular), so ``r`` more groups gain at most the sum of the ``r``
    largest single-group gains, and a branch whose bound cannot beat the best selection found is
    cut (the best partition found and a greedy selection are the starting points). The search is
    exact unless it runs out of ``budget`` (candidate groups evaluated, summed over the search; a
    few seconds' worth by default), in which case the best selection found so far is returned with
    ``exact=False``.

    Args:
        affinity: ``[T, T]``, ``A[i, j]`` = effect of task i on task j (the diagonal is ignored).
        num_groups: The number of models ``k`` (1 … T).
        task_names: Names of the rows (default ``task0``, ``task1``, ...).
        overlap: Allow a task in several groups (TAG's cover) rather than a partition.
        singleton_score: The score of a task trained alone.
        budget: Candidate groups the search may evaluate; beyond it the result is the best found
            (``exact=False``).

    References:
        Fifty, Amid, Zhao, Yu, Anil & Finn, "Efficiently Identifying Task Groupings for Multi-Task
        Learning", NeurIPS 2021 (Sec. 3.2, network selection); Standley et al., "Which Tasks Should Be
        Learned Together in Multi-task Learning?", ICML 2020 (Sec. 4, branch and bound).
    """
    matrix = np.asarray(affinity, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise DataError(f"affinity must be a square [T, T] matrix; got shape {matrix.shape}")
    size = matrix.shape[0]
    names = tuple(task_names) if task_names is not None else tuple(f"task{i}" for i in range(size))
    if len(names) != size:
        raise DataError(f"{len(names)} task names for a {size} × {size} affinity matrix")
    off = ~np.eye(size, dtype=bool)
    if not np.isfinite(matrix[off]).all():
        raise DataError(
            "affinity has missing (NaN) or infinite entries off the diagonal: some pairs of tasks were never "
            "measured together; sample more steps or fill them in"
        )
    if isinstance(num_groups, bool) or not isinstance(num_groups, int) or not 1 <= num_groups <= size:
        raise ConfigError(f"num_groups must be an integer from 1 to the number of tasks ({size}); got {num_groups!r}")
    if size > MAX_GROUPING_TASKS:
        raise ConfigError(f"grouping searches 2^T candidate groups; at most {MAX_GROUPING_TASKS} tasks (got {size})")
    if math.isnan(singleton_score):
        raise ConfigError("singleton_score must be a number (−inf forbids single-task groups)")
    membership, scores = group_scores(matrix, singleton_score)
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ConfigError(f"budget must be a positive integer; got {budget!r}")
    partition = _PartitionSearch(scores, num_groups, budget if not overlap else budget // 5)
    chosen, exact = partition.run()
    if overlap:  # a partition is also a cover: the cover search starts from the best partition found
        chosen, exact = _CoverSearch(scores, num_groups, budget - partition.spent, chosen).run()
    return _grouping(names, membership, scores, chosen, exact, overlap)


class _CoverSearch:
    """Branch and bound over sets of at most ``k`` candidate groups (covers of the tasks).

    Non-members get a floor score ``L`` below every real score, so the objective becomes
    ``f(S) = mean_j max(L, max_{G ∈ S} s(G, j))``, which equals the true score on covers and is a
    facility-location function: monotone and submodular. Adding ``r`` more groups to ``S`` therefore
    gains at most the sum of the ``r`` largest single-group gains, the bound that cuts branches.
    """

    def __init__(self, scores: np.ndarray[Any, Any], k: int, budget: int, start: list[int]) -> None:
        finite = scores[np.isfinite(scores)]
        self.floor = float(finite.min()) - 1.0 if finite.size else -1.0
        self.values = np.where(np.isfinite(scores), scores, self.floor)
        self.k, self.budget, self.spent = k, budget, 0
        self.best = list(start)
        self.best_value = self.value(np.max(self.values[start], axis=0))
        self.exhausted = False

    def value(self, current: np.ndarray[Any, Any]) -> float:
        """The true score: the mean, or −inf when a task is not covered."""
        return float(current.mean()) if bool((current > self.floor).all()) else -math.inf

    def run(self) -> tuple[list[int], bool]:
        self._greedy()
        start = np.full(self.values.shape[1], self.floor)
        self._search([], np.arange(len(self.values)), start)
        return self.best, not self.exhausted

    def _gains(self, current: np.ndarray[Any, Any], candidates: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        gains: np.ndarray[Any, Any] = (np.maximum(current, self.values[candidates]) - current).mean(axis=1)
        return gains

    def _greedy(self) -> None:
        chosen: list[int] = []
        current = np.full(self.values.shape[1], self.floor)
        everything = np.arange(len(self.values))
        while len(chosen) < self.k:
            gains = self._gains(current, everything)
            pick = int(np.argmax(gains))
            if gains[pick] <= 0:
                break
            chosen.append(pick)
            current = np.maximum(current, self.values[pick])
        if self.value(current) > self.best_value:
            self.best_value, self.best = self.value(current), chosen

    def _search(self, chosen: list[int], candidates: np.ndarray[Any, Any], current: np.ndarray[Any, Any]) -> None:
        self.spent += 1 + len(candidates)
        if self.spent > self.budget:
            self.exhausted = True
            return
        value = self.value(current)
        if value > self.best_value + 1e-12:
            self.best_value, self.best = value, list(chosen)
        room = self.k - len(chosen)
        if room == 0 or len(candidates) == 0:
            return
        gains = self._gains(current, candidates)
        useful = gains > 1e-15  # a group that serves no task better changes nothing
        order = np.argsort(-gains[useful], kind="stable")
        candidates, gains = candidates[useful][order], gains[useful][order]
        floor_value = float(current.mean())
        for p in range(len(candidates)):
            # each later candidate set is a subset of candidates[p:], whose top gains are gains[p : p + room]
            if floor_value + float(gains[p : p + room].sum()) <= self.best_value + 1e-12:
                break
            c = int(candidates[p])
            self._search([*chosen, c], candidates[p + 1 :], np.maximum(current, self.values[c]))
            if self.exhausted:
                return


class _PartitionSearch:
    """Exhaustive search over partitions of the tasks into at most ``k`` blocks (no task in two groups)."""

    def __init__(self, scores: np.ndarray[Any, Any], k: int, budget: int) -> None:
        self.scores, self.k, self.budget, self.spent = scores, k, budget, 0
        self.size = scores.shape[1]
        self.best_value, self.best, self.exhausted = -math.inf, [2**self.size - 2], False  # everything in one group

    def run(self) -> tuple[list[int], bool]:
        self._value([2**self.size - 1])
        self._assign(0, [])
        return self.best, not self.exhausted

    def _value(self, masks: list[int]) -> None:
        total = sum(float(self.scores[m - 1, j]) for m in masks for j in range(self.size) if m >> j & 1)
        value = total / self.size
        if value > self.best_value + 1e-12:
            self.best_value, self.best = value, [m - 1 for m in masks]

    def _assign(self, task: int, blocks: list[int]) -> None:
        self.spent += _PARTITION_NODE_COST
        if self.spent > self.budget:
            self.exhausted = True
            return
        if task == self.size:
            self._value(blocks)
            return
        for b in range(len(blocks)):
            self._assign(task + 1, [*blocks[:b], blocks[b] | 1 << task, *blocks[b + 1 :]])
            if self.exhausted:
                return
        if len(blocks) < self.k:
            self._assign(task + 1, [*blocks, 1 << task])


def _grouping(
    names: tuple[str, ...],
    membership: np.ndarray[Any, Any],
    scores: np.ndarray[Any, Any],
    chosen: list[int],
    exact: bool,
    overlap: bool,
) -> TaskGrouping:
    chosen = sorted(set(chosen), key=lambda c: (int(np.argmax(membership[c])), -int(membership[c].sum())))
    groups = tuple(tuple(names[j] for j in np.flatnonzero(membership[c])) for c in chosen)
    assignment: dict[str, tuple[str, ...]] = {}
    task_scores: dict[str, float] = {}
    for j, name in enumerate(names):
        serving = [c for c in chosen if membership[c, j]]
        best = max(serving, key=lambda c: scores[c, j])
        assignment[name] = groups[chosen.index(best)]
        task_scores[name] = float(scores[best, j])
    score = float(np.mean(list(task_scores.values())))
    return TaskGrouping(names, groups, assignment, task_scores, score, exact, overlap)
