"""The bench's schema: the grid (datasets, methods, architectures, seeds) and the config's ``training`` section.

Names are the rest of the library's: datasets by the dataset registry (`multitask.data.names`; the bench's
views in `DATASETS`), methods as the ``strategy`` section names them (`StrategyConfig`: a loss weighting or a
gradient aggregation; plus ``stl`` and ``mgda_ub``), architectures by the model registry. The per-cell budget is
a `TrainingConfig`, given as ``training:`` or by the top-level shorthands ``epochs``, ``batch_size`` and ``lr``.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from multitask import aggregation, models, weighting
from multitask.config import StrategyConfig, TrainingConfig, describe_error
from multitask.errors import ConfigError
from multitask.experiment._bench_data import DATASETS, OLD_DATASET_NAMES
from multitask.layout import STL
from multitask.strategy import Strategy
from multitask.training import TrainerOptions

#: The old name of ``hard_sharing`` in benchmark configs, still read for one release.
OLD_NAMES = {"hard": "hard_sharing"}

#: Method names that are not a weighting or an aggregation name -> their ``strategy`` section.
#: ``mgda_ub``: MGDA on the shared representation (Sener & Koltun 2018).
NAMED_STRATEGIES: dict[str, dict[str, Any]] = {
    "mgda_ub": {"aggregation": "mgda", "aggregation_mode": "representation"},
}

#: The top-level budget keys and where they sit in the ``training`` section (the same settings).
SHORTHANDS: dict[str, tuple[str, ...]] = {
    "epochs": ("epochs",),
    "batch_size": ("batch_size",),
    "lr": ("optimizer", "lr"),
}


def bench_architectures() -> list[str]:
    """The architectures a benchmark cell can build: those made of the encoder and experts like it (not MTAN's or
    shared-private's heads, which need a config's head specs)."""
    return [name for name in models.names() if models.info(name).parts_used <= {"expert"}]


@cache
def strategy_config(method: str) -> StrategyConfig:
    """The ``strategy`` section of a multi-task method name: ``{weighting: NAME}``, ``{aggregation: NAME}`` or a
    `NAMED_STRATEGIES` entry (``mgda_ub``).

    Raises:
        ConfigError: ``stl``, an unknown name, or a method that needs arguments (one line).
    """
    if method in NAMED_STRATEGIES:
        fields = NAMED_STRATEGIES[method]
    elif method in weighting.names():
        fields = {"weighting": method}
    elif method in aggregation.names():
        fields = {"aggregation": method}
    else:
        raise ConfigError(f"unknown method {method!r} (allowed: {method_names()})")
    try:
        return StrategyConfig(**fields)
    except ValidationError as error:
        raise ConfigError(f"method {method!r}: {describe_error(error, StrategyConfig)}") from None


@cache
def method_names() -> list[str]:
    """Every method a benchmark cell can run (those that need arguments, e.g. a preference vector, are left out)."""
    weightings = [name for name in weighting.names() if _builds(name)]
    aggregations = [name for name in aggregation.names() if _builds(name)]
    return [STL, *weightings, *aggregations, *NAMED_STRATEGIES]


def _builds(method: str) -> bool:
    try:
        strategy_config(method)
    except ConfigError:
        return False
    return True


def make_strategy(method: str) -> Strategy:
    """A new `Strategy` of a multi-task method name (not ``stl``): its ``strategy`` section's `StrategyConfig.build`."""
    return strategy_config(method).build()


