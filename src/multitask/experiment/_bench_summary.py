"""The bench's summary: per dataset, architecture and method, the main test metrics, Δm% and rank; its files.

`summarise` turns the cells' records into rows (mean ± std over seeds, Δm% against the single-task models of
the same seeds, Maninis et al. 2019, and the rank by Δm); `write_summary` writes them as ``results.md``,
``results.csv`` and ``delta_m.png``.
"""

from __future__ import annotations

import csv
import io
import math
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multitask.layout import STL
from multitask.metrics import delta_m
from multitask.training.checkpoint import atomic_write_bytes

MAX_TASK_COLUMNS = 6  # the markdown table shows each task's metric up to this many tasks, else their mean


@dataclass
class BenchResult:
    """The finished grid: every cell's record and the summary rows."""

    records: list[dict[str, Any]]
    rows: list[dict[str, Any]] = field(default_factory=list)
    markdown: str = ""


def summarise(records: Sequence[dict[str, Any]]) -> BenchResult:
    """Per dataset, architecture and method: main test metric per task (mean ± std), Δm% vs ``stl``, rank."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault((record["dataset"], record["architecture"], record["method"]), []).append(record)
    single = {
        (r["dataset"], r["seed"]): r for r in records if r["method"] == STL
    }  # the baseline of each dataset and seed
    rows: list[dict[str, Any]] = []
    for (dataset, architecture, method), members in groups.items():
        main = members[0]["main_metrics"]
        row: dict[str, Any] = {"dataset": dataset, "architecture": architecture, "method": method}
        for task, metric in main.items():
            values = [m["test"][task][metric] for m in members if task in m["test"]]
            row[f"{task}/{metric}"] = _mean_std(values)
        per_seed = [statistics.fmean(m["test"][t][metric] for t, metric in main.items()) for m in members]
        row["mean over tasks"] = _mean_std(per_seed)
        deltas = [_delta(member, single.get((dataset, member["seed"]))) for member in members]
        row["delta_m"] = _mean_std([d for d in deltas if d is not None]) if any(d is not None for d in deltas) else None
        row["seeds"] = len(members)
        row["seconds"] = statistics.fmean(m["seconds"] for m in members)
        rows.append(row)
    for dataset in {r["dataset"] for r in rows}:
        ranked = sorted(
            (r for r in rows if r["dataset"] == dataset and r["delta_m"] is not None),
            key=lambda r: -r["delta_m"][0],
        )
        for rank, row in enumerate(ranked, start=1):
            row["rank"] = rank
    result = BenchResult(list(records), rows)
    result.markdown = _markdown(rows)
    return result


def _delta(record: dict[str, Any], baseline: dict[str, Any] | None) -> float | None:
    if baseline is None:
        return None
    main = record["main_metrics"]
    results = {task: {metric: record["test"][task][metric]} for task, metric in main.items()}
    reference = {task: {metric: baseline["test"][task][metric]} for task, metric in main.items()}
    directions = {task: {metric: record["higher_is_better"][task][metric]} for task, metric in main.items()}
    if any(not math.isfinite(v[m]) or v[m] == 0 for v in reference.values() for m in v):
        return None
    return delta_m(results, reference, directions)


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return (math.nan, math.nan)
    return (statistics.fmean(finite), statistics.stdev(finite) if len(finite) > 1 else 0.0)


def _format(value: Any, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, tuple):
        mean, std = value
        return f"{mean:.{digits}f} ± {std:.{digits}f}" if math.isfinite(mean) else "—"
    return str(value)


def _markdown(rows: Sequence[dict[str, Any]]) -> str:
    lines = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        members = [r for r in rows if r["dataset"] == dataset]
        metrics = [k for k in members[0] if "/" in k]
        if len(metrics) > MAX_TASK_COLUMNS:  # many tasks (e.g. one per school): their mean main metric only
            metrics = ["mean over tasks"]
        lines += [f"### {dataset}", ""]
        lines.append("| architecture | method | " + " | ".join(metrics) + " | Δm% | rank | seeds | s/run |")
        lines.append("|---|---|" + "---:|" * (len(metrics) + 4))
        for row in members:
            cells_text = [_format(row.get(m)) for m in metrics]
            delta = _format(row["delta_m"], 2)
            lines.append(
                f"| {row['architecture']} | {row['method']} | "
                + " | ".join(cells_text)
                + f" | {delta} | {row.get('rank', '—')} | {row['seeds']} | {row['seconds']:.0f} |"
            )
        lines.append("")
    return "\n".join(lines)


def write_summary(result: BenchResult, directory: Path) -> None:
    """``results.md``, ``results.csv`` and ``delta_m.png`` in ``directory``."""
    atomic_write_bytes(directory / "results.md", (result.markdown + "\n").encode())
    header = list(dict.fromkeys(key for row in result.rows for key in row))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in result.rows:
        writer.writerow([_csv_cell(row.get(key)) for key in header])
    atomic_write_bytes(directory / "results.csv", buffer.getvalue().encode())
    _plot(result.rows, directory / "delta_m.png")


def _csv_cell(value: Any) -> str:
    if isinstance(value, tuple):
        return f"{value[0]:.6g} ± {value[1]:.2g}"
    return "" if value is None else str(value)


def _plot(rows: Sequence[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    figure, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets), 3.5), squeeze=False)
    for axis, dataset in zip(axes[0], datasets, strict=True):
        members = [r for r in rows if r["dataset"] == dataset and r["delta_m"] is not None]
        labels = [
            f"{r['method']} ({r['architecture']})" if r["architecture"] != "hard_sharing" else r["method"]
            for r in members
        ]
        values = [r["delta_m"][0] for r in members]
        errors = [r["delta_m"][1] for r in members]
        colours = ["tab:green" if v > 0 else "tab:red" for v in values]
        axis.barh(labels, values, xerr=errors, color=colours)
        axis.axvline(0, color="black", linewidth=0.8)
        axis.set_title(dataset)
        axis.set_xlabel("Δm% vs single-task")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    atomic_write_bytes(path, buffer.getvalue())


def print_progress(done: int, total: int, record: dict[str, Any]) -> None:
    """The default progress line: ``[done/total] dataset/architecture/method seed N: Xs``."""
    name = f"{record['dataset']}/{record['architecture']}/{record['method']} seed {record['seed']}"
    print(f"[{done}/{total}] {name}: {record['seconds']:.1f}s", file=sys.stderr, flush=True)
