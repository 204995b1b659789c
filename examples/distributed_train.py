"""Multi-process training with torchrun: the script is the one-process script, unchanged.

    torchrun --standalone --nproc-per-node 2 examples/distributed_train.py
    python examples/distributed_train.py          # the same run in one process

Every process runs this file. The Trainer sees torchrun's environment variables, joins the other
processes (gloo on CPUs, nccl on GPUs), trains on its share of every batch and applies the update
one process would compute on the whole batch, so both commands print the same numbers (up to
float rounding). Only rank 0 prints and writes files.
"""

from __future__ import annotations

import torch
from torch import nn

from multitask import Strategy, Task, Trainer
from multitask.aggregation import UPGrad
from multitask.data import ArrayDataset
from multitask.models import MLP, HardSharing
from multitask.weighting import UW


def make_data(n: int = 2000, seed: int = 0) -> ArrayDataset:
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 8, generator=generator)
    signal = x[:, 0] + 0.5 * x[:, 1]
    label = (signal + 0.1 * torch.randn(n, generator=generator) > 0).float()
    value = 2.0 * signal - x[:, 2] + 0.1 * torch.randn(n, generator=generator)
    return ArrayDataset(x=x, cls=label, reg=value)


def main() -> None:
    data = make_data()
    train, test = data.subset(torch.arange(1500)), data.subset(torch.arange(1500, 2000))
    torch.manual_seed(0)  # every process builds the same model (the Trainer also copies rank 0's weights)
    tasks = [Task("cls", nn.Linear(16, 1), "binary"), Task("reg", nn.Linear(16, 1), "regression")]
    model = HardSharing(MLP(8, [32, 16]), tasks)
    trainer = Trainer(model, tasks, strategy=Strategy(UW(), UPGrad()), max_epochs=5, batch_size=64, lr=3e-3)
    trainer.fit(train)
    results = trainer.evaluate(test)  # every process gets the metrics of the whole test set
    if trainer.is_main_process:
        processes = trainer.distributed.world_size if trainer.distributed is not None else 1
        cls, reg = results["cls"]["accuracy"], results["reg"]["r2"]
        print(f"{processes} process(es): cls accuracy {cls:.4f}, reg r2 {reg:.4f}")
        if trainer.distributed is not None:
            steps = trainer.global_step
            for kind, total in sorted(trainer.distributed.bytes_by_kind.items()):
                print(f"  all-reduced per step, {kind}: {total / steps:,.0f} bytes")


if __name__ == "__main__":
    main()
