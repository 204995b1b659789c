"""MultiMNIST (Sener & Koltun 2018): classify the top-left and the bottom-right digit of overlapping pairs.

A LeNet-style trunk (two 5×5 convolutions with max-pooling, then a 50-unit layer) is shared by both tasks;
each task has its own two-layer head, as the MultiLeNet of Sener & Koltun. Trained with `multitask.Trainer`
(equal weights by default, or any registered weighting / aggregation), the model selected on validation
loss; prints each task's test accuracy.

    python examples/multimnist.py                     # 5 epochs on 20,000 training images
    python examples/multimnist.py --subset 0 --epochs 10 --aggregation mgda
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from multitask import Strategy, Trainer, aggregation, weighting
from multitask.data import load_multi_mnist
from multitask.models import HardSharing, LeNet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--subset", type=int, default=20_000, help="training images used (0: all 54,000)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--weighting", default="ew", help=f"one of {weighting.names()}")
    parser.add_argument("--aggregation", default=None, help=f"one of {aggregation.names()}")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    data = load_multi_mnist(seed=args.seed)
    train = data.dataset("train")
    if args.subset:
        train = train.subset(torch.arange(min(args.subset, len(train))))
    tasks = data.make_tasks(lambda info: nn.Sequential(nn.Linear(50, 50), nn.ReLU(), nn.Linear(50, info.num_outputs)))
    strategy = Strategy(
        weighting.create(args.weighting),
        aggregation=aggregation.create(args.aggregation) if args.aggregation else None,
    )
    model = HardSharing(LeNet(), tasks)
    trainer = Trainer(
        model,
        tasks,
        strategy=strategy,
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        lr=1e-3,
        seed=args.seed,
        progress=False,
    )
    start = time.perf_counter()
    trainer.fit(train, data.val)
    seconds = time.perf_counter() - start
    results = trainer.evaluate(data.dataset("test"))
    print(f"MultiMNIST: {len(train)} training images, {args.epochs} epochs, {seconds:.0f} s of training")
    print("| task | test accuracy |\n|---|---|")
    for task in data.tasks:
        print(f"| {task} | {results[task]['accuracy']:.4f} |")


if __name__ == "__main__":
    main()
