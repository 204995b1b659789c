"""`Comparison`: per-task test metrics of several methods side by side, with Δm% against single-task models."""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from multitask._comparison_chart import PANELS_PER_ROW, comparison_figure
from multitask._plots import save_png
from multitask.errors import DataError
from multitask.layout import COMPARISON_FILE, RESULTS_FILE, STL
from multitask.metrics import delta_m
from multitask.training.checkpoint import atomic_write_bytes
from multitask.types import Results as Results  # its name here before multitask.types

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass
class Comparison:
    """Test results of several methods on the same tasks and splits.

    Args:
        results: ``{method: {task: {metric: value}}}`` (test split), methods in display order.
        higher_is_better: ``{task: {metric: bool}}``.
        baseline: The method Δm% is measured against (``"stl"``, the single-task models).
        seconds: Wall time of each method, for the record.
        std: ``{method: {task: {metric: standard deviation}}}`` of ``results`` across seeds, when they are
            means over seeds (`Comparison.mean` fills it: the sample standard deviation, ddof = 1).
            Tables show ``mean ± std`` and the bar chart draws it as error bars.
        descriptions: ``{method: short human description}`` (e.g. ``"hard_sharing · weighting ew"``),
            listed below the tables and in the HTML report.
    """

    results: dict[str, dict[str, dict[str, float]]]
    higher_is_better: dict[str, dict[str, bool]]
    baseline: str = STL
    seconds: dict[str, float] | None = None
    std: dict[str, dict[str, dict[str, float]]] | None = None
    descriptions: dict[str, str] | None = None

    @property
    def methods(self) -> list[str]:
        """The methods, in display order."""
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

    def spread(self, method: str, task: str, metric: str) -> float:
        """The standard deviation across seeds of one result (NaN when there is none)."""
        return (self.std or {}).get(method, {}).get(task, {}).get(metric, math.nan)

    @classmethod
    def mean(cls, comparisons: Sequence[Comparison]) -> Comparison:
        """Each method's metrics (and seconds) averaged over ``comparisons``, e.g. one per seed.

        A value missing from some comparisons is the mean of those that have it; NaN values count as
        missing. Δm% of the result is then Δm% of the means, not the mean of each seed's Δm%. ``std``
        holds the sample standard deviation of each value over the comparisons (ddof = 1, the usual
        seed error bar: an unbiased variance estimate from a handful of seeds; NaN with fewer than two
        values, None when no value has two). ``descriptions`` are merged, the first comparison's first.

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
        descriptions: dict[str, str] = {}
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
            for method, text in (comparison.descriptions or {}).items():
                descriptions.setdefault(method, text)
        results = {
            method: {
                task: {metric: statistics.fmean(v) if v else math.nan for metric, v in metrics.items()}
                for task, metrics in per_task.items()
            }
            for method, per_task in values.items()
        }
        std = {
            method: {
                task: {metric: statistics.stdev(v) if len(v) > 1 else math.nan for metric, v in metrics.items()}
                for task, metrics in per_task.items()
            }
            for method, per_task in values.items()
        }
        spread_known = any(len(v) > 1 for per_task in values.values() for ms in per_task.values() for v in ms.values())
        mean_seconds = {method: statistics.fmean(v) for method, v in seconds.items()} or None
        return cls(
            results,
            directions,
            comparisons[0].baseline,
            mean_seconds,
            std if spread_known else None,
            descriptions or None,
        )

    def rows(self) -> list[dict[str, str | float]]:
        """Long format: one row per method, task and metric (with a ``std`` entry when `std` is set)."""
        rows: list[dict[str, str | float]] = []
        for method, per_task in self.results.items():
            for task, metrics in per_task.items():
                for metric, value in metrics.items():
                    row: dict[str, str | float] = {"method": method, "task": task, "metric": metric, "value": value}
                    if self.std is not None:
                        row["std"] = self.spread(method, task, metric)
                    rows.append(row)
        return rows

    def to_markdown(self, metrics: Sequence[str] | None = None, *, notes: bool = True) -> str:
        """A table with one row per method and one column per task metric, then Δm% and seconds.

        With `std` a cell reads ``mean ± std``. With ``notes`` the table is followed by what the ``±``
        means (with `std`) and by the list of `descriptions` (when set).
        """
        columns = self.columns(metrics)
        header = ["method", *[f"{t} {m}" for t, m in columns], "Δm%"]
        if self.seconds:
            header.append("seconds")
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for method, per_task in self.results.items():
            cells = [method]
            for t, m in columns:
                cell = _fmt(per_task.get(t, {}).get(m, math.nan))
                spread = self.spread(method, t, m)
                cells.append(f"{cell} ± {spread:.4f}" if math.isfinite(spread) and cell != "n/a" else cell)
            cells.append("—" if method == self.baseline else _fmt(self.delta_m(method), signed=True))
            if self.seconds:
                cells.append(f"{self.seconds.get(method, math.nan):.1f}")
            lines.append("| " + " | ".join(cells) + " |")
        if notes and self.std is not None:
            lines += ["", "Values: mean ± sample standard deviation (ddof = 1) over the seeds."]
        if notes and self.descriptions:
            lines += ["", "Methods:", ""]
            lines += [f"- `{method}`: {text}" for method, text in self.descriptions.items()]
        return "\n".join(lines)

    def columns(self, metrics: Sequence[str] | None = None) -> list[tuple[str, str]]:
        """The ``(task, metric)`` pairs of the results in first-seen order (without ``loss``; only ``metrics``)."""
        columns: list[tuple[str, str]] = []
        for per_task in self.results.values():
            for task, values in per_task.items():
                for metric in values:
                    if (task, metric) not in columns and metric != "loss" and (metrics is None or metric in metrics):
                        columns.append((task, metric))
        return columns

    def write(self, directory: str | Path) -> None:
        """Write the comparison into ``directory``; `Comparison.read` reads it back.

        - ``results.csv``: long format, columns ``method, task, metric, value`` and, only when `std` is
          set, ``std`` (empty on the Δm% rows); plus one ``*, delta_m_percent`` row per method;
        - ``comparison.json``: ``{"baseline", "higher_is_better", "seconds", "descriptions"}``, what the
          CSV cannot hold (``seconds`` and ``descriptions`` may be null);
        - ``results.md``: the table of `to_markdown`, with its notes;
        - ``comparison.png``: the bar chart of `figure`.
        """
        directory = Path(directory)
        text = io.StringIO()
        fields = ["method", "task", "metric", "value"] + (["std"] if self.std is not None else [])
        writer = csv.DictWriter(text, fieldnames=fields)
        writer.writeheader()
        writer.writerows(self.rows())
        for method in self.methods:
            writer.writerow({"method": method, "task": "*", "metric": "delta_m_percent", "value": self.delta_m(method)})
        atomic_write_bytes(directory / RESULTS_FILE, text.getvalue().encode())
        meta = {
            "baseline": self.baseline,
            "higher_is_better": self.higher_is_better,
            "seconds": self.seconds,
            "descriptions": self.descriptions,
        }
        atomic_write_bytes(directory / COMPARISON_FILE, (json.dumps(meta, indent=2) + "\n").encode())
        atomic_write_bytes(directory / "results.md", (self.to_markdown() + "\n").encode())
        self.plot(directory / "comparison.png")

    @classmethod
    def read(cls, directory: str | Path) -> Comparison:
        """The comparison `write` wrote into ``directory`` (its ``results.csv``, or that file itself).

        ``comparison.json`` is optional (folders written before it existed): without it the baseline is
        ``"stl"`` and the metric directions are unknown (`delta_m` then raises).

        Raises:
            DataError: No results.csv, or a file that cannot be parsed.
        """
        path = Path(directory)
        path = path if path.suffix == ".csv" else path / RESULTS_FILE
        if not path.is_file():
            raise DataError(f"no {path}")
        results: dict[str, dict[str, dict[str, float]]] = {}
        std: dict[str, dict[str, dict[str, float]]] = {}
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            missing = {"method", "task", "metric", "value"} - set(reader.fieldnames or [])
            if missing:
                raise DataError(f"{path} lacks the columns {sorted(missing)}")
            has_std = "std" in (reader.fieldnames or [])
            for row in reader:
                if row["task"] == "*":
                    continue
                method, task, metric = row["method"], row["task"], row["metric"]
                try:
                    results.setdefault(method, {}).setdefault(task, {})[metric] = float(row["value"])
                    if has_std and row.get("std"):
                        std.setdefault(method, {}).setdefault(task, {})[metric] = float(row["std"])
                except ValueError as error:
                    raise DataError(f"{path}: {error}") from error
        meta: dict[str, Any] = {}
        meta_path = path.parent / COMPARISON_FILE
        if meta_path.is_file():
            try:
                meta = json.loads(meta_path.read_text())
            except ValueError as error:
                raise DataError(f"{meta_path}: {error}") from error
        return cls(
            results,
            {t: {m: bool(v) for m, v in ms.items()} for t, ms in (meta.get("higher_is_better") or {}).items()},
            str(meta.get("baseline", STL)),
            meta.get("seconds"),
            std if has_std else None,
            meta.get("descriptions"),
        )

    # ----- the bar chart (multitask._comparison_chart) -----
    def figure(self, metrics: Sequence[str] | None = None, *, per_row: int = PANELS_PER_ROW) -> Figure:
        """The bar chart `plot` saves, as a matplotlib Figure (close it with ``pyplot.close``).

        One panel per task metric, ``per_row`` panels a row: one bar per method drawn from 0 (never a
        truncated axis), its value written above it with as many decimals as tell the methods apart,
        ± `std` error bars when the comparison has them, and the metric's direction (from
        ``higher_is_better``) in the axis label. When the baseline and another method are present, a
        last full-width panel shows each method's relative gain over the baseline in percent,
        direction-adjusted (positive: better), from 0: small differences are visible there, labelled
        as differences. Each panel's axes has the label ``"TASK/METRIC"`` (the gain panel ``"gain"``).
        """
        return comparison_figure(self, metrics, per_row=per_row)

    def plot(self, path: str | Path) -> Path:
        """Save `figure` as a PNG at ``path`` and return the path."""
        return save_png(self.figure(), path)


def _fmt(value: float, signed: bool = False) -> str:
    if math.isnan(value):
        return "n/a"
    return f"{value:+.2f}" if signed else f"{value:.4f}"
