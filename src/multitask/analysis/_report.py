"""`multitask report`: one self-contained HTML page about a run folder (inline CSS, images as data URIs).

The page (`multitask.analysis._report_page`) gets its sections from the modules that read the run's files:
the verdicts (``_report_results``), the analyses (``_report_analyses``) and the training runs and the config
(``_report_runs``); this one finds the files (`RunLayout.find`) and puts them on the page in order.
"""

from __future__ import annotations

import html
from pathlib import Path

from multitask.analysis._report_analyses import add_affinity, add_conflict, add_grouping, add_linear, add_pareto
from multitask.analysis._report_page import RUNS, ReportPage
from multitask.analysis._report_results import add_results, add_transfer
from multitask.analysis._report_runs import add_config, add_run
from multitask.errors import ConfigError
from multitask.layout import (
    AFFINITY_FILE,
    CONFLICT_FILE,
    GROUPING_FILE,
    LINEAR_FILE,
    METRICS_FILE,
    PARETO_FILE,
    RESULTS_FILE,
    TRANSFER_FILE,
    RunLayout,
)
from multitask.training.checkpoint import atomic_write_bytes

#: The files the report reads, wherever they lie in the run folder.
_READ = (
    RESULTS_FILE,
    TRANSFER_FILE,
    AFFINITY_FILE,
    GROUPING_FILE,
    CONFLICT_FILE,
    PARETO_FILE,
    LINEAR_FILE,
    METRICS_FILE,
)


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
    run = RunLayout(directory)
    found = run.find(_READ)
    if not any(found.values()) and not run.config.is_file():
        raise ConfigError(
            f"{directory} holds nothing to report on (no config.yaml, results.csv, metrics.jsonl or analysis files)"
        )
    page = ReportPage(directory, verdicts=bool(found[TRANSFER_FILE]))
    results = found[RESULTS_FILE]
    for path in (p for p in results if p.parent == directory):
        page.guard(path, add_results)
    for path in found[TRANSFER_FILE]:
        page.guard(path, add_transfer)
    for path in found[AFFINITY_FILE]:
        page.guard(path, add_affinity)
    for path in found[GROUPING_FILE]:
        page.guard(path, add_grouping)
    for path in found[CONFLICT_FILE]:
        page.guard(path, add_conflict)
    for path in found[PARETO_FILE]:
        page.guard(path, add_pareto)
    for path in found[LINEAR_FILE]:
        page.guard(path, add_linear)
    for path in (p for p in results if p.parent != directory):
        page.guard(path, add_results)
    runs = found[METRICS_FILE]
    for path in runs[:max_runs]:
        page.guard(path, add_run)
    if len(runs) > max_runs:
        skipped = ", ".join(html.escape(str(p.parent.relative_to(directory))) for p in runs[max_runs:])
        page.section("runs", RUNS).append(
            f'<p class="muted">{len(runs) - max_runs} more training runs not shown (raise max_runs): {skipped}</p>'
        )
    add_config(page, run.config)
    name = title or page.config_name or directory.resolve().name
    target = Path(output) if output is not None else run.report
    atomic_write_bytes(target, page.render(name).encode())
    return target
