"""Small training runs compared between one process and several (gloo on CPU), and the worker that runs them.

Every case trains the same tiny three-task model (a binary task with a third of its labels missing,
a regression task, a three-class task) on the same data for a few epochs; with ``distributed`` the
Trainer splits each batch between the processes. Batches of 25 rows split 13 / 12 (the last one, of one
row, 1 / 0: a process with no row at all), and the missing
labels make the processes' label counts differ, so the loss shares are exercised.
"""

from __future__ import annotations

import json
import os
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from multitask import Strategy, Task, Trainer
from multitask.aggregation import MGDA, CAGrad, GradDrop, GradVac, NashMTL, PCGrad, UPGrad
from multitask.data import ArrayDataset
from multitask.errors import DistributedError
from multitask.models import MLP, HardSharing, MMoE
from multitask.models._base import MultiTaskModel
from multitask.regularizers import L2
from multitask.training import Callback, CurvePlot, StepResult
from multitask.training.distributed import Distributed
from multitask.weighting import DWA, EW, FAMO, RLW, UW, GradNorm

NUM_ROWS = 151  # the last batch of each epoch has one row: one process gets none
BATCH_SIZE = 25


def make_data(seed: int = 0, n: int = NUM_ROWS) -> ArrayDataset:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=generator)
    signal = x[:, 0] - 0.5 * x[:, 1]
    binary = (signal > 0).float()
    binary[torch.rand(n, generator=generator) < 0.35] = float("nan")
    regression = signal + x[:, 2] + 0.1 * torch.randn(n, generator=generator)
    classes = torch.bucketize(x[:, 3] + signal, torch.tensor([-0.5, 0.5]))
    return ArrayDataset(x=x, a=binary, b=regression, c=classes)


def make_tasks() -> list[Task]:
    return [
        Task("a", nn.Linear(8, 1), "binary"),
        Task("b", nn.Linear(8, 1), "regression"),
        Task("c", nn.Linear(8, 3), "multiclass"),
    ]


def _model(name: str) -> tuple[MultiTaskModel, list[Task]]:
    torch.manual_seed(0)
    tasks = make_tasks()
    if name.startswith("mmoe"):
        return MMoE([MLP(6, [8]) for _ in range(3)], tasks, in_features=6), tasks
    return HardSharing(MLP(6, [16, 8], dropout=0.3 if "dropout" in name else 0.0), tasks), tasks


def _strategy(name: str, model: nn.Module) -> Strategy:
    if name == "ew":
        return Strategy(EW())
    if name == "uw":
        return Strategy(UW())
    if name == "dwa":
        return Strategy(DWA())
    if name == "gradnorm":
        return Strategy(GradNorm(alpha=1.0))
    if name == "mgda":
        return Strategy(aggregation=MGDA())
    if name in ("pcgrad", "pcgrad_dropout"):  # three tasks: the order is random (PyTorch's global generator)
        return Strategy(aggregation=PCGrad())
    if name == "cagrad":
        return Strategy(aggregation=CAGrad())
    if name == "nash_mtl":
        return Strategy(aggregation=NashMTL())
    if name == "upgrad_gramian_l2":  # Gramian mode, with a parameter penalty on the shared parameters
        return Strategy(UW(), UPGrad(), mode="gramian", regularizers=[L2(list(model.parameters()), 1e-2)])
    if name == "mgda_representation":  # MGDA-UB: the Gramian of the representation gradients
        return Strategy(aggregation=MGDA(), mode="representation")
    if name == "mmoe_uw":  # gates: their per-epoch means are logged from the global batch
        return Strategy(UW())
    if name == "rlw":  # random weights from the global generator
        return Strategy(RLW())
    if name == "famo":  # state: the previous step's losses
        return Strategy(FAMO())
    if name == "graddrop":  # not a Gramian method: the full Jacobian path, random draws
        return Strategy(aggregation=GradDrop())
    if name == "gradvac":  # state: EMA of the gradient similarities; random order
        return Strategy(aggregation=GradVac())
    raise KeyError(name)


