"""Shared short runs on the synthetic task groups (cached per session: several tests read the same run)."""

from __future__ import annotations

import functools
from pathlib import Path

import torch

from multitask import Trainer
from multitask.analysis import (
    Comparison,
    GradientConflictMonitor,
    ParetoFront,
    ParetoPoint,
    SyntheticGroups,
    TaskAffinityMonitor,
    negative_transfer,
    synthetic_task_groups,
)
from multitask.models import HardSharing, MMoE
from multitask.training.callbacks import write_history


@functools.lru_cache(maxsize=1)
def joint_run() -> tuple[SyntheticGroups, GradientConflictMonitor, TaskAffinityMonitor]:
    """All six synthetic tasks trained together (300 rows, 4 epochs of 6 steps), both monitors every 2 steps."""
    torch.manual_seed(0)
    problem = synthetic_task_groups(300, seed=0)
    tasks = problem.tasks()
    conflict, affinity = GradientConflictMonitor(every=2), TaskAffinityMonitor(every=2)
    trainer = Trainer(
        HardSharing(problem.encoder(), tasks),
        tasks,
        max_epochs=4,
        batch_size=50,
        lr=1e-2,
        callbacks=[conflict, affinity],
        progress=False,
    )
    trainer.fit(problem.data)
    return problem, conflict, affinity


def report_folder(directory: Path) -> Path:
    """A run folder with every artifact the report reads: an MMoE run with both monitors, a comparison,
    negative transfer verdicts, a Pareto front and a config. Returns ``directory``."""
    torch.manual_seed(0)
    problem = synthetic_task_groups(200, seed=0)
    tasks = [task for task in problem.tasks() if task.name in ("a0", "b0", "adv")]  # three tasks: small plots
    model = MMoE([problem.encoder() for _ in range(3)], tasks, in_features=problem.num_features)
    conflict, affinity = GradientConflictMonitor(every=2), TaskAffinityMonitor(every=2)
    trainer = Trainer(
        model, tasks, max_epochs=2, batch_size=50, lr=1e-2, callbacks=[conflict, affinity], progress=False
    )
    trainer.fit(problem.data.subset(torch.arange(150)), problem.data.subset(torch.arange(150, 200)))
    # the files a run folder gets (without TensorBoard, checkpoints and plots, which the report does not need)
    write_history(trainer.history, directory / "mmoe")
    conflict.history.write(directory / "mmoe" / "conflict.jsonl")
    affinity.affinity.write(directory / "mmoe" / "affinity.json")
    names = [task.name for task in tasks]
    stl = {t: {"mse": 1.0 + 0.1 * k} for k, t in enumerate(names)}
    mtl = {t: {"mse": (2.0 if t == "adv" else 0.9) + 0.1 * k} for k, t in enumerate(names)}
    directions = {t: {"mse": False} for t in names}
    Comparison({"stl": stl, "mtl": mtl}, directions).write(directory)
    seeds = [0.0, 0.05, -0.05]
    verdicts = negative_transfer(
        [{t: {"mse": v["mse"] + s} for t, v in stl.items()} for s in seeds],
        [{t: {"mse": v["mse"] + s} for t, v in mtl.items()} for s in seeds],
        directions,
    )
    verdicts.write(directory)
    front = ParetoFront(["a0", "adv"], {"a0": "mse", "adv": "mse"}, {"a0": False, "adv": False})
    front.points = [
        ParetoPoint(method, [p, 1 - p], {"a0": 1.0 + 2 * (1 - p) ** 2 + shift, "adv": 1.0 + 2 * p**2 + shift})
        for method, shift in (("linear", 0.1), ("stch", 0.0))
        for p in (0.2, 0.4, 0.6, 0.8)
    ]
    front.others = {"equal weights": {"a0": 1.8, "adv": 1.8}}
    front.write(directory / "pareto")
    (directory / "config.yaml").write_text("name: report-test\nseed: 0\n")
    return directory
