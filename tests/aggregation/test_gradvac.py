"""GradVac: PCGrad's projection at zero targets; EMA targets updated per pair; reproducible."""

from __future__ import annotations

import math

import torch
from _jacobians import TYPICAL

from multitask.aggregation import GradVac, PCGrad


def test_first_step_with_two_tasks_equals_pcgrad() -> None:
    for key in ("conflicting_2x3", "random_2x10", "aligned_3x5"):
        jacobian = TYPICAL[key][:2]
        torch.testing.assert_close(GradVac()(jacobian), PCGrad()(jacobian))


def test_targets_follow_the_ema_of_the_cosines() -> None:
    jacobian = TYPICAL["conflicting_2x3"]
    aggregator = GradVac(beta=0.25)
    aggregator(jacobian)
    g1, g2 = jacobian
    cosine = float(g1 @ g2 / (g1.norm() * g2.norm()))
    # task 0 visits task 1 with its own (unmodified) gradient: target = β · cos(g_0, g_1)
    assert math.isclose(float(aggregator.targets[0, 1]), 0.25 * cosine, rel_tol=1e-12)
    assert float(aggregator.targets[0, 0]) == 0.0


def test_correction_reaches_the_target_similarity() -> None:
    # with target φ̂, the corrected g_i has cosine φ̂ with g_j (Eq. 5 is built for it)
    jacobian = TYPICAL["conflicting_2x3"]
    aggregator = GradVac(beta=1.0)
    aggregator.setup(2)
    aggregator.targets.fill_(0.3)
    weights = aggregator.weights(jacobian @ jacobian.T)
    g1, g2 = jacobian
    corrected = g1 + (weights[1] - 1.0) * g2  # g_1^PC = g_1 + c g_2; the other row only adds to w_1
    cosine = float(corrected @ g2 / (corrected.norm() * g2.norm()))
    assert math.isclose(cosine, 0.3, rel_tol=1e-9)


def test_generator_makes_it_reproducible() -> None:
    jacobian = TYPICAL["random_10x50"]
    first = GradVac(generator=torch.Generator().manual_seed(1))
    second = GradVac(generator=torch.Generator().manual_seed(1))
    for _ in range(3):
        torch.testing.assert_close(first(jacobian), second(jacobian), rtol=0, atol=0)
