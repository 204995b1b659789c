"""Hostile configs: every mutated config ends in one clear error line (exit 2) or a clean run with finite weights.

Seeded: the same cases every run. Three base configs (a CSV table, an image folder, multi-input text) are
mutated by replacing a value with a hostile one, deleting a key, adding an unknown key or replacing a section by
a scalar; each case runs ``multitask train`` in this process.
"""

from __future__ import annotations

import copy
import io
import math
import random
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from multitask.cli import main
from multitask.training.checkpoint import load_checkpoint

CASES_PER_BASE = 90
HOSTILE: list[Any] = [
    True, False, 0, -1, 1, 2**64, -(2**63), 1e308, -1e308, float("nan"), float("inf"), 0.5, "", "x", "a" * 5000,
    "\x00", "../nowhere/file.csv", "/dev/null", None, [], [1, 2], [-1], {}, {"a": 1}, "cuda:99", "meta", "true",
    "1e3", 10**9, [10**6, 10**6],
]  # fmt: skip


def csv_base(folder: Path) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    lines = ["a,b,c,y1,y2"]
    for _ in range(48):
        a, b = rng.normal(size=2)
        lines.append(f"{a:.4f},{b:.4f},{rng.choice(['u', 'v', 'w'])},{int(a > 0)},{a - b:.4f}")
    (folder / "train.csv").write_text("\n".join(lines) + "\n")
    return {
        "name": "fuzz-csv",
        "seed": 0,
        "data": {
            "type": "csv",
            "train": "train.csv",
            "numeric": ["a", "b"],
            "categorical": ["c"],
            "val_fraction": 0.25,
        },
        "tasks": [{"name": "y1", "kind": "binary", "metrics": ["auc"]}, {"name": "y2", "kind": "regression"}],
        "model": {"type": "hard_sharing", "encoder": {"type": "mlp", "hidden": [8]}},
        "strategy": {"weighting": "ew"},
        "training": {"epochs": 1, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.01}},
        "compare": {"methods": ["stl", "mtl"]},
        "analysis": {"report": False},
    }


def image_base(folder: Path) -> dict[str, Any]:
    (folder / "img").mkdir()
    rows = ["image,bright,level"]
    for k in range(24):
        pixels = np.full((8, 8, 3), 10 * k, np.uint8)
        Image.fromarray(pixels).save(folder / "img" / f"{k}.png")
        rows.append(f"img/{k}.png,{int(k > 11)},{k / 24:.3f}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return {
        "name": "fuzz-images",
        "data": {"type": "image_folder", "root": ".", "val_fraction": 0.2, "test_fraction": 0.2},
        "tasks": [
            {"name": "bright", "kind": "binary", "metrics": ["accuracy"]},
            {"name": "level", "kind": "regression"},
        ],
        "model": {"type": "hard_sharing", "encoder": {"type": "cnn", "channels": [4], "hidden": [8]}},
        "training": {"epochs": 1, "batch_size": 8},
        "compare": {"methods": ["mtl"]},
        "analysis": {"report": False},
    }


def text_base(folder: Path) -> dict[str, Any]:
    from test_config_multi_input import newsgroup_config, write_newsgroup

    raw = newsgroup_config(write_newsgroup(folder / "newsgroup", n=40))
    raw["training"]["epochs"] = 1
    raw["compare"] = {"methods": ["mtl"]}
    raw["analysis"] = {"report": False}
    return raw


BASES: dict[str, Callable[[Path], dict[str, Any]]] = {"csv": csv_base, "images": image_base, "text": text_base}


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value in a nested config (dict keys and list indices)."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def mutate(config: dict[str, Any], rng: random.Random) -> tuple[str, dict[str, Any]]:
    """One mutation of ``config``: a description and the mutated copy."""
    result = copy.deepcopy(config)
    path = rng.choice(_paths(result))
    parent: Any = result
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    operation = rng.choices(["replace", "delete", "unknown key", "scalar section"], weights=[6, 2, 1, 1])[0]
    if operation == "delete" and isinstance(parent, dict):
        del parent[last]
        return f"delete {'.'.join(map(str, path))}", result
    if operation == "unknown key" and isinstance(parent, dict):
        parent[f"{last}_typo"] = parent[last]
        return f"add {'.'.join(map(str, path))}_typo", result
    value = rng.choice(HOSTILE) if operation != "scalar section" else rng.choice([1, "x", True])
    parent[last] = value
    shown = repr(value) if len(repr(value)) < 40 else repr(value)[:37] + "..."
    return f"{'.'.join(map(str, path))} = {shown}", result


def cases() -> list[tuple[str, int]]:
    return [(base, number) for base in BASES for number in range(CASES_PER_BASE)]


@pytest.fixture(scope="module")
def no_plots() -> Any:
    import matplotlib

    matplotlib.use("Agg")


def run_case(base: str, number: int, tmp_path: Path) -> tuple[str, int, str, Path]:
    folder = tmp_path / "data"
    folder.mkdir()
    config = BASES[base](folder)
    description, mutated = mutate(config, random.Random(f"{base}-{number}"))
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(mutated, allow_unicode=True))
    output = tmp_path / "run"
    stderr, stdout = io.StringIO(), io.StringIO()
    with redirect_stderr(stderr), redirect_stdout(stdout):
        status = main(["train", str(path), "--output", str(output)])
    return description, status, stderr.getvalue(), output


def finite_models(output: Path) -> bool:
    for model in output.rglob("model.pt"):
        state = load_checkpoint(model)["model"]
        if not all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point()):
            return False
    return True


@pytest.mark.parametrize(("base", "number"), cases(), ids=[f"{b}-{n}" for b, n in cases()])
def test_a_mutated_config_fails_with_one_line_or_trains_finite_weights(
    base: str, number: int, tmp_path: Path, no_plots: None
) -> None:
    description, status, stderr, output = run_case(base, number, tmp_path)
    assert status in (0, 2), f"{description}: exit {status}"
    if status == 2:
        lines = [line for line in stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("multitask: error: "), f"{description}: {stderr[-2000:]}"
        assert len(lines[0]) < 300, f"{description}: {len(lines[0])} characters: {lines[0][:400]}"
    else:
        assert finite_models(output), f"{description}: a saved model holds non-finite values"
    assert not math.isnan(0.0)
