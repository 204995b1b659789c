"""The MMoE paper's synthetic experiment (Ma et al. 2018, Sec. 3.2 and 5): Shared-Bottom, OMoE, MMoE as tasks diverge.

Two regression tasks whose relatedness is the cosine ``p`` between their weight vectors (Sec. 3.2):
``w1 = c·u1``, ``w2 = c·(p·u1 + √(1 − p²)·u2)`` for orthonormal ``u1, u2``, ``x ~ N(0, I)`` and
``y_t = w_tᵀx + Σ_{i=1}^{m} sin(α_i w_tᵀx + β_i) + ε``. The models of Sec. 5.1: MMoE and OMoE have 8 experts
of one ReLU layer of 16 units, Shared-Bottom one ReLU layer of 113 units (the paper's equal-parameter width);
every task has a tower of 8 ReLU units and a linear output. As in the paper, every run draws new data
(``u1, u2, α, β, x, ε``) and a new initialisation (TensorFlow's defaults: Glorot-uniform weights, zero biases),
Adam's learning rate is grid-searched over {1e-4, 1e-3, 1e-2} for each model and ``p``, and the measured
quantity is the loss over training steps averaged over runs (Fig. 4; here the training loss, the mean of the
last 10% of steps) with its spread over runs (Fig. 5); the test loss on held-out rows of the same generator is
reported alongside. Not given by the paper, chosen here: ``c``, ``m``, the law of ``α, β``, the number of
rows, steps and the batch size. Writes ``mmoe_synthetic.md`` (tables) and ``mmoe_synthetic.png`` (loss curves
per ``p``, final loss vs ``p``, every run's final loss, and which experts each MMoE task uses).

    python examples/mmoe_synthetic.py --runs 30 --grid-runs 5 --output docs/methods
    python examples/mmoe_synthetic.py --from-raw RAW.json --output DIR   # tables and plot of a --raw file
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from multitask import Task, Trainer
from multitask.data import ArrayDataset
from multitask.models import HardSharing, MMoE, MultiTaskModel
from multitask.training.callbacks import Callback, StepResult

NUM_FEATURES, NUM_EXPERTS, EXPERT_WIDTH, TOWER_WIDTH = 100, 8, 16, 8
CORRELATIONS = (0.5, 0.9, 1.0)
GRID_SEED = 10_000  # grid-search runs use seeds GRID_SEED + r, apart from the reported runs' seeds 0 .. runs - 1
Builder = tuple[Callable[[list[Task]], MultiTaskModel], int]


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
    """Rows ``x``, ``y1``, ``y2`` of the paper's generator (Sec. 3.2, steps 1-5); ``noise`` is ε's standard deviation.

    The paper gives ``ε ~ N(0, 0.01)`` (standard deviation 0.1 when 0.01 is the variance) but not ``c``
    (``scale``), ``m`` (``num_sines``) or how ``α_i, β_i`` are drawn; here ``c = 1``, ``m = 10`` and
    ``α_i, β_i ~ N(0, sine_std²)``, drawn once per data set. Inputs and noise are drawn after them, so two
    calls with the same seed and ``p`` return the same data, and calls with the same seed and different ``p``
    share ``u1, u2, α, β, x, ε``.
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


def paper_parameter_count(num_features: int = NUM_FEATURES) -> int:
    """The paper's count for the MoE models: expert and tower weights, ``d·E·H + H·T·K`` (13,056 for d = 100)."""
    return num_features * NUM_EXPERTS * EXPERT_WIDTH + EXPERT_WIDTH * TOWER_WIDTH * 2


def bottom_width(num_features: int = NUM_FEATURES) -> int:
    """The paper's Shared-Bottom width ``13056 / (100 + 8·2) ≈ 113``: the same count for its weights (Sec. 5.1)."""
    return round(paper_parameter_count(num_features) / (num_features + TOWER_WIDTH * 2))


def builders(num_features: int = NUM_FEATURES) -> dict[str, Builder]:
    """Shared-Bottom, OMoE and MMoE for inputs of ``num_features`` (each with the width of its towers' input)."""
    width = bottom_width(num_features)
    return {
        "Shared-Bottom": (lambda ts: HardSharing(_layer(width, num_features), ts), width),
        "OMoE": (mixture(True, num_features), EXPERT_WIDTH),
        "MMoE": (mixture(False, num_features), EXPERT_WIDTH),
    }


