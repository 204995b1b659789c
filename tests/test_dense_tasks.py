"""Dense (per-pixel) tasks: shapes and errors, losses with missing pixels, streaming metrics, Trainer runs."""

from __future__ import annotations

import math
import multiprocessing
import os
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from multitask import Task, Trainer
from multitask.data import ArrayDataset
from multitask.data._mtdata import MultiTaskData, TaskInfo
from multitask.errors import ConfigError, ShapeError, UnknownNameError
from multitask.metrics import ANGLE_BIN_DEGREES, BUILTIN_DENSE_METRICS, DenseMetric, Metric, mean_iou
from multitask.models import MTAN, HardSharing
from multitask.training.distributed import Distributed

NAN = float("nan")
HALF_BIN = ANGLE_BIN_DEGREES / 2 + 1e-9  # the histogram median is within half a bin of the exact one


def segmentation(**kwargs: object) -> Task:
    return Task("seg", nn.Identity(), "multiclass", dense=True, **kwargs)  # type: ignore[arg-type]


def depth() -> Task:
    return Task("depth", nn.Identity(), "regression", dense=True)


def normal() -> Task:
    return Task("normal", nn.Identity(), "regression", loss="cosine", dense=True)


# ---------------------------------------------------------------------- construction, shapes, errors
def test_dense_defaults_follow_the_nyuv2_protocol() -> None:
    assert list(segmentation().metric_fns) == ["miou", "pixel_accuracy"]
    assert list(depth().metric_fns) == ["abs_err", "rel_err"]
    assert list(normal().metric_fns) == ["mean_angle", "median_angle", "within_11.25", "within_22.5", "within_30"]
    directions = {name: m.higher_is_better for kind in BUILTIN_DENSE_METRICS.values() for name, m in kind.items()}
    assert directions == {
        "miou": True,
        "pixel_accuracy": True,
        "abs_err": False,
        "rel_err": False,
        "mean_angle": False,
        "median_angle": False,
        "within_11.25": True,
        "within_22.5": True,
        "within_30": True,
    }


def test_bad_dense_configurations_say_what_to_do() -> None:
    with pytest.raises(ConfigError, match="dense tasks are 'multiclass' or 'regression'"):
        Task("mask", nn.Identity(), "binary", dense=True)
    with pytest.raises(UnknownNameError, match=r"cosine is for per-pixel vectors: Task\(\.\.\., dense=True\)"):
        Task("n", nn.Identity(), "regression", loss="cosine")
    with pytest.raises(UnknownNameError, match=r"'miou'.*per-pixel metric: pass Task\(\.\.\., dense=True\)"):
        Task("s", nn.Identity(), "multiclass", metrics=["miou"])
    with pytest.raises(UnknownNameError, match=r"'f1'.*a per-sample metric: dense tasks need per-pixel ones"):
        segmentation(metrics=["f1"])
    with pytest.raises(ConfigError, match=r"must be a multitask\.metrics\.DenseMetric"):
        segmentation(metrics={"acc": Metric(lambda p, t: 0.0, True)})
    with pytest.raises(ConfigError, match="DenseMetric is for Task"):
        Task("s", nn.Identity(), "multiclass", metrics={"miou": BUILTIN_DENSE_METRICS["multiclass"]["miou"]})


