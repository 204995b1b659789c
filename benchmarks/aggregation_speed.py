"""Speed of one full training step with gradient aggregation, against hand-written baselines and TorchJD.

Model: a shared MLP 512 → 512 → 512 (ReLU) and one linear regression head per task, batch 256,
T ∈ {2, 5, 10}. Each row times one full step of the library's Trainer (forward, per-task losses,
the strategy's update, optimiser step), from a batch already in memory:

- ``ew``: the default strategy (one backward pass of the summed loss);
- each aggregation method in Jacobian mode (batched per-task gradients, aggregation, write);
- ``upgrad (gramian)``: UPGrad in Gramian mode.

Baselines, written by hand with plain PyTorch: ``hand: summed loss`` (forward, ``sum().backward()``,
step) and ``hand: loop of T grads`` (forward, ``T`` calls of ``autograd.grad`` for the shared
parameters, heads by one backward, the mean written into ``.grad``, step). With TorchJD installed:
``torchjd: mtl_backward + UPGrad/MGDA`` (its ``mtl_backward`` then ``jac_to_grad``). The table gives
the median over ``--repeats`` steps (after 2 warm-up steps) and the ratio to the hand-written
summed-loss step.

    python benchmarks/aggregation_speed.py [--repeats 10] [--tasks 2 5 10] [--threads N]
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable

import torch
from torch import Tensor, nn

from multitask import Strategy, Task, Trainer
from multitask.aggregation import UPGrad, create, names
from multitask.models import MLP, HardSharing

WIDTH, BATCH = 512, 256


def build(num_tasks: int, strategy: Strategy | None) -> tuple[Trainer, list[tuple[dict[str, Tensor], tuple[str, ...]]]]:
    torch.manual_seed(0)
    tasks = [Task(f"t{i}", nn.Linear(WIDTH, 1), "regression") for i in range(num_tasks)]
    model = HardSharing(MLP(WIDTH, [WIDTH, WIDTH]), tasks)
    trainer = Trainer(model, tasks, strategy=strategy, progress=False, device="cpu")
    x = torch.randn(BATCH, WIDTH)
    batch = {"x": x, **{f"t{i}": x[:, i] + 0.1 * torch.randn(BATCH) for i in range(num_tasks)}}
    return trainer, [(batch, tuple(trainer.task_names))]


def time_steps(step: Callable[[], object], repeats: int) -> float:
    for _ in range(2):
        step()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def trainer_step(num_tasks: int, strategy: Strategy | None) -> Callable[[], object]:
    trainer, groups = build(num_tasks, strategy)
    return lambda: trainer._train_step(groups)


def hand_steps(num_tasks: int) -> dict[str, Callable[[], object]]:
    trainer, groups = build(num_tasks, None)
    model, optimizer = trainer.model, trainer.optimizer
    batch = groups[0][0]
    shared = list(model.shared_parameters())
    heads = [p for p in model.parameters() if all(p is not q for q in shared)]

    def losses() -> Tensor:
        outputs = model(batch)
        return torch.stack([(outputs[f"t{i}"].squeeze(1) - batch[f"t{i}"]).pow(2).mean() for i in range(num_tasks)])

    def summed() -> None:
        optimizer.zero_grad(set_to_none=True)
        losses().sum().backward()
        optimizer.step()

    def loop() -> None:
        optimizer.zero_grad(set_to_none=True)
        values = losses()
        rows = [torch.autograd.grad(value, shared, retain_graph=True) for value in values]
        torch.autograd.backward(values.sum(), inputs=heads)
        for k, parameter in enumerate(shared):
            parameter.grad = torch.stack([row[k] for row in rows]).mean(0)
        optimizer.step()

    result: dict[str, Callable[[], object]] = {"hand: summed loss": summed, "hand: loop of T grads": loop}
    try:
        import torchjd.aggregation as jd_aggregation
        from torchjd.autojac import jac_to_grad, mtl_backward
    except ImportError:
        return result

    def torchjd_step(aggregator: object) -> Callable[[], object]:
        def step() -> None:
            optimizer.zero_grad(set_to_none=True)
            features = model.encode(batch)
            values = [
                (model.heads[f"t{i}"](features).squeeze(1) - batch[f"t{i}"]).pow(2).mean() for i in range(num_tasks)
            ]
            mtl_backward(values, features=features)
            jac_to_grad(shared, aggregator)  # type: ignore[arg-type]
            optimizer.step()

        return step

    result["torchjd: mtl_backward + UPGrad"] = torchjd_step(jd_aggregation.UPGrad())
    result["torchjd: mtl_backward + MGDA"] = torchjd_step(jd_aggregation.MGDA())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--tasks", type=int, nargs="+", default=[2, 5, 10])
    parser.add_argument("--threads", type=int, default=None)
    arguments = parser.parse_args()
    if arguments.threads is not None:
        torch.set_num_threads(arguments.threads)
    warnings.simplefilter("ignore")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), median of {arguments.repeats} steps")
    for num_tasks in arguments.tasks:
        rows: dict[str, float] = {}
        for label, step in hand_steps(num_tasks).items():
            rows[label] = time_steps(step, arguments.repeats)
        rows["ew (default strategy)"] = time_steps(trainer_step(num_tasks, None), arguments.repeats)
        for name in names():
            rows[name] = time_steps(trainer_step(num_tasks, Strategy(aggregation=create(name))), arguments.repeats)
        gramian = Strategy(aggregation=UPGrad(), mode="gramian")
        rows["upgrad (gramian mode)"] = time_steps(trainer_step(num_tasks, gramian), arguments.repeats)
        base = rows["hand: summed loss"]
        print(f"\nT = {num_tasks}\n| step | median ms | × hand summed |\n|---|---:|---:|")
        for label, seconds in rows.items():
            print(f"| {label} | {1e3 * seconds:.1f} | {seconds / base:.2f} |")


if __name__ == "__main__":
    main()
