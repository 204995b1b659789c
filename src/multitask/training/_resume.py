"""`Checkpointing`, a base of `Trainer`: its whole state in a checkpoint, written, and read back to resume."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from multitask.errors import CheckpointError, ConfigError, NonFiniteLossError
from multitask.models import MultiTaskModel
from multitask.strategy import Strategy
from multitask.training._data import StepLoader
from multitask.training._selection import ModelSelection
from multitask.training._train_step import EpochTotals
from multitask.training.callbacks import Callback
from multitask.training.checkpoint import (
    capture_rng_state,
    checkpoint_path,
    list_checkpoints,
    load_checkpoint,
    non_finite_entries,
    prune_checkpoints,
    restore_rng_state,
    save_checkpoint,
)
from multitask.training.distributed import Distributed

_log = logging.getLogger("multitask")


class Checkpointing:
    """The checkpoints of `Trainer` (a base of `Trainer`, which sets these attributes)."""

    model: MultiTaskModel
    optimizer: Optimizer
    scheduler: LRScheduler | None
    scaler: torch.amp.GradScaler
    strategy: Strategy
    callbacks: list[Callback]
    task_names: tuple[str, ...]
    device: torch.device
    distributed: Distributed | None
    run_dir: Path | None
    keep_checkpoints: int
    seed: int
    epoch: int
    step_in_epoch: int
    global_step: int
    skipped_steps: int
    history: list[dict[str, float]]
    selection: ModelSelection
    _totals: EpochTotals

    if TYPE_CHECKING:  # defined by Trainer

        @property
        def is_main_process(self) -> bool: ...

        def state_dict(self) -> dict[str, Any]: ...

        def load_state_dict(self, state: Mapping[str, Any]) -> None: ...

    def _checkpoint_state(self) -> dict[str, Any]:
        """`Trainer.state_dict`."""
        return {
            "format": 1,
            "task_names": list(self.task_names),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict(),
            "strategy": self.strategy.state_dict(),
            "callbacks": {type(callback).__name__: callback.state_dict() for callback in self.callbacks},
            "rng": capture_rng_state(),
            "progress": {
                "epoch": self.epoch,
                "step_in_epoch": self.step_in_epoch,
                "global_step": self.global_step,
                "skipped_steps": self.skipped_steps,
            },
            "epoch_accumulators": self._totals.state_dict(),
            "history": self.history,
            "selection": self.selection.state_dict(),
        }

    def _restore(self, state: Mapping[str, Any]) -> None:
        """`Trainer.load_state_dict`."""
        if state.get("task_names") != list(self.task_names):
            raise CheckpointError(
                f"checkpoint is for tasks {state.get('task_names')}, this trainer has {list(self.task_names)}"
            )
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
        except (RuntimeError, ValueError, KeyError) as error:
            raise CheckpointError(f"checkpoint does not fit this model or optimiser: {error}") from error
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        self.strategy.load_state_dict(state["strategy"])
        for callback in self.callbacks:  # by class name: display-only callbacks may come and go
            if type(callback).__name__ in state["callbacks"]:
                callback.load_state_dict(state["callbacks"][type(callback).__name__])
        restore_rng_state(state["rng"])
        progress = state["progress"]
        self.epoch, self.step_in_epoch = progress["epoch"], progress["step_in_epoch"]
        self.global_step, self.skipped_steps = progress["global_step"], progress["skipped_steps"]
        self._totals.load_state_dict(state["epoch_accumulators"])
        self.history = [dict(record) for record in state["history"]]
        self.selection.load_state_dict(state["selection"])

    def _save_checkpoint(self) -> None:
        if self.run_dir is None:
            return
        directory = self.run_dir / "checkpoints"
        if self.is_main_process:  # every process holds the same state: rank 0 writes it
            state = self.state_dict()
            check_finite({"model": state["model"], "optimizer": state["optimizer"]}, self.global_step, "a checkpoint")
            save_checkpoint(checkpoint_path(directory, self.global_step), state)
            prune_checkpoints(directory, self.keep_checkpoints)
        if self.distributed is not None:
            self.distributed.barrier()

    def _resume(self) -> None:
        if self.run_dir is None:
            raise ConfigError("resume needs a run_dir holding checkpoints")
        checkpoints = list_checkpoints(self.run_dir / "checkpoints")
        if self.distributed is not None:  # rank 0 reads, everyone gets its state (no shared file system needed)
            state = self.distributed.run_on_main(lambda: load_checkpoint(checkpoints[-1]) if checkpoints else None)
        else:
            state = load_checkpoint(checkpoints[-1], map_location=self.device) if checkpoints else None
        if state is None:
            if self.is_main_process:
                warnings.warn(f"no checkpoint in {self.run_dir / 'checkpoints'}; starting from scratch", stacklevel=3)
            torch.manual_seed(self.seed)
            return
        try:
            self.load_state_dict(state)
        except CheckpointError as error:
            raise CheckpointError(f"{checkpoints[-1]}: {error}") from None
        except (KeyError, TypeError, ValueError, RuntimeError, AttributeError, IndexError) as error:
            raise CheckpointError(
                f"{checkpoints[-1]} is not a checkpoint of this trainer ({type(error).__name__}: {str(error)[:120]}); "
                "delete it to resume from an earlier one, or start a new run"
            ) from None

    def _restart_epoch_unless_exact(self, loader: StepLoader) -> None:
        """After a mid-epoch resume on a loader that cannot seek: start the interrupted epoch again (said once)."""
        if loader.exact_resume or self.step_in_epoch == 0:
            return
        if self.is_main_process:
            _log.warning(
                "resuming inside epoch %d: the training DataLoader's sampler cannot skip the %d steps already taken "
                "(use multitask.data.EpochSampler for an exact resume), so the epoch starts again from its first "
                "batch on the weights of the checkpoint",
                self.epoch + 1,
                self.step_in_epoch,
            )
        self.global_step -= self.step_in_epoch
        self.step_in_epoch = 0
        self._totals.reset()


def check_finite(state: Mapping[str, Any], step: int, what: str) -> None:
    """Nothing non-finite is ever written: ``state`` (weights, optimiser state) is checked before it is saved."""
    bad = non_finite_entries(dict(state))
    if bad:
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise NonFiniteLossError(
            f"after step {step} the weights hold NaN or infinite values ({shown}), so {what} is not written (the "
            "last good checkpoint is kept): the run diverged; lower the learning rate or set grad_clip"
        )
