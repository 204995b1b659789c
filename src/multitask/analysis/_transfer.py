"""Negative transfer: per task, multi-task vs single-task over seeds, with a confidence interval and a verdict."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from multitask._plots import pyplot, save_png
from multitask.analysis._affinity import TaskAffinity
from multitask.analysis._conflict import ConflictHistory
from multitask.comparison import Comparison
from multitask.errors import ConfigError, DataError
from multitask.layout import MTL, TRANSFER_FILE
from multitask.metrics import delta_m
from multitask.training.checkpoint import atomic_write_bytes
from multitask.types import Results

Interval = Literal["t", "bootstrap"]


@dataclass(frozen=True)
class TaskVerdict:
    """One task's multi-task result against its single-task model, paired by seed.

    Attributes:
        task: The task.
        metric: The metric compared.
        higher_is_better: The metric's direction.
        stl: The single-task value for each seed.
        mtl: The multi-task value for each seed.
        difference: Mean of the paired gains ``s (M_mtl − M_stl)`` (``s = −1`` when lower is better):
            positive means multi-task training is better.
        relative: ``100 · difference / |mean STL|`` (percent).
        low: Lower end of the confidence interval of ``difference``.
        high: Upper end.
        verdict: ``"helps"`` (interval above 0), ``"hurts"`` (below 0) or ``"no evidence"``.
    """

    task: str
    metric: str
    higher_is_better: bool
    stl: list[float]
    mtl: list[float]
    difference: float
    relative: float
    low: float
    high: float
    verdict: str


@dataclass
class NegativeTransferReport:
    """Verdicts for every task, Δm% over seeds and plain suggestions.

    Attributes:
        method: The multi-task method judged (e.g. ``"mtl"``).
        confidence: Level of the intervals (e.g. 0.95).
        interval: ``"t"`` (Student's t on the paired differences) or ``"bootstrap"`` (percentile).
        verdicts: One per task.
        delta_m: Δm% of the method against the single-task models, one value per seed.
        delta_m_low: Lower end of Δm%'s interval.
        delta_m_high: Upper end.
        suggestions: What to do, in plain words.
    """

    method: str
    confidence: float
    interval: str
    verdicts: list[TaskVerdict]
    delta_m: list[float]
    delta_m_low: float
    delta_m_high: float
    suggestions: list[str] = field(default_factory=list)

    @property
    def hurt(self) -> list[str]:
        """Tasks that multi-task training makes worse (interval below zero)."""
        return [v.task for v in self.verdicts if v.verdict == "hurts"]

    @property
    def helped(self) -> list[str]:
        """Tasks that multi-task training makes better (interval above zero)."""
        return [v.task for v in self.verdicts if v.verdict == "helps"]

    def to_markdown(self) -> str:
        """A table of the verdicts, the Δm% line and the suggestions."""
        level = f"{100 * self.confidence:g}%"
        lines = [
            f"| task | metric | STL | {self.method} | gain | gain % | {level} interval | verdict |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for v in self.verdicts:
            lines.append(
                f"| {v.task} | {v.metric} | {np.mean(v.stl):.4f} | {np.mean(v.mtl):.4f} | {v.difference:+.4f} | "
                f"{v.relative:+.2f} | [{v.low:+.4f}, {v.high:+.4f}] | {v.verdict} |"
            )
        lines.append("")
        lines.append(
            f"Δm% of {self.method}: {np.mean(self.delta_m):+.2f} ({level} interval "
            f"[{self.delta_m_low:+.2f}, {self.delta_m_high:+.2f}], {len(self.delta_m)} seeds)"
        )
        lines += [""] + [f"- {s}" for s in self.suggestions]
        return "\n".join(lines)

    def to_json(self) -> str:
        """The report as JSON (infinite interval ends written as null)."""
        payload = asdict(self)
        return json.dumps(_finite(payload), indent=1)

    def write(self, directory: str | Path) -> Path:
        """``negative_transfer.json``, ``negative_transfer.md`` and ``negative_transfer.png`` in ``directory``."""
        directory = Path(directory)
        atomic_write_bytes(directory / TRANSFER_FILE, self.to_json().encode())
        atomic_write_bytes(directory / "negative_transfer.md", (self.to_markdown() + "\n").encode())
        self.plot(directory / "negative_transfer.png")
        return directory / TRANSFER_FILE

    @classmethod
    def read(cls, path: str | Path) -> NegativeTransferReport:
        """Read a ``negative_transfer.json`` (or the one in a folder)."""
        path = Path(path)
        if path.is_dir():
            path = path / TRANSFER_FILE
        try:
            payload = json.loads(path.read_text())
            verdicts = [TaskVerdict(**_infinite(v)) for v in payload.pop("verdicts")]
            payload = _infinite(payload)
            return cls(verdicts=verdicts, **payload)
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise DataError(f"cannot read a negative transfer report from {path}: {error}") from error

    def plot(self, path: str | Path) -> Path:
        """Each task's gain in percent of its single-task value, with its interval, coloured by verdict."""
        plt = pyplot()
        figure, ax = plt.subplots(figsize=(6.4, 0.9 + 0.45 * len(self.verdicts)))
        colours = {"helps": "tab:green", "hurts": "tab:red", "no evidence": "tab:gray"}
        for row, v in enumerate(self.verdicts):
            scale = 100.0 / abs(float(np.mean(v.stl))) if np.mean(v.stl) else math.nan
            low = v.low * scale if math.isfinite(v.low) else v.relative
            high = v.high * scale if math.isfinite(v.high) else v.relative
            ax.plot([low, high], [row, row], color=colours[v.verdict], lw=3, alpha=0.6)
            ax.plot([v.relative], [row], "o", color=colours[v.verdict])
        ax.axvline(0.0, color="black", lw=0.8)
        ax.set_yticks(range(len(self.verdicts)), [f"{v.task} ({v.verdict})" for v in self.verdicts])
        ax.invert_yaxis()
        ax.set_xlabel(f"gain of {self.method} over single-task, % ({100 * self.confidence:g}% interval)")
        ax.set_title(f"negative transfer: Δm% = {np.mean(self.delta_m):+.2f}")
        figure.tight_layout()
        return save_png(figure, path)


def confidence_interval(
    values: Sequence[float],
    *,
    confidence: float = 0.95,
    interval: Interval = "t",
    resamples: int = 10_000,
    seed: int = 0,
) -> tuple[float, float]:
    r"""A confidence interval for the mean of ``values`` (e.g. paired differences over seeds).

    ``"t"``: ``x̄ ± t_{n−1, (1+c)/2} · s / √n`` (Student's t; exact for normal differences, the right
    choice for the handful of seeds MTL experiments have). ``"bootstrap"``: the percentile interval
    of the mean over ``resamples`` resamples with replacement (Efron & Tibshirani 1993, Ch. 13); it
    is too narrow for very few seeds. One value gives ``(−inf, inf)``: no evidence either way.
    """
    data = np.asarray(values, dtype=float)
    if data.ndim != 1 or data.size == 0 or not np.isfinite(data).all():
        raise DataError(f"confidence_interval needs finite values; got {list(values)}")
    if not 0 < confidence < 1:
        raise ConfigError(f"confidence must be between 0 and 1; got {confidence}")
    if data.size == 1:
        return -math.inf, math.inf
    mean = float(data.mean())
    if interval == "t":
        from scipy import stats

        half = float(stats.t.ppf((1 + confidence) / 2, data.size - 1)) * float(data.std(ddof=1)) / math.sqrt(data.size)
        return mean - half, mean + half
    if interval == "bootstrap":
        generator = np.random.default_rng(seed)
        means = data[generator.integers(0, data.size, size=(resamples, data.size))].mean(axis=1)
        low, high = np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2])
        return float(low), float(high)
    raise ConfigError(f"interval must be 't' or 'bootstrap'; got {interval!r}")


