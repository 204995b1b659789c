"""Comparing metrics with a baseline: one metric's relative gain, and Δm% over tasks and metrics."""

from __future__ import annotations

import math
from collections.abc import Mapping

from multitask.errors import DataError


def relative_gain(value: float, reference: float, higher_is_better: bool) -> float:
    """One metric's relative gain over a reference, in percent: ``100 · s · (M − B) / |B|``, positive: better.

    ``s = +1`` when higher is better, else ``−1``; NaN when ``B`` is 0 (NaN in, NaN out). (`delta_m`
    averages such terms over tasks and metrics, dividing by ``B`` itself as its papers do.)
    """
    if reference == 0:
        return math.nan
    return 100.0 * (1.0 if higher_is_better else -1.0) * (value - reference) / abs(reference)


def delta_m(
    results: Mapping[str, Mapping[str, float]],
    baseline: Mapping[str, Mapping[str, float]],
    higher_is_better: Mapping[str, Mapping[str, bool]],
) -> float:
    """Average relative improvement over a baseline, in percent (Δm%).

        Δm = (100 / T) Σ_t (1 / K_t) Σ_k (−1)^l_tk (M_tk − B_tk) / B_tk,

    with ``l_tk = 1`` when lower is better for metric k of task t. Positive means better than the
    baseline. Every task and metric of ``results`` is used; each must have a non-zero baseline.

    Args:
        results: ``{task: {metric: M_tk}}`` of the method being judged.
        baseline: ``{task: {metric: B_tk}}``, usually the single-task models.
        higher_is_better: ``{task: {metric: bool}}``.

    References:
        Maninis, Radosavovic & Kokkinos, "Attentive Single-Tasking of Multiple Tasks", CVPR 2019;
        Vandenhende et al., "Multi-Task Learning for Dense Prediction Tasks: A Survey", TPAMI 2021.
    """
    if not results:
        raise DataError("delta_m needs at least one task in results")
    per_task = []
    for task, metrics in results.items():
        if not metrics:
            raise DataError(f"delta_m: task {task!r} has no metrics")
        terms = []
        for name, value in metrics.items():
            try:
                reference = baseline[task][name]
                sign = 1.0 if higher_is_better[task][name] else -1.0
            except KeyError as error:
                raise DataError(f"delta_m: no baseline or direction for {task}/{name}") from error
            if reference == 0 or math.isnan(reference):
                raise DataError(f"delta_m: baseline {task}/{name} is {reference}; Δm needs a non-zero baseline")
            terms.append(sign * (value - reference) / reference)
        per_task.append(sum(terms) / len(terms))
    return 100.0 * sum(per_task) / len(per_task)
