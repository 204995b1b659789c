"""GradDrop: each coordinate keeps one sign; agreeing coordinates keep everything; reproducible."""

from __future__ import annotations

import torch
from _jacobians import TYPICAL

from multitask.aggregation import GradDrop


def test_each_coordinate_is_the_sum_of_one_sign() -> None:
    jacobian = TYPICAL["random_10x50"]
    update = GradDrop(generator=torch.Generator().manual_seed(0))(jacobian)
    positive, negative = jacobian.clamp(min=0).sum(0), jacobian.clamp(max=0).sum(0)
    assert bool(
        (
            (update == positive)
            | (update == negative)
            | torch.isclose(update, positive)
            | torch.isclose(update, negative)
        ).all()
    )


def test_agreeing_coordinates_are_kept_whole() -> None:
    jacobian = TYPICAL["aligned_3x5"].abs()
    torch.testing.assert_close(GradDrop()(jacobian), jacobian.sum(0))


def test_sign_is_chosen_with_probability_of_its_purity() -> None:
    jacobian = torch.tensor([[3.0], [-1.0]], dtype=torch.float64)  # P = ½(1 + 2/4) = 0.75
    aggregator = GradDrop(generator=torch.Generator().manual_seed(0))
    draws = torch.stack([aggregator(jacobian) for _ in range(4000)]).flatten()
    assert abs(float((draws == 3.0).double().mean()) - 0.75) < 0.03


def test_generator_makes_it_reproducible() -> None:
    jacobian = TYPICAL["random_5x20"]
    first = GradDrop(generator=torch.Generator().manual_seed(2))(jacobian)
    second = GradDrop(generator=torch.Generator().manual_seed(2))(jacobian)
    torch.testing.assert_close(first, second, rtol=0, atol=0)
