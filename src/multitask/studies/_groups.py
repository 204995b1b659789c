"""Task groupings trained: every pair's transfer, and one model per recommended group."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from multitask.analysis import (
    Comparison,
    TaskAffinity,
    TaskGrouping,
)
from multitask.errors import ConfigError
from multitask.layout import GROUPING_FILE, GROUPS, MTL, STL
from multitask.metrics import relative_gain
from multitask.studies._baselines import compare, train_multitask, train_single_task
from multitask.studies._options import study_options
from multitask.tasks import Task
from multitask.training import Data, TrainerOptions
from multitask.training.checkpoint import atomic_write_bytes


def pairwise_transfer(
    encoder: nn.Module,
    tasks: Sequence[Task],
    train: Data,
    val: Data | None = None,
    *,
    metric: Mapping[str, str] | None = None,
    max_tasks: int = 8,
    input_key: str | Sequence[str] = "x",
    seed: int | None = None,
    options: TrainerOptions | None = None,
    **trainer_kwargs: Any,
) -> TaskAffinity:
    r"""The pairwise transfer matrix: train every task alone and every pair together, compare on ``val``.

    ``A[i, j] = 100 · s_j (M_j(i, j) − M_j(j)) / |M_j(j)|``: the relative change (percent) of task j's
    main validation metric when it is trained together with task i (hard sharing of ``encoder``,
    same initial weights and budget as in `multitask.baselines.compare`) rather than alone, with
    ``s_j = +1`` when higher is better and ``−1`` otherwise, so positive means i helps j. This is
    the exhaustive pairwise measurement the look-ahead affinity approximates in one run
    (Standley et al. 2020 train every pair; TAG, Sec. 5, compares against it); it needs
    ``T (T − 1) / 2 + T`` trainings, so it is limited to ``max_tasks`` tasks.

    Args:
        encoder: The shared encoder (copied and re-initialised for every run).
        tasks: The tasks.
        train: Training data.
        val: Validation data the metric is read on (the training data when None).
        metric: ``{task: metric name}`` (default: each task's main metric).
        max_tasks: Refuse more tasks than this (the cost grows quadratically).
        input_key: The batch column(s) the encoder reads.
        seed: Seed of the initial weights and data order (default: the options').
        options: The Trainer's settings of every run (`TrainerOptions`: ``max_epochs``, ``batch_size``, ...).
        **trainer_kwargs: Deprecated form of ``options`` (one release: it warns).

    References:
        Standley et al., "Which Tasks Should Be Learned Together in Multi-task Learning?", ICML 2020;
        Fifty et al., "Efficiently Identifying Task Groupings for Multi-Task Learning", NeurIPS 2021.
    """

    if len(tasks) < 2:
        raise ConfigError("pairwise transfer needs at least two tasks")
    if len(tasks) > max_tasks:
        raise ConfigError(
            f"pairwise transfer trains {len(tasks) * (len(tasks) - 1) // 2} pairs for {len(tasks)} tasks; "
            f"raise max_tasks (now {max_tasks}) or use the one-run look-ahead affinity (TaskAffinityMonitor)"
        )
    names = [task.name for task in tasks]
    chosen = {task.name: (metric or {}).get(task.name, task.main_metric) for task in tasks}
    unknown = [f"{t}/{m}" for t, m in chosen.items() if m not in next(x for x in tasks if x.name == t).metric_fns]
    if unknown:
        raise ConfigError(f"unknown metric(s) {unknown}")
    run_options = study_options(options, trainer_kwargs, "pairwise_transfer", seed)
    evaluation = val if val is not None else train
    common: dict[str, Any] = {"input_key": input_key}
    single = train_single_task(encoder, tasks, train, evaluation, evaluation, options=run_options, **common)
    alone = {t: single.test[t][chosen[t]] for t in names}
    size = len(names)
    matrix = np.zeros((size, size))
    for i in range(size):
        for j in range(i + 1, size):
            pair = [tasks[i], tasks[j]]
            baseline = {t.name: {chosen[t.name]: single.val[t.name][chosen[t.name]]} for t in pair}
            run = train_multitask(
                encoder, pair, train, evaluation, evaluation, options=run_options.replace(baseline=baseline), **common
            )
            for source, target in ((i, j), (j, i)):
                task = tasks[target]
                higher = task.metric_fns[chosen[task.name]].higher_is_better
                value = run.test[task.name][chosen[task.name]]
                matrix[source, target] = relative_gain(value, alone[task.name], higher)
    return TaskAffinity(names, matrix.tolist(), "pairwise", size * (size - 1) // 2)


def train_groups(
    encoder: nn.Module,
    tasks: Sequence[Task],
    grouping: TaskGrouping,
    train: Data,
    val: Data | None = None,
    test: Data | None = None,
    *,
    include: Sequence[str] = (STL, MTL),
    input_key: str | Sequence[str] = "x",
    seed: int | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    options: TrainerOptions | None = None,
    **trainer_kwargs: Any,
) -> Comparison:
    """Train the recommended groups (one hard-sharing model per group) and compare with STL and all-in-one MTL.

    Each task is reported from the group that serves it (``grouping.assignment``); a group of one
    task is a single-task model. ``include`` adds the single-task models (``"stl"``) and the model
    with all tasks (``"mtl"``) trained on the same data and budget, so the result shows whether the
    grouping beats both. ``options`` are the Trainer's settings of every run (`TrainerOptions`);
    ``**trainer_kwargs`` is their deprecated form (one release: it warns).

    Returns:
        A `Comparison` with methods ``"stl"``, ``"mtl"`` (as included) and ``"groups"``; its Δm% is
        against ``"stl"`` when included.
    """

    by_name = {task.name: task for task in tasks}
    missing = sorted(set(grouping.assignment) ^ set(by_name))
    if missing:
        raise ConfigError(f"the grouping and the tasks differ in {missing}; group these tasks: {list(by_name)}")
    wrong = [m for m in include if m not in (STL, MTL)]
    if wrong:
        raise ConfigError(f"include takes 'stl' and 'mtl'; got {wrong}")
    chosen = study_options(options, trainer_kwargs, "train_groups", seed)
    common: dict[str, Any] = {"input_key": input_key, "resume": resume, "options": chosen}
    base = Path(run_dir) if run_dir is not None else None
    results: dict[str, dict[str, dict[str, float]]] = {}
    seconds: dict[str, float] = {}
    if include:
        reference = compare(encoder, tasks, train, val, test, methods=list(include), run_dir=base, **common)
        results.update(reference.results)
        seconds.update(reference.seconds or {})
    serving: dict[str, dict[str, float]] = {}
    total = 0.0
    for number, group in enumerate(grouping.groups):
        members = [by_name[name] for name in group]
        directory = base / f"group-{number}" if base is not None else None
        if len(members) == 1:
            run = train_single_task(encoder, members, train, val, test, run_dir=directory, **common)
        else:
            run = train_multitask(encoder, members, train, val, test, run_dir=directory, **common)
        total += run.seconds
        for name in group:
            if grouping.assignment[name] == tuple(group):
                serving[name] = {m: v for m, v in run.test.get(name, {}).items() if m != "loss"}
    results[GROUPS] = {name: serving[name] for name in by_name if name in serving}
    seconds[GROUPS] = total
    directions = {t.name: {m: f.higher_is_better for m, f in t.metric_fns.items()} for t in tasks}
    comparison = Comparison(results, directions, seconds=seconds)
    if base is not None:
        comparison.write(base)
        atomic_write_bytes(base / GROUPING_FILE, grouping.to_json().encode())
    return comparison
