"""`multitask report`: one self-contained HTML page about a run folder (inline CSS, images as data URIs)."""

from __future__ import annotations

import base64
import csv
import html
import json
import math
import os
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from multitask._plots import pyplot, save_png
from multitask.analysis._affinity import TaskAffinity
from multitask.analysis._conflict import ConflictHistory
from multitask.analysis._explain import gate_history, plot_gate_usage
from multitask.analysis._linear import LinearRun
from multitask.analysis._pareto import ParetoFront
from multitask.analysis._transfer import NegativeTransferReport
from multitask.comparison import Comparison
from multitask.errors import ConfigError, DataError
from multitask.layout import (
    AFFINITY_FILE,
    COMPARISON_FILE,
    CONFLICT_FILE,
    LINEAR_FILE,
    PARETO_FILE,
    REPORT_FILE,
    RESULTS_FILE,
    TRANSFER_FILE,
)
from multitask.training.callbacks import plot_curves
from multitask.training.checkpoint import atomic_write_bytes

_SKIP = {"checkpoints", "tensorboard"}
_RUNS = "Training runs: per-task curves, metrics, task weights and gates"
_MAX_DEPTH = 4  # run/seed-0/stl/task/metrics.jsonl
#: Section order on the page: results and verdicts first, the configuration last.
_ORDER = (
    *("results", "transfer", "chart", "problems", "affinity", "conflict"),
    *("pareto", "linear", "comparisons", "runs", "config"),
)
_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
main{max-width:1150px;margin:0 auto;padding:24px}
h1{font-size:1.7em;margin:0 0 4px}h2{border-bottom:2px solid #d9dde4;padding-bottom:4px;margin-top:36px}
h3{margin-top:24px}section{background:#fff;border-radius:8px;padding:8px 20px 16px;margin:16px 0;
box-shadow:0 1px 3px rgba(0,0,0,.08)}table{border-collapse:collapse;margin:10px 0;font-size:.92em}
th,td{border:1px solid #d9dde4;padding:4px 9px;text-align:right}th{background:#eef1f5}
td:first-child,th:first-child{text-align:left}img{max-width:100%;height:auto;display:block;margin:10px 0}
pre{background:#f0f2f5;padding:10px;overflow:auto;font-size:.85em}.muted{color:#667085}
.helps{color:#1a7f37;font-weight:600}.hurts{color:#c62828;font-weight:600}.none{color:#667085}
.warn{background:#fff4e5;border-left:4px solid #f59e0b;padding:6px 10px}nav a{margin-right:14px}
nav{font-size:.9em}details>summary{cursor:pointer;font-weight:600;padding:6px 0}
dl.methods{display:grid;grid-template-columns:max-content auto;gap:2px 14px;font-size:.92em}
dl.methods dt{font-family:monospace}dl.methods dd{margin:0}
.numbers{overflow-x:auto}.numbers td{white-space:nowrap}
"""


def build_report(
    run_dir: str | Path, output: str | Path | None = None, *, title: str | None = None, max_runs: int = 12
) -> Path:
    """Write one self-contained HTML page about ``run_dir`` and return its path.

    The page shows what the folder holds, in this order: the method comparison with Δm%
    (``results.csv`` and ``comparison.json``, from `multitask.baselines.compare` or ``multitask
    train``: mean ± std over seeds when the run has seeds, the methods' descriptions), negative
    transfer verdicts (``negative_transfer.json``), the comparison's bar chart (`Comparison.figure`), task
    affinity and the recommended groupings (``affinity.json``, ``grouping.json``), gradient conflict
    (``conflict.jsonl``), the trade-off front (``pareto.json``), linear models with their selected
    features and task clusters (``linear.json``), the comparisons of sub-folders (seeds, groups),
    per-task curves, final metrics, task weights and gate usage of every training run (each folder
    with a ``metrics.jsonl``), and last the config (``config.yaml``) in a collapsed ``<details>``.
    Sections appear only when their files exist. Images are embedded as base64 PNG data URIs and the
    CSS is inline: the page needs no network and no other file. An artifact that cannot be read is
    reported on the page.

    Args:
        run_dir: The run folder.
        output: Where to write the page (default ``RUN_DIR/report.html``).
        title: Page title (default: the config's ``name``, else the folder's name).
        max_runs: Show the curves of at most this many training runs (the shallowest folders first).

    Raises:
        ConfigError: ``run_dir`` is not a folder or holds nothing to report on.
    """
    directory = Path(run_dir)
    if not directory.is_dir():
        raise ConfigError(f"{directory} is not a folder; give a run folder (written by `multitask train` or a Trainer)")
    found = _discover(directory)
    if not any(found.values()) and not (directory / "config.yaml").is_file():
        raise ConfigError(
            f"{directory} holds nothing to report on (no config.yaml, results.csv, metrics.jsonl or analysis files)"
        )
    page = _Page(directory, verdicts=bool(found[TRANSFER_FILE]))
    results = found[RESULTS_FILE]
    for path in (p for p in results if p.parent == directory):
        page.guard(path, page.add_results)
    for path in found[TRANSFER_FILE]:
        page.guard(path, page.add_transfer)
    for path in found[AFFINITY_FILE]:
        page.guard(path, page.add_affinity)
    for path in found["grouping.json"]:
        page.guard(path, page.add_grouping)
    for path in found[CONFLICT_FILE]:
        page.guard(path, page.add_conflict)
    for path in found[PARETO_FILE]:
        page.guard(path, page.add_pareto)
    for path in found[LINEAR_FILE]:
        page.guard(path, page.add_linear)
    for path in (p for p in results if p.parent != directory):
        page.guard(path, page.add_results)
    runs = found["metrics.jsonl"]
    for path in runs[:max_runs]:
        page.guard(path, page.add_run)
    if len(runs) > max_runs:
        skipped = ", ".join(html.escape(str(p.parent.relative_to(directory))) for p in runs[max_runs:])
        page.section("runs", _RUNS).append(
            f'<p class="muted">{len(runs) - max_runs} more training runs not shown (raise max_runs): {skipped}</p>'
        )
    page.add_config(directory / "config.yaml")
    name = title or page.config_name or directory.resolve().name
    target = Path(output) if output is not None else directory / REPORT_FILE
    atomic_write_bytes(target, page.render(name).encode())
    return target


def _discover(directory: Path) -> dict[str, list[Path]]:
    """The known files in ``directory`` and its sub-folders (``_MAX_DEPTH`` levels), shallowest first."""
    names = (
        RESULTS_FILE,
        TRANSFER_FILE,
        AFFINITY_FILE,
        "grouping.json",
        CONFLICT_FILE,
        PARETO_FILE,
        LINEAR_FILE,
        "metrics.jsonl",
    )
    found: dict[str, list[Path]] = {name: [] for name in names}
    for root, folders, files in os.walk(directory):
        depth = len(Path(root).relative_to(directory).parts)
        folders[:] = sorted(f for f in folders if f not in _SKIP and not f.startswith(".") and depth < _MAX_DEPTH)
        for name in files:
            if name in found:
                found[name].append(Path(root) / name)
    for paths in found.values():
        paths.sort(key=lambda p: (len(p.relative_to(directory).parts), str(p)))
    return found


class _Page:
    def __init__(self, directory: Path, *, verdicts: bool = False) -> None:
        self.directory = directory
        self.verdicts = verdicts  # the page has a negative-transfer section
        self.sections: list[tuple[str, str, list[str]]] = []  # (anchor, heading, html parts)
        self.config_name: str | None = None
        self._scratch = tempfile.TemporaryDirectory()

    # ----- building blocks -----
    def section(self, anchor: str, heading: str) -> list[str]:
        for existing, _, found in self.sections:
            if existing == anchor:
                return found
        parts: list[str] = []
        self.sections.append((anchor, heading, parts))
        return parts

    def where(self, path: Path) -> str:
        relative = path.parent.relative_to(self.directory)
        return "the run folder" if str(relative) == "." else f"<code>{html.escape(str(relative))}/</code>"

    def heading(self, path: Path) -> str:
        """An ``<h3>`` naming the sub-folder ``path`` is in (nothing for the run folder itself)."""
        return "" if path.parent == self.directory else f"<h3>{self.where(path)}</h3>"

    def image(
        self, draw: Callable[[Path], Any], alt: str, saved: Path | None = None, source: Path | None = None
    ) -> str:
        """An ``<img>`` with the PNG embedded: ``saved`` when it exists and is not older than ``source``, else drawn."""
        if (
            saved is not None
            and saved.is_file()
            and (source is None or saved.stat().st_mtime >= source.stat().st_mtime)
        ):
            path = saved
        else:
            path = Path(self._scratch.name) / "figure.png"
            draw(path)
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'

    def guard(self, path: Path, add: Callable[[Path], None]) -> None:
        try:
            add(path)
        except (DataError, ValueError, KeyError, TypeError, OSError) as error:
            parts = self.section("problems", "Files that could not be read")
            parts.append(
                f'<p class="warn">{html.escape(str(path.relative_to(self.directory)))}: {html.escape(str(error))}</p>'
            )

    # ----- sections -----
    def add_config(self, path: Path) -> None:
        if not path.is_file():
            return
        text = path.read_text()
        try:
            loaded = yaml.safe_load(text)
            if isinstance(loaded, Mapping) and isinstance(loaded.get("name"), str):
                self.config_name = loaded["name"]
        except yaml.YAMLError:
            pass
        lines = len(text.splitlines())
        self.section("config", "Configuration").append(
            f"<details><summary>config.yaml: the run's full configuration ({lines} lines; click to show)</summary>"
            f"<pre>{html.escape(text)}</pre></details>"
        )

    def add_results(self, path: Path) -> None:
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
                cell = _number(per_task.get(task, {}).get(metric))
                spread = comparison.spread(method, task, metric)
                if math.isfinite(spread) and cell != "n/a":
                    cell += f' <span class="muted">± {spread:.4f}</span>'
                cells.append(cell)
            cells.append("—" if method == baseline else _number(stored.get(method), signed=True))
            body.append(cells)
        top = path.parent == self.directory
        if top:
            parts = self.section("results", "Results: methods compared (test split)")
        else:
            parts = self.section("comparisons", "Comparisons in sub-folders (test split)")
        parts.append(self.heading(path) + _table(header, body, escape=False, css="numbers"))
        notes = [
            f"Δm% is the mean relative improvement over {'the single-task models' if baseline == 'stl' else baseline} "
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
        picture = path.parent / "comparison.png"
        saved = picture if (path.parent / COMPARISON_FILE).is_file() else None  # older pictures are drawn again
        chart = self.image(comparison.plot, "comparison of methods (bar chart)", saved, path)
        if top:  # after the verdicts: the table and the verdicts fill the first screen
            after = "follow the negative transfer verdicts" if self.verdicts else "are below"
            parts.append(f'<p><a href="#chart">The results as bar charts</a> {after}.</p>')
            self.section("chart", "Results as bar charts (test split)").append(chart)
        else:  # one seed's or the groups' chart: collapsed, the page stays short
            parts.append(f"<details><summary>Bar chart of {self.where(path)}</summary>{chart}</details>")

    def add_transfer(self, path: Path) -> None:
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
                    f"[{_number(v.low, signed=True)}, {_number(v.high, signed=True)}]",
                    f'<span class="{css}">{html.escape(v.verdict)}</span>',
                ]
            )
        parts = self.section("transfer", "Negative transfer: multi-task vs single-task over seeds")
        mean = sum(report.delta_m) / len(report.delta_m)
        parts.append(self.heading(path) + _table(header, body, escape=False))
        parts.append(
            f"<p>Δm% of {html.escape(report.method)}: <b>{mean:+.2f}</b> ({level} interval "
            f"[{_number(report.delta_m_low, signed=True)}, {_number(report.delta_m_high, signed=True)}], "
            f"{len(report.delta_m)} seeds, {html.escape(report.interval)} interval). A task is <em>hurt</em> when the "
            "whole interval of its paired gain is below zero, <em>helped</em> when it is above.</p>"
        )
        parts.append("<ul>" + "".join(f"<li>{html.escape(s)}</li>" for s in report.suggestions) + "</ul>")
        parts.append(self.image(report.plot, "negative transfer per task", path.with_suffix(".png"), path))

    def add_affinity(self, path: Path) -> None:
        from multitask.analysis._grouping import select_groups

        affinity = TaskAffinity.read(path)
        parts = self.section("affinity", "Task affinity and grouping")
        what = (
            "TAG look-ahead affinity Z(i→j) = 1 − L_j(after a step on task i) / L_j(before), averaged over "
            f"{affinity.samples} sampled steps: positive means task i's updates lower task j's loss."
            if affinity.kind == "lookahead"
            else "Pairwise transfer: change (%) of task j's metric when trained with task i rather than alone."
        )
        parts.append(self.heading(path) + f"<p>{html.escape(what)}</p>")
        parts.append(self.image(affinity.plot, "task affinity heatmap", path.with_suffix(".png"), path))
        rows = []
        for k in range(1, min(len(affinity.task_names), 4) + 1):
            try:
                grouping = select_groups(affinity.array(), k, task_names=affinity.task_names)
            except DataError as error:
                rows.append([str(k), html.escape(str(error)), "", ""])
                break
            rows.append(
                [str(k), html.escape(str(grouping)), f"{grouping.score:+.4g}", "yes" if grouping.exact else "no"]
            )
        parts.append(
            "<p>Recommended groups for a given number of models: the partition of the tasks that maximises the "
            "mean, over tasks, of the affinity onto each task from the other tasks of its group (TAG's network "
            "selection score; a task alone scores 0):</p>"
            + _table(["models", "groups", "mean score", "proven optimal"], rows, escape=False)
        )

    def add_grouping(self, path: Path) -> None:
        payload = json.loads(path.read_text())
        groups = " | ".join("{" + ", ".join(g) + "}" for g in payload["groups"])
        parts = self.section("affinity", "Task affinity and grouping")
        parts.append(
            f"<p>Groups trained in {self.where(path)}: <b>{html.escape(groups)}</b> "
            f"(score {float(payload['score']):+.4g}); their results are the <code>groups</code> row of that "
            "folder's results table.</p>"
        )

    def add_conflict(self, path: Path) -> None:
        history = ConflictHistory.read(path)
        parts = self.section("conflict", "Gradient conflict on the shared parameters")
        worst = history.most_conflicting()
        text = (
            f"{len(history)} sampled steps. Cosine of two tasks' gradients: negative means a step for one "
            "raises the other's loss (conflict); the norms show magnitude differences."
        )
        if worst is not None:
            text += f" Most conflicting pair: {worst[0]} and {worst[1]} (mean cosine {worst[2]:+.2f})."
        parts.append(self.heading(path) + f"<p>{html.escape(text)}</p>")
        saved = path.parent / "conflict_heatmap.png", path.parent / "conflict_curves.png"
        parts.append(self.image(history.plot_heatmap, "gradient cosine heatmap", saved[0], path))
        parts.append(self.image(history.plot_curves, "gradient cosine and norm over steps", saved[1], path))

    def add_pareto(self, path: Path) -> None:
        front = ParetoFront.read(path)
        parts = self.section("pareto", "Trade-off between tasks")
        reference = ", ".join(f"{t} {v:.4g}" for t, v in zip(front.task_names, front.reference_point(), strict=True))
        rows = [
            [m, str(sum(p.method == m for p in front.points)), f"{front.hypervolume(m):.5g}"] for m in front.methods
        ]
        rows += [[label, "1", f"{front.point_hypervolume(label):.5g}"] for label in front.others]
        parts.append(
            self.heading(path) + f"<p>Hypervolume: the volume of objective space the points dominate up to "
            f"the reference point ({html.escape(reference)}); larger is better.</p>"
            + _table(["method", "points", "hypervolume"], rows)
        )
        parts.append(self.image(front.plot, "Pareto front", path.with_suffix(".png"), path))

    def add_linear(self, path: Path) -> None:
        run = LinearRun.read(path)
        parts = self.section("linear", "Linear model")
        params = ", ".join(f"{k}={v}" for k, v in run.params.items()) or "defaults"
        fitted = ", ".join(f"{k} {v:.4g}" for k, v in run.fitted.items())
        outputs = "logits" if run.kind == "binary" else "values"
        parts.append(
            self.heading(path) + f"<p><b>{html.escape(run.estimator)}</b> (penalty <code>{html.escape(run.penalty)}"
            f"</code>; {html.escape(params)}) on {len(run.task_names)} {html.escape(run.kind)} tasks and "
            f"{len(run.feature_names)} features, fitted in {run.seconds:.3g} s"
            + (f" ({html.escape(fitted)})" if fitted else "")
            + f". Task t predicts the {outputs} x·w<sub>t</sub> + b<sub>t</sub>.</p>"
        )
        metrics = list(dict.fromkeys(m for values in run.test.values() for m in values))
        if metrics:
            body = [[t, *[_number(run.test.get(t, {}).get(m)) for m in metrics]] for t in run.task_names]
            parts.append(
                "<p>Test metrics, computed with each task's own metrics:</p>" + _table(["task", *metrics], body)
            )
        else:
            parts.append('<p class="muted">No test split was evaluated.</p>')
        selection = run.selection
        norms = dict(zip(selection.feature_names, selection.row_norms, strict=True))
        parts.append(
            f"<p><b>{len(selection.selected)} of {len(selection.feature_names)} features selected</b> jointly: "
            "those whose row of W has a non-zero norm ‖W<sub>j·</sub>‖<sub>2</sub> across tasks (an L2,1 "
            "penalty keeps or drops a feature for all tasks at once)."
            + (" The largest 20:" if len(selection.selected) > 20 else "")
            + "</p>"
        )
        if selection.selected:
            rows = [[f, f"{norms[f]:.4g}"] for f in selection.selected[:20]]
            parts.append(_table(["feature", "row norm ‖W_j·‖₂"], rows))
        rows = []
        for task in selection.task_names:
            chosen = selection.per_task.get(task, [])
            shown = ", ".join(chosen[:10]) + (f", … ({len(chosen) - 10} more)" if len(chosen) > 10 else "")
            rows.append([task, str(len(chosen)), shown or "none"])
        parts.append(
            "<p>Per task, the features with a non-zero weight, largest |weight| first (at most 10 shown):</p>"
            + _table(["task", "features", "first features"], rows)
        )
        if run.clusters:
            groups: dict[int, list[str]] = {}
            for task, cluster in run.clusters.items():
                groups.setdefault(cluster, []).append(task)
            rows = [[str(c), ", ".join(groups[c])] for c in sorted(groups)]
            parts.append(
                "<p>Task clusters: average-linkage clustering of the tasks' normalised relation (the clustered "
                "model's M, else the cosine of the task weight vectors):</p>" + _table(["cluster", "tasks"], rows)
            )
        parts.append(self.image(run.plot, "linear model weights", path.with_suffix(".png"), path))

    def add_run(self, path: Path) -> None:
        history = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if not history:
            raise DataError("no epoch recorded")
        tasks = sorted({key.split("/")[1] for record in history for key in record if key.startswith("train/")})
        parts = self.section("runs", _RUNS)
        parts.append(f"<h3>{self.where(path)}</h3>")
        last = history[-1]
        metrics = sorted({key.split("/", 2)[2] for key in last if key.startswith("val/") and key.count("/") == 2})
        if metrics:
            body = [[t, *[_number(last.get(f"val/{t}/{m}")) for m in metrics]] for t in tasks]
            parts.append(
                f"<p>Validation metrics after epoch {int(last['epoch']) + 1}:</p>" + _table(["task", *metrics], body)
            )
        if "val/delta_m" in last:
            parts.append(
                f"<p>Validation Δm% vs the single-task models: {_number(last['val/delta_m'], signed=True)}</p>"
            )
        ordered = [t for t in _task_order(history) if t in tasks] or tasks
        curves = path.parent / "curves.png"
        parts.append(
            self.image(lambda p: plot_curves(history, ordered, p), "per-task curves and task weights", curves, path)
        )
        gates = gate_history(history)
        if gates:
            final = {gate: values[-1] for gate, values in gates.items()}
            parts.append(self.image(lambda p: plot_gate_usage(final, p, title="gate usage, last epoch"), "gate usage"))
            if len(history) > 1:
                parts.append(self.image(lambda p: _plot_gate_epochs(gates, p), "gate usage over epochs"))

    # ----- output -----
    def render(self, title: str) -> str:
        sections = sorted(self.sections, key=lambda s: _ORDER.index(s[0]) if s[0] in _ORDER else len(_ORDER))
        nav = " ".join(f'<a href="#{a}">{html.escape(h)}</a>' for a, h, _ in sections)
        body = "".join(
            f'<section id="{a}"><h2>{html.escape(h)}</h2>{"".join(parts)}</section>' for a, h, parts in sections
        )
        self._scratch.cleanup()
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)} — multitask report</title><style>{_CSS}</style></head><body><main>"
            f'<h1>{html.escape(title)}</h1><p class="muted">multitask report of '
            f"<code>{html.escape(str(self.directory))}</code></p><nav>{nav}</nav>{body}</main></body></html>\n"
        )


def _stored_delta_m(path: Path) -> dict[str, float]:
    """The ``*, delta_m_percent`` rows of a results.csv: each method's Δm% as written."""
    with path.open(newline="") as handle:
        return {
            row["method"]: float(row["value"])
            for row in csv.DictReader(handle)
            if row.get("task") == "*" and row.get("metric") == "delta_m_percent"
        }


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


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], *, escape: bool = True, css: str = "") -> str:
    def cell(value: str) -> str:
        return html.escape(value) if escape else value

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    table = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="{css}">{table}</div>' if css else table


def _number(value: float | None, *, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "−∞" if value < 0 else "+∞"
    return f"{value:+.4f}" if signed else f"{value:.4f}"
