"""Trade-offs between tasks: a sweep over preference vectors, the non-dominated front and its hypervolume."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from multitask._plots import pyplot, save_png
from multitask.errors import ConfigError, DataError
from multitask.layout import PARETO_FILE
from multitask.training.checkpoint import atomic_write_bytes

if TYPE_CHECKING:
    pass

SWEEP_METHODS = ("linear", "stch")


def preference_grid(num_tasks: int, resolution: int = 6) -> list[tuple[float, ...]]:
    """Preference vectors with entries ``k_t / resolution``, ``k_t ≥ 1`` integers summing to ``resolution``.

    Every vector is strictly positive (each task keeps some weight) and sums to one: for two tasks
    and ``resolution=6``, ``(1/6, 5/6), (2/6, 4/6), …, (5/6, 1/6)``.
    """
    if isinstance(num_tasks, bool) or not isinstance(num_tasks, int) or num_tasks < 2:
        raise ConfigError(f"num_tasks must be an integer ≥ 2; got {num_tasks!r}")
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < num_tasks:
        raise ConfigError(f"resolution must be an integer ≥ num_tasks ({num_tasks}); got {resolution!r}")
    grid = []
    for cut in itertools.combinations(range(1, resolution), num_tasks - 1):
        parts = np.diff([0, *cut, resolution])
        grid.append(tuple(float(p) / resolution for p in parts))
    return grid


def nondominated(points: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Boolean mask of the points (rows, all objectives minimised) that no other point dominates.

    ``q`` dominates ``p`` when ``q ≤ p`` in every objective and ``q < p`` in at least one.
    """
    values = np.asarray(points, dtype=float)
    keep = np.ones(len(values), dtype=bool)
    for k, p in enumerate(values):
        dominated = np.all(values <= p, axis=1) & np.any(values < p, axis=1)
        keep[k] = not dominated.any()
    return keep


def hypervolume(points: np.ndarray[Any, Any], reference: Sequence[float]) -> float:
    r"""The exact hypervolume (Lebesgue measure) dominated by ``points`` and bounded by ``reference``.

    All objectives are minimised: ``HV = λ(∪_p [p, r])`` over the points ``p < r``. Computed by
    slicing along the last objective (the HSO scheme of While et al., "A Faster Algorithm for
    Calculating Hypervolume", IEEE TEC 2006): ``O(n²)`` for two objectives and ``O(n³)`` for
    three; larger numbers of objectives are exact too but slow. Points not strictly better than
    the reference in every objective add nothing.

    References:
        Zitzler & Thiele, "Multiobjective Optimization Using Evolutionary Algorithms — A Comparative
        Case Study", PPSN 1998 (the hypervolume indicator).
    """
    values = np.asarray(points, dtype=float)
    ref = np.asarray(reference, dtype=float)
    if values.size == 0:
        return 0.0
    if values.ndim != 2 or values.shape[1] != ref.size:
        raise DataError(f"points must be [n, {ref.size}] for a reference of {ref.size} objectives; got {values.shape}")
    if not np.isfinite(values).all() or not np.isfinite(ref).all():
        raise DataError("hypervolume needs finite points and reference")
    return _slice_volume(values[np.all(values < ref, axis=1)], ref)


def _slice_volume(values: np.ndarray[Any, Any], ref: np.ndarray[Any, Any]) -> float:
    if len(values) == 0:
        return 0.0
    if ref.size == 1:
        return float(ref[0] - values[:, 0].min())
    values = values[np.argsort(values[:, -1], kind="stable")]
    total = 0.0
    for k in range(len(values)):
        top = values[k + 1, -1] if k + 1 < len(values) else ref[-1]
        height = float(top - values[k, -1])
        if height > 0:
            total += height * _slice_volume(values[: k + 1, :-1], ref[:-1])
    return total


@dataclass
class ParetoPoint:
    """One trained model: the method, its preference vector and its value of each task's objective."""

    method: str
    preference: list[float]
    values: dict[str, float]


