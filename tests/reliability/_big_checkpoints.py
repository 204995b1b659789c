"""A run whose checkpoints are large (about 50 MB), so that a SIGKILL can land inside a write:
``python _big_checkpoints.py RUN_DIR [--resume]``; writes the final parameters to ``RUN_DIR/final.pt``."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

from multitask import Task, Trainer
from multitask.data import ArrayDataset
from multitask.models import MLP, HardSharing


def main() -> None:
    run_dir = Path(sys.argv[1])
    x = torch.randn(256, 16, generator=torch.Generator().manual_seed(0))
    data = ArrayDataset(x=x, a=(x[:, 0] > 0).float(), b=x[:, 1])
    torch.manual_seed(0)
    tasks = [Task("a", nn.Linear(2048, 1), "binary"), Task("b", nn.Linear(2048, 1), "regression")]
    model = HardSharing(MLP(16, [2048, 2048], dropout=0.1), tasks)
    trainer = Trainer(
        model, tasks, max_epochs=2, batch_size=32, run_dir=run_dir, checkpoint_every=1, keep_checkpoints=2,
        progress=False, seed=1,
    )  # fmt: skip
    trainer.fit(data, resume="--resume" in sys.argv)
    torch.save({k: v.clone() for k, v in model.state_dict().items()}, run_dir / "final.pt")


if __name__ == "__main__":
    main()
