"""`Trainer`: the one training loop every strategy plugs into, with validation, early stopping and resume."""

from __future__ import annotations

import contextlib
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from multitask._backward import BackwardResult, backward
from multitask._device import check_device
from multitask.data import LoaderOptions
from multitask.data._loaders import Sampling, Step
from multitask.errors import CheckpointError, ConfigError, DataError, NonFiniteLossError, ShapeError
from multitask.jacobian import JacobianEngine
from multitask.metrics import delta_m, nanmean
from multitask.models import MultiTaskModel, SharedPrivate
from multitask.strategy import Strategy
from multitask.tasks import Task, TaskEvaluation, task_losses
from multitask.training import checkpoint as ckpt
from multitask.training._data import Data, StepLoader, TaskData, check_batch, check_classes
from multitask.training._distributed_step import Collected, DistributedStep
from multitask.training._selection import ModelSelection, resolve_monitor
from multitask.training.callbacks import (
    AdversaryLogger,
    AggregationWeightLogger,
    Callback,
    CurvePlot,
    GateLogger,
    MetricsLogger,
    StepResult,
    TensorBoardLogger,
    tensorboard_available,
)
from multitask.training.distributed import Distributed
from multitask.training.lock import RunFolderLock
from multitask.training.progress import ProgressBar, RunProgress, progress_wanted

_log = logging.getLogger("multitask")

OptimizerFactory = Callable[[Iterable[nn.Parameter]], Optimizer]
SchedulerFactory = Callable[[Optimizer], LRScheduler]
Results = dict[str, dict[str, float]]


