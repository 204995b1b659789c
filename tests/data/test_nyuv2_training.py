"""NYUv2's on-disk layout through `load_nyuv2` -> `make_tasks` -> MTAN -> `Trainer.fit`/`evaluate`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from test_benchmarks import write_nyuv2
from torch import nn

from multitask import Trainer
from multitask.data import load_nyuv2
from multitask.metrics import ANGLE_BIN_DEGREES
from multitask.models import MTAN


def test_nyuv2_tasks_train_and_evaluate_with_the_literature_metrics(tmp_path: Path) -> None:
    write_nyuv2(tmp_path, "train", 12)  # images 4x6, labels -1..12 (-1 unlabelled), zero depth/normal = missing
    write_nyuv2(tmp_path, "val", 5)
    data = load_nyuv2(tmp_path, val_fraction=0.25, seed=0)
    tasks = data.make_tasks(lambda info: nn.Conv2d(8, info.num_outputs, 1))
    assert [t.name for t in tasks] == ["segmentation", "depth", "normal"] and all(t.dense for t in tasks)
    torch.manual_seed(0)
    blocks = [
        nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()),
        nn.Sequential(nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()),
    ]
    model = MTAN(blocks, tasks, in_shape=data.sample_shapes()["x"])
    trainer = Trainer(model, tasks, max_epochs=2, batch_size=4, eval_batch_size=2, progress=False, device="cpu")
    history = trainer.fit(data.dataset("train"), data.dataset("val"))
    assert np.isfinite([history[-1][f"val/{t}/loss"] for t in ("segmentation", "depth", "normal")]).all()
    result = trainer.evaluate(data.dataset("test"))
    assert set(result["segmentation"]) == {"loss", "miou", "pixel_accuracy"}
    assert set(result["depth"]) == {"loss", "abs_err", "rel_err"}
    assert set(result["normal"]) == {"loss", "mean_angle", "median_angle", "within_11.25", "within_22.5", "within_30"}

    # the same numbers computed directly from the predictions and the stored .npy files
    predictions = trainer.predict(data.dataset("test"))
    root = tmp_path / "val"
    label = np.stack([np.load(root / "label" / f"{i}.npy") for i in range(5)])
    depth = np.stack([np.load(root / "depth" / f"{i}.npy")[..., 0] for i in range(5)])
    normal = np.stack([np.load(root / "normal" / f"{i}.npy") for i in range(5)])

    predicted = predictions["segmentation"].argmax(dim=1).numpy()
    keep = label >= 0
    ious = [
        np.sum((predicted == c) & (label == c) & keep) / union
        for c in range(13)
        if (union := np.sum(((predicted == c) | (label == c)) & keep))
    ]
    assert result["segmentation"]["miou"] == pytest.approx(np.mean(ious), rel=1e-9)
    assert result["segmentation"]["pixel_accuracy"] == pytest.approx(np.mean(predicted[keep] == label[keep]), rel=1e-9)

    measured = depth != 0
    error = np.abs(predictions["depth"][:, 0].double().numpy() - depth)[measured]
    assert result["depth"]["abs_err"] == pytest.approx(error.mean(), rel=1e-6)
    assert result["depth"]["rel_err"] == pytest.approx((error / depth[measured]).mean(), rel=1e-6)

    estimate = np.moveaxis(predictions["normal"].double().numpy(), 1, -1)  # unit vectors (the cosine loss)
    valid = np.abs(normal).sum(axis=-1) != 0
    truth = normal / np.linalg.norm(normal, axis=-1, keepdims=True).clip(1e-12)  # these fixtures are not unit length
    angles = np.degrees(np.arccos(np.clip((estimate * truth).sum(axis=-1)[valid], -1, 1)))
    assert result["normal"]["mean_angle"] == pytest.approx(angles.mean(), rel=1e-5)
    assert result["normal"]["median_angle"] == pytest.approx(np.median(angles), abs=ANGLE_BIN_DEGREES / 2 + 1e-6)
    assert result["normal"]["within_30"] == pytest.approx((angles < 30).mean())
    assert result["normal"]["loss"] == pytest.approx(1 - np.cos(np.radians(angles)).mean(), rel=1e-4)