def negative_transfer(
    stl: Sequence[Results],
    mtl: Sequence[Results],
    higher_is_better: Mapping[str, Mapping[str, bool]],
    *,
    metric: Mapping[str, str] | None = None,
    method: str = MTL,
    confidence: float = 0.95,
    interval: Interval = "t",
    conflict: ConflictHistory | None = None,
    affinity: TaskAffinity | None = None,
) -> NegativeTransferReport:
    r"""Judge, task by task, whether multi-task training helps or hurts, from paired runs over seeds.

    For seed ``r`` and task ``t`` the paired gain is ``d_r = s_t (M^{mtl}_{t,r} − M^{stl}_{t,r})`` with
    ``s_t = +1`` when the metric's higher values are better and ``−1`` otherwise; pairing by seed
    removes the variation both runs share (same data order and initial encoder). The verdict reads
    the confidence interval of the mean gain: above zero ``helps``, below zero ``hurts`` (negative
    transfer: Wang et al., "Characterizing and Avoiding Negative Transfer", CVPR 2019), otherwise
    ``no evidence``. Δm% (every metric; see `multitask.metrics.delta_m`) is summarised over seeds
    with an interval of the same kind. Suggestions name what to try for each hurt task, citing the
    gradient conflict and affinity evidence when given.

    Args:
        stl: Per seed, the single-task models' ``{task: {metric: value}}``.
        mtl: Per seed (same order), the multi-task model's results.
        higher_is_better: ``{task: {metric: bool}}``.
        metric: ``{task: metric}`` judged per task (default: the first metric of each task in ``stl``).
        method: Name of the multi-task method, for the text.
        confidence: Interval level.
        interval: ``"t"`` or ``"bootstrap"`` (see `confidence_interval`).
        conflict: Gradient conflict samples of the multi-task run, to cite in suggestions.
        affinity: Task affinity of the multi-task run, to cite in suggestions.
    """
    if not stl or len(stl) != len(mtl):
        raise DataError(f"need one multi-task result per single-task result (seeds); got {len(stl)} and {len(mtl)}")
    tasks = [t for t in stl[0] if all(t in run for run in stl) and all(t in run for run in mtl)]
    if not tasks:
        raise DataError("the single-task and multi-task results have no task in common")
    verdicts = []
    for task in tasks:
        chosen = (metric or {}).get(task) or next(iter(stl[0][task]))
        try:
            better = bool(higher_is_better[task][chosen])
            base = [float(run[task][chosen]) for run in stl]
            multi = [float(run[task][chosen]) for run in mtl]
        except KeyError as error:
            raise DataError(f"no {task}/{chosen} value or direction in every seed's results") from error
        sign = 1.0 if better else -1.0
        gains = [sign * (m - b) for m, b in zip(multi, base, strict=True)]
        low, high = confidence_interval(gains, confidence=confidence, interval=interval)
        mean = float(np.mean(gains))
        reference = abs(float(np.mean(base)))
        verdict = "helps" if low > 0 else "hurts" if high < 0 else "no evidence"
        relative = 100.0 * mean / reference if reference else math.nan
        verdicts.append(TaskVerdict(task, chosen, better, base, multi, mean, relative, low, high, verdict))
    deltas = []
    for base_run, multi_run in zip(stl, mtl, strict=True):
        shared = {t: {m: v for m, v in multi_run[t].items() if m in base_run[t] and m != "loss"} for t in tasks}
        deltas.append(delta_m(shared, {t: dict(base_run[t]) for t in tasks}, higher_is_better))
    d_low, d_high = confidence_interval(deltas, confidence=confidence, interval=interval)
    report = NegativeTransferReport(method, confidence, interval, verdicts, deltas, d_low, d_high)
    report.suggestions = suggest(report, conflict=conflict, affinity=affinity)
    return report


