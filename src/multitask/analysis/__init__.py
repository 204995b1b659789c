"""Reading results: comparisons with Δm%, gradient conflict, task affinity and grouping, negative transfer,
trade-off fronts, explanations, and the HTML report of a run folder."""

from multitask.analysis._affinity import (
    TaskAffinity,
    TaskAffinityMonitor,
    lookahead_affinity,
    pairwise_transfer,
    train_groups,
)
from multitask.analysis._comparison import Comparison
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
from multitask.analysis._linear import LINEAR_ESTIMATORS, LINEAR_PENALTIES, LinearRun, fit_linear
from multitask.analysis._pareto import (
    ParetoFront,
    ParetoPoint,
    hypervolume,
    nondominated,
    pareto_sweep,
    preference_grid,
)
from multitask.analysis._report import build_report
from multitask.analysis._synthetic import ReadOut, SyntheticGroups, synthetic_task_groups
from multitask.analysis._transfer import (
    NegativeTransferReport,
    TaskVerdict,
    confidence_interval,
    detect_negative_transfer,
    negative_transfer,
    negative_transfer_from_comparisons,
)

__all__ = [
    "LINEAR_ESTIMATORS",
    "LINEAR_PENALTIES",
    "Comparison",
    "ConflictHistory",
    "FeatureSelection",
    "GradientConflictMonitor",
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
    "detect_negative_transfer",
    "fit_linear",
    "gate_history",
    "gate_usage",
    "gradient_conflict",
    "hypervolume",
    "lookahead_affinity",
    "negative_transfer",
    "negative_transfer_from_comparisons",
    "nondominated",
    "pairwise_transfer",
    "pareto_sweep",
    "plot_gate_usage",
    "preference_grid",
    "select_groups",
    "selected_features",
    "synthetic_task_groups",
    "task_clusters",
    "train_groups",
    "update_contributions",
]
