"""The training loop, its callbacks and checkpoints."""

from multitask.training.callbacks import (
    AdversaryLogger,
    AggregationWeightLogger,
    Callback,
    CurvePlot,
    EpochMeanLogger,
    GateLogger,
    MetricsLogger,
    StepResult,
    TensorBoardLogger,
    plot_curves,
)
from multitask.training.checkpoint import load_checkpoint, save_checkpoint
from multitask.training.progress import ProgressBar, RunProgress
from multitask.training.trainer import Trainer

__all__ = [
    "AdversaryLogger",
    "AggregationWeightLogger",
    "Callback",
    "CurvePlot",
    "EpochMeanLogger",
    "GateLogger",
    "MetricsLogger",
    "ProgressBar",
    "RunProgress",
    "StepResult",
    "TensorBoardLogger",
    "Trainer",
    "load_checkpoint",
    "plot_curves",
    "save_checkpoint",
]
