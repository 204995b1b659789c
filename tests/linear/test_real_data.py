"""School data (``<repo>/../shared/data/school.mat``): multi-task models beat independent and pooled ridge."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io as sio

from multitask import linear as L

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


def load_school() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    path = DATA / "school.mat"
    if not path.exists():
        pytest.skip(f"School data not found at {path} (the shared data folder is not available)")
    mat = sio.loadmat(str(path))
    xs = [np.asarray(x, dtype=float)[:, :-1] for x in mat["X"][0]]
    ys = [np.asarray(y, dtype=float).ravel() for y in mat["Y"][0]]
    task = np.concatenate([np.full(len(y), t) for t, y in enumerate(ys)])
    X, y = np.vstack(xs), np.concatenate(ys)
    return (X - X.mean(0)) / X.std(0), (y - y.mean()) / y.std(), task


def explained_variance(y: np.ndarray, pred: np.ndarray) -> float:
    return 1.0 - float(np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2))


def test_school_mean_regularised_and_trace_beat_ridge_baselines() -> None:
    X, y, task = load_school()
    rng = np.random.default_rng(0)
    test = np.zeros(y.size, dtype=bool)
    for t in np.unique(task):
        rows = rng.permutation(np.flatnonzero(task == t))
        test[rows[: len(rows) // 4]] = True
    tr, te = ~test, test
    scores = {}
    models = {
        "independent": L.LeastSquaresLasso(alpha=0.0, l2=0.5),
        "mean": L.LeastSquaresMeanRegularized(alpha=1.0),
        "trace": L.LeastSquaresTrace(alpha=0.3),
    }
    for name, est in models.items():
        est.fit(X[tr], y[tr], task=task[tr])
        scores[name] = explained_variance(y[te], est.predict(X[te], task=task[te]))
    pooled = L.LeastSquaresLasso(alpha=0.0, l2=0.01).fit(X[tr], y[tr])
    scores["pooled"] = explained_variance(y[te], pooled.predict(X[te]))
    assert scores["mean"] > max(scores["independent"], scores["pooled"])
    assert scores["trace"] > scores["independent"]
    assert scores["mean"] > 0.3
