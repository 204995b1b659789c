"""Evaluating a finished run folder's saved models on a split, without training."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from multitask.analysis import (
    Comparison,
    LinearRun,
)
from multitask.config import (
    ExperimentConfig,
    load_config,
)
from multitask.data import ArrayDataset
from multitask.errors import CheckpointError, ConfigError
from multitask.experiment._build import architecture_of, build_encoder, build_model, build_tasks
from multitask.experiment._inputs import input_shape, input_size, load_data
from multitask.layout import (
    CHECKPOINTS_DIR,
    FINETUNE,
    GROUPING_FILE,
    GROUPS,
    LINEAR,
    LINEAR_FILE,
    MODEL_FILE,
    STL,
    RunLayout,
    transfer_method,
)
from multitask.tasks import Task
from multitask.training import Data, Trainer
from multitask.training.checkpoint import list_checkpoints, load_checkpoint


@dataclass(frozen=True)
class _SavedModel:
    method: str
    path: Path
    task_names: tuple[str, ...]
    architecture: str | None = None  # None: the method's (`architecture_of`)
    serves: tuple[str, ...] | None = None  # the tasks reported from this model (None: all of task_names)


def _saved_models(directory: Path, config: ExperimentConfig) -> list[_SavedModel]:
    names = tuple(task.name for task in config.tasks)
    run = RunLayout(directory)
    found = []
    if run.method(STL).is_dir():
        found += [_SavedModel(STL, run.single_task(name) / MODEL_FILE, (name,)) for name in names]
    for method in config.compare.methods:
        if method not in (STL, LINEAR) and run.method(method).is_dir():
            found.append(_SavedModel(method, run.method(method) / MODEL_FILE, names))
    for source, target in config.compare.transfer:
        method = transfer_method(source, target)
        path = run.method(method) / FINETUNE / MODEL_FILE
        if path.parent.is_dir():
            found.append(_SavedModel(method, path, (target,)))
    return found + _saved_groups(run.method(GROUPS))


def _saved_groups(directory: Path) -> list[_SavedModel]:
    """The models of `train_groups` (``groups/group-N/``), each reporting the tasks its group serves."""
    if not (directory / GROUPING_FILE).is_file():
        return []
    grouping = json.loads((directory / GROUPING_FILE).read_text())
    found = []
    for number, group in enumerate(grouping["groups"]):
        members = tuple(group)
        serves = tuple(name for name in members if tuple(grouping["assignment"][name]) == members)
        folder = directory / f"group-{number}"
        path = folder / members[0] / MODEL_FILE if len(members) == 1 else folder / MODEL_FILE  # a lone task: STL
        if serves:
            found.append(_SavedModel(GROUPS, path, members, "hard_sharing", serves))
    return found


def evaluate_run(run_dir: str | Path, split: str = "test") -> Comparison:
    """Re-evaluate the models saved in a run folder on ``split`` (``"test"`` or ``"val"``).

    A run with ``analysis.seeds`` is evaluated seed by seed (``seed-N/``) and the means are returned,
    as ``multitask train`` reports them.
    """
    directory = Path(run_dir)
    run = RunLayout(directory)
    if not run.config.is_file():
        raise ConfigError(f"{directory} is not a run folder (no config.yaml); give the folder `multitask train` wrote")
    config = load_config(run.config)
    data = load_data(config)
    dataset = data.test if split == "test" else data.val
    if dataset is None:
        raise ConfigError(f"the run's data has no {split} split")
    size, shape = input_size(config, data), input_shape(config, data)
    encoder = build_encoder(config, size, shape)
    all_tasks = {task.name: task for task in build_tasks(config, data, encoder.out_features, shape)}
    seeds = config.analysis.seeds
    folders = [run.seed(seed).root for seed in seeds] if seeds else [directory]
    comparisons = [_evaluate_folder(folder, config, dataset, all_tasks, size, shape) for folder in folders]
    return comparisons[0] if len(comparisons) == 1 else Comparison.mean(comparisons)


def _evaluate_folder(
    directory: Path,
    config: ExperimentConfig,
    dataset: Data,
    all_tasks: Mapping[str, Task],
    size: int,
    shape: tuple[int, ...],
) -> Comparison:
    """The saved models of one run folder (one seed's) evaluated on ``dataset``, each rebuilt on ``all_tasks``."""
    saved = _saved_models(directory, config)
    linear_file = RunLayout(directory).method(LINEAR) / LINEAR_FILE
    if not saved and not linear_file.is_file():
        raise CheckpointError(
            f"{directory} holds no trained model (stl/, mtl/, an architecture's folder or transfer-*/)"
        )
    results: dict[str, dict[str, dict[str, float]]] = {}
    for entry in saved:
        if not entry.path.is_file():
            partial = list_checkpoints(entry.path.parent / CHECKPOINTS_DIR)
            hint = " (training did not finish: run `multitask train CONFIG --resume`)" if partial else ""
            raise CheckpointError(f"missing {entry.path}{hint}")
        tasks = [all_tasks[name] for name in entry.task_names]
        model = build_model(config, entry.architecture or architecture_of(config, entry.method), size, shape)(tasks)
        _load_weights(model, entry.path)
        trainer = Trainer(model, tasks, progress=False, device=config.training.device)
        evaluation = trainer.evaluate(_of_tasks(dataset, entry.task_names))
        serves = entry.serves or entry.task_names
        per_task = results.setdefault(entry.method, {})
        served = {t: ms for t, ms in evaluation.items() if t in serves}
        per_task.update({t: {m: v for m, v in ms.items() if m != "loss"} for t, ms in served.items()})
    if linear_file.is_file():
        linear = LinearRun.read(linear_file)
        results[LINEAR] = linear.evaluate(dataset, [all_tasks[name] for name in linear.task_names])
    directions = {t.name: {m: f.higher_is_better for m, f in t.metric_fns.items()} for t in all_tasks.values()}
    return Comparison(results, directions)


def _load_weights(model: nn.Module, path: Path) -> None:
    """``model``'s weights from the saved ``model.pt`` at ``path``.

    Raises:
        CheckpointError: The file is not one (`load_checkpoint`), or holds something other than this model's
            weights (another architecture, other layer sizes, not a state dictionary); the message names it.
    """
    state = load_checkpoint(path).get("model")
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path} holds no model weights (its 'model' entry is {type(state).__name__})")
    try:
        model.load_state_dict(state)
    except (RuntimeError, KeyError, TypeError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"{path} does not hold this config's {type(model).__name__} ({first[:150]}): was the run trained with "
            "another config?"
        ) from None


def _of_tasks(dataset: Data, names: Sequence[str]) -> Data:
    """Multi-input data (``{task: dataset}``) cut to the datasets of ``names``; one dataset for all tasks as is."""
    if isinstance(dataset, Mapping) and all(isinstance(value, ArrayDataset) for value in dataset.values()):
        return {name: dataset[name] for name in names if name in dataset}
    return dataset
