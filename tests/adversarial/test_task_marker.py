"""On data whose inputs announce their task, the adversary drives its discriminator towards chance (1/T).

Without the adversarial push (λ = 0: the discriminator trains, the encoder ignores it) the same
discriminator reads the task marker off the shared features almost perfectly, and so does a probe
trained after the fact on a model trained without any adversary.
"""

from __future__ import annotations

import pytest
from _marker import T, marked_data, marked_model

from multitask import Strategy, Trainer
from multitask.adversarial import Adversary, probe_task_accuracy


def _train(adversary: Adversary | None) -> tuple[Trainer, list[dict[str, float]]]:
    model, tasks = marked_model()
    trainer = Trainer(
        model,
        tasks,
        strategy=Strategy(adversary=adversary),
        max_epochs=30,
        batch_size=32,
        lr=1e-2,
        progress=False,
        device="cpu",
    )
    return trainer, trainer.fit(marked_data(0))


def _final_accuracy(history: list[dict[str, float]]) -> float:
    return sum(record["adversary/accuracy"] for record in history[-3:]) / 3  # the last three epochs


@pytest.mark.parametrize("scheme", ["reversal", "alternating"])
def test_the_discriminator_falls_towards_chance_under_adversarial_training(scheme: str) -> None:
    trainer, history = _train(Adversary(scheme=scheme, schedule=1.0, lr=1e-2))  # type: ignore[arg-type]
    assert _final_accuracy(history) < 0.55  # chance 1/3; 0.31-0.51 over seeds 0-4
    results = trainer.evaluate(marked_data(1, n=200))
    assert min(task["accuracy"] for task in results.values()) > 0.9  # the tasks are still learned


def test_the_discriminator_stays_high_without_the_adversarial_push() -> None:
    _, history = _train(Adversary(scheme="reversal", schedule=0.0, lr=1e-2))  # λ = 0: a passive discriminator
    assert _final_accuracy(history) > 0.85  # 0.90-0.99 over seeds 0-4
    assert history[0]["adversary/accuracy"] > 1 / T


def test_a_probe_finds_the_task_in_the_shared_features_of_a_plain_model() -> None:
    trainer, _ = _train(None)
    accuracy = probe_task_accuracy(trainer.model, marked_data(2, n=200), marked_data(3, n=200))
    assert accuracy > 0.9  # chance 1/3; 0.94 measured
