"""Regularised linear multi-task learning (MALSAR-class) as scikit-learn estimators.

Every estimator minimises ``f(W) + Ω(W)``: ``f`` sums each task's mean loss (squared error or
logistic) and ``Ω`` couples the task weight vectors ``W = [w_1 … w_T]``. All are solved by FISTA
with backtracking and adaptive restart, using exact proximal operators.
"""

from multitask.linear._clustered import LeastSquaresClustered, LogisticClustered
from multitask.linear._cv import (
    LeastSquaresL21CV,
    LeastSquaresLassoCV,
    LeastSquaresTraceCV,
    LogisticL21CV,
    LogisticLassoCV,
    LogisticTraceCV,
)
from multitask.linear._dirty import LeastSquaresDirty, LogisticDirty
from multitask.linear._graph import LeastSquaresGraph, LogisticGraph, complete_graph
from multitask.linear._l21 import LeastSquaresL21, LogisticL21
from multitask.linear._lasso import LeastSquaresLasso, LogisticLasso
from multitask.linear._mean import LeastSquaresMeanRegularized, LogisticMeanRegularized
from multitask.linear._robust import LeastSquaresRobust, LogisticRobust
from multitask.linear._trace import LeastSquaresTrace, LogisticTrace

__all__ = [
    "LeastSquaresClustered",
    "LeastSquaresDirty",
    "LeastSquaresGraph",
    "LeastSquaresL21",
    "LeastSquaresL21CV",
    "LeastSquaresLasso",
    "LeastSquaresLassoCV",
    "LeastSquaresMeanRegularized",
    "LeastSquaresRobust",
    "LeastSquaresTrace",
    "LeastSquaresTraceCV",
    "LogisticClustered",
    "LogisticDirty",
    "LogisticGraph",
    "LogisticL21",
    "LogisticL21CV",
    "LogisticLasso",
    "LogisticLassoCV",
    "LogisticMeanRegularized",
    "LogisticRobust",
    "LogisticTrace",
    "LogisticTraceCV",
    "complete_graph",
]
