"""`multitask train --resume` after a SIGKILL mid-epoch, on images decoded and randomly augmented in 2 workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from _killing import kill_after_step
from multitask.training.checkpoint import load_checkpoint

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
IMAGES, SIZE = 200, 24
STEPS_PER_EPOCH = 18  # 140 training images (70 %) in batches of 8


def _config(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    (root / "img").mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = []
    for k in range(IMAGES):
        pixels = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / "img" / f"{k:03d}.png")
        rows.append(f"img/{k:03d}.png,{int(pixels[:, :12].mean() > pixels[:, 12:].mean())},{pixels.mean() / 255:.5f}")
    (root / "labels.csv").write_text("image,left,level\n" + "\n".join(rows) + "\n")
    config = {
        "name": "resume-images",
        "data": {
            "type": "image_folder",
            "root": str(root),
            "val_fraction": 0.1,
            "test_fraction": 0.2,
            "transform": {"hflip": True, "crop_padding": 2},
        },
        "tasks": [{"name": "left", "kind": "binary"}, {"name": "level", "kind": "regression"}],
        "model": {
            "type": "hard_sharing",
            "encoder": {"type": "cnn", "channels": [8, 8], "hidden": [16], "dropout": 0.1},
        },
        "training": {"epochs": 3, "batch_size": 8, "checkpoint_every": 1, "num_workers": 2},
        "compare": {"methods": ["mtl"]},
        "analysis": {"report": False},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _train(config: Path, output: Path, *extra: str) -> list[str]:
    return [str(Path(sys.executable).with_name("multitask")), "train", str(config), "--output", str(output), *extra]


def test_sigkill_then_multitask_train_resume_gives_the_uninterrupted_weights(tmp_path: Path) -> None:
    config = _config(tmp_path)
    reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    environment = {**os.environ, "CI": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(_train(config, reference_dir), capture_output=True, text=True, env=environment, check=False)
    assert done.returncode == 0, done.stderr
    checkpoints = killed_dir / "mtl" / "checkpoints"
    killed_at = kill_after_step(_train(config, killed_dir), checkpoints, STEPS_PER_EPOCH + 4, env=environment)
    assert not (killed_dir / "mtl" / "model.pt").exists() and killed_at < 3 * STEPS_PER_EPOCH
    resumed = subprocess.run(
        _train(config, killed_dir, "--resume"), capture_output=True, text=True, env=environment, check=False
    )
    assert resumed.returncode == 0, resumed.stderr
    expected = load_checkpoint(reference_dir / "mtl" / "model.pt")["model"]
    actual = load_checkpoint(killed_dir / "mtl" / "model.pt")["model"]
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), f"{name} differs after resume (killed at step {killed_at})"


def test_the_config_passes_workers_and_the_training_only_augmentation_to_the_trainer(tmp_path: Path) -> None:
    from multitask.config import load_config
    from multitask.data import ImageAugmentation
    from multitask.experiment import load_data, trainer_options

    config = load_config(_config(tmp_path))
    loading = trainer_options(config).loading
    assert loading.num_workers == 2
    assert isinstance(loading.train_transform, ImageAugmentation) and loading.train_transform.crop_padding == 2
    data = load_data(config)
    from multitask.data import SingleInputLoader

    train = data.dataset("train")
    plain = next(SingleInputLoader(train, ["left"], 140, shuffle=False).epoch(0, seed=0))[0][0]["x"]
    augmented = next(
        SingleInputLoader(train, ["left"], 140, shuffle=False, transform=loading.train_transform).epoch(0, seed=0)
    )[0][0]["x"]
    assert plain.shape == augmented.shape and not torch.equal(plain, augmented)