def tensorflow_init(model: nn.Module) -> None:
    """TensorFlow's dense-layer defaults: Glorot-uniform weights ``U(±√(6 / (fan_in + fan_out)))``, zero biases."""
    for module in model.modules():
        if isinstance(module, nn.Linear):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)


class StepLosses(Callback):
    """Records the training loss of every step (mean over the tasks)."""

    def __init__(self) -> None:
        self.losses: list[float] = []

    def on_step_end(self, trainer: Trainer, step: StepResult) -> None:
        self.losses.append(statistics.fmean(step.losses.values()))


@dataclass
class Run:
    """One run: final training loss (mean over the last 10% of steps), test loss, curve, MMoE gate usage."""

    train: float
    test: float
    curve: list[float]
    curve_step: int
    usage: dict[str, list[float]] = field(default_factory=dict)


@dataclass
class Setting:
    """What the protocol needs besides the model and ``p``."""

    samples: int = 100_000
    test_samples: int = 10_000
    epochs: int = 3
    batch_size: int = 100
    init: str = "tensorflow"
    num_features: int = NUM_FEATURES
    curve_points: int = 60


def train(model: Builder, p: float, seed: int, lr: float, setting: Setting) -> Run:
    """One run on fresh data and a fresh initialisation, both from ``seed``."""
    data = mmoe_synthetic(p, setting.samples + setting.test_samples, num_features=setting.num_features, seed=seed)
    train_set = data.subset(torch.arange(setting.samples))
    test_set = data.subset(torch.arange(setting.samples, len(data)))
    torch.manual_seed(seed)
    build, features = model
    task_list = tasks(features)
    network = build(task_list)
    if setting.init == "tensorflow":
        tensorflow_init(network)
    losses = StepLosses()
    trainer = Trainer(
        network,
        task_list,
        max_epochs=setting.epochs,
        batch_size=setting.batch_size,
        lr=lr,
        progress=False,
        seed=seed,
        device="cpu",
        callbacks=[losses],
    )
    trainer.fit(train_set)
    results = trainer.evaluate(test_set)
    steps = losses.losses
    tail = steps[-max(1, len(steps) // 10) :]
    block = max(1, len(steps) // setting.curve_points)
    curve = [statistics.fmean(steps[i : i + block]) for i in range(0, len(steps) - block + 1, block)]
    usage: dict[str, list[float]] = {}
    if isinstance(network, MMoE) and not network.shared_gate:
        with torch.no_grad():
            usage = {t: w.mean(dim=0).tolist() for t, w in network.gate_weights({"x": test_set.columns["x"]}).items()}
    test = statistics.fmean(results[t]["loss"] for t in ("y1", "y2"))
    return Run(statistics.fmean(tail), test, curve, block, usage)


def measure(
    correlations: Sequence[float],
    runs: int,
    grid_runs: int,
    rates: Sequence[float],
    setting: Setting,
    models: Sequence[str] = ("Shared-Bottom", "OMoE", "MMoE"),
) -> dict[str, Any]:
    """Per model and ``p``: the grid (mean final training loss per learning rate), the chosen rate and its runs.

    With several rates, each is tried on ``grid_runs`` runs (seeds ``GRID_SEED + r``) and the one with the lowest
    mean final training loss is used for the ``runs`` reported runs (seeds ``0 .. runs - 1``, shared by the models).
    """
    results: dict[str, Any] = {}
    for name, model in builders(setting.num_features).items():
        for p in correlations if name in models else []:
            started = time.perf_counter()
            grid = {
                lr: statistics.fmean(train(model, p, GRID_SEED + r, lr, setting).train for r in range(grid_runs))
                for lr in (rates if len(rates) > 1 else [])
            }
            lr = min(grid, key=grid.__getitem__) if grid else rates[0]
            reported = [asdict(train(model, p, seed, lr, setting)) for seed in range(runs)]
            results.setdefault(name, {})[str(p)] = {"grid": list(grid.items()), "lr": lr, "runs": reported}
            mean = statistics.fmean(r["train"] for r in reported)
            print(f"{name} p={p}: lr {lr:g}, train {mean:.4f} ({time.perf_counter() - started:.0f} s)", flush=True)
    return results


def mean_se(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean."""
    return statistics.fmean(values), statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else math.nan


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (position - low) * (ordered[high] - ordered[low])


def _column(results: dict[str, Any], name: str, p: str, key: str) -> list[float]:
    return [float(run[key]) for run in results[name][p]["runs"]]


def _markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def _cell(values: Sequence[float], signed: bool = False) -> str:
    mean, se = mean_se(values)
    return f"{mean:+.4f} ± {se:.4f}" if signed else f"{mean:.4f} ± {se:.4f}"


def tables(results: dict[str, Any]) -> str:
    """Markdown: final training and test loss (mean ± s.e.), their spread, and paired differences to MMoE."""
    names, ps = list(results), list(next(iter(results.values())))
    header = ["model", *(f"p = {p}" for p in ps)]
    sections = [
        f"{title}, mean ± s.e. over runs:\n\n"
        + _markdown(header, [[n, *(_cell(_column(results, n, p, key)) for p in ps)] for n in names])
        for key, title in (("train", "final training loss"), ("test", "test loss"))
    ]
    spread = [
        [
            n,
            *(
                " / ".join(f"{quantile(_column(results, n, p, 'train'), q):.4f}" for q in (0.1, 0.5, 0.9, 1))
                for p in ps
            ),
        ]
        for n in names
    ]
    sections.append("final training loss, 10% / 50% / 90% quantile / max over runs:\n\n" + _markdown(header, spread))
    if "MMoE" in results:
        rows = []
        for n, key in ((n, key) for n in names if n != "MMoE" for key in ("train", "test")):
            pairs = {p: zip(_column(results, n, p, key), _column(results, "MMoE", p, key), strict=True) for p in ps}
            gaps = {p: [a - b for a, b in pairs[p]] for p in ps}
            trend = [a - b for a, b in zip(gaps[ps[0]], gaps[ps[-1]], strict=True)]
            rows.append([f"{n} − MMoE ({key})", *(_cell(gaps[p], signed=True) for p in ps), _cell(trend, signed=True)])
        sections.append(
            f"paired differences (same data and seeds), mean ± s.e.; trend: the gap at p = {ps[0]} minus the gap "
            f"at p = {ps[-1]}, run by run:\n\n" + _markdown(["difference", *header[1:], "trend"], rows)
        )
    rates = " · ".join(f"{n}: " + ", ".join(f"{results[n][p]['lr']:g}" for p in ps) for n in names)
    grid = [
        f"{n} p = {p}: " + ", ".join(f"{lr:g} → {v:.4f}" for lr, v in results[n][p]["grid"])
        for n in names
        for p in ps
        if results[n][p]["grid"]
    ]
    sections.append(f"learning rate chosen for p = {', '.join(ps)}: {rates}")
    if grid:
        sections.append("grid search (mean final training loss of the grid runs): " + "; ".join(grid))
    return "\n\n".join(sections)


def plot(results: dict[str, Any], path: Path) -> None:
    """Training loss over steps per ``p`` (Fig. 4), final loss vs ``p``, spread over runs (Fig. 5), gate usage."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ps = list(next(iter(results.values())))
    figure, axes = plt.subplots(2, max(3, len(ps)), figsize=(13, 7))
    for ax, p in zip(axes[0], ps, strict=False):
        for n in results:
            runs = results[n][p]["runs"]
            length, block = min(len(run["curve"]) for run in runs), runs[0]["curve_step"]
            means = [statistics.fmean(run["curve"][i] for run in runs) for i in range(length)]
            ax.plot([block * (i + 0.5) for i in range(length)], means, label=n)
        ax.set_yscale("log")
        ax.set_title(f"p = {p}: training loss, mean over runs")
        ax.set_xlabel("step")
    axes[0][0].legend()
    left, middle, right = axes[1][0], axes[1][1], axes[1][2]
    for offset, n in enumerate(results):
        for key, style in (("train", "-o"), ("test", "--s")):
            stats = [mean_se(_column(results, n, p, key)) for p in ps]
            left.errorbar(
                [float(p) + 0.004 * offset for p in ps],
                [m for m, _ in stats],
                [s for _, s in stats],
                fmt=style,
                capsize=3,
                color=f"C{offset}",
                label=f"{n} ({key})",
            )
        for i, p in enumerate(ps):
            values = _column(results, n, p, "train")
            position = i * (len(results) + 1) + offset
            label = n if i == 0 else None
            middle.scatter([position] * len(values), values, s=8, color=f"C{offset}", alpha=0.6, label=label)
    left.set_xlabel("task correlation p")
    left.set_ylabel("loss (mean ± s.e.)")
    left.legend(fontsize=7)
    middle.set_yscale("log")
    middle.set_xticks([i * (len(results) + 1) + 1 for i in range(len(ps))], [f"p = {p}" for p in ps])
    middle.set_title("final training loss of every run")
    middle.legend(fontsize=7)
    if "MMoE" in results:
        bars = [(p, t, w) for p in ps for t, w in results["MMoE"][p]["runs"][0]["usage"].items()]
        width = 0.8 / max(len(bars), 1)
        for index, (p, task, weights) in enumerate(bars):
            right.bar([e + index * width for e in range(len(weights))], weights, width, label=f"{task}, p = {p}")
        right.set_xlabel("expert")
        right.set_ylabel("mean gate weight (run 0, test rows)")
        right.set_title("MMoE: which experts each task uses")
        right.legend(fontsize=6)
    for ax in axes[1][3:]:
        ax.axis("off")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="reported runs per model and p")
    parser.add_argument("--grid-runs", type=int, default=5, help="runs per learning rate in the grid search")
    parser.add_argument("--lr", type=float, nargs="+", default=[1e-4, 1e-3, 1e-2], help="one rate, or a grid")
    parser.add_argument("--samples", type=int, default=100_000, help="training rows per run")
    parser.add_argument("--test-samples", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--init", choices=["tensorflow", "pytorch"], default="tensorflow")
    parser.add_argument("--correlations", type=float, nargs="+", default=list(CORRELATIONS))
    parser.add_argument("--models", nargs="+", choices=list(builders()), default=list(builders()))
    parser.add_argument("--output", type=Path, default=Path())
    parser.add_argument("--raw", type=Path, help="also write every run's numbers to this JSON file")
    parser.add_argument("--from-raw", type=Path, help="rebuild the tables and plot from a --raw file, without training")
    args = parser.parse_args()
    if args.runs < 2 or args.grid_runs < 1:
        parser.error("--runs must be at least 2 (for a standard error) and --grid-runs at least 1")
    if args.from_raw is not None:
        saved = json.loads(args.from_raw.read_text())
        results, footer = saved["results"], saved["footer"]
    else:
        torch.set_num_threads(1)
        setting = Setting(args.samples, args.test_samples, args.epochs, args.batch_size, args.init)
        started = time.perf_counter()
        results = measure(args.correlations, args.runs, args.grid_runs, args.lr, setting, args.models)
        steps = args.epochs * math.ceil(args.samples / args.batch_size)
        footer = (
            f"{args.runs} runs per model and p, {steps} steps of batch {args.batch_size} ({args.epochs} epochs of "
            f"{args.samples} rows), {args.test_samples} test rows, {args.init} initialisation; "
            f"{(time.perf_counter() - started) / 60:.0f} minutes on one thread"
        )
        if args.raw is not None:
            args.raw.write_text(json.dumps({"results": results, "footer": footer}))
    text = tables(results) + "\n\n" + footer
    print(text)
    args.output.mkdir(parents=True, exist_ok=True)
    title = "# The MMoE paper's synthetic experiment: all tables\n\nWritten by `examples/mmoe_synthetic.py`.\n\n"
    (args.output / "mmoe_synthetic.md").write_text(title + text + "\n")
    plot(results, args.output / "mmoe_synthetic.png")


if __name__ == "__main__":
    main()
