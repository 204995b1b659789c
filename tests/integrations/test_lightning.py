"""The Lightning page's `MultiTaskModule` makes exactly `multitask.Trainer`'s update, and logs the weights it used.

The module under test is the one documented in docs/integrations/lightning.md: its code block is
executed here, so the page cannot drift from what is tested.
"""

from __future__ import annotations

import copy
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

lightning = pytest.importorskip(
    "lightning", reason="the Lightning integration needs lightning (pip install 'multitask[lightning]')"
)

import torch  # noqa: E402
from torch import Tensor, nn  # noqa: E402
from torch.utils.data import BatchSampler, DataLoader, SequentialSampler  # noqa: E402

import multitask  # noqa: E402
from multitask import Strategy, Task  # noqa: E402
from multitask.aggregation import NashMTL, UPGrad  # noqa: E402
from multitask.data import ArrayDataset  # noqa: E402
from multitask.models import MLP, HardSharing  # noqa: E402
from multitask.regularizers import L1  # noqa: E402
from multitask.training import Callback, StepResult  # noqa: E402
from multitask.weighting import DWA, UW  # noqa: E402

PAGE = Path(__file__).resolve().parents[2] / "docs" / "integrations" / "lightning.md"
NAMES = ("cls", "reg")
BATCH = 32
ROWS = 150  # 5 steps an epoch, the last one of 22 rows
STEPS = 20  # 4 epochs
EPOCHS = 4
LR = 1e-2
SEED = 7

# lightning 2.6.6 builds torch.utils._pytree.LeafSpec (deprecated in torch 2.13) whenever it wraps a loader
pytestmark = pytest.mark.filterwarnings("ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated:FutureWarning")

STRATEGIES: dict[str, Callable[[HardSharing], Strategy]] = {
    "upgrad": lambda model: Strategy(aggregation=UPGrad()),
    "nash_mtl": lambda model: Strategy(aggregation=NashMTL()),
    "uw": lambda model: Strategy(UW()),
    "dwa": lambda model: Strategy(DWA()),  # epoch-level: its weights come from on_train_epoch_end's means
    # a proximal step after every optimiser step (strategy.after_step)
    "upgrad_proximal_l1": lambda model: Strategy(
        aggregation=UPGrad(), regularizers=[L1(list(model.encoder.parameters()), 1e-2, proximal=True)]
    ),
}


def _documented_module() -> type[Any]:
    """The page's `MultiTaskModule` class, from the code block that defines it."""
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)
    (block,) = [b for b in blocks if "class MultiTaskModule(" in b]
    namespace: dict[str, Any] = {"__name__": "lightning_page"}
    exec(compile(block, str(PAGE), "exec"), namespace)  # our own documentation
    module: type[Any] = namespace["MultiTaskModule"]
    return module


MultiTaskModule = _documented_module()


def _data() -> ArrayDataset:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(ROWS, 8, generator=generator)
    signal = x[:, 0] + 0.5 * x[:, 1]
    reg = 2.0 * signal - x[:, 2] + 0.1 * torch.randn(ROWS, generator=generator)
    reg[::3] = float("nan")  # a third of the regression labels are missing
    reg[BATCH : 2 * BATCH] = float("nan")  # and the whole second batch of an epoch has none
    return ArrayDataset(x=x, cls=(signal > 0).float(), reg=reg)


def _model() -> tuple[HardSharing, list[Task]]:
    torch.manual_seed(0)
    tasks = [
        Task("cls", nn.Linear(16, 1), "binary"),
        Task("reg", nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 1)), "regression"),
    ]
    return HardSharing(MLP(8, [32, 16]), tasks), tasks


def _loader(data: ArrayDataset) -> DataLoader[Any]:
    """The Trainer's batches with ``shuffle=False``: consecutive rows, the same tensors (an ArrayDataset slices)."""
    batches = BatchSampler(SequentialSampler(range(len(data))), BATCH, drop_last=False)
    return DataLoader(data, sampler=batches, batch_size=None)  # type: ignore[arg-type]


class _TrainerWeights(Callback):
    """The weights each multitask.Trainer step used, under the page's log keys."""

    def __init__(self) -> None:
        self.steps: list[dict[str, float]] = []

    def on_step_end(self, trainer: multitask.Trainer, step: StepResult) -> None:
        logged = {f"weight/{name}": value for name, value in step.weights.items()}
        if trainer.aggregation_weights is not None:
            for name, value in zip(NAMES, trainer.aggregation_weights.tolist(), strict=True):
                logged[f"aggregation_weight/{name}"] = value
        self.steps.append(logged)


