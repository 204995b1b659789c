"""The bar chart of a `multitask.comparison.Comparison`: one panel per task metric, then the gains over the baseline.

`Comparison.figure` and `Comparison.plot` draw it with `comparison_figure`; this module reads the comparison
through `ChartedComparison`, the part of it the chart needs, so that it does not import the record.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from multitask._plots import pyplot, separating_decimals
from multitask.metrics import relative_gain

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PANELS_PER_ROW = 3
"""Panels a row of `comparison_figure` holds by default."""


class ChartedComparison(Protocol):
    """What the chart reads of a `multitask.comparison.Comparison` (see there)."""

    results: dict[str, dict[str, dict[str, float]]]
    higher_is_better: dict[str, dict[str, bool]]
    baseline: str
    std: dict[str, dict[str, dict[str, float]]] | None

    @property
    def methods(self) -> list[str]: ...

    def spread(self, method: str, task: str, metric: str) -> float: ...

    def columns(self, metrics: Sequence[str] | None = None) -> list[tuple[str, str]]: ...


def comparison_figure(
    comparison: ChartedComparison, metrics: Sequence[str] | None = None, *, per_row: int = PANELS_PER_ROW
) -> Figure:
    """The bar chart of ``comparison`` as a matplotlib Figure: see `multitask.comparison.Comparison.figure`."""
    plt = pyplot()
    columns = comparison.columns(metrics)
    gains = _gains(comparison, columns)
    count = max(len(columns), 1)
    per_row = max(1, min(per_row, count))
    rows = math.ceil(count / per_row)
    extra = 1 if gains else 0
    width = max(4.3 * per_row, 7.5 if gains else 0.0)
    figure: Figure = plt.figure(figsize=(width, 3.6 * (rows + extra) + 0.5), layout="constrained")
    grid = figure.add_gridspec(rows + extra, per_row)
    for index, (task, metric) in enumerate(columns):
        _panel(comparison, figure.add_subplot(grid[index // per_row, index % per_row]), task, metric)
    if not columns:
        ax = figure.add_subplot(grid[0, 0])
        ax.text(0.5, 0.5, "no results", ha="center", va="center")
        ax.set_axis_off()
    if gains:
        _gain_panel(comparison, figure.add_subplot(grid[rows, :]), columns, gains)
    title = "test metrics per method (bars from 0"
    title += "; error bars: ± 1 sample std over seeds)" if comparison.std is not None else ")"
    figure.suptitle(title, fontsize=11)
    return figure


def _panel(comparison: ChartedComparison, ax: Any, task: str, metric: str) -> None:
    methods = comparison.methods
    values = [comparison.results[m].get(task, {}).get(metric, math.nan) for m in methods]
    spreads = [comparison.spread(m, task, metric) for m in methods]
    spreads = [s if math.isfinite(s) and math.isfinite(v) else 0.0 for s, v in zip(spreads, values, strict=True)]
    positions = list(range(len(methods)))
    heights = [v if math.isfinite(v) else 0.0 for v in values]
    ax.bar(positions, heights, width=0.7, color=[f"C{i % 10}" for i in positions])
    with_spread = [i for i in positions if spreads[i] > 0]
    if with_spread:
        ax.errorbar(
            [positions[i] for i in with_spread],
            [values[i] for i in with_spread],
            yerr=[spreads[i] for i in with_spread],
            fmt="none",
            ecolor="#222222",
            elinewidth=1.2,
            capsize=4,
        )
    ax.axhline(0.0, color="black", lw=0.8)
    ends = [(v - s if v < 0 else v + s) for v, s in zip(heights, spreads, strict=True)]
    _annotate(ax, positions, values, ends, panel_inches=3.6)
    _zero_based_limits(ax, ends, rotated=_rotated(values, 3.6))
    ax.set_xticks(positions, methods, rotation=30, ha="right", rotation_mode="anchor")
    ax.set_title(f"{task}: {metric}", fontsize=10)
    ax.set_ylabel(f"{metric}{_direction(comparison.higher_is_better.get(task, {}).get(metric))}")
    ax.set_label(f"{task}/{metric}")


def _gains(
    comparison: ChartedComparison, columns: Sequence[tuple[str, str]]
) -> dict[str, dict[tuple[str, str], float]]:
    """``{method: {(task, metric): 100 · sign · (M − B) / |B|}}`` for the non-baseline methods."""
    if comparison.baseline not in comparison.results:
        return {}
    reference = comparison.results[comparison.baseline]
    gains: dict[str, dict[tuple[str, str], float]] = {}
    for method in comparison.methods:
        if method == comparison.baseline:
            continue
        for task, metric in columns:
            base = reference.get(task, {}).get(metric, math.nan)
            value = comparison.results[method].get(task, {}).get(metric, math.nan)
            direction = comparison.higher_is_better.get(task, {}).get(metric)
            gain = relative_gain(value, base, direction) if direction is not None else math.nan
            if math.isfinite(gain):
                gains.setdefault(method, {})[(task, metric)] = gain
    return gains


def _gain_panel(
    comparison: ChartedComparison,
    ax: Any,
    columns: Sequence[tuple[str, str]],
    gains: Mapping[str, Mapping[tuple[str, str], float]],
) -> None:
    shown = [c for c in columns if any(c in g for g in gains.values())]
    others = list(gains)
    width = 0.8 / len(others)
    positions: list[float] = []
    values: list[float] = []
    for j, method in enumerate(others):
        xs = [g + (j - (len(others) - 1) / 2) * width for g in range(len(shown))]
        ys = [gains[method].get(c, math.nan) for c in shown]
        colour = f"C{comparison.methods.index(method) % 10}"
        ax.bar(xs, [y if math.isfinite(y) else 0.0 for y in ys], width=width * 0.92, color=colour, label=method)
        positions += xs
        values += ys
    ax.axhline(0.0, color="black", lw=0.8)
    inches = max(4.3 * min(len(columns), PANELS_PER_ROW), 7.5) * len(shown) / max(len(shown), 1)
    heights = [v if math.isfinite(v) else 0.0 for v in values]
    _annotate(ax, positions, values, heights, panel_inches=inches, suffix="%")
    _zero_based_limits(ax, heights, rotated=_rotated(values, inches, suffix="%"))
    ax.set_xticks(range(len(shown)), [f"{t}: {m}" for t, m in shown], rotation=20, ha="right")
    ax.set_ylabel("gain, % (higher is better)")
    ax.set_title(
        f"difference vs {comparison.baseline}: relative gain in % of the {comparison.baseline} value, "
        "sign-adjusted so that positive is better",
        fontsize=10,
    )
    ax.legend(fontsize=8, ncol=min(len(others), 6), loc="best")
    ax.set_label("gain")


def _direction(higher_is_better: bool | None) -> str:
    if higher_is_better is None:
        return ""
    return " (higher is better ↑)" if higher_is_better else " (lower is better ↓)"


def _label_texts(values: Sequence[float], suffix: str = "") -> list[str]:
    decimals = separating_decimals(values)
    return [f"{v:.{decimals}f}{suffix}" if math.isfinite(v) else "n/a" for v in values]


def _rotated(values: Sequence[float], panel_inches: float, suffix: str = "") -> bool:
    """Whether the value labels must be vertical to fit above their bars (about 0.085 in per character)."""
    texts = _label_texts(values, suffix)
    slot = panel_inches / max(len(values), 1)
    return max((len(t) for t in texts), default=0) * 0.085 > 0.95 * slot


def _annotate(
    ax: Any,
    positions: Sequence[float],
    values: Sequence[float],
    ends: Sequence[float],
    *,
    panel_inches: float,
    suffix: str = "",
) -> None:
    """Write each value above its bar (below a negative one), past the end of its error bar."""
    rotation = 90 if _rotated(values, panel_inches, suffix) else 0
    for x, value, end, text in zip(positions, values, ends, _label_texts(values, suffix), strict=True):
        below = math.isfinite(value) and value < 0
        ax.annotate(
            text,
            (x, end),
            xytext=(0, -3 if below else 3),
            textcoords="offset points",
            ha="center",
            va="top" if below else "bottom",
            fontsize=9,
            rotation=rotation,
        )


def _zero_based_limits(ax: Any, ends: Sequence[float], *, rotated: bool) -> None:
    """y limits that include 0 (an axis starts at 0 when every value is positive), with room for labels."""
    finite = [e for e in ends if math.isfinite(e)]
    low, high = min([0.0, *finite]), max([0.0, *finite])
    if low == high == 0.0:
        ax.set_ylim(0.0, 1.0)
        return
    room = (0.32 if rotated else 0.14) * (high - low)
    ax.set_ylim(low - room if low < 0 else 0.0, high + room if high > 0 else 0.0)
