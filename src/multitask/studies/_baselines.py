"""Single-task and transfer baselines, trained with the same architecture and budget as the multi-task model.

`compare` answers the question a user asks first: did multi-task learning help each task? It
trains one model per task (STL), the hard-shared multi-task model (MTL) and, when asked, transfer
runs (pretrain on a source task, fine-tune on a target), then reports every task's test metrics
and each method's Δm% against the single-task models.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from multitask.comparison import Comparison
from multitask.errors import ConfigError
from multitask.layout import FINETUNE, MTL, PRETRAIN, STL, RunLayout, transfer_method
from multitask.models import HardSharing, ModelFactory, MultiTaskModel
from multitask.studies._options import single_task_options, study_options
from multitask.tasks import Task
from multitask.training import Data, Trainer, TrainerOptions
from multitask.training.distributed import is_main_process
from multitask.training.trainer import Results


def fresh_copy(module: nn.Module, seed: int) -> nn.Module:
    """A deep copy of ``module`` whose layers are re-initialised (``reset_parameters``) from ``seed``.

    Every run of a comparison starts from the same initial weights, whatever ran before it. Pretrained
    modules (an attribute ``pretrained`` that is true, as `multitask.models.TransformerEncoder` has) keep
    their weights, and so do the layers inside them: every run fine-tunes the same pretrained weights.
    """
    clone = copy.deepcopy(module)
    kept = {id(inner) for outer in clone.modules() if getattr(outer, "pretrained", False) for inner in outer.modules()}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for layer in clone.modules():
            reset = getattr(layer, "reset_parameters", None)
            if callable(reset) and id(layer) not in kept:
                reset()
    return clone


def fresh_task(task: Task, seed: int) -> Task:
    """``task`` with a freshly initialised copy of its head."""
    return dataclasses.replace(task, head=fresh_copy(task.head, seed))


def _select(data: Data | None, names: Sequence[str]) -> Data | None:
    """The part of ``data`` for ``names``: per-task data keeps those tasks' datasets, shared data stays whole."""
    if data is None:
        return None
    if isinstance(data, Mapping) and data and all(not isinstance(v, torch.Tensor) for v in data.values()):
        from multitask.data import ArrayDataset

        if all(isinstance(v, ArrayDataset | Mapping) for v in data.values()):
            return {name: data[name] for name in names if name in data}
    return data


@dataclass
class RunResult:
    """The outcome of one method: test and validation metrics per task, histories, wall time."""

    method: str
    test: Results
    val: Results
    histories: dict[str, list[dict[str, float]]] = field(default_factory=dict)
    seconds: float = 0.0


def _fit_and_evaluate(
    name: str,
    model: MultiTaskModel,
    tasks: Sequence[Task],
    train: Data,
    val: Data | None,
    test: Data | None,
    run_dir: Path | None,
    resume: bool,
    options: TrainerOptions,
) -> tuple[Trainer, Results, Results, list[dict[str, float]]]:
    trainer = options.replace(run_dir=run_dir).trainer(model, tasks)
    history = trainer.fit(
        _select(train, [t.name for t in tasks]) or {}, _select(val, [t.name for t in tasks]), resume=resume
    )
    val_results = trainer.evaluate(_select(val, [t.name for t in tasks]) or {}) if val is not None else {}
    test_results = trainer.evaluate(_select(test, [t.name for t in tasks]) or {}) if test is not None else {}
    return trainer, val_results, test_results, history


def train_multitask(
    encoder: nn.Module,
    tasks: Sequence[Task],
    train: Data,
    val: Data | None = None,
    test: Data | None = None,
    *,
    input_key: str | Sequence[str] = "x",
    seed: int | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    model: ModelFactory | None = None,
    method: str = MTL,
    options: TrainerOptions | None = None,
    **trainer_kwargs: Any,
) -> RunResult:
    """Train one multi-task model on all ``tasks``: hard sharing of a fresh copy of ``encoder``, or ``model(tasks)``.

    The tasks get freshly initialised heads; ``model`` is called under ``seed``. ``options`` are the Trainer's
    settings (`TrainerOptions`; ``run_dir`` is this function's, and ``seed``, when given, replaces the options'
    seed: it seeds the initial weights and the Trainer). ``**trainer_kwargs`` is the deprecated form of
    ``options`` (one release: it warns).
    """
    chosen = study_options(options, trainer_kwargs, "train_multitask", seed)
    seed = chosen.seed
    started = time.perf_counter()
    fresh = [fresh_task(task, seed) for task in tasks]
    if model is None:
        network: MultiTaskModel = HardSharing(fresh_copy(encoder, seed), fresh, input_key=input_key)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            network = model(fresh)
    _, val_results, test_results, history = _fit_and_evaluate(
        method, network, fresh, train, val, test, _path(run_dir), resume, chosen
    )
    return RunResult(method, test_results, val_results, {method: history}, time.perf_counter() - started)


