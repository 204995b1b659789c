"""Proximal operators and projections against their definitions, by brute-force minimisation."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy.optimize import minimize

from multitask.linear import _prox as P

RNG = np.random.default_rng(0)


def brute_prox(v: np.ndarray, h: Callable[[np.ndarray], float]) -> np.ndarray:
    """argmin_u ½‖u − v‖² + h(u) by Powell from several starts (h is non-smooth)."""
    shape = v.shape

    def objective(u: np.ndarray) -> float:
        return 0.5 * float(np.sum((u - v.ravel()) ** 2)) + h(u.reshape(shape))

    starts = [v.ravel(), np.zeros(v.size)]
    best = min(
        (
            minimize(objective, s, method="Powell", options={"xtol": 1e-10, "ftol": 1e-14, "maxiter": 200000})
            for s in starts
        ),
        key=lambda r: r.fun,
    )
    return np.asarray(best.x).reshape(shape)


def prox_value(v: np.ndarray, u: np.ndarray, h: Callable[[np.ndarray], float]) -> float:
    return 0.5 * float(np.sum((u - v) ** 2)) + h(u)


CASES = [
    ("l1", lambda v, t: P.soft_threshold(v, t), lambda u, t: t * np.abs(u).sum()),
    ("l21 rows", lambda v, t: P.group_soft_threshold(v, t, axis=1), lambda u, t: t * np.linalg.norm(u, axis=1).sum()),
    ("l12 cols", lambda v, t: P.group_soft_threshold(v, t, axis=0), lambda u, t: t * np.linalg.norm(u, axis=0).sum()),
    ("l1inf rows", lambda v, t: P.prox_linf(v, t), lambda u, t: t * np.abs(u).max(axis=1).sum()),
    ("trace", lambda v, t: P.singular_value_threshold(v, t), lambda u, t: t * np.linalg.svd(u, compute_uv=False).sum()),
]


@pytest.mark.parametrize("threshold", [0.0, 0.3, 1.5])
@pytest.mark.parametrize(("name", "prox", "norm"), CASES, ids=[c[0] for c in CASES])
def test_prox_minimises_its_definition(name: str, prox: Callable, norm: Callable, threshold: float) -> None:
    v = RNG.standard_normal((3, 2))
    u = prox(v, threshold)
    h = lambda w: norm(w, threshold)  # noqa: E731
    brute = brute_prox(v, h)
    # the closed form is never worse than the brute-force minimiser ...
    assert prox_value(v, u, h) <= prox_value(v, brute, h) + 1e-9
    # ... and, the objective being 1-strongly convex, u is its minimiser iff F(u') ≥ F(u) + ½‖u' − u‖² for all u'
    for scale in (1e-3, 1e-1, 1.0):
        for _ in range(300):
            other = u + scale * RNG.standard_normal(u.shape)
            gain = prox_value(v, other, h) - prox_value(v, u, h)
            assert gain >= 0.5 * np.sum((other - u) ** 2) - 1e-10
    if name in ("l1", "l21 rows", "l12 cols"):  # Powell is reliable on these; it stalls on l1,inf and trace
        np.testing.assert_allclose(u, brute, atol=1e-4)


def test_prox_keeps_float32() -> None:
    v = RNG.standard_normal((4, 3)).astype(np.float32)
    for _, prox, _ in CASES:
        assert prox(v, 0.2).dtype == np.float32


@pytest.mark.parametrize("radius", [0.0, 0.5, 2.0, 100.0])
def test_l1_ball_projection_is_the_nearest_feasible_point(radius: float) -> None:
    v = RNG.standard_normal((5, 4))
    u = P.project_l1_ball(v, radius)
    assert np.all(np.abs(u).sum(axis=1) <= radius + 1e-9)
    for _ in range(200):  # no random feasible point is closer
        w = P.project_l1_ball(u + 0.3 * RNG.standard_normal(u.shape), radius)
        assert np.all(np.linalg.norm(w - v, axis=1) >= np.linalg.norm(u - v, axis=1) - 1e-9)


@pytest.mark.parametrize("total", [0.0, 1.0, 2.5, 4.0])
def test_capped_simplex_projection_matches_a_qp(total: float) -> None:
    v = RNG.standard_normal(4) * 2
    x = P.project_capped_simplex(v, total)
    res = minimize(
        lambda z: 0.5 * np.sum((z - v) ** 2),
        np.full(4, total / 4),
        jac=lambda z: z - v,
        method="SLSQP",
        bounds=[(0, 1)] * 4,
        constraints=[{"type": "eq", "fun": lambda z: z.sum() - total}],
        options={"ftol": 1e-14, "maxiter": 1000},
    )
    np.testing.assert_allclose(x, res.x, atol=1e-6)
    assert abs(x.sum() - total) < 1e-9 and x.min() >= 0 and x.max() <= 1


def test_spectral_projection_is_feasible_and_keeps_feasible_points() -> None:
    a = RNG.standard_normal((5, 5))
    m = P.project_spectral_capped(a + a.T, 2.0)
    eig = np.linalg.eigvalsh(m)
    assert eig.min() >= -1e-9 and eig.max() <= 1 + 1e-9 and abs(np.trace(m) - 2.0) < 1e-9
    np.testing.assert_allclose(P.project_spectral_capped(m, 2.0), m, atol=1e-9)


@pytest.mark.parametrize(("alpha", "beta", "k"), [(1.0, 0.1, 1), (0.3, 1.0, 2), (5.0, 0.01, 3), (1.0, 1.0, 5)])
def test_cluster_weights_match_a_qp(alpha: float, beta: float, k: int) -> None:
    from multitask.linear._clustered import cluster_weights

    sigma = np.abs(RNG.standard_normal(6)) * 2
    sigma[-1] = 0.0  # a rank-deficient W
    gamma = cluster_weights(sigma, alpha, beta, k)

    def objective(g: np.ndarray) -> float:
        return float(np.sum(sigma**2 / (beta + alpha * g)))

    res = minimize(
        objective,
        np.full(6, k / 6),
        method="SLSQP",
        bounds=[(0, 1)] * 6,
        constraints=[{"type": "eq", "fun": lambda g: g.sum() - k}],
        options={"ftol": 1e-14, "maxiter": 1000},
    )
    assert abs(gamma.sum() - k) < 1e-9 and gamma.min() >= 0 and gamma.max() <= 1
    assert objective(gamma) <= res.fun + 1e-9 * max(res.fun, 1.0)
