"""The run folder's layout: the one place that names its files and folders, and the methods' names.

Every writer (the studies, `multitask.experiment`, the monitors) and every reader (`multitask evaluate`,
the report, the CLI) asks `RunLayout` or these constants instead of spelling a name itself::

    RUN/                                   RunLayout(RUN)
      config.yaml                          .config
      results.csv, results.md,             .results, .results_markdown,
      comparison.json, comparison.png      .comparison, .comparison_plot
      report.html                          .report
      stl/TASK/model.pt                    .single_task(TASK) / MODEL_FILE
      mtl/, mmoe/, ...  (model.pt,         .method("mtl"): one folder per trained method
        metrics.jsonl, curves.png,
        checkpoints/, affinity.json, conflict.jsonl)
      transfer-A-to-B/{pretrain,finetune}/ .method("transfer:A->B")
      linear/linear.json                   .method("linear")
      groups/grouping.json                 .method("groups")
      seed-N/ (each a RunLayout)           .seed(N)
      negative_transfer/METHOD/            .negative_transfer(METHOD)
      pareto/pareto.json                   .pareto
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: The single-task baseline: one model per task (`RunLayout.single_task`).
STL = "stl"
#: The config's multi-task model (its ``model`` section's architecture).
MTL = "mtl"
#: One regularised linear model for all tasks.
LINEAR = "linear"
#: One model per recommended task group.
GROUPS = "groups"
#: The prefix of the transfer baselines' method names (``transfer:SOURCE->TARGET``).
TRANSFER_PREFIX = "transfer:"

CONFIG_FILE = "config.yaml"
RESULTS_FILE = "results.csv"
RESULTS_MARKDOWN = "results.md"
COMPARISON_FILE = "comparison.json"
COMPARISON_PLOT = "comparison.png"
REPORT_FILE = "report.html"
LOCK_FILE = ".lock"
MODEL_FILE = "model.pt"
METRICS_FILE = "metrics.jsonl"
CURVES_PLOT = "curves.png"
CHECKPOINTS_DIR = "checkpoints"
TENSORBOARD_DIR = "tensorboard"
AFFINITY_FILE = "affinity.json"
AFFINITY_PLOT = "affinity.png"
CONFLICT_FILE = "conflict.jsonl"
CONFLICT_HEATMAP = "conflict_heatmap.png"
CONFLICT_CURVES = "conflict_curves.png"
LINEAR_FILE = "linear.json"
LINEAR_PLOT = "linear.png"
PARETO_FILE = "pareto.json"
PARETO_PLOT = "pareto.png"
GROUPING_FILE = "grouping.json"
TRANSFER_FILE = "negative_transfer.json"
TRANSFER_MARKDOWN = "negative_transfer.md"
TRANSFER_PLOT = "negative_transfer.png"
PRETRAIN = "pretrain"
FINETUNE = "finetune"


def transfer_method(source: str, target: str) -> str:
    """The method name of the transfer baseline pre-trained on ``source``, fine-tuned on ``target``."""
    return f"{TRANSFER_PREFIX}{source}->{target}"


def transfer_pair(method: str) -> tuple[str, str] | None:
    """``(source, target)`` of a transfer method name, None for any other method."""
    if not method.startswith(TRANSFER_PREFIX) or "->" not in method:
        return None
    source, target = method.removeprefix(TRANSFER_PREFIX).split("->", 1)
    return source, target


@dataclass(frozen=True)
class RunLayout:
    """The paths of one run folder (or of one seed's folder in it, which has the same layout)."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def config(self) -> Path:
        return self.root / CONFIG_FILE

    @property
    def results(self) -> Path:
        return self.root / RESULTS_FILE

    @property
    def results_markdown(self) -> Path:
        return self.root / RESULTS_MARKDOWN

    @property
    def comparison(self) -> Path:
        return self.root / COMPARISON_FILE

    @property
    def comparison_plot(self) -> Path:
        return self.root / COMPARISON_PLOT

    @property
    def report(self) -> Path:
        return self.root / REPORT_FILE

    @property
    def lock(self) -> Path:
        return self.root / LOCK_FILE

    @property
    def pareto(self) -> Path:
        """The trade-off sweep's folder (``pareto.json``, ``pareto.png``, one folder per point)."""
        return self.root / "pareto"

    def seed(self, seed: int) -> RunLayout:
        """The folder of one seed's runs (``analysis.seeds``)."""
        return RunLayout(self.root / f"seed-{seed}")

    def method(self, method: str) -> Path:
        """The folder of a method's training(s): ``stl``, ``mtl``, an architecture, ``linear``, ``groups`` or
        ``transfer:A->B`` (``transfer-A-to-B``)."""
        pair = transfer_pair(method)
        if pair is not None:
            return self.root / f"transfer-{pair[0]}-to-{pair[1]}"
        return self.root / method

    def single_task(self, task: str) -> Path:
        """The single-task model of ``task``."""
        return self.method(STL) / task

    def negative_transfer(self, method: str) -> Path:
        """The verdicts of ``method`` against the single-task models, over the seeds."""
        return self.root / "negative_transfer" / method
