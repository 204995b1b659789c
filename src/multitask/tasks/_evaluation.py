"""A task's evaluation record, and a dense task's metrics from the statistics its batches add up to."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from torch import Tensor

from multitask.metrics import DenseMetric, Metric, StatisticFn

AnyMetric = Metric | DenseMetric


@dataclass(frozen=True)
class TaskEvaluation:
    """A task's loss and metrics on one split, with the number of labelled entries they used."""

    loss: float
    metrics: dict[str, float]
    num_labelled: int


def statistic_fns(metric_fns: Mapping[str, AnyMetric]) -> dict[str, StatisticFn]:
    """The distinct statistic functions of the dense metrics, keyed by their order of first use."""
    distinct: list[StatisticFn] = []
    for metric in metric_fns.values():
        if isinstance(metric, DenseMetric) and all(metric.statistic is not fn for fn in distinct):
            distinct.append(metric.statistic)
    return {f"statistic{i}": fn for i, fn in enumerate(distinct)}


def evaluation_from_statistics(
    metric_fns: Mapping[str, AnyMetric], parts: Sequence[Mapping[str, Tensor]]
) -> TaskEvaluation:
    """Loss and metrics of a dense task from its batches' statistics, summed over ``parts`` in order."""
    if not parts:
        return TaskEvaluation(math.nan, {name: math.nan for name in metric_fns}, 0)
    total = {key: value.detach().double().cpu() for key, value in parts[0].items()}
    for part in parts[1:]:
        for key, value in part.items():
            total[key] = total[key] + value.detach().double().cpu()
    loss_sum, count = (float(v) for v in total["loss"])
    if count == 0:
        return TaskEvaluation(math.nan, {name: math.nan for name in metric_fns}, 0)
    keys = {id(fn): key for key, fn in statistic_fns(metric_fns).items()}
    values = {
        name: float(metric.compute(total[keys[id(metric.statistic)]]))
        for name, metric in metric_fns.items()
        if isinstance(metric, DenseMetric)
    }
    return TaskEvaluation(loss_sum / count, values, round(count))
