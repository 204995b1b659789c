"""Speed of ``LeastSquaresL21`` against scikit-learn's ``MultiTaskLasso`` at equal objective.

Single fits: both solvers at the same ``alpha = 0.1 alpha_max`` and ``tol`` (both stop on the duality
gap, with scikit-learn's scaling ``tol · ‖Y − Ȳ‖²``). Paths: 50 ``alpha`` values from ``alpha_max``
down to ``1e-3 alpha_max``, warm-started: scikit-learn's ``lasso_path`` on centred data (what
``MultiTaskLassoCV`` runs on each fold, centring included in its time) against ours, which builds
the loss (Gram matrix, centring) once and carries the step constant along the path.

Each timing is the best of ``--repeats`` runs, the two solvers interleaved in one process so that
other load on the machine affects both alike. The gap columns give each solver's final objective
relative to the better of the two, ``(F − min(F_sk, F_ours)) / min(F_sk, F_ours)`` (for paths, the
largest over the ``alpha`` values). Ratio = ours / scikit-learn; < 1 is faster.

    OPENBLAS_NUM_THREADS=1 python benchmarks/linear_speed.py [--quick]

One BLAS thread puts our solver on the footing of scikit-learn's coordinate descent, which is
single-threaded; on a shared machine it also avoids threads spinning against other work.
"""

from __future__ import annotations

import argparse
import math
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import MultiTaskLasso, lasso_path

from multitask.linear import LeastSquaresL21
from multitask.linear._cv import l21_path


def problem(n: int, d: int, T: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    W = np.zeros((d, T))
    k = max(1, d // 10)
    W[rng.choice(d, k, replace=False)] = rng.standard_normal((k, T))
    return X, X @ W + rng.standard_normal((n, T))


def objective(X: np.ndarray, Y: np.ndarray, coef: np.ndarray, intercept: np.ndarray, alpha: float) -> float:
    R = Y - X @ coef.T - intercept
    return float((R**2).sum() / (2 * X.shape[0]) + alpha * np.linalg.norm(coef, axis=0).sum())


def alpha_max(X: np.ndarray, Y: np.ndarray) -> float:
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    return float(np.linalg.norm(Xc.T @ Yc, axis=1).max() / X.shape[0])


def best_of(repeats: int, *fits: Callable[[], Any]) -> list[tuple[float, Any]]:
    """Runs the fits interleaved ``repeats`` times; the fastest time of each, with its fitted result.

    Interleaving puts both solvers under the same load when other work shares the machine.
    """
    best: list[tuple[float, Any]] = [(math.inf, None)] * len(fits)
    for _ in range(repeats):
        for k, fit in enumerate(fits):
            start = time.perf_counter()
            result = fit()
            elapsed = time.perf_counter() - start
            if elapsed < best[k][0]:
                best[k] = (elapsed, result)
    return best


def gaps(values: list[float]) -> list[float]:
    """Relative objective gap of each value to the best (smallest) of them."""
    lowest = min(values)
    return [(v - lowest) / abs(lowest) for v in values]


def single(sizes: list[tuple[int, int, int]], tol: float, repeats: int) -> None:
    print("| n | d | T | sklearn s | ours s | ratio | sklearn gap | ours gap |")
    print("|---|---|---|---|---|---|---|---|")
    for n, d, T in sizes:
        X, Y = problem(n, d, T)
        alpha = 0.1 * alpha_max(X, Y)
        (t_sk, sk), (t_ours, ours) = best_of(
            repeats,
            lambda X=X, Y=Y, alpha=alpha: MultiTaskLasso(alpha=alpha, tol=tol, max_iter=10000).fit(X, Y),
            lambda X=X, Y=Y, alpha=alpha: LeastSquaresL21(alpha=alpha, tol=tol, max_iter=10000).fit(X, Y),
        )
        g_sk, g_ours = gaps([objective(X, Y, m.coef_, m.intercept_, alpha) for m in (sk, ours)])
        print(
            f"| {n} | {d} | {T} | {t_sk:.3f} | {t_ours:.3f} | {t_ours / t_sk:.2f} | {g_sk:.1e} | {g_ours:.1e} |",
            flush=True,
        )


def path(sizes: list[tuple[int, int, int]], tol: float, n_alphas: int, repeats: int) -> None:
    print(f"\n| n | d | T | {n_alphas}-α path: sklearn s | ours s | ratio | sklearn max gap | ours max gap |")
    print("|---|---|---|---|---|---|---|---|")
    for n, d, T in sizes:
        X, Y = problem(n, d, T)
        grid = np.geomspace(alpha_max(X, Y), 1e-3 * alpha_max(X, Y), n_alphas)

        def sk_path(X: np.ndarray = X, Y: np.ndarray = Y, grid: np.ndarray = grid) -> list[tuple[np.ndarray, ...]]:
            # what MultiTaskLassoCV runs on each fold: centre once, then the warm-started CD path
            x_mean, y_mean = X.mean(axis=0), Y.mean(axis=0)
            _, coefs, _ = lasso_path(X - x_mean, Y - y_mean, alphas=grid, tol=tol, max_iter=10000)
            return [(coefs[:, :, k], y_mean - coefs[:, :, k] @ x_mean) for k in range(grid.size)]

        def our_path(X: np.ndarray = X, Y: np.ndarray = Y, grid: np.ndarray = grid) -> list[tuple[np.ndarray, ...]]:
            coefs, intercepts = l21_path(X, Y, grid, tol=tol, max_iter=10000)
            return list(zip(coefs, intercepts, strict=True))

        (t_sk, sk), (t_ours, ours) = best_of(repeats, sk_path, our_path)
        per_alpha = [gaps([objective(X, Y, c, b, a) for c, b in (sk[k], ours[k])]) for k, a in enumerate(grid)]
        g_sk, g_ours = (max(g[i] for g in per_alpha) for i in (0, 1))
        print(
            f"| {n} | {d} | {T} | {t_sk:.2f} | {t_ours:.2f} | {t_ours / t_sk:.2f} | {g_sk:.1e} | {g_ours:.1e} |",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small problems only (about a minute)")
    parser.add_argument("--tol", type=float, default=1e-4)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many interleaved runs")
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)
    if args.quick:
        sizes = [(1000, 100, 5), (1000, 500, 20), (10000, 100, 10), (1000, 2000, 5)]
        path_sizes = [(1000, 100, 5), (5000, 200, 10)]
    else:
        sizes = [
            (1000, 100, 5),
            (1000, 500, 20),
            (1000, 2000, 5),
            (10000, 100, 10),
            (10000, 500, 50),
            (10000, 2000, 10),
            (100000, 100, 5),
            (100000, 500, 20),
            (100000, 100, 100),
        ]
        path_sizes = [(1000, 100, 5), (10000, 200, 10), (10000, 1000, 20)]
    single(sizes, args.tol, args.repeats)
    path(path_sizes, args.tol, 50, args.repeats)


if __name__ == "__main__":
    main()
