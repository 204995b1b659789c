"""`MultiTaskData`: the splits of a real dataset with its task descriptions, and `Task` objects built from them."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from torch import nn

from multitask.data._cells import IGNORE_INDEX
from multitask.data._dataset import ArrayDataset
from multitask.data._tabular import TabularData
from multitask.errors import ConfigError, DataError
from multitask.metrics import ANGLE_METRICS
from multitask.tasks import Task, TaskKind

#: One split: a dataset whose rows carry every task's labels, or one dataset per task (multi-input data).
Split = ArrayDataset | dict[str, ArrayDataset]
#: What `MultiTaskData.make_tasks` builds heads from.
Heads = Mapping[str, nn.Module] | Callable[["TaskInfo"], nn.Module] | int


@dataclass(frozen=True)
class TaskInfo:
    """What one task of a dataset is: its kind, output size, suggested loss and metrics, label column.

    Attributes:
        name: The task's name (key of outputs, metrics and logs).
        kind: ``"binary"``, ``"multiclass"``, ``"multilabel"`` or ``"regression"``.
        num_outputs: Width of the head's output: 1 for binary and scalar regression, the number of
            classes for multiclass, the number of labels for multilabel and multi-output regression.
        column: The batch column that holds the labels (usually ``name``).
        classes: Names of the classes (multiclass) or labels (multilabel), when known.
        loss: Suggested built-in loss name; None for the kind's default.
        metrics: Suggested built-in metric names, the first being the main one; None for the defaults.
        dense: True for per-pixel targets (segmentation, depth, normals: ``[H, W]`` or ``[C, H, W]`` per
            sample); `make_task` builds a ``Task(..., dense=True)``, whose head must output per-pixel maps.
        description: One line on what the label means.
    """

    name: str
    kind: TaskKind
    num_outputs: int = 1
    column: str | None = None
    classes: tuple[str, ...] = ()
    loss: str | None = None
    metrics: tuple[str, ...] | None = None
    dense: bool = False
    description: str = ""

    @property
    def label_key(self) -> str:
        """The batch column of the labels."""
        return self.column or self.name

    def make_task(self, head: nn.Module) -> Task:
        """The `multitask.Task` for this task with ``head``: kind, suggested loss and metrics, label column.

        Missing labels follow the library's rule: NaN for float targets, ``-100`` for class indices.
        Dense tasks get ``Task(..., dense=True)``: segmentation cross-entropy over labelled pixels, depth
        L1 over valid pixels, and, when the suggested metrics are angles (surface normals) and no loss is
        suggested, the ``cosine`` loss ``1 − cos(n̂, n)`` (MTAN's normal loss, Liu et al. 2019).
        """
        loss = self.loss
        if self.dense and loss is None and self.kind == "regression" and set(self.metrics or ()) & set(ANGLE_METRICS):
            loss = "cosine"
        return Task(
            self.name,
            head,
            self.kind,
            loss=loss,
            metrics=list(self.metrics) if self.metrics is not None else None,
            target_key=self.column if self.column not in (None, self.name) else None,
            ignore_index=IGNORE_INDEX,
            dense=self.dense,
        )


@dataclass(frozen=True)
class MultiTaskData:
    """The train/validation/test splits of a multi-task dataset, what its tasks are, and where it came from.

    Single-input data has one `ArrayDataset` per split whose rows carry every task's labels; multi-input
    data (tasks with their own samples, e.g. one per school, or tasks from different datasets) has one
    ``{task: ArrayDataset}`` per split. Either form is what `multitask.Trainer.fit` takes. The field names
    match `TabularData` (``train``, ``val``, ``test``, ``kinds``, ``classes``, ``tasks``), so code written
    for one works with the other.

    Attributes:
        train: The training split (every encoder and vocabulary was fitted on it alone).
        val: The validation split, or None.
        test: The test split, or None.
        task_info: Task name -> `TaskInfo`, in the dataset's task order.
        feature_names: Names of the columns of ``x`` for tabular inputs; empty otherwise.
        num_embeddings: Id columns (users, items, tokens) -> number of distinct ids, for ``nn.Embedding``.
        name: Short name of the dataset.
        source: Where the data comes from (paper, package, file).
        licence: The licence or terms of use of the data.
        preprocessing: What was done to the raw data.
    """

    train: Split
    val: Split | None
    test: Split | None
    task_info: dict[str, TaskInfo]
    feature_names: list[str] = field(default_factory=list)
    num_embeddings: dict[str, int] = field(default_factory=dict)
    name: str = ""
    source: str = ""
    licence: str = ""
    preprocessing: str = ""

    def __post_init__(self) -> None:
        if not self.task_info:
            raise DataError("MultiTaskData needs at least one task")
        for split in ("train", "val", "test"):
            value = getattr(self, split)
            if isinstance(value, dict):
                unknown = sorted(set(value) - set(self.task_info))
                if unknown:
                    raise DataError(f"{split} split has datasets for unknown task(s) {unknown}; tasks: {self.tasks}")

    @property
    def tasks(self) -> list[str]:
        """The task names, in order."""
        return list(self.task_info)

    @property
    def kinds(self) -> dict[str, TaskKind]:
        """Task -> kind."""
        return {name: info.kind for name, info in self.task_info.items()}

    @property
    def classes(self) -> dict[str, list[str]]:
        """Task -> class (or label) names, for the tasks that have them."""
        return {name: list(info.classes) for name, info in self.task_info.items() if info.classes}

    @property
    def is_multi_input(self) -> bool:
        """Whether each task has its own datasets."""
        return isinstance(self.train, dict)

    @property
    def num_features(self) -> int:
        """Width of the tabular input ``x`` (0 when the data has no feature names)."""
        return len(self.feature_names)

    def dataset(self, split: Literal["train", "val", "test"], task: str | None = None) -> ArrayDataset:
        """The dataset of ``split`` (for multi-input data: of ``task``)."""
        value: Split | None = getattr(self, split)
        if value is None:
            raise DataError(f"{self.name or 'this dataset'} has no {split} split")
        if isinstance(value, ArrayDataset):
            return value
        if task is None or task not in value:
            raise DataError(f"multi-input data: pass one of the tasks {sorted(value)} to get its {split} dataset")
        return value[task]

    def sample_shapes(self, task: str | None = None) -> dict[str, tuple[int, ...]]:
        """Each column's per-sample shape, read from the first training row (one file for lazy datasets)."""
        if task is None and self.is_multi_input:
            task = self.tasks[0]
        row = self.dataset("train", task)[slice(0, 1)]
        return {key: tuple(value.shape[1:]) for key, value in row.items()}

    def make_tasks(self, heads: Heads, *, tasks: Sequence[str] | None = None) -> list[Task]:
        """`multitask.Task` objects for the tasks, with the suggested kinds, losses, metrics and label columns.

        Args:
            heads: ``{task: module}``; or a function ``TaskInfo -> module``; or an int ``width``: each head is
                ``nn.Linear(width, num_outputs)`` on a shared representation of that width (per-sample tasks
                only: a dense task needs a head that outputs per-pixel maps, e.g. ``nn.Conv2d(width, num_outputs, 1)``).
            tasks: Which tasks, in this order (default: all).

        Raises:
            ConfigError: An unknown task, a head missing from the mapping, or an int width for a dense task.

        Example:
            ``tasks = data.make_tasks(64)`` then ``HardSharing(encoder, tasks)`` with a 64-wide encoder.
        """
        names = list(tasks) if tasks is not None else self.tasks
        unknown = [name for name in names if name not in self.task_info]
        if unknown:
            raise ConfigError(f"unknown task(s) {unknown}; this dataset has {self.tasks}")
        built = []
        for name in names:
            info = self.task_info[name]
            if isinstance(heads, int):
                if info.dense:
                    raise ConfigError(
                        f"task {name!r} has per-pixel targets: an int width builds nn.Linear heads (one output per "
                        f"sample); pass {{task: module}} or a function TaskInfo -> module with a per-pixel head, "
                        f"e.g. nn.Conv2d(channels, {info.num_outputs}, 1)"
                    )
                head: nn.Module = nn.Linear(heads, info.num_outputs)
            elif isinstance(heads, Mapping):
                if name not in heads:
                    raise ConfigError(f"no head for task {name!r}; heads given for {sorted(heads)}")
                head = heads[name]
            else:
                head = heads(info)
            built.append(info.make_task(head))
        return built

    @classmethod
    def from_tabular(
        cls, data: TabularData, *, name: str = "", source: str = "", licence: str = "", preprocessing: str = ""
    ) -> MultiTaskData:
        """Wrap a `TabularData` (e.g. `load_census_income`'s) with task descriptions and metadata."""
        infos = {}
        for task, kind in data.kinds.items():
            classes = tuple(data.classes.get(task, ()))
            width = len(classes) if kind == "multiclass" else 1
            infos[task] = TaskInfo(task, kind, width, classes=classes)
        return cls(
            train=data.train,
            val=data.val,
            test=data.test,
            task_info=infos,
            feature_names=list(data.feature_names),
            name=name,
            source=source,
            licence=licence,
            preprocessing=preprocessing,
        )


def combine(**parts: tuple[MultiTaskData, str]) -> MultiTaskData:
    """Tasks from different datasets (different inputs) as one multi-input dataset.

    Each keyword names a task of the result and picks ``(dataset, task)``: the new task reads that task's
    labels from that dataset's splits. The result has one dataset per task and split, which the Trainer
    trains with its multi-input sampling (``Trainer(sampling=...)``); give the model per-task ``adapters``
    when the inputs differ in shape.

    Example:
        ``combine(digit=(load_multi_mnist(), "left"), item=(load_fashion_mnist(), "item"))``

    Raises:
        ConfigError: No parts, or a part that does not name a task of its dataset.
        DataError: A split present in some parts but not in others (it is dropped only if absent from all).
    """
    if not parts:
        raise ConfigError("combine needs at least one task, e.g. combine(digit=(data, 'left'))")
    infos: dict[str, TaskInfo] = {}
    splits: dict[str, dict[str, ArrayDataset]] = {"train": {}, "val": {}, "test": {}}
    for new_name, part in parts.items():
        if not (isinstance(part, tuple) and len(part) == 2 and isinstance(part[0], MultiTaskData)):
            raise ConfigError(f"combine({new_name}=...) takes a (MultiTaskData, task name) pair; got {part!r}")
        data, task = part
        if task not in data.task_info:
            raise ConfigError(
                f"combine({new_name}=...): {data.name or 'the dataset'} has no task {task!r}: {data.tasks}"
            )
        infos[new_name] = replace(data.task_info[task], name=new_name, column=data.task_info[task].label_key)
        for split in splits:
            if getattr(data, split) is not None:
                splits[split][new_name] = data.dataset(split, task)  # type: ignore[arg-type]
    for split in ("val", "test"):
        if splits[split] and len(splits[split]) != len(parts):
            missing = sorted(set(parts) - set(splits[split]))
            raise DataError(f"tasks {missing} have no {split} split while the others do; give every task one")
    sources = [data for data, _ in parts.values()]
    return MultiTaskData(
        train=splits["train"],
        val=splits["val"] or None,
        test=splits["test"] or None,
        task_info=infos,
        num_embeddings={k: v for data in sources for k, v in data.num_embeddings.items()},
        name=" + ".join(dict.fromkeys(data.name for data in sources)),
        source="; ".join(dict.fromkeys(data.source for data in sources if data.source)),
        licence="; ".join(dict.fromkeys(data.licence for data in sources if data.licence)),
        preprocessing="; ".join(dict.fromkeys(data.preprocessing for data in sources if data.preprocessing)),
    )
