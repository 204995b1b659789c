"""Curated Jacobians [T, P]: conflicting, aligned, rank-deficient, one task, zero, scales from 1e-8 to 1e8."""

from __future__ import annotations

import torch
from torch import Tensor


def _random(num_tasks: int, num_params: int, seed: int, scale: float = 1.0) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    return scale * torch.randn(num_tasks, num_params, generator=generator, dtype=torch.float64)


def _rank_deficient() -> Tensor:
    base = _random(2, 7, seed=3)
    return torch.stack([base[0], base[1], base[0] + base[1], -0.5 * base[0]])


def _conflicting() -> Tensor:
    return torch.tensor([[-4.0, 1.0, 1.0], [6.0, 1.0, 1.0]], dtype=torch.float64)


TYPICAL: dict[str, Tensor] = {
    "conflicting_2x3": _conflicting(),
    "aligned_3x5": torch.ones(3, 5, dtype=torch.float64) + 0.1 * _random(3, 5, seed=1),
    "random_2x10": _random(2, 10, seed=2),
    "random_5x20": _random(5, 20, seed=4),
    "random_10x50": _random(10, 50, seed=5),
    "more_tasks_than_params_6x3": _random(6, 3, seed=6),
    "rank_deficient_4x7": _rank_deficient(),
    "tiny_scale_3x8": _random(3, 8, seed=7, scale=1e-8),
    "huge_scale_3x8": _random(3, 8, seed=8, scale=1e8),
    "opposite_2x4": torch.tensor([[1.0, 2.0, 0.0, -1.0], [-1.0, -2.0, 0.0, 1.0]], dtype=torch.float64),
}

DEGENERATE: dict[str, Tensor] = {
    "zero_3x4": torch.zeros(3, 4, dtype=torch.float64),
    "one_zero_row_3x5": torch.cat([_random(2, 5, seed=9), torch.zeros(1, 5, dtype=torch.float64)]),
    "duplicate_rows_3x4": _random(1, 4, seed=10).repeat(3, 1),
    "rank_deficient_4x7": _rank_deficient(),
    "single_param_3x1": torch.tensor([[1.0], [-2.0], [0.5]], dtype=torch.float64),
}

ONE_TASK: dict[str, Tensor] = {"one_task_1x6": _random(1, 6, seed=11), "one_task_1x1": torch.tensor([[3.0]])}
