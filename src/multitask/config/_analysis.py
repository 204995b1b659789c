"""The ``compare``, ``linear`` and ``analysis`` sections: what is trained side by side and measured."""

from __future__ import annotations

from typing import Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from multitask.config._common import ParamValue, Seed, StrictModel
from multitask.config._model import Method
from multitask.layout import MTL, STL


class CompareConfig(StrictModel):
    """Which methods to train side by side on the same data and budget.

    ``stl``: one model per task; ``mtl``: the ``model`` section's architecture; an architecture
    name (``mmoe``, ``ple``, ...): that architecture, with the ``model`` section's hyper-parameters;
    ``linear``: one regularised linear model for all tasks (the ``linear`` section).
    """

    methods: list[Method] = Field(default=[STL, MTL], min_length=1)
    transfer: list[tuple[str, str]] = Field(default_factory=list)
    freeze_encoder: bool = False

    @field_validator("methods")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError(f"methods must not repeat; got {value}")
        return value


#: The penalties of `multitask.analysis.fit_linear` (its ``LINEAR_PENALTIES``; config.py sits below analysis/ and does
#: not import it, a test keeps the two in step).
LinearPenalty = Literal[
    "lasso", "l21", "trace", "clustered", "dirty", "mean", "graph", "robust", "lasso_cv", "l21_cv", "trace_cv"
]


class LinearConfig(StrictModel):
    """The method ``linear``: a regularised linear multi-task model (`multitask.analysis.fit_linear`).

    ``penalty``: which `multitask.linear` estimator (least squares for regression tasks, logistic for
    binary ones); ``params``: its arguments (e.g. ``alpha``); ``clusters``: also cluster the tasks
    into this many groups (`task_clusters`). The run folder gets ``linear/linear.json`` and
    ``linear.png`` (weights, selected features per task, clusters) and the report a section.
    """

    penalty: LinearPenalty = "l21"
    params: dict[str, ParamValue] = Field(default_factory=dict)
    clusters: int | None = Field(default=None, ge=1)


class ParetoConfig(StrictModel):
    """A trade-off sweep (`multitask.analysis.pareto_sweep`) after the runs, written to ``RUN_DIR/pareto/``.

    One multi-task model per preference vector of `preference_grid` (``resolution`` points per
    simplex edge) and ``method`` (``linear`` scalarisation, smooth Tchebycheff ``stch`` with
    temperature ``mu``), on the ``model`` section's architecture; ``metric``: ``{task: metric}``
    plotted (default each task's first metric). For two or three tasks.
    """

    methods: list[Literal["linear", "stch"]] = Field(default=["linear", "stch"], min_length=1)
    resolution: int = Field(default=6, ge=2, le=50)
    metric: dict[str, str] = Field(default_factory=dict)
    mu: float | None = Field(default=None, gt=0, allow_inf_nan=False)


class GroupsConfig(StrictModel):
    """Choose task groups for ``num_groups`` models and train them (`select_groups`, `train_groups`).

    ``source``: ``lookahead`` reads TAG's affinity that ``analysis.affinity_every`` measured during
    the multi-task run (one joint run); ``pairwise`` trains every task alone and every pair together
    (``T(T−1)/2 + T`` more runs, at most 8 tasks). ``overlap``: a task may be in several groups
    (TAG's network selection) instead of exactly one. The groups' models join the comparison as
    method ``groups`` (``RUN_DIR/groups/``, ``grouping.json``).
    """

    num_groups: int = Field(ge=1)
    source: Literal["lookahead", "pairwise"] = "lookahead"
    overlap: bool = False


class AnalysisConfig(StrictModel):
    """What `multitask.analysis` records during the runs and what it adds after them.

    ``conflict_every``: a `GradientConflictMonitor` on every multi-task run, sampling every this many
    steps (``conflict.jsonl``, heatmap, curves); ``affinity_every``: a `TaskAffinityMonitor` (TAG's
    look-ahead affinity, ``affinity.json``) with look-ahead step ``affinity_lr`` (None: the optimiser's
    learning rate); ``seeds``: repeat every method for each seed (``RUN_DIR/seed-N/``; the data and
    its split stay those of the top-level ``seed``) and judge negative transfer task by task
    (`negative_transfer`, with a ``confidence`` interval of kind ``interval``: ``t`` or
    ``bootstrap``); ``pareto``: a trade-off sweep (`ParetoConfig`); ``groups``: train recommended
    task groups (`GroupsConfig`); ``report``: write ``report.html`` (`multitask report`) at the end.
    """

    conflict_every: int | None = Field(default=None, gt=0)
    affinity_every: int | None = Field(default=None, gt=0)
    affinity_lr: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    seeds: list[Seed] | None = Field(default=None, min_length=2)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    interval: Literal["t", "bootstrap"] = "t"
    pareto: ParetoConfig | None = None
    groups: GroupsConfig | None = None
    report: bool = True

    @model_validator(mode="after")
    def _used(self) -> AnalysisConfig:
        if self.affinity_lr is not None and self.affinity_every is None:
            raise ValueError("affinity_lr is read only with affinity_every")
        if self.seeds is not None and len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must not repeat; got {self.seeds}")
        if self.groups is not None and self.groups.source == "lookahead" and self.affinity_every is None:
            raise ValueError(
                "groups.source lookahead reads the affinity the multi-task run measures: set affinity_every "
                "(or use groups.source: pairwise)"
            )
        return self