class BenchConfig(BaseModel):
    """What to run: the grid and the per-cell budget (a YAML file of these keys, unknown keys rejected).

    ``epochs``, ``batch_size`` and ``lr`` are accepted at the top level too, as ``training.epochs``,
    ``training.batch_size`` and ``training.optimizer.lr`` (one form per setting); they are read back as
    properties of the same names.
    """

    model_config = ConfigDict(extra="forbid")

    datasets: list[str] = Field(min_length=1)
    methods: list[str] = Field(default_factory=lambda: [STL, "ew"], min_length=1)
    architectures: list[str] = Field(default_factory=lambda: ["hard_sharing"], min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    max_train_rows: int | None = Field(default=None, gt=0)
    max_eval_rows: int | None = Field(default=None, gt=0)
    quick: bool = False  # set by the --quick profile: loaders build small versions where generation is costly

    @model_validator(mode="before")
    @classmethod
    def _shorthands(cls, data: Any) -> Any:
        """The top-level budget keys into the ``training`` section; both forms of one setting are an error."""
        if not isinstance(data, dict) or not any(key in data for key in SHORTHANDS):
            return data
        data = dict(data)
        given = {key: data.pop(key) for key in SHORTHANDS if key in data}
        training = _as_mapping(data.get("training", {}))
        if not isinstance(training, dict):
            return data  # the training field reports what is wrong with it
        for key, value in given.items():
            *parents, leaf = SHORTHANDS[key]
            section = training
            for part in parents:
                section[part] = _as_mapping(section.get(part, {}))
                section = section[part]
                if not isinstance(section, dict):
                    break
            else:
                if leaf in section:
                    raise ValueError(
                        f"{key} and training.{'.'.join(SHORTHANDS[key])} are one setting: give one of them"
                    )
                section[leaf] = value
        data["training"] = training
        return data

    @field_validator("datasets", mode="before")
    @classmethod
    def _renamed_datasets(cls, value: Any) -> Any:
        return [OLD_DATASET_NAMES.get(name, name) for name in value] if isinstance(value, list) else value

    @field_validator("architectures", mode="before")
    @classmethod
    def _renamed(cls, value: Any) -> Any:
        return [OLD_NAMES.get(name, name) for name in value] if isinstance(value, list) else value

    @field_validator("datasets", "methods", "architectures")
    @classmethod
    def _known(cls, value: list[str], info: ValidationInfo) -> list[str]:
        allowed = {"datasets": sorted(DATASETS), "methods": method_names(), "architectures": bench_architectures()}
        choices = allowed[str(info.field_name)]
        unknown = [name for name in value if name not in choices]
        if unknown:
            raise ValueError(f"unknown {str(info.field_name)[:-1]}(s) {unknown} (allowed: {choices})")
        twice = sorted({name for name in value if value.count(name) > 1})
        if twice:
            raise ValueError(f"{twice} listed more than once (old names count as their new ones)")
        return value

    @field_validator("training")
    @classmethod
    def _bench_budget(cls, value: TrainingConfig) -> TrainingConfig:
        if value.checkpoint_every is not None:
            raise ValueError("checkpoint_every: bench cells keep no checkpoints (a finished cell is never re-run)")
        return value

    @property
    def epochs(self) -> int:
        """``training.epochs``."""
        return self.training.epochs

    @property
    def batch_size(self) -> int | dict[str, int]:
        """``training.batch_size``."""
        return self.training.batch_size

    @property
    def lr(self) -> float:
        """``training.optimizer.lr``."""
        return self.training.optimizer.lr

    def trainer_options(self, seed: int) -> TrainerOptions:
        """The Trainer options of a cell of this seed: the ``training`` section's budget, optimiser and loop options."""
        return self.training.trainer_options().replace(progress=False, seed=seed)


def _as_mapping(value: Any) -> Any:
    """A section given as a model instance, as the mapping of the keys it was given; anything else unchanged."""
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_unset=True)
    return dict(value) if isinstance(value, Mapping) else value


#: The ``--quick`` profile: one seed, two short epochs, a few hundred rows (and small image sets); minutes in all.
QUICK = {"seeds": [0], "epochs": 2, "batch_size": 64, "max_train_rows": 512, "max_eval_rows": 512, "quick": True}


def load_bench_config(path: str | Path, *, quick: bool = False) -> BenchConfig:
    """Read and validate a benchmark YAML file; ``quick`` applies the `QUICK` profile on top.

    Raises:
        ConfigError: One line naming the file, the key and the problem.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: cannot read the benchmark config: {error}") from error
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a benchmark config is a mapping of keys (datasets, methods, ...)")
    return make_config(raw, quick=quick, where=str(path))


def make_config(raw: dict[str, Any], *, quick: bool = False, where: str = "benchmark config") -> BenchConfig:
    """Validate a benchmark config given as a dict (see `BenchConfig`)."""
    try:
        config = BenchConfig(**raw)
    except ValidationError as error:
        raise ConfigError(f"{where}: {_one_line(error, raw)}") from None
    return apply_quick(config) if quick else config


def apply_quick(config: BenchConfig) -> BenchConfig:
    """``config`` under the `QUICK` profile (its budget keys set in the ``training`` section)."""
    training = config.training.model_copy(update={"epochs": QUICK["epochs"], "batch_size": QUICK["batch_size"]})
    rest = {key: value for key, value in QUICK.items() if key not in ("epochs", "batch_size")}
    return config.model_copy(update={**rest, "training": training})


def _one_line(error: ValidationError, raw: Mapping[str, Any]) -> str:
    """The first error as ``key: problem``, located where the config wrote it (a shorthand key or the section)."""
    first = error.errors()[0]
    loc = tuple(first["loc"])
    message = str(first["msg"]).removeprefix("Value error, ")
    for key, path in SHORTHANDS.items():
        if key in raw and loc[: len(path) + 1] == ("training", *path):
            loc = (key, *loc[len(path) + 1 :])
            break
    else:
        if loc[:1] == ("training",):
            return describe_error(error, BenchConfig)
    location = ".".join(str(part) for part in loc)
    return f"{location}: {message}" if location else message
