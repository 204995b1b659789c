"""Synthetic multi-task problems with known structure (the GradNorm paper's toy regression)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from multitask.data._dataset import ArrayDataset
from multitask.errors import ConfigError


def gradnorm_regression(
    scales: Sequence[float],
    num_samples: int = 2000,
    *,
    num_features: int = 250,
    num_outputs: int = 100,
    seed: int = 0,
) -> ArrayDataset:
    r"""The toy regression of the GradNorm paper (Chen et al. 2018, Sec. 4): tasks of very different scales.

    Task i has targets ``y_i = σ_i tanh((B + ε_i) x)``: ``B`` (shared) and ``ε_i`` (task-specific)
    are constant ``num_outputs × num_features`` matrices with entries drawn i.i.d. from
    ``N(0, 10)`` and ``N(0, 3.5)`` (the paper's values, read as standard deviations); ``σ_i`` is the
    task's scale. Inputs are ``x ~ N(0, I)`` and the argument of the tanh is divided by
    ``10 √num_features``, so that it has entries of standard deviation about 1.06 whatever
    ``num_features`` (the tanh is not saturated and every task is learnable; the paper does not
    state its input distribution). The dataset has columns ``x`` and
    ``task0``, ``task1``, ... (each ``[num_samples, num_outputs]``).

    Args:
        scales: ``σ_i`` per task (their number is the number of tasks).
        num_samples: Rows.
        num_features: Input dimension (250 in the paper).
        num_outputs: Output dimension of each task (100 in the paper).
        seed: Seed of the matrices and inputs.
    """
    if not scales or any(not scale > 0 for scale in scales):
        raise ConfigError(f"scales must be a non-empty list of positive numbers; got {list(scales)}")
    generator = torch.Generator().manual_seed(seed)
    shared = 10.0 * torch.randn(num_outputs, num_features, generator=generator)
    x = torch.randn(num_samples, num_features, generator=generator)
    columns = {"x": x}
    for index, scale in enumerate(scales):
        specific = 3.5 * torch.randn(num_outputs, num_features, generator=generator)
        columns[f"task{index}"] = float(scale) * torch.tanh(x @ (shared + specific).T / (10.0 * num_features**0.5))
    return ArrayDataset(**columns)
