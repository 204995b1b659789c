"""Train one hard-sharing model on two related tasks with several gradient aggregation methods.

    python examples/aggregation_two_tasks.py

Each method is one line: ``Strategy(aggregation=create(name))``; the Trainer's loop is the same
for all of them. Prints the test metrics and the training time of each run.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from multitask import Strategy, Task, Trainer
from multitask.aggregation import create
from multitask.data import ArrayDataset
from multitask.models import MLP, HardSharing


def make_data(n: int = 2000, seed: int = 0) -> ArrayDataset:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=generator)
    signal = x[:, 0] + 0.5 * x[:, 1]
    label = (signal + 0.1 * torch.randn(n, generator=generator) > 0).float()
    value = 2.0 * signal - x[:, 2] + 0.1 * torch.randn(n, generator=generator)
    return ArrayDataset(x=x, cls=label, reg=value)


def main() -> None:
    data = make_data()
    train, test = data.subset(torch.arange(1500)), data.subset(torch.arange(1500, 2000))
    print("| method | cls accuracy | reg r2 | seconds |\n|---|---:|---:|---:|")
    for name in ["sum", "mgda", "pcgrad", "upgrad", "cagrad", "nash_mtl", "aligned_mtl"]:
        torch.manual_seed(0)
        tasks = [Task("cls", nn.Linear(16, 1), "binary"), Task("reg", nn.Linear(16, 1), "regression")]
        model = HardSharing(MLP(8, [32, 16]), tasks)
        trainer = Trainer(
            model,
            tasks,
            strategy=Strategy(aggregation=create(name)),
            max_epochs=10,
            batch_size=64,
            lr=3e-3,
            progress=False,
        )
        started = time.perf_counter()
        trainer.fit(train)
        seconds = time.perf_counter() - started
        results = trainer.evaluate(test)
        print(f"| {name} | {results['cls']['accuracy']:.3f} | {results['reg']['r2']:.3f} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
