"""`Evaluation`, a base of `Trainer`: the model run over a split, its tasks' losses and metrics, Δm.

In several processes each evaluates every ``world_size``-th batch and the results are gathered in
batch order, so that they equal the one-process results.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor

from multitask.metrics import delta_m, nanmean
from multitask.models import MultiTaskModel
from multitask.tasks import Task, TaskEvaluation
from multitask.training._data import TaskData, check_batch
from multitask.training._distributed_step import Collected, DistributedStep
from multitask.training._train_step import autocast, to_device
from multitask.training.distributed import Distributed


class Evaluation:
    """Evaluation and prediction of `Trainer` (a base of `Trainer`, which sets these attributes)."""

    model: MultiTaskModel
    tasks: dict[str, Task]
    task_names: tuple[str, ...]
    eval_batch_size: int
    baseline: dict[str, dict[str, float]] | None
    device: torch.device
    mixed_precision: bool
    distributed: Distributed | None
    _amp_dtype: torch.dtype
    _distributed_step: DistributedStep | None

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
            device_batch = to_device(batch, self.device)
            with autocast(self.device, self._amp_dtype, self.mixed_precision):
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


def _sum_statistics(everyone: list[dict[str, dict[str, Tensor]]]) -> dict[str, dict[str, Tensor]]:
    """Each process's dense-task statistics, summed in rank order (a process may hold none for a task)."""
    total: dict[str, dict[str, Tensor]] = {}
    for statistics in everyone:
        for name, part in statistics.items():
            sums = total.get(name)
            total[name] = dict(part) if sums is None else {k: sums[k] + v for k, v in part.items()}
    return total
