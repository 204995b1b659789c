"""Dense tasks from a config: NYUv2's segmentation, depth and normals with MTAN, hard sharing and single-task models."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_benchmarks import write_nyuv2

from multitask.cli import main
from multitask.config import load_config
from multitask.errors import ConfigError
from multitask.experiment import evaluate_run

DENSE_TASKS = [
    {"name": "segmentation", "kind": "multiclass", "dense": True},
    {"name": "depth", "kind": "regression", "dense": True},
    {"name": "normal", "kind": "regression", "dense": True, "head": {"hidden": [4]}},
]


def _config(tmp_path: Path, **changes: Any) -> Path:
    write_nyuv2(tmp_path / "nyuv2", "train", 12)  # 4x6 images; labels -1..12; zero depth/normal = missing
    write_nyuv2(tmp_path / "nyuv2", "val", 4)
    config = {
        "data": {"type": "nyuv2", "root": "nyuv2", "val_fraction": 0.25},
        "tasks": DENSE_TASKS,
        "model": {"type": "mtan", "encoder": {"type": "cnn", "channels": [8], "readout": "none"}},
        "training": {"epochs": 2, "batch_size": 4},
        "compare": {"methods": ["stl", "mtl", "hard_sharing"]},
        "analysis": {"report": False},
    } | changes
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_dense_tasks_train_and_evaluate_from_a_config(tmp_path: Path) -> None:
    output = tmp_path / "run"
    assert main(["train", str(_config(tmp_path)), "--output", str(output)]) == 0
    with (output / "results.csv").open() as handle:
        rows = {(r["method"], r["task"], r["metric"]): float(r["value"]) for r in csv.DictReader(handle)}
    for method in ("stl", "mtl", "hard_sharing"):  # the literature's metrics of each dense task
        assert 0 <= rows[(method, "segmentation", "miou")] <= 1
        assert rows[(method, "depth", "abs_err")] > 0
        assert 0 <= rows[(method, "normal", "within_30")] <= 1  # NYUv2's suggested metrics, with the cosine loss
    again = evaluate_run(output)
    assert again.results["mtl"]["normal"]["mean_angle"] == pytest.approx(rows[("mtl", "normal", "mean_angle")])
    assert again.results["stl"]["segmentation"]["miou"] == pytest.approx(rows[("stl", "segmentation", "miou")])


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"tasks": [{"name": "depth", "kind": "regression"}]}, "per-pixel: set dense: true"),
        ({"tasks": [{"name": "depth", "kind": "multiclass", "dense": True}]}, "depth of nyuv2 is regression"),
        ({"model": {"encoder": {"type": "cnn"}}}, "use type cnn with readout: none"),
        ({"tasks": [{"name": "depth", "kind": "regression", "dense": True, "metrics": ["mae"]}]}, "dense regression"),
        ({"tasks": [{"name": "depth", "kind": "regression", "loss": "cosine"}]}, "unknown loss 'cosine'"),
    ],
)
def test_dense_settings_are_checked(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(_config(tmp_path, **changes))


def test_shared_private_is_refused_on_feature_maps(tmp_path: Path) -> None:
    path = _config(tmp_path, compare={"methods": ["stl", "shared_private"]})
    with pytest.raises(ConfigError, match="shared_private joins shared and private feature vectors"):
        load_config(path)