def train_single_task(
    encoder: nn.Module,
    tasks: Sequence[Task],
    train: Data,
    val: Data | None = None,
    test: Data | None = None,
    *,
    input_key: str | Sequence[str] = "x",
    seed: int | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    options: TrainerOptions | None = None,
    **trainer_kwargs: Any,
) -> RunResult:
    """Train one model per task: the same encoder architecture and head, the same budget, that task's data only.

    Each model selects its best epoch on its task's main validation metric and trains on its plain loss: the
    multi-task options of ``options`` (its strategy, sampling, monitor, baseline) apply to multi-task models only,
    and a per-task ``batch_size`` gives each model its task's. ``**trainer_kwargs``: deprecated form of ``options``.
    """
    chosen = study_options(options, trainer_kwargs, "train_single_task", seed)
    seed = chosen.seed
    started = time.perf_counter()
    result = RunResult(STL, {}, {})
    for task in tasks:
        fresh = fresh_task(task, seed)
        model = HardSharing(fresh_copy(encoder, seed), [fresh], input_key=input_key)
        monitor = f"val/{task.name}/{task.main_metric}" if val is not None else None
        directory = _sub(_path(run_dir), task.name)
        _, val_results, test_results, history = _fit_and_evaluate(
            task.name,
            model,
            [fresh],
            train,
            val,
            test,
            directory,
            resume,
            single_task_options(chosen, task.name, monitor),
        )
        result.val.update(val_results)
        result.test.update(test_results)
        result.histories[task.name] = history
    result.seconds = time.perf_counter() - started
    return result


def train_transfer(
    encoder: nn.Module,
    source: Task,
    target: Task,
    train: Data,
    val: Data | None = None,
    test: Data | None = None,
    *,
    freeze_encoder: bool = False,
    input_key: str | Sequence[str] = "x",
    seed: int | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    options: TrainerOptions | None = None,
    **trainer_kwargs: Any,
) -> RunResult:
    """Pretrain on ``source``, then fine-tune the encoder (or only a new head, ``freeze_encoder``) on ``target``.

    Both stages get the full training budget (``max_epochs`` each) and run as single-task models do (see
    `train_single_task` for which ``options`` apply); the result holds the target's metrics.
    ``**trainer_kwargs``: deprecated form of ``options``.
    """
    if source.name == target.name:
        raise ConfigError(f"transfer needs two different tasks; got {source.name!r} twice")
    chosen = study_options(options, trainer_kwargs, "train_transfer", seed)
    seed = chosen.seed
    started = time.perf_counter()
    base = _path(run_dir)
    pre_task = fresh_task(source, seed)
    pretrain = HardSharing(fresh_copy(encoder, seed), [pre_task], input_key=input_key)
    monitor = f"val/{source.name}/{source.main_metric}" if val is not None else None
    _, _, _, pre_history = _fit_and_evaluate(
        "pretrain",
        pretrain,
        [pre_task],
        train,
        val,
        test=None,
        run_dir=_sub(base, PRETRAIN),
        resume=resume,
        options=single_task_options(chosen, source.name, monitor),
    )
    tuned_encoder = pretrain.encoder
    if freeze_encoder:
        for parameter in tuned_encoder.parameters():
            parameter.requires_grad_(False)
    post_task = fresh_task(target, seed)
    finetune = HardSharing(tuned_encoder, [post_task], input_key=input_key)
    monitor = f"val/{target.name}/{target.main_metric}" if val is not None else None
    _, val_results, test_results, post_history = _fit_and_evaluate(
        "finetune",
        finetune,
        [post_task],
        train,
        val,
        test,
        _sub(base, FINETUNE),
        resume,
        single_task_options(chosen, target.name, monitor),
    )
    method = transfer_method(source.name, target.name)
    histories = {PRETRAIN: pre_history, FINETUNE: post_history}
    return RunResult(method, test_results, val_results, histories, time.perf_counter() - started)


