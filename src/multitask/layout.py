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
      groups/grouping.json                 .method("groups"), .grouping
      seed-N/ (each a RunLayout)           .seed(N); .seeds() lists them
      negative_transfer/METHOD/            .negative_transfer(METHOD); .judged_methods() lists them
      pareto/pareto.json, pareto.png       .pareto, .pareto_front, .pareto_plot

Readers that look for what a folder holds, wherever it lies (the report), ask `RunLayout.find`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
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
SEED_PREFIX = "seed-"
NEGATIVE_TRANSFER_DIR = "negative_transfer"
PARETO_DIR = "pareto"
#: The folders `RunLayout.find` does not enter (nor hidden ones): they hold no file a reader looks for.
UNSEARCHED_DIRS = frozenset({CHECKPOINTS_DIR, TENSORBOARD_DIR})
#: How many levels of sub-folders `RunLayout.find` searches (a run's deepest files, e.g.
#: ``seed-N/stl/TASK/metrics.jsonl``, are three levels down).
SEARCH_DEPTH = 4


def transfer_method(source: str, target: str) -> str:
    """The method name of the transfer baseline pre-trained on ``source``, fine-tuned on ``target``."""
    return f"{TRANSFER_PREFIX}{source}->{target}"


def transfer_pair(method: str) -> tuple[str, str] | None:
    """``(source, target)`` of a transfer method name, None for any other method."""
    if not method.startswith(TRANSFER_PREFIX) or "->" not in method:
        return None
    source, target = method.removeprefix(TRANSFER_PREFIX).split("->", 1)
    return source, target


def _is_integer(text: str) -> bool:
    """Whether ``text`` is an integer as `RunLayout.seed` spells it (``3``, ``-1``; not ``03`` or ``+3``)."""
    try:
        return str(int(text)) == text
    except ValueError:
        return False


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
        return self.root / PARETO_DIR

    @property
    def pareto_front(self) -> Path:
        """The trade-off front (`multitask.analysis.ParetoFront`), in `pareto`."""
        return self.pareto / PARETO_FILE

    @property
    def pareto_plot(self) -> Path:
        """The picture of the trade-off front, in `pareto`."""
        return self.pareto / PARETO_PLOT

    @property
    def grouping(self) -> Path:
        """The task groups that method ``groups`` trained (``groups/grouping.json``)."""
        return self.method(GROUPS) / GROUPING_FILE

    def seed(self, seed: int) -> RunLayout:
        """The folder of one seed's runs (``analysis.seeds``)."""
        return RunLayout(self.root / f"{SEED_PREFIX}{seed}")

    def seeds(self) -> list[int]:
        """The seeds that have a folder (`seed`) in this one, in increasing order; none when the run has no seeds
        (or the folder does not exist)."""
        if not self.root.is_dir():
            return []
        found = []
        for entry in self.root.iterdir():
            number = entry.name.removeprefix(SEED_PREFIX)
            if entry.name.startswith(SEED_PREFIX) and _is_integer(number) and entry.is_dir():
                found.append(int(number))
        return sorted(found)

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
        return self.root / NEGATIVE_TRANSFER_DIR / method

    def judged_methods(self) -> list[str]:
        """The methods with negative-transfer verdicts (a `negative_transfer` folder), sorted by name."""
        folder = self.root / NEGATIVE_TRANSFER_DIR
        if not folder.is_dir():
            return []
        return sorted(entry.name for entry in folder.iterdir() if entry.is_dir())

    def find(self, names: Iterable[str]) -> dict[str, list[Path]]:
        """The files called one of ``names`` in this folder and below, by name, each list shallowest first (then
        by path). The search enters at most `SEARCH_DEPTH` levels of sub-folders and skips `UNSEARCHED_DIRS`
        and hidden folders; a name no file has maps to an empty list."""
        found: dict[str, list[Path]] = {name: [] for name in names}
        for top, folders, files in os.walk(self.root):
            depth = len(Path(top).relative_to(self.root).parts)
            folders[:] = sorted(
                f for f in folders if f not in UNSEARCHED_DIRS and not f.startswith(".") and depth < SEARCH_DEPTH
            )
            for name in files:
                if name in found:
                    found[name].append(Path(top) / name)
        for paths in found.values():
            paths.sort(key=lambda p: (len(p.relative_to(self.root).parts), str(p)))
        return found
