"""Loss weighting strategies: per-task losses ``[T]`` → weights ``[T]`` → one scalar to minimise."""

from __future__ import annotations

from typing import Any

from multitask.weighting._base import StepContext, Weighting, registry
from multitask.weighting._db_mtl import DBMTL
from multitask.weighting._dwa import DWA
from multitask.weighting._ew import EW
from multitask.weighting._famo import FAMO
from multitask.weighting._gls import GLS
from multitask.weighting._gradnorm import GradNorm
from multitask.weighting._imtl_l import IMTLL
from multitask.weighting._linear import Linear
from multitask.weighting._rlw import RLW
from multitask.weighting._stch import STCH
from multitask.weighting._uw import UW

__all__ = [
    "DBMTL",
    "DWA",
    "EW",
    "FAMO",
    "GLS",
    "IMTLL",
    "RLW",
    "STCH",
    "UW",
    "GradNorm",
    "Linear",
    "StepContext",
    "Weighting",
    "create",
    "names",
]


def create(name: str, **kwargs: Any) -> Weighting:
    """The weighting registered as ``name`` (e.g. ``"ew"``, ``"uw"``), built with ``kwargs``."""
    return registry.create(name, **kwargs)


def names() -> list[str]:
    """Names accepted by `create` and by configs (``strategy: {weighting: NAME}``)."""
    return registry.names()
