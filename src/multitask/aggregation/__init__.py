"""Gradient aggregation: the task Jacobian ``[T, P]`` (or its Gramian ``[T, T]``) → one update ``[P]``."""

from __future__ import annotations

from typing import Any

from multitask.aggregation._aligned_mtl import AlignedMTL
from multitask.aggregation._base import (
    AggregationWarning,
    Aggregator,
    GramianAggregator,
    NonFiniteGradientError,
    check_gramian,
    check_jacobian,
    registry,
)
from multitask.aggregation._cagrad import CAGrad
from multitask.aggregation._config import ConFIG
from multitask.aggregation._dualproj import DualProj
from multitask.aggregation._graddrop import GradDrop
from multitask.aggregation._gradvac import GradVac
from multitask.aggregation._imtl_g import IMTLG
from multitask.aggregation._mean import Mean
from multitask.aggregation._mgda import MGDA
from multitask.aggregation._nash_mtl import NashMTL
from multitask.aggregation._pcgrad import PCGrad
from multitask.aggregation._sum import Sum
from multitask.aggregation._upgrad import UPGrad

__all__ = [
    "IMTLG",
    "MGDA",
    "AggregationWarning",
    "Aggregator",
    "AlignedMTL",
    "CAGrad",
    "ConFIG",
    "DualProj",
    "GradDrop",
    "GradVac",
    "GramianAggregator",
    "Mean",
    "NashMTL",
    "NonFiniteGradientError",
    "PCGrad",
    "Sum",
    "UPGrad",
    "check_gramian",
    "check_jacobian",
    "create",
    "names",
]


def create(name: str, **kwargs: Any) -> Aggregator:
    """The aggregator registered as ``name`` (e.g. ``"mgda"``, ``"upgrad"``), built with ``kwargs``."""
    return registry.create(name, **kwargs)


def names() -> list[str]:
    """Names accepted by `create` and by configs (``strategy: {aggregation: NAME}``)."""
    return registry.names()