@dataclass
class ParetoFront:
    """The results of a preference sweep (and other methods' single points) on the tasks' objectives.

    Attributes:
        task_names: The tasks (two or three).
        objective: ``{task: metric}`` compared.
        higher_is_better: ``{task: bool}``.
        points: The sweep's models.
        others: ``{label: {task: value}}``: other methods' single points to show (e.g. from a `Comparison`).
        reference: The hypervolume reference point in the metrics' own units; None: the worst value of
            each objective over all points, moved 10% of its range further.
    """

    task_names: list[str]
    objective: dict[str, str]
    higher_is_better: dict[str, bool]
    points: list[ParetoPoint] = field(default_factory=list)
    others: dict[str, dict[str, float]] = field(default_factory=dict)
    reference: list[float] | None = None

    @property
    def methods(self) -> list[str]:
        return list(dict.fromkeys(p.method for p in self.points))

    def _signs(self) -> np.ndarray[Any, Any]:
        """``−1`` for objectives where higher is better: multiplying by it makes every objective minimised."""
        return np.array([-1.0 if self.higher_is_better[t] else 1.0 for t in self.task_names])

    def _minimised(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray[Any, Any]:
        signs = self._signs()
        table = np.array([[row[t] for t in self.task_names] for row in rows], dtype=float)
        result: np.ndarray[Any, Any] = table.reshape(-1, len(signs)) * signs
        return result

    def reference_point(self) -> list[float]:
        """The reference in the metrics' units (given, or derived from every point)."""
        if self.reference is not None:
            return list(self.reference)
        rows = [p.values for p in self.points] + list(self.others.values())
        values = self._minimised(rows)
        if len(values) == 0:
            raise DataError("no points: run a sweep first")
        worst, best = values.max(axis=0), values.min(axis=0)
        span = np.where(worst > best, worst - best, np.maximum(np.abs(worst), 1e-12))
        return [float(v) for v in (worst + 0.1 * span) * self._signs()]

    def front(self, method: str | None = None) -> list[ParetoPoint]:
        """The non-dominated points of ``method`` (of all sweep points when None)."""
        chosen = [p for p in self.points if method is None or p.method == method]
        if not chosen:
            return []
        mask = nondominated(self._minimised([p.values for p in chosen]))
        return [p for p, keep in zip(chosen, mask, strict=True) if keep]

    def hypervolume(self, method: str | None = None) -> float:
        """Hypervolume of ``method``'s points (all sweep points when None) against `reference_point`."""
        chosen = [p.values for p in self.points if method is None or p.method == method]
        return hypervolume(self._minimised(chosen), np.asarray(self.reference_point()) * self._signs())

    def point_hypervolume(self, label: str) -> float:
        """Hypervolume of one of ``others``' single points (the box it dominates)."""
        return hypervolume(self._minimised([self.others[label]]), np.asarray(self.reference_point()) * self._signs())

    def to_json(self) -> str:
        payload = {
            "tasks": self.task_names,
            "objective": self.objective,
            "higher_is_better": self.higher_is_better,
            "points": [{"method": p.method, "preference": p.preference, "values": p.values} for p in self.points],
            "others": self.others,
            "reference": self.reference_point(),
            "hypervolume": {m: self.hypervolume(m) for m in self.methods},
        }
        return json.dumps(payload, indent=1)

    def write(self, directory: str | Path) -> Path:
        """``pareto.json`` and ``pareto.png`` in ``directory``."""
        directory = Path(directory)
        atomic_write_bytes(directory / PARETO_FILE, self.to_json().encode())
        self.plot(directory / "pareto.png")
        return directory / PARETO_FILE

    @classmethod
    def read(cls, path: str | Path) -> ParetoFront:
        """Read a ``pareto.json`` (or the one in a folder)."""
        path = Path(path)
        if path.is_dir():
            path = path / PARETO_FILE
        try:
            payload = json.loads(path.read_text())
            points = [ParetoPoint(p["method"], list(p["preference"]), dict(p["values"])) for p in payload["points"]]
            return cls(
                list(payload["tasks"]),
                dict(payload["objective"]),
                dict(payload["higher_is_better"]),
                points,
                {k: dict(v) for k, v in payload.get("others", {}).items()},
                payload.get("reference"),
            )
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise DataError(f"cannot read a Pareto front from {path}: {error}") from error

    def plot(self, path: str | Path) -> Path:
        """The sweep's points per method (non-dominated ones joined) and the other methods' single points.

        Three tasks are shown as three panels, one per pair of tasks.
        """
        plt = pyplot()
        pairs = list(itertools.combinations(range(len(self.task_names)), 2))
        figure, axes = plt.subplots(1, len(pairs), figsize=(5.0 * len(pairs), 4.2), squeeze=False)
        for ax, (a, b) in zip(axes[0], pairs, strict=True):
            ta, tb = self.task_names[a], self.task_names[b]
            for colour, method in enumerate(self.methods):
                chosen = [p for p in self.points if p.method == method]
                xs, ys = [p.values[ta] for p in chosen], [p.values[tb] for p in chosen]
                label = f"{method} sweep (HV {self.hypervolume(method):.4g})"
                ax.scatter(xs, ys, color=f"C{colour}", alpha=0.6, label=label)
                best = sorted(self.front(method), key=lambda p: p.values[ta])
                if len(self.task_names) == 2 and len(best) > 1:
                    ax.plot([p.values[ta] for p in best], [p.values[tb] for p in best], color=f"C{colour}", lw=1)
            for k, (label, values) in enumerate(self.others.items()):
                ax.scatter([values[ta]], [values[tb]], marker="*s^vD"[k % 5], s=120, color="black", zorder=3)
                ax.annotate(label, (values[ta], values[tb]), textcoords="offset points", xytext=(6, 4), fontsize=8)
            ax.set_xlabel(
                f"{ta}: {self.objective[ta]} ({'higher' if self.higher_is_better[ta] else 'lower'} is better)"
            )
            ax.set_ylabel(
                f"{tb}: {self.objective[tb]} ({'higher' if self.higher_is_better[tb] else 'lower'} is better)"
            )
            ax.legend(fontsize=7)
        figure.suptitle("trade-off between tasks: preference sweep")
        figure.tight_layout()
        return save_png(figure, path)
