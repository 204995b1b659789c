"""`multitask.types` holds the one definition of each shared type; the old import paths are the same objects."""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path

import pytest
from torch import Tensor

import multitask.analysis._linear_run
import multitask.analysis._transfer
import multitask.comparison
import multitask.data
import multitask.data._dataset
import multitask.models._base
import multitask.training.trainer
from multitask import types

SOURCE = Path(__file__).resolve().parents[1] / "src" / "multitask"


def test_the_read_and_the_built_forms() -> None:
    assert types.Batch == Mapping[str, Tensor]
    assert types.BatchDict == dict[str, Tensor]
    assert types.Results == Mapping[str, Mapping[str, float]]
    assert types.ResultsDict == dict[str, dict[str, float]]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (multitask.models._base.Batch, types.Batch),
        (multitask.data.Batch, types.BatchDict),
        (multitask.data._dataset.Batch, types.BatchDict),
        (multitask.training.trainer.Results, types.ResultsDict),
        (multitask.comparison.Results, types.Results),
        (multitask.analysis._transfer.Results, types.Results),
    ],
)
def test_old_paths_are_the_same_objects(old: object, new: object) -> None:
    assert old is new


def test_the_linear_run_keeps_its_results_as_the_built_form() -> None:
    assert multitask.analysis._linear_run.ResultsDict is types.ResultsDict


def test_types_imports_nothing_of_the_package() -> None:
    tree = ast.parse((SOURCE / "types.py").read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert {name.split(".")[0] for name in imported} <= {"__future__", "collections", "typing", "torch"}


def test_nothing_else_defines_them() -> None:
    """``Batch = ...`` or ``Results = ...`` outside `multitask.types` only re-binds a name from there."""
    for path in sorted(SOURCE.rglob("*.py")):
        if path.name == "types.py" and path.parent == SOURCE:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Assign | ast.AnnAssign) or node.value is None:
                continue
            targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
            for target in targets:
                if isinstance(target, ast.Name) and target.id in {"Batch", "BatchDict", "Results", "ResultsDict"}:
                    assert isinstance(node.value, ast.Name), f"{path}:{node.lineno} defines {target.id} again"
