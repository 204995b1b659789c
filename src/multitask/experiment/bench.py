"""The benchmark suite: a grid of datasets × methods × architectures × seeds, run cell by cell, tabulated.

Each cell trains one model (or, for ``stl``, one model per task) on one dataset with one seed and a fixed
budget, evaluates every task on the test split and writes ``cells/CELL.json`` atomically; a finished cell
is never run again, so an interrupted suite resumes where it stopped. Cells run in parallel worker
processes (``jobs``). The summary has, per dataset and architecture, each method's main test metric per
task (mean ± std over seeds), its Δm% against the single-task models of the same seeds (Maninis et al.
2019) and its rank by Δm; it is written as ``results.md``, ``results.csv`` and ``delta_m.png``.

The grid speaks the config's vocabulary. A dataset is a dataset registry name with a bench view in `DATASETS`
(``census_income``, ``adult``, ``yeast``, ``school_groups``: its exam scores, ``multi_mnist``,
``movielens_100k``); the former names ``census``, ``school_exam`` and ``movielens`` are still read for one
release (`OLD_DATASET_NAMES`). A method is ``stl`` (single-task models) or a ``strategy`` section by name
(`strategy_config`): a loss weighting (`multitask.weighting.names`, e.g. ``ew``, ``uw``, ``gradnorm``), a
gradient aggregation (`multitask.aggregation.names`, e.g. ``mgda``, ``pcgrad``; per-parameter Jacobian) or
``mgda_ub`` (MGDA on the shared representation, Sener & Koltun 2018). An architecture is a name of
`multitask.models.names`, as in configs: ``hard_sharing`` (the dataset's encoder shared by all tasks), ``mmoe``
(Ma et al. 2018: 4 experts built like the encoder, one gate per task), or any other built from the encoder and
experts like it (`bench_architectures`; those reading only feature vectors need a dataset with one vector input
column). ``hard`` is still read as ``hard_sharing`` for one release. The budget is a ``training`` section
(`TrainingConfig`), or its shorthands ``epochs``, ``batch_size`` and ``lr`` at the top level.

The schema is in ``_bench_config``, the dataset views in ``_bench_data``, the summary in ``_bench_summary``;
every public name is importable from here.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch
import yaml

from multitask import models
from multitask.errors import ConfigError, DataError
from multitask.experiment._bench_config import (
    NAMED_STRATEGIES,
    OLD_NAMES,
    QUICK,
    SHORTHANDS,
    BenchConfig,
    apply_quick,
    bench_architectures,
    load_bench_config,
    make_config,
    make_strategy,
    method_names,
    strategy_config,
)
from multitask.experiment._bench_data import (
    DATASETS,
    OLD_DATASET_NAMES,
    BenchData,
    BenchView,
    EncoderBuilder,
    head,
    load_dataset,
)
from multitask.experiment._bench_summary import (
    MAX_TASK_COLUMNS,
    BenchResult,
    print_progress,
    summarise,
    write_summary,
)
from multitask.layout import STL
from multitask.models import ModelParts, MultiTaskModel
from multitask.studies import ModelFactory, RunResult, train_multitask, train_single_task
from multitask.tasks import Task
from multitask.training.checkpoint import atomic_write_bytes

__all__ = [
    "DATASETS",
    "MAX_TASK_COLUMNS",
    "NAMED_STRATEGIES",
    "NUM_EXPERTS",
    "OLD_DATASET_NAMES",
    "OLD_NAMES",
    "QUICK",
    "SHORTHANDS",
    "BenchConfig",
    "BenchData",
    "BenchResult",
    "BenchView",
    "Cell",
    "EncoderBuilder",
    "apply_quick",
    "bench_architectures",
    "cells",
    "default_jobs",
    "head",
    "load_bench_config",
    "load_dataset",
    "make_config",
    "make_strategy",
    "method_names",
    "print_progress",
    "run_bench",
    "run_cell",
    "strategy_config",
    "summarise",
    "write_summary",
]

#: The bench's experts: built like the dataset's encoder, this many (as the MMoE paper's census set-up).
NUM_EXPERTS = 4


# ---------------------------------------------------------------------------------------------- cells
@dataclass(frozen=True)
class Cell:
    """One run of the grid: which dataset, architecture, method and seed."""

    dataset: str
    architecture: str
    method: str
    seed: int

    @property
    def key(self) -> str:
        """File-name key; single-task cells do not depend on the architecture (``stl`` appears once)."""
        return f"{self.dataset}__{self.architecture}__{self.method}__s{self.seed}"


def cells(config: BenchConfig) -> list[Cell]:
    """The grid in run order; ``stl`` once per dataset and seed (architecture ``single``)."""
    result: list[Cell] = []
    for dataset in config.datasets:
        for seed in config.seeds:
            if STL in config.methods:
                result.append(Cell(dataset, "single", STL, seed))
            for architecture in config.architectures:
                result += [Cell(dataset, architecture, m, seed) for m in config.methods if m != STL]
    return result


def _model_factory(bench: BenchData, architecture: str) -> tuple[ModelFactory | None, int]:
    """The multi-task model factory of an architecture (None: hard sharing of the encoder) and its heads' width.

    Built by name (`multitask.models.create`) from the dataset's encoder, with `NUM_EXPERTS` experts built like
    it and every other hyper-parameter at the architecture's default.
    """
    if architecture == "hard_sharing":
        return None, bench.width
    reads = models.info(architecture).reads
    key = bench.input_key
    if not isinstance(key, str) or ("features" in reads and bench.in_features is None):
        raise ConfigError(f"architecture {architecture!r} needs one vector input column; {bench.data.name} has none")
    parts = ModelParts(
        encoder=bench.encoder, in_features=bench.in_features or 0, expert=lambda width: bench.encoder(), input_key=key
    )
    options = {"num_experts": NUM_EXPERTS} if "num_experts" in models.info(architecture).hyperparameters else {}

    def build(tasks: Sequence[Task]) -> MultiTaskModel:
        return models.create(architecture, tasks, parts, **options)

    return build, bench.width


def run_cell(cell: Cell, config: BenchConfig, directory: Path) -> dict[str, Any]:
    """Train and evaluate one cell and write ``directory/cells/KEY.json``; returns what it wrote.

    Every cell runs on one torch thread (in a worker or in this process), so that cells are comparable
    in time and in their numbers whatever ``jobs`` is.
    """
    torch.set_num_threads(1)
    bench = load_dataset(cell.dataset, config.quick)
    data = bench.data
    train = head(data.train, config.max_train_rows)
    val, test = head(data.val, config.max_eval_rows), head(data.test, config.max_eval_rows)
    if train is None or test is None:
        raise DataError(f"dataset {cell.dataset!r} needs train and test splits")
    options = config.trainer_options(cell.seed)
    factory, width = _model_factory(bench, cell.architecture) if cell.method != STL else (None, bench.width)
    torch.manual_seed(cell.seed)
    tasks = data.make_tasks(width)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cell.seed)
        encoder = bench.encoder()
    started = time.perf_counter()
    result: RunResult
    if cell.method == STL:
        result = train_single_task(encoder, tasks, train, val, test, input_key=bench.input_key, options=options)
    else:
        section = strategy_config(cell.method)
        strategy = section.build()
        result = train_multitask(
            encoder,
            tasks,
            train,
            val,
            test,
            input_key=bench.input_key,
            model=factory,
            method=cell.method,
            seed=cell.seed,
            options=options.replace(strategy=strategy, engine=section.engine()),
        )
    record = {
        **asdict(cell),
        "test": result.test,
        "main_metrics": {task.name: task.main_metric for task in tasks},
        "higher_is_better": {
            task.name: {name: fn.higher_is_better for name, fn in task.metric_fns.items()} for task in tasks
        },
        "seconds": time.perf_counter() - started,
    }
    path = directory / "cells" / f"{cell.key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, json.dumps(record, indent=1, allow_nan=True).encode())
    return record


def _cell_in_worker(cell: Cell, config_json: str, directory: str) -> dict[str, Any]:
    return run_cell(cell, BenchConfig.model_validate_json(config_json), Path(directory))


# ---------------------------------------------------------------------------------------------- the suite
def run_bench(
    config: BenchConfig,
    directory: str | Path,
    *,
    jobs: int = 1,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
) -> BenchResult:
    """Run every unfinished cell of the grid (in ``jobs`` processes) and write the summary files.

    Args:
        config: The grid and budget.
        directory: Output folder: ``cells/``, ``results.md``, ``results.csv``, ``delta_m.png``,
            ``config.yaml``. Cells already there are read, not re-run.
        jobs: Worker processes (1: run in this process).
        progress: Called after each cell with ``(done, total, record)``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(directory / "config.yaml", yaml.safe_dump(config.model_dump(), sort_keys=False).encode())
    grid = cells(config)
    records: dict[str, dict[str, Any]] = {}
    todo = []
    for cell in grid:
        path = directory / "cells" / f"{cell.key}.json"
        try:
            records[cell.key] = json.loads(path.read_text())
        except (OSError, ValueError):
            todo.append(cell)
    done = len(records)
    if jobs <= 1 or len(todo) <= 1:
        for cell in todo:
            records[cell.key] = run_cell(cell, config, directory)
            done += 1
            if progress is not None:
                progress(done, len(grid), records[cell.key])
    else:
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            futures = {
                pool.submit(_cell_in_worker, cell, config.model_dump_json(), str(directory)): cell for cell in todo
            }
            for future in as_completed(futures):
                records[futures[future].key] = future.result()
                done += 1
                if progress is not None:
                    progress(done, len(grid), records[futures[future].key])
    ordered = [records[cell.key] for cell in grid]
    result = summarise(ordered)
    write_summary(result, directory)
    return result


def default_jobs() -> int:
    """Worker processes by default: the CPU cores this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
