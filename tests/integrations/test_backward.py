"""`multitask.backward` in a plain loop makes exactly the Trainer's update, for every method in every mode."""

from __future__ import annotations

import copy
import warnings
from typing import Any

import pytest
import torch
from torch import nn

import multitask
from multitask import Strategy, Task, Trainer
from multitask.aggregation import GramianAggregator, UPGrad
from multitask.aggregation import create as create_aggregation
from multitask.aggregation import names as aggregation_names
from multitask.data import ArrayDataset
from multitask.errors import ConfigError, NonFiniteLossError, ShapeError
from multitask.jacobian import JacobianEngine
from multitask.models import MLP, HardSharing
from multitask.regularizers import L1, L2
from multitask.weighting import UW
from multitask.weighting import create as create_weighting
from multitask.weighting import names as weighting_names

BATCH = 32
STEPS = 5
NAMES = ("cls", "reg", "aux")
WEIGHTING_ARGUMENTS: dict[str, dict[str, Any]] = {"linear": {"preference": [0.5, 0.3, 0.2]}}


def _data() -> ArrayDataset:
    generator = torch.Generator().manual_seed(0)
    n = BATCH * STEPS
    x = torch.randn(n, 8, generator=generator)
    signal = x[:, 0] + 0.5 * x[:, 1]
    reg = 2.0 * signal - x[:, 2] + 0.1 * torch.randn(n, generator=generator)
    reg[:BATCH] = float("nan")  # the first step has no label for 'reg'
    aux = x[:, 3] - signal + 0.1 * torch.randn(n, generator=generator)
    return ArrayDataset(x=x, cls=(signal > 0).float(), reg=reg, aux=aux)


def _model() -> tuple[HardSharing, list[Task]]:
    torch.manual_seed(0)
    tasks = [
        Task("cls", nn.Linear(16, 1), "binary"),
        Task("reg", nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 1)), "regression"),
        Task("aux", nn.Linear(16, 1), "regression"),
    ]
    return HardSharing(MLP(8, [32, 16]), tasks), tasks


def _strategy(weighting: str | None, aggregation: str | None, on: str) -> Strategy:
    return Strategy(
        create_weighting(weighting, **WEIGHTING_ARGUMENTS.get(weighting, {})) if weighting else None,
        create_aggregation(aggregation) if aggregation else None,
        on=on,  # type: ignore[arg-type]
    )


def _trainer_parameters(make_strategy: Any, engine: JacobianEngine) -> list[torch.Tensor]:
    model, tasks = _model()
    strategy = make_strategy(model)
    trainer = Trainer(
        model, tasks, strategy=strategy, engine=engine, lr=1e-2, batch_size=BATCH, max_epochs=1, shuffle=False,
        progress=False, device="cpu", seed=3,
    )  # fmt: skip
    trainer.fit(_data())
    assert trainer.skipped_steps == 0
    return [p.detach().clone() for p in [*trainer.model.parameters(), *trainer.strategy.parameters()]]


def _loop_parameters(make_strategy: Any, engine: JacobianEngine) -> list[torch.Tensor]:
    model, tasks = _model()
    strategy = make_strategy(model)
    strategy.setup(NAMES)  # before the optimiser: learnable weights are created here
    optimizer = torch.optim.Adam([*model.parameters(), *strategy.parameters()], lr=1e-2)
    data = _data()
    torch.manual_seed(3)  # as Trainer.fit seeds the global generator (random weightings draw from it)
    mean_losses = torch.zeros(len(NAMES), dtype=torch.float64)
    labelled = torch.zeros(len(NAMES), dtype=torch.float64)
    for step in range(STEPS):
        model.train()
        batch = data[torch.arange(step * BATCH, (step + 1) * BATCH)]
        outputs = model(batch)
        losses = multitask.task_losses(tasks, outputs, batch)
        optimizer.zero_grad(set_to_none=True)
        result = multitask.backward(
            losses,
            strategy,
            shared_params=model.shared_parameters(),
            features=model.shared_features(),
            penalty=model.regularization(),
            engine=engine,
            step=step,
        )
        assert result.applied
        optimizer.step()
        strategy.after_step(1e-2)
        mean_losses += losses.values.detach().double() * losses.present
        labelled += losses.present
    strategy.on_epoch_end(0, (mean_losses / labelled).float())
    return [p.detach().clone() for p in [*model.parameters(), *strategy.parameters()]]


