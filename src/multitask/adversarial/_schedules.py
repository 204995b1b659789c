"""Schedules of the adversarial coefficient λ over training progress ``p ∈ [0, 1]``."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

from multitask.adversarial._reversal import check_coefficient
from multitask.errors import ConfigError


class Schedule(ABC):
    """Maps training progress ``p`` (global step / total steps, in ``[0, 1]``) to the coefficient λ ≥ 0."""

    def __call__(self, progress: float) -> float:
        if not 0.0 <= progress <= 1.0:
            raise ConfigError(f"training progress must be in [0, 1]; got {progress}")
        return self.value(progress)

    @abstractmethod
    def value(self, progress: float) -> float:
        """λ at progress ``p``."""


class ConstantSchedule(Schedule):
    """``λ_p = λ`` throughout.

    Args:
        coefficient: λ ≥ 0.
    """

    def __init__(self, coefficient: float = 1.0) -> None:
        self.coefficient = check_coefficient(coefficient)

    def value(self, progress: float) -> float:
        return self.coefficient

    def __repr__(self) -> str:
        return f"ConstantSchedule({self.coefficient})"


class DANNSchedule(Schedule):
    r"""The ramp of domain-adversarial training: ``λ_p = λ_max (2 / (1 + exp(−γ p)) − 1)``.

    λ rises from 0 at the start (so the discriminator learns before the encoder is pushed
    against it) towards ``λ_max``; with γ = 10 it reaches 0.987 λ_max at ``p = 0.5``. The paper
    uses γ = 10 and ``λ_max = 1``, with ``p`` the fraction of training done.

    Args:
        gamma: γ > 0, the steepness.
        maximum: ``λ_max`` ≥ 0.

    References:
        Ganin & Lempitsky, "Unsupervised Domain Adaptation by Backpropagation", ICML 2015. arXiv:1409.7495.
    """

    def __init__(self, gamma: float = 10.0, maximum: float = 1.0) -> None:
        if not (math.isfinite(gamma) and gamma > 0):
            raise ConfigError(f"DANNSchedule gamma must be a positive finite number; got {gamma}")
        self.gamma = float(gamma)
        self.maximum = check_coefficient(maximum, "DANNSchedule maximum")

    def value(self, progress: float) -> float:
        return self.maximum * (2.0 / (1.0 + math.exp(-self.gamma * progress)) - 1.0)

    def __repr__(self) -> str:
        return f"DANNSchedule(gamma={self.gamma}, maximum={self.maximum})"


def as_schedule(schedule: Schedule | float) -> Schedule:
    """A `Schedule` as given, or a number as a `ConstantSchedule`."""
    if isinstance(schedule, Schedule):
        return schedule
    if isinstance(schedule, bool) or not isinstance(schedule, int | float):
        raise ConfigError(f"schedule must be a Schedule or a number λ ≥ 0; got {type(schedule).__name__}")
    return ConstantSchedule(schedule)
