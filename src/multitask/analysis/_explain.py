"""Explanations: which experts each task's gate uses, which features linear models select, which tasks cluster."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from multitask._plots import heatmap, pyplot, save_png
from multitask.data import ArrayDataset, iter_batches
from multitask.errors import ConfigError, DataError
from multitask.models import MultiTaskModel

_GATE_KEY = re.compile(r"^gate/(.+)/(\d+)$")


def gate_usage(
    model: MultiTaskModel,
    data: ArrayDataset | Mapping[str, ArrayDataset],
    *,
    batch_size: int = 4096,
    device: torch.device | str | None = None,
) -> dict[str, list[float]]:
    r"""Each gate's mean weight per expert over ``data``: ``ū_g = (1/N) Σ_n g(x_n)`` (rows sum to one).

    For mixture-of-experts models (MMoE, PLE, DSelect-k) a task's gate weights say how much its
    output relies on each expert (Ma et al., KDD 2018, Sec. 4.4 read them the same way). The model
    runs in evaluation mode without gradients; its mode is restored.

    Args:
        model: A model whose `last_gates` returns its gate weights after a forward pass.
        data: One dataset (every task) or ``{task: dataset}`` (each task's own inputs).
        batch_size: Rows per forward pass.
        device: Where to run (default: the model's device).

    Returns:
        ``{gate name: [mean weight of expert e]}``.

    Raises:
        ConfigError: The model has no gates.
    """
    if device is None:
        first = next(model.parameters(), None)
        device = first.device if first is not None else torch.device("cpu")
    parts = data.items() if isinstance(data, Mapping) else [(None, data)]
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for task, dataset in parts:
                names = [task] if task is not None else None
                for batch in iter_batches(dataset, batch_size):
                    model({k: v.to(device) for k, v in batch.items()}, names)
                    for gate, weights in model.last_gates().items():
                        total = weights.detach().double().sum(dim=0).cpu()
                        sums[gate] = sums[gate] + total if gate in sums else total
                        counts[gate] = counts.get(gate, 0) + int(weights.shape[0])
    finally:
        model.train(was_training)
    if not sums:
        raise ConfigError(f"{type(model).__name__} has no gates (gate usage is for MMoE, PLE and DSelect-k models)")
    return {gate: (total / counts[gate]).tolist() for gate, total in sums.items()}


def gate_history(history: Sequence[Mapping[str, float]]) -> dict[str, list[list[float]]]:
    """From a training history (``metrics.jsonl``'s records): ``{gate: [[weight per expert] per epoch]}``.

    Reads the ``gate/NAME/EXPERT`` entries `multitask.training.GateLogger` adds to every epoch.
    """
    result: dict[str, dict[int, dict[int, float]]] = {}
    for epoch, record in enumerate(history):
        for key, value in record.items():
            match = _GATE_KEY.match(key)
            if match:
                result.setdefault(match.group(1), {}).setdefault(epoch, {})[int(match.group(2))] = float(value)
    return {
        gate: [[per_epoch[e].get(x, math.nan) for x in range(max(per_epoch[e]) + 1)] for e in sorted(per_epoch)]
        for gate, per_epoch in result.items()
    }


def plot_gate_usage(usage: Mapping[str, Sequence[float]], path: str | Path, *, title: str = "gate usage") -> Path:
    """Heatmap: one row per gate (task), one column per expert, the mean gate weight in each cell."""
    if not usage:
        raise DataError("no gate usage to plot")
    plt = pyplot()
    width = max(len(v) for v in usage.values())
    matrix = np.full((len(usage), width), np.nan)
    for row, values in enumerate(usage.values()):
        matrix[row, : len(values)] = values
    figure, ax = plt.subplots(figsize=(2.5 + 0.7 * width, 1.4 + 0.5 * len(usage)))
    heatmap(ax, matrix, list(usage), [f"e{i}" for i in range(width)], title=title, symmetric=False, fmt="{:.2f}")
    ax.images[0].set_cmap("viridis")
    ax.images[0].set_clim(0, 1)
    ax.set_xlabel("expert")
    figure.tight_layout()
    return save_png(figure, path)


@dataclass(frozen=True)
class FeatureSelection:
    """Features a linear multi-task model uses, overall and per task.

    Attributes:
        feature_names: All features.
        task_names: The tasks.
        row_norms: ``‖W_j·‖₂`` of each feature's weights across tasks (the L2,1 norm's rows).
        selected: Features with a non-zero row (jointly selected).
        per_task: ``{task: [features whose weight for the task is non-zero]}``, largest weight first.
    """

    feature_names: list[str]
    task_names: list[str]
    row_norms: list[float]
    selected: list[str]
    per_task: dict[str, list[str]]

    def to_json(self) -> str:
        return json.dumps(
            {
                "features": self.feature_names,
                "tasks": self.task_names,
                "row_norms": self.row_norms,
                "selected": self.selected,
                "per_task": self.per_task,
            },
            indent=1,
        )


def selected_features(
    estimator: Any,
    *,
    feature_names: Sequence[str] | None = None,
    task_names: Sequence[str] | None = None,
    tol: float = 1e-10,
) -> FeatureSelection:
    r"""The features an L2,1 (or any) linear multi-task estimator selected, jointly and per task.

    The L2,1 penalty ``α Σ_j ‖W_j·‖₂`` zeroes whole feature rows of ``W [d, T]``, so a feature is
    either used by every task or by none (Argyriou, Evgeniou & Pontil, "Convex multi-task feature
    learning", Machine Learning 2008; Obozinski, Taskar & Jordan 2010). A feature counts as selected
    when its row norm exceeds ``tol``; per task, when its own weight does.

    Args:
        estimator: A fitted `multitask.linear` estimator (``coef_ [T, d]``) or the array ``coef_`` itself.
        feature_names: Names of the ``d`` features (default ``x0``, ``x1``, ...).
        task_names: Names of the tasks (default the estimator's ``tasks_``, else ``task0``, ...).
        tol: Threshold below which a weight counts as zero.
    """
    coef = np.atleast_2d(np.asarray(getattr(estimator, "coef_", estimator), dtype=float))
    if coef.ndim != 2:
        raise DataError(f"coef_ must be [num_tasks, num_features]; got shape {coef.shape}")
    num_tasks, num_features = coef.shape
    features = list(feature_names) if feature_names is not None else [f"x{j}" for j in range(num_features)]
    default_tasks = getattr(estimator, "tasks_", None)
    if task_names is not None:
        tasks = [str(t) for t in task_names]
    elif default_tasks is not None and len(default_tasks) == num_tasks:
        tasks = [str(t) for t in default_tasks]
    else:
        tasks = [f"task{t}" for t in range(num_tasks)]
    if len(features) != num_features or len(tasks) != num_tasks:
        raise DataError(f"{len(features)} feature and {len(tasks)} task names for coef_ of shape {coef.shape}")
    norms = np.linalg.norm(coef, axis=0)
    selected = [features[j] for j in np.argsort(-norms, kind="stable") if norms[j] > tol]
    per_task = {
        tasks[t]: [features[j] for j in np.argsort(-np.abs(coef[t]), kind="stable") if abs(coef[t, j]) > tol]
        for t in range(num_tasks)
    }
    return FeatureSelection(features, tasks, norms.tolist(), selected, per_task)


def task_clusters(
    estimator: Any, num_clusters: int | None = None, *, task_names: Sequence[str] | None = None
) -> dict[str, int]:
    r"""Clusters of tasks found by a linear multi-task model: ``{task: cluster index}``.

    The similarity of tasks i and j is ``S_ij = M_ij / √(M_ii M_jj)`` with ``M`` the clustered
    estimator's ``task_relation_`` (cCMTL's ``M``, whose range spans the cluster structure: Jacob,
    Bach & Vert, NIPS 2008; Zhou, Chen & Ye, NIPS 2011), or, for any other estimator, ``M = W Wᵀ``
    (the cosine of the task weight vectors). Tasks are then grouped by average-linkage hierarchical
    clustering on ``1 − S`` into ``num_clusters`` clusters (default the estimator's ``n_clusters``).
    """
    relation = getattr(estimator, "task_relation_", None)
    if relation is None:
        coef = np.atleast_2d(np.asarray(getattr(estimator, "coef_", estimator), dtype=float))
        relation = coef @ coef.T
    matrix = np.asarray(relation, dtype=float)
    size = matrix.shape[0]
    if matrix.shape != (size, size):
        raise DataError(f"task relation must be square; got shape {matrix.shape}")
    k = num_clusters if num_clusters is not None else getattr(estimator, "n_clusters", None)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= int(k) <= size:
        raise ConfigError(f"num_clusters must be an integer from 1 to the number of tasks ({size}); got {k!r}")
    names = list(task_names) if task_names is not None else _task_names(estimator, size)
    diagonal = np.sqrt(np.maximum(np.diag(matrix), 1e-300))
    similarity = np.clip(matrix / np.outer(diagonal, diagonal), -1.0, 1.0)
    if size == 1:
        return {names[0]: 0}
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    distance = squareform(1.0 - similarity, checks=False)
    labels = fcluster(linkage(np.maximum(distance, 0.0), method="average"), t=int(k), criterion="maxclust")
    order: dict[int, int] = {}
    return {name: order.setdefault(int(label), len(order)) for name, label in zip(names, labels, strict=True)}


def _task_names(estimator: Any, size: int) -> list[str]:
    tasks = getattr(estimator, "tasks_", None)
    if tasks is not None and len(tasks) == size:
        return [str(t) for t in tasks]
    return [f"task{t}" for t in range(size)]