def suggest(
    report: NegativeTransferReport, *, conflict: ConflictHistory | None = None, affinity: TaskAffinity | None = None
) -> list[str]:
    """Plain suggestions from the verdicts (and the conflict and affinity evidence, when given)."""
    level = f"{100 * report.confidence:g}%"
    seeds = len(report.delta_m)
    lines: list[str] = []
    for v in report.verdicts:
        if v.verdict != "hurts":
            continue
        lines.append(
            f"{v.task} is hurt by {report.method}: {v.metric} {np.mean(v.stl):.4f} alone vs {np.mean(v.mtl):.4f} "
            f"shared ({v.relative:+.1f}%, {level} interval of the gain [{v.low:+.4f}, {v.high:+.4f}], "
            f"{seeds} seeds)."
        )
        if affinity is not None and v.task in affinity.task_names:
            j = affinity.task_names.index(v.task)
            column = [(affinity.array()[i, j], name) for i, name in enumerate(affinity.task_names) if i != j]
            value, source = min(column)
            if value < 0:
                lines.append(
                    f"Regroup: {source}'s updates raise {v.task}'s loss (affinity {source}→{v.task} = {value:+.3g}); "
                    f"train {v.task} apart from {source} (see the recommended grouping), or drop {v.task} from the "
                    "shared model and train it alone."
                )
        if conflict is not None and v.task in conflict.task_names and len(conflict):
            j = conflict.task_names.index(v.task)
            cosines = [(conflict.mean_cosine()[i, j], n) for i, n in enumerate(conflict.task_names) if i != j]
            cosines = [(c, n) for c, n in cosines if math.isfinite(c)]
            if cosines and min(cosines)[0] < 0:
                value, other = min(cosines)
                lines.append(
                    f"Conflict: {v.task}'s gradient points against {other}'s (mean cosine {value:+.2f}); a "
                    "conflict-aware aggregation (strategy.aggregation: pcgrad, cagrad or nash_mtl) removes the "
                    "opposing component."
                )
        lines.append(
            f"Soft sharing lets {v.task} keep its own parameters where it disagrees (model.type: soft_sharing, "
            "cross_stitch, mmoe or ple)."
        )
    helped = report.helped
    if helped:
        lines.append(f"{report.method} helps {', '.join(helped)}: keep these tasks together.")
    if not report.hurt and not helped:
        lines.append(
            f"No task differs from its single-task model beyond seed noise ({level}, {seeds} seeds); "
            "run more seeds to decide."
        )
    mean = float(np.mean(report.delta_m))
    if report.delta_m_high < 0:
        lines.append(f"Overall {report.method} is worse than single-task models (Δm% {mean:+.2f}).")
    elif report.delta_m_low > 0:
        lines.append(f"Overall {report.method} beats single-task models (Δm% {mean:+.2f}).")
    return lines


