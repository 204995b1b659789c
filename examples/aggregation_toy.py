"""The CAGrad toy (Liu et al. 2021), reused by Nash-MTL and FAMO: which aggregators reach the Pareto set.

Two losses of ``θ = (θ₁, θ₂) ∈ R²``. Above the θ₁ axis each is a log term with a deep, narrow valley
(``f₁`` near ``θ₁ ≈ −5``, ``f₂`` near ``θ₁ ≈ 5``); below it each is a wide quadratic bowl (centred at
``(7, −8)`` for task 1 and ``(−7, −8)`` for task 2); ``tanh`` switches smoothly between the halves:

    f₁ = log max(|−(θ₁ + 7)/2 + tanh θ₂|, 5e-6) + 6        g₁ = ((θ₁ − 7)² + 0.1 (θ₂ + 8)²) / 10 − 20
    f₂ = log max(|−(θ₁ − 3)/2 − tanh θ₂ + 2|, 5e-6) + 6    g₂ = ((θ₁ + 7)² + 0.1 (θ₂ + 8)²) / 10 − 20
    c₁ = max(tanh(θ₂ / 2), 0)                              c₂ = max(tanh(−θ₂ / 2), 0)
    L₁ = s · (c₁ f₁ + c₂ g₁)                               L₂ = c₁ f₂ + c₂ g₂

``s = 1`` in CAGrad; Nash-MTL and FAMO shrink the first loss (``s = 0.1``, ``--scale``) to make the
tasks' scales differ. The papers draw the Pareto set as the segment ``θ₂ ≈ −8.3552``,
``θ₁ ∈ [−7, 7]`` between the two bowls' minima. Every method runs from each start with Adam on ``θ``
(``θ.grad`` = the aggregated update of the Jacobian ``[2, 2]``); a final point counts as Pareto-stationary
when the min-norm point of the convex hull of ``{∇L₁, ∇L₂}`` (what MGDA computes) is below ``--tolerance``
and it lies within 0.1 of the segment; a run stops there. Prints the final ``(L₁, L₂)`` per method and
start and writes ``aggregation_toy.png`` (trajectories on the contours of ``L₁ + L₂``) into ``--output``.

    python examples/aggregation_toy.py --steps 20000 --lr 5e-3 --output runs/toy

The papers run 100k (CAGrad), 35k (Nash-MTL) or 50k (FAMO) Adam steps at ``lr = 1e-3``; the defaults
here take at most 20k steps at ``lr = 5e-3``. The learning rate matters: at ``1e-2`` Adam's steps jump
out of the narrow log valleys, so EW no longer stalls in them from ``(−8.5, 7.5)`` and ``(9, 9)``; at
``1e-3`` it is still in them after 50k steps, and at ``5e-3`` it slides out after 10k-14k steps.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor

from multitask.aggregation import Aggregator, create

PARETO_THETA2 = -8.3552  # θ₂ of the Pareto segment as drawn by the papers (CAGrad toy.py, Nash-MTL plot)
PARETO_THETA1 = (-7.0, 7.0)
FLOOR = 5e-6  # the papers clamp the log terms' argument here

# CAGrad's starts are (−8.5, 7.5), (−8.5, −5), (9, 9); Nash-MTL and FAMO use (−8.5, 7.5), (0, 0), (9, 9),
# (−7.5, −0.5), (9, −1).
STARTS: tuple[tuple[float, float], ...] = ((-8.5, 7.5), (-8.5, -5.0), (9.0, 9.0), (0.0, 0.0), (-7.5, -0.5), (9.0, -1.0))

METHODS: dict[str, Callable[[], Aggregator]] = {
    "EW": lambda: create("mean"),
    "MGDA": lambda: create("mgda"),
    "CAGrad": lambda: create("cagrad", c=0.5),
    "Nash-MTL": lambda: create("nash_mtl"),
    "PCGrad": lambda: create("pcgrad"),
    "UPGrad": lambda: create("upgrad"),
}


def losses(theta: Tensor, scale: float = 1.0) -> Tensor:
    """The two objectives ``[..., 2]`` at ``theta [..., 2]`` (any leading batch shape).

    Args:
        theta: Points ``(θ₁, θ₂)`` in the last dimension.
        scale: Factor on the first loss (1 in CAGrad, 0.1 in Nash-MTL and FAMO).
    """
    x, y = theta[..., 0], theta[..., 1]
    valley_1 = (-0.5 * (x + 7) + torch.tanh(y)).abs().clamp(min=FLOOR).log() + 6
    valley_2 = (-0.5 * (x - 3) - torch.tanh(y) + 2).abs().clamp(min=FLOOR).log() + 6
    bowl_1 = ((x - 7) ** 2 + 0.1 * (y + 8) ** 2) / 10 - 20
    bowl_2 = ((x + 7) ** 2 + 0.1 * (y + 8) ** 2) / 10 - 20
    upper = torch.tanh(0.5 * y).clamp(min=0)
    lower = torch.tanh(-0.5 * y).clamp(min=0)
    return torch.stack([scale * (upper * valley_1 + lower * bowl_1), upper * valley_2 + lower * bowl_2], dim=-1)


def jacobian(theta: Tensor, scale: float = 1.0) -> tuple[Tensor, Tensor]:
    """The losses ``[2]`` and their Jacobian ``[2, 2]`` (row ``t`` is ``∇L_t``) at the point ``theta [2]``.

    Written out by hand (float64, Python scalars): autograd through `losses` gives the same values (see the
    test) but costs ~30 times more, and the optimisation loop calls this once a step. At a kink (``θ₂ = 0``,
    a clamped log) it takes the same one-sided derivative as autograd (``clamp`` passes the boundary).
    """
    x, y = theta.detach().tolist()
    t, t_half = math.tanh(y), math.tanh(0.5 * y)
    sech2, sech2_half = 1 - t * t, 1 - t_half * t_half
    a1, a2 = -0.5 * (x + 7) + t, -0.5 * (x - 3) - t + 2
    valley = [math.log(max(abs(a), FLOOR)) + 6 for a in (a1, a2)]
    # d log|a| / da = 1 / a where the clamp is inactive; da/dθ = (−1/2, ±sech² θ₂)
    d_valley = [
        (-0.5 / a1, sech2 / a1) if abs(a1) >= FLOOR else (0.0, 0.0),
        (-0.5 / a2, -sech2 / a2) if abs(a2) >= FLOOR else (0.0, 0.0),
    ]
    common = 0.1 * (y + 8) ** 2
    bowl = [((x - 7) ** 2 + common) / 10 - 20, ((x + 7) ** 2 + common) / 10 - 20]
    d_bowl = [((x - 7) / 5, 0.02 * (y + 8)), ((x + 7) / 5, 0.02 * (y + 8))]
    upper, lower = max(t_half, 0.0), max(-t_half, 0.0)
    d_upper = 0.5 * sech2_half if t_half >= 0 else 0.0
    d_lower = -0.5 * sech2_half if t_half <= 0 else 0.0
    values, rows = [], []
    for task, factor in enumerate((scale, 1.0)):
        values.append(factor * (upper * valley[task] + lower * bowl[task]))
        rows.append(
            [
                factor * (upper * d_valley[task][0] + lower * d_bowl[task][0]),
                factor
                * (d_upper * valley[task] + upper * d_valley[task][1] + d_lower * bowl[task] + lower * d_bowl[task][1]),
            ]
        )
    return torch.tensor(values, dtype=torch.float64), torch.tensor(rows, dtype=torch.float64)


def min_norm(jacobian: Tensor) -> float:
    """``min_{w ∈ [0, 1]} ‖w g₁ + (1 − w) g₂‖``: zero exactly at Pareto-stationary points."""
    g1, g2 = jacobian[0], jacobian[1]
    difference = g1 - g2
    denominator = float(difference @ difference)
    w = 0.5 if denominator == 0.0 else min(max(float((g2 - g1) @ g2) / denominator, 0.0), 1.0)
    return float((w * g1 + (1 - w) * g2).norm())


def distance_to_segment(theta: Tensor) -> float:
    """Euclidean distance from ``theta [2]`` to the papers' Pareto segment."""
    x, y = theta.detach().tolist()
    nearest = min(max(x, PARETO_THETA1[0]), PARETO_THETA1[1])
    return math.hypot(x - nearest, y - PARETO_THETA2)


