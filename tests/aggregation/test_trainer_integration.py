"""Aggregation in the Trainer: one loop, aggregated shared update, heads' own gradients, bad input, resume."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch
from torch import nn

from conftest import make_model, make_tasks, make_two_task_data
from multitask import Strategy, Task, Trainer
from multitask.aggregation import (
    MGDA,
    GradDrop,
    GradVac,
    NashMTL,
    NonFiniteGradientError,
    PCGrad,
    Sum,
    UPGrad,
    create,
    names,
)
from multitask.data import ArrayDataset
from multitask.errors import ConfigError, NonFiniteLossError
from multitask.jacobian import JacobianEngine
from multitask.models import MLP, HardSharing
from multitask.models._base import MultiTaskModel
from multitask.training import Callback, StepResult
from multitask.training.checkpoint import list_checkpoints, load_checkpoint
from multitask.weighting import UW


def _trainer(strategy: Strategy | None, **kwargs: object) -> Trainer:
    tasks = make_tasks()
    options: dict[str, object] = {"max_epochs": 1, "batch_size": 64, "lr": 3e-3, "progress": False}
    options.update(kwargs)
    return Trainer(make_model(tasks), tasks, strategy=strategy, **options)  # type: ignore[arg-type]


def _parameters(trainer: Trainer) -> list[torch.Tensor]:
    return [p.detach().clone() for p in trainer.model.parameters()]


def test_sum_aggregation_makes_the_default_update() -> None:
    data = make_two_task_data(400)
    reference, aggregated = _trainer(None), _trainer(Strategy(aggregation=Sum()))
    reference.fit(data)
    aggregated.fit(data)
    for a, b in zip(_parameters(reference), _parameters(aggregated), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def _graddrop() -> GradDrop:
    return GradDrop(generator=torch.Generator().manual_seed(3))


class _Halved(UPGrad):
    """A Gramian method whose own `aggregate` departs from ``w(G) @ J``: the Trainer must call it."""

    def aggregate(self, jacobian: torch.Tensor, tasks: list[int]) -> torch.Tensor:
        return super().aggregate(jacobian, tasks) / 2


# UPGrad: update from G and w block by block; GradDrop (not a Gramian method) and an overridden
# `aggregate`: from the concatenated Jacobian
@pytest.mark.parametrize("make", [UPGrad, _graddrop, _Halved], ids=["upgrad", "graddrop", "own_aggregate"])
def test_shared_parameters_get_the_aggregated_update_and_heads_their_own_gradient(
    make: Callable[[], nn.Module],
) -> None:
    data = make_two_task_data(200)
    trainer = _trainer(Strategy(aggregation=make()), batch_size=200, optimizer=lambda p: torch.optim.SGD(p, lr=1.0))  # type: ignore[arg-type]
    model = copy.deepcopy(trainer.model)
    before = {name: p.detach().clone() for name, p in trainer.model.named_parameters()}
    trainer.fit(data)
    batch = data[torch.arange(200)]
    outputs = model(batch)
    losses = torch.stack(
        [trainer.tasks[name].compute_loss(outputs[name].float(), batch)[0] for name in model.task_names]
    )
    shared = list(model.shared_parameters())
    rows = [torch.cat([g.flatten() for g in torch.autograd.grad(loss, shared, retain_graph=True)]) for loss in losses]
    expected_update = make()(torch.stack(rows))
    after = dict(trainer.model.named_parameters())
    shared_names = [n for n, p in model.named_parameters() if any(p is q for q in shared)]
    step = torch.cat([(before[n] - after[n].detach()).flatten() for n in shared_names])
    torch.testing.assert_close(step, expected_update, rtol=1e-4, atol=1e-6)
    for name, head in model.heads.items():
        index = list(model.task_names).index(name)
        grads = torch.autograd.grad(losses[index], list(head.parameters()), retain_graph=True)
        for (pname, _), grad in zip(head.named_parameters(), grads, strict=True):
            key = f"heads.{name}.{pname}"
            torch.testing.assert_close(before[key] - after[key].detach(), grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    ("aggregation", "on"),
    [(MGDA(), "parameters"), (UPGrad(), "parameters"), (NashMTL(), "parameters"), (MGDA(), "representation")],
    ids=["mgda", "upgrad", "nash_mtl", "mgda_ub"],
)
def test_end_to_end_run_reaches_stated_accuracy(aggregation: nn.Module, on: str) -> None:
    data = make_two_task_data()
    train, test = data.subset(torch.arange(900)), data.subset(torch.arange(900, 1200))
    trainer = _trainer(Strategy(aggregation=aggregation, on=on), max_epochs=8, batch_size=32)  # type: ignore[arg-type]
    trainer.fit(train)
    results = trainer.evaluate(test)
    assert results["cls"]["accuracy"] > 0.9
    assert results["reg"]["r2"] > 0.9


def test_gramian_mode_makes_the_same_update_as_jacobian_mode() -> None:
    data = make_two_task_data(300)
    first = _trainer(Strategy(aggregation=UPGrad()))
    second = _trainer(Strategy(aggregation=UPGrad()), engine=JacobianEngine(update_by_backward=True))
    first.fit(data)
    second.fit(data)
    for a, b in zip(_parameters(first), _parameters(second), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    with pytest.deprecated_call(), pytest.raises(ConfigError, match="needs the full Jacobian"):
        Strategy(aggregation=GradDrop(), mode="gramian")


def test_the_deprecated_mode_argument_maps_to_the_target_and_the_engine() -> None:
    with pytest.deprecated_call():
        gramian = Strategy(aggregation=UPGrad(), mode="gramian")
    assert gramian.on == "parameters" and gramian.mode == "gramian"
    assert _trainer(gramian).engine.update_by_backward
    with pytest.deprecated_call():
        representation = Strategy(aggregation=MGDA(), mode="representation")
    assert representation.on == "representation" and representation.mode == "representation"


@pytest.mark.parametrize("name", names())
def test_every_method_runs_with_clipping_mixed_precision_and_a_weighting(name: str) -> None:
    trainer = _trainer(Strategy(UW(), create(name)), grad_clip=0.5, mixed_precision=True, batch_size=128)
    trainer.fit(make_two_task_data(256))
    assert all(bool(torch.isfinite(p).all()) for p in trainer.model.parameters())
    assert trainer.skipped_steps == 0


def test_absent_tasks_are_dropped_and_keep_their_state() -> None:
    generator = torch.Generator().manual_seed(0)
    xa, xb = torch.randn(300, 8, generator=generator), torch.randn(300, 8, generator=generator)
    tasks = [Task("a", nn.Linear(16, 1), "binary"), Task("b", nn.Linear(16, 1), "regression")]
    torch.manual_seed(0)
    model = HardSharing(MLP(8, [16]), tasks)
    aggregation = GradVac()
    trainer = Trainer(
        model,
        tasks,
        strategy=Strategy(aggregation=aggregation),
        max_epochs=1,
        batch_size=32,
        tasks_per_step=1,
        progress=False,
    )
    trainer.fit({"a": ArrayDataset(x=xa, a=(xa[:, 0] > 0).float()), "b": ArrayDataset(x=xb, b=xb[:, 1])})
    assert bool((aggregation.targets == 0).all())  # one task per step: no pair was ever compared
    strategy = Strategy(aggregation=MGDA())
    strategy.setup(["a", "b", "c"])
    jacobian = torch.randn(3, 5, dtype=torch.float64)
    present = torch.tensor([True, False, True])
    torch.testing.assert_close(strategy.aggregate(jacobian, present), MGDA()(jacobian[[0, 2]]))
    assert strategy.aggregation_weights(jacobian @ jacobian.T, present)[1] == 0
    assert bool((strategy.aggregate(jacobian, torch.zeros(3, dtype=torch.bool)) == 0).all())


def _poison(trainer: Trainer) -> None:
    first = next(iter(trainer.model.shared_parameters()))
    first.register_hook(lambda grad: grad * math.nan)


def test_non_finite_gradients_raise_or_skip_without_touching_the_weights() -> None:
    data = make_two_task_data(128)
    trainer = _trainer(Strategy(aggregation=MGDA()))
    _poison(trainer)
    with pytest.raises(NonFiniteGradientError, match="non-finite Jacobian"):
        trainer.fit(data)
    trainer = _trainer(Strategy(aggregation=MGDA()), on_nonfinite="skip")
    _poison(trainer)
    before = _parameters(trainer)
    with pytest.raises(NonFiniteLossError, match="2 of 2 steps were skipped"):  # every step skipped: diverged
        trainer.fit(data)
    assert trainer.skipped_steps == 2
    for a, b in zip(before, _parameters(trainer), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_resume_continues_the_aggregators_state_exactly(tmp_path: Path) -> None:
    data = make_two_task_data(200)

    def strategy() -> Strategy:
        return Strategy(aggregation=GradVac(generator=torch.Generator().manual_seed(4)))

    straight = _trainer(strategy(), max_epochs=2)
    straight.fit(data)
    _trainer(strategy(), max_epochs=1, run_dir=tmp_path).fit(data)
    state = load_checkpoint(list_checkpoints(tmp_path / "checkpoints")[-1])  # weights_only=True inside
    assert "aggregation.targets" in state["strategy"] and "aggregation._extra_state" in state["strategy"]
    resumed = _trainer(strategy(), max_epochs=2, run_dir=tmp_path)
    resumed.fit(data, resume=True)
    for a, b in zip(_parameters(straight), _parameters(resumed), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    torch.testing.assert_close(resumed.strategy.aggregation.targets, straight.strategy.aggregation.targets)  # type: ignore[union-attr]


def test_pcgrad_generator_state_is_checkpointed() -> None:
    strategy = Strategy(aggregation=PCGrad(generator=torch.Generator().manual_seed(0)))
    assert "aggregation._extra_state" in strategy.state_dict()
    with pytest.raises(ConfigError):
        Strategy(aggregation=GradDrop(), on="representation")


def test_loss_scaling_path_unscales_the_jacobian_and_lets_the_scaler_skip_overflows() -> None:
    # The float16 loss-scaling path runs on CUDA; a CPU GradScaler exercises the same code here.
    data = make_two_task_data(256)
    plain, scaled = _trainer(Strategy(aggregation=MGDA())), _trainer(Strategy(aggregation=MGDA()), grad_clip=1.0)
    plain.grad_clip = 1.0
    scaled.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    plain.fit(data)
    scaled.fit(data)
    for a, b in zip(_parameters(plain), _parameters(scaled), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    overflowing = _trainer(Strategy(aggregation=UPGrad()))
    overflowing.scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    first = next(iter(overflowing.model.shared_parameters()))
    first.register_hook(lambda grad: grad * math.inf)
    before = _parameters(overflowing)
    overflowing.fit(data)  # no error: the scaler sees inf, skips each step and lowers its scale
    assert overflowing.scaler.get_scale() < 1024.0
    for a, b in zip(before, _parameters(overflowing), strict=True):
        if a.shape == first.shape:
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_representation_mode_is_mgda_ub_on_the_encoder_output() -> None:
    data = make_two_task_data(200)
    trainer = _trainer(
        Strategy(aggregation=MGDA(), on="representation"),
        batch_size=200,
        optimizer=lambda p: torch.optim.SGD(p, lr=1.0),
    )
    model = copy.deepcopy(trainer.model)
    shared = list(model.shared_parameters())
    before = [p.detach().clone() for p in trainer.model.shared_parameters()]
    trainer.fit(data)
    batch = data[torch.arange(200)]
    features = model.encode(batch)
    losses = torch.stack(
        [trainer.tasks[n].compute_loss(model.heads[n](features).float(), batch)[0] for n in model.task_names]
    )
    rows = torch.stack([torch.autograd.grad(loss, features, retain_graph=True)[0].flatten() for loss in losses])
    weights = MGDA().weights(rows.double() @ rows.double().T).float()
    expected = torch.autograd.grad(weights @ losses, shared)
    for old, new, grad in zip(before, trainer.model.shared_parameters(), expected, strict=True):
        torch.testing.assert_close(old - new.detach(), grad, rtol=1e-4, atol=1e-6)


def test_representation_mode_needs_a_gramian_method_and_a_known_representation() -> None:
    with pytest.raises(ConfigError, match="not a GramianAggregator"):
        Strategy(aggregation=GradDrop(), on="representation")

    class Opaque(MultiTaskModel):
        def __init__(self) -> None:
            super().__init__()
            self.task_names = ("cls", "reg")
            self.body = nn.Linear(8, 2)

        def forward(self, batch: dict[str, torch.Tensor], tasks: object = None) -> dict[str, torch.Tensor]:  # type: ignore[override]
            out = self.body(batch["x"])
            return {"cls": out[:, :1], "reg": out[:, 1:]}

        def shared_parameters(self) -> Iterator[nn.Parameter]:
            return self.body.parameters()

    tasks = [Task("cls", nn.Identity(), "binary"), Task("reg", nn.Identity(), "regression")]
    with pytest.raises(ConfigError, match="representation"):
        Trainer(Opaque(), tasks, strategy=Strategy(aggregation=MGDA(), on="representation"), progress=False)


def test_the_aggregators_task_weights_are_logged_per_epoch(tmp_path: Path) -> None:
    class Recorder(Callback):
        def __init__(self) -> None:
            self.weights: list[torch.Tensor] = []

        def on_step_end(self, trainer: Trainer, step: StepResult) -> None:
            assert trainer.aggregation_weights is not None
            self.weights.append(trainer.aggregation_weights.clone())

    recorder = Recorder()
    trainer = _trainer(
        Strategy(aggregation=MGDA()), max_epochs=2, batch_size=100, callbacks=[recorder], run_dir=tmp_path
    )
    history = trainer.fit(make_two_task_data(300))
    for epoch, record in enumerate(history):
        expected = torch.stack(recorder.weights[3 * epoch : 3 * epoch + 3]).mean(0)
        logged = torch.tensor([record["aggregation_weight/cls"], record["aggregation_weight/reg"]], dtype=torch.float64)
        torch.testing.assert_close(logged, expected)
        assert math.isclose(float(logged.sum()), 1.0, rel_tol=1e-6)  # MGDA: a point of the simplex
    assert "aggregation_weight/cls" in (tmp_path / "metrics.csv").read_text().splitlines()[0]
    dropped = _trainer(Strategy(aggregation=GradDrop()), max_epochs=1)  # no task weights to log
    assert not any(key.startswith("aggregation_weight/") for key in dropped.fit(make_two_task_data(200))[0])


def test_the_loop_engine_makes_the_same_update_as_the_batched_one() -> None:
    data = make_two_task_data(300)
    batched = _trainer(Strategy(aggregation=UPGrad()))
    batched = _trainer(Strategy(aggregation=UPGrad()), engine=JacobianEngine(batched=True))
    loop = _trainer(Strategy(aggregation=UPGrad()), engine=JacobianEngine(batched=False))
    assert loop.engine.batched is False
    batched.fit(data)
    loop.fit(data)
    for a, b in zip(_parameters(batched), _parameters(loop), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