#: The issue's list: these run in the default test suite.
REQUIRED = ["ew", "uw", "dwa", "gradnorm", "mgda", "pcgrad", "cagrad", "nash_mtl", "multi_input_mgda"]
#: More paths (Gramian mode with a penalty, representation mode, multi-input weighting, gates, the full
#: Jacobian, random and stateful methods): slow-marked.
EXTRA = [
    "upgrad_gramian_l2",
    "mgda_representation",
    "multi_input_ew",
    "multi_input_gradnorm",
    "mmoe_uw",
    "rlw",
    "famo",
    "graddrop",
    "gradvac",
]
#: Dropout draws differ between one process and several: only the processes' agreement is checked.
IN_SYNC_ONLY = ["pcgrad_dropout"]


def run_case(name: str, distributed: Distributed | bool, epochs: int = 3) -> dict[str, Any]:
    """Train case ``name``; its final parameters (model and strategy), history and test evaluation."""
    model, tasks = _model(name)
    train: ArrayDataset | dict[str, ArrayDataset]
    val: ArrayDataset | dict[str, ArrayDataset]
    if name.startswith("multi_input_"):
        method = name.removeprefix("multi_input_")
        data = make_data()
        train = {"a": data.subset(torch.arange(0, 60)), "b": make_data(1, 90), "c": make_data(2, 40)}
        val = {"a": make_data(3, 30), "b": make_data(4, 41), "c": make_data(5, 17)}
    else:
        method, train, val = name, make_data(), make_data(3, 71)
    strategy = _strategy(method, model)
    trainer = Trainer(
        model,
        tasks,
        strategy=strategy,
        max_epochs=epochs,
        batch_size=BATCH_SIZE,
        eval_batch_size=16,
        lr=1e-2,
        restore_best=False,
        progress=False,
        seed=4,
        distributed=distributed,
    )
    history = trainer.fit(train, val)
    state = {f"model.{k}": v.detach().clone() for k, v in model.state_dict().items()}
    floating = {k: v for k, v in strategy.state_dict().items() if isinstance(v, torch.Tensor) and v.is_floating_point()}
    state.update({f"strategy.{k}": v.detach().clone() for k, v in floating.items()})
    numbers = {f"{i}/{k}": v for i, record in enumerate(history) for k, v in record.items() if k != "time/epoch_s"}
    numbers.update({f"test/{t}/{m}": v for t, ms in trainer.evaluate(val).items() for m, v in ms.items()})
    return {"state": state, "numbers": numbers}


def max_difference(a: dict[str, Any], b: dict[str, Any]) -> tuple[float, float]:
    """Largest differences between two `run_case` results.

    Parameters: the largest absolute difference. Logged numbers: the largest ``|x − y| / max(1, |y|)``,
    absolute for numbers up to 1 and relative above (Nash-MTL's weights, ``∝ 1/‖g‖``, reach 12 here).
    """
    assert a["state"].keys() == b["state"].keys() and a["numbers"].keys() == b["numbers"].keys()
    parameters = max(float((v.double() - b["state"][k].double()).abs().max()) for k, v in a["state"].items())
    pairs = [(v, b["numbers"][k]) for k, v in a["numbers"].items()]
    numbers = max(0.0 if v == w or (v != v and w != w) else abs(v - w) / max(1.0, abs(w)) for v, w in pairs)
    return parameters, numbers


def parity_worker(rank: int, world_size: int, store: str, out: str, cases: Sequence[str]) -> None:
    """Run ``cases`` distributed, then this process's share of the one-process references; write the differences."""
    try:
        torch.set_num_threads(1)
        meeting = f"file://{store}"
        distributed = Distributed.init("gloo", init_method=meeting, rank=rank, world_size=world_size, timeout=60)
        results: dict[str, Any] = {}
        finals = {name: run_case(name, distributed) for name in cases}
        others = distributed.all_gather_object({name: _fingerprint(final["state"]) for name, final in finals.items()})
        for name in cases[rank::world_size]:
            parameters, numbers = max_difference(finals[name], run_case(name, False))
            results[name] = {
                "parameters": parameters,
                "logged": numbers,
                "processes_identical": all(other[name] == others[0][name] for other in others),
            }
        Path(out, f"rank{rank}.json").write_text(json.dumps(results))
        distributed.close()
    except BaseException:
        Path(out, f"rank{rank}.error").write_text(traceback.format_exc())
        os._exit(1)


