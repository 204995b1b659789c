"""The Trainer options of a study's runs: one `TrainerOptions` in, each run's variant out."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from typing import Any

from multitask.training import TrainerOptions

#: Options that only make sense for a multi-task model: single-task and transfer models train on the plain loss
#: (a loss weighting balances tasks; with one task it would only rescale the learning rate), select their epoch on
#: their own task's metric and draw their one task every step.
MULTITASK_ONLY = ("baseline", "monitor", "strategy", "sampling", "temperature", "tasks_per_step")


def study_options(
    options: TrainerOptions | None, legacy: Mapping[str, Any], study: str, seed: int | None = None
) -> TrainerOptions:
    """``options`` (default `TrainerOptions()`), with the keyword arguments of the deprecated call form applied.

    ``study(..., max_epochs=5)`` still works for one release: it warns and means
    ``study(..., options=TrainerOptions(max_epochs=5))``; a name that is not a Trainer option is a `ConfigError`.
    A study's ``seed`` argument, when given, replaces the options' (it seeds the initial weights too).
    """
    chosen = options if options is not None else TrainerOptions()
    if legacy:
        names = ", ".join(f"{name}=..." for name in sorted(legacy))
        warnings.warn(
            f"{study}(..., {names}) is deprecated and goes in the next release: "
            f"pass options=TrainerOptions({names}) (multitask.TrainerOptions)",
            DeprecationWarning,
            stacklevel=3,
        )
        chosen = chosen.replace(**legacy)
    return chosen if seed is None else chosen.replace(seed=seed)


def single_task_options(options: TrainerOptions, task: str, monitor: str | None) -> TrainerOptions:
    """The options of a one-task run on ``task``: the multi-task options at their defaults, ``task``'s batch size.

    ``monitor`` selects the run's best epoch (the task's main validation metric; None without validation data).
    """
    defaults = {
        field.name: field.default for field in dataclasses.fields(TrainerOptions) if field.name in MULTITASK_ONLY
    }
    batch_size = options.batch_size[task] if isinstance(options.batch_size, Mapping) else options.batch_size
    return options.replace(**{**defaults, "monitor": monitor, "batch_size": batch_size})