def test_shape_errors_name_the_task_and_the_expected_shape() -> None:
    labels = {"seg": torch.zeros(2, 4, 5, dtype=torch.long)}
    with pytest.raises(ShapeError, match=r"task 'seg' is dense.*\(2, 3, 4, 4\).*\[N, num_classes, 4, 5\]"):
        segmentation().compute_loss(torch.zeros(2, 3, 4, 4), labels)  # wrong spatial size
    with pytest.raises(ShapeError, match=r"task 'seg' is dense: head output has shape \(2, 3\)"):
        segmentation().compute_loss(torch.zeros(2, 3), labels)  # a per-sample head on a dense target
    with pytest.raises(ShapeError, match=r"task 'seg'.*outputs 3 classes.*from 5 to 5.*ignore_index=-100"):
        segmentation().compute_loss(torch.zeros(2, 3, 4, 5), {"seg": torch.full((2, 4, 5), 5)})  # too few channels
    normals = {"normal": torch.zeros(2, 3, 4, 5)}
    with pytest.raises(ShapeError, match=r"task 'normal' is dense.*\(2, 1, 4, 5\).*\(2, 3, 4, 5\)"):
        normal().compute_loss(torch.zeros(2, 1, 4, 5), normals)  # wrong channel count
    with pytest.raises(ShapeError, match=r"task 'depth' is dense.*per-pixel target \[N, C, H, W\]"):
        depth().compute_loss(torch.zeros(2, 4), {"depth": torch.zeros(2, 4)})
    with pytest.raises(ShapeError, match=r"task 'normal'.*cosine loss needs vectors.*C >= 2"):
        normal().compute_loss(torch.zeros(2, 1, 4, 5), {"normal": torch.zeros(2, 1, 4, 5)})
    with pytest.raises(ShapeError, match=r"task 'seg'.*per pixel: pass Task\(\.\.\., dense=True\)"):
        Task("seg", nn.Identity(), "multiclass").compute_loss(torch.zeros(2, 3, 4, 5), labels)
    scalar = Task("d", nn.Identity(), "regression", loss=lambda p, t: (p - t).abs().mean(), dense=True)
    with pytest.raises(ShapeError, match=r"one value per pixel \(2, 4, 5\) or per entry \(2, 1, 4, 5\)"):
        scalar.compute_loss(torch.zeros(2, 1, 4, 5), {"d": torch.zeros(2, 1, 4, 5)})
    masked = Task("d", nn.Identity(), "regression", mask_key="m", dense=True)
    with pytest.raises(ShapeError, match=r"mask column 'm' has shape \(2, 4\)"):
        masked.compute_loss(torch.zeros(2, 1, 4, 5), {"d": torch.zeros(2, 1, 4, 5), "m": torch.ones(2, 4)})


def test_make_task_builds_dense_tasks_and_make_tasks_refuses_linear_heads() -> None:
    infos = {
        "segmentation": TaskInfo("segmentation", "multiclass", 13, metrics=("miou", "pixel_accuracy"), dense=True),
        "depth": TaskInfo("depth", "regression", 1, metrics=("abs_err", "rel_err"), dense=True),
        "normal": TaskInfo("normal", "regression", 3, metrics=("mean_angle", "median_angle"), dense=True),
    }
    data = MultiTaskData(ArrayDataset(x=torch.zeros(1, 3, 2, 2)), None, None, infos)
    seg, dep, nor = data.make_tasks(lambda info: nn.Conv2d(8, info.num_outputs, 1))
    assert all(task.dense for task in (seg, dep, nor)) and seg.ignore_index == -100
    assert (seg.loss, dep.loss, nor.loss) == (None, None, "cosine")  # cross-entropy, L1 (defaults), MTAN's normal loss
    assert list(nor.metric_fns) == ["mean_angle", "median_angle"]
    with pytest.raises(ConfigError, match=r"'segmentation' has per-pixel targets.*nn.Conv2d\(channels, 13, 1\)"):
        data.make_tasks(8)


# ---------------------------------------------------------------------- losses against hand computations
def test_cross_entropy_is_the_mean_over_labelled_pixels() -> None:
    logits = torch.tensor([[[[0.0, 1.0, 5.0]], [[0.0, 0.0, -5.0]]]], requires_grad=True)  # [1, 2 classes, 1, 3]
    labels = torch.tensor([[[0, 1, -100]]])
    loss, count = segmentation().compute_loss(logits, {"seg": labels})
    # pixel 0: logits (0, 0), label 0: log 2; pixel 1: logits (1, 0), label 1: log(1 + e); pixel 2 unlabelled
    assert count == 2 and float(loss.detach()) == pytest.approx((math.log(2) + math.log(1 + math.e)) / 2, rel=1e-6)
    loss.backward()  # type: ignore[no-untyped-call]
    assert logits.grad is not None and float(logits.grad[..., 2].abs().sum()) == 0.0


