"""The benchmark suite: a grid of datasets × methods × architectures × seeds, run cell by cell, tabulated.

Each cell trains one model (or, for ``stl``, one model per task) on one dataset with one seed and a fixed
budget, evaluates every task on the test split and writes ``cells/CELL.json`` atomically; a finished cell
is never run again, so an interrupted suite resumes where it stopped. Cells run in parallel worker
processes (``jobs``). The summary has, per dataset and architecture, each method's main test metric per
task (mean ± std over seeds), its Δm% against the single-task models of the same seeds (Maninis et al.
2019) and its rank by Δm; it is written as ``results.md``, ``results.csv`` and ``delta_m.png``.

A method is ``stl`` (single-task models), a loss weighting (`multitask.weighting.names`, e.g. ``ew``,
``uw``, ``gradnorm``), a gradient aggregation (`multitask.aggregation.names`, e.g. ``mgda``, ``pcgrad``;
per-parameter Jacobian) or ``mgda_ub`` (MGDA on the shared representation, Sener & Koltun 2018). An
architecture is a name of `multitask.models.names`, as in configs: ``hard_sharing`` (the dataset's encoder
shared by all tasks), ``mmoe`` (Ma et al. 2018: 4 experts built like the encoder, one gate per task), or any
other built from the encoder and experts like it (`bench_architectures`; those reading only feature vectors
need a dataset with one vector input column). ``hard`` is still read as ``hard_sharing`` for one release.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from functools import cache
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import torch
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from torch import nn

from multitask import aggregation as aggregation_methods
from multitask import models
from multitask import weighting as weighting_methods
from multitask.data import ArrayDataset, MultiTaskData, Split
from multitask.errors import ConfigError, DataError
from multitask.metrics import delta_m
from multitask.models import MLP, LeNet, ModelParts, MultiTaskModel, RecommenderEncoder
from multitask.strategy import Strategy
from multitask.studies import ModelFactory, RunResult, train_multitask, train_single_task
from multitask.tasks import Task
from multitask.training import TrainerOptions
from multitask.training.checkpoint import atomic_write_bytes

#: The old name of ``hard_sharing`` in benchmark configs, still read for one release.
OLD_NAMES = {"hard": "hard_sharing"}
#: The bench's experts: built like the dataset's encoder, this many (as the MMoE paper's census set-up).
NUM_EXPERTS = 4


def bench_architectures() -> list[str]:
    """The architectures a benchmark cell can build: those made of the encoder and experts like it (not MTAN's or
    shared-private's heads, which need a config's head specs)."""
    return [name for name in models.names() if models.info(name).parts_used <= {"expert"}]


MAX_TASK_COLUMNS = 6  # the markdown table shows each task's metric up to this many tasks, else their mean


# ---------------------------------------------------------------------------------------------- settings
class BenchConfig(BaseModel):
    """What to run: the grid and the per-cell budget (a YAML file of these keys, unknown keys rejected)."""

    model_config = ConfigDict(extra="forbid")

    datasets: list[str] = Field(min_length=1)
    methods: list[str] = Field(default_factory=lambda: ["stl", "ew"], min_length=1)
    architectures: list[str] = Field(default_factory=lambda: ["hard_sharing"], min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    epochs: int = Field(default=10, gt=0)
    batch_size: int = Field(default=256, gt=0)
    lr: float = Field(default=1e-3, gt=0)
    max_train_rows: int | None = Field(default=None, gt=0)
    max_eval_rows: int | None = Field(default=None, gt=0)
    quick: bool = False  # set by the --quick profile: loaders build small versions where generation is costly

    @field_validator("architectures", mode="before")
    @classmethod
    def _renamed(cls, value: Any) -> Any:
        return [OLD_NAMES.get(name, name) for name in value] if isinstance(value, list) else value

    @field_validator("datasets", "methods", "architectures")
    @classmethod
    def _known(cls, value: list[str], info: ValidationInfo) -> list[str]:
        allowed = {"datasets": sorted(DATASETS), "methods": method_names(), "architectures": bench_architectures()}
        choices = allowed[str(info.field_name)]
        unknown = [name for name in value if name not in choices]
        if unknown:
            raise ValueError(f"unknown {str(info.field_name)[:-1]}(s) {unknown} (allowed: {choices})")
        return value


#: The ``--quick`` profile: one seed, two short epochs, a few hundred rows (and small image sets); minutes in all.
QUICK = {"seeds": [0], "epochs": 2, "batch_size": 64, "max_train_rows": 512, "max_eval_rows": 512, "quick": True}


def load_bench_config(path: str | Path, *, quick: bool = False) -> BenchConfig:
    """Read and validate a benchmark YAML file; ``quick`` applies the `QUICK` profile on top.

    Raises:
        ConfigError: One line naming the file, the key and the problem.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: cannot read the benchmark config: {error}") from error
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a benchmark config is a mapping of keys (datasets, methods, ...)")
    return make_config(raw, quick=quick, where=str(path))


def make_config(raw: dict[str, Any], *, quick: bool = False, where: str = "benchmark config") -> BenchConfig:
    """Validate a benchmark config given as a dict (see `BenchConfig`)."""
    try:
        config = BenchConfig(**raw)
    except ValidationError as error:
        first = error.errors()[0]
        location = ".".join(str(part) for part in first["loc"]) or "(top level)"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"{where}: {location}: {message}") from None
    if quick:
        config = config.model_copy(update=QUICK)
    return config


@cache
def method_names() -> list[str]:
    """Every method a benchmark cell can run (those that need arguments, e.g. a preference vector, are left out)."""
    weightings = [name for name in weighting_methods.names() if _constructs(weighting_methods.create, name)]
    aggregations = [name for name in aggregation_methods.names() if _constructs(aggregation_methods.create, name)]
    return ["stl", *weightings, *aggregations, "mgda_ub"]


