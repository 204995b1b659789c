"""scikit-learn's estimator checks, in the shared-X form, for every public estimator.

Every check applies and passes; none is skipped or expected to fail. The CV estimators run with a
short grid (``alphas=3, cv=2``) to keep the suite fast; their defaults only change the grid size.
"""

from __future__ import annotations

from typing import Any

from sklearn.utils.estimator_checks import parametrize_with_checks

from multitask import linear as L

ESTIMATORS: list[Any] = [getattr(L, name)() for name in L.__all__ if name[0].isupper() and not name.endswith("CV")] + [
    getattr(L, name)(alphas=3, cv=2, max_iter=300) for name in L.__all__ if name.endswith("CV")
]


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator: Any, check: Any) -> None:
    check(estimator)


def test_every_public_estimator_is_checked() -> None:
    names = {type(e).__name__ for e in ESTIMATORS}
    assert names == {n for n in L.__all__ if n[0].isupper()}