def _assert_same(strategy_factory: Any, engine: JacobianEngine) -> None:
    by_trainer = _trainer_parameters(strategy_factory, copy.deepcopy(engine))
    by_loop = _loop_parameters(strategy_factory, copy.deepcopy(engine))
    assert len(by_trainer) == len(by_loop)
    for a, b in zip(by_trainer, by_loop, strict=True):
        assert torch.equal(a, b), f"max difference {float((a - b).abs().max())}"


@pytest.mark.parametrize("weighting", weighting_names())
def test_a_plain_loop_makes_the_trainers_update_for_every_weighting(weighting: str) -> None:
    _assert_same(lambda model: _strategy(weighting, None, "parameters"), JacobianEngine())


def _modes() -> list[tuple[str, str, bool]]:
    cases = []
    for name in aggregation_names():
        cases.append((name, "parameters", False))
        if isinstance(create_aggregation(name), GramianAggregator):
            cases += [(name, "parameters", True), (name, "representation", False)]
    return cases


@pytest.mark.parametrize(("aggregation", "on", "by_backward"), _modes(), ids=lambda v: str(v))
def test_a_plain_loop_makes_the_trainers_update_for_every_aggregation_and_mode(
    aggregation: str, on: str, by_backward: bool
) -> None:
    _assert_same(lambda model: _strategy(None, aggregation, on), JacobianEngine(update_by_backward=by_backward))


def test_a_weighting_and_an_aggregation_together_and_the_batched_engine() -> None:
    _assert_same(lambda model: _strategy("uw", "upgrad", "parameters"), JacobianEngine(batched=True, chunk_size=2))


@pytest.mark.parametrize("aggregation", [None, "upgrad"])
def test_regularisers_reach_a_plain_loop_as_they_reach_the_trainer(aggregation: str | None) -> None:
    def strategy(model: HardSharing) -> Strategy:
        regularizers = [
            L2(list(model.encoder.parameters()), 1e-2),
            L1(list(model.heads.parameters()), 1e-3, proximal=True),
        ]
        return Strategy(aggregation=create_aggregation(aggregation) if aggregation else None, regularizers=regularizers)

    _assert_same(strategy, JacobianEngine())
    plain = _loop_parameters(lambda model: _strategy(None, aggregation, "parameters"), JacobianEngine())
    regularised = _loop_parameters(strategy, JacobianEngine())
    assert not torch.equal(plain[0], regularised[0])  # the L2 term moved the shared weights


def test_features_first_makes_the_same_update_as_the_whole_graph() -> None:
    model, tasks = _model()
    batch = _data()[torch.arange(BATCH, 2 * BATCH)]
    grads = []
    for with_features in (True, False):
        model.zero_grad(set_to_none=True)
        outputs = model(batch)
        features = model.shared_features() if with_features else None
        strategy = Strategy(aggregation=UPGrad(), tasks=NAMES)
        losses = multitask.task_losses(tasks, outputs, batch)
        multitask.backward(losses, strategy, shared_params=model.shared_parameters(), features=features)
        grads.append([p.grad.clone() for p in model.parameters() if p.grad is not None])
    for a, b in zip(*grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)


def test_a_strategy_that_was_never_set_up_is_refused_with_what_to_call() -> None:
    model, tasks = _model()
    batch = _data()[torch.arange(BATCH)]
    losses = multitask.task_losses(tasks, model(batch), batch)
    strategy = Strategy(UW())
    with pytest.raises(ConfigError, match=r"call strategy.setup\(task_names\)"):
        multitask.backward(losses, strategy, shared_params=model.shared_parameters())
    ready = Strategy(UW(), tasks=NAMES)  # set up at construction: its log-variances exist before the optimiser
    assert [tuple(p.shape) for p in ready.parameters()] == [(3,)]
    optimizer = torch.optim.SGD([*model.parameters(), *ready.parameters()], lr=0.1)
    multitask.backward(losses, ready, shared_params=model.shared_parameters())
    optimizer.step()
    assert not torch.equal(ready.weighting.log_variances.detach(), torch.zeros(3))  # trained, not frozen at 0
    with pytest.raises(ShapeError, match="set up for 3 tasks"):
        multitask.backward(losses.values[:2], ready, shared_params=model.shared_parameters())


