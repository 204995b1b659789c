"""`Comparison`: per-task test metrics of several methods side by side, with Δm% against single-task models."""

from __future__ import annotations

import csv
import io
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from multitask.errors import DataError
from multitask.metrics import delta_m
from multitask.training.checkpoint import atomic_write_bytes

Results = Mapping[str, Mapping[str, float]]


@dataclass
class Comparison:
    """Test results of several methods on the same tasks and splits.

    Args:
        results: ``{method: {task: {metric: value}}}`` (test split), methods in display order.
        higher_is_better: ``{task: {metric: bool}}``.
        baseline: The method Δm% is measured against (``"stl"``, the single-task models).
        seconds: Wall time of each method, for the record.
    """

    results: dict[str, dict[str, dict[str, float]]]
    higher_is_better: dict[str, dict[str, bool]]
    baseline: str = "stl"
    seconds: dict[str, float] | None = None

    @property
    def methods(self) -> list[str]:
        return list(self.results)

    def delta_m(self, method: str) -> float:
        """Δm% of ``method`` against the baseline over every task and metric (NaN without a baseline)."""
        if self.baseline not in self.results:
            return math.nan
        reference = self.results[self.baseline]
        shared = {
            task: {m: v for m, v in metrics.items() if m in reference.get(task, {})}
            for task, metrics in self.results[method].items()
            if task in reference
        }
        shared = {task: metrics for task, metrics in shared.items() if metrics}
        if not shared:
            return math.nan
        return delta_m(shared, reference, self.higher_is_better)

    @classmethod
    def mean(cls, comparisons: Sequence[Comparison]) -> Comparison:
        """Each method's metrics (and seconds) averaged over ``comparisons``, e.g. one per seed.

        A value missing from some comparisons is the mean of those that have it; NaN values count as
        missing. Δm% of the result is then Δm% of the means, not the mean of each seed's Δm%.

        Raises:
            DataError: No comparison, or comparisons with different baselines.
        """
        if not comparisons:
            raise DataError("need at least one comparison to average")
        baselines = {c.baseline for c in comparisons}
        if len(baselines) > 1:
            raise DataError(f"comparisons against different baselines {sorted(baselines)} cannot be averaged")
        values: dict[str, dict[str, dict[str, list[float]]]] = {}
        directions: dict[str, dict[str, bool]] = {}
        seconds: dict[str, list[float]] = {}
        for comparison in comparisons:
            for method, per_task in comparison.results.items():
                for task, metrics in per_task.items():
                    for metric, value in metrics.items():
                        cell = values.setdefault(method, {}).setdefault(task, {}).setdefault(metric, [])
                        if math.isfinite(value):
                            cell.append(value)
            for task, direction in comparison.higher_is_better.items():
                directions.setdefault(task, {}).update(direction)
            for method, value in (comparison.seconds or {}).items():
                seconds.setdefault(method, []).append(value)
        results = {
            method: {
                task: {metric: statistics.fmean(v) if v else math.nan for metric, v in metrics.items()}
                for task, metrics in per_task.items()
            }
            for method, per_task in values.items()
        }
        mean_seconds = {method: statistics.fmean(v) for method, v in seconds.items()} or None
        return cls(results, directions, comparisons[0].baseline, mean_seconds)

    def rows(self) -> list[dict[str, str | float]]:
        """Long format: one row per method, task and metric."""
        return [
            {"method": method, "task": task, "metric": metric, "value": value}
            for method, per_task in self.results.items()
            for task, metrics in per_task.items()
            for metric, value in metrics.items()
        ]

    def to_markdown(self, metrics: Sequence[str] | None = None) -> str:
        """A table with one row per method and one column per task metric, then Δm% and seconds."""
        columns = self._columns(metrics)
        header = ["method", *[f"{t} {m}" for t, m in columns], "Δm%"]
        if self.seconds:
            header.append("seconds")
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for method, per_task in self.results.items():
            cells = [method] + [_fmt(per_task.get(t, {}).get(m, math.nan)) for t, m in columns]
            cells.append("—" if method == self.baseline else _fmt(self.delta_m(method), signed=True))
            if self.seconds:
                cells.append(f"{self.seconds.get(method, math.nan):.1f}")
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def _columns(self, metrics: Sequence[str] | None) -> list[tuple[str, str]]:
        columns: list[tuple[str, str]] = []
        for per_task in self.results.values():
            for task, values in per_task.items():
                for metric in values:
                    if (task, metric) not in columns and metric != "loss" and (metrics is None or metric in metrics):
                        columns.append((task, metric))
        return columns

    def write(self, directory: str | Path) -> None:
        """``results.csv`` (long format), ``results.md`` (the table) and ``comparison.png`` in ``directory``."""
        directory = Path(directory)
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=["method", "task", "metric", "value"])
        writer.writeheader()
        writer.writerows(self.rows())
        for method in self.methods:
            writer.writerow({"method": method, "task": "*", "metric": "delta_m_percent", "value": self.delta_m(method)})
        atomic_write_bytes(directory / "results.csv", text.getvalue().encode())
        atomic_write_bytes(directory / "results.md", (self.to_markdown() + "\n").encode())
        self.plot(directory / "comparison.png")

    def plot(self, path: Path) -> None:
        """Grouped bars: for each task metric, one bar per method."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        columns = self._columns(None)
        figure, axes = plt.subplots(1, max(len(columns), 1), figsize=(3.2 * max(len(columns), 1), 3.0), squeeze=False)
        for ax, (task, metric) in zip(axes[0], columns, strict=False):  # one empty panel when no column
            values = [self.results[m].get(task, {}).get(metric, math.nan) for m in self.methods]
            ax.bar(range(len(values)), values, color=[f"C{i}" for i in range(len(values))])
            ax.set_xticks(range(len(values)), self.methods, rotation=30, ha="right")
            finite = [v for v in values if math.isfinite(v)]
            if finite:
                low, high = min(finite), max(finite)
                pad = (high - low) * 0.5 or abs(high) * 0.01 or 0.01
                ax.set_ylim(low - pad, high + pad)
            ax.set_title(f"{task}: {metric}")
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=100)
        plt.close(figure)


def _fmt(value: float, signed: bool = False) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:+.2f}" if signed else f"{value:.4f}"
