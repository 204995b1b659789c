"""Properties every sharing scheme has: output shapes, task subsets, which parameters each task's loss reaches."""

from __future__ import annotations

import pytest
import torch
from _models import TASK_NAMES, N, create, input_for
from torch import nn

from multitask import models
from multitask.errors import ConfigError, DataError
from multitask.models import MultiTaskModel

NAMES = models.names()
# hard sharing and task adapters make sense with one task (a single-task model; plain LoRA fine-tuning)
MULTI_TASK_ONLY = [name for name in NAMES if name not in ("hard_sharing", "task_lora")]


@pytest.mark.parametrize("name", NAMES)
def test_outputs_one_tensor_per_task(name: str) -> None:
    model = create(name)
    assert isinstance(model, MultiTaskModel)
    outputs = model(input_for(name))
    assert {task: tuple(out.shape) for task, out in outputs.items()} == dict.fromkeys(TASK_NAMES, (N, 2))


@pytest.mark.parametrize("name", NAMES)
def test_a_task_subset_gives_the_same_outputs(name: str) -> None:
    model = create(name).eval()
    full, part = model(input_for(name)), model(input_for(name), ["c", "a"])
    assert set(part) == {"a", "c"}
    torch.testing.assert_close(part["c"], full["c"])


@pytest.mark.parametrize("name", NAMES)
def test_each_loss_reaches_shared_parameters_and_its_own_only(name: str) -> None:
    model = create(name)
    parameters = list(model.parameters())
    shared = {id(p) for p in model.shared_parameters()}
    reached: dict[int, set[str]] = {id(p): set() for p in parameters}
    for task in TASK_NAMES:
        # soft-sharing deviations start at zero: perturb them so that every path carries a gradient
        with torch.no_grad():
            for p in model.task_specific_parameters():
                p.add_(0.01)
        loss = model(input_for(name), [task])[task].square().sum()
        grads = torch.autograd.grad(loss, parameters, allow_unused=True)
        for p, g in zip(parameters, grads, strict=True):
            if g is not None and bool(g.abs().sum() > 0):
                reached[id(p)].add(task)
    for p in parameters:
        if id(p) not in shared:
            assert len(reached[id(p)]) <= 1, f"a task-specific parameter {tuple(p.shape)} serves {reached[id(p)]}"
    assert all(len(reached[i]) >= 1 for i in shared), "a shared parameter serves no task"
    heads = model.get_submodule("heads")
    assert isinstance(heads, nn.ModuleDict)
    for task in TASK_NAMES:
        assert all(reached[id(p)] == {task} for p in heads[task].parameters())


@pytest.mark.parametrize("name", MULTI_TASK_ONLY)
def test_one_task_is_rejected_at_construction(name: str) -> None:
    with pytest.raises(ConfigError, match="at least two tasks"):
        create(name, ("a",))


@pytest.mark.parametrize("name", NAMES)
def test_regularization_is_a_scalar(name: str) -> None:
    model = create(name)
    model(input_for(name))
    value = model.regularization()
    assert value.shape == () and bool(value >= 0)


@pytest.mark.parametrize("name", NAMES)
def test_a_missing_input_column_is_a_data_error(name: str) -> None:
    with pytest.raises(DataError, match=r"no input column"):
        create(name)({"features": torch.zeros(2, 5)})