def negative_transfer_from_comparisons(
    comparisons: Sequence[Comparison],
    *,
    method: str = MTL,
    metric: Mapping[str, str] | None = None,
    confidence: float = 0.95,
    interval: Interval = "t",
    conflict: ConflictHistory | None = None,
    affinity: TaskAffinity | None = None,
) -> NegativeTransferReport:
    """`negative_transfer` from one `Comparison` per seed (each with the baseline and ``method``)."""
    if not comparisons:
        raise DataError("need at least one comparison (one per seed)")
    missing = [i for i, c in enumerate(comparisons) if c.baseline not in c.results or method not in c.results]
    if missing:
        raise DataError(f"comparisons {missing} lack {comparisons[0].baseline!r} or {method!r} results")
    stl = [c.results[c.baseline] for c in comparisons]
    mtl = [c.results[method] for c in comparisons]
    return negative_transfer(
        stl,
        mtl,
        comparisons[0].higher_is_better,
        metric=metric,
        method=method,
        confidence=confidence,
        interval=interval,
        conflict=conflict,
        affinity=affinity,
    )


def _finite(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _infinite(payload: dict[str, Any]) -> dict[str, Any]:
    result = dict(payload)
    for key, fill in (("low", -math.inf), ("high", math.inf), ("delta_m_low", -math.inf), ("delta_m_high", math.inf)):
        if key in result and result[key] is None:
            result[key] = fill
    if result.get("relative", 0.0) is None:
        result["relative"] = math.nan
    return result