def test_l1_and_mse_average_over_valid_entries() -> None:
    prediction = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]], requires_grad=True)  # [1, 1, 2, 2]
    target = torch.tensor([[[[1.5, NAN], [2.0, 4.0]]]])
    loss, count = depth().compute_loss(prediction, {"depth": target})
    assert count == 3 and float(loss.detach()) == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    loss.backward()  # type: ignore[no-untyped-call]  # the NaN pixel gets no gradient, and no NaN reaches any other
    assert prediction.grad is not None and torch.isfinite(prediction.grad).all() and prediction.grad[0, 0, 0, 1] == 0
    mse = Task("depth", nn.Identity(), "regression", loss="mse", dense=True)
    assert float(mse.compute_loss(prediction, {"depth": target})[0].detach()) == pytest.approx((0.25 + 1.0) / 3)


def test_cosine_loss_is_one_minus_the_mean_cosine_over_valid_pixels() -> None:
    # pixels: (1, 0, 0) vs (1, 0, 0): cos 1; (0, 2, 0) vs (1, 0, 0): cos 0; (1, 1, 0) vs (3, 0, 0): cos 1/√2;
    # the fourth pixel's target has a NaN channel: not valid
    prediction = torch.tensor([[1.0, 0.0, 1.0, 5.0], [0.0, 2.0, 1.0, 5.0], [0.0, 0.0, 0.0, 5.0]]).reshape(1, 3, 1, 4)
    target = torch.tensor([[1.0, 1.0, 3.0, NAN], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]).reshape(1, 3, 1, 4)
    loss, count = normal().compute_loss(prediction, {"normal": target})
    assert count == 3 and float(loss) == pytest.approx(((1 - 1) + (1 - 0) + (1 - 1 / math.sqrt(2))) / 3, rel=1e-6)


def test_mask_column_per_pixel_or_per_image_and_a_batch_without_labels() -> None:
    prediction = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]], [[[0.0, 0.0], [0.0, 0.0]]]])  # [2, 1, 2, 2]
    target = torch.zeros(2, 1, 2, 2)
    task = Task("depth", nn.Identity(), "regression", mask_key="m", dense=True)
    pixels = torch.tensor([[[True, False], [False, True]], [[True, True], [True, True]]])
    loss, count = task.compute_loss(prediction, {"depth": target, "m": pixels})
    assert count == 6 and float(loss) == pytest.approx((1 + 4) / 6)
    images = torch.tensor([True, False])
    loss, count = task.compute_loss(prediction, {"depth": target, "m": images})
    assert count == 4 and float(loss) == pytest.approx(10 / 4)
    loss, count = task.compute_loss(prediction, {"depth": target, "m": torch.zeros(2, dtype=torch.bool)})
    assert count == 0 and float(loss) == 0.0


# ---------------------------------------------------------------------- streaming metrics = direct metrics
def _segmentation_batches(seed: int = 0) -> list[tuple[Tensor, Tensor]]:
    """Three batches of 4-class logits; class 3 never predicted nor labelled; some pixels unlabelled."""
    generator = torch.Generator().manual_seed(seed)
    batches = []
    for n in (2, 3, 1):
        logits = torch.randn(n, 4, 5, 6, generator=generator)
        logits[:, 3] = -10.0
        labels = torch.randint(0, 3, (n, 5, 6), generator=generator)
        labels[torch.rand(n, 5, 6, generator=generator) < 0.2] = -100
        batches.append((logits, labels))
    return batches


def _direct_segmentation(logits: Tensor, labels: Tensor) -> dict[str, float]:
    predicted, actual = logits.argmax(1).numpy().ravel(), labels.numpy().ravel()
    keep = actual != -100
    predicted, actual = predicted[keep], actual[keep]
    ious = []
    for c in range(logits.shape[1]):
        union = np.sum((predicted == c) | (actual == c))
        if union:
            ious.append(np.sum((predicted == c) & (actual == c)) / union)
    loss = F.cross_entropy(logits.double(), labels, ignore_index=-100)
    return {"loss": float(loss), "miou": float(np.mean(ious)), "pixel_accuracy": float(np.mean(predicted == actual))}


