"""The library's own exception types: each says what was wrong and how to fix it."""

from __future__ import annotations

import math


class MultitaskError(Exception):
    """Base class of every error raised on purpose by `multitask`."""


class ConfigError(MultitaskError, ValueError):
    """A configuration (file or arguments) is invalid: wrong key, type, value or unknown name."""


class UnknownNameError(ConfigError):
    """A method, loss, metric or dataset was asked for by a name that is not registered."""


class DataError(MultitaskError, ValueError):
    """Data cannot be used as given: empty, missing a task's labels, or inconsistent lengths."""


class ShapeError(DataError):
    """A tensor's shape does not match what the task, head or method expects."""


class NonFiniteLossError(MultitaskError, FloatingPointError):
    """A task's loss was NaN or infinite at some step (see ``Trainer(on_nonfinite=...)``)."""


class InvalidLossError(MultitaskError, ValueError):
    """A task's loss cannot be used by the chosen weighting (e.g. negative where the method takes its log)."""


class CheckpointError(MultitaskError):
    """A checkpoint is missing, truncated, corrupt or does not match the run being resumed."""


class DistributedError(MultitaskError, RuntimeError):
    """A multi-process run cannot go on: a process died, stalled past the timeout, or disagrees with the others."""


def os_reason(error: OSError | ValueError) -> str:
    """Why a file-system call failed, in a few words: ``"Not a directory"``, ``"embedded null byte"``."""
    return error.strerror if isinstance(error, OSError) and error.strerror else str(error)


class TargetError(DataError):
    """A task's target column cannot be encoded as its kind says.

    It names the task, the file and the field of the task's target to change (``field``: ``"column"``,
    ``"kind"`` or ``"positive"``), so that a config can point at ``tasks[i].positive`` and Python code
    at ``positive=``. ``fix`` holds ``{field}`` where that name goes.
    """

    def __init__(self, problem: str, *, task: str, field: str, fix: str, where: str | None = None) -> None:
        self.problem, self.task, self.field, self.fix, self.where = problem, task, field, fix, where
        super().__init__(f"{where + ': ' if where else ''}{problem}; {fix.format(field=field)}")

    def at(self, where: str) -> TargetError:
        """The same error, said to be in ``where`` (e.g. the CSV file's name)."""
        return TargetError(self.problem, task=self.task, field=self.field, fix=self.fix, where=where)

    def in_config(self, path: str) -> TargetError:
        """The same error with the config's field for the fix (``path``: the task's, e.g. ``tasks[0]``)."""
        where = f"{path} ({self.task})" + (f": {self.where}" if self.where else "")
        return TargetError(self.problem, task=self.task, field=f"{path}.{self.field}", fix=self.fix, where=where)


def check_number(name: str, value: object, *, minimum: float = 0.0, strict: bool = True) -> float:
    """``value`` as a float; `ConfigError` unless it is a finite number above (or at) ``minimum``."""
    relation = ">" if strict else ">="
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{name} must be a number {relation} {minimum:g}; got {value!r}")
    if value < minimum or (strict and value == minimum):
        raise ConfigError(f"{name} must be {relation} {minimum:g}; got {value!r}")
    return float(value)
