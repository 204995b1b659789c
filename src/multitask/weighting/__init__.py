"""Loss weighting strategies: per-task losses ``[T]`` → weights ``[T]`` → one scalar to minimise."""

from __future__ import annotations

from typing import Any

from multitask.weighting._base import Weighting, registry
from multitask.weighting._ew import EW

__all__ = ["EW", "Weighting", "create", "names"]


def create(name: str, **kwargs: Any) -> Weighting:
    """The weighting registered as ``name`` (e.g. ``"ew"``), built with ``kwargs``."""
    return registry.create(name, **kwargs)


def names() -> list[str]:
    """Names accepted by `create` and by configs (``strategy: {weighting: NAME}``)."""
    return registry.names()
