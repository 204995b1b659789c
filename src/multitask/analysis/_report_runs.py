"""The report's training runs (each folder with a ``metrics.jsonl``) and the run's configuration."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from multitask._plots import pyplot, save_png
from multitask.analysis._explain import gate_history, plot_gate_usage
from multitask.analysis._report_page import RUNS, ReportPage, number, table
from multitask.errors import DataError
from multitask.layout import CONFIG_FILE, CURVES_PLOT
from multitask.training.callbacks import plot_curves


def add_run(page: ReportPage, path: Path) -> None:
    """The training run of ``path`` (a ``metrics.jsonl``): its last validation metrics, per-task curves and
    task weights, and the gates' usage."""
    history = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    if not history:
        raise DataError("no epoch recorded")
    tasks = sorted({key.split("/")[1] for record in history for key in record if key.startswith("train/")})
    parts = page.section("runs", RUNS)
    parts.append(f"<h3>{page.where(path)}</h3>")
    last = history[-1]
    metrics = sorted({key.split("/", 2)[2] for key in last if key.startswith("val/") and key.count("/") == 2})
    if metrics:
        body = [[t, *[number(last.get(f"val/{t}/{m}")) for m in metrics]] for t in tasks]
        parts.append(
            f"<p>Validation metrics after epoch {int(last['epoch']) + 1}:</p>" + table(["task", *metrics], body)
        )
    if "val/delta_m" in last:
        parts.append(f"<p>Validation Δm% vs the single-task models: {number(last['val/delta_m'], signed=True)}</p>")
    ordered = [t for t in _task_order(history) if t in tasks] or tasks
    curves = path.parent / CURVES_PLOT
    parts.append(
        page.image(lambda p: plot_curves(history, ordered, p), "per-task curves and task weights", curves, path)
    )
    gates = gate_history(history)
    if gates:
        final = {gate: values[-1] for gate, values in gates.items()}
        parts.append(page.image(lambda p: plot_gate_usage(final, p, title="gate usage, last epoch"), "gate usage"))
        if len(history) > 1:
            parts.append(page.image(lambda p: _plot_gate_epochs(gates, p), "gate usage over epochs"))


def add_config(page: ReportPage, path: Path) -> None:
    """The run's configuration ``path`` (a ``config.yaml``, if there is one), collapsed; its ``name`` is the
    page's default title."""
    if not path.is_file():
        return
    text = path.read_text()
    try:
        loaded = yaml.safe_load(text)
        if isinstance(loaded, Mapping) and isinstance(loaded.get("name"), str):
            page.config_name = loaded["name"]
    except yaml.YAMLError:
        pass
    lines = len(text.splitlines())
    page.section("config", "Configuration").append(
        f"<details><summary>{CONFIG_FILE}: the run's full configuration ({lines} lines; click to show)</summary>"
        f"<pre>{html.escape(text)}</pre></details>"
    )


def _task_order(history: Sequence[Mapping[str, Any]]) -> list[str]:
    order: list[str] = []
    for key in history[0]:
        if key.startswith("train/") and key.endswith("/loss"):
            order.append(key.split("/")[1])
    return order


def _plot_gate_epochs(gates: Mapping[str, list[list[float]]], path: Path) -> Path:
    plt = pyplot()
    figure, axes = plt.subplots(1, len(gates), figsize=(3.4 * len(gates), 2.8), squeeze=False)
    for ax, (gate, epochs) in zip(axes[0], gates.items(), strict=True):
        for expert in range(len(epochs[0])):
            ax.plot(range(1, len(epochs) + 1), [e[expert] for e in epochs], marker="o", label=f"e{expert}")
        ax.set_title(gate, fontsize=9)
        ax.set_xlabel("epoch")
        ax.set_ylim(0, 1)
    axes[0][0].legend(fontsize=7)
    figure.tight_layout()
    return save_png(figure, path)
