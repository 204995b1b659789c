"""Datasets by name, as timm's registries: each loader declares what it gives next to its code.

A loader module registers its loader with `register` (``@register("yeast", tasks=..., input="features",
...)``), stating the facts the upper floors need before any data is read: the tasks and their kinds, the kind
of input, whether each task has its own dataset, whether the tasks are per-pixel, and which arguments name
files or folders. Configs, the CLI and the tests ask `names`, `info` and `create` instead of keeping lists.
Importing any part of ``multitask.data`` imports every loader module, so the registry is complete once
``multitask.data`` is imported.
"""

from __future__ import annotations

import difflib
import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar, get_args, runtime_checkable

from multitask.data._dataset import ArrayDataset
from multitask.errors import ConfigError, UnknownNameError
from multitask.tasks import TASK_KINDS, TaskKind

#: The kinds of input a dataset gives, in `multitask.models.ModelInfo.reads`' vocabulary, plus ``"ids"``:
#: ``"features"``, a feature vector per row (column ``x [N, F]``); ``"tokens"``, token ids (``tokens [N, L]``,
#: int64, 0 = padding); ``"images"``, ``x [N, C, H, W]``; ``"ids"``, integer ids for embeddings with side
#: features in several columns (MovieLens: ``user``, ``item``, ``user_features``, ``item_features``).
InputKind = Literal["features", "tokens", "images", "ids"]
INPUT_KINDS: tuple[str, ...] = get_args(InputKind)
_SPLIT = ArrayDataset | dict[str, ArrayDataset]
_NAME = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")


@runtime_checkable
class LoadedData(Protocol):
    """What every registered loader returns: a `MultiTaskData`, or a `TabularData` (``census_income``, ``csv``).

    The two share these fields, so code that reads only them works with either.
    """

    @property
    def train(self) -> _SPLIT: ...  # one dataset, or {task: dataset} for multi-input data
    @property
    def val(self) -> _SPLIT | None: ...
    @property
    def test(self) -> _SPLIT | None: ...
    @property
    def tasks(self) -> list[str]: ...
    @property
    def kinds(self) -> Mapping[str, TaskKind]: ...
    @property
    def classes(self) -> Mapping[str, list[str]]: ...
    @property
    def feature_names(self) -> list[str]: ...


Loader = TypeVar("Loader", bound=Callable[..., LoadedData])


@dataclass(frozen=True)
class DatasetInfo:
    """What a registered dataset gives and takes (`info`).

    Attributes:
        name: The registry name (snake_case), as a config's ``data.type`` spells it.
        loader: The loader function that `create` calls.
        tasks: Task name -> kind (``"binary"``, ``"multiclass"``, ``"multilabel"``, ``"regression"``, as
            `MultiTaskData.kinds`), in the loader's task order, of what the loader returns when called with
            its default arguments on the data it documents: the files of the package that ships them, or the
            published release in the layout its docstring gives (for loaders that take a path). None when no
            such call fixes them: the task names come from the user's own files or arguments (a CSV's label
            columns, ``load_tabular``'s ``targets``, the school data set ``load_school_groups`` is asked for).
        input: The kind of input, one of `INPUT_KINDS`.
        input_columns: The batch columns that hold the input, the main one first (``x`` or ``tokens``).
        multi_input: Whether each task has its own datasets (``{task: dataset}`` per split).
        dense: Whether the tasks are per-pixel (``TaskInfo.dense``: targets ``[H, W]`` or ``[C, H, W]``).
        description: One line on what the data is.
        paths: The arguments that name files or folders (a config resolves them from its own folder).
        task_arguments: The arguments that change the tasks when given other than their defaults (e.g.
            ``load_movie_reviews``'s ``path``: one task per source of the user's CSV); see `known_tasks`.
        keywords: Every argument the loader takes, in its order; `create` takes them as keywords.
        required: The arguments without a default.
    """

    name: str
    loader: Callable[..., LoadedData]
    tasks: Mapping[str, TaskKind] | None
    input: InputKind
    input_columns: tuple[str, ...]
    multi_input: bool
    dense: bool
    description: str
    paths: tuple[str, ...]
    task_arguments: tuple[str, ...]
    keywords: tuple[str, ...]
    required: tuple[str, ...]

    def known_tasks(self, arguments: Mapping[str, Any]) -> Mapping[str, TaskKind] | None:
        """The tasks that ``create(name, **arguments)`` gives, where known before reading the data.

        `tasks` when every argument of `task_arguments` is absent from ``arguments`` or equal to its default;
        None otherwise, or when `tasks` is None.
        """
        defaults = inspect.signature(self.loader).parameters
        changed = [a for a in self.task_arguments if a in arguments and arguments[a] != defaults[a].default]
        return None if changed else self.tasks


