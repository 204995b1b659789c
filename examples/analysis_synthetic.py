"""What the analysis tools recover on tasks with a known structure, and the HTML report of it all.

The problem (`multitask.analysis.synthetic_task_groups`): six regression tasks on 20 features.
``a0, a1, a2`` share one latent factor, ``b0, b1`` another, and ``adv``'s target is the negative of
``a0``'s. The shared MLP has one output per factor, and each task reads its factor's output through
a positive scale, so ``adv`` pulls the shared factor the wrong way. The script

1. trains all six tasks together with the gradient conflict monitor and TAG's look-ahead affinity
   (every 2 steps), prints both matrices and the recommended groupings;
2. trains single-task models and the all-in-one model for ``--seeds`` seeds on a small training set
   and prints the negative transfer verdicts (95% t intervals of the paired gains);
3. trains the recommended three groups and compares them with single-task and all-in-one models;
4. sweeps preference vectors (linear and smooth Tchebycheff scalarisation) on the conflicting pair
   ``a0``/``adv`` and prints each sweep's hypervolume next to equal weighting's single point;
5. explains: an MMoE's gate usage per task, and the features and task clusters of linear models
   (L2,1 and clustered) on a sparse linear version of the problem;
6. writes the HTML report of everything: ``OUTPUT/report.html``.

    python examples/analysis_synthetic.py --output runs/analysis-synthetic

Runs in about a minute on two CPU cores.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from multitask import Trainer, TrainerOptions
from multitask.analysis import (
    GradientConflictMonitor,
    TaskAffinityMonitor,
    build_report,
    gate_usage,
    negative_transfer_from_comparisons,
    selected_features,
    synthetic_task_groups,
    task_clusters,
)
from multitask.linear import LeastSquaresClustered, LeastSquaresL21
from multitask.models import MLP, HardSharing, MMoE
from multitask.studies import compare, pareto_sweep, train_groups


def matrix(title: str, names: list[str], values: np.ndarray) -> None:
    print(f"\n{title}")
    print("        " + "".join(f"{n:>8}" for n in names))
    for name, row in zip(names, values, strict=True):
        print(f"{name:>8}" + "".join(f"{v:+8.3f}" for v in row))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=Path("runs/analysis-synthetic"))
    parser.add_argument("--seeds", type=int, default=5, help="seeds of the negative transfer test")
    args = parser.parse_args()
    started = time.perf_counter()
    torch.set_num_threads(1)
    out = args.output
    options = TrainerOptions(batch_size=10, lr=1e-2, max_epochs=10, progress=False)

    # 1. one joint run: gradient conflict and look-ahead affinity
    joint = synthetic_task_groups(300, seed=0)
    names = joint.task_names
    conflict, affinity = GradientConflictMonitor(every=2), TaskAffinityMonitor(every=2)
    tasks = joint.tasks()
    torch.manual_seed(0)  # the initial weights
    trainer = Trainer(
        HardSharing(joint.encoder(), tasks),
        tasks,
        max_epochs=4,
        batch_size=50,
        lr=1e-2,
        run_dir=out / "joint",
        callbacks=[conflict, affinity],
        progress=False,
    )
    trainer.fit(joint.data)
    matrix(f"mean gradient cosine over {len(conflict.history)} sampled steps", names, conflict.history.mean_cosine())
    values = affinity.affinity.array().copy()
    np.fill_diagonal(values, np.nan)
    matrix("TAG look-ahead affinity Z(row → column), x100", names, 100 * values)
    print("\nrecommended groups (partition; cover = TAG's overlapping selection):")
    for k in (2, 3, 4):
        partition, cover = affinity.affinity.group(k), affinity.affinity.group(k, overlap=True)
        print(f"  {k} models: {partition}    cover: {cover}")
    print(f"  true groups: {' | '.join('{' + ', '.join(g) + '}' for g in joint.true_groups)}")

    # 2. negative transfer: single-task vs all-in-one over seeds, small training set
    small = synthetic_task_groups(460, seed=0)
    train, test = small.data.subset(torch.arange(60)), small.data.subset(torch.arange(60, 460))
    comparisons = [
        compare(
            small.encoder(),
            small.tasks(),
            train,
            None,
            test,
            seed=s,
            run_dir=out / "transfer" / f"seed-{s}",
            options=options,
        )
        for s in range(args.seeds)
    ]
    verdicts = negative_transfer_from_comparisons(comparisons, conflict=conflict.history, affinity=affinity.affinity)
    verdicts.write(out / "transfer")
    print(f"\nnegative transfer (60 training rows, {args.seeds} seeds):\n{verdicts.to_markdown()}")

    # 3. train the recommended groups
    grouping = affinity.affinity.group(3)
    grouped = train_groups(
        small.encoder(), small.tasks(), grouping, train, None, test, run_dir=out / "groups", options=options
    )
    print(f"\ngroups {grouping} against single-task and all-in-one (test MSE):\n{grouped.to_markdown(['mse'])}")

    # 4. trade-off sweep on the conflicting pair a0 / adv
    pair = [t for t in small.tasks() if t.name in ("a0", "adv")]
    equal = compare(small.encoder(), pair, train, None, test, methods=("mtl",), options=options).results["mtl"]
    front = pareto_sweep(
        small.encoder(),
        pair,
        train,
        None,
        test,
        resolution=8,
        others={"equal weights": {t: equal[t]["mse"] for t in ("a0", "adv")}},
        stch_options={"warmup_epochs": 1},
        run_dir=out / "pareto",
        options=options,
    )
    print(
        "\ntrade-off a0 vs adv (test MSE), hypervolume against reference",
        [round(v, 3) for v in front.reference_point()],
    )
    for method in front.methods:
        print(f"  {method:>7}: {front.hypervolume(method):.4f} ({len(front.front(method))} non-dominated points)")
    print(f"  equal weights (one point): {front.point_hypervolume('equal weights'):.4f}")

    # 5. explanations: MMoE gates, linear feature selection and task clusters
    experts = [MLP(joint.num_features, [16], 2) for _ in range(4)]
    torch.manual_seed(0)
    mmoe_tasks = joint.tasks()
    mmoe = MMoE(experts, mmoe_tasks, in_features=joint.num_features)
    Trainer(mmoe, mmoe_tasks, max_epochs=8, batch_size=50, lr=1e-2, run_dir=out / "mmoe", progress=False).fit(
        joint.data
    )
    print("\nMMoE gate usage (mean weight of each of 4 experts):")
    for gate, weights in gate_usage(mmoe, joint.data).items():
        print(f"  {gate:>4}: " + " ".join(f"{w:.2f}" for w in weights))
    generator = np.random.default_rng(0)
    x = generator.standard_normal((300, 20))
    u, v = x[:, :3].sum(axis=1), x[:, 3:6].sum(axis=1)  # sparse factors: features 0-2 and 3-5
    y = np.stack([1.0 * u, 0.9 * u, 1.1 * u, v, 0.8 * v, -u], axis=1) + 0.5 * generator.standard_normal((300, 6))
    l21 = LeastSquaresL21(alpha=0.3).fit(x, y)
    chosen = selected_features(l21, task_names=names)
    print(f"\nL2,1 (alpha=0.3) selects {len(chosen.selected)} of 20 features: {sorted(chosen.selected)}")
    clustered = LeastSquaresClustered(alpha=1.0, beta=0.01, n_clusters=3).fit(x, y)
    print(f"clustered MTL (k=3) task clusters: {task_clusters(clustered, task_names=names)}")

    # 6. the report
    path = build_report(out, title="analysis of the synthetic task groups")
    print(f"\nreport: {path} ({path.stat().st_size / 1e6:.1f} MB); wall time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
