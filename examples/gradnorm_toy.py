"""The GradNorm paper's toy regression (Chen et al. 2018, Sec. 4): EW vs GradNorm vs UW, tasks of very different scales.

T regression tasks ``y_i = σ_i tanh((B + ε_i) x)`` share a 4-layer ReLU trunk (100 units); each
task has a linear head. With equal weights the large-scale tasks dominate the gradient and the
small-scale tasks stall; GradNorm (and uncertainty weighting) keep the loss ratios
``L_i(t) / L_i(0)`` together. Prints, per method, the final loss ratio of each task and the worst
one (mean over seeds), and writes ``gradnorm_toy.png`` (loss ratios over training).

    python examples/gradnorm_toy.py --seeds 3 --epochs 40
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from multitask import Strategy, Task, Trainer
from multitask.data import gradnorm_regression
from multitask.models import HardSharing
from multitask.weighting import EW, UW, GradNorm, Weighting


def trunk(num_features: int, width: int = 100, depth: int = 4) -> nn.Sequential:
    """The paper's shared trunk: ``depth`` fully connected ReLU layers of ``width`` units."""
    layers: list[nn.Module] = []
    for index in range(depth):
        layers += [nn.Linear(num_features if index == 0 else width, width), nn.ReLU()]
    return nn.Sequential(*layers)


def run(
    weighting: Weighting, scales: list[float], seed: int, epochs: int, num_samples: int, lr: float
) -> list[list[float]]:
    """Per epoch, each task's training-loss ratio ``L_i(t) / L_i(0)`` (``L_i(0)``: the loss before training)."""
    data = gradnorm_regression(scales, num_samples, seed=seed)
    torch.manual_seed(seed)
    tasks = [Task(f"task{i}", nn.Linear(100, 100), "regression") for i in range(len(scales))]
    model = HardSharing(trunk(250), tasks)
    trainer = Trainer(
        model, tasks, strategy=Strategy(weighting), max_epochs=epochs, batch_size=100, lr=lr, progress=False, seed=seed
    )
    initial = trainer.evaluate(data)
    history = trainer.fit(data)
    return [
        [record[f"train/task{i}/loss"] / initial[f"task{i}"]["loss"] for i in range(len(scales))] for record in history
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=4, help="number of tasks; scales log-spaced from 1 to 100")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--alpha", type=float, default=0.12, help="GradNorm's asymmetry (the paper's toy uses 0.12)")
    parser.add_argument("--output", type=Path, default=Path("gradnorm_toy.png"))
    args = parser.parse_args()
    scales = [10 ** (2 * i / max(args.tasks - 1, 1)) for i in range(args.tasks)]
    methods: dict[str, Callable[[], Weighting]] = {
        "EW": EW,
        "GradNorm": lambda: GradNorm(alpha=args.alpha),
        "UW": UW,
    }
    curves: dict[str, list[list[float]]] = {}
    print(f"scales σ_i = {[round(s, 2) for s in scales]}, {args.seeds} seeds, {args.epochs} epochs")
    print("| method | final L_i(t)/L_i(0) per task (mean over seeds) | worst task (mean ± std) |")
    print("|---|---|---|")
    for name, make in methods.items():
        runs = [run(make(), scales, seed, args.epochs, args.samples, args.lr) for seed in range(args.seeds)]
        finals = [[r[-1][i] for r in runs] for i in range(args.tasks)]
        worst = [max(r[-1]) for r in runs]
        curves[name] = [
            [statistics.fmean(r[e][i] for r in runs) for i in range(args.tasks)] for e in range(args.epochs)
        ]
        spread = statistics.stdev(worst) if len(worst) > 1 else math.nan
        per_task = ", ".join(f"{statistics.fmean(f):.3f}" for f in finals)
        print(f"| {name} | {per_task} | {statistics.fmean(worst):.3f} ± {spread:.3f} |")
    plot(curves, scales, args.output)
    print(f"wrote {args.output}")


def plot(curves: dict[str, list[list[float]]], scales: list[float], path: Path) -> None:
    """One panel per method: each task's loss ratio over epochs (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(curves), figsize=(4.2 * len(curves), 3.4), sharey=True, squeeze=False)
    for ax, (name, curve) in zip(axes[0], curves.items(), strict=True):
        epochs = range(1, len(curve) + 1)
        for i, scale in enumerate(scales):
            ax.plot(epochs, [row[i] for row in curve], label=f"σ={scale:.3g}")
        ax.set_yscale("log")
        ax.set_title(name)
        ax.set_xlabel("epoch")
    axes[0][0].set_ylabel("L_i(t) / L_i(0)")
    axes[0][0].legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


if __name__ == "__main__":
    main()