def test_streaming_segmentation_metrics_equal_the_direct_ones() -> None:
    task = segmentation()
    batches = _segmentation_batches()
    parts = [task.batch_statistics(logits, labels, task.labels({"seg": labels})[1]) for logits, labels in batches]
    streamed = task.evaluate_statistics(parts)
    logits, labels = torch.cat([b[0] for b in batches]), torch.cat([b[1] for b in batches])
    direct = _direct_segmentation(logits, labels)
    assert streamed.metrics == pytest.approx({k: v for k, v in direct.items() if k != "loss"}, rel=1e-12)
    assert streamed.loss == pytest.approx(direct["loss"], rel=1e-6)
    assert streamed.num_labelled == int((labels != -100).sum())
    assert task.evaluate(logits, labels, labels != -100).metrics == pytest.approx(streamed.metrics, rel=1e-12)
    # a class absent from labels and predictions does not count: three classes averaged, not four
    confusion = parts[0]["statistic0"] + parts[1]["statistic0"] + parts[2]["statistic0"]
    assert confusion[3].sum() == 0 and confusion[:, 3].sum() == 0
    iou = confusion.diagonal()[:3] / (confusion.sum(0) + confusion.sum(1) - confusion.diagonal())[:3]
    assert mean_iou(confusion) == pytest.approx(float(iou.mean()))


def test_streaming_depth_and_normal_metrics_equal_the_direct_ones() -> None:
    generator = torch.Generator().manual_seed(1)
    depth_parts, normal_parts, depths, normals = [], [], [], []
    for n in (3, 1, 2):
        truth = torch.rand(n, 1, 4, 7, generator=generator) * 4 + 0.5
        truth[torch.rand(n, 1, 4, 7, generator=generator) < 0.25] = NAN
        estimate = truth.nan_to_num(2.0) + torch.randn(n, 1, 4, 7, generator=generator) * 0.3
        depth_parts.append(depth().batch_statistics(estimate, truth, ~torch.isnan(truth)))
        depths.append((estimate, truth))
        vectors = F.normalize(torch.randn(n, 3, 4, 7, generator=generator), dim=1)
        guess = vectors + torch.randn(n, 3, 4, 7, generator=generator) * 0.4
        vectors[:, :, 0, :2] = NAN  # no measurement
        normal_parts.append(normal().batch_statistics(guess, vectors, ~torch.isnan(vectors)))
        normals.append((guess, vectors))
    depth_estimate, depth_truth = (torch.cat(t).double().numpy() for t in zip(*depths, strict=True))
    measured = ~np.isnan(depth_truth)
    error = np.abs(depth_estimate - depth_truth)[measured]
    streamed = depth().evaluate_statistics(depth_parts)
    assert streamed.metrics == pytest.approx(
        {"abs_err": error.mean(), "rel_err": (error / depth_truth[measured]).mean()}, rel=1e-12
    )
    assert streamed.loss == pytest.approx(error.mean(), rel=1e-6) and streamed.num_labelled == int(measured.sum())

    normal_estimate, normal_truth = (torch.cat(t).double().numpy() for t in zip(*normals, strict=True))
    valid = ~np.isnan(normal_truth).any(axis=1)
    cosine = (normal_estimate * normal_truth).sum(axis=1)
    cosine /= np.linalg.norm(normal_estimate, axis=1) * np.linalg.norm(normal_truth, axis=1)
    angles = np.degrees(np.arccos(np.clip(cosine[valid], -1, 1)))
    streamed = normal().evaluate_statistics(normal_parts)
    assert streamed.num_labelled == int(valid.sum())
    assert streamed.metrics["mean_angle"] == pytest.approx(angles.mean(), rel=1e-12)
    assert streamed.metrics["median_angle"] == pytest.approx(np.median(angles), abs=HALF_BIN)
    for threshold in (11.25, 22.5, 30):
        assert streamed.metrics[f"within_{threshold:g}"] == pytest.approx(np.mean(angles < threshold), rel=1e-12)
    assert streamed.loss == pytest.approx(1 - cosine[valid].mean(), rel=1e-5)