@dataclass(frozen=True)
class Run:
    """One optimisation: the trajectory ``[steps + 1, 2]``, the final losses ``[2]`` and its Pareto test."""

    trajectory: Tensor
    final_losses: Tensor
    steps: int  # Adam steps taken
    stationarity: float  # min-norm point of conv{∇L₁, ∇L₂} at the final θ
    distance: float  # to the Pareto segment

    def is_pareto(self, tolerance: float = 0.01, max_distance: float = 0.1) -> bool:
        """Whether the final point is Pareto-stationary (within ``tolerance``) and near the segment."""
        return self.stationarity < tolerance and self.distance < max_distance


def optimise(
    aggregator: Aggregator,
    start: Sequence[float],
    steps: int,
    lr: float = 5e-3,
    scale: float = 1.0,
    *,
    stop_at_pareto: bool = True,
    tolerance: float = 0.01,
) -> Run:
    """Run Adam on ``θ`` from ``start`` for at most ``steps`` steps, with ``θ.grad`` = the aggregated update.

    Args:
        aggregator: Maps the Jacobian ``[2, 2]`` to the update ``[2]``.
        start: Initial ``(θ₁, θ₂)``.
        steps: Number of Adam steps.
        lr: Adam's learning rate (1e-3 in the papers).
        scale: Factor on the first loss.
        stop_at_pareto: Stop as soon as ``θ`` passes `Run.is_pareto` (checked every step).
        tolerance: Pareto-stationarity tolerance for the stop (see `Run.is_pareto`).
    """
    theta = torch.tensor(list(start), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.Adam([theta], lr=lr)
    trajectory = [theta.detach().clone()]
    for _ in range(steps):
        _, matrix = jacobian(theta, scale)
        if stop_at_pareto and min_norm(matrix) < tolerance and distance_to_segment(theta) < 0.1:
            break
        optimizer.zero_grad()
        theta.grad = aggregator(matrix)
        optimizer.step()
        trajectory.append(theta.detach().clone())
    final = theta.detach()
    values, matrix = jacobian(final, scale)
    return Run(torch.stack(trajectory), values, len(trajectory) - 1, min_norm(matrix), distance_to_segment(final))


def plot(runs: dict[str, list[Run]], path: Path, scale: float = 1.0, tolerance: float = 0.01) -> None:
    """One panel per method: the trajectories on the contours of ``L₁ + L₂``, the Pareto segment in grey.

    Each run starts at a black dot and ends at a star: red if it reached the Pareto set, blue if not.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = torch.linspace(-11, 11, 300, dtype=torch.float64)
    y, x = torch.meshgrid(grid, grid, indexing="ij")
    total = losses(torch.stack([x, y], dim=-1), scale).sum(-1)
    columns = 3
    rows = math.ceil(len(runs) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 4 * rows), squeeze=False)
    for ax, (name, method_runs) in zip(axes.flat, runs.items(), strict=False):
        ax.contour(x.numpy(), y.numpy(), total.numpy(), levels=25, cmap="viridis", linewidths=0.8)
        ax.plot(PARETO_THETA1, [PARETO_THETA2] * 2, color="grey", linewidth=5, alpha=0.6, zorder=1)
        for run in method_runs:
            path_xy = run.trajectory.numpy()
            ax.plot(path_xy[:, 0], path_xy[:, 1], color="tab:red", linewidth=1.2, zorder=2)
            ax.plot(*path_xy[0], "ko", markersize=5, zorder=3)
            reached = run.is_pareto(tolerance)
            ax.plot(*path_xy[-1], "*", color="tab:red" if reached else "tab:blue", markersize=10, zorder=4)
        ax.set_title(name)
        ax.set_xlim(-11, 11)
        ax.set_ylim(-11, 11)
        ax.set_aspect("equal")
    for ax in list(axes.flat)[len(runs) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000, help="most Adam steps per run (the papers: 35k-100k)")
    parser.add_argument("--lr", type=float, default=5e-3, help="Adam's learning rate (the papers: 1e-3)")
    parser.add_argument("--scale", type=float, default=1.0, help="factor on L1 (CAGrad: 1; Nash-MTL, FAMO: 0.1)")
    parser.add_argument("--tolerance", type=float, default=0.01, help="Pareto-stationarity tolerance")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--output", type=Path, default=Path())
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[Run]] = {}
    print(f"{args.steps} Adam steps, lr {args.lr}, scale {args.scale}")
    print("| method | start | steps | final θ | final (L1, L2) | min-norm | Pareto |")
    print("|---|---|---|---|---|---|---|")
    for name in args.methods:
        runs[name] = []
        for start in STARTS:
            run = optimise(METHODS[name](), start, args.steps, args.lr, args.scale, tolerance=args.tolerance)
            runs[name].append(run)
            theta = run.trajectory[-1].tolist()
            values = run.final_losses.tolist()
            print(
                f"| {name} | ({start[0]:g}, {start[1]:g}) | {run.steps} | ({theta[0]:.2f}, {theta[1]:.2f}) "
                f"| ({values[0]:.3f}, {values[1]:.3f}) | {run.stationarity:.2e} "
                f"| {'yes' if run.is_pareto(args.tolerance) else 'no'} |"
            )
    path = args.output / "aggregation_toy.png"
    plot(runs, path, args.scale, args.tolerance)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