def _fingerprint(state: dict[str, torch.Tensor]) -> list[float]:
    return [float(v.double().sum()) for v in state.values()]


def launch(target: Callable[..., None], world_size: int, *args: Any, timeout: float = 240) -> list[int | None]:
    """Fork ``world_size`` processes running ``target(rank, world_size, *args)``; their exit codes."""
    import multiprocessing

    context = multiprocessing.get_context("fork")  # no fresh interpreter: torch is already imported
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # its first use imports torch._dynamo (seconds): do it once
    processes = [context.Process(target=target, args=(rank, world_size, *args)) for rank in range(world_size)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout)
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join()
    return [process.exitcode for process in processes]


# ---------------------------------------------------------------------- kill and resume
EPOCHS_TO_RESUME = 3


class _Slow(Callback):
    """Sleeps after every step, so that a test can kill a process mid-run."""

    def on_step_end(self, trainer: Trainer, step: StepResult) -> None:
        time.sleep(0.05)


def resumable_fit(
    run_dir: Path, distributed: Distributed | bool | None, *, slow: bool, resume: bool = False
) -> Trainer:
    """UW and MGDA on three tasks, checkpointed (``slow``: after every step, and sleeping after each); ``final.pt``."""
    model, tasks = _model("mgda")
    trainer = Trainer(
        model,
        tasks,
        strategy=Strategy(UW(), MGDA()),
        max_epochs=EPOCHS_TO_RESUME,
        batch_size=BATCH_SIZE,
        lr=1e-2,
        progress=False,
        seed=5,
        run_dir=run_dir,
        checkpoint_every=1 if slow else None,  # the killed run: one after every step
        keep_checkpoints=2,
        callbacks=[_Slow()] if slow else [],
        distributed=distributed,
    )
    trainer.callbacks = [c for c in trainer.callbacks if not isinstance(c, CurvePlot)]  # seconds of matplotlib
    trainer.fit(make_data(), make_data(3, 40), resume=resume)
    if trainer.is_main_process:
        torch.save({k: v.clone() for k, v in model.state_dict().items()}, run_dir / "final.pt")
    return trainer


def killable_worker(rank: int, world_size: int, store: str, run_dir: str) -> None:
    """`resumable_fit` in a process group; a `DistributedError` is written to ``rankN.error`` (exit code 3)."""
    try:
        torch.set_num_threads(1)
        meeting = f"file://{store}"
        distributed = Distributed.init("gloo", init_method=meeting, rank=rank, world_size=world_size, timeout=30)
        resumable_fit(Path(run_dir), distributed, slow=True)
    except DistributedError as error:
        Path(run_dir, f"rank{rank}.error").write_text(str(error))
        os._exit(3)
    except BaseException:
        Path(run_dir, f"rank{rank}.crash").write_text(traceback.format_exc())
        os._exit(1)


def main() -> None:
    """Print the parity table of docs/distributed.md: every case, two processes against one."""
    import tempfile

    torch.set_num_threads(1)
    cases = REQUIRED + EXTRA + IN_SYNC_ONLY
    with tempfile.TemporaryDirectory() as folder:
        codes = launch(parity_worker, 2, str(Path(folder) / "store"), folder, cases)
        if codes != [0, 0]:
            raise SystemExit("\n".join(p.read_text() for p in Path(folder).glob("*.error")))
        results: dict[str, Any] = {}
        for rank in range(2):
            results.update(json.loads(Path(folder, f"rank{rank}.json").read_text()))
    print("| case | parameters: max abs difference | logged numbers: max difference | processes agree |")
    print("|---|---|---|---|")
    for name in cases:
        result = results[name]
        same = "yes" if result["processes_identical"] else "NO"
        print(f"| {name} | {result['parameters']:.1e} | {result['logged']:.1e} | {same} |")


if __name__ == "__main__":
    main()
