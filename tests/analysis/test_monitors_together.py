"""The gradient conflict and task affinity monitors share one Jacobian when they sample the same step."""

from __future__ import annotations

import pytest
import torch

from multitask import Trainer
from multitask.analysis import GradientConflictMonitor, TaskAffinityMonitor, synthetic_task_groups
from multitask.jacobian import JacobianEngine
from multitask.models import HardSharing
from multitask.training import Callback


def _fit(callbacks: list[Callback]) -> None:
    torch.manual_seed(0)
    problem = synthetic_task_groups(120, seed=0)
    tasks = problem.tasks()
    trainer = Trainer(
        HardSharing(problem.encoder(), tasks), tasks, max_epochs=2, batch_size=40, callbacks=callbacks, progress=False
    )
    trainer.fit(problem.data)


def test_both_monitors_record_what_each_records_alone_with_one_backward_pass_per_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    original = JacobianEngine.gradients

    def counted(self: JacobianEngine, *args: object, **kwargs: object) -> object:
        calls.append(1)
        return original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(JacobianEngine, "gradients", counted)
    alone_conflict, alone_affinity = GradientConflictMonitor(every=2), TaskAffinityMonitor(every=3)
    _fit([alone_conflict])
    _fit([alone_affinity])
    separate = len(calls)
    calls.clear()
    conflict, affinity = GradientConflictMonitor(every=2), TaskAffinityMonitor(every=3)
    _fit([conflict, affinity])
    # 6 steps: conflict samples steps 0, 2, 4; affinity 0, 3; step 0 is measured once for both
    assert separate == 5 and len(calls) == 4
    assert conflict.history.to_jsonl() == alone_conflict.history.to_jsonl()
    assert affinity.affinity.to_json() == alone_affinity.affinity.to_json()