def test_median_from_the_histogram_and_metrics_without_labels() -> None:
    metric = BUILTIN_DENSE_METRICS["regression"]["median_angle"]
    vectors = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 3.0]]).T.reshape(
        1, 2, 1, 4
    )  # 0°, 90°, 45°, 71.57°
    reference = torch.tensor([1.0, 0.0]).reshape(1, 2, 1, 1).expand(1, 2, 1, 4)
    mask = torch.ones(1, 2, 1, 4, dtype=torch.bool)
    expected = (45 + math.degrees(math.atan(3))) / 2  # even count: the mean of the two middle angles
    assert metric(vectors, reference, mask) == pytest.approx(expected, abs=HALF_BIN)
    assert metric(vectors[..., :3], reference[..., :3], mask[..., :3]) == pytest.approx(45, abs=HALF_BIN)
    nothing = torch.zeros(1, 3, 1, 4, dtype=torch.bool)
    empty = normal().evaluate(torch.ones(1, 3, 1, 4), torch.full((1, 3, 1, 4), NAN), nothing)
    assert empty.num_labelled == 0 and all(math.isnan(v) for v in empty.metrics.values()) and math.isnan(empty.loss)
    assert isinstance(metric, DenseMetric)


# ---------------------------------------------------------------------- synthetic scenes and Trainer runs
CLASS_DEPTH = torch.tensor([3.0, 1.0, 2.0])  # background, class 1, class 2
CLASS_NORMAL = F.normalize(torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 1.0], [0.0, -1.0, 1.0]]), dim=1)


def make_scenes(n: int, seed: int, size: int = 16) -> ArrayDataset:
    """Images of one to three random rectangles on a background, with three dense tasks.

    Each pixel has a class (0 background, 1 or 2 for a rectangle's shape class), shown as a noisy colour
    in ``x [3, H, W]``; its depth and its surface normal are the class's (a plane per class: its
    distance and orientation). Missing labels as in NYUv2: 10% of the pixels are unlabelled for
    segmentation (-100) and 10% have no depth or normal measurement (NaN).
    """
    generator = torch.Generator().manual_seed(seed)
    classes = torch.zeros(n, size, size, dtype=torch.long)
    for i in range(n):
        for _ in range(int(torch.randint(1, 4, (1,), generator=generator))):
            top, left = (int(v) for v in torch.randint(0, size - 4, (2,), generator=generator))
            height, width = (int(v) for v in torch.randint(5, 12, (2,), generator=generator))
            classes[i, top : top + height, left : left + width] = int(torch.randint(1, 3, (1,), generator=generator))
    colours = torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 0.5], [0.0, 1.0, 0.5]])
    x = colours[classes].permute(0, 3, 1, 2) + 0.3 * torch.randn(n, 3, size, size, generator=generator)
    depth_map = CLASS_DEPTH[classes].unsqueeze(1)
    normals = CLASS_NORMAL[classes].permute(0, 3, 1, 2).contiguous()
    labels = classes.clone()
    labels[torch.rand(n, size, size, generator=generator) < 0.1] = -100
    unmeasured = torch.rand(n, 1, size, size, generator=generator) < 0.1
    depth_map[unmeasured] = NAN
    normals[unmeasured.expand(n, 3, size, size)] = NAN
    return ArrayDataset(x=x, seg=labels, depth=depth_map, normal=normals)


def dense_tasks(channels: int) -> list[Task]:
    return [
        Task("seg", nn.Conv2d(channels, 3, 1), "multiclass", dense=True),
        Task("depth", nn.Conv2d(channels, 1, 1), "regression", dense=True),
        Task("normal", nn.Conv2d(channels, 3, 1), "regression", loss="cosine", dense=True),
    ]


def conv_model(seed: int = 0) -> tuple[HardSharing, list[Task]]:
    """Hard sharing with a two-layer convolutional encoder and 1x1-convolution heads."""
    torch.manual_seed(seed)
    tasks = dense_tasks(16)
    encoder = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU())
    return HardSharing(encoder, tasks), tasks


def mtan_model(seed: int = 0) -> tuple[MTAN, list[Task]]:
    """MTAN on a small encoder-decoder backbone (16x16 -> 8x8 -> 16x16) with 1x1-convolution heads."""
    torch.manual_seed(seed)
    tasks = dense_tasks(16)
    blocks = [
        nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU()),
        nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2)),
        nn.Sequential(nn.Upsample(scale_factor=2), nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU()),
    ]
    return MTAN(blocks, tasks, in_shape=(3, 16, 16)), tasks


