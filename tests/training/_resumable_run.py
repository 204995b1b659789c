"""A small training run used by the kill-and-resume test: ``python _resumable_run.py RUN_DIR [--resume]``.

It trains a dropout MLP on two tasks (so the resumed run must restore the RNG, the optimiser's
moments and the data position exactly), checkpointing after every step, and sleeps a little per
step so that the test can kill it mid-epoch. At the end it writes the final parameters to
``RUN_DIR/final.pt``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch
from torch import nn

from multitask import Task, Trainer
from multitask.data import ArrayDataset
from multitask.models import MLP, HardSharing
from multitask.training import Callback, StepResult


class Slow(Callback):
    def on_step_end(self, trainer: Trainer, step: StepResult) -> None:
        time.sleep(0.03)


def main() -> None:
    run_dir = Path(sys.argv[1])
    resume = "--resume" in sys.argv
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(480, 6, generator=generator)
    data = ArrayDataset(x=x, a=(x[:, 0] > 0).float(), b=x[:, 1] - x[:, 2])
    tasks = [Task("a", MLP(16, [8], 1), "binary"), Task("b", nn.Linear(16, 1), "regression")]
    model = HardSharing(MLP(6, [32, 16], dropout=0.2), tasks)
    trainer = Trainer(
        model,
        tasks,
        max_epochs=4,
        batch_size=32,
        run_dir=run_dir,
        checkpoint_every=1,
        keep_checkpoints=3,
        callbacks=[Slow()],
        progress=False,
        seed=3,
    )
    trainer.fit(data.subset(torch.arange(400)), data.subset(torch.arange(400, 480)), resume=resume)
    torch.save({k: v.clone() for k, v in model.state_dict().items()}, run_dir / "final.pt")


if __name__ == "__main__":
    main()