class Trainer:
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
        strategy: How per-task losses become the update; equal weighting by default.
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
        strategy: Strategy | None = None,
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
        if not isinstance(model, MultiTaskModel):
            raise ConfigError(
                f"model must be a multitask MultiTaskModel (e.g. HardSharing); got {type(model).__name__}"
            )
        if [t.name for t in tasks] != list(model.task_names):
            raise ConfigError(f"tasks {[t.name for t in tasks]} do not match the model's {list(model.task_names)}")
        _check_positive(max_epochs=max_epochs, eval_batch_size=eval_batch_size)
        for size in batch_size.values() if isinstance(batch_size, Mapping) else [batch_size]:
            _check_positive(batch_size=size)
        _check_positive(patience=patience, grad_clip=grad_clip, checkpoint_every=checkpoint_every, lr=lr)
        if on_nonfinite not in ("raise", "skip"):
            raise ConfigError(f"on_nonfinite must be 'raise' or 'skip'; got {on_nonfinite!r}")
        if scheduler_interval not in ("epoch", "step"):
            raise ConfigError(f"scheduler_interval must be 'epoch' or 'step'; got {scheduler_interval!r}")
        self.distributed = Distributed.resolve(distributed)
        if self.distributed is not None:  # one GPU per process: cuda:LOCAL_RANK
            device = self.distributed.training_device(device)
        self.device = check_device(device) if device is not None else _default_device()
        self.model = model.to(self.device)
        self.tasks = {task.name: task for task in tasks}
        self.task_names = tuple(self.tasks)
        self.strategy = strategy if strategy is not None else Strategy()
        if self.strategy.on == "representation" and not model.has_shared_representation:
            raise ConfigError(
                f"aggregation on='representation' needs a model whose shared representation is known "
                f"(HardSharing's encoder output); {type(model).__name__} has none: aggregate on='parameters'"
            )
        self.strategy.setup(self.task_names)  # creates learnable weights before the optimiser collects them
        self.strategy.to(self.device)
        self.engine = engine if engine is not None else (self.strategy.legacy_engine or JacobianEngine())
        self._shared_parameters = tuple(self.model.shared_parameters())
        adversary = self.strategy.adversary
        if adversary is not None and self.distributed is not None and self.distributed.world_size > 1:
            raise ConfigError(
                "adversarial training does not run on several processes yet (each process's discriminator would "
                "see only its shard); train it in one process"
            )
        if adversary is not None and type(model).shared_features is MultiTaskModel.shared_features:
            raise ConfigError(
                f"the adversary plays on the model's shared features, and {type(model).__name__} does not expose "
                "them (MultiTaskModel.shared_features): use HardSharing or SharedPrivate"
            )
        # the alternating scheme's discriminator is trained by its own optimiser only
        excluded = {id(p) for p in adversary.separately_trained_parameters()} if adversary is not None else set()
        self._parameters = _unique(
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
        self._last_step: BackwardResult | None = None
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
        self.history: list[dict[str, float]] = []
        self.selection = ModelSelection(higher_is_better=False, patience=patience)
        self._epoch_sums = torch.zeros(len(tasks), dtype=torch.float64)
        self._epoch_counts = torch.zeros(len(tasks), dtype=torch.float64)
        self._weight_sums = torch.zeros(len(tasks), dtype=torch.float64)
        self._updates_in_epoch = 0
        self._epoch_seconds = math.nan
        self._skipped_in_epoch = 0
        self._unscanned: frozenset[str] = frozenset()  # tasks whose training batches are checked as they arrive
        self._seen: set[str] = set()  # of those, the ones read in this epoch

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
        num_steps = _length(loader)
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
                ckpt.sweep_temporaries(folder)
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
        while self.epoch < self.max_epochs and not self.selection.should_stop:
            steps = loader.epoch(self.epoch, self.seed, self.step_in_epoch)
            if self._distributed_step is not None:
                steps = self._distributed_step.shard(steps)
            self._run_epoch(steps, num_steps)
            if self._distributed_step is not None:
                self._distributed_step.synchronise(self.epoch, [self.model, self.strategy])
            self._status("validating" if val_data is not None else "ending the epoch")
            record = self._end_epoch(val_data, monitor)
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
            _check_finite(final, self.global_step, "the final model")
            ckpt.save_checkpoint(self.run_dir / "model.pt", final)
        for callback in self.callbacks:
            callback.on_fit_end(self)
        return self.history

    def _status(self, text: str) -> None:
        """Tell the callbacks what the trainer does outside the steps (start-up, between epochs)."""
        for callback in self.callbacks:
            callback.on_status(self, text)

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
        self._reset_epoch_accumulators()

    def _reset_epoch_accumulators(self) -> None:
        """Zero what an epoch sums up (losses, label counts, weights, updates, skipped steps)."""
        self._epoch_sums.zero_()
        self._epoch_counts.zero_()
        self._weight_sums.zero_()
        self._updates_in_epoch = 0
        self._skipped_in_epoch = 0

    def _run_epoch(self, steps: Iterator[Step], num_steps: int | None) -> None:
        started = time.perf_counter()
        for callback in self.callbacks:
            callback.on_epoch_start(self, self.epoch, num_steps, self.step_in_epoch)
        for groups in steps:
            for callback in self.callbacks:
                callback.on_step_start(self, groups)
            result = self._train_step(groups)
            self.step_in_epoch += 1
            self.global_step += 1
            for callback in self.callbacks:
                callback.on_step_end(self, result)
            if self.checkpoint_every is not None and self.global_step % self.checkpoint_every == 0:
                self._save_checkpoint()
        self._epoch_seconds = time.perf_counter() - started

    def _train_step(self, groups: Step) -> StepResult:
        self.model.train()
        outputs: dict[str, Tensor] = {}
        batches: dict[str, Mapping[str, Tensor]] = {}
        features: list[Tensor] = []
        use_features = self.model.has_shared_representation and bool(self._shared_parameters)
        where = f"epoch {self.epoch + 1}, step {self.step_in_epoch + 1}"
        forward_rng: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
        if self._distributed_step is not None:
            self._distributed_step.distributed.position = where
            forward_rng = self._distributed_step.forward_rng(self.global_step, self.device)
        for batch, names in groups:  # data not checked up front: each batch, before the update
            unscanned = [name for name in names if name in self._unscanned]
            if unscanned:
                check_batch(self.tasks, batch, unscanned, f"training data, {where}")
                self._seen.update(unscanned)
        with self._autocast(), forward_rng:
            for batch, names in groups:
                batch = self._to_device(batch)
                outputs.update(self._forward(batch, names, where))
                batches.update(dict.fromkeys(names, batch))
                check_classes(self.tasks, outputs, batch, names, f"training data, {where}")
                if use_features or self.strategy.adversary is not None:
                    features.append(self._shared_features(names))
            losses = task_losses(list(self.tasks.values()), outputs, batches)
        counts = {name: int(count) for name, count in zip(self.task_names, losses.counts.tolist(), strict=True)}
        loss_vector = losses.values
        if self._distributed_step is not None:  # global loss values; gradients of this process's share
            loss_vector, values, counts = self._distributed_step.global_losses(loss_vector, counts, self.task_names)
        else:
            values = loss_vector.detach().double().cpu()
        self.optimizer.zero_grad(set_to_none=True)
        labelled = torch.tensor([counts.get(name, 0) > 0 for name in self.task_names], device=self.device)
        representation = [f for f in features if isinstance(f, Tensor)] if use_features else []
        result = backward(
            losses if self._distributed_step is None else loss_vector,
            self.strategy,
            shared_params=self._shared_parameters,
            task_params=self._task_parameters,
            features=representation if representation and len(representation) == len(features) else None,
            present=labelled if self._distributed_step is not None else None,
            penalty=lambda: self._penalty(features, groups),
            engine=self.engine,
            scaler=self.scaler,
            process_group=self.distributed,
            on_nonfinite=self.on_nonfinite,
            epoch=self.epoch,
            step=self.global_step,
            where=where,
        )
        self._last_step = result
        if not result.applied:
            self.optimizer.zero_grad(set_to_none=True)
            return self._skip(values, counts)
        weights = result.weights
        if self.grad_clip is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self._parameters, self.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.strategy.after_step(float(self.optimizer.param_groups[0]["lr"]))
        if self.scheduler is not None and self.scheduler_interval == "step":
            self.scheduler.step()
        present = torch.tensor([float(counts.get(name, 0)) for name in self.task_names], dtype=torch.float64)
        self._epoch_sums += values * present
        self._epoch_counts += present
        weight_values = weights.double().cpu()
        self._weight_sums += weight_values
        self._updates_in_epoch += 1
        return StepResult(
            self.epoch,
            self.step_in_epoch,
            self.global_step,
            self._loss_dict(values, counts),
            dict(zip(self.task_names, weight_values.tolist(), strict=True)),
        )

    def _forward(self, batch: Mapping[str, Tensor], names: tuple[str, ...], where: str) -> dict[str, Tensor]:
        """The model on one batch; a shape mismatch becomes a `ShapeError` that shows the batch's columns."""
        try:
            outputs: dict[str, Tensor] = self.model(batch, names)
            return outputs
        except RuntimeError as error:
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            if isinstance(error, torch.OutOfMemoryError) or not any(
                word in message for word in ("shape", "size", "dimension", "mat1", "expected input", "channels")
            ):
                raise
            columns = ", ".join(f"{key} {list(value.shape)}" for key, value in batch.items())
            raise ShapeError(
                f"the model cannot take a batch of the training data ({where}; columns: {columns[:160]}): "
                f"{message[:200]}; check the encoder's input size against the data"
            ) from None

    def _shared_features(self, names: tuple[str, ...]) -> Tensor:
        features = self.model.shared_features()
        if features is None:
            raise ConfigError(f"{type(self.model).__name__}.shared_features() returned None after a forward pass")
        if self.strategy.adversary is not None and len(names) != 1:
            raise ConfigError(
                f"adversarial training needs one task per batch (multi-input data); got a batch for {names}"
            )
        return features

    def _penalty(self, features: list[Tensor], groups: Step) -> Tensor:
        """The model's penalty and the adversarial term (each process's share; backward adds the strategy's)."""
        penalty = self.model.regularization()  # e.g. soft sharing's λ Σ_t ‖b_t‖²
        if self.strategy.adversary is not None:  # the adversarial term: a penalty on the shared features
            penalty = penalty + self._adversarial_term(features, groups)
        if self.distributed is not None:  # each process's share; the gradient sum over processes is the penalty's
            penalty = penalty / self.distributed.world_size
        return penalty

    def _adversarial_term(self, shared: list[Tensor], groups: Step) -> Tensor:
        adversary = self.strategy.adversary
        assert adversary is not None
        task_ids = [self.task_names.index(names[0]) for _, names in groups]
        progress = min(1.0, self.global_step / self._total_steps)
        return adversary.objective_term(shared, task_ids, progress).to(self.device)

    def _skip(self, values: Tensor, counts: Mapping[str, int]) -> StepResult:
        """Count a step that leaves the weights untouched (``on_nonfinite="skip"``)."""
        self.skipped_steps += 1
        self._skipped_in_epoch += 1
        return StepResult(self.epoch, self.step_in_epoch, self.global_step, self._loss_dict(values, counts), {}, True)

    def _loss_dict(self, values: Tensor, counts: Mapping[str, int]) -> dict[str, float]:
        pairs = zip(self.task_names, values.tolist(), strict=True)
        return {name: (value if counts.get(name, 0) > 0 else math.nan) for name, value in pairs}

    def _check_labels_seen(self) -> None:
        """Data not scanned up front: a task read in this epoch without a single label is an error (nothing saved)."""
        for index, name in enumerate(self.task_names):
            if name in self._seen and self._epoch_counts[index] == 0:
                raise DataError(
                    f"task {name!r} has no labelled sample in the training data: epoch {self.epoch + 1} read "
                    f"{self.step_in_epoch} steps of it and every label was missing (NaN, or ignore_index for classes)"
                )
        self._seen.clear()

    def _check_skipped(self) -> None:
        """Report the epoch's skipped steps; most of them skipped means the run diverged: stop, saving nothing."""
        skipped, steps = self._skipped_in_epoch, self.step_in_epoch
        if skipped == 0 or (not self.is_main_process and 2 * skipped <= steps):
            return
        if 2 * skipped > steps:
            raise NonFiniteLossError(
                f"epoch {self.epoch + 1}: {skipped} of {steps} steps were skipped for NaN or infinite losses "
                "(on_nonfinite='skip'): the run diverged, nothing of this epoch is saved; lower the learning rate "
                "or set grad_clip"
            )
        _log.warning("epoch %d: %d of %d steps skipped for NaN or infinite losses", self.epoch + 1, skipped, steps)

    def _end_epoch(self, val_data: TaskData | None, monitor: str | None) -> dict[str, float]:
        self._check_labels_seen()
        self._check_skipped()
        record: dict[str, float] = {
            "epoch": float(self.epoch + 1),
            "train/skipped_steps": float(self._skipped_in_epoch),
        }
        train_means = self._epoch_sums / self._epoch_counts.clamp(min=1)
        train_means[self._epoch_counts == 0] = math.nan
        for name, value in zip(self.task_names, train_means.tolist(), strict=True):
            record[f"train/{name}/loss"] = value
        mean_weights = self._weight_sums / max(self._updates_in_epoch, 1)
        for name, value in zip(self.task_names, mean_weights.tolist(), strict=True):
            record[f"weight/{name}"] = value
        if val_data is not None:
            record.update(self._validation_record(val_data))
        record["lr"] = float(self.optimizer.param_groups[0]["lr"])
        record["time/epoch_s"] = self._epoch_seconds
        self.history.append(record)
        if monitor is not None:
            self.selection.update(record[monitor], self.epoch, self.model)
        self.strategy.on_epoch_end(self.epoch, train_means.to(self.device, torch.float32))
        if self.scheduler is not None and self.scheduler_interval == "epoch":
            self.scheduler.step()
        self.epoch += 1
        self.step_in_epoch = 0
        self._reset_epoch_accumulators()
        return record

    def _validation_record(self, val_data: TaskData) -> dict[str, float]:
        evaluations = self._evaluate(val_data)
        record: dict[str, float] = {}
        for name, evaluation in evaluations.items():
            record[f"val/{name}/loss"] = evaluation.loss
            for metric, value in evaluation.metrics.items():
                record[f"val/{name}/{metric}"] = value
        record["val/loss"] = nanmean([e.loss for e in evaluations.values()])
        if self.baseline is not None:
            results = {name: e.metrics for name, e in evaluations.items() if name in self.baseline}
            record["val/delta_m"] = self._delta_m(results)
        return record

    def _delta_m(self, results: Mapping[str, Mapping[str, float]]) -> float:
        assert self.baseline is not None
        selected = {t: {m: v for m, v in metrics.items() if m in self.baseline[t]} for t, metrics in results.items()}
        directions = {t: {m: self.tasks[t].metric_fns[m].higher_is_better for m in ms} for t, ms in selected.items()}
        return delta_m(selected, self.baseline, directions)

    # ------------------------------------------------------------------ evaluate / predict
    def evaluate(self, data: Data) -> Results:
        """``{task: {"loss": ..., metric: ...}}`` on ``data`` (labelled samples only)."""
        evaluations = self._evaluate(TaskData(data, list(self.tasks.values()), role="evaluation", options=self.loading))
        return {name: {"loss": e.loss, **e.metrics} for name, e in evaluations.items()}

    def _evaluate(self, data: TaskData) -> dict[str, TaskEvaluation]:
        predictions, statistics = self._collect(data, with_labels=True)
        evaluations = {}
        for name in self.task_names:
            task = self.tasks[name]
            if name in statistics:  # dense: statistics summed over the batches, no predictions kept
                evaluations[name] = task.evaluate_statistics([statistics[name]])
            elif name in predictions:
                evaluations[name] = task.evaluate(*predictions[name])
        return evaluations

    def predict(self, data: Data) -> dict[str, Tensor]:
        """``{task: predictions}`` on CPU: probabilities for classification tasks, values for regression.

        Dense tasks: ``[N, C, H, W]`` per task (class probabilities along dim 1), for the whole of ``data``.
        """
        collected, _ = self._collect(
            TaskData(data, list(self.tasks.values()), role="prediction", labelled=False, options=self.loading),
            with_labels=False,
        )
        return {name: self.tasks[name].transform_output(outputs) for name, (outputs, _, _) in collected.items()}

    @torch.no_grad()
    def _collect(
        self, data: TaskData, with_labels: bool
    ) -> tuple[dict[str, tuple[Tensor, Tensor, Tensor]], dict[str, dict[str, Tensor]]]:
        """``({task: (outputs, targets, masks)}, {task: statistics})`` over ``data``, in batch order.

        With labels, a dense task gives no outputs but its `Task.batch_statistics` summed over the batches
        (and the processes), so that a large split of per-pixel predictions is never held in memory.
        """
        self.model.eval()
        parts: dict[str, list[tuple[Tensor, Tensor, Tensor]]] = {name: [] for name in self.task_names}
        statistics: dict[str, dict[str, Tensor]] = {}
        collected: Collected = []
        world = self.distributed.world_size if self.distributed is not None else 1
        rank = self.distributed.rank if self.distributed is not None else 0
        for index, (batch, names) in enumerate(data.eval_groups(self.eval_batch_size, self.task_names)):
            if index % world != rank:  # multi-process: each process evaluates every world-th batch
                continue
            unchecked = [name for name in names if name in data.unscanned] if with_labels else []
            if unchecked:  # data not scanned up front: each batch before it is used
                check_batch(self.tasks, batch, unchecked, f"{data.role} data, batch {index + 1}")
            device_batch = self._to_device(batch)
            with self._autocast():
                outputs = self.model(device_batch, names)
            for name in names:
                task = self.tasks[name]
                if with_labels and task.dense:
                    target, mask = task.labels(device_batch)
                    part = task.batch_statistics(outputs[name].float(), target, mask)
                    total = statistics.get(name)
                    statistics[name] = part if total is None else {k: total[k] + v for k, v in part.items()}
                    continue
                output = outputs[name].float().cpu()
                if with_labels:
                    target, mask = task.labels(batch)
                else:
                    target = mask = torch.empty(0)
                collected.append((index, name, (output, target, mask)))
        statistics = {name: {k: v.cpu() for k, v in sums.items()} for name, sums in statistics.items()}
        if self._distributed_step is not None:
            collected = self._distributed_step.gather(collected)
            if with_labels and any(task.dense for task in self.tasks.values()):
                statistics = _sum_statistics(self._distributed_step.distributed.all_gather_object(statistics))
        for _, name, triple in collected:
            parts[name].append(triple)
        concatenated = {
            name: (
                torch.cat([p[0] for p in chunks]),
                torch.cat([p[1] for p in chunks]),
                torch.cat([p[2] for p in chunks]),
            )
            for name, chunks in parts.items()
            if chunks
        }
        return concatenated, statistics

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this run exactly: weights, optimiser, strategy, RNG, data position."""
        return {
            "format": 1,
            "task_names": list(self.task_names),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict(),
            "strategy": self.strategy.state_dict(),
            "callbacks": {type(callback).__name__: callback.state_dict() for callback in self.callbacks},
            "rng": ckpt.capture_rng_state(),
            "progress": {
                "epoch": self.epoch,
                "step_in_epoch": self.step_in_epoch,
                "global_step": self.global_step,
                "skipped_steps": self.skipped_steps,
            },
            "epoch_accumulators": {
                "loss_sums": self._epoch_sums,
                "label_counts": self._epoch_counts,
                "weight_sums": self._weight_sums,
                "updates": self._updates_in_epoch,
                "skipped": self._skipped_in_epoch,
            },
            "history": self.history,
            "selection": self.selection.state_dict(),
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore a state from `state_dict` (the model and optimiser must be built the same way)."""
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
        ckpt.restore_rng_state(state["rng"])
        progress = state["progress"]
        self.epoch, self.step_in_epoch = progress["epoch"], progress["step_in_epoch"]
        self.global_step, self.skipped_steps = progress["global_step"], progress["skipped_steps"]
        accumulators = state["epoch_accumulators"]
        self._epoch_sums = accumulators["loss_sums"].clone()
        self._epoch_counts = accumulators["label_counts"].clone()
        self._weight_sums = accumulators["weight_sums"].clone()
        self._updates_in_epoch = accumulators["updates"]
        self._skipped_in_epoch = accumulators.get("skipped", 0)
        self.history = [dict(record) for record in state["history"]]
        self.selection.load_state_dict(state["selection"])

    def _save_checkpoint(self) -> None:
        if self.run_dir is None:
            return
        directory = self.run_dir / "checkpoints"
        if self.is_main_process:  # every process holds the same state: rank 0 writes it
            state = self.state_dict()
            _check_finite({"model": state["model"], "optimizer": state["optimizer"]}, self.global_step, "a checkpoint")
            ckpt.save_checkpoint(ckpt.checkpoint_path(directory, self.global_step), state)
            ckpt.prune_checkpoints(directory, self.keep_checkpoints)
        if self.distributed is not None:
            self.distributed.barrier()

    def _resume(self) -> None:
        if self.run_dir is None:
            raise ConfigError("resume needs a run_dir holding checkpoints")
        checkpoints = ckpt.list_checkpoints(self.run_dir / "checkpoints")
        if self.distributed is not None:  # rank 0 reads, everyone gets its state (no shared file system needed)
            state = self.distributed.run_on_main(lambda: ckpt.load_checkpoint(checkpoints[-1]) if checkpoints else None)
        else:
            state = ckpt.load_checkpoint(checkpoints[-1], map_location=self.device) if checkpoints else None
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

    # ------------------------------------------------------------------ helpers
    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if not self.mixed_precision:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self._amp_dtype)

    def _to_device(self, batch: Mapping[str, Tensor]) -> dict[str, Tensor]:
        return {key: value.to(self.device, non_blocking=True) for key, value in batch.items()}


