"""Bad input is refused with a clear error before any work; non-convergence warns with the gap."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from multitask import linear as L
from multitask.errors import DataError, ShapeError

RNG = np.random.default_rng(0)
X = RNG.standard_normal((30, 4))
Y = X @ RNG.standard_normal((4, 3))


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_x_is_refused(value: float) -> None:
    bad = X.copy()
    bad[3, 1] = value
    with pytest.raises(ValueError, match="Input X contains"):
        L.LeastSquaresL21().fit(bad, Y)


def test_infinite_target_is_refused_but_nan_means_missing() -> None:
    bad = Y.copy()
    bad[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        L.LeastSquaresL21().fit(X, bad)
    missing = Y.copy()
    missing[0, 0] = np.nan
    assert L.LeastSquaresL21().fit(X, missing).coef_.shape == (3, 4)


@pytest.mark.parametrize("shape", [(29, 3), (30, 3, 1), (31,)])
def test_wrong_target_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises((ShapeError, ValueError)):
        L.LeastSquaresTrace().fit(X, np.zeros(shape))


def test_per_task_shapes_and_unknown_tasks() -> None:
    task = np.repeat([0, 1, 2], 10)
    with pytest.raises(ShapeError, match="task"):
        L.LeastSquaresL21().fit(X, Y[:, 0], task=task[:-1])
    est = L.LeastSquaresL21().fit(X, Y[:, 0], task=task)
    with pytest.raises(DataError, match="unknown task"):
        est.predict(X[:2], task=[0, 7])


def test_task_without_samples() -> None:
    empty = Y.copy()
    empty[:, 1] = np.nan
    with pytest.raises(DataError, match=r"task\(s\) \[1\] have no observed sample"):
        L.LeastSquaresMeanRegularized().fit(X, empty)
    labels = (Y > 0).astype(float)
    labels[:, 2] = np.nan
    with pytest.raises(DataError, match="no observed sample"):
        L.LogisticL21().fit(X, labels)


@pytest.mark.parametrize(
    ("estimator", "name"),
    [
        (L.LeastSquaresL21(alpha=-1.0), "alpha"),
        (L.LogisticTrace(alpha=float("nan")), "alpha"),
        (L.LeastSquaresDirty(beta=-0.1), "beta"),
        (L.LeastSquaresClustered(beta=0.0), "beta"),
        (L.LeastSquaresGraph(l2=-1.0), "l2"),
        (L.LeastSquaresL21CV(eps=-1.0), "eps"),
        (L.LeastSquaresLasso(max_iter=0), "max_iter"),
        (L.LeastSquaresDirty(group_norm="l3"), "group_norm"),
    ],
)
def test_invalid_parameters(estimator: object, name: str) -> None:
    with pytest.raises(ValueError, match=name):
        estimator.fit(X, Y)  # type: ignore[attr-defined]


def test_graph_of_the_wrong_size() -> None:
    with pytest.raises(ShapeError, match="graph"):
        L.LeastSquaresGraph(graph=np.ones((2, 1))).fit(X, Y)


def test_classifier_needs_two_classes() -> None:
    with pytest.raises(ValueError, match="Only binary"):
        L.LogisticL21().fit(X, np.arange(30) % 3)
    with pytest.raises(ValueError, match="one class"):
        L.LogisticL21().fit(X, np.ones(30))


def test_non_convergence_warns_with_the_gap() -> None:
    with pytest.warns(ConvergenceWarning, match=r"duality gap [0-9.e+-]+ > tolerance"):
        L.LeastSquaresL21(alpha=1e-3, max_iter=2, tol=1e-12).fit(X, Y)
    with pytest.warns(ConvergenceWarning, match="relative change"):
        L.LogisticMeanRegularized(max_iter=2, tol=1e-12).fit(X, Y > 0)
