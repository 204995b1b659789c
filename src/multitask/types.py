"""The types the package's layers pass to each other: batches of named columns and per-task metrics.

A bottom-floor module: it imports nothing of the package, so any module can use it.

Each comes in two forms, because what a function *reads* and what it *builds* are not the same type to a
type checker: a parameter takes the read-only ``Mapping`` (any mapping will do, and the function promises
not to change it), a result is the ``dict`` it built (its caller owns it and may add to it). A ``dict`` is
a ``Mapping``, so a built batch or result goes wherever one is read; the reverse would need a copy.

- `Batch` / `BatchDict`: column name -> tensor whose first dimension indexes the samples, e.g.
  ``{"x": features, "income": labels}``. Models and tasks read a `Batch`; datasets and loaders build a
  `BatchDict` (``multitask.data.Batch`` is this one, under the name it had before this module).
- `Results` / `ResultsDict`: ``{task: {metric: value}}``. Comparisons and the negative-transfer verdicts
  read `Results`; ``Trainer.evaluate`` and the linear models build a `ResultsDict`
  (``multitask.training.trainer.Results`` is this one, under the name it had before this module).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeAlias

from torch import Tensor

__all__ = ["Batch", "BatchDict", "Results", "ResultsDict"]

Batch: TypeAlias = Mapping[str, Tensor]
"""A batch as models and tasks read it: column name -> tensor (first dimension: the samples); read-only."""

BatchDict: TypeAlias = dict[str, Tensor]
"""A batch as datasets and loaders build it (e.g. ``ArrayDataset[index]``): a fresh dict its caller owns.

Exported by `multitask.data` as ``Batch`` too, its name there before this module existed.
"""

Results: TypeAlias = Mapping[str, Mapping[str, float]]
"""Per-task metrics as comparisons read them: ``{task: {metric: value}}``; read-only."""

ResultsDict: TypeAlias = dict[str, dict[str, float]]
"""Per-task metrics as an evaluation builds them (``Trainer.evaluate``, ``LinearRun.test``): fresh dicts.

``multitask.training.trainer.Results`` is this type, its name there before this module existed.
"""
