"""Each scheme sends the intended gradients: to the discriminator, to the shared encoder, and to nothing else."""

from __future__ import annotations

import pytest
import torch
from _game import build, data, deltas, discriminator_loss, grads, snapshot, task_loss
from torch import nn

from multitask import Strategy, Trainer
from multitask.adversarial import Adversary
from multitask.aggregation import Sum

W, LAM = 0.5, 0.3  # adversarial weight w and reversal coefficient λ


def _one_step(adversary: Adversary, aggregation: Sum | None = None) -> tuple[nn.Module, nn.Module, Trainer]:
    model, tasks, _ = build()
    trainer = Trainer(
        model,
        tasks,
        strategy=Strategy(aggregation=aggregation, adversary=adversary),
        optimizer=lambda params: torch.optim.SGD(params, lr=1.0),
        max_epochs=1,
        batch_size=5,
        steps_per_epoch=1,
        shuffle=False,
        progress=False,
        device="cpu",
    )
    return model, trainer.strategy, trainer


@pytest.mark.parametrize("aggregation", [None, Sum()], ids=["backward", "aggregation"])
def test_reversal_gives_the_discriminator_plus_and_the_encoder_minus_lambda_times_its_gradient(
    aggregation: Sum | None,
) -> None:
    _, _, discriminator = build()
    reference_model, _, _ = build()
    reference_discriminator = snapshot(discriminator)
    model, _, trainer = _one_step(Adversary(discriminator, scheme="reversal", weight=W, schedule=LAM), aggregation)
    trainer.fit(data())

    batches = data()
    l_task = task_loss(reference_model, batches)
    l_d = discriminator_loss(reference_model, reference_discriminator, batches)
    expected_encoder = [
        g - W * LAM * d
        for g, d in zip(grads(l_task, reference_model.encoder), grads(l_d, reference_model.encoder), strict=True)
    ]
    expected_discriminator = [W * g for g in grads(l_d, reference_discriminator)]
    for got, want in zip(deltas(reference_model.encoder, model.encoder), expected_encoder, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    for got, want in zip(deltas(reference_discriminator, discriminator), expected_discriminator, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    for name in ("a", "b"):  # each head gets its own task's gradient only
        want_head = grads(l_task, reference_model.heads[name])
        for got, want in zip(deltas(reference_model.heads[name], model.heads[name]), want_head, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("aggregation", [None, Sum()], ids=["backward", "aggregation"])
def test_alternating_steps_the_discriminator_alone_then_the_encoder_against_the_updated_one(
    aggregation: Sum | None,
) -> None:
    _, _, discriminator = build()
    reference_model, _, _ = build()
    reference_discriminator = snapshot(discriminator)
    adversary = Adversary(
        discriminator,
        scheme="alternating",
        weight=W,
        schedule=LAM,
        optimizer=lambda params: torch.optim.SGD(params, lr=0.1),
    )
    model, _, trainer = _one_step(adversary, aggregation)
    in_main_optimizer = {id(p) for group in trainer.optimizer.param_groups for p in group["params"]}
    assert not in_main_optimizer & {id(p) for p in discriminator.parameters()}
    trainer.fit(data())

    batches = data()
    # 1. the discriminator's own SGD step on L_D of the detached features (no w, no λ)
    l_d = discriminator_loss(reference_model, reference_discriminator, batches)
    updated = snapshot(reference_discriminator)
    with torch.no_grad():
        for p, g in zip(updated.parameters(), grads(l_d, reference_discriminator), strict=True):
            p -= 0.1 * g
    for got, want in zip(discriminator.parameters(), updated.parameters(), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    assert all(p.grad is None for p in discriminator.parameters())  # the model step leaves it no gradient
    # 2. the model step: task losses minus w λ L_D of the updated discriminator
    l_task = task_loss(reference_model, batches)
    l_d_updated = discriminator_loss(reference_model, updated, batches)
    expected_encoder = [
        g - W * LAM * d
        for g, d in zip(
            grads(l_task, reference_model.encoder), grads(l_d_updated, reference_model.encoder), strict=True
        )
    ]
    for got, want in zip(deltas(reference_model.encoder, model.encoder), expected_encoder, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_without_an_adversary_the_step_is_the_plain_one() -> None:
    reference_model, _, _ = build()
    model, tasks, _ = build()
    trainer = Trainer(
        model,
        tasks,
        optimizer=lambda params: torch.optim.SGD(params, lr=1.0),
        max_epochs=1,
        batch_size=5,
        steps_per_epoch=1,
        shuffle=False,
        progress=False,
        device="cpu",
    )
    trainer.fit(data())
    want = grads(task_loss(reference_model, data()), reference_model.encoder)
    for got, expected in zip(deltas(reference_model.encoder, model.encoder), want, strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert not any(key.startswith("adversary/") for key in trainer.history[-1])
