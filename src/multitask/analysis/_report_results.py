"""The report's verdicts: the methods compared (``results.csv``) and negative transfer (``negative_transfer.json``)."""

from __future__ import annotations

import csv
import html
import math
from pathlib import Path

from multitask.analysis._report_page import ReportPage, number, table
from multitask.analysis._transfer import NegativeTransferReport
from multitask.comparison import Comparison
from multitask.errors import DataError
from multitask.layout import STL, TRANSFER_PLOT, RunLayout


def add_results(page: ReportPage, path: Path) -> None:
    """The comparison in ``path`` (a ``results.csv``): the run's at the top, a sub-folder's among the others."""
    comparison = Comparison.read(path)
    if not comparison.results:
        raise DataError("no rows")
    stored = _stored_delta_m(path)
    columns = comparison.columns()
    baseline = comparison.baseline
    header = ["method"]
    for task, metric in columns:
        direction = comparison.higher_is_better.get(task, {}).get(metric)
        header.append(f"{task} {metric}" + ("" if direction is None else " ↑" if direction else " ↓"))
    header.append(f"Δm% vs {baseline}")
    body = []
    for method, per_task in comparison.results.items():
        cells = [html.escape(method)]
        for task, metric in columns:
            cell = number(per_task.get(task, {}).get(metric))
            spread = comparison.spread(method, task, metric)
            if math.isfinite(spread) and cell != "n/a":
                cell += f' <span class="muted">± {spread:.4f}</span>'
            cells.append(cell)
        cells.append("—" if method == baseline else number(stored.get(method), signed=True))
        body.append(cells)
    top = path.parent == page.directory
    if top:
        parts = page.section("results", "Results: methods compared (test split)")
    else:
        parts = page.section("comparisons", "Comparisons in sub-folders (test split)")
    parts.append(page.heading(path) + table(header, body, escape=False, css="numbers"))
    notes = [
        f"Δm% is the mean relative improvement over {'the single-task models' if baseline == STL else baseline} "
        "across tasks and metrics (positive: better)."
    ]
    if any(d is not None for ds in comparison.higher_is_better.values() for d in ds.values()):
        notes.append("↑ higher is better, ↓ lower is better.")
    if comparison.std is not None:
        notes.append("Values: mean ± sample standard deviation (ddof = 1) over the seeds.")
    parts.append(f'<p class="muted">{html.escape(" ".join(notes))}</p>')
    if comparison.descriptions:
        items = "".join(
            f"<dt>{html.escape(m)}</dt><dd>{html.escape(d)}</dd>" for m, d in comparison.descriptions.items()
        )
        parts.append(f'<dl class="methods">{items}</dl>')
    folder = RunLayout(path.parent)
    saved = folder.comparison_plot if folder.comparison.is_file() else None  # older pictures are drawn again
    chart = page.image(comparison.plot, "comparison of methods (bar chart)", saved, path)
    if top:  # after the verdicts: the table and the verdicts fill the first screen
        after = "follow the negative transfer verdicts" if page.verdicts else "are below"
        parts.append(f'<p><a href="#chart">The results as bar charts</a> {after}.</p>')
        page.section("chart", "Results as bar charts (test split)").append(chart)
    else:  # one seed's or the groups' chart: collapsed, the page stays short
        parts.append(f"<details><summary>Bar chart of {page.where(path)}</summary>{chart}</details>")


def add_transfer(page: ReportPage, path: Path) -> None:
    """The verdicts in ``path`` (a ``negative_transfer.json``): per task, helped, hurt or neither."""
    report = NegativeTransferReport.read(path)
    level = f"{100 * report.confidence:g}%"
    header = ["task", "metric", "single-task", report.method, "gain %", f"{level} interval of the gain", "verdict"]
    body = []
    for v in report.verdicts:
        css = {"helps": "helps", "hurts": "hurts"}.get(v.verdict, "none")
        body.append(
            [
                v.task,
                v.metric,
                f"{sum(v.stl) / len(v.stl):.4f}",
                f"{sum(v.mtl) / len(v.mtl):.4f}",
                f"{v.relative:+.2f}",
                f"[{number(v.low, signed=True)}, {number(v.high, signed=True)}]",
                f'<span class="{css}">{html.escape(v.verdict)}</span>',
            ]
        )
    parts = page.section("transfer", "Negative transfer: multi-task vs single-task over seeds")
    mean = sum(report.delta_m) / len(report.delta_m)
    parts.append(page.heading(path) + table(header, body, escape=False))
    parts.append(
        f"<p>Δm% of {html.escape(report.method)}: <b>{mean:+.2f}</b> ({level} interval "
        f"[{number(report.delta_m_low, signed=True)}, {number(report.delta_m_high, signed=True)}], "
        f"{len(report.delta_m)} seeds, {html.escape(report.interval)} interval). A task is <em>hurt</em> when the "
        "whole interval of its paired gain is below zero, <em>helped</em> when it is above.</p>"
    )
    parts.append("<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in report.suggestions) + "</ul>")
    parts.append(page.image(report.plot, "negative transfer per task", path.parent / TRANSFER_PLOT, path))


def _stored_delta_m(path: Path) -> dict[str, float]:
    """The ``*, delta_m_percent`` rows of a results.csv: each method's Δm% as written."""
    with path.open(newline="") as handle:
        return {
            row["method"]: float(row["value"])
            for row in csv.DictReader(handle)
            if row.get("task") == "*" and row.get("metric") == "delta_m_percent"
        }
