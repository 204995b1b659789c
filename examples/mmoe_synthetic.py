"""The MMoE paper's synthetic experiment (Ma et al. 2018, Sec. 4): Shared-Bottom, OMoE and MMoE as tasks diverge.

Two regression tasks have label correlation controlled by the cosine ``p`` between their weight
vectors: ``w1 = c·u1``, ``w2 = c·(p·u1 + √(1 − p²)·u2)`` for orthonormal ``u1, u2``, and
``y_t = w_tᵀx + Σ_{i=1}^{m} sin(α_i w_tᵀx + β_i) + ε`` with ``x ~ N(0, I)``. The three models have
(nearly) the same number of parameters: MMoE and OMoE have 8 single-layer ReLU experts, Shared-Bottom
one wider ReLU layer; every task has a one-layer tower (8 ReLU units) and a linear output. Prints the
mean test MSE (over both tasks and the seeds) per model and ``p``, and writes ``mmoe_synthetic.md``
(the table) and ``mmoe_synthetic.png`` (loss vs ``p``, and which experts each MMoE task uses).

    python examples/mmoe_synthetic.py --seeds 4 --output docs/methods
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import nn

from multitask import Task, Trainer
from multitask.data import ArrayDataset
from multitask.models import HardSharing, MMoE, MultiTaskModel

NUM_FEATURES, NUM_EXPERTS, EXPERT_WIDTH, TOWER_WIDTH = 100, 8, 16, 8


def mmoe_synthetic(
    p: float,
    num_samples: int,
    *,
    num_features: int = NUM_FEATURES,
    scale: float = 1.0,
    num_sines: int = 10,
    noise: float = 0.1,
    sine_std: float = 1.0,
    seed: int = 0,
) -> ArrayDataset:
    """Rows ``x``, ``y1``, ``y2`` of the paper's generator (Sec. 4.1, steps 1-4); ``noise`` is ε's standard deviation.

    ``α_i`` and ``β_i`` are drawn once per data set from ``N(0, sine_std²)``. Inputs and noise are drawn
    after them, so two calls with the same seed and ``p`` return the same data.
    """
    if not -1.0 <= p <= 1.0:
        raise ValueError(f"p must be a cosine in [-1, 1]; got {p}")
    generator = torch.Generator().manual_seed(seed)
    basis, _ = torch.linalg.qr(torch.randn(num_features, 2, generator=generator))  # orthonormal u1, u2
    u1, u2 = basis[:, 0], basis[:, 1]
    w1 = scale * u1
    w2 = scale * (p * u1 + math.sqrt(1.0 - p * p) * u2)
    alpha = sine_std * torch.randn(num_sines, generator=generator)
    beta = sine_std * torch.randn(num_sines, generator=generator)
    x = torch.randn(num_samples, num_features, generator=generator)

    def label(w: torch.Tensor) -> torch.Tensor:
        z = x @ w
        sines = torch.sin(alpha[None, :] * z[:, None] + beta[None, :]).sum(dim=1)
        return z + sines + noise * torch.randn(num_samples, generator=generator)

    return ArrayDataset(x=x, y1=label(w1), y2=label(w2))


def tasks(features: int = EXPERT_WIDTH) -> list[Task]:
    """Two regression tasks, each with a tower of ``TOWER_WIDTH`` ReLU units on ``features`` inputs."""
    return [
        Task(name, nn.Sequential(nn.Linear(features, TOWER_WIDTH), nn.ReLU(), nn.Linear(TOWER_WIDTH, 1)), "regression")
        for name in ("y1", "y2")
    ]


def _layer(width: int, num_features: int = NUM_FEATURES) -> nn.Module:
    return nn.Sequential(nn.Linear(num_features, width), nn.ReLU())


def mixture(shared_gate: bool, num_features: int = NUM_FEATURES) -> Callable[[list[Task]], MultiTaskModel]:
    """MMoE (or OMoE: one gate) with ``NUM_EXPERTS`` experts of one ReLU layer of ``EXPERT_WIDTH`` units."""
    return lambda ts: MMoE(
        [_layer(EXPERT_WIDTH, num_features) for _ in range(NUM_EXPERTS)],
        ts,
        in_features=num_features,
        shared_gate=shared_gate,
    )


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def bottom_width(num_features: int = NUM_FEATURES) -> int:
    """The Shared-Bottom layer width whose model has the parameter count closest to MMoE's."""
    target = parameter_count(mixture(False, num_features)(tasks()))
    return min(
        range(8, 400), key=lambda w: abs(parameter_count(HardSharing(_layer(w, num_features), tasks(w))) - target)
    )


