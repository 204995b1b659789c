"""Reading results: comparisons with Δm%, gradient conflict, task affinity and grouping, negative transfer,
trade-off fronts, explanations, and the HTML report of a run folder."""

from multitask.analysis._affinity import (
    TaskAffinity,
    TaskAffinityMonitor,
    lookahead_affinity,
)
from multitask.analysis._conflict import (
    ConflictHistory,
    GradientConflictMonitor,
    gradient_conflict,
    update_contributions,
)
from multitask.analysis._explain import (
    FeatureSelection,
    gate_history,
    gate_usage,
    plot_gate_usage,
    selected_features,
    task_clusters,
)
from multitask.analysis._grouping import TaskGrouping, select_groups
from multitask.analysis._linear import LINEAR_ESTIMATORS, LINEAR_PENALTIES, fit_linear
from multitask.analysis._linear_run import LinearRun
from multitask.analysis._pareto import (
    SWEEP_METHODS,
    ParetoFront,
    ParetoPoint,
    hypervolume,
    nondominated,
    preference_grid,
)
from multitask.analysis._report import build_report
from multitask.analysis._synthetic import ReadOut, SyntheticGroups, synthetic_task_groups
from multitask.analysis._transfer import (
    Interval,
    NegativeTransferReport,
    TaskVerdict,
    confidence_interval,
    negative_transfer,
    negative_transfer_from_comparisons,
)
from multitask.comparison import Comparison

__all__ = [
    "LINEAR_ESTIMATORS",
    "LINEAR_PENALTIES",
    "SWEEP_METHODS",
    "Comparison",
    "ConflictHistory",
    "FeatureSelection",
    "GradientConflictMonitor",
    "Interval",
    "LinearRun",
    "NegativeTransferReport",
    "ParetoFront",
    "ParetoPoint",
    "ReadOut",
    "SyntheticGroups",
    "TaskAffinity",
    "TaskAffinityMonitor",
    "TaskGrouping",
    "TaskVerdict",
    "build_report",
    "confidence_interval",
    "fit_linear",
    "gate_history",
    "gate_usage",
    "gradient_conflict",
    "hypervolume",
    "lookahead_affinity",
    "negative_transfer",
    "negative_transfer_from_comparisons",
    "nondominated",
    "plot_gate_usage",
    "preference_grid",
    "select_groups",
    "selected_features",
    "synthetic_task_groups",
    "task_clusters",
    "update_contributions",
]


#: Names that moved to `multitask.studies` (procedures that train models), still read here for one release.
_MOVED_TO_STUDIES = ("detect_negative_transfer", "pairwise_transfer", "pareto_sweep", "train_groups")


def __getattr__(name: str) -> object:
    """``multitask.analysis.pareto_sweep`` and the other moved names, from `multitask.studies` (one release)."""
    if name in _MOVED_TO_STUDIES:
        import importlib
        import warnings

        warnings.warn(f"multitask.analysis.{name} moved to multitask.studies.{name}", DeprecationWarning, stacklevel=2)
        return getattr(importlib.import_module("multitask.studies"), name)
    raise AttributeError(f"module 'multitask.analysis' has no attribute {name!r}")