def test_task_losses_masks_missing_labels_and_absent_outputs() -> None:
    model, tasks = _model()
    batch = _data()[torch.arange(BATCH)]  # no 'reg' label in these rows
    outputs = model(batch)
    losses = multitask.task_losses(tasks, {"cls": outputs["cls"], "reg": outputs["reg"]}, batch)
    assert losses.present.tolist() == [True, False, False]
    assert losses.counts.tolist() == [BATCH, 0, 0]
    assert losses.values[1] == 0 and losses.values[2] == 0
    grads = torch.autograd.grad(losses.values[1:].sum(), list(model.parameters()), allow_unused=True)
    assert all(g is None or not bool(g.any()) for g in grads)  # absent tasks: constants, no gradient
    expected = nn.functional.binary_cross_entropy_with_logits(outputs["cls"].squeeze(1), batch["cls"])
    torch.testing.assert_close(losses.values[0], expected)
    assert losses.as_dict()["reg"] != losses.as_dict()["reg"]  # NaN for absent
    per_task = multitask.task_losses(tasks, outputs, {name: batch for name in NAMES})
    assert torch.equal(per_task.values, multitask.task_losses(tasks, outputs, batch).values)


def test_non_finite_losses_raise_or_skip_without_touching_grad() -> None:
    model, tasks = _model()
    strategy = Strategy(aggregation=UPGrad(), tasks=NAMES)
    batch = _data()[torch.arange(BATCH, 2 * BATCH)]
    losses = multitask.task_losses(tasks, model(batch), batch).values
    broken = losses * torch.tensor([1.0, float("inf"), 1.0])
    with pytest.raises(NonFiniteLossError, match=r"task\(s\) \['reg'\] at step 4"):
        multitask.backward(broken, strategy, shared_params=model.shared_parameters(), step=3)
    result = multitask.backward(broken, strategy, shared_params=model.shared_parameters(), on_nonfinite="skip")
    assert not result.applied and result.reason is not None
    assert all(p.grad is None for p in model.parameters())


def test_bf16_autocast_on_cpu_with_an_aggregation_stays_within_1e_2_of_float32() -> None:
    results = []
    for autocast in (False, True):
        model, tasks = _model()
        strategy = Strategy(aggregation=UPGrad(), tasks=NAMES)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
        data = _data()
        for step in range(20):
            batch = data[torch.arange((step % STEPS) * BATCH, (step % STEPS + 1) * BATCH)]
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
                outputs = model(batch)
                losses = multitask.task_losses(tasks, outputs, batch)
            result = multitask.backward(
                losses, strategy, shared_params=model.shared_parameters(), features=model.shared_features()
            )
            assert result.applied
            assert all(bool(torch.isfinite(p.grad).all()) for p in model.parameters() if p.grad is not None)
            optimizer.step()
        results.append(torch.cat([p.detach().flatten() for p in model.parameters()]))
    assert float((results[0] - results[1]).abs().max()) < 1e-2
    assert not torch.equal(results[0], results[1])  # autocast did run in bfloat16