def builders(num_features: int = NUM_FEATURES) -> dict[str, tuple[Callable[[list[Task]], MultiTaskModel], int]]:
    """Shared-Bottom, OMoE and MMoE for inputs of ``num_features`` (each with the width of its towers' input)."""
    width = bottom_width(num_features)
    return {
        "Shared-Bottom": (lambda ts: HardSharing(_layer(width, num_features), ts), width),
        "OMoE": (mixture(True, num_features), EXPERT_WIDTH),
        "MMoE": (mixture(False, num_features), EXPERT_WIDTH),
    }


def train(
    model: tuple[Callable[[list[Task]], MultiTaskModel], int],
    p: float,
    seed: int,
    num_samples: int,
    epochs: int,
    lr: float,
    num_features: int = NUM_FEATURES,
) -> tuple[float, MultiTaskModel, ArrayDataset]:
    """Train on ``num_samples`` rows; returns the mean test MSE of both tasks, the model and the test rows."""
    data = mmoe_synthetic(p, num_samples + num_samples // 4, num_features=num_features, seed=seed)
    train_set = data.subset(torch.arange(num_samples))
    test_set = data.subset(torch.arange(num_samples, len(data)))
    torch.manual_seed(seed)
    build, features = model
    task_list = tasks(features)
    network = build(task_list)
    trainer = Trainer(
        network, task_list, max_epochs=epochs, batch_size=128, lr=lr, progress=False, seed=seed, device="cpu"
    )
    trainer.fit(train_set)
    results = trainer.evaluate(test_set)
    return statistics.fmean(results[name]["loss"] for name in ("y1", "y2")), network, test_set


def gate_usage(model: MultiTaskModel, data: ArrayDataset) -> dict[str, list[float]]:
    """Each task's mean gate weight per expert on ``data`` (an MMoE's view of which experts each task uses)."""
    assert isinstance(model, MMoE)
    with torch.no_grad():
        weights = model.gate_weights({"x": data.columns["x"]})
    return {task: w.mean(dim=0).tolist() for task, w in weights.items()}


def run(
    correlations: Sequence[float], seeds: int, num_samples: int, epochs: int, lr: float
) -> tuple[dict[str, dict[float, list[float]]], dict[float, dict[str, list[float]]]]:
    """``{model: {p: [test loss per seed]}}`` and, per ``p``, MMoE's gate usage (seed 0)."""
    losses: dict[str, dict[float, list[float]]] = {}
    usage: dict[float, dict[str, list[float]]] = {}
    for name, model in builders().items():
        for p in correlations:
            for seed in range(seeds):
                loss, network, test_set = train(model, p, seed, num_samples, epochs, lr)
                losses.setdefault(name, {}).setdefault(p, []).append(loss)
                if name == "MMoE" and seed == 0:
                    usage[p] = gate_usage(network, test_set)
            print(f"{name} p={p}: {statistics.fmean(losses[name][p]):.4f}", flush=True)
    return losses, usage


def table(losses: dict[str, dict[float, list[float]]]) -> str:
    correlations = list(next(iter(losses.values())))
    counts = {name: parameter_count(build(tasks(width))) for name, (build, width) in builders().items()}
    lines = [
        "| model | parameters | " + " | ".join(f"p = {p}" for p in correlations) + " |",
        "|---|---|" + "---|" * len(correlations),
    ]
    for name, per_p in losses.items():
        cells = [f"{statistics.fmean(v):.3f} ± {statistics.pstdev(v):.3f}" for v in per_p.values()]
        lines.append(f"| {name} | {counts[name]:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(losses: dict[str, dict[float, list[float]]], usage: dict[float, dict[str, list[float]]], path: Path) -> None:
    """Test loss vs ``p`` per model (left) and MMoE's mean gate weight per expert and task (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for name, per_p in losses.items():
        means = [statistics.fmean(v) for v in per_p.values()]
        spreads = [statistics.pstdev(v) for v in per_p.values()]
        left.errorbar(list(per_p), means, spreads, marker="o", capsize=3, label=name)
    left.set_xlabel("task correlation p (cosine of w1, w2)")
    left.set_ylabel("test MSE (mean of both tasks)")
    left.legend()
    bars = [(p, task, weights) for p, per_task in usage.items() for task, weights in per_task.items()]
    width = 0.8 / max(len(bars), 1)
    for index, (p, task, weights) in enumerate(bars):
        positions = [e + index * width for e in range(len(weights))]
        right.bar(positions, weights, width, label=f"{task}, p = {p}")
    right.set_xlabel("expert")
    right.set_ylabel("mean gate weight")
    right.set_title("MMoE: which experts each task uses")
    right.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--samples", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--output", type=Path, default=Path())
    args = parser.parse_args()
    torch.set_num_threads(1)
    losses, usage = run([0.5, 0.9, 1.0], args.seeds, args.samples, args.epochs, args.lr)
    text = table(losses)
    print(text)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "mmoe_synthetic.md").write_text(text + "\n")
    plot(losses, usage, args.output / "mmoe_synthetic.png")


if __name__ == "__main__":
    main()
