"""Small plotting helpers shared by the analysis tools: headless matplotlib, heatmaps, PNG files and bytes."""

from __future__ import annotations

import io
import itertools
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from multitask.training.checkpoint import atomic_write_bytes


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the headless Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_bytes(figure: Any, dpi: int = 100) -> bytes:
    """The figure as PNG bytes; the figure is closed."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    pyplot().close(figure)
    return buffer.getvalue()


def save_png(figure: Any, path: str | Path, dpi: int = 100) -> Path:
    """Write the figure to ``path`` atomically (PNG); the figure is closed."""
    path = Path(path)
    atomic_write_bytes(path, png_bytes(figure, dpi))
    return path


def heatmap(
    ax: Any,
    matrix: np.ndarray[Any, Any],
    rows: Sequence[str],
    columns: Sequence[str],
    *,
    title: str,
    symmetric: bool = True,
    fmt: str = "{:+.2f}",
    cmap: str = "RdBu",
) -> None:
    """An annotated heatmap; with ``symmetric`` the colour scale is centred on zero (blue positive, red negative)."""
    values = np.asarray(matrix, dtype=float)
    finite = values[np.isfinite(values)]
    if symmetric:
        bound = float(np.max(np.abs(finite))) if finite.size else 1.0
        bound = bound or 1.0
        image = ax.imshow(values, cmap=cmap, vmin=-bound, vmax=bound)
    else:
        image = ax.imshow(values, cmap=cmap)
    ax.set_xticks(range(len(columns)), list(columns), rotation=45, ha="right")
    ax.set_yticks(range(len(rows)), list(rows))
    for i in range(values.shape[0]):
        for j in range(values.shape[1]):
            value = values[i, j]
            text = "—" if not math.isfinite(value) else fmt.format(value)
            ax.text(j, i, text, ha="center", va="center", fontsize=8, color="black")
    ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)


def nan_mean(stack: np.ndarray[Any, Any], axis: int = 0) -> np.ndarray[Any, Any]:
    """Mean over ``axis`` ignoring NaN; NaN where every entry is NaN (no warning)."""
    stack = np.asarray(stack, dtype=float)
    counts = np.sum(np.isfinite(stack), axis=axis)
    sums = np.nansum(stack, axis=axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def separating_decimals(values: Sequence[float], *, significant: int = 3, most: int = 10) -> int:
    """How many decimals to print ``values`` with so that any two different values print differently.

    The number is the larger of what gives the largest magnitude ``significant`` significant digits and
    what makes the smallest gap between two distinct values at least one unit of the last decimal
    (then the rounded values differ too), at most ``most``. Non-finite values are ignored.
    """
    finite = sorted({v for v in values if math.isfinite(v)})
    if not finite:
        return max(significant - 1, 0)
    largest = max(abs(v) for v in finite)
    decimals = significant - 1 - math.floor(math.log10(largest)) if largest > 0 else significant - 1
    gaps = [high - low for low, high in itertools.pairwise(finite) if high - low > largest * 1e-12]
    if gaps:
        decimals = max(decimals, -math.floor(math.log10(min(gaps))))
    return min(max(decimals, 0), most)
