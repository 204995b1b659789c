"""The built-in metrics by task kind and name, with hints across the per-sample and per-pixel ones."""

from __future__ import annotations

from multitask.errors import UnknownNameError
from multitask.metrics._dense import BUILTIN_DENSE_METRICS, DenseMetric
from multitask.metrics._sample import BUILTIN_METRICS, Metric


def builtin_metric(kind: str, name: str) -> Metric:
    """The built-in metric ``name`` for tasks of ``kind``; raises `UnknownNameError` listing the choices."""
    available = BUILTIN_METRICS.get(kind)
    if available is None:
        raise UnknownNameError(f"unknown task kind {kind!r}; allowed: {', '.join(BUILTIN_METRICS)}")
    if name not in available:
        dense = name in BUILTIN_DENSE_METRICS.get(kind, {})
        hint = " (a per-pixel metric: pass Task(..., dense=True) for per-pixel targets)" if dense else ""
        raise UnknownNameError(f"unknown metric {name!r} for a {kind} task{hint}; allowed: {', '.join(available)}")
    return available[name]


def builtin_dense_metric(kind: str, name: str) -> DenseMetric:
    """The built-in metric ``name`` for dense tasks of ``kind``; raises `UnknownNameError` listing the choices."""
    available = BUILTIN_DENSE_METRICS.get(kind)
    if available is None:
        raise UnknownNameError(f"dense tasks are {' or '.join(BUILTIN_DENSE_METRICS)}; got kind {kind!r}")
    if name not in available:
        per_sample = name in BUILTIN_METRICS.get(kind, {})
        hint = " (a per-sample metric: dense tasks need per-pixel ones)" if per_sample else ""
        raise UnknownNameError(
            f"unknown metric {name!r} for a dense {kind} task{hint}; allowed: {', '.join(available)}"
        )
    return available[name]
