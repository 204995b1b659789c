"""The regulariser interface shared by every linear multi-task estimator.

A formulation optimises blocks of variables (``W``; or ``P, Q`` for the dirty model; ``w_0, V`` for
mean regularisation; ``W, M`` for clustered MTL) whose linear image is the coefficient matrix
``W [d, T]`` seen by the loss. Its regulariser splits into a smooth part (gradient) and a part with
an exact proximal operator.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[Any]


class Penalty:
    """Base regulariser: one block ``W [d, T]``, nothing smooth, nothing to prox.

    Args:
        n_features: ``d``.
        n_tasks: ``T``.
    """

    is_quadratic = True  # the smooth part is quadratic (or zero)

    def __init__(self, n_features: int, n_tasks: int) -> None:
        self.n_features = n_features
        self.n_tasks = n_tasks

    def shapes(self) -> list[tuple[int, int]]:
        """Shapes of the variable blocks."""
        return [(self.n_features, self.n_tasks)]

    def coef(self, blocks: list[Array]) -> Array:
        """The coefficient matrix ``W [d, T]`` the blocks represent."""
        return blocks[0]

    def coef_adjoint(self, grad: Array, out: list[Array]) -> None:
        """Adds the gradient w.r.t. each block of a function of ``W`` with gradient ``grad``."""
        out[0] += grad

    def smooth(self, blocks: list[Array], out: list[Array] | None) -> float:
        """Value of the smooth part; adds its gradient to ``out`` when given."""
        return 0.0

    def prox(self, blocks: list[Array], step: float) -> None:
        """Replaces the blocks, in place, by the prox of ``step`` times the non-smooth part."""

    def value(self, blocks: list[Array]) -> float:
        """Value of the non-smooth part."""
        return 0.0

    def initialise(self, blocks: list[Array]) -> None:
        """Sets a feasible starting point in place (blocks arrive zeroed)."""

    def dual_ratio(self, grad: Array) -> float | None:
        """``Ω*(grad) / α`` when the model is ``f(W) + α Ω(W)`` exactly (enables the duality gap)."""
        return None

    def attributes(self, blocks: list[Array]) -> dict[str, Any]:
        """Extra fitted attributes (names end with ``_``) describing the blocks."""
        return {}


class NormPenalty(Penalty):
    """``α Ω(W) + (l2 / 2) ‖W‖²_F`` for a norm ``Ω`` with an exact prox and a computable dual norm.

    Args:
        n_features: ``d``.
        n_tasks: ``T``.
        alpha: ``α ≥ 0``.
        l2: Ridge weight ``≥ 0``.
    """

    def __init__(self, n_features: int, n_tasks: int, alpha: float, l2: float = 0.0) -> None:
        super().__init__(n_features, n_tasks)
        self.alpha = alpha
        self.l2 = l2

    @staticmethod
    def norm(matrix: Array) -> float:
        raise NotImplementedError

    @staticmethod
    def dual_norm(matrix: Array) -> float:
        raise NotImplementedError

    @staticmethod
    def prox_norm(matrix: Array, threshold: float) -> Array:
        raise NotImplementedError

    @staticmethod
    def row_dual_norms(matrix: Array) -> Array | None:
        """Dual norm of each row ``[d]`` when ``Ω`` is a sum over rows (features); ``None`` otherwise."""
        return None

    def smooth(self, blocks: list[Array], out: list[Array] | None) -> float:
        if self.l2 == 0.0:
            return 0.0
        if out is not None:
            out[0] += self.l2 * blocks[0]
        return 0.5 * self.l2 * float(np.vdot(blocks[0], blocks[0]))

    def prox(self, blocks: list[Array], step: float) -> None:
        if self.alpha > 0:
            blocks[0][...] = self.prox_norm(blocks[0], step * self.alpha)

    def value(self, blocks: list[Array]) -> float:
        return self.alpha * self.norm(blocks[0])

    def dual_ratio(self, grad: Array) -> float | None:
        if self.l2 != 0.0 or self.alpha <= 0.0:
            return None
        return self.dual_norm(grad) / self.alpha
