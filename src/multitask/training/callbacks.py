"""Callbacks: hooks into the training loop for progress, logs and plots (as Lightning's)."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic

import torch
from typing_extensions import TypeVar

from multitask.data import Step
from multitask.models import SharedPrivate
from multitask.training._view import TrainerView
from multitask.training.checkpoint import atomic_write_bytes

#: The trainer a callback's hooks are typed against: any `TrainerView` (a plain ``Callback``'s hooks take any trainer).
TrainerT = TypeVar("TrainerT", bound=TrainerView, default=Any, contravariant=True)


@dataclass(frozen=True)
class StepResult:
    """What one optimisation step did."""

    epoch: int
    step: int
    global_step: int
    losses: dict[str, float]
    weights: dict[str, float]
    skipped: bool = False


class Callback(Generic[TrainerT]):
    """Hooks are no-ops; override the ones you need. Whatever `state_dict` returns goes into checkpoints.

    The `Trainer` calls the hooks with itself. A plain ``Callback`` subclass may annotate it as it
    likes (``trainer: Trainer``); ``Callback[TrainerView]``, as the library's own callbacks are, has
    the type checker hold the hooks to what `TrainerView` offers, so that they run under any trainer.
    """

    def on_fit_start(self, trainer: TrainerT) -> None:
        """Before the first step (also when resuming)."""

    def on_epoch_start(self, trainer: TrainerT, epoch: int, num_steps: int | None, first_step: int) -> None:
        """Before the first step of an epoch (``first_step > 0`` when resuming inside it; ``num_steps`` None
        when the training data is a stream of unknown length)."""

    def on_step_start(self, trainer: TrainerT, groups: Step) -> None:
        """Before each optimisation step, with its batches ``[(batch, task names), ...]`` (on their original device).

        A callback that runs the model here (e.g. a gradient probe) must leave no trace on the step:
        restore the model's mode, clear the gradients it made, and fork the RNG if it draws.
        """

    def on_step_end(self, trainer: TrainerT, step: StepResult) -> None:
        """After each optimisation step."""

    def on_epoch_end(self, trainer: TrainerT, record: Mapping[str, float]) -> None:
        """After validation, with the epoch's record (also appended to ``trainer.history``)."""

    def on_fit_end(self, trainer: TrainerT) -> None:
        """After the last epoch or early stop."""

    def on_status(self, trainer: TrainerT, text: str) -> None:
        """When the trainer works outside the steps: ``text`` says at what (``preparing data``, ``validating``,
        ``saving checkpoint``, ...; the progress display shows it)."""

    def state_dict(self) -> dict[str, Any]:
        """State to checkpoint."""
        return {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what `state_dict` returned."""


def _history_columns(history: Sequence[Mapping[str, float]]) -> list[str]:
    columns: list[str] = []
    for record in history:
        columns += [key for key in record if key not in columns]
    return columns


class EpochMeanLogger(Callback[TrainerView]):
    """Base of the loggers that add per-epoch means to the epoch's record (``trainer.history[-1]``).

    Subclasses call `add` during the epoch with a key, a value and its weight; at the epoch's end
    each key's weighted mean (NaN where the weights sum to zero) joins the record, which the file
    and TensorBoard loggers then write. The running sums are checkpointed, so a resumed epoch's
    means are exact.
    """

    def __init__(self) -> None:
        self._sums: dict[str, float] = {}
        self._counts: dict[str, float] = {}

    def add(self, key: str, value: float, count: float = 1.0) -> None:
        """Add ``value`` (already multiplied by ``count``) with weight ``count`` to ``key``'s running mean."""
        self._sums[key] = self._sums.get(key, 0.0) + value
        self._counts[key] = self._counts.get(key, 0.0) + count

    def on_epoch_start(self, trainer: TrainerView, epoch: int, num_steps: int | None, first_step: int) -> None:
        if first_step == 0:
            self._sums, self._counts = {}, {}

    def on_epoch_end(self, trainer: TrainerView, record: Mapping[str, float]) -> None:
        if trainer.history:
            trainer.history[-1].update(
                {
                    key: total / self._counts[key] if self._counts[key] > 0 else math.nan
                    for key, total in self._sums.items()
                }
            )
        self._sums, self._counts = {}, {}

    def state_dict(self) -> dict[str, Any]:
        return {"sums": dict(self._sums), "counts": dict(self._counts)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._sums, self._counts = dict(state["sums"]), dict(state["counts"])


class GateLogger(EpochMeanLogger):
    """Adds each gate's mean weight per expert over the epoch to the epoch's record, as ``gate/NAME/EXPERT``.

    For mixture-of-experts models (`multitask.models.MMoE`, ``PLE``, ``DSelectK``): which experts
    each task relies on, logged with the other metrics (``metrics.csv``, TensorBoard). Does nothing
    for models without gates. Its running sums are checkpointed, so a resumed epoch's means are exact.
    """

    def on_step_end(self, trainer: TrainerView, step: StepResult) -> None:
        gates = trainer.model.last_gates()
        if trainer.distributed is not None and gates:  # the means over the global batch: sums and row counts
            rows = [
                torch.cat([w.detach().double().sum(dim=0).cpu(), torch.tensor([float(len(w))])]) for w in gates.values()
            ]
            totals = torch.split(trainer.distributed.all_reduce(torch.cat(rows), "logs"), [len(r) for r in rows])
            means = {name: (t[:-1] / t[-1].clamp(min=1)).float() for name, t in zip(gates, totals, strict=True)}
        else:
            means = {name: weights.detach().float().mean(dim=0).cpu() for name, weights in gates.items()}
        for name, mean in means.items():
            for expert, value in enumerate(mean.tolist()):
                self.add(f"gate/{name}/{expert}", value)


class AggregationWeightLogger(EpochMeanLogger):
    """Adds the aggregator's mean task weights over the epoch to the record, as ``aggregation_weight/TASK``.

    For gradient aggregation methods that act through task weights (`GramianAggregator`: MGDA,
    UPGrad, Nash-MTL, ...): the update on the shared parameters is ``Σ_t w'_t ∇(w_t L_t)`` and this
    logs ``w'_t`` (the weighting's ``w_t`` are logged as ``weight/TASK``). The mean is over the
    steps where the task was present (NaN if it never was). Its running sums are checkpointed.
    """

    def on_step_end(self, trainer: TrainerView, step: StepResult) -> None:
        weights = trainer.aggregation_weights
        if weights is None or step.skipped:
            return
        for name, weight in zip(trainer.task_names, weights.detach().double().cpu().tolist(), strict=True):
            present = math.isfinite(step.losses[name])
            self.add(f"aggregation_weight/{name}", weight if present else 0.0, 1.0 if present else 0.0)


class AdversaryLogger(EpochMeanLogger):
    """Adds the adversarial game's diagnostics, averaged over the epoch's steps, to the epoch's record.

    Keys: ``adversary/accuracy`` and ``adversary/loss`` (the task discriminator on the training
    steps' shared features, before its update; chance is ``1/T`` and ``ln T``),
    ``adversary/coefficient`` (λ at the epoch's last step) and, for a
    `multitask.models.SharedPrivate` model, ``model/orthogonality`` (``Σ_t ‖S_tᵀ H_t‖²_F``). With a
    run folder it also draws ``adversary.png`` at the end of training. Its sums are checkpointed.
    """

    def __init__(self, directory: Path | None = None) -> None:
        super().__init__()
        self.directory = directory
        self._coefficient = math.nan

    def on_step_end(self, trainer: TrainerView, step: StepResult) -> None:
        if step.skipped:
            return
        adversary = trainer.strategy.adversary
        if adversary is not None and adversary.last_loss is not None and adversary.last_accuracy is not None:
            count = float(adversary.last_count)
            self.add("adversary/loss", float(adversary.last_loss) * count, count)
            self.add("adversary/accuracy", float(adversary.last_accuracy) * count, count)
            self._coefficient = adversary.last_coefficient
        if isinstance(trainer.model, SharedPrivate) and trainer.model.last_orthogonality is not None:
            self.add("model/orthogonality", float(trainer.model.last_orthogonality))

    def on_epoch_end(self, trainer: TrainerView, record: Mapping[str, float]) -> None:
        super().on_epoch_end(trainer, record)
        if trainer.history and trainer.strategy.adversary is not None:
            trainer.history[-1]["adversary/coefficient"] = self._coefficient

    def on_fit_end(self, trainer: TrainerView) -> None:
        if self.directory is not None and trainer.history:
            from multitask.adversarial import plot_adversary

            plot_adversary(trainer.history, len(trainer.task_names), self.directory / "adversary.png")

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "coefficient": self._coefficient}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        super().load_state_dict(state)
        self._coefficient = state["coefficient"]


class MetricsLogger(Callback[TrainerView]):
    """Writes the whole history to ``metrics.csv`` and ``metrics.jsonl`` in the run folder after each epoch.

    The files are rewritten atomically from ``trainer.history``, so a resumed run never shows a
    duplicated or half-written epoch.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def on_epoch_end(self, trainer: TrainerView, record: Mapping[str, float]) -> None:
        write_history(trainer.history, self.directory)


def write_history(history: Sequence[Mapping[str, float]], directory: Path) -> None:
    """``metrics.csv`` (one row an epoch) and ``metrics.jsonl`` (one JSON object an epoch) in ``directory``.

    Epochs are numbered from 1, as in the progress bar, the logs and the plots, and written as integers.
    """
    rows = [{**record, "epoch": int(record["epoch"])} if "epoch" in record else dict(record) for record in history]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=_history_columns(history))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(directory / "metrics.csv", text.getvalue().encode())
    lines = "".join(json.dumps(record) + "\n" for record in rows)
    atomic_write_bytes(directory / "metrics.jsonl", lines.encode())


class TensorBoardLogger(Callback[TrainerView]):
    """Epoch scalars to TensorBoard (``RUN_DIR/tensorboard``); created only when tensorboard is installed."""

    def __init__(self, directory: Path) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self._writer = SummaryWriter(log_dir=str(directory))

    def on_epoch_end(self, trainer: TrainerView, record: Mapping[str, float]) -> None:
        epoch = int(record["epoch"])
        for key, value in record.items():
            if key != "epoch" and not math.isnan(value):
                self._writer.add_scalar(key, value, epoch)
        self._writer.flush()

    def on_fit_end(self, trainer: TrainerView) -> None:
        self._writer.close()


def tensorboard_available() -> bool:
    """Whether ``torch.utils.tensorboard`` can be used (the ``tensorboard`` package is installed)."""
    import importlib.util

    return importlib.util.find_spec("tensorboard") is not None


class CurvePlot(Callback[TrainerView]):
    """At the end of training, ``curves.png``: per task, losses and validation metrics; then the task weights."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def on_fit_end(self, trainer: TrainerView) -> None:
        if trainer.history:
            aggregation = trainer.strategy.aggregation
            name = type(aggregation).__name__ if aggregation is not None else None
            plot_curves(trainer.history, trainer.task_names, self.directory / "curves.png", aggregation=name)


def plot_curves(
    history: Sequence[Mapping[str, float]], task_names: Sequence[str], path: Path, *, aggregation: str | None = None
) -> None:
    """`curves_figure` saved as a PNG at ``path``."""
    import matplotlib.pyplot as plt

    figure = curves_figure(history, task_names, aggregation=aggregation)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def weight_panels(
    history: Sequence[Mapping[str, float]], task_names: Sequence[str], *, aggregation: str | None = None
) -> list[tuple[str, list[str]]]:
    """The weight panels `curves_figure` draws: ``(title, history keys)`` each, the weights that shaped the update.

    With a gradient aggregation that acts through task weights (UPGrad, MGDA, Nash-MTL, ...; logged as
    ``aggregation_weight/TASK``) the shared parameters' update is ``Σ_t w'_t ∇(w_t L_t)``: the first panel
    is ``w'``, and the loss weighting's ``w`` (``weight/TASK``) follows only when it is not the constant
    1 of equal weighting. Without such weights (no aggregation, or one such as GradDrop whose update is
    not a weighted sum of the task gradients) the panel is the loss weights ``w``, and its title says
    when an aggregator then combined the weighted gradients.
    """
    columns = _history_columns(history)
    loss_keys = [f"weight/{name}" for name in task_names if f"weight/{name}" in columns]
    aggregation_keys = [f"aggregation_weight/{name}" for name in task_names if f"aggregation_weight/{name}" in columns]
    panels: list[tuple[str, list[str]]] = []
    if aggregation_keys:
        update = r"shared update $\sum_t w'_t \nabla(w_t L_t)$"
        title = f"{aggregation or 'aggregation'} weights $w'_t$ (mean per epoch)\n{update}"
        panels.append((title, aggregation_keys))
    values = {record.get(key, math.nan) for record in history for key in loss_keys}
    if loss_keys and not (aggregation_keys and values == {1.0}):
        title = "loss weights $w_t$ (mean per epoch)"
        if aggregation is not None and not aggregation_keys:
            title += f"\nthen {aggregation} (no per-task weights)"
        panels.append((title, loss_keys))
    return panels


def curves_figure(
    history: Sequence[Mapping[str, float]], task_names: Sequence[str], *, aggregation: str | None = None
) -> Any:
    """One row of panels per task: losses (train and validation), then each validation metric by epoch.

    A last row shows the task weights per epoch (`weight_panels`: the aggregator's weights when it
    has them, else the loss weighting's), so that one sees how the strategy moved the balance between
    tasks. ``aggregation`` names the strategy's aggregator for the titles. Returns the matplotlib Figure.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [int(record["epoch"]) for record in history]
    columns = _history_columns(history)
    metric_keys = {
        name: [key for key in columns if key.startswith(f"val/{name}/") and not key.endswith("/loss")]
        for name in task_names
    }
    panels = weight_panels(history, task_names, aggregation=aggregation)
    width = max(1 + max((len(keys) for keys in metric_keys.values()), default=0), len(panels))
    rows = len(task_names) + (1 if panels else 0)
    figure, axes = plt.subplots(rows, width, figsize=(3.6 * width, 2.8 * rows), squeeze=False)
    for row, name in enumerate(task_names):
        for split in ("train", "val"):
            key = f"{split}/{name}/loss"
            if key in columns:
                axes[row][0].plot(epochs, [r.get(key, math.nan) for r in history], marker="o", label=split)
        axes[row][0].set_title(f"{name}: loss")
        axes[row][0].legend()
        for col, key in enumerate(metric_keys[name], start=1):
            axes[row][col].plot(epochs, [r.get(key, math.nan) for r in history], marker="o", color="C1")
            axes[row][col].set_title(f"{name}: {key.rsplit('/', 1)[1]} (val)")
        for col in range(len(metric_keys[name]) + 1, width):
            axes[row][col].axis("off")
        for ax in axes[row]:
            ax.set_xlabel("epoch")
    for col, (title, keys) in enumerate(panels):  # how the strategy balanced the tasks: mean weight per epoch
        ax = axes[-1][col]
        for key in keys:
            ax.plot(epochs, [r.get(key, math.nan) for r in history], marker="o", label=key.split("/", 1)[1])
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch")
        ax.legend()
    if panels:
        for ax in axes[-1][len(panels) :]:
            ax.axis("off")
    figure.tight_layout()
    return figure
