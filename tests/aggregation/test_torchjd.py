"""Cross-check against TorchJD 0.18 (test-only dependency: skipped when it is not installed)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest
import torch
from _jacobians import TYPICAL

from multitask import aggregation

torchjd_aggregation = pytest.importorskip("torchjd.aggregation")

CASES = ["conflicting_2x3", "aligned_3x5", "random_2x10", "random_5x20", "random_10x50", "more_tasks_than_params_6x3"]

# name, factory of the TorchJD aggregator, relative tolerance. TorchJD's UPGrad/DualProj add a small
# ridge to the Gramian in their QP and its MGDA stops Frank–Wolfe at epsilon; ours are exact.
PAIRS: list[tuple[str, Callable[[], Any], float]] = [
    ("mean", lambda: torchjd_aggregation.Mean(), 1e-12),
    ("sum", lambda: torchjd_aggregation.Sum(), 1e-12),
    ("upgrad", lambda: torchjd_aggregation.UPGrad(), 2e-3),
    ("dualproj", lambda: torchjd_aggregation.DualProj(), 2e-3),
    ("imtl_g", lambda: torchjd_aggregation.IMTLG(), 1e-9),
    ("cagrad", lambda: torchjd_aggregation.CAGrad(c=0.5), 1e-3),
    ("aligned_mtl", lambda: torchjd_aggregation.AlignedMTL(), 1e-9),
    ("config", lambda: torchjd_aggregation.ConFIG(), 1e-9),
]


def _relative_error(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return float((ours - theirs).norm() / max(float(theirs.norm()), 1e-12))


@pytest.mark.parametrize("key", CASES)
@pytest.mark.parametrize(("name", "factory", "rtol"), PAIRS, ids=[p[0] for p in PAIRS])
def test_same_update_as_torchjd(name: str, factory: Callable[[], Any], rtol: float, key: str) -> None:
    jacobian = TYPICAL[key]
    if name == "cagrad" and key == "more_tasks_than_params_6x3":
        pytest.skip("Pareto-stationary (0 in the hull): the two libraries use different thresholds for g_w ≈ 0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = factory()(jacobian)
        ours = aggregation.create(name)(jacobian)
    assert _relative_error(ours, theirs) < rtol


@pytest.mark.parametrize("key", CASES)
def test_mgda_is_at_least_as_close_to_the_min_norm_point_as_torchjds_frank_wolfe(key: str) -> None:
    jacobian = TYPICAL[key]
    theirs = torchjd_aggregation.MGDA(epsilon=1e-6, max_iters=1000)(jacobian)
    ours = aggregation.MGDA()(jacobian)
    assert float(ours.norm()) <= float(theirs.norm()) * (1 + 1e-9) + 1e-12
    assert _relative_error(ours, theirs) < 5e-2  # Frank–Wolfe's stopping point; exact on the first two cases
    if key in ("conflicting_2x3", "random_2x10"):
        assert _relative_error(ours, theirs) < 1e-9


@pytest.mark.parametrize("key", ["conflicting_2x3", "aligned_3x5", "random_2x10", "random_5x20"])
def test_nash_mtl_matches_torchjd_when_its_iterations_converge(key: str) -> None:
    jacobian = TYPICAL[key]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = torchjd_aggregation.NashMTL(n_tasks=jacobian.shape[0], max_norm=0.0, optim_niter=200)(jacobian)
    assert _relative_error(aggregation.NashMTL()(jacobian), theirs) < 1e-5


@pytest.mark.parametrize("name", ["pcgrad", "gradvac", "graddrop"])
@pytest.mark.parametrize("key", ["conflicting_2x3", "random_5x20", "random_10x50"])
def test_randomised_methods_match_torchjd_on_the_same_draws(name: str, key: str) -> None:
    # TorchJD draws from the global generator in the same order (one randperm per task, or one rand per call)
    jacobian = TYPICAL[key]
    classes = {"pcgrad": "PCGrad", "gradvac": "GradVac", "graddrop": "GradDrop"}
    torch.manual_seed(0)
    theirs = getattr(torchjd_aggregation, classes[name])()(jacobian)
    torch.manual_seed(0)
    ours = aggregation.create(name)(jacobian)
    assert _relative_error(ours, theirs) < 1e-7  # TorchJD adds eps = 1e-8 to GradVac's denominators
