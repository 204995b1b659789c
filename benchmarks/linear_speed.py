"""Speed of ``LeastSquaresL21`` against scikit-learn's ``MultiTaskLasso`` at equal objective.

For each dense problem, scikit-learn is run at ``tol`` and its final objective ``F_sk`` recorded; our
solver is then run at the same ``alpha`` and ``tol`` (duality-gap rule, same scaling as scikit-learn),
and the table reports both times, their ratio (ours / scikit-learn; < 1 is faster) and the objective
gap ``(F_ours − F_sk) / F_sk``. The path benchmark fits 50 warm-started ``alpha`` values from
``alpha_max`` down to ``1e-3 alpha_max`` with both libraries (``MultiTaskLasso(warm_start=True)``,
the same path ``MultiTaskLassoCV`` walks on each fold).

    python benchmarks/linear_speed.py [--quick]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import MultiTaskLasso

from multitask.linear import LeastSquaresL21


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


def single(sizes: list[tuple[int, int, int]], tol: float) -> None:
    print("| n | d | T | alpha/alpha_max | sklearn s | ours s | ratio | objective gap |")
    print("|---|---|---|---|---|---|---|---|")
    for n, d, T in sizes:
        X, Y = problem(n, d, T)
        alpha = 0.1 * alpha_max(X, Y)
        start = time.perf_counter()
        sk = MultiTaskLasso(alpha=alpha, tol=tol, max_iter=10000).fit(X, Y)
        t_sk = time.perf_counter() - start
        start = time.perf_counter()
        ours = LeastSquaresL21(alpha=alpha, tol=tol, max_iter=10000).fit(X, Y)
        t_ours = time.perf_counter() - start
        f_sk = objective(X, Y, sk.coef_, sk.intercept_, alpha)
        f_ours = objective(X, Y, ours.coef_, ours.intercept_, alpha)
        print(
            f"| {n} | {d} | {T} | 0.1 | {t_sk:.3f} | {t_ours:.3f} | {t_ours / t_sk:.2f} | "
            f"{(f_ours - f_sk) / f_sk:+.1e} |",
            flush=True,
        )


def path(sizes: list[tuple[int, int, int]], tol: float, n_alphas: int) -> None:
    print(f"\n| n | d | T | path of {n_alphas} alphas: sklearn s | ours s | ratio | max objective gap |")
    print("|---|---|---|---|---|---|---|")
    for n, d, T in sizes:
        X, Y = problem(n, d, T)
        grid = np.geomspace(alpha_max(X, Y), 1e-3 * alpha_max(X, Y), n_alphas)
        sk = MultiTaskLasso(tol=tol, max_iter=10000, warm_start=True)
        ours = LeastSquaresL21(tol=tol, max_iter=10000, warm_start=True)
        gaps, t_sk, t_ours = [], 0.0, 0.0
        for a in grid:
            start = time.perf_counter()
            sk.set_params(alpha=a).fit(X, Y)
            t_sk += time.perf_counter() - start
            start = time.perf_counter()
            ours.set_params(alpha=a).fit(X, Y)
            t_ours += time.perf_counter() - start
            f_sk = objective(X, Y, sk.coef_, sk.intercept_, a)
            gaps.append((objective(X, Y, ours.coef_, ours.intercept_, a) - f_sk) / f_sk)
        print(f"| {n} | {d} | {T} | {t_sk:.2f} | {t_ours:.2f} | {t_ours / t_sk:.2f} | {max(gaps):+.1e} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small problems only (about a minute)")
    parser.add_argument("--tol", type=float, default=1e-4)
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
    single(sizes, args.tol)
    path(path_sizes, args.tol, 50)


if __name__ == "__main__":
    main()
