"""Negative transfer detected: single- and multi-task models over several seeds, judged per task."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from torch import nn

from multitask.analysis import (
    Interval,
    NegativeTransferReport,
    negative_transfer_from_comparisons,
)
from multitask.errors import ConfigError
from multitask.layout import MTL, STL, RunLayout
from multitask.models import ModelFactory
from multitask.studies._baselines import compare
from multitask.studies._options import study_options
from multitask.tasks import Task
from multitask.training import Data, TrainerOptions


def detect_negative_transfer(
    encoder: nn.Module,
    tasks: Sequence[Task],
    train: Data,
    val: Data | None = None,
    test: Data | None = None,
    *,
    seeds: Sequence[int] = (0, 1, 2),
    model: ModelFactory | None = None,
    metric: Mapping[str, str] | None = None,
    confidence: float = 0.95,
    interval: Interval = "t",
    input_key: str | Sequence[str] = "x",
    run_dir: str | Path | None = None,
    resume: bool = False,
    options: TrainerOptions | None = None,
    **trainer_kwargs: Any,
) -> NegativeTransferReport:
    """Train single-task models and the multi-task model for every seed, then judge every task.

    Each seed runs `multitask.baselines.compare` (``"stl"`` and ``"mtl"``: hard sharing of ``encoder``
    or ``model(tasks)``, same initial weights, data and budget) and the results go to
    `negative_transfer`. With a ``run_dir`` each seed's runs go to ``seed-N/`` and the report to
    ``negative_transfer.json``/``.md``/``.png``. ``options`` are the Trainer's settings of every run
    (`TrainerOptions`); ``**trainer_kwargs`` is their deprecated form (one release: it warns).
    """
    chosen = study_options(options, trainer_kwargs, "detect_negative_transfer")

    if len(seeds) < 2:
        raise ConfigError(f"negative transfer needs at least two seeds for an interval; got {list(seeds)}")
    base = Path(run_dir) if run_dir is not None else None
    comparisons = [
        compare(
            encoder,
            tasks,
            train,
            val,
            test,
            methods=(STL, MTL),
            model=model,
            input_key=input_key,
            seed=seed,
            run_dir=RunLayout(base).seed(seed).root if base is not None else None,
            resume=resume,
            options=chosen,
        )
        for seed in seeds
    ]
    report = negative_transfer_from_comparisons(comparisons, metric=metric, confidence=confidence, interval=interval)
    if base is not None:
        report.write(base)
    return report
