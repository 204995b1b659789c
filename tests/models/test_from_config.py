"""Every architecture can be chosen in a config: built, trained by `multitask train`'s code path, re-evaluated."""

from __future__ import annotations

import csv
import random
from pathlib import Path
from typing import Any

import pytest
from torch import nn

from multitask.config import ARCHITECTURES, parse_config
from multitask.errors import ConfigError
from multitask.experiment import build_model, evaluate_run, run_experiment
from multitask.models import (
    PLE,
    CoupledNetworks,
    CrossStitch,
    DSelectK,
    HardSharing,
    MMoE,
    SharedPrivate,
    SoftSharing,
    TaskLoRA,
)
from multitask.tasks import Task

EXPECTED = {
    "hard_sharing": HardSharing,
    "mmoe": MMoE,
    "omoe": MMoE,
    "cgc": PLE,
    "ple": PLE,
    "dselect_k": DSelectK,
    "cross_stitch": CrossStitch,
    "soft_sharing": SoftSharing,
    "coupled": CoupledNetworks,
    "shared_private": SharedPrivate,
    "task_lora": TaskLoRA,
}


def raw_config(folder: Path, methods: list[str]) -> dict[str, Any]:
    rows = random.Random(0)
    with (folder / "train.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["a", "b", "c", "y1", "y2"])
        for _ in range(60):
            a, b = rows.gauss(0, 1), rows.gauss(0, 1)
            writer.writerow([a, b, rows.choice("uv"), int(a + b > 0), a - b])
    return {
        "data": {
            "type": "csv",
            "train": "train.csv",
            "numeric": ["a", "b"],
            "categorical": ["c"],
            "val_fraction": 0.25,
        },
        "tasks": [{"name": "y1", "kind": "binary"}, {"name": "y2", "kind": "regression"}],
        "model": {"encoder": {"hidden": [6]}, "num_experts": 3, "lam": 0.1},
        "training": {"epochs": 1, "batch_size": 16, "checkpoint_every": None},
        "compare": {"methods": methods},
    }


def test_every_architecture_builds_from_a_config(tmp_path: Path) -> None:
    # mtan reads images only: tests/data/test_images_config.py trains it from a config
    assert set(EXPECTED) | {"mtan"} == set(ARCHITECTURES)
    config = parse_config(raw_config(tmp_path, ["stl", *list(EXPECTED)[1:]]), base_dir=tmp_path)
    for name, cls in EXPECTED.items():
        tasks = [Task("y1", nn.Linear(6, 1), "binary"), Task("y2", nn.Linear(6, 1), "regression")]
        model = build_model(config, name, 4)(tasks)
        assert type(model) is cls
        if isinstance(model, PLE):
            assert len(model.levels) == (1 if name == "cgc" else 2)


def test_train_and_evaluate_a_run_with_architectures(tmp_path: Path) -> None:
    raw = raw_config(tmp_path, ["mtl", "mmoe", "ple"])
    raw["model"] = {"type": "cross_stitch", "encoder": {"hidden": [6]}, "num_experts": 3}
    config = parse_config(raw, base_dir=tmp_path)
    comparison = run_experiment(config, output=tmp_path / "run", progress=False)
    assert set(comparison.results) == {"mtl", "mmoe", "ple"}
    again = evaluate_run(tmp_path / "run", split="val")
    assert set(again.results) == {"mtl", "mmoe", "ple"}


def test_a_shared_private_run_from_a_config(tmp_path: Path) -> None:
    raw = raw_config(tmp_path, ["stl", "mtl"])
    raw["model"] = {"type": "shared_private", "encoder": {"hidden": [6]}, "private": {"hidden": [3]}}
    config = parse_config(raw, base_dir=tmp_path)
    comparison = run_experiment(config, output=tmp_path / "run", progress=False)
    assert set(comparison.results) == {"stl", "mtl"}
    again = evaluate_run(tmp_path / "run", split="val")
    assert set(again.results) == {"stl", "mtl"}


def test_a_method_that_is_not_trained_cannot_take_parameters(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"model\.lam is read only by coupled, soft_sharing"):
        parse_config(raw_config(tmp_path, ["stl", "mtl", "mmoe"]), base_dir=tmp_path)


def test_a_task_lora_run_trains_only_adapters_and_heads_and_evaluates_again(tmp_path: Path) -> None:
    raw = raw_config(tmp_path, ["stl", "mtl"])
    raw["model"] = {"type": "task_lora", "encoder": {"hidden": [6]}, "rank": 2, "scheme": "mtl_lora"}
    config = parse_config(raw, base_dir=tmp_path)
    tasks = [Task("y1", nn.Linear(6, 1), "binary"), Task("y2", nn.Linear(6, 1), "regression")]
    model = build_model(config, "task_lora", 4)(tasks)
    assert isinstance(model, TaskLoRA)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("shared_" in n or "transform" in n or "mixing" in n or "heads" in n for n in trainable)
    comparison = run_experiment(config, output=tmp_path / "run", progress=False)
    assert set(comparison.results) == {"stl", "mtl"}
    again = evaluate_run(tmp_path / "run", split="val")  # the saved adapters load back into a fresh model
    assert set(again.results) == {"stl", "mtl"} and all(v == v for v in again.results["mtl"]["y2"].values())
