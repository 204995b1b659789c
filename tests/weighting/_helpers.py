"""Shared pieces of the weighting tests: default arguments per method and a context builder."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from multitask.weighting import StepContext, Weighting, create

# what each registered name needs to be built for two tasks
KWARGS: dict[str, dict[str, Any]] = {"linear": {"preference": [0.5, 0.5]}}

# methods that take a log of the losses (or whose objective is unbounded below for a negative loss)
NEEDS_NON_NEGATIVE = ["db_mtl", "famo", "gls", "imtl_l", "stch", "uw"]


def build(name: str, task_names: Sequence[str] = ("a", "b"), **kwargs: Any) -> Weighting:
    arguments = dict(KWARGS.get(name, {}))
    if name == "linear":
        arguments["preference"] = [1.0 / len(task_names)] * len(task_names)
    arguments.update(kwargs)
    weighting = create(name, **arguments)
    weighting.setup(task_names)
    return weighting


def context(*present: bool, epoch: int = 0, shared: tuple[Tensor, ...] = ()) -> StepContext:
    return StepContext(torch.tensor(present), shared, epoch)
