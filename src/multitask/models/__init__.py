"""Sharing schemes: how tasks share parameters."""

from multitask.models._base import MultiTaskModel
from multitask.models._hard import HardSharing
from multitask.models._mlp import MLP

__all__ = ["MLP", "HardSharing", "MultiTaskModel"]
