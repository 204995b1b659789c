"""Running an experiment: the run folder, every method of every seed, the groups, the sweep, the report."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch
import yaml

from multitask.analysis import (
    ConflictHistory,
    ParetoFront,
    TaskAffinity,
    TaskGrouping,
    build_report,
    fit_linear,
    negative_transfer_from_comparisons,
    preference_grid,
)
from multitask.comparison import Comparison
from multitask.config import (
    ExperimentConfig,
    GroupsConfig,
    LinearConfig,
    ParetoConfig,
)
from multitask.data import TabularData
from multitask.errors import ConfigError, DataError
from multitask.experiment._build import build_encoder, build_model, build_tasks, describe_methods, trainer_options
from multitask.experiment._folder import check_run_dir, prepare_run_dir
from multitask.experiment._inputs import ExperimentData, input_shape, input_size, load_data
from multitask.layout import AFFINITY_FILE, AFFINITY_PLOT, CONFLICT_FILE, GROUPS, LINEAR, MTL, STL, RunLayout
from multitask.studies import ModelFactory, compare, pairwise_transfer, pareto_sweep, train_groups
from multitask.training import TrainerOptions
from multitask.training.distributed import Distributed
from multitask.training.lock import RunFolderLock
from multitask.training.progress import RunProgress, progress_wanted


def output_dir(config: ExperimentConfig, output: str | Path | None = None) -> Path:
    """Where the run is written: ``output``, else the config's ``output``, else ``runs/NAME``."""
    if output is not None:
        return Path(output)
    return config.output if config.output is not None else Path("runs") / config.name


def planned_trainings(config: ExperimentConfig) -> int:
    """How many trainings (`Trainer.fit` calls) `run_experiment` makes for ``config``: the total of its progress.

    Per seed (each of ``analysis.seeds``, else one): one per task for ``stl``, one for ``mtl`` and for
    each architecture of ``compare.methods`` (``linear`` fits no Trainer), two per ``compare.transfer``
    pair (pre-training and fine-tuning); ``analysis.groups``: ``num_groups`` per seed (the most groups
    the grouping may have; `run_experiment` corrects the plan once the grouping is known) and, with
    ``source: pairwise``, once ``T`` single-task and ``T(T-1)/2`` pair trainings; ``analysis.pareto``:
    once, one per sweep method and preference vector (`preference_grid`).
    """
    tasks = len(config.tasks)
    per_seed = sum(tasks if method == STL else 0 if method == LINEAR else 1 for method in config.compare.methods)
    per_seed += 2 * len(config.compare.transfer)
    analysis = config.analysis
    seeds = len(analysis.seeds) if analysis.seeds else 1
    count = seeds * per_seed
    if analysis.groups is not None:
        count += seeds * analysis.groups.num_groups
        if analysis.groups.source == "pairwise":
            count += tasks + tasks * (tasks - 1) // 2
    pareto = analysis.pareto
    if pareto is not None:  # the config has checked that the sweep can run (2-3 tasks, resolution >= T)
        count += len(pareto.methods) * len(preference_grid(tasks, pareto.resolution))
    return count


