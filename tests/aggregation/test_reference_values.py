"""Reference updates on one small Jacobian, each row with its source."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from multitask.aggregation import (
    IMTLG,
    MGDA,
    AlignedMTL,
    CAGrad,
    ConFIG,
    DualProj,
    GradVac,
    Mean,
    NashMTL,
    PCGrad,
    Sum,
    UPGrad,
)
from multitask.aggregation._base import Aggregator

J = torch.tensor([[-4.0, 1.0, 1.0], [6.0, 1.0, 1.0]], dtype=torch.float64)  # g1·g2 = -22, ‖g1‖² = 18, ‖g2‖² = 38
_PCGRAD = [-4 + 6 * 22 / 38 + 6 - 4 * 22 / 18, 1 + 22 / 38 + 1 + 22 / 18]  # (g1 + 22/38 g2) + (g2 + 22/18 g1)
_X = 2 * (38**0.5 - 18**0.5) / (4 * 38**0.5 + 6 * 18**0.5)  # IMTL-G: (−4x+2)/√18 = (6x+2)/√38

REFERENCE: list[tuple[Aggregator, list[float], str]] = [
    (Mean(), [1.0, 1.0, 1.0], "definition"),
    (Sum(), [2.0, 2.0, 2.0], "definition"),
    (MGDA(), [0.0, 1.0, 1.0], "hand: min-norm point of segment [g1, g2] at w = (0.6, 0.4); STYLE.md"),
    (PCGrad(), [_PCGRAD[0], _PCGRAD[1], _PCGRAD[1]], "hand: Alg. 1 of Yu et al. for T = 2 (0.5848, 3.8012); STYLE.md"),
    (GradVac(), [_PCGRAD[0], _PCGRAD[1], _PCGRAD[1]], "hand: targets 0 at the first step reduce Eq. 5 to PCGrad"),
    (UPGrad(), [_PCGRAD[0] / 2, _PCGRAD[1] / 2, _PCGRAD[1] / 2], "hand: T = 2 projections are PCGrad's rows"),
    (DualProj(), [1 - 8 / 18, 1 + 2 / 18, 1 + 2 / 18], "hand: ḡ − (g1·ḡ/‖g1‖²) g1, one active constraint"),
    (IMTLG(), [_X, 1.0, 1.0], "hand: equal projections on unit gradients, weights summing to 1"),
    (CAGrad(c=0.5), [0.183503, 1.204124, 1.204124], "TorchJD 0.18.0 CAGrad(c=0.5) (Clarabel solver)"),
    (NashMTL(), [0.076584, 0.998533, 0.998533], "TorchJD 0.18.0 NashMTL(max_norm=0, optim_niter=200)"),
    (AlignedMTL(), [0.213279, 0.967333, 0.967333], "TorchJD 0.18.0 AlignedMTL()"),
    (ConFIG(), [0.158809, 2.070607, 2.070607], "TorchJD 0.18.0 ConFIG()"),
]


@pytest.mark.parametrize(("aggregator", "expected", "source"), REFERENCE, ids=lambda x: type(x).__name__)
def test_reference_update(aggregator: Aggregator, expected: list[float], source: str) -> None:
    update: Tensor = aggregator(J)
    torch.testing.assert_close(update, torch.tensor(expected, dtype=torch.float64), atol=2e-6, rtol=1e-6)
