"""Every loss weighting on real data: per-task test metric and Δm% against single-task models, mean ± std over seeds.

Datasets: ``census`` (Census-Income, the MMoE paper's income/marital tasks; a random subset of the
training rows, the full validation and test splits) and ``newsgroup`` (the four 20-Newsgroups
binary tasks of MALSAR, read from ``../shared/data/newsgroup``; each task has its own documents,
split 60/20/20 per seed). Each seed trains the single-task baselines once (plain loss) and one
hard-sharing model per method with the same budget; each model keeps its best validation epoch.

    python benchmarks/weighting_table.py --dataset census --seeds 3 --epochs 3
    python benchmarks/weighting_table.py --dataset newsgroup --seeds 3 --epochs 8
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from multitask import Strategy, Task, TrainerOptions
from multitask.data import ArrayDataset
from multitask.metrics import delta_m
from multitask.models import MLP
from multitask.studies import train_multitask, train_single_task
from multitask.weighting import create, names

NEWSGROUP = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "newsgroup"
NEWSGROUP_FILES = ("comp.vs.sci_task1", "comp.vs.sci_task2", "rec.vs.talk_Task1", "rec.vs.talk_Task2")


def census(seed: int, max_train: int) -> tuple[Any, Any, Any, int, list[Task], dict[str, Any]]:
    from multitask.data import load_census_income

    data = load_census_income(seed=seed)
    index = torch.randperm(len(data.train), generator=torch.Generator().manual_seed(seed))[:max_train]
    tasks = [Task(name, MLP(32, [16], 1), "binary", metrics=["auc"]) for name in ("income", "marital")]
    options = {"batch_size": 512, "lr": 1e-3}
    return data.train.subset(index), data.val, data.test, data.num_features, tasks, options


def newsgroup(seed: int) -> tuple[Any, Any, Any, int, list[Task], dict[str, Any]]:
    import scipy.io

    if not NEWSGROUP.is_dir():
        sys.exit(f"the Newsgroup data is not at {NEWSGROUP}; it is only needed for this benchmark")
    splits: tuple[dict[str, ArrayDataset], dict[str, ArrayDataset], dict[str, ArrayDataset]] = ({}, {}, {})
    for number, filename in enumerate(NEWSGROUP_FILES):
        mat = scipy.io.loadmat(str(NEWSGROUP / f"{filename}.mat"))
        x = torch.tensor(mat["fea"].toarray(), dtype=torch.float32)
        y = torch.tensor(mat["gnd"].ravel() == 2, dtype=torch.float32)
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed * 10 + number))
        cut1, cut2 = int(0.6 * len(y)), int(0.8 * len(y))
        name = f"t{number + 1}"
        for split, rows in zip(splits, (order[:cut1], order[cut1:cut2], order[cut2:]), strict=True):
            split[name] = ArrayDataset(**{"x": x[rows], name: y[rows]})
    tasks = [Task(f"t{i + 1}", nn.Linear(64, 1), "binary", metrics=["accuracy"]) for i in range(4)]
    return splits[0], splits[1], splits[2], 2000, tasks, {"batch_size": 64, "lr": 1e-3, "sampling": "proportional"}


def kwargs_for(name: str, num_tasks: int) -> dict[str, Any]:
    return {"preference": [1.0 / num_tasks] * num_tasks} if name == "linear" else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["census", "newsgroup"], default="census")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-train", type=int, default=20000, help="census: training rows used")
    parser.add_argument("--methods", nargs="*", default=names())
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in args.methods}
    started = time.perf_counter()
    for seed in range(args.seeds):
        train, val, test, num_features, tasks, options = (
            census(seed, args.max_train) if args.dataset == "census" else newsgroup(seed)
        )
        width = [64, 32] if args.dataset == "census" else [64]
        encoder = MLP(num_features, width)
        common = TrainerOptions(max_epochs=args.epochs, seed=seed, progress=False, **options)
        stl = train_single_task(encoder, tasks, train, val, test, options=common)
        metric = {t.name: t.main_metric for t in tasks}
        directions = {t.name: {metric[t.name]: t.metric_fns[metric[t.name]].higher_is_better} for t in tasks}
        base = {t: {metric[t]: stl.test[t][metric[t]]} for t in metric}
        rows.setdefault("stl", []).append({**{t: base[t][metric[t]] for t in metric}, "delta_m": 0.0})
        val_base = {t: {metric[t]: stl.val[t][metric[t]]} for t in metric}
        for name in args.methods:
            strategy = Strategy(create(name, **kwargs_for(name, len(tasks))))
            run = train_multitask(
                encoder, tasks, train, val, test, options=common.replace(strategy=strategy, baseline=val_base)
            )
            result = {t: {metric[t]: run.test[t][metric[t]]} for t in metric}
            rows[name].append(
                {**{t: result[t][metric[t]] for t in metric}, "delta_m": delta_m(result, base, directions)}
            )
        print(f"seed {seed} done after {time.perf_counter() - started:.0f} s", file=sys.stderr)
    task_names = [t.name for t in tasks]
    print(f"| method | {' | '.join(f'{t} {metric[t]}' for t in task_names)} | Δm% |")
    print("|---" * (len(task_names) + 2) + "|")
    for name in ["stl", *args.methods]:
        cells = [_mean_std([r[key] for r in rows[name]], scale) for key, scale in [(t, 100.0) for t in task_names]]
        cells.append(_mean_std([r["delta_m"] for r in rows[name]], 1.0))
        print(f"| {name} | {' | '.join(cells)} |")
    print(f"\n{args.seeds} seeds, {args.epochs} epochs, {time.perf_counter() - started:.0f} s", file=sys.stderr)


def _mean_std(values: list[float], scale: float) -> str:
    scaled = [scale * v for v in values]
    spread = statistics.stdev(scaled) if len(scaled) > 1 else 0.0
    return f"{statistics.fmean(scaled):.2f} ± {spread:.2f}"


if __name__ == "__main__":
    main()
