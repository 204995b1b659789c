"""The report's analyses: task affinity and groupings, gradient conflict, the trade-off front, linear models."""

from __future__ import annotations

import html
import json
from pathlib import Path

from multitask.analysis._affinity import TaskAffinity
from multitask.analysis._conflict import ConflictHistory
from multitask.analysis._linear_run import LinearRun
from multitask.analysis._pareto import ParetoFront
from multitask.analysis._report_page import ReportPage, number, table
from multitask.errors import DataError
from multitask.layout import AFFINITY_PLOT, CONFLICT_CURVES, CONFLICT_HEATMAP, GROUPS, LINEAR_PLOT, PARETO_PLOT

_AFFINITY = "Task affinity and grouping"


def add_affinity(page: ReportPage, path: Path) -> None:
    """The affinity in ``path`` (an ``affinity.json``): its heatmap and the best groups for 1 to 4 models."""
    from multitask.analysis._grouping import select_groups

    affinity = TaskAffinity.read(path)
    parts = page.section("affinity", _AFFINITY)
    what = (
        "TAG look-ahead affinity Z(i→j) = 1 − L_j(after a step on task i) / L_j(before), averaged over "
        f"{affinity.samples} sampled steps: positive means task i's updates lower task j's loss."
        if affinity.kind == "lookahead"
        else "Pairwise transfer: change (%) of task j's metric when trained with task i rather than alone."
    )
    parts.append(page.heading(path) + f"<p>{html.escape(what)}</p>")
    parts.append(page.image(affinity.plot, "task affinity heatmap", path.parent / AFFINITY_PLOT, path))
    rows = []
    for k in range(1, min(len(affinity.task_names), 4) + 1):
        try:
            grouping = select_groups(affinity.array(), k, task_names=affinity.task_names)
        except DataError as error:
            rows.append([str(k), html.escape(str(error)), "", ""])
            break
        rows.append([str(k), html.escape(str(grouping)), f"{grouping.score:+.4g}", "yes" if grouping.exact else "no"])
    parts.append(
        "<p>Recommended groups for a given number of models: the partition of the tasks that maximises the "
        "mean, over tasks, of the affinity onto each task from the other tasks of its group (TAG's network "
        "selection score; a task alone scores 0):</p>"
        + table(["models", "groups", "mean score", "proven optimal"], rows, escape=False)
    )


def add_grouping(page: ReportPage, path: Path) -> None:
    """The groups in ``path`` (a ``grouping.json``) that method ``groups`` trained."""
    payload = json.loads(path.read_text())
    groups = " | ".join("{" + ", ".join(g) + "}" for g in payload["groups"])
    parts = page.section("affinity", _AFFINITY)
    parts.append(
        f"<p>Groups trained in {page.where(path)}: <b>{html.escape(groups)}</b> "
        f"(score {float(payload['score']):+.4g}); their results are the <code>{GROUPS}</code> row of that "
        "folder's results table.</p>"
    )


def add_conflict(page: ReportPage, path: Path) -> None:
    """The gradient conflict in ``path`` (a ``conflict.jsonl``): the most conflicting pair, a heatmap, curves."""
    history = ConflictHistory.read(path)
    parts = page.section("conflict", "Gradient conflict on the shared parameters")
    worst = history.most_conflicting()
    text = (
        f"{len(history)} sampled steps. Cosine of two tasks' gradients: negative means a step for one "
        "raises the other's loss (conflict); the norms show magnitude differences."
    )
    if worst is not None:
        text += f" Most conflicting pair: {worst[0]} and {worst[1]} (mean cosine {worst[2]:+.2f})."
    parts.append(page.heading(path) + f"<p>{html.escape(text)}</p>")
    heatmap, curves = path.parent / CONFLICT_HEATMAP, path.parent / CONFLICT_CURVES
    parts.append(page.image(history.plot_heatmap, "gradient cosine heatmap", heatmap, path))
    parts.append(page.image(history.plot_curves, "gradient cosine and norm over steps", curves, path))


def add_pareto(page: ReportPage, path: Path) -> None:
    """The trade-off front in ``path`` (a ``pareto.json``): each method's hypervolume and the front's picture."""
    front = ParetoFront.read(path)
    parts = page.section("pareto", "Trade-off between tasks")
    reference = ", ".join(f"{t} {v:.4g}" for t, v in zip(front.task_names, front.reference_point(), strict=True))
    rows = [[m, str(sum(p.method == m for p in front.points)), f"{front.hypervolume(m):.5g}"] for m in front.methods]
    rows += [[label, "1", f"{front.point_hypervolume(label):.5g}"] for label in front.others]
    parts.append(
        page.heading(path) + f"<p>Hypervolume: the volume of objective space the points dominate up to "
        f"the reference point ({html.escape(reference)}); larger is better.</p>"
        + table(["method", "points", "hypervolume"], rows)
    )
    parts.append(page.image(front.plot, "Pareto front", path.parent / PARETO_PLOT, path))


def add_linear(page: ReportPage, path: Path) -> None:
    """The linear model in ``path`` (a ``linear.json``): its test metrics, the features it selects, the task
    clusters and its weights' picture."""
    run = LinearRun.read(path)
    parts = page.section("linear", "Linear model")
    params = ", ".join(f"{k}={v}" for k, v in run.params.items()) or "defaults"
    fitted = ", ".join(f"{k} {v:.4g}" for k, v in run.fitted.items())
    outputs = "logits" if run.kind == "binary" else "values"
    parts.append(
        page.heading(path) + f"<p><b>{html.escape(run.estimator)}</b> (penalty <code>{html.escape(run.penalty)}"
        f"</code>; {html.escape(params)}) on {len(run.task_names)} {html.escape(run.kind)} tasks and "
        f"{len(run.feature_names)} features, fitted in {run.seconds:.3g} s"
        + (f" ({html.escape(fitted)})" if fitted else "")
        + f". Task t predicts the {outputs} x·w<sub>t</sub> + b<sub>t</sub>.</p>"
    )
    metrics = list(dict.fromkeys(m for values in run.test.values() for m in values))
    if metrics:
        body = [[t, *[number(run.test.get(t, {}).get(m)) for m in metrics]] for t in run.task_names]
        parts.append("<p>Test metrics, computed with each task's own metrics:</p>" + table(["task", *metrics], body))
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
        parts.append(table(["feature", "row norm ‖W_j·‖₂"], rows))
    rows = []
    for task in selection.task_names:
        chosen = selection.per_task.get(task, [])
        shown = ", ".join(chosen[:10]) + (f", … ({len(chosen) - 10} more)" if len(chosen) > 10 else "")
        rows.append([task, str(len(chosen)), shown or "none"])
    parts.append(
        "<p>Per task, the features with a non-zero weight, largest |weight| first (at most 10 shown):</p>"
        + table(["task", "features", "first features"], rows)
    )
    if run.clusters:
        groups: dict[int, list[str]] = {}
        for task, cluster in run.clusters.items():
            groups.setdefault(cluster, []).append(task)
        rows = [[str(c), ", ".join(groups[c])] for c in sorted(groups)]
        parts.append(
            "<p>Task clusters: average-linkage clustering of the tasks' normalised relation (the clustered "
            "model's M, else the cosine of the task weight vectors):</p>" + table(["cluster", "tasks"], rows)
        )
    parts.append(page.image(run.plot, "linear model weights", path.parent / LINEAR_PLOT, path))
