"""Reading results: method comparisons with Δm% (and, later, conflict, affinity and negative transfer)."""

from multitask.analysis._comparison import Comparison

__all__ = ["Comparison"]
