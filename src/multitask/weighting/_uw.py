"""Uncertainty weighting: learnable homoscedastic task uncertainties."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from multitask.errors import ConfigError
from multitask.weighting._base import StepContext, Weighting, check_num_tasks, registry

Form = Literal["regression", "classification"]


@registry.register("uw")
class UW(Weighting):
    r"""Uncertainty weighting: each task's loss is scaled by a learned precision ``1/σ_t²``.

    With ``s_t = log σ_t²`` (the parameter, for stability, Sec. 3.2 of the paper) the objective is
    ``Σ_t c_t e^{-s_t} L_t + ½ s_t`` where ``c_t = ½`` for the regression form
    (Gaussian likelihood, Eq. 7: ``L/(2σ²) + log σ``) and ``c_t = 1`` for the classification
    form (scaled softmax, Eq. 10: ``L/σ² + log σ``). For a fixed loss ``L`` the optimum is
    ``σ² = L`` (regression) and ``σ² = 2L`` (classification). The ``s_t`` start at 0 and are
    ``nn.Parameter``s: the Trainer's optimiser trains them with the model (its learning rate,
    its state, its checkpoints). An absent task's ``½ s_t`` is left out of the penalty, so its
    ``s_t`` gets no gradient that step. Cost: negligible.

    Args:
        forms: ``"regression"`` or ``"classification"`` per task (None: all regression, the form
            most implementations use for every task).

    References:
        Kendall, Gal & Cipolla, "Multi-Task Learning Using Uncertainty to Weigh Losses for Scene
        Geometry and Semantics", CVPR 2018. arXiv:1705.07115.
    """

    def __init__(self, forms: Sequence[Form] | None = None) -> None:
        super().__init__()
        if forms is not None:
            if isinstance(forms, str) or not isinstance(forms, Sequence):
                raise ConfigError(f"forms must be a list with one entry per task; got {forms!r}")
            unknown = [form for form in forms if form not in ("regression", "classification")]
            if unknown:
                raise ConfigError(f"forms must be 'regression' or 'classification'; got {unknown}")
        self.forms = list(forms) if forms is not None else None
        self.log_variances = nn.Parameter(torch.zeros(0))
        self.register_buffer("scales", torch.zeros(0))

    def reset(self, num_tasks: int) -> None:
        """``s_t = 0`` (σ_t = 1) for every task."""
        forms = self.forms if self.forms is not None else ["regression"] * num_tasks
        check_num_tasks("forms", forms, self.task_names)
        self.log_variances = nn.Parameter(torch.zeros(num_tasks))
        self.scales = torch.tensor([0.5 if form == "regression" else 1.0 for form in forms])

    def weights(self, losses: Tensor, context: StepContext) -> Tensor:
        """``w_t = c_t e^{-s_t}`` (differentiable in ``s_t``)."""
        self.check_positive(losses, context.present, why="is unbounded below for a negative loss")
        return self.scales.to(losses) * torch.exp(-self.log_variances.to(losses))

    def penalty(self, context: StepContext) -> Tensor:
        """``Σ_t ½ s_t`` over the present tasks."""
        return 0.5 * (self.log_variances * context.present.to(self.log_variances)).sum()