def _constructs(create: Callable[[str], object], name: str) -> bool:
    try:
        create(name)
    except ConfigError:
        return False
    return True


def make_strategy(method: str) -> Strategy:
    """The `Strategy` of a multi-task method name (not ``stl``)."""
    if method == "mgda_ub":
        return Strategy(aggregation=aggregation_methods.create("mgda"), on="representation")
    if method in weighting_methods.names():
        return Strategy(weighting=weighting_methods.create(method))
    if method in aggregation_methods.names():
        return Strategy(aggregation=aggregation_methods.create(method))
    raise ConfigError(f"unknown method {method!r} (allowed: {method_names()})")


# ---------------------------------------------------------------------------------------------- datasets
@dataclass(frozen=True)
class BenchData:
    """A dataset ready for the suite: its splits and tasks, and how to build its shared encoder.

    Attributes:
        data: The splits and task descriptions.
        encoder: Builds a fresh shared encoder (its output has ``width`` features).
        width: The encoder's output width (the heads' input).
        input_key: The batch column(s) the encoder reads.
        in_features: Width of ``x`` for mixture-of-experts models (None: not a vector input, no ``mmoe``).
    """

    data: MultiTaskData
    encoder: Callable[[], nn.Module]
    width: int
    input_key: str | tuple[str, ...] = "x"
    in_features: int | None = None


def _tabular(data: MultiTaskData, hidden: Sequence[int] = (128, 64)) -> BenchData:
    width = data.num_features or int(data.sample_shapes()["x"][0])
    return BenchData(data, lambda: MLP(width, list(hidden)), hidden[-1], in_features=width)


def _census(quick: bool) -> BenchData:
    from multitask.data import load_census_income

    return _tabular(MultiTaskData.from_tabular(load_census_income(), name="census"))


def _adult(quick: bool) -> BenchData:
    from multitask.data import load_adult

    return _tabular(load_adult())


def _yeast(quick: bool) -> BenchData:
    from multitask.data import load_yeast

    return _tabular(load_yeast())


def _school_exam(quick: bool) -> BenchData:
    from multitask.data import load_school_groups

    return _tabular(load_school_groups("exam"), hidden=(32, 16))


def _multi_mnist(quick: bool) -> BenchData:
    from multitask.data import load_multi_mnist

    return BenchData(load_multi_mnist(limit=3000 if quick else None), LeNet, 50)


def _movielens(quick: bool) -> BenchData:
    from multitask.data import load_movielens_100k

    data = load_movielens_100k()
    shapes = data.sample_shapes()
    users, items = data.num_embeddings["user"], data.num_embeddings["item"]
    side = shapes["user_features"][0] + shapes["item_features"][0]
    return BenchData(
        data,
        lambda: RecommenderEncoder(users, items, side),
        64,
        input_key=("user", "item", "user_features", "item_features"),
    )


#: Dataset name -> loader of the suite's view of it (its argument: the quick profile is on).
DATASETS: dict[str, Callable[[bool], BenchData]] = {
    "census": _census,
    "adult": _adult,
    "yeast": _yeast,
    "school_exam": _school_exam,
    "multi_mnist": _multi_mnist,
    "movielens": _movielens,
}


@cache
def _load(name: str, quick: bool) -> BenchData:  # once per worker process
    return DATASETS[name](quick)


def _head(split: Split | None, rows: int | None) -> Split | None:
    """The first ``rows`` rows of a split (of each task's dataset for multi-input data)."""
    if split is None or rows is None:
        return split
    if isinstance(split, dict):
        return {task: _rows(dataset, rows) for task, dataset in split.items()}
    return _rows(split, rows)


def _rows(dataset: ArrayDataset, rows: int) -> ArrayDataset:
    return dataset.subset(torch.arange(rows)) if len(dataset) > rows else dataset


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
            if "stl" in config.methods:
                result.append(Cell(dataset, "single", "stl", seed))
            for architecture in config.architectures:
                result += [Cell(dataset, architecture, m, seed) for m in config.methods if m != "stl"]
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
    bench = _load(cell.dataset, config.quick)
    data = bench.data
    train = _head(data.train, config.max_train_rows)
    val, test = _head(data.val, config.max_eval_rows), _head(data.test, config.max_eval_rows)
    if train is None or test is None:
        raise DataError(f"dataset {cell.dataset!r} needs train and test splits")
    options = TrainerOptions(
        max_epochs=config.epochs, batch_size=config.batch_size, lr=config.lr, progress=False, seed=cell.seed
    )
    factory, width = _model_factory(bench, cell.architecture) if cell.method != "stl" else (None, bench.width)
    torch.manual_seed(cell.seed)
    tasks = data.make_tasks(width)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cell.seed)
        encoder = bench.encoder()
    started = time.perf_counter()
    result: RunResult
    if cell.method == "stl":
        result = train_single_task(encoder, tasks, train, val, test, input_key=bench.input_key, options=options)
    else:
        strategy = make_strategy(cell.method)
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
            options=options.replace(strategy=strategy),
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
@dataclass
class BenchResult:
    """The finished grid: every cell's record and the summary rows."""

    records: list[dict[str, Any]]
    rows: list[dict[str, Any]] = field(default_factory=list)
    markdown: str = ""


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


def summarise(records: Sequence[dict[str, Any]]) -> BenchResult:
    """Per dataset, architecture and method: main test metric per task (mean ± std), Δm% vs ``stl``, rank."""
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault((record["dataset"], record["architecture"], record["method"]), []).append(record)
    single = {
        (r["dataset"], r["seed"]): r for r in records if r["method"] == "stl"
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


def default_jobs() -> int:
    """Worker processes by default: the CPU cores this process may use."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))
