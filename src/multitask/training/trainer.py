"""`Trainer`: the one training loop every strategy plugs into, with validation, early stopping and resume.

This module holds the class and its fit loop; its bases hold the rest: the optimisation step and the end
of an epoch (`_train_step`), evaluation (`_evaluation`), checkpoints (`_resume`); `_arguments` checks
what it is given.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from multitask._device import check_device
from multitask.data import LoaderOptions, Sampling
from multitask.errors import ConfigError
from multitask.jacobian import JacobianEngine
from multitask.models import MultiTaskModel, SharedPrivate
from multitask.strategy import Strategy
from multitask.tasks import Task
from multitask.training._arguments import (
    StrategyFactory,
    check_arguments,
    check_strategy,
    default_device,
    make_strategy,
    unique,
)
from multitask.training._data import Data, StepLoader, TaskData, loader_length
from multitask.training._distributed_step import DistributedStep
from multitask.training._evaluation import Evaluation
from multitask.training._resume import Checkpointing, check_finite
from multitask.training._selection import ModelSelection, resolve_monitor
from multitask.training._train_step import EpochTotals, TrainSteps
from multitask.training.callbacks import (
    AdversaryLogger,
    AggregationWeightLogger,
    Callback,
    CurvePlot,
    GateLogger,
    MetricsLogger,
    TensorBoardLogger,
    tensorboard_available,
)
from multitask.training.checkpoint import save_checkpoint, sweep_temporaries
from multitask.training.distributed import Distributed
from multitask.training.lock import RunFolderLock
from multitask.training.progress import ProgressBar, RunProgress, progress_wanted
from multitask.types import ResultsDict

OptimizerFactory = Callable[[Iterable[nn.Parameter]], Optimizer]
SchedulerFactory = Callable[[Optimizer], LRScheduler]
Results = ResultsDict  # its name here before multitask.types


class Trainer(TrainSteps, Evaluation, Checkpointing):
    """Fits a `MultiTaskModel` on its tasks with a `Strategy`; evaluates and predicts.

    Each step: forward the step's batches, compute each task's loss over its labelled samples
    (`multitask.task_losses`), turn them into ``.grad`` with `multitask.backward` (the one update
    rule, which a user's own loop calls the same way), clip, step, then ``strategy.after_step``.
    The strategy is set up for the tasks before the optimiser is built, so learnable task weights
    are trained by it; epoch-level strategies get each epoch's mean training losses. After each
    epoch: validate, log, select the best model on ``monitor``, stop early after ``patience`` epochs
    without improvement. With a ``run_dir`` the trainer writes checkpoints (every
    ``checkpoint_every`` steps and after every epoch), ``metrics.csv``/``metrics.jsonl``,
    TensorBoard scalars when tensorboard is installed, ``curves.png`` and the final ``model.pt``;
    ``fit(resume=True)`` continues from the newest checkpoint, replaying the same batches.

    Args:
        model: The multi-task model.
        tasks: Its tasks (names must match the model's).
        strategy: How per-task losses become the update (equal weighting by default): a `Strategy`, or a
            function that returns a new one, called once, so that this trainer has a strategy of its own.
        engine: How per-task gradients are computed (`multitask.jacobian.JacobianEngine`: batched or a
            loop, chunks, the update from the Jacobian or by one more backward pass); default: the
            faster choice for the device. It changes the cost, never the update.
        optimizer: ``params -> Optimizer``; Adam with ``lr`` by default.
        lr: Learning rate of the default optimizer.
        scheduler: ``optimizer -> LRScheduler``, stepped after every epoch or step (``scheduler_interval``).
        scheduler_interval: ``"epoch"`` or ``"step"``.
        max_epochs: Number of epochs.
        batch_size: Rows per batch (per task batch with multi-input data; there also ``{task: rows}``).
        eval_batch_size: Rows per batch when evaluating or predicting.
        sampling: Task sampling rule with multi-input data (``round_robin``, ``proportional``, ``uniform``,
            ``temperature``; see `multitask.data.TaskSchedule`).
        temperature: τ of ``sampling="temperature"``: task t is drawn with probability ∝ n_t^(1/τ).
        tasks_per_step: Tasks drawn per step with multi-input data (None: all).
        steps_per_epoch: Steps per epoch with multi-input data (None: the loader's default).
        shuffle: Draw training batches in a new random order every epoch; False keeps the data order.
        loading: How datasets are read (`multitask.data.LoaderOptions`: worker processes, pinned memory,
            prefetching, ``collate_fn``, names of tuple items, a training-only per-sample transform).
        monitor: Validation key that selects the best model: ``"val/loss"`` (mean task loss),
            ``"val/TASK/METRIC"``, or ``"val/delta_m"`` (needs ``baseline``). Defaults to
            ``val/delta_m`` with a baseline, else ``val/loss``.
        patience: Stop after this many epochs without improvement of ``monitor`` (None: never).
        restore_best: Load the best epoch's weights at the end of `fit`.
        baseline: ``{task: {metric: value}}`` on the validation split (e.g. single-task results), for Δm.
        grad_clip: Clip the global gradient norm to this value.
        mixed_precision: Autocast the forward pass (float16 with loss scaling on CUDA, bfloat16 on CPU).
        device: Where to train; CUDA when available, else CPU.
        on_nonfinite: A NaN/inf task loss either raises `NonFiniteLossError` (``"raise"``) or skips
            the step without touching the weights (``"skip"``; counted in ``skipped_steps``).
        run_dir: Folder for checkpoints, logs and plots; None keeps everything in memory.
        checkpoint_every: Also checkpoint every this many steps (epochs always end with one).
        keep_checkpoints: How many checkpoints to keep.
        callbacks: Extra callbacks.
        progress: Show progress (`multitask.training.progress`): True draws this training's epoch and step bar
            with its running losses and a status between epochs, then one summary line (epochs, time, best
            validation values); None does so on a terminal unless ``CI`` is set; False shows nothing. A
            `RunProgress` makes this training one of a run: its bar reports to it (model i of n, the run's
            ETA), labelled with ``run_dir`` relative to the run's folder, and its summary line is the
            run's (written to the ``multitask`` logger when the run has no bars).
        seed: Seeds the data order and, at the start of a fresh `fit`, PyTorch's global generator.
        distributed: Multi-process training (``torchrun``; see `multitask.training.distributed`):
            None joins the processes when there are several (``WORLD_SIZE > 1`` or an initialised
            process group), True requires it, False never does; or a `Distributed`. Each process
            then trains on rows ``rank::world_size`` of every batch and all apply the update one
            process would compute on the whole batch; only rank 0 writes files and shows progress.
    """

    def __init__(
        self,
        model: MultiTaskModel,
        tasks: Sequence[Task],
        *,
        strategy: Strategy | StrategyFactory | None = None,
        engine: JacobianEngine | None = None,
        optimizer: OptimizerFactory | None = None,
        lr: float = 1e-3,
        scheduler: SchedulerFactory | None = None,
        scheduler_interval: Literal["epoch", "step"] = "epoch",
        max_epochs: int = 10,
        batch_size: int | Mapping[str, int] = 256,
        eval_batch_size: int = 4096,
        sampling: Sampling = "round_robin",
        temperature: float | None = None,
        tasks_per_step: int | None = None,
        steps_per_epoch: int | None = None,
        shuffle: bool = True,
        loading: LoaderOptions | None = None,
        monitor: str | None = None,
        patience: int | None = None,
        restore_best: bool = True,
        baseline: Mapping[str, Mapping[str, float]] | None = None,
        grad_clip: float | None = None,
        mixed_precision: bool = False,
        device: str | torch.device | None = None,
        on_nonfinite: Literal["raise", "skip"] = "raise",
        run_dir: str | Path | None = None,
        checkpoint_every: int | None = None,
        keep_checkpoints: int = 2,
        callbacks: Sequence[Callback] = (),
        progress: bool | RunProgress | None = None,
        seed: int = 0,
        distributed: bool | Distributed | None = None,
    ) -> None:
        check_arguments(
            model,
            tasks,
            max_epochs=max_epochs,
            eval_batch_size=eval_batch_size,
            batch_size=batch_size,
            patience=patience,
            grad_clip=grad_clip,
            checkpoint_every=checkpoint_every,
            lr=lr,
            on_nonfinite=on_nonfinite,
            scheduler_interval=scheduler_interval,
        )
        self.distributed = Distributed.resolve(distributed)
        if self.distributed is not None:  # one GPU per process: cuda:LOCAL_RANK
            device = self.distributed.training_device(device)
        self.device = check_device(device) if device is not None else default_device()
        self.model = model.to(self.device)
        self.tasks = {task.name: task for task in tasks}
        self.task_names = tuple(self.tasks)
        self.strategy = make_strategy(strategy)
        check_strategy(self.strategy, model, self.distributed)
        self.strategy.setup(self.task_names)  # creates learnable weights before the optimiser collects them
        self.strategy.to(self.device)
        self.engine = engine if engine is not None else (self.strategy.legacy_engine or JacobianEngine())
        self._shared_parameters = tuple(self.model.shared_parameters())
        adversary = self.strategy.adversary
        # the alternating scheme's discriminator is trained by its own optimiser only
        excluded = {id(p) for p in adversary.separately_trained_parameters()} if adversary is not None else set()
        self._parameters = unique(
            [p for p in [*self.model.parameters(), *self.strategy.parameters()] if id(p) not in excluded]
        )
        self._total_steps = 1  # of the whole fit, for the adversary's schedule; set by fit
        self.optimizer = (optimizer or (lambda params: torch.optim.Adam(params, lr=lr)))(self._parameters)
        self.scheduler = scheduler(self.optimizer) if scheduler is not None else None
        self.scheduler_interval = scheduler_interval
        self.max_epochs, self.batch_size, self.eval_batch_size = max_epochs, batch_size, eval_batch_size
        self.sampling, self.tasks_per_step, self.steps_per_epoch = sampling, tasks_per_step, steps_per_epoch
        self.shuffle, self.temperature = shuffle, temperature
        self.loading = loading if loading is not None else LoaderOptions()
        self.baseline = {t: dict(m) for t, m in baseline.items()} if baseline is not None else None
        self.monitor = monitor
        self.restore_best = restore_best
        self.grad_clip, self.on_nonfinite = grad_clip, on_nonfinite
        self.mixed_precision = mixed_precision
        self._amp_dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=mixed_precision and self.device.type == "cuda")
        shared_ids = {id(p) for p in self._shared_parameters}
        self._task_parameters = [p for p in self._parameters if p.requires_grad and id(p) not in shared_ids]
        self._last_step = None
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.checkpoint_every, self.keep_checkpoints = checkpoint_every, keep_checkpoints
        self.seed = seed
        self._distributed_step = (
            DistributedStep(self.distributed, self.model, seed) if self.distributed is not None else None
        )
        self.callbacks = list(callbacks) + self._default_callbacks(progress)
        # progress of the run; all of it goes into checkpoints
        self.epoch = 0
        self.step_in_epoch = 0
        self.global_step = 0
        self.skipped_steps = 0
        self.history = []
        self.selection = ModelSelection(higher_is_better=False, patience=patience)
        self._totals = EpochTotals(len(tasks))
        self._epoch_seconds = math.nan
        self._unscanned = frozenset()  # tasks whose training batches are checked as they arrive
        self._seen = set()  # of those, the ones read in this epoch

    def _default_callbacks(self, progress: bool | RunProgress | None) -> list[Callback]:
        result: list[Callback] = [GateLogger()]  # before the loggers: they add to the epoch's record
        if self.strategy.aggregation is not None:
            result.append(AggregationWeightLogger())
        if self.strategy.adversary is not None or isinstance(self.model, SharedPrivate):
            result.append(AdversaryLogger(self.run_dir if self.is_main_process else None))
        if not self.is_main_process:  # multi-process: only rank 0 shows progress and writes files
            return result
        if isinstance(progress, RunProgress):
            result.append(ProgressBar(progress))
        elif progress or (progress is None and progress_wanted()):
            result.append(ProgressBar())
        if self.run_dir is not None:
            result += [MetricsLogger(self.run_dir), CurvePlot(self.run_dir)]
            if tensorboard_available():
                result.append(TensorBoardLogger(self.run_dir / "tensorboard"))
        return result

    @property
    def is_main_process(self) -> bool:
        """True on rank 0 of a multi-process run and in a single-process run: the process that writes files."""
        return self.distributed is None or self.distributed.is_main

    @property
    def aggregation_weights(self) -> Tensor | None:
        """The aggregator's task weights ``[T]`` in the last step (methods that act through weights; else None)."""
        return self._last_step.aggregation_weights if self._last_step is not None else None

    # ------------------------------------------------------------------ fit
    def fit(self, train: Data, val: Data | None = None, *, resume: bool = False) -> list[dict[str, float]]:
        """Train for ``max_epochs`` (or until early stopping) and return the per-epoch history.

        Args:
            train: One source whose rows carry every task's labels, or ``{task: source}``; a source is an
                `ArrayDataset` (or a mapping of column tensors), a map-style ``torch.utils.data.Dataset`` of dict
                items (read with `loading`), an ``IterableDataset``, or your own ``DataLoader``. A mid-epoch
                resume replays the same batches, except on a ``DataLoader`` whose sampler is not a
                `multitask.data.EpochSampler` or on a stream: those start the interrupted epoch again (logged).
            val: Validation data of the same form, for per-epoch metrics, model selection and early stopping.
            resume: Continue from the newest checkpoint in ``run_dir`` (a fresh start when there is none).
        """
        tasks = list(self.tasks.values())
        self._status("preparing data")
        train_data = TaskData(train, tasks, role="training", options=self.loading)
        val_data = TaskData(val, tasks, role="validation", options=self.loading) if val is not None else None
        if self.selection.patience is not None and val_data is None:
            raise ConfigError("early stopping (patience) needs validation data: fit(train, val)")
        unknown = [t for t in self.baseline or {} if t not in self.tasks]
        if unknown:
            raise ConfigError(f"baseline has unknown task(s) {unknown}; tasks are {list(self.task_names)}")
        monitor, higher_is_better = resolve_monitor(
            self.monitor, list(self.tasks.values()), self.baseline is not None, val_data is not None
        )
        self.selection.higher_is_better = higher_is_better
        if self.strategy.adversary is not None and not train_data.is_multi_input:
            raise ConfigError(
                "adversarial training needs multi-input data, {task: dataset}: the discriminator predicts which "
                "task's dataset a sample came from, and in one dataset for all tasks every sample belongs to every task"
            )
        loader = train_data.loader(
            self.task_names,
            self.batch_size,
            self.sampling,
            self.tasks_per_step,
            self.steps_per_epoch,
            self.shuffle,
            temperature=self.temperature,
            transform=self.loading.train_transform,
        )
        num_steps = loader_length(loader)
        if num_steps is None and self.strategy.adversary is not None:
            raise ConfigError(
                "the adversary's schedule needs the number of steps: a stream has none; set steps_per_epoch or "
                "give a dataset with a length"
            )
        self._total_steps = max(1, self.max_epochs * (num_steps or 1))
        self._unscanned = train_data.unscanned
        lock = RunFolderLock(self.run_dir) if self.run_dir is not None and self.is_main_process else None
        if lock is not None:  # one writer per run folder, and no partial file of a killed writer left behind
            lock.acquire()
            for folder in (lock.directory, lock.directory / "checkpoints"):
                sweep_temporaries(folder)
        try:
            return self._fit(loader, num_steps, train_data, val_data, monitor, resume)
        finally:
            if lock is not None:
                lock.release()

    def _fit(
        self,
        loader: StepLoader,
        num_steps: int | None,
        train_data: TaskData,
        val_data: TaskData | None,
        monitor: str | None,
        resume: bool,
    ) -> list[dict[str, float]]:
        if self._distributed_step is not None:
            self._distributed_step.start(self, train_data, val_data, num_steps)
        if resume:
            self._status("resuming from a checkpoint")
            self._resume()
            self._restart_epoch_unless_exact(loader)
        else:
            torch.manual_seed(self.seed)
        for callback in self.callbacks:
            callback.on_fit_start(self)
        validate = functools.partial(self._validation_record, val_data) if val_data is not None else None
        while self.epoch < self.max_epochs and not self.selection.should_stop:
            steps = loader.epoch(self.epoch, self.seed, self.step_in_epoch)
            if self._distributed_step is not None:
                steps = self._distributed_step.shard(steps)
            self._run_epoch(steps, num_steps)
            if self._distributed_step is not None:
                self._distributed_step.synchronise(self.epoch, [self.model, self.strategy])
            self._status("validating" if val_data is not None else "ending the epoch")
            record = self._end_epoch(validate, monitor)
            for callback in self.callbacks:
                callback.on_epoch_end(self, record)
            if self.run_dir is not None:
                self._status("saving checkpoint")
            self._save_checkpoint()
        if self.restore_best and self.selection.best_state is not None:
            self.model.load_state_dict(self.selection.best_state)
        if self.run_dir is not None and self.is_main_process:
            self._status("saving the model")
            final = {"model": self.model.state_dict()}
            check_finite(final, self.global_step, "the final model")
            save_checkpoint(self.run_dir / "model.pt", final)
        for callback in self.callbacks:
            callback.on_fit_end(self)
        return self.history

    def _status(self, text: str) -> None:
        """Tell the callbacks what the trainer does outside the steps (start-up, between epochs)."""
        for callback in self.callbacks:
            callback.on_status(self, text)

    # ------------------------------------------------------------------ evaluate / predict
    def evaluate(self, data: Data) -> Results:
        """``{task: {"loss": ..., metric: ...}}`` on ``data`` (labelled samples only)."""
        evaluations = self._evaluate(TaskData(data, list(self.tasks.values()), role="evaluation", options=self.loading))
        return {name: {"loss": e.loss, **e.metrics} for name, e in evaluations.items()}

    def predict(self, data: Data) -> dict[str, Tensor]:
        """``{task: predictions}`` on CPU: probabilities for classification tasks, values for regression.

        Dense tasks: ``[N, C, H, W]`` per task (class probabilities along dim 1), for the whole of ``data``.
        """
        collected, _ = self._collect(
            TaskData(data, list(self.tasks.values()), role="prediction", labelled=False, options=self.loading),
            with_labels=False,
        )
        return {name: self.tasks[name].transform_output(outputs) for name, (outputs, _, _) in collected.items()}

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this run exactly: weights, optimiser, strategy, RNG, data position."""
        return self._checkpoint_state()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a state from `state_dict` (the model and optimiser must be built the same way)."""
        self._restore(state)
