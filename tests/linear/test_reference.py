"""Solutions checked against scikit-learn and against optimality conditions."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.linear_model import Lasso, LogisticRegression, MultiTaskLasso, Ridge

from multitask import linear as L


def problem(n: int, d: int, T: int, seed: int, noise: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * rng.uniform(0.5, 3, d)
    W = np.zeros((d, T))
    W[: max(1, d // 5)] = rng.standard_normal((max(1, d // 5), T))
    return X, X @ W + noise * rng.standard_normal((n, T)) + rng.standard_normal(T)


def l21_objective(X: np.ndarray, Y: np.ndarray, coef: np.ndarray, intercept: np.ndarray, alpha: float) -> float:
    R = Y - X @ coef.T - intercept
    return float((R**2).sum() / (2 * X.shape[0]) + alpha * np.linalg.norm(coef, axis=0).sum())


@pytest.mark.parametrize(
    ("n", "d", "T", "alpha", "seed"),
    [(100, 20, 3, 0.05, 0), (200, 50, 6, 0.2, 1), (60, 120, 4, 0.1, 2), (300, 10, 10, 0.01, 3), (80, 30, 2, 1.0, 4)],
)
def test_l21_reaches_multitasklasso_objective(n: int, d: int, T: int, alpha: float, seed: int) -> None:
    X, Y = problem(n, d, T, seed)
    ref = MultiTaskLasso(alpha=alpha, tol=1e-12, max_iter=100000).fit(X, Y)
    ours = L.LeastSquaresL21(alpha=alpha, tol=1e-10, max_iter=20000).fit(X, Y)
    f_ref = l21_objective(X, Y, ref.coef_, ref.intercept_, alpha)
    f_ours = l21_objective(X, Y, ours.coef_, ours.intercept_, alpha)
    assert abs(f_ours - f_ref) <= 1e-6 * f_ref
    assert ours.dual_gap_ <= 1e-10 * np.sum((Y - Y.mean(0)) ** 2) / n


def test_l21_sparse_and_float32_agree_with_dense() -> None:
    X, Y = problem(150, 40, 3, 5)
    X[np.abs(X) < 1.0] = 0.0
    dense = L.LeastSquaresL21(alpha=0.1, tol=1e-10, max_iter=20000).fit(X, Y)
    sparse = L.LeastSquaresL21(alpha=0.1, tol=1e-10, max_iter=20000).fit(sp.csr_matrix(X), Y)
    np.testing.assert_allclose(sparse.coef_, dense.coef_, atol=1e-7)
    single = L.LeastSquaresL21(alpha=0.1, tol=1e-6).fit(X.astype(np.float32), Y.astype(np.float32))
    assert single.coef_.dtype == np.float32
    np.testing.assert_allclose(single.coef_, dense.coef_, atol=2e-3)


def test_lasso_columns_equal_sklearn_lasso() -> None:
    X, Y = problem(120, 25, 3, 6)
    ours = L.LeastSquaresLasso(alpha=0.1, tol=1e-10, max_iter=20000).fit(X, Y)
    for t in range(3):
        ref = Lasso(alpha=0.1, tol=1e-12, max_iter=100000).fit(X, Y[:, t])
        np.testing.assert_allclose(ours.coef_[t], ref.coef_, atol=1e-6)


def test_independent_ridge_and_logistic_equal_sklearn() -> None:
    X, Y = problem(100, 8, 2, 7)
    ridge = L.LeastSquaresLasso(alpha=0.0, l2=0.5, tol=1e-12, max_iter=20000).fit(X, Y)
    ref = Ridge(alpha=0.5 * X.shape[0]).fit(X, Y)
    np.testing.assert_allclose(ridge.coef_, ref.coef_, atol=1e-6)
    labels = (np.median(Y, axis=0) < Y).astype(int)
    logit = L.LogisticLasso(alpha=0.0, l2=0.1, tol=1e-12, max_iter=20000).fit(X, labels)
    for t in range(2):
        ref_t = LogisticRegression(C=1 / (0.1 * X.shape[0]), tol=1e-12, max_iter=10000).fit(X, labels[:, t])
        np.testing.assert_allclose(logit.coef_[t], ref_t.coef_[0], atol=1e-5)
        np.testing.assert_allclose(logit.intercept_[t], ref_t.intercept_[0], atol=1e-5)


@pytest.mark.parametrize("alpha", [1.0, 2.0])
def test_trace_norm_solution_satisfies_kkt(alpha: float) -> None:
    X, Y = problem(200, 15, 6, 8)
    est = L.LeastSquaresTrace(alpha=alpha, tol=1e-12, max_iter=50000).fit(X, Y)
    W = est.coef_.T
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    grad = Xc.T @ (Xc @ W - Yc) / X.shape[0]
    # 0 ∈ ∇f(W) + α ∂‖W‖_*:  −∇f = α (U Vᵀ + Z), Uᵀ Z = 0, Z V = 0, ‖Z‖₂ ≤ 1
    u, s, vt = np.linalg.svd(W, full_matrices=False)
    rank = int(np.sum(s > 1e-6 * s.max()))
    assert 0 < rank < 6
    U, V = u[:, :rank], vt[:rank].T
    G = -grad / alpha
    np.testing.assert_allclose(U.T @ G @ V, np.eye(rank), atol=1e-5)
    Z = G - U @ V.T
    np.testing.assert_allclose(U.T @ Z, 0, atol=1e-5)
    np.testing.assert_allclose(Z @ V, 0, atol=1e-5)
    assert np.linalg.norm(Z, 2) <= 1 + 1e-5


def test_missing_targets_equal_per_task_form() -> None:
    X, Y = problem(90, 10, 3, 9)
    Y[::4, 0] = np.nan
    Y[1::5, 2] = np.nan
    shared = L.LeastSquaresTrace(alpha=0.1, tol=1e-10, max_iter=20000).fit(X, Y)
    rows, cols = np.nonzero(~np.isnan(Y))
    per_task = L.LeastSquaresTrace(alpha=0.1, tol=1e-10, max_iter=20000).fit(X[rows], Y[rows, cols], task=cols)
    np.testing.assert_allclose(shared.coef_, per_task.coef_, atol=1e-6)
    np.testing.assert_allclose(shared.intercept_, per_task.intercept_, atol=1e-6)
    pred = per_task.predict(X[:5], task=np.array([0, 1, 2, 0, 1]))
    np.testing.assert_allclose(pred, shared.predict(X[:5])[np.arange(5), [0, 1, 2, 0, 1]], atol=1e-8)


def test_limits_of_the_coupled_models() -> None:
    X, Y = problem(120, 6, 4, 10)
    pooled = Ridge(alpha=1e-8).fit(np.vstack([X] * 4), Y.T.ravel()).coef_
    mean = L.LeastSquaresMeanRegularized(alpha=1e6, tol=1e-12, max_iter=50000).fit(X, Y)
    np.testing.assert_allclose(mean.coef_, np.tile(pooled, (4, 1)), atol=1e-3)
    graph = L.LeastSquaresGraph(alpha=1e6, tol=1e-12, max_iter=50000).fit(X, Y)
    np.testing.assert_allclose(graph.coef_, np.tile(pooled, (4, 1)), atol=1e-3)
    # with k = T, M = I is forced and the clustered penalty is the ridge β‖W‖²
    clus = L.LeastSquaresClustered(alpha=0.3, beta=0.2, n_clusters=4, tol=1e-12, max_iter=50000).fit(X, Y)
    ridge = L.LeastSquaresLasso(alpha=0.0, l2=0.4, tol=1e-12, max_iter=50000).fit(X, Y)
    np.testing.assert_allclose(clus.coef_, ridge.coef_, atol=1e-5)
    np.testing.assert_allclose(clus.task_relation_, np.eye(4), atol=1e-8)


def test_dirty_and_robust_decompose() -> None:
    X, Y = problem(150, 12, 4, 11)
    dirty = L.LeastSquaresDirty(alpha=0.05, beta=0.05, tol=1e-8, max_iter=20000).fit(X, Y)
    np.testing.assert_allclose(dirty.coef_, dirty.coef_group_ + dirty.coef_sparse_)
    huge_beta = L.LeastSquaresDirty(alpha=0.05, beta=1e3, group_norm="l2", tol=1e-10, max_iter=20000).fit(X, Y)
    l21 = L.LeastSquaresL21(alpha=0.05, tol=1e-12, max_iter=20000).fit(X, Y)
    np.testing.assert_allclose(huge_beta.coef_, l21.coef_, atol=1e-5)
    robust = L.LeastSquaresRobust(alpha=0.05, beta=1e3, tol=1e-10, max_iter=20000).fit(X, Y)
    trace = L.LeastSquaresTrace(alpha=0.05, tol=1e-12, max_iter=20000).fit(X, Y)
    np.testing.assert_allclose(robust.coef_, trace.coef_, atol=1e-5)
    assert np.allclose(robust.coef_outlier_, 0)


def test_cv_picks_alpha_on_a_warm_started_path() -> None:
    X, Y = problem(150, 30, 4, 12, noise=2.0)
    cv = L.LeastSquaresL21CV(alphas=12, cv=3).fit(X, Y)
    assert cv.loss_path_.shape == (12, 3)
    assert cv.alphas_[0] > cv.alpha_ > cv.alphas_[-1]
    assert np.all(L.LeastSquaresL21(alpha=cv.alphas_[0] * 1.001).fit(X, Y).coef_ == 0)  # α_max zeroes W
    ref = L.LeastSquaresL21(alpha=cv.alpha_).fit(X, Y)
    np.testing.assert_allclose(cv.coef_, ref.coef_, atol=1e-6)
    labels = (Y > 0).astype(int)
    logit = L.LogisticTraceCV(alphas=5, cv=2).fit(X, labels)
    assert logit.score(X, labels) > 0.7


@pytest.mark.parametrize("penalty", ["l21", "lasso"])
def test_working_set_solver_matches_sklearn_when_d_exceeds_n(penalty: str) -> None:
    # d ≫ n: the loss is evaluated from X and solved on a growing working set of features
    rng = np.random.default_rng(13)
    X = rng.standard_normal((80, 600))
    Y = X[:, :8] @ rng.standard_normal((8, 3)) + 0.5 * rng.standard_normal((80, 3))
    alpha = 0.1
    if penalty == "l21":
        ours = L.LeastSquaresL21(alpha=alpha, tol=1e-10, max_iter=20000).fit(X, Y)
        ref = MultiTaskLasso(alpha=alpha, tol=1e-12, max_iter=100000).fit(X, Y)
        f_ref = l21_objective(X, Y, ref.coef_, ref.intercept_, alpha)
        assert abs(l21_objective(X, Y, ours.coef_, ours.intercept_, alpha) - f_ref) <= 1e-6 * f_ref
    else:
        ours = L.LeastSquaresLasso(alpha=alpha, tol=1e-10, max_iter=20000).fit(X, Y)
        for t in range(3):
            ref_t = Lasso(alpha=alpha, tol=1e-12, max_iter=100000).fit(X, Y[:, t])
            np.testing.assert_allclose(ours.coef_[t], ref_t.coef_, atol=1e-5)
    assert 0 < np.count_nonzero(np.any(ours.coef_ != 0, axis=0)) < 600
    X_sparse = X.copy()
    X_sparse[np.abs(X_sparse) < 1.0] = 0.0
    dense = L.LeastSquaresL21(alpha=alpha, tol=1e-10, max_iter=20000).fit(X_sparse, Y)
    sparse = L.LeastSquaresL21(alpha=alpha, tol=1e-10, max_iter=20000).fit(sp.csr_matrix(X_sparse), Y)
    np.testing.assert_allclose(sparse.coef_, dense.coef_, atol=1e-7)
    warm = L.LeastSquaresL21(alpha=alpha, tol=1e-10, max_iter=20000, warm_start=True).fit(X, Y)
    assert warm.set_params(alpha=0.8 * alpha).fit(X, Y).dual_gap_ <= 1e-10 * np.sum((Y - Y.mean(0)) ** 2) / 80


def test_clustered_eliminates_m_exactly() -> None:
    from multitask.linear._clustered import ClusteredPenalty, cluster_weights

    X, Y = problem(150, 8, 6, 14)
    est = L.LeastSquaresClustered(alpha=1.0, beta=0.05, n_clusters=2, tol=1e-12, max_iter=50000).fit(X, Y)
    W = est.coef_.T
    M = est.task_relation_
    eig = np.linalg.eigvalsh(M)
    assert eig.min() >= -1e-9 and eig.max() <= 1 + 1e-9 and abs(np.trace(M) - 2) < 1e-9

    def penalty(m: np.ndarray) -> float:  # MALSAR's form: ρ1 η (1 + η) tr(W (ηI + M)⁻¹ Wᵀ), η = ρ2 / ρ1
        eta = 0.05 / 1.0
        return float(1.0 * eta * (1 + eta) * np.trace(W @ np.linalg.inv(eta * np.eye(6) + m) @ W.T))

    smooth = ClusteredPenalty(8, 6, 1.0, 0.05, 2).smooth([W.copy()], None)
    assert abs(penalty(M) - smooth) <= 1e-9 * smooth
    rng = np.random.default_rng(0)
    for _ in range(50):  # no feasible M gives a smaller penalty than the closed-form one
        q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
        gamma = cluster_weights(np.abs(rng.standard_normal(6)) * 10, 1.0, 1.0, 2)
        assert penalty((q * gamma) @ q.T) >= smooth - 1e-9 * smooth
    # stationarity in W of the loss plus the (smooth) penalty
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    grad = [Xc.T @ (Xc @ W - Yc) / 150]
    ClusteredPenalty(8, 6, 1.0, 0.05, 2).smooth([W.copy()], grad)
    assert np.abs(grad[0]).max() < 1e-7