# registry name, TorchJD factory (T tasks), relative tolerance on .grad and, where not 1e-6, why
TORCHJD_METHODS: list[tuple[str, Any, float]] = [
    ("mean", lambda t, jd: jd.Mean(), 1e-6),
    ("sum", lambda t, jd: jd.Sum(), 1e-6),
    ("imtl_g", lambda t, jd: jd.IMTLG(), 1e-5),  # a float32 linear solve: the two round differently at 1e-6
    ("aligned_mtl", lambda t, jd: jd.AlignedMTL(), 1e-6),
    ("config", lambda t, jd: jd.ConFIG(), 1e-6),
    ("pcgrad", lambda t, jd: jd.PCGrad(), 1e-6),  # same draws from the global generator
    # in float32 TorchJD draws float32 uniforms and ours float64 ones (same law, other draws): compared in float64
    ("graddrop", lambda t, jd: jd.GradDrop(), 1e-6),
    ("gradvac", lambda t, jd: jd.GradVac(), 1e-6),  # TorchJD adds eps = 1e-8 to its denominators
    # TorchJD's UPGrad/DualProj add a ridge to the Gramian in their quadprog QP; ours solve it exactly
    ("upgrad", lambda t, jd: jd.UPGrad(), 2e-3),
    ("dualproj", lambda t, jd: jd.DualProj(), 2e-3),
    # TorchJD solves CAGrad's dual with cvxpy (norm_eps 1e-4), ours with SLSQP (1e-6)
    ("cagrad", lambda t, jd: jd.CAGrad(c=0.5), 1e-3),
    # Nash-MTL: TorchJD's 20 convex-concave iterations have not converged; with 200 they agree
    ("nash_mtl", lambda t, jd: jd.NashMTL(n_tasks=t, max_norm=0.0, optim_niter=200), 1e-5),
]


@pytest.mark.parametrize(("name", "factory", "rtol"), TORCHJD_METHODS, ids=[m[0] for m in TORCHJD_METHODS])
def test_the_grad_equals_torchjds_mtl_backward_and_jac_to_grad(name: str, factory: Any, rtol: float) -> None:
    autojac = pytest.importorskip("torchjd.autojac")
    jd = pytest.importorskip("torchjd.aggregation")
    batch = _data()[torch.arange(BATCH, 2 * BATCH)]  # every task labelled
    dtype = torch.float64 if name == "graddrop" else torch.float32
    batch = {key: value.to(dtype) for key, value in batch.items()}
    written = []
    for library in ("multitask", "torchjd"):
        model, tasks = _model()
        model.to(dtype)
        torch.manual_seed(0)
        outputs = model(batch)
        losses = multitask.task_losses(tasks, outputs, batch)
        shared = list(model.shared_parameters())
        if library == "multitask":
            strategy = Strategy(aggregation=create_aggregation(name), tasks=NAMES)
            multitask.backward(losses, strategy, shared_params=shared, features=model.shared_features())
        else:
            with warnings.catch_warnings():  # TorchJD's cvxpy solvers warn about their own settings
                warnings.simplefilter("ignore")
                separate = [task.compute_loss(outputs[task.name].float(), batch)[0] for task in tasks]
                autojac.mtl_backward(separate, features=model.shared_features())
                autojac.jac_to_grad(shared, factory(len(NAMES), jd))
        written.append([p.grad.clone() for p in model.parameters()])
    for ours, theirs in zip(*written, strict=True):
        error = float((ours - theirs).norm() / max(float(theirs.norm()), 1e-12))
        assert error < rtol, f"relative difference {error:.2e}"


def test_mgda_is_exact_where_torchjds_frank_wolfe_stops_early() -> None:
    # TorchJD's MGDA stops Frank-Wolfe at epsilon = 1e-3: ours is the exact min-norm point, so its update
    # is at most as long; with a tight tolerance the two agree
    autojac = pytest.importorskip("torchjd.autojac")
    jd = pytest.importorskip("torchjd.aggregation")
    batch = _data()[torch.arange(BATCH, 2 * BATCH)]
    written = []
    for aggregator in (None, jd.MGDA(epsilon=1e-9, max_iters=100_000)):
        model, tasks = _model()
        outputs = model(batch)
        losses = multitask.task_losses(tasks, outputs, batch)
        shared = list(model.shared_parameters())
        if aggregator is None:
            strategy = Strategy(aggregation=create_aggregation("mgda"), tasks=NAMES)
            multitask.backward(losses, strategy, shared_params=shared, features=model.shared_features())
        else:
            separate = [task.compute_loss(outputs[task.name].float(), batch)[0] for task in tasks]
            autojac.mtl_backward(separate, features=model.shared_features())
            autojac.jac_to_grad(shared, aggregator)
        written.append(torch.cat([p.grad.flatten() for p in shared]))
    ours, theirs = written
    assert float(ours.norm()) <= float(theirs.norm()) * (1 + 1e-6)
    assert float((ours - theirs).norm() / theirs.norm()) < 1e-3
