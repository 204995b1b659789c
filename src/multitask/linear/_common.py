"""Constructor arguments shared by every estimator (kept in one place so their meaning cannot drift)."""

from __future__ import annotations

from typing import TypeVar

from multitask.linear._base import check_non_negative

COMMON_ARGS = """
        fit_intercept: Fit one unpenalised intercept per task (least squares: eliminated exactly by
            centring each task; logistic: an extra unpenalised variable).
        max_iter: Maximum number of FISTA steps.
        tol: Stopping tolerance: duality gap ``≤ tol · Σ_t ‖y_t − ȳ_t‖² / n_t`` where the model has a
            computable gap (least squares with an L2,1, L1 or trace norm and ``l2 = 0``), as
            scikit-learn's ``MultiTaskLasso``; otherwise relative change ``‖x_{k+1} − x_k‖ ≤ tol · ‖x_{k+1}‖``.
        warm_start: Start from the previous solution when refitting data of the same shape."""

DATA_NOTE = """
    Data: ``fit(X, Y)`` with ``Y [n, T]`` shared-X (``NaN`` marks a missing target; a 1-D ``y`` is one
    task), or ``fit(X, y, task=labels)`` where every row has its own task (MALSAR's form). The loss of
    each task is its mean over its observed samples, so ``f(W) = Σ_t (1/n_t) Σ_{i∈t} ℓ(x_iᵀ w_t + b_t, y_it)``."""


T = TypeVar("T")


def document(cls: T) -> T:
    """Fills the ``{common}`` and ``{data}`` placeholders of a class docstring."""
    doc = cls.__doc__ or ""
    cls.__doc__ = doc.replace("{common}", COMMON_ARGS.strip("\n")).replace("{data}", DATA_NOTE.strip("\n"))
    return cls


def check_alpha_beta(**values: float) -> None:
    """Checks regularisation strengths (finite, ``>= 0``)."""
    check_non_negative(**values)