def _sum_statistics(everyone: list[dict[str, dict[str, Tensor]]]) -> dict[str, dict[str, Tensor]]:
    """Each process's dense-task statistics, summed in rank order (a process may hold none for a task)."""
    total: dict[str, dict[str, Tensor]] = {}
    for statistics in everyone:
        for name, part in statistics.items():
            sums = total.get(name)
            total[name] = dict(part) if sums is None else {k: sums[k] + v for k, v in part.items()}
    return total


def _check_finite(state: Mapping[str, Any], step: int, what: str) -> None:
    """Nothing non-finite is ever written: ``state`` (weights, optimiser state) is checked before it is saved."""
    bad = ckpt.non_finite_entries(dict(state))
    if bad:
        shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
        raise NonFiniteLossError(
            f"after step {step} the weights hold NaN or infinite values ({shown}), so {what} is not written (the "
            "last good checkpoint is kept): the run diverged; lower the learning rate or set grad_clip"
        )


def _length(loader: StepLoader) -> int | None:
    """Steps per epoch; None for a stream without a length."""
    try:
        return len(loader)
    except TypeError:
        return None


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _unique(parameters: list[nn.Parameter]) -> list[nn.Parameter]:
    seen: set[int] = set()
    return [p for p in parameters if not (id(p) in seen or seen.add(id(p)))]  # type: ignore[func-returns-value]


def _check_positive(**values: float | None) -> None:
    for name, value in values.items():
        if value is not None and not value > 0:
            raise ConfigError(f"{name} must be positive; got {value}")
