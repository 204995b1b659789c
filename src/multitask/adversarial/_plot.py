"""The adversarial game's diagnostics by epoch: discriminator accuracy and loss, λ, the orthogonality term."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

ACCURACY, LOSS, COEFFICIENT, ORTHOGONALITY = (
    "adversary/accuracy",
    "adversary/loss",
    "adversary/coefficient",
    "model/orthogonality",
)


def plot_adversary(history: Sequence[Mapping[str, float]], num_tasks: int, path: str | Path) -> None:
    """A figure of the epoch records' adversarial diagnostics, saved to ``path`` (PNG).

    Panels, each only when the history has its key: the discriminator's training accuracy with the
    chance level ``1/T`` (where a task-invariant shared space puts it), its cross-entropy with the
    chance level ``ln T``, the coefficient λ of the last step of each epoch, and a shared-private
    model's orthogonality term ``Σ_t ‖Sᵀ H_t‖²_F``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        (key, title, chance)
        for key, title, chance in (
            (ACCURACY, "discriminator accuracy (train)", 1.0 / num_tasks),
            (LOSS, "discriminator loss (train)", math.log(num_tasks)),
            (COEFFICIENT, "coefficient λ", None),
            (ORTHOGONALITY, "orthogonality Σ‖SᵀH‖²", None),
        )
        if any(key in record for record in history)
    ]
    if not panels:
        return
    epochs = [int(record.get("epoch", index + 1)) for index, record in enumerate(history)]
    figure, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 2.9), squeeze=False)
    for ax, (key, title, chance) in zip(axes[0], panels, strict=True):
        ax.plot(epochs, [record.get(key, math.nan) for record in history], marker="o")
        if chance is not None:
            ax.axhline(chance, color="grey", linestyle="--", label="chance")
            ax.legend()
        ax.set_title(title)
        ax.set_xlabel("epoch")
    figure.tight_layout()
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target, dpi=100)
    plt.close(figure)