def run_experiment(
    config: ExperimentConfig,
    *,
    output: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | RunProgress | None = None,
) -> Comparison:
    """Train every method the config asks for and write the run folder; returns the comparison.

    The folder gets ``config.yaml`` (the validated config), one sub-folder per method with its
    checkpoints, metrics and curves, and ``results.csv``, ``results.md``, ``comparison.png``. With
    ``analysis.seeds`` every seed's runs go to ``seed-N/`` (each such a folder), the top-level results
    are the means over the seeds and ``negative_transfer/METHOD/`` holds each multi-task method's
    verdicts against the single-task models. ``analysis.groups`` adds the method ``groups`` (the
    recommended task groups, ``groups/`` in each seed's folder); ``analysis.pareto`` adds ``pareto/``
    (the trade-off sweep, on the first seed).

    ``progress``: True draws the run's progress (`RunProgress`: model i of `planned_trainings`, its
    epoch and step, the run's ETA, one summary line per finished model), None does so on a terminal
    outside CI and otherwise writes only the summary lines to the ``multitask`` logger (INFO), False
    shows nothing; a `RunProgress` of your own is used as it is (its unset ``total``, ``name`` and
    ``root`` filled in). Under torchrun only rank 0 shows progress.

    Raises:
        ConfigError: The folder already holds a run and neither ``resume`` nor ``overwrite`` is set, or the
            data lacks a task of the config.
        DataError: The data cannot be read. Data errors come before anything is written to the folder.
    """
    directory = output_dir(config, output)
    saved = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    check_run_dir(directory, saved, resume, overwrite)
    shown: RunProgress | None = None  # only rank 0 (torchrun sets RANK) shows progress
    if isinstance(progress, RunProgress):
        shown = progress
        shown.total = shown.total if shown.total is not None else planned_trainings(config)
        shown.name = shown.name if shown.name is not None else config.name
        shown.root = shown.root if shown.root is not None else directory
    elif progress is not False and os.environ.get("RANK", "0") == "0":
        bars = bool(progress) or progress_wanted()
        shown = RunProgress(planned_trainings(config), config.name, root=directory, bars=bars)
    try:
        return _run_experiment(config, directory, saved, resume, overwrite, shown)
    finally:
        if shown is not None and shown is not progress:
            shown.close()


def _run_experiment(
    config: ExperimentConfig,
    directory: Path,
    saved: str,
    resume: bool,
    overwrite: bool,
    progress: RunProgress | None,
) -> Comparison:
    """`run_experiment` once the run folder is checked, with its progress (None: none)."""
    _status(progress, "loading data")
    data = load_data(config)  # before the folder is written: a data error leaves no half-made run
    distributed = Distributed.from_environment()  # under torchrun: rank 0 prepares the folder, the others wait
    analysis, methods = config.analysis, config.compare.methods
    if distributed is not None and (analysis.seeds or analysis.pareto or analysis.groups or LINEAR in methods):
        raise ConfigError(
            "analysis.seeds, analysis.pareto, analysis.groups and the linear method run on one process only (not "
            "under torchrun or --nproc yet): train them without --nproc"
        )
    lock = RunFolderLock(directory)
    if distributed is None or distributed.is_main:  # one writer: the lock before anything is written
        lock.acquire()
    try:
        if distributed is None:
            prepare_run_dir(directory, saved, resume, overwrite)
        else:
            distributed.run_on_main(prepare_run_dir, directory, saved, resume, overwrite)
        return _run_all(config, data, directory, resume, progress, distributed)
    finally:
        lock.release()


def _run_all(
    config: ExperimentConfig,
    data: ExperimentData,
    directory: Path,
    resume: bool,
    progress: RunProgress | None,
    distributed: Distributed | None,
) -> Comparison:
    """`run_experiment` once the run folder is prepared and locked."""
    analysis = config.analysis
    runs = _Runs(config, data, resume, progress)
    seeds = analysis.seeds or [config.seed]
    run = RunLayout(directory)
    folders = {seed: run.seed(seed) if analysis.seeds else run for seed in seeds}
    comparisons = {seed: runs.compare(seed, folder) for seed, folder in folders.items()}
    if analysis.groups is not None:
        _status(progress, "choosing the task groups")
        grouping = runs.grouping(analysis.groups, folders[seeds[0]])
        if progress is not None:  # the plan counted num_groups per seed, the most there can be
            progress.add_planned(len(seeds) * (len(grouping.groups) - analysis.groups.num_groups))
        for seed, folder in folders.items():
            comparisons[seed] = runs.train_groups(grouping, seed, folder, comparisons[seed])
    comparison = comparisons[seeds[0]]
    if analysis.seeds:
        _status(progress, "judging negative transfer")
        comparison = Comparison.mean(list(comparisons.values()))
        comparison.write(directory)
        _judge_transfer(config, list(comparisons.values()), run, folders[seeds[0]])
    if analysis.pareto is not None:
        runs.pareto(analysis.pareto, seeds[0], run.pareto, comparisons[seeds[0]])
    if analysis.report and (distributed is None or distributed.is_main):
        _status(progress, "writing the report")
        build_report(directory)  # after the results are written: a report problem loses no result
    return comparison