class _LoggedWeights(lightning.Callback):  # type: ignore[misc]
    """What the module logged under ``weight/`` and ``aggregation_weight/`` at each step."""

    def __init__(self) -> None:
        self.steps: list[dict[str, float]] = []

    def on_train_batch_end(self, trainer: Any, module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        metrics = trainer.callback_metrics
        self.steps.append({k: float(v) for k, v in metrics.items() if k.split("/")[0].endswith("weight")})


def _by_trainer(name: str, model: HardSharing, tasks: list[Task]) -> tuple[list[Tensor], list[dict[str, float]]]:
    strategy = STRATEGIES[name](model)
    weights = _TrainerWeights()
    trainer = multitask.Trainer(
        model, tasks, strategy=strategy, lr=LR, batch_size=BATCH, max_epochs=EPOCHS, shuffle=False,
        progress=False, device="cpu", seed=SEED, callbacks=[weights],
    )  # fmt: skip
    trainer.fit(_data())
    assert trainer.global_step == STEPS and trainer.skipped_steps == 0
    return [p.detach().clone() for p in [*model.parameters(), *strategy.parameters()]], weights.steps


def _by_lightning(
    strategy: Strategy | str, model: HardSharing, tasks: list[Task]
) -> tuple[list[Tensor], list[dict[str, float]]]:
    strategy = STRATEGIES[strategy](model) if isinstance(strategy, str) else strategy
    module = MultiTaskModule(model, tasks, strategy, lr=LR)
    logged = _LoggedWeights()
    trainer = lightning.Trainer(
        max_steps=STEPS, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[logged],
    )  # fmt: skip
    torch.manual_seed(SEED)  # as Trainer.fit seeds the global generator
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", ".*but have no logger configured.*")  # callback_metrics need none
        trainer.fit(module, _loader(_data()))
    assert trainer.global_step == STEPS and trainer.current_epoch == EPOCHS
    return [p.detach().clone() for p in [*model.parameters(), *strategy.parameters()]], logged.steps


@pytest.mark.parametrize("name", STRATEGIES)
def test_lightning_steps_end_with_the_trainers_parameters_bit_for_bit(name: str) -> None:
    model, tasks = _model()
    by_trainer, trainer_weights = _by_trainer(name, *copy.deepcopy((model, tasks)))
    by_lightning, lightning_weights = _by_lightning(name, *copy.deepcopy((model, tasks)))
    initial = [p.detach() for p in model.parameters()]
    assert not any(torch.equal(a, b) for a, b in zip(initial, by_trainer, strict=False))  # every tensor trained
    if name == "uw":  # the strategy's own parameters (log-variances) are compared too, and were trained
        assert len(by_trainer) == len(initial) + 1 and not torch.equal(by_trainer[-1], torch.zeros(2))
    assert len(by_trainer) == len(by_lightning)
    for a, b in zip(by_trainer, by_lightning, strict=True):
        assert torch.equal(a, b), f"max difference {float((a - b).abs().max())}"
    assert len(trainer_weights) == STEPS
    # Lightning stores a logged float as float32 (the aggregation weights are float64)
    as_logged = [{k: float(torch.tensor(v, dtype=torch.float32)) for k, v in step.items()} for step in trainer_weights]
    assert lightning_weights == as_logged


def test_dwa_weights_do_follow_the_epoch_means() -> None:
    # DWA keeps equal weights until on_train_epoch_end has given it two epochs' mean losses; then they move
    model, tasks = _model()
    _, weights = _by_lightning("dwa", model, tasks)
    assert weights[0] == {"weight/cls": 1.0, "weight/reg": 1.0}
    late = weights[-1]
    assert late["weight/cls"] != late["weight/reg"]
    assert late["weight/cls"] + late["weight/reg"] == pytest.approx(2.0)


def test_the_module_logs_the_loss_and_aggregation_weights_it_used() -> None:
    model, tasks = _model()
    _, weights = _by_lightning(Strategy(UW(), UPGrad()), model, tasks)
    expected = {"weight/cls", "weight/reg", "aggregation_weight/cls", "aggregation_weight/reg"}
    assert len(weights) == STEPS and all(set(step) == expected for step in weights)
    assert weights[0]["weight/cls"] == 0.5  # UW: e^{-s}/2 with s = 0 at the first step
    assert weights[-1]["weight/cls"] != 0.5  # the log-variances were trained
    # the second batch of an epoch has no regression label: UPGrad puts no weight on the absent task
    assert weights[1]["aggregation_weight/reg"] == 0.0 and weights[1]["aggregation_weight/cls"] > 0
    assert weights[0]["aggregation_weight/reg"] > 0


def test_without_aggregation_only_loss_weights_are_logged() -> None:
    model, tasks = _model()
    _, weights = _by_lightning(Strategy(UW()), model, tasks)
    assert all(set(step) == {"weight/cls", "weight/reg"} for step in weights)
