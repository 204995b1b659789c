"""A run on a user-written ``Dataset`` with random augmentation read by 2 worker processes, for the kill test:
``python _dataset_run.py RUN_DIR [--resume] [--loader]``.

``--loader`` passes the user's own ``DataLoader`` built on `multitask.data.EpochSampler` (no augmentation, since
the workers of a user's loader are not seeded per batch) instead of the dataset. Checkpoints after every step,
sleeps a little per step so that the test can kill it mid-epoch, writes the final parameters to ``final.pt``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from multitask import Task, Trainer
from multitask.data import EpochSampler, LoaderOptions
from multitask.models import MLP, HardSharing
from multitask.training import Callback, StepResult


class NoisyRows(Dataset[dict[str, Any]]):
    """Rows of a fixed table; with ``augment``, each read adds fresh Gaussian noise to ``x`` (torch's global RNG)."""

    def __init__(self, x: Tensor, augment: bool) -> None:
        self.x, self.augment = x, augment

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict[str, Any]:
        x = self.x[i]
        if self.augment:
            x = x + 0.1 * torch.randn_like(x)
        return {"x": x, "a": float(self.x[i, 0] > 0), "b": float(self.x[i, 1] - self.x[i, 2])}


class Slow(Callback):
    def on_step_end(self, trainer: Trainer, step: StepResult) -> None:
        time.sleep(0.03)


def main() -> None:
    run_dir = Path(sys.argv[1])
    resume, own_loader = "--resume" in sys.argv, "--loader" in sys.argv
    x = torch.randn(320, 6, generator=torch.Generator().manual_seed(1))
    train = NoisyRows(x[:256], augment=not own_loader)
    data: Any = train
    if own_loader:
        data = DataLoader(train, batch_size=32, sampler=EpochSampler(len(train), seed=5), num_workers=2)
    torch.manual_seed(0)
    tasks = [Task("a", MLP(16, [8], 1), "binary"), Task("b", nn.Linear(16, 1), "regression")]
    model = HardSharing(MLP(6, [32, 16], dropout=0.2), tasks)
    trainer = Trainer(
        model,
        tasks,
        max_epochs=3,
        batch_size=32,
        loading=LoaderOptions(num_workers=2),
        run_dir=run_dir,
        checkpoint_every=1,
        keep_checkpoints=3,
        callbacks=[Slow()],
        progress=False,
        seed=3,
    )
    trainer.fit(data, NoisyRows(x[256:], augment=False), resume=resume)
    torch.save({k: v.clone() for k, v in model.state_dict().items()}, run_dir / "final.pt")


if __name__ == "__main__":
    main()
