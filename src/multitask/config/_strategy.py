"""The ``strategy`` section: loss weighting, gradient aggregation and the adversary."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Literal, TypeVar

from pydantic import Field, PrivateAttr, field_validator, model_validator

from multitask import aggregation, weighting
from multitask.adversarial import Adversary, ConstantSchedule, DANNSchedule
from multitask.aggregation import Aggregator, GramianAggregator
from multitask.config._common import ParamValue, StrictModel
from multitask.errors import ConfigError
from multitask.jacobian import JacobianEngine
from multitask.strategy import Strategy, Target
from multitask.weighting import Weighting

T = TypeVar("T")


class AdversaryConfig(StrictModel):
    """Adversarial training (`multitask.adversarial.Adversary`): a task discriminator on the shared features.

    ``schedule: constant`` uses ``λ = coefficient`` throughout; ``schedule: dann`` ramps it as
    ``coefficient · (2 / (1 + exp(−gamma p)) − 1)`` over training progress ``p``.
    """

    scheme: Literal["reversal", "alternating"] = "reversal"
    weight: float = Field(default=1.0, ge=0, allow_inf_nan=False)
    schedule: Literal["constant", "dann"] = "constant"
    coefficient: float = Field(default=1.0, ge=0, allow_inf_nan=False)
    gamma: float = Field(default=10.0, gt=0, allow_inf_nan=False)
    discriminator_hidden: list[int] = Field(default_factory=lambda: [64])
    discriminator_lr: float = Field(default=1e-3, gt=0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _used(self) -> AdversaryConfig:
        # a value other than the default, not merely a key that is present: a run folder's config.yaml holds every key
        fields = type(self).model_fields
        if self.gamma != fields["gamma"].default and self.schedule != "dann":
            raise ValueError("gamma is read only by schedule: dann")
        if self.discriminator_lr != fields["discriminator_lr"].default and self.scheme != "alternating":
            raise ValueError(
                "discriminator_lr is read only by scheme: alternating (with reversal the trainer's optimiser "
                "trains the discriminator)"
            )
        if any(width <= 0 for width in self.discriminator_hidden):
            raise ValueError(f"discriminator_hidden sizes must be positive; got {self.discriminator_hidden}")
        return self

    def build(self) -> Adversary:
        """The configured `Adversary` (its discriminator infers the feature width at the first step)."""
        schedule = (
            DANNSchedule(self.gamma, self.coefficient)
            if self.schedule == "dann"
            else ConstantSchedule(self.coefficient)
        )
        return Adversary(
            scheme=self.scheme,
            weight=self.weight,
            schedule=schedule,
            hidden=self.discriminator_hidden,
            lr=self.discriminator_lr,
        )


class StrategyConfig(StrictModel):
    """How per-task losses become one update: a weighting by name and its keyword arguments.

    Validation builds the strategy once (so that a wrong argument fails here, with one line), and
    `check_tasks` gives that instance the task names; `build` makes a fresh `Strategy` for each run
    (stateful weightings and aggregators must not be shared between runs).
    """

    weighting: str = "ew"
    weighting_params: dict[str, ParamValue] = Field(default_factory=dict)
    aggregation: str | None = None
    aggregation_params: dict[str, ParamValue] = Field(default_factory=dict)
    aggregation_mode: Literal["jacobian", "gramian", "representation"] = "jacobian"
    adversary: AdversaryConfig | None = None
    _validated: Strategy | None = PrivateAttr(default=None)

    @field_validator("weighting")
    @classmethod
    def _registered(cls, value: str) -> str:
        if value not in weighting.names():
            raise ValueError(f"unknown weighting {value!r}; allowed: {', '.join(weighting.names())}")
        return value

    @field_validator("aggregation")
    @classmethod
    def _registered_aggregation(cls, value: str | None) -> str | None:
        if value is not None and value not in aggregation.names():
            raise ValueError(f"unknown aggregation {value!r}; allowed: {', '.join(aggregation.names())}")
        return value

    @model_validator(mode="after")
    def _constructible(self) -> StrategyConfig:
        if self.aggregation is None and self.aggregation_params:
            raise ValueError("aggregation_params given without aggregation: name the method (e.g. upgrad)")
        self._validated = self.build()
        return self

    def check_tasks(self, names: Sequence[str]) -> None:
        """Check the per-task arguments (a preference, per-task forms) against the task names.

        Raises:
            ValueError: One line naming ``strategy.weighting_params`` and what is wrong.
        """
        strategy = self._validated if self._validated is not None else self.build()
        self._validated = None  # set up for these tasks: not reused
        try:
            strategy.weighting.setup(list(names))
        except ConfigError as error:
            raise ValueError(f"strategy.weighting_params: {error}") from None

    def build(self) -> Strategy:
        """A new `Strategy` as configured (`ValueError` with one clear message when an argument is wrong)."""
        try:
            adversary = self.adversary.build() if self.adversary is not None else None
            on: Target = "representation" if self.aggregation_mode == "representation" else "parameters"
            aggregator = self.build_aggregation()
            if self.aggregation_mode == "gramian" and not isinstance(aggregator, GramianAggregator | None):
                raise ConfigError(
                    f"{type(aggregator).__name__} needs the full Jacobian (it is not a "
                    "GramianAggregator); use aggregation_mode 'jacobian'"
                )
            return Strategy(self.build_weighting(), aggregator, on=on, adversary=adversary)
        except ConfigError as error:
            raise ValueError(str(error)) from None

    def strategy(self) -> Strategy:
        """`build`, under its former name (kept for one release)."""
        return self.build()

    def engine(self) -> JacobianEngine:
        """How per-task gradients are computed: ``aggregation_mode: gramian`` makes the update by one more backward."""
        return JacobianEngine(update_by_backward=self.aggregation_mode == "gramian")

    def build_aggregation(self) -> Aggregator | None:
        """A new aggregator as configured, or None for the plain backward of the weighted sum."""
        if self.aggregation is None:
            return None
        return _create("aggregation", aggregation.create, self.aggregation, self.aggregation_params)

    def build_weighting(self) -> Weighting:
        """A new weighting as configured (`ValueError` with the method's message when its arguments are wrong)."""
        return _create("weighting", weighting.create, self.weighting, self.weighting_params)


def _create(kind: str, create: Callable[..., T], name: str, params: dict[str, ParamValue]) -> T:
    """``create(name, **params)``; a wrong argument becomes one `ValueError` line naming the section."""
    try:
        return create(name, **params)
    except ConfigError as error:
        message = re.sub(rf"^{kind} '\w+': (\w+\.__init__\(\) )?", "", str(error))
        message = message.replace("keyword argument", "parameter").replace("positional argument", "parameter")
        raise ValueError(f"{kind}_params for {name!r}: {message}") from None