def _status(progress: RunProgress | None, text: str) -> None:
    """Show ``text`` as what the run is doing (see `RunProgress.status`), when it shows progress."""
    if progress is not None:
        progress.status(text)


class _Runs:
    """The trainings of one config: its methods for a seed, the task groups and the trade-off sweep."""

    def __init__(
        self, config: ExperimentConfig, data: ExperimentData, resume: bool, progress: RunProgress | None
    ) -> None:
        self.config, self.data, self.resume = config, data, resume
        _status(progress, "building models")
        self.size = input_size(config, data)
        self.shape = input_shape(config, data)
        self.encoder = build_encoder(config, self.size, self.shape)
        self.tasks = build_tasks(config, data, self.encoder.out_features, self.shape)
        self.options = trainer_options(config, progress if progress is not None else False)

    def compare(self, seed: int, folder: RunLayout) -> Comparison:
        """Every method of ``compare.methods`` (and the transfer runs) with ``seed``, written to ``folder``."""
        config = self.config
        methods = config.compare.methods
        model = self._model()
        architectures: dict[str, ModelFactory] = {
            m: build_model(config, m, self.size, self.shape) for m in methods if m not in (STL, MTL, LINEAR)
        }
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            comparison = compare(
                self.encoder,
                self.tasks,
                self.data.train,
                self.data.val,
                self.data.test,
                methods=[m for m in methods if m in (STL, MTL)],
                model=model,
                architectures=architectures,
                transfer=config.compare.transfer,
                freeze_encoder=config.compare.freeze_encoder,
                input_key=config.input_key,
                seed=seed,
                run_dir=folder.root,
                resume=self.resume,
                options=self.options,
            )
        later = [LINEAR] if LINEAR in methods else []  # rows added after the trainings
        later += [GROUPS] if config.analysis.groups is not None else []
        described = [*comparison.methods, *later]
        comparison = dataclasses.replace(comparison, descriptions=describe_methods(config, described))
        if LINEAR in methods:
            return self._with_linear(comparison, folder)  # writes the folder's results again, with the linear row
        comparison.write(folder.root)  # the descriptions join results.md and comparison.json
        return comparison

    def _with_linear(self, comparison: Comparison, folder: RunLayout) -> Comparison:
        """``comparison`` with the method ``linear`` (`fit_linear`; ``folder/linear``)."""
        spec = self.config.linear or LinearConfig()
        if not isinstance(self.data, TabularData):
            raise ConfigError(f"compare.methods linear needs one table of features; got {self.data.name}")
        run = fit_linear(
            spec.penalty,
            self.tasks,
            self.data.train,
            self.data.test if self.data.test is not None else self.data.val,
            params=spec.params,
            feature_names=self.data.feature_names,
            num_clusters=spec.clusters,
            input_key=self.config.data.input_key,  # the linear method reads one table of features
            run_dir=folder.method(LINEAR),
        )
        return self._merged(comparison, LINEAR, run.test, run.seconds, folder)

    @staticmethod
    def _merged(
        comparison: Comparison, method: str, results: dict[str, dict[str, float]], seconds: float, folder: RunLayout
    ) -> Comparison:
        """``comparison`` with one more method's test results, written again to ``folder``."""
        merged = dataclasses.replace(
            comparison,
            results=comparison.results | {method: results},
            seconds=(comparison.seconds or {}) | {method: seconds},
        )
        merged.write(folder.root)
        return merged

    def _model(self) -> ModelFactory | None:
        """The ``model`` section's architecture (None: hard sharing of the encoder, the baselines' default)."""
        architecture = self.config.model.type
        return None if architecture == "hard_sharing" else build_model(self.config, architecture, self.size, self.shape)

    def _plain_options(self) -> TrainerOptions:
        """The trainer options without the analysis monitors (extra runs are not monitored)."""
        return self.options.replace(callbacks=())

    def grouping(self, spec: GroupsConfig, folder: RunLayout) -> TaskGrouping:
        """The recommended groups: from the multi-task run's look-ahead affinity, or from pair trainings."""
        if spec.source == "pairwise":
            options = self._plain_options()
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.config.seed)
                affinity = pairwise_transfer(
                    self.encoder,
                    self.tasks,
                    self.data.train,
                    self.data.val if self.data.val is not None else self.data.test,
                    input_key=self.config.input_key,
                    seed=self.config.seed,
                    options=options,
                )
            groups = folder.method(GROUPS)
            groups.mkdir(parents=True, exist_ok=True)
            affinity.write(groups / AFFINITY_FILE)
            affinity.plot(groups / AFFINITY_PLOT)
        else:
            methods = [m for m in self.config.compare.methods if m != STL]
            path = folder.method(MTL if MTL in methods else methods[0]) / AFFINITY_FILE
            if not path.is_file():
                raise DataError(f"no task affinity at {path}: the multi-task run sampled none (lower affinity_every)")
            affinity = TaskAffinity.read(path)
        return affinity.group(spec.num_groups, overlap=spec.overlap)

    def train_groups(self, grouping: TaskGrouping, seed: int, folder: RunLayout, comparison: Comparison) -> Comparison:
        """``comparison`` with the method ``groups``: one model per recommended group (``folder/groups``)."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            groups = train_groups(
                self.encoder,
                self.tasks,
                grouping,
                self.data.train,
                self.data.val,
                self.data.test,
                include=(),
                input_key=self.config.input_key,
                seed=seed,
                run_dir=folder.method(GROUPS),
                resume=self.resume,
                options=self._plain_options(),
            )
        return self._merged(comparison, GROUPS, groups.results[GROUPS], (groups.seconds or {})[GROUPS], folder)

    def pareto(self, spec: ParetoConfig, seed: int, folder: Path, comparison: Comparison) -> ParetoFront:
        """The trade-off sweep with the ``model`` section's architecture; the compared methods as single points."""
        config = self.config
        chosen = {task.name: spec.metric.get(task.name, task.main_metric) for task in self.tasks}
        others = {
            method: {
                task: per_task[task][metric] for task, metric in chosen.items() if metric in per_task.get(task, {})
            }
            for method, per_task in comparison.results.items()
        }
        model = self._model()
        options = self._plain_options().replace(strategy=None)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return pareto_sweep(
                self.encoder,
                self.tasks,
                self.data.train,
                self.data.val,
                self.data.test,
                methods=spec.methods,
                resolution=spec.resolution,
                metric=chosen,
                stch_options={"mu": spec.mu} if spec.mu is not None else None,
                model=model,
                others={m: v for m, v in others.items() if len(v) == len(chosen)},
                input_key=config.input_key,
                seed=seed,
                run_dir=folder,
                resume=self.resume,
                options=options,
            )


def _judge_transfer(
    config: ExperimentConfig, comparisons: list[Comparison], directory: RunLayout, first: RunLayout
) -> None:
    """``negative_transfer/METHOD/``: each multi-task method against the single-task models, task by task."""
    analysis = config.analysis
    methods = [m for m in comparisons[0].methods if m != comparisons[0].baseline and not m.startswith("transfer:")]
    for method in methods:
        conflict_path, affinity_path = first.method(method) / CONFLICT_FILE, first.method(method) / AFFINITY_FILE
        report = negative_transfer_from_comparisons(
            comparisons,
            method=method,
            confidence=analysis.confidence,
            interval=analysis.interval,
            conflict=ConflictHistory.read(conflict_path) if conflict_path.is_file() else None,
            affinity=TaskAffinity.read(affinity_path) if affinity_path.is_file() else None,
        )
        target = directory.negative_transfer(method)
        target.mkdir(parents=True, exist_ok=True)
        report.write(target)
