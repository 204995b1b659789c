"""The training loop, its options, its callbacks (and the `TrainerView` they read) and checkpoints."""

from multitask.training._data import Data
from multitask.training._view import TrainerView
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
from multitask.training.options import TrainerOptions
from multitask.training.progress import ProgressBar, RunProgress
from multitask.training.trainer import Trainer

__all__ = [
    "AdversaryLogger",
    "AggregationWeightLogger",
    "Callback",
    "CurvePlot",
    "Data",
    "EpochMeanLogger",
    "GateLogger",
    "MetricsLogger",
    "ProgressBar",
    "RunProgress",
    "StepResult",
    "TensorBoardLogger",
    "Trainer",
    "TrainerOptions",
    "TrainerView",
    "load_checkpoint",
    "plot_curves",
    "save_checkpoint",
]
