"""The trade-off sweep: one multi-task model per preference vector, and the front they make."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from multitask.analysis import (
    SWEEP_METHODS,
    ParetoFront,
    ParetoPoint,
    preference_grid,
)
from multitask.errors import ConfigError, DataError
from multitask.models import ModelFactory
from multitask.studies._baselines import train_multitask
from multitask.studies._options import study_options
from multitask.tasks import Task
from multitask.training import Data, TrainerOptions


def pareto_sweep(
    encoder: nn.Module,
    tasks: Sequence[Task],
    train: Data,
    val: Data | None = None,
    test: Data | None = None,
    *,
    preferences: Sequence[Sequence[float]] | None = None,
    resolution: int = 6,
    methods: Sequence[str] = SWEEP_METHODS,
    metric: Mapping[str, str] | None = None,
    stch_options: Mapping[str, Any] | None = None,
    model: ModelFactory | None = None,
    others: Mapping[str, Mapping[str, float]] | None = None,
    input_key: str | Sequence[str] = "x",
    seed: int | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    options: TrainerOptions | None = None,
    **trainer_kwargs: Any,
) -> ParetoFront:
    r"""Train one multi-task model per preference vector and method; collect each task's metric.

    Methods: ``"linear"``, linear scalarisation ``T Σ_t λ_t L_t`` (`multitask.weighting.Linear`),
    which reaches only the convex part of the front; ``"stch"``, smooth Tchebycheff scalarisation
    ``μ log Σ_t exp(λ_t f_t / μ)`` (`multitask.weighting.STCH`, Lin et al., ICML 2024), which can reach
    every Pareto-optimal point, non-convex parts included. Each run uses ``encoder`` (hard sharing)
    or ``model(tasks)``, the same initial weights (``seed``) and budget; the metrics are read on
    ``test`` (``val`` when there is no test split). ``others`` adds other methods' single points to
    the plot, e.g. ``comparison.results["mtl"]`` flattened to ``{task: value}``; a label that names a
    swept method (a ``linear`` model's point beside the ``linear`` front) becomes ``"linear (point)"``.

    Args:
        preferences: The vectors (default `preference_grid` with ``resolution``).
        methods: Subset of ``("linear", "stch")``.
        metric: ``{task: metric}`` (default: each task's main metric).
        stch_options: Keyword arguments of `STCH` (``mu``, ``warmup_epochs``).
        input_key: The batch column(s) the encoder reads.
        seed: Seed of the initial weights and data order (default: the options').
        run_dir: Where to write ``pareto.json`` and ``pareto.png`` (and each run's folder).
        resume: Continue each run from its folder's checkpoint.
        options: The Trainer's settings for every run (`TrainerOptions`) but the strategy, which the sweep sets.
        **trainer_kwargs: Deprecated form of ``options`` (one release: it warns).

    References:
        Miettinen, "Nonlinear Multiobjective Optimization", 1999 (scalarisations); Lin et al.,
        "Smooth Tchebycheff Scalarization for Multi-Objective Optimization", ICML 2024.
    """
    from multitask.strategy import Strategy
    from multitask.weighting import STCH, Linear

    if not 2 <= len(tasks) <= 3:
        raise ConfigError(f"the trade-off sweep is for two or three tasks; got {len(tasks)}")
    unknown = [m for m in methods if m not in SWEEP_METHODS]
    if unknown or not methods:
        raise ConfigError(f"methods must be a non-empty subset of {SWEEP_METHODS}; got {list(methods)}")
    chosen_options = study_options(options, trainer_kwargs, "pareto_sweep", seed)
    if chosen_options.strategy is not None:
        raise ConfigError("the sweep sets each run's strategy; leave the options' strategy unset")
    grid = [tuple(p) for p in preferences] if preferences is not None else preference_grid(len(tasks), resolution)
    chosen = {t.name: (metric or {}).get(t.name, t.main_metric) for t in tasks}
    for t in tasks:
        if chosen[t.name] not in t.metric_fns:
            raise ConfigError(f"task {t.name!r} has no metric {chosen[t.name]!r}; it has {list(t.metric_fns)}")
    split = test if test is not None else val
    if split is None:
        raise ConfigError("the sweep reads metrics on test (or val) data; pass one")
    front = ParetoFront(
        [t.name for t in tasks],
        chosen,
        {t.name: t.metric_fns[chosen[t.name]].higher_is_better for t in tasks},
        # a single point named like a sweep method (e.g. a linear model beside linear scalarisation) is told apart
        others={(f"{k} (point)" if k in methods else k): dict(v) for k, v in (others or {}).items()},
    )
    base = Path(run_dir) if run_dir is not None else None
    for method in methods:
        for number, preference in enumerate(grid):
            weighting = (
                Linear(preference) if method == "linear" else STCH(preference=preference, **(stch_options or {}))
            )
            directory = base / f"{method}-{number}" if base is not None else None
            run = train_multitask(
                encoder,
                tasks,
                train,
                val,
                split,
                input_key=input_key,
                model=model,
                run_dir=directory,
                resume=resume,
                method=method,
                options=chosen_options.replace(strategy=Strategy(weighting)),
            )
            values = {t: float(run.test[t][chosen[t]]) for t in chosen}
            if not all(math.isfinite(v) for v in values.values()):
                raise DataError(f"{method} with preference {preference} gave non-finite metrics {values}")
            front.points.append(ParetoPoint(method, list(preference), values))
    if base is not None:
        front.write(base)
    return front
