"""`RunProgress`: the state of a run of several trainings, its ETA and its two lines on the terminal.

See `multitask.training.progress` for what the display shows.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from tqdm import tqdm

from multitask.errors import ConfigError
from multitask.training._summary import summary
from multitask.training._view import TrainerView

_log = logging.getLogger("multitask")

#: Widest text of running losses on the epoch line (beyond it the line is cut with an ellipsis).
_LOSSES_WIDTH = 48
#: Seconds between redraws of the run line during an epoch.
_RUN_REFRESH_S = 0.5


class _Line(tqdm):  # type: ignore[misc]  # tqdm has no type hints
    """A tqdm bar whose format may hold ``{right}``: a text set by the caller (losses, the run's times)."""

    right = ""

    @property
    def format_dict(self) -> dict[str, Any]:
        values: dict[str, Any] = super().format_dict
        values["right"] = self.right
        return values


_EPOCH_FORMAT = "  {desc}  step {n_fmt}/{total_fmt} ▕{bar}▏ {right}  [{elapsed}<{remaining}]"
_STREAM_FORMAT = "  {desc}  step {n_fmt} {right}  [{elapsed}, {rate_fmt}]"  # a stream: no length, no total
_STATUS_FORMAT = "  {desc}"
_RUN_FORMAT = "{desc} ▕{bar}▏ {right}"


@dataclass
class _Training:
    """One training of the run, as far as the display knows it."""

    index: int
    label: str
    max_epochs: int
    started: float
    steps_started: float | None = None  # when its first step of this session began
    steps_per_epoch: int | None = None
    epoch: int = 0
    first_position: int = 0  # steps already done when this session started them (a resume)
    position: int = 0  # steps of the whole training done
    seconds: float = 0.0  # wall time of its fit, once finished
    slot: float | None = None  # from its start to the next training's start (fit, evaluation, plots, ...)

    @property
    def planned_steps(self) -> int | None:
        return self.max_epochs * self.steps_per_epoch if self.steps_per_epoch is not None else None

    @property
    def steps_run(self) -> int:
        return self.position - self.first_position


class RunProgress:
    """The progress of a run of several trainings: which one trains, elapsed time and an ETA for the run.

    Give it to every `Trainer` of the run (``Trainer(progress=run)``); each reports its epochs, steps
    and statuses through a `ProgressBar` and, when it finishes, a summary line (`summary`). A
    training counts as started when its ``fit`` begins; more trainings than planned grow ``total``
    (`add_planned` changes the plan explicitly, e.g. once the number of task groups is known).

    The run's ETA is the current training's remaining time plus, for each training still to come,
    the mean time a finished training took from its start to the next one's (its fit, then its
    evaluation and plots; trainings that only resumed a finished run, with no step, are left out).
    The current training's remaining time is its own seconds per step (measured from its first
    step, so validation and checkpoints are included) times the steps it is still expected to take
    (``max_epochs × steps per epoch`` scaled by the fraction of their planned steps the finished
    trainings ran, below 1 when early stopping ended them early, but never before the end of the
    current epoch), plus the finished trainings' mean time after their fit. Before any training has
    finished, each one to come is assumed to take as long as the current one is projected to;
    before the first step, or for a stream of unknown length with nothing finished yet, the ETA is
    unknown (``?``). The trainings of a run differ in cost (a single-task model is cheaper than an
    MMoE on all tasks), so the ETA is an estimate that improves as trainings finish.

    Args:
        total: Number of trainings planned (None: unknown; grown as trainings arrive).
        name: The run's name, shown on the run line.
        root: The run folder; a training's label is its ``run_dir`` relative to it (``seed-1/mmoe``,
            ``stl/income``); without a ``run_dir`` the label is its task names joined with ``+``.
        bars: Draw the bars; False writes only the summary lines, to the ``multitask`` logger (INFO).
        run_bar: Draw the run line above the epoch line (False: the epoch line only, as for a lone Trainer).
        file: Where the bars and summary lines go (default: ``sys.stderr`` at construction).
        clock: Seconds of a monotonic clock (``time.perf_counter``; tests give their own).
    """

    def __init__(
        self,
        total: int | None = None,
        name: str | None = None,
        *,
        root: str | Path | None = None,
        bars: bool = True,
        run_bar: bool = True,
        file: IO[str] | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if total is not None and total < 0:
            raise ConfigError(f"total must be at least 0; got {total}")
        self.total = total
        self.name = name
        self.root = Path(root) if root is not None else None
        self.bars = bars
        self.run_bar = run_bar
        self.file: IO[str] = file if file is not None else sys.stderr
        self._clock = clock
        self.started = clock()
        self.current: _Training | None = None
        self.finished: list[_Training] = []
        self.summaries: list[str] = []
        self._run_line: _Line | None = None
        self._line: _Line | None = None
        self._line_format = ""
        self._last_run_refresh = -math.inf
        self._closed = False

    # ------------------------------------------------------------------ the plan
    @property
    def started_count(self) -> int:
        """Trainings started so far (finished ones and the current one)."""
        return len(self.finished) + (1 if self.current is not None else 0)

    def add_planned(self, count: int) -> None:
        """Change the number of planned trainings by ``count`` (negative: fewer); never below those started."""
        if self.total is not None:
            self.total = max(self.total + count, self.started_count)
            self._draw_run(force=True)

    def label_for(self, trainer: TrainerView) -> str:
        """The training's label: its ``run_dir`` relative to ``root``, else the folder's name or its task names."""
        directory = trainer.run_dir
        if directory is None:
            return "+".join(trainer.task_names)
        if self.root is not None:
            for path, root in ((directory, self.root), (directory.resolve(), self.root.resolve())):
                if path.is_relative_to(root):
                    relative = path.relative_to(root).as_posix()
                    return relative if relative != "." else directory.name
        return directory.name

    # ------------------------------------------------------------------ events from the trainers
    def start_training(self, label: str, max_epochs: int) -> int:
        """A training begins (its ``fit``); returns its number in the run, from 1."""
        if self.current is not None:  # the previous one ended without on_fit_end (an error was caught)
            self.current = None
        now = self._clock()
        if self.finished and self.finished[-1].slot is None:
            self.finished[-1].slot = now - self.finished[-1].started
        index = self.started_count + 1
        if self.total is not None and index > self.total:
            self.total = index
        self.current = _Training(index, label, max_epochs, now)
        self._draw_run(force=True)
        return index

    def status(self, text: str) -> None:
        """Show ``text`` on the epoch line (start-up, between epochs, between trainings)."""
        if not self._drawing():
            return
        label = self.current.label if self.current is not None else ""
        self._show(_STATUS_FORMAT, None, f"{label}  {text}…" if label else f"{text}…")
        self._draw_run(force=True)

    def start_epoch(self, epoch: int, num_steps: int | None, first_step: int) -> None:
        """The current training begins epoch ``epoch`` (from 0) of ``num_steps`` steps (None: a stream)."""
        training = self.current
        if training is None:
            return
        training.epoch, training.steps_per_epoch = epoch, num_steps
        position = epoch * num_steps + first_step if num_steps is not None else training.position
        if training.steps_started is None:
            training.steps_started, training.first_position = self._clock(), position
        training.position = position
        if self._drawing():
            self._show(
                _EPOCH_FORMAT if num_steps is not None else _STREAM_FORMAT,
                num_steps,
                f"{training.label}  epoch {epoch + 1}/{training.max_epochs}",
                first_step,
            )

    def step(self, losses: Mapping[str, float]) -> None:
        """One step of the current training done; ``losses``: the running mean loss of each task."""
        if self.current is not None:
            self.current.position += 1
        if self._line is not None and self._drawing():
            line = self._line
            line.right = _losses_text(losses)
            line.update(1)  # redraws at most every `mininterval`
            if line.total is not None and line.n >= line.total:  # the epoch's last step is always shown
                line.refresh()
            self._draw_run()

    def finish_training(self, trainer: TrainerView) -> str:
        """The current training ended; writes and returns its summary line (see `summary`)."""
        training = self.current
        if training is None:  # a Trainer that never reported its start
            training = self._finished_without_start(trainer)
        training.seconds = self._clock() - training.started
        self.finished.append(training)
        self.current = None
        line = summary(trainer, training.label, training.index, self.total, training.seconds)
        self.write(line)
        self.status(f"finishing {training.label}")
        return line

    def _finished_without_start(self, trainer: TrainerView) -> _Training:
        self.start_training(self.label_for(trainer), trainer.max_epochs)
        assert self.current is not None
        return self.current

    def write(self, line: str) -> None:
        """A permanent line above the bars (to the logger, at INFO, when there are no bars)."""
        self.summaries.append(line)
        if not self.bars:
            _log.info(line)
            return
        if self._closed:
            print(line, file=self.file)
        else:
            tqdm.write(line, file=self.file)

    def close(self) -> None:
        """Remove the bars (the summary lines stay)."""
        for line in (self._line, self._run_line):
            if line is not None:
                line.close()
        self._line = self._run_line = None
        self._closed = True

    def __enter__(self) -> RunProgress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ the estimate
    def eta(self) -> float | None:
        """Seconds the run still needs (see the class docstring); None when it cannot be told yet."""
        now = self._clock()
        done = [t for t in self.finished if t.steps_run > 0]
        slots = [t.slot if t.slot is not None else now - t.started for t in done]
        mean = sum(slots) / len(slots) if slots else None
        overhead = sum(slot - t.seconds for slot, t in zip(slots, done, strict=True)) / len(done) if done else 0.0
        current = self.current
        remaining = 0.0
        if current is not None:
            projected = self._projected_seconds(current, now)
            if projected is None and mean is None:
                return None
            if projected is not None:  # its fit from its step rate, then what came after the others' fits
                total_time = projected + max(0.0, overhead)
            else:
                total_time = max(mean or 0.0, now - current.started)
            remaining = max(0.0, total_time - (now - current.started))
            mean = mean if mean is not None else total_time
        if self.total is None:
            return remaining if current is not None else None
        future = max(0, self.total - self.started_count)
        if future and mean is None:
            return None
        return remaining + future * (mean or 0.0)

    def _stop_fraction(self) -> float:
        """Mean fraction of their planned steps the finished trainings ran (1 without early stopping)."""
        fractions = [t.position / planned for t in self.finished if (planned := t.planned_steps) and t.steps_run > 0]
        return min(1.0, max(0.0, sum(fractions) / len(fractions))) if fractions else 1.0

    def _projected_seconds(self, training: _Training, now: float) -> float | None:
        """The current training's projected wall time from its step rate; None before its first step."""
        planned = training.planned_steps
        if training.steps_started is None or training.steps_run <= 0 or planned is None:
            return None
        per_step = (now - training.steps_started) / training.steps_run
        assert training.steps_per_epoch is not None
        epoch_end = (training.epoch + 1) * training.steps_per_epoch
        expected = min(planned, max(self._stop_fraction() * planned, epoch_end, training.position))
        return (now - training.started) + (expected - training.position) * per_step

    def _fraction_done(self) -> float:
        """Trainings done, the current one counted by its share of its projected time."""
        done = float(len(self.finished))
        current = self.current
        if current is not None:
            now = self._clock()
            projected = self._projected_seconds(current, now)
            if projected is not None and projected > 0:
                done += min(0.99, (now - current.started) / projected)
        return done

    # ------------------------------------------------------------------ drawing
    def _drawing(self) -> bool:
        return self.bars and not self._closed

    def _show(self, bar_format: str, total: int | None, description: str, first_step: int = 0) -> None:
        """Put the epoch line in one of its modes (an epoch's steps, a stream's steps, a status)."""
        if self._line is None:
            self._draw_run(force=True)  # the run line first: it sits above
            self._line = self._bar(1 if self.run_bar else 0, bar_format, description)
        line = self._line
        line.bar_format = bar_format
        line.right = ""
        line.set_description_str(description, refresh=False)
        line.reset(total=total if total is not None else float("inf"))  # redraws
        if first_step:
            line.n = line.last_print_n = line.initial = first_step
            line.refresh()

    def _draw_run(self, *, force: bool = False) -> None:
        """Redraw the run line (during steps at most every `_RUN_REFRESH_S` seconds)."""
        if not self._drawing() or not self.run_bar:
            return
        now = self._clock()
        if not force and now - self._last_run_refresh < _RUN_REFRESH_S:
            return
        self._last_run_refresh = now
        run = self._run_line
        if run is None:
            run = self._run_line = self._bar(0, _RUN_FORMAT, "run")
        total = self.total if self.total is not None else max(self.started_count, 1)
        index = self.current.index if self.current is not None else len(self.finished)
        text = f"run {self.name}" if self.name else "run"
        if self.current is not None:
            text += f"  model {index}/{self.total if self.total is not None else '?'} · {self.current.label}"
        elif self.finished:
            text += f"  {len(self.finished)}/{self.total if self.total is not None else '?'} models done"
        eta = self.eta()
        run.total = max(total, 1)
        run.n = min(self._fraction_done(), float(run.total))
        run.set_description_str(text, refresh=False)
        elapsed = tqdm.format_interval(now - self.started)
        run.right = f"[{elapsed}<{tqdm.format_interval(eta) if eta is not None else '?'}]"
        run.refresh()

    def _bar(self, position: int, bar_format: str, description: str) -> _Line:
        return _Line(
            total=None,
            desc=description,
            bar_format=bar_format,
            file=self.file,
            position=position,
            leave=False,
            dynamic_ncols=True,
            disable=False,
            mininterval=0.1,
        )


def _losses_text(losses: Mapping[str, float]) -> str:
    text = " ".join(f"{name} {value:.4f}" for name, value in losses.items())
    return text if len(text) <= _LOSSES_WIDTH else text[: _LOSSES_WIDTH - 1] + "…"
