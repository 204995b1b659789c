"""Census-Income (the MMoE paper's real data): test AUC per task for STL, Shared-Bottom, MMoE and PLE, over seeds.

Runs the `multitask demo` config (``src/multitask/configs/census_demo.yaml``: income > 50K and
"never married", 5 epochs, each model keeping its best validation epoch) once per seed and prints
a Markdown table of the mean ± std test AUC of each task, Δm% against the single-task models and
the training time of each method.

    python benchmarks/architectures_census.py --seeds 3
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from importlib import resources
from pathlib import Path

import yaml

from multitask.config import parse_config
from multitask.experiment import run_experiment

NAMES = {"stl": "single-task", "mtl": "Shared-Bottom (hard sharing)", "mmoe": "MMoE", "ple": "PLE"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=None, help="override the demo's epochs")
    args = parser.parse_args()
    raw = yaml.safe_load(resources.files("multitask").joinpath("configs/census_demo.yaml").read_text())
    if args.epochs is not None:
        raw["training"]["epochs"] = args.epochs
    raw["training"]["checkpoint_every"] = None
    auc: dict[str, dict[str, list[float]]] = {}
    delta: dict[str, list[float]] = {}
    seconds: dict[str, list[float]] = {}
    for seed in range(args.seeds):
        config = parse_config(raw | {"seed": seed}, source="demo config")
        with tempfile.TemporaryDirectory() as folder:
            comparison = run_experiment(config, output=Path(folder), progress=False)
        for method, per_task in comparison.results.items():
            for task, metrics in per_task.items():
                auc.setdefault(method, {}).setdefault(task, []).append(metrics["auc"])
            if method != "stl":
                delta.setdefault(method, []).append(comparison.delta_m(method))
            seconds.setdefault(method, []).append(comparison.seconds.get(method, float("nan")))
        print(f"seed {seed} done", flush=True)
    tasks = list(next(iter(auc.values())))
    print(f"\n| method | {' | '.join(f'{t} AUC' for t in tasks)} | Δm% vs STL | seconds |")
    print("|---|" + "---|" * (len(tasks) + 2))
    for method, per_task in auc.items():
        cells = [f"{statistics.fmean(v):.4f} ± {statistics.pstdev(v):.4f}" for v in per_task.values()]
        d = delta.get(method)
        cells.append(f"{statistics.fmean(d):+.2f} ± {statistics.pstdev(d):.2f}" if d else "—")
        cells.append(f"{statistics.fmean(seconds[method]):.0f}")
        print(f"| {NAMES.get(method, method)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