def _path(run_dir: str | Path | None) -> Path | None:
    return Path(run_dir) if run_dir is not None else None


def compare(
    encoder: nn.Module,
    tasks: Sequence[Task],
    train: Data,
    val: Data | None = None,
    test: Data | None = None,
    *,
    methods: Sequence[str] = (STL, MTL),
    transfer: Sequence[tuple[str, str]] = (),
    freeze_encoder: bool = False,
    input_key: str | Sequence[str] = "x",
    seed: int | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    model: ModelFactory | None = None,
    architectures: Mapping[str, ModelFactory] | None = None,
    options: TrainerOptions | None = None,
    **trainer_kwargs: Any,
) -> Comparison:
    """Train the requested methods on the same data and budget and compare them on ``test``.

    Methods: ``"stl"`` (one model per task), ``"mtl"`` (hard sharing with the trainer's strategy,
    or ``model(tasks)`` when given), one more multi-task run per entry of ``architectures``
    (``{method name: model factory}``, e.g. ``{"mmoe": ...}``), plus one transfer run per
    ``(source, target)`` pair in ``transfer``. When STL runs and there is validation data, the
    multi-task models are selected on validation Δm% against the STL models (unless ``monitor``
    is set in ``options``).

    ``options`` are the Trainer's settings for every run (`TrainerOptions`; see `train_single_task` for the
    ones single-task and transfer runs leave out). ``**trainer_kwargs``: deprecated form of ``options``.

    Returns:
        A `Comparison` whose ``results`` hold every method's test metrics.
    """
    unknown = [m for m in methods if m not in (STL, MTL)]
    clashes = [name for name in architectures or {} if name in (STL, MTL) or name.startswith("transfer")]
    if clashes:
        raise ConfigError(f"architectures may not be named {clashes}: stl, mtl and transfer* name other methods")
    if unknown:
        raise ConfigError(f"unknown method(s) {unknown}; allowed: stl, mtl (transfer runs go in transfer=[...])")
    by_name = {task.name: task for task in tasks}
    for pair in transfer:
        missing = [name for name in pair if name not in by_name]
        if missing:
            raise ConfigError(f"transfer pair {pair} names unknown task(s) {missing}; tasks are {list(by_name)}")
    chosen = study_options(options, trainer_kwargs, "compare", seed)
    seed = chosen.seed
    base = _path(run_dir)
    common: dict[str, Any] = {"input_key": input_key, "seed": seed, "resume": resume, "options": chosen}
    runs: dict[str, RunResult] = {}
    if STL in methods:
        runs[STL] = train_single_task(
            encoder,
            tasks,
            train,
            val,
            test,
            run_dir=RunLayout(base).method(STL) if base is not None else None,
            **common,
        )
    mtl_kwargs = dict(common)
    if STL in runs and val is not None and chosen.monitor is None:
        baseline = {
            t.name: {m: runs[STL].val[t.name][m] for m in t.metric_fns} for t in tasks if t.name in runs[STL].val
        }
        mtl_kwargs["options"] = chosen.replace(baseline=baseline)
    multitask_runs: dict[str, ModelFactory | None] = {MTL: model} if MTL in methods else {}
    multitask_runs.update(architectures or {})
    for name, factory in multitask_runs.items():
        runs[name] = train_multitask(
            encoder, tasks, train, val, test, run_dir=_sub(base, name), model=factory, method=name, **mtl_kwargs
        )
    for source, target in transfer:
        run = train_transfer(
            encoder,
            by_name[source],
            by_name[target],
            train,
            val,
            test,
            freeze_encoder=freeze_encoder,
            run_dir=RunLayout(base).method(transfer_method(source, target)) if base else None,
            **common,
        )
        runs[run.method] = run
    directions = {t.name: {m: f.higher_is_better for m, f in t.metric_fns.items()} for t in tasks}
    comparison = Comparison(
        {
            name: {t: {m: v for m, v in ms.items() if m != "loss"} for t, ms in run.test.items()}
            for name, run in runs.items()
        },
        directions,
        seconds={name: run.seconds for name, run in runs.items()},
    )
    if base is not None and is_main_process():  # multi-process runs: rank 0 writes
        comparison.write(base)
    return comparison


def _sub(base: Path | None, name: str) -> Path | None:
    return base / name if base is not None else None