_REGISTERED: dict[str, DatasetInfo] = {}


def register(
    name: str,
    /,
    *,
    tasks: Mapping[str, TaskKind] | None,
    input: InputKind,
    description: str,
    multi_input: bool = False,
    dense: bool = False,
    input_columns: Sequence[str] | None = None,
    paths: Sequence[str] = (),
    task_arguments: Sequence[str] = (),
) -> Callable[[Loader], Loader]:
    """Loader decorator: register the loader as the dataset ``name`` with what it gives (see `DatasetInfo`).

    ``input_columns`` defaults to ``("tokens",)`` for token input and ``("x",)`` otherwise.

    Raises:
        ValueError: ``name`` is taken or not snake_case, a kind or the input is unknown, a named argument is
            not one of the loader's, or the loader takes ``*args`` or positional-only arguments.
    """

    def decorate(loader: Loader) -> Loader:
        if name in _REGISTERED:
            raise ValueError(f"dataset {name!r} is registered twice")
        if not _NAME.fullmatch(name):
            raise ValueError(f"dataset names are snake_case (as config data types); got {name!r}")
        wrong = {task: kind for task, kind in (tasks or {}).items() if kind not in TASK_KINDS}
        if wrong or tasks == {}:
            raise ValueError(f"dataset {name!r}: task kinds must be among {TASK_KINDS}, one task at least; got {tasks}")
        if input not in INPUT_KINDS:
            raise ValueError(f"dataset {name!r}: input must be one of {INPUT_KINDS}; got {input!r}")
        if not description or "\n" in description:
            raise ValueError(f"dataset {name!r}: give a one-line description")
        parameters = inspect.signature(loader).parameters.values()
        odd = [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if odd:
            raise ValueError(f"dataset {name!r}: create passes keywords only; {loader.__name__} takes {odd}")
        keywords = tuple(p.name for p in parameters)
        unknown = [a for a in (*paths, *task_arguments) if a not in keywords]
        if unknown:
            raise ValueError(f"dataset {name!r}: {loader.__name__} has no argument(s) {unknown}")
        _REGISTERED[name] = DatasetInfo(
            name=name,
            loader=loader,
            tasks=dict(tasks) if tasks is not None else None,
            input=input,
            input_columns=tuple(input_columns or (("tokens",) if input == "tokens" else ("x",))),
            multi_input=multi_input,
            dense=dense,
            description=description,
            paths=tuple(paths),
            task_arguments=tuple(task_arguments),
            keywords=keywords,
            required=tuple(p.name for p in parameters if p.default is p.empty),
        )
        return loader

    return decorate


def names() -> list[str]:
    """The registered datasets, sorted."""
    return sorted(_REGISTERED)


def info(name: str, /) -> DatasetInfo:
    """What the dataset ``name`` gives and takes; `UnknownNameError` suggests a near name and lists them all."""
    if name not in _REGISTERED:
        raise UnknownNameError(f"unknown dataset {name!r}; {_did_you_mean(name, names())}allowed: {', '.join(names())}")
    return _REGISTERED[name]


def create(name: str, /, **arguments: Any) -> LoadedData:
    """The dataset ``name``, loaded by its loader with ``arguments`` (see `info` for what it gives and takes).

    Raises:
        UnknownNameError: ``name`` is not registered (the message suggests a near name and lists them all).
        ConfigError: An argument the loader does not take, or a required one missing (the message lists the
            loader's arguments).
        DataError: The loader's own errors: its data is missing (the message says how to install or where
            to put it) or malformed.

    Example:
        >>> from multitask import data
        >>> data.info("yeast").task_arguments
        ('multilabel',)
        >>> data.create("yeast", multilabel=True).kinds
        {'labels': 'multilabel'}
    """
    entry = info(name)
    takes = f"{entry.loader.__name__} takes {', '.join(entry.keywords) or 'no argument'}"
    unknown = sorted(set(arguments) - set(entry.keywords))
    if unknown:
        hint = _did_you_mean(unknown[0], list(entry.keywords)) if len(unknown) == 1 else ""
        raise ConfigError(f"dataset {name!r} takes no {', '.join(unknown)}; {hint}{takes}")
    missing = [argument for argument in entry.required if argument not in arguments]
    if missing:
        raise ConfigError(f"dataset {name!r} needs {', '.join(missing)}; {takes}")
    return entry.loader(**arguments)


def _did_you_mean(given: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(given, allowed, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""