def with_image_task(data: ArrayDataset, tasks: list[Task]) -> tuple[ArrayDataset, list[Task]]:
    """Adds a per-sample task next to the dense ones: does the image show a class-2 shape?"""
    columns = dict(data[slice(0, len(data))])
    columns["has_two"] = (columns["seg"] == 2).flatten(1).any(dim=1).float()
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 1))
    return ArrayDataset(**columns), [*tasks, Task("has_two", head, "binary")]


def test_trainer_evaluates_dense_tasks_batch_by_batch_with_the_numbers_of_one_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    torch.manual_seed(0)
    tasks = dense_tasks(16)
    data, tasks = with_image_task(make_scenes(23, seed=3), tasks)
    encoder = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU())
    model = HardSharing(encoder, tasks)
    one_batch = Trainer(model, tasks, eval_batch_size=64, progress=False, device="cpu").evaluate(data)
    calls: list[int] = []
    original = Task.batch_statistics

    def spy(self: Task, prediction: Tensor, target: Tensor, mask: Tensor) -> dict[str, Tensor]:
        calls.append(prediction.shape[0])
        return original(self, prediction, target, mask)

    monkeypatch.setattr(Task, "batch_statistics", spy)
    small = Trainer(model, tasks, eval_batch_size=5, progress=False, device="cpu").evaluate(data)
    assert calls == [5] * 12 + [3] * 3  # each batch summarised for each dense task: no split held whole
    assert small.keys() == one_batch.keys() == {"seg", "depth", "normal", "has_two"}
    for task, metrics in one_batch.items():
        assert small[task] == pytest.approx(metrics, rel=1e-6, abs=1e-9), task
    # the numbers are the direct ones on the whole split's predictions
    predictions = Trainer(model, tasks, progress=False, device="cpu").predict(data)
    batch = data[slice(0, len(data))]
    assert predictions["seg"].shape == (23, 3, 16, 16) and torch.allclose(predictions["seg"].sum(1), torch.ones(1))
    assert torch.allclose(predictions["normal"].norm(dim=1), torch.ones(1))  # cosine loss: unit normals
    direct = _direct_segmentation(predictions["seg"].log(), batch["seg"])
    assert one_batch["seg"]["miou"] == pytest.approx(direct["miou"], rel=1e-9)
    assert one_batch["seg"]["loss"] == pytest.approx(direct["loss"], rel=1e-5)
    valid = ~torch.isnan(batch["depth"])
    abs_err = (predictions["depth"] - batch["depth"])[valid].abs().double().mean()
    assert one_batch["depth"]["abs_err"] == pytest.approx(float(abs_err), rel=1e-6)


def test_conv_net_learns_three_dense_tasks_and_logs_them_with_the_right_directions() -> None:
    """HardSharing, a two-layer conv encoder, 10 epochs on 256 scenes (about 1 s).

    Measured on the test split (64 scenes) for seeds 0-5: mIoU 0.984-0.992, depth abs_err 0.076-0.131,
    mean angle 3.2-6.7°. The best constant predictions (background; depth 3; normal (0, 0, 1)) reach
    mIoU 0.22, abs_err 0.45-0.54 and 14-16° on the test scenes of seeds 0-4.
    """
    model, tasks = conv_model(seed=0)
    untrained = Trainer(model, tasks, progress=False, device="cpu").evaluate(make_scenes(64, seed=101))
    baseline = {t: {m: v for m, v in metrics.items() if m != "loss"} for t, metrics in untrained.items()}
    trainer = Trainer(
        model, tasks, max_epochs=10, batch_size=16, lr=1e-2, baseline=baseline, progress=False, seed=0, device="cpu"
    )
    history = trainer.fit(make_scenes(256, seed=0), make_scenes(64, seed=101))
    result = trainer.evaluate(make_scenes(64, seed=100))
    assert result["seg"]["miou"] > 0.95 and result["seg"]["pixel_accuracy"] > 0.97
    assert result["depth"]["abs_err"] < 0.2 and result["depth"]["rel_err"] < 0.1
    assert result["normal"]["mean_angle"] < 9 and result["normal"]["within_30"] > 0.9
    # Δm% against the untrained model is positive only if every direction is right (errors and angles fall)
    assert history[-1]["val/delta_m"] > 50
    assert {"val/seg/miou", "val/depth/rel_err", "val/normal/within_11.25", "train/normal/loss"} <= history[-1].keys()


