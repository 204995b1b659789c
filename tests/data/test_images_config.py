"""Image data in a config: MultiFashion from Fashion-MNIST IDX files, a cnn encoder, MTAN next to hard sharing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml
from test_mnist import write_idx

from multitask.cli import main
from multitask.config import load_config
from multitask.errors import ConfigError
from multitask.experiment import evaluate_run


def _fashion(folder: Path) -> Path:
    """Fashion-MNIST IDX files with 60 training and 30 test images: class k has a bright k-th column band."""
    rng = np.random.default_rng(0)
    folder.mkdir()
    for prefix, n in (("train", 60), ("t10k", 30)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 40, size=(n, 28, 28))
        for index, label in enumerate(labels):
            images[index, :, 2 * label : 2 * label + 3] = 255
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return folder


def _config(tmp_path: Path, **model: object) -> Path:
    config = {
        "name": "fashion",
        "data": {"type": "multi_mnist", "variant": "fashion", "root": str(_fashion(tmp_path / "fashion"))},
        "tasks": [{"name": side, "kind": "multiclass", "metrics": ["accuracy"]} for side in ("left", "right")],
        "model": {"type": "mtan", "encoder": {"type": "cnn", "channels": [4, 6], "hidden": [16]}, **model},
        "training": {"epochs": 2, "batch_size": 16},
        "compare": {"methods": ["stl", "mtl", "hard_sharing"]},
        "analysis": {"report": False},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_mtan_and_hard_sharing_train_on_images_from_a_config(tmp_path: Path) -> None:
    output = tmp_path / "run"
    assert main(["train", str(_config(tmp_path)), "--output", str(output)]) == 0
    results = (output / "results.csv").read_text()
    assert all(f"{method},left,accuracy" in results for method in ("stl", "mtl", "hard_sharing"))
    again = evaluate_run(output)  # the saved MTAN is rebuilt from the config (heads on its attended maps)
    saved = {
        line.split(",")[0]: float(line.split(",")[3]) for line in results.splitlines()[1:] if ",right,accuracy" in line
    }
    assert again.results["mtl"]["right"]["accuracy"] == pytest.approx(saved["mtl"])


@pytest.mark.parametrize(
    ("data", "model", "message"),
    [
        (None, {"type": "mmoe"}, "mmoe cannot read"),
        (None, {"type": "mtan", "encoder": {"type": "mlp", "hidden": [8]}}, "use type cnn"),
        ({"type": "census_income"}, {"type": "mtan", "encoder": {"type": "cnn"}}, "use type mlp"),
        ({"type": "census_income"}, {"type": "mtan", "encoder": {"type": "mlp"}}, "mtan attends over the feature maps"),
        ({"type": "multi_mnist", "root": "x"}, {"type": "mtan"}, "read only with variant: fashion"),
        (None, {"type": "mtan", "encoder": {"type": "cnn", "kernel": 4}}, "kernel must be odd"),
    ],
)
def test_image_settings_are_checked(
    tmp_path: Path, data: dict[str, object] | None, model: dict[str, object], message: str
) -> None:
    path = _config(tmp_path)
    config = yaml.safe_load(path.read_text())
    config["model"] = {"encoder": config["model"]["encoder"]} | model
    config["compare"] = {"methods": ["stl", "mtl"]}
    if data is not None:
        config["data"] = data
        config["tasks"] = [{"name": "income", "kind": "binary"}]
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=message):
        load_config(path)
