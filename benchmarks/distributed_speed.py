"""Step time with one and two processes (gloo on CPU), and the bytes each process all-reduces per step.

Model: a shared MLP 128 → W → W (ReLU; W = 256 by default: P_shared = 98,816) and four linear
regression heads, global batch 512 rows by default (each of two processes takes half). Each row
trains ``--steps`` steps of the library's Trainer on a fixed global batch sequence and reports the
median step time (after 3 warm-up steps; the time of `Trainer` steps, from batch to optimiser
step, as a callback sees them) and, per step, the bytes all-reduced by each process, by kind:

- ``losses``: each task's sum of entry losses and label count (2T float64);
- ``gradients``: the flat gradient all-reduce (model parameters, or what the aggregation leaves
  local: heads, penalties; plus one flag per tensor);
- ``jacobian``: the per-task gradients on the shared parameters, ``[T, P_shared]``;
- ``gramian``: the ``[T, T]`` Gramian of the representation gradients (representation mode);
- ``weighting``: GradNorm's per-task gradients on the last shared layer ``[T, W × W]``.

Paths: ``ew`` (loss weighting), ``gradnorm``, ``upgrad`` (Jacobian mode; Gramian mode moves the same
bytes), ``mgda-ub`` (MGDA in representation mode). Two processes run as forked children meeting
through a file store in a temporary folder.

    python benchmarks/distributed_speed.py [--steps 30] [--threads 1] [--width 256] [--batch 512]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from multitask import Strategy, Task, Trainer
from multitask.aggregation import MGDA, UPGrad
from multitask.data import ArrayDataset
from multitask.models import MLP, HardSharing
from multitask.training import Callback, StepResult
from multitask.training.distributed import Distributed
from multitask.weighting import GradNorm

IN, TASKS = 128, 4
PATHS = ("ew", "gradnorm", "upgrad", "mgda-ub")
KINDS = ("losses", "gradients", "jacobian", "gramian", "weighting")


class StepTimer(Callback):
    def __init__(self) -> None:
        self.started = 0.0
        self.seconds: list[float] = []

    def on_step_start(self, trainer: Trainer, groups: Any) -> None:
        self.started = time.perf_counter()

    def on_step_end(self, trainer: Trainer, step: StepResult) -> None:
        self.seconds.append(time.perf_counter() - self.started)


def strategy(path: str) -> Strategy:
    if path == "ew":
        return Strategy()
    if path == "gradnorm":
        return Strategy(GradNorm())
    if path == "upgrad":
        return Strategy(aggregation=UPGrad())
    return Strategy(aggregation=MGDA(), mode="representation")


def run(path: str, steps: int, width: int, batch: int, distributed: Distributed | None) -> dict[str, Any]:
    torch.manual_seed(0)
    tasks = [Task(f"t{i}", nn.Linear(width, 1), "regression") for i in range(TASKS)]
    model = HardSharing(MLP(IN, [width, width]), tasks)
    x = torch.randn(steps * batch, IN, generator=torch.Generator().manual_seed(1))
    data = ArrayDataset(x=x, **{f"t{i}": x[:, i] - x[:, i + 1] for i in range(TASKS)})
    timer = StepTimer()
    trainer = Trainer(
        model,
        tasks,
        strategy=strategy(path),
        max_epochs=1,
        batch_size=batch,
        callbacks=[timer],
        progress=False,
        device="cpu",
        distributed=distributed if distributed is not None else False,
    )
    if distributed is not None:
        distributed.bytes_by_kind.clear()
    trainer.fit(data)
    counted = dict(distributed.bytes_by_kind) if distributed is not None else {}
    return {
        "ms": 1000 * statistics.median(timer.seconds[3:]),
        "bytes": {kind: counted.get(kind, 0) / steps for kind in KINDS},
    }


def worker(rank: int, store: str, args: argparse.Namespace, queue: Any) -> None:
    torch.set_num_threads(args.threads)
    distributed = Distributed.init("gloo", init_method=f"file://{store}", rank=rank, world_size=2, timeout=300)
    results = {path: run(path, args.steps, args.width, args.batch, distributed) for path in PATHS}
    if rank == 0:
        queue.put(results)
    distributed.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads per process")
    parser.add_argument("--width", type=int, default=256, help="hidden width of the shared MLP")
    parser.add_argument("--batch", type=int, default=512, help="global batch size")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    one = {path: run(path, args.steps, args.width, args.batch, None) for path in PATHS}
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    with tempfile.TemporaryDirectory() as folder:
        store = str(Path(folder) / "store")
        processes = [context.Process(target=worker, args=(r, store, args, queue)) for r in (0, 1)]
        for process in processes:
            process.start()
        two = queue.get(timeout=1800)
        for process in processes:
            process.join()
    shared = IN * args.width + args.width + args.width * args.width + args.width
    print(f"global batch {args.batch}, T = {TASKS}, P_shared = {shared:,}, ", end="")
    print(f"{args.threads} thread(s) per process, median of {args.steps - 3} steps\n")
    print("| path | 1 process ms/step | 2 processes ms/step | " + " | ".join(KINDS) + " | total bytes/step |")
    print("|---|---|---|" + "---|" * (len(KINDS) + 1))
    for path in PATHS:
        sizes = two[path]["bytes"]
        cells = " | ".join(f"{sizes[kind]:,.0f}" if sizes[kind] else "—" for kind in KINDS)
        total = sum(sizes.values())
        print(f"| {path} | {one[path]['ms']:.1f} | {two[path]['ms']:.1f} | {cells} | {total:,.0f} |")


if __name__ == "__main__":
    main()