@pytest.mark.slow
def test_mtan_learns_three_dense_tasks() -> None:
    """MTAN, 10 epochs on 256 scenes, seeds 0 and 1 (about 5 s each).

    Measured for seeds 0-3: mIoU 0.965-0.984, depth abs_err 0.115-0.145, mean angle 2.6-3.4°.
    """
    for seed in (0, 1):
        model, tasks = mtan_model(seed)
        trainer = Trainer(model, tasks, max_epochs=10, batch_size=16, lr=1e-2, progress=False, seed=seed, device="cpu")
        trainer.fit(make_scenes(256, seed=seed))
        result = trainer.evaluate(make_scenes(64, seed=100 + seed))
        assert result["seg"]["miou"] > 0.93, seed
        assert result["depth"]["abs_err"] < 0.22, seed
        assert result["normal"]["mean_angle"] < 6, seed


# ---------------------------------------------------------------------- two processes (gloo on CPU)
def dense_run(distributed: Distributed | bool) -> dict[str, Any]:
    """Two epochs of the conv net on 30 scenes, batches of 8 (split 4 / 4 between two processes, the last 3 / 3)."""
    model, tasks = conv_model(seed=0)
    trainer = Trainer(
        model,
        tasks,
        max_epochs=2,
        batch_size=8,
        eval_batch_size=7,
        lr=1e-2,
        progress=False,
        seed=0,
        device="cpu",
        distributed=distributed,
    )
    history = trainer.fit(make_scenes(30, seed=0), make_scenes(11, seed=1))
    numbers = {k: v for record in history for k, v in record.items() if k != "time/epoch_s"}
    numbers.update(
        {f"test/{t}/{m}": v for t, ms in trainer.evaluate(make_scenes(13, seed=2)).items() for m, v in ms.items()}
    )
    return {"state": {k: v.clone() for k, v in model.state_dict().items()}, "numbers": numbers}


def _worker(rank: int, store: str, out: str) -> None:
    try:
        torch.set_num_threads(1)
        distributed = Distributed.init("gloo", init_method=f"file://{store}", rank=rank, world_size=2, timeout=60)
        torch.save(dense_run(distributed), Path(out, f"rank{rank}.pt"))
        distributed.close()
    except BaseException:
        Path(out, f"rank{rank}.error").write_text(traceback.format_exc())
        os._exit(1)


def test_two_processes_train_and_evaluate_dense_tasks_as_one(tmp_path: Path) -> None:
    """Losses are means over each process's labelled pixels, weighted by the pixel counts; the evaluation
    statistics of both processes' batches are summed: parameters and every logged number match one process."""
    context = multiprocessing.get_context("fork")  # no fresh interpreter: torch is already imported
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # its first use imports torch._dynamo: once, before forking
    processes = [
        context.Process(target=_worker, args=(rank, str(tmp_path / "store"), str(tmp_path))) for rank in (0, 1)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    errors = "\n".join(p.read_text() for p in tmp_path.glob("*.error"))
    assert [p.exitcode for p in processes] == [0, 0], errors
    alone = dense_run(False)
    for rank in (0, 1):
        together = torch.load(tmp_path / f"rank{rank}.pt")
        for key, value in alone["state"].items():
            assert torch.allclose(together["state"][key].double(), value.double(), atol=1e-5), (rank, key)
        assert together["numbers"].keys() == alone["numbers"].keys()
        for key, value in alone["numbers"].items():
            tolerance = 0.02 if "median" in key else 1e-5  # the median: a bin apart at most
            assert together["numbers"][key] == pytest.approx(value, rel=tolerance, abs=tolerance, nan_ok=True), key


def test_the_concepts_page_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "concepts.md").read_text()
    section = text[text.index("### Dense (per-pixel) tasks") :]
    block = section[section.index("```python\n") + len("```python\n") :]
    exec(compile(block[: block.index("```")], "docs/concepts.md", "exec"), {"__name__": "__example__"})  # our docs
    assert capsys.readouterr().out.strip() == str(
        ["loss", "mean_angle", "median_angle", "within_11.25", "within_22.5", "within_30"]
    )
