"""Progress display: run → model → epoch → step, with totals and ETAs, and one line per finished model.

A `RunProgress` follows a whole run (e.g. every training of ``multitask train``: the single-task
models, the multi-task model, each architecture, the transfer runs, every seed); each `Trainer`
given it reports to it through its `ProgressBar` callback. On a terminal it draws two lines::

    run census-demo  model 2/4 · mtl ▕████████          ▏ [00:34<01:10]
      mtl  epoch 3/10  step 120/400 ▕████      ▏ income 0.3102 marital 0.0811  [00:04<00:09]

The second line turns into a status between epochs and during start-up (``loading data``,
``validating``, ``saving checkpoint``), so the screen is never blank. After each training one
permanent line stays above the bars::

    ✓ mtl (2/4)  10 epochs  34.2 s  best epoch 7  val Δm +1.23% income/auc 0.9512 marital/auc 0.9941

Without bars (``bars=False``: stderr is not a terminal, CI) only that line is written, to the
``multitask`` logger at level INFO. This module holds the `ProgressBar` callback; `RunProgress` (the
run's state, its ETA and its lines) and `summary` (the line) live in private modules and are re-exported.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from typing import IO

from multitask.training._run_progress import RunProgress
from multitask.training._summary import summary
from multitask.training._view import TrainerView
from multitask.training.callbacks import Callback, StepResult

__all__ = ["ProgressBar", "RunProgress", "progress_wanted", "summary"]


def progress_wanted() -> bool:
    """Progress bars only on an interactive terminal and never when ``CI`` is set."""
    return sys.stderr.isatty() and not os.environ.get("CI")


class ProgressBar(Callback[TrainerView]):
    """Shows a training's epochs and steps with the running mean loss of each task, and its summary line.

    Args:
        run: The run it belongs to (`RunProgress`); None: a run of this one training, drawn without a
            run line, on ``file``.
        label: The training's name on the display (default: `RunProgress.label_for`).
        file: Where a lone training's bar goes (default ``sys.stderr``); unused with ``run``.
    """

    def __init__(
        self, run: RunProgress | None = None, *, label: str | None = None, file: IO[str] | None = None
    ) -> None:
        self.run = run if run is not None else RunProgress(None, run_bar=False, file=file)
        self._alone = run is None
        self._label = label
        self._started = False
        self._sums: dict[str, float] = {}
        self._count = 0

    def _start(self, trainer: TrainerView) -> None:
        if not self._started:
            self._started = True
            self.run.start_training(self._label or self.run.label_for(trainer), trainer.max_epochs)

    def on_status(self, trainer: TrainerView, text: str) -> None:
        self._start(trainer)
        self.run.status(text)

    def on_fit_start(self, trainer: TrainerView) -> None:
        self._start(trainer)

    def on_epoch_start(self, trainer: TrainerView, epoch: int, num_steps: int | None, first_step: int) -> None:
        self._start(trainer)
        self._sums, self._count = {}, 0
        self.run.start_epoch(epoch, num_steps, first_step)

    def on_step_end(self, trainer: TrainerView, step: StepResult) -> None:
        self._count += 1
        for name, value in step.losses.items():
            if not math.isnan(value):
                self._sums[name] = self._sums.get(name, 0.0) + value
        self.run.step({name: total / self._count for name, total in self._sums.items()})

    def on_epoch_end(self, trainer: TrainerView, record: Mapping[str, float]) -> None:
        self.run.status(f"epoch {trainer.epoch}/{trainer.max_epochs} done")  # trainer.epoch: epochs done

    def on_fit_end(self, trainer: TrainerView) -> None:
        self._start(trainer)
        self.run.finish_training(trainer)
        self._started = False  # a second fit of the same trainer is another training
        if self._alone:
            self.run.close()
            self.run = RunProgress(None, run_bar=False, file=self.run.file)
