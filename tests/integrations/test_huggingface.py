"""The Hugging Face page's `MultiTaskTrainer` makes exactly a plain `multitask.backward` loop's update and logs it.

The trainer under test is the one documented in docs/integrations/huggingface.md: the page's code
blocks that define `MeanPooledBert` and `MultiTaskTrainer` are executed here, so the page cannot
drift from what is tested.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

transformers = pytest.importorskip(
    "transformers", reason="the Hugging Face integration needs transformers (pip install 'multitask[huggingface]')"
)
pytest.importorskip("accelerate", reason="transformers.Trainer needs accelerate")

import torch  # noqa: E402
from torch import Tensor, nn  # noqa: E402

import multitask  # noqa: E402
from multitask import Strategy, Task  # noqa: E402
from multitask.aggregation import UPGrad  # noqa: E402
from multitask.models import HardSharing  # noqa: E402
from multitask.regularizers import L1  # noqa: E402
from multitask.weighting import DWA, UW  # noqa: E402

PAGE = Path(__file__).resolve().parents[2] / "docs" / "integrations" / "huggingface.md"
NAMES = ("topic", "length")
BATCH = 8
LENGTH = 12
VOCAB = 50
LR = 1e-2

STRATEGIES: dict[str, Callable[[HardSharing], Strategy]] = {
    "uw_upgrad": lambda model: Strategy(UW(forms=["classification", "regression"]), UPGrad()),
    "dwa": lambda model: Strategy(DWA()),  # epoch-level: its weights come from the epochs' mean losses
    # a proximal step after every optimiser step (strategy.after_step)
    "upgrad_proximal_l1": lambda model: Strategy(
        aggregation=UPGrad(), regularizers=[L1(list(model.encoder.parameters()), 1e-3, proximal=True)]
    ),
}


def _documented_classes() -> dict[str, Any]:
    """The page's `MeanPooledBert` and `MultiTaskTrainer`, from the code blocks that define them."""
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)
    namespace: dict[str, Any] = {"__name__": "huggingface_page"}
    for block in blocks:
        if "class MeanPooledBert(" in block or "class MultiTaskTrainer(" in block:
            exec(compile(block, str(PAGE), "exec"), namespace)  # our own documentation
    return namespace


_PAGE = _documented_classes()
MeanPooledBert: type[nn.Module] = _PAGE["MeanPooledBert"]
MultiTaskTrainer: type[Any] = _PAGE["MultiTaskTrainer"]


def _columns(rows: int, seed: int = 0) -> dict[str, Tensor]:
    generator = torch.Generator().manual_seed(seed)
    real = torch.randint(3, LENGTH + 1, (rows,), generator=generator)
    mask = (torch.arange(LENGTH) < real[:, None]).long()
    ids = torch.randint(1, VOCAB, (rows, LENGTH), generator=generator) * mask
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "topic": (ids == 7).any(dim=1).float(),
        "length": real.float() / LENGTH,
    }


def _examples(columns: dict[str, Tensor]) -> list[dict[str, Tensor]]:
    """What the Trainer's default collator stacks back into batches: one dict per row."""
    return [{key: column[i] for key, column in columns.items()} for i in range(len(columns["input_ids"]))]


def _model() -> tuple[HardSharing, list[Task]]:
    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,  # no draws: the two loops share no RNG
    )  # fmt: skip
    tasks = [Task("topic", nn.Linear(32, 1), "binary"), Task("length", nn.Linear(32, 1), "regression")]
    return HardSharing(MeanPooledBert(config), tasks, input_key=("input_ids", "attention_mask")), tasks


def _args(tmp_path: Path, **overrides: Any) -> Any:
    settings: dict[str, Any] = {
        "output_dir": str(tmp_path / "hf"),
        "per_device_train_batch_size": BATCH,
        "learning_rate": LR,
        "lr_scheduler_type": "constant",
        "max_grad_norm": 0.0,  # no clipping
        "weight_decay": 0.0,
        "train_sampling_strategy": "sequential",
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": [],
        "use_cpu": True,
        "remove_unused_columns": False,
        "disable_tqdm": True,
    }
    settings.update(overrides)
    return transformers.TrainingArguments(**settings)


def _by_hf(
    model: HardSharing, tasks: list[Task], strategy: Strategy, columns: dict[str, Tensor], args: Any
) -> tuple[Any, list[dict[str, float]]]:
    trainer = MultiTaskTrainer(model, tasks, strategy, args=args, train_dataset=_examples(columns))
    trainer.train()
    records = [r for r in trainer.state.log_history if "loss" in r]
    return trainer, records


def _by_plain_loop(
    model: HardSharing, tasks: list[Task], strategy: Strategy, columns: dict[str, Tensor], steps: int, accumulation: int
) -> list[dict[str, float]]:
    """The loop protocol by hand: the mean of the micro-batches' updates, AdamW as TrainingArguments builds it."""
    strategy.setup(list(NAMES))
    parameters = [*model.parameters(), *strategy.parameters()]
    optimizer = torch.optim.AdamW(parameters, lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, fused=True)
    rows = len(columns["input_ids"])
    batches = [{k: v[i : i + BATCH] for k, v in columns.items()} for i in range(0, rows, BATCH)]
    windows = [batches[i : i + accumulation] for i in range(0, len(batches), accumulation)]
    logged: list[dict[str, float]] = []
    step, epoch = 0, 0
    while step < steps:
        sums = torch.zeros(len(NAMES), dtype=torch.float64)
        counts = torch.zeros(len(NAMES), dtype=torch.float64)
        for window in windows:
            if step == steps:
                break
            total: dict[int, Tensor] = {}
            weights: list[Tensor] = []
            objective = 0.0
            for batch in window:
                for p in parameters:
                    p.grad = None
                model.train()
                losses = multitask.task_losses(tasks, model(batch), batch)
                result = multitask.backward(
                    losses, strategy, shared_params=model.shared_parameters(), features=model.shared_features(),
                    epoch=epoch, step=step,
                )  # fmt: skip
                assert result.applied
                for i, p in enumerate(parameters):
                    if p.grad is not None:  # this micro-batch's share of the step's mean update
                        share = p.grad / len(window)
                        total[i] = share if i not in total else total[i] + share
                used = [result.weights]
                if result.aggregation_weights is not None:
                    used.append(result.aggregation_weights)
                weights.append(torch.cat(used))
                objective += float(result.objective) / len(window)
                sums += losses.values.detach().double() * losses.counts.double()
                counts += losses.counts.double()
            for i, p in enumerate(parameters):
                p.grad = total.get(i)
            optimizer.step()
            strategy.after_step(LR)
            step += 1
            mean = torch.stack(weights).sum(dim=0) / len(window)
            keys = [f"weight/{n}" for n in NAMES] + [f"aggregation_weight/{n}" for n in NAMES]
            logged.append({"loss": objective, **dict(zip(keys, mean.tolist(), strict=False))})
        strategy.on_epoch_end(epoch, (sums / counts).float())
        epoch += 1
    return logged


def _state(model: nn.Module) -> dict[str, Any]:
    """Parameters, buffers and extra state (an aggregator's is a dict), copied."""
    return {k: v.detach().clone() if isinstance(v, Tensor) else copy.deepcopy(v) for k, v in model.state_dict().items()}


def _same(a: Any, b: Any) -> bool:
    return torch.equal(a, b) if isinstance(a, Tensor) and isinstance(b, Tensor) else bool(a == b)


@pytest.mark.parametrize(
    ("name", "accumulation"),
    [("uw_upgrad", 1), ("uw_upgrad", 2), ("dwa", 1), ("upgrad_proximal_l1", 1)],
    ids=["uw_upgrad", "uw_upgrad-accumulate2", "dwa", "upgrad_proximal_l1"],
)
def test_steps_equal_a_plain_loop(name: str, accumulation: int, tmp_path: Path) -> None:
    columns = _columns(3 * BATCH)  # 3 batches an epoch
    columns["length"][BATCH : 2 * BATCH] = float("nan")  # the second batch of each epoch has no 'length' label
    epochs = 3  # DWA's weights leave 1 in the third epoch
    windows = math.ceil(3 / accumulation)  # the last window of an epoch may be shorter: its mean is over fewer
    steps = epochs * windows
    model, tasks = _model()
    reference_model = copy.deepcopy(model)  # the tasks only say how to compute the losses: shared by both loops
    initial = _state(model)

    strategy = STRATEGIES[name](model)
    trainer, records = _by_hf(
        model, tasks, strategy, columns, _args(tmp_path, max_steps=steps, gradient_accumulation_steps=accumulation)
    )
    reference_strategy = STRATEGIES[name](reference_model)
    expected = _by_plain_loop(reference_model, tasks, reference_strategy, columns, steps, accumulation)

    assert trainer.state.global_step == steps
    moved = [k for k, v in _state(model).items() if not _same(v, initial[k])]
    assert len(moved) > len(initial) // 2  # the test can see a difference: most tensors moved
    trained = _state(model) | {f"strategy.{k}": v for k, v in _state(strategy).items()}
    reference = _state(reference_model) | {f"strategy.{k}": v for k, v in _state(reference_strategy).items()}
    assert trained.keys() == reference.keys()
    different = [k for k in trained if not _same(trained[k], reference[k])]
    assert not different, f"{len(different)} tensors differ, e.g. {different[:3]}"  # bit for bit

    assert len(records) == steps
    for record, step in zip(records, expected, strict=True):
        logged = {k: v for k, v in record.items() if "weight" in k or k == "loss"}
        assert logged.keys() == step.keys()  # DWA has no aggregation: its records carry the loss weights only
        assert logged == pytest.approx(step, rel=1e-6)
    if name == "dwa":
        assert records[-1]["weight/topic"] != 1.0  # the epoch means reached the weighting


def test_aggregation_weights_are_logged_and_uw_trains_its_log_variances(tmp_path: Path) -> None:
    model, tasks = _model()
    strategy = Strategy(UW(forms=["classification", "regression"]), UPGrad())
    trainer, records = _by_hf(
        model, tasks, strategy, _columns(6 * BATCH), _args(tmp_path, max_steps=6, weight_decay=0.1)
    )

    assert len(records) == 6
    for record in records:
        assert math.isfinite(record["loss"])
        for name in NAMES:
            assert record[f"aggregation_weight/{name}"] > 0  # both tasks present: UPGrad weighs both
    first, last = records[0], records[-1]
    assert (first["weight/topic"], first["weight/length"]) == pytest.approx((1.0, 0.5))  # s = 0: c_t e^0
    assert last["weight/topic"] != pytest.approx(1.0, abs=1e-3)
    assert last["weight/length"] != pytest.approx(0.5, abs=1e-3)
    log_variances = strategy.weighting.log_variances
    assert not torch.equal(log_variances.detach(), torch.zeros(2))
    groups = [g for g in trainer.optimizer.param_groups if any(p is log_variances for p in g["params"])]
    assert len(groups) == 1 and groups[0]["weight_decay"] == 0.0  # trained, without weight decay
    assert any(g["weight_decay"] == 0.1 for g in trainer.optimizer.param_groups)


def test_a_task_without_labels_in_a_batch_does_not_break_the_step(tmp_path: Path) -> None:
    columns = _columns(BATCH)
    columns["length"][:] = float("nan")  # no 'length' label in the step's batch
    model, tasks = _model()
    initial = _state(model)
    strategy = Strategy(UW(forms=["classification", "regression"]), UPGrad())
    _, (record,) = _by_hf(model, tasks, strategy, columns, _args(tmp_path, max_steps=1))

    assert math.isfinite(record["loss"])
    assert record["aggregation_weight/length"] == 0.0 and record["aggregation_weight/topic"] > 0
    trained = _state(model)
    for key in ("heads.length.weight", "heads.length.bias"):
        assert torch.equal(trained[key], initial[key])  # no gradient, no AdamW step
    for key in ("heads.topic.weight", "encoder.bert.embeddings.word_embeddings.weight"):
        assert not torch.equal(trained[key], initial[key])
    log_variances = strategy.weighting.log_variances.detach()
    assert log_variances[1] == 0.0 and log_variances[0] != 0.0  # an absent task's s_t gets no gradient


@pytest.mark.parametrize("bad", [0, 1], ids=["first-micro-batch", "second-micro-batch"])
def test_a_skipped_micro_batch_empties_its_optimiser_step(bad: int, tmp_path: Path) -> None:
    columns = _columns(2 * BATCH)
    columns["length"][bad * BATCH] = math.inf  # a finite prediction against inf: a non-finite loss
    model, tasks = _model()
    initial = _state(model)
    # a proximal L1 step would move the encoder even without a gradient: it must not run either
    strategy = Strategy(UW(), UPGrad(), regularizers=[L1(list(model.encoder.parameters()), 1e-2, proximal=True)])
    trainer, (record,) = _by_hf(
        model, tasks, strategy, columns, _args(tmp_path, max_steps=1, gradient_accumulation_steps=2)
    )

    assert trainer.state.global_step == 1
    assert all(_same(v, initial[k]) for k, v in _state(model).items())  # nothing moved
    assert torch.equal(strategy.weighting.log_variances.detach(), torch.zeros(2))
    assert all(not state for state in trainer.optimizer.state.values())  # AdamW took no step: no moments
    assert not trainer.skip_step  # reset for the next optimiser step
    assert math.isfinite(record["loss"])  # the skipped micro-batch is left out of the logged loss


@pytest.mark.parametrize("name", ["uw_upgrad", "dwa"])
def test_a_resumed_run_restores_the_strategy(name: str, tmp_path: Path) -> None:
    columns = _columns(3 * BATCH)  # 3 steps an epoch
    columns["length"][BATCH : 2 * BATCH] = float("nan")
    model, tasks = _model()
    resumed_model = copy.deepcopy(model)
    whole = STRATEGIES[name](model)
    args = _args(tmp_path, max_steps=9, save_strategy="steps", save_steps=4, logging_steps=9)
    _by_hf(model, tasks, whole, columns, args)  # checkpoints after steps 4 and 8
    checkpoint = tmp_path / "hf" / "checkpoint-4"  # in the middle of the second epoch
    assert (checkpoint / "strategy.pt").is_file()

    strategy = STRATEGIES[name](resumed_model)
    trainer = MultiTaskTrainer(resumed_model, tasks, strategy, args=args, train_dataset=_examples(columns))
    trainer.train(resume_from_checkpoint=str(checkpoint))

    assert trainer.state.global_step == 9
    trained, resumed = _state(model), _state(resumed_model)
    assert all(torch.equal(resumed[k], v) for k, v in trained.items())
    # UW's log σ²; DWA's epoch means, of an epoch that the interruption cut in two
    trained, resumed = _state(whole), _state(strategy)
    assert all(_same(resumed[k], v) for k, v in trained.items())
    if name == "dwa":
        assert not torch.equal(strategy.weighting.current, torch.ones(2))


def test_bf16_autocast_trains(tmp_path: Path) -> None:
    columns = _columns(2 * BATCH)
    model, tasks = _model()
    float32_model = copy.deepcopy(model)
    make = STRATEGIES["uw_upgrad"]
    _, records = _by_hf(model, tasks, make(model), columns, _args(tmp_path, max_steps=2, bf16=True))
    _by_hf(float32_model, tasks, make(float32_model), columns, _args(tmp_path, max_steps=2))

    assert all(math.isfinite(r["loss"]) and r["aggregation_weight/topic"] > 0 for r in records)
    bf16, float32 = _state(model), _state(float32_model)
    assert any(not torch.equal(bf16[k], v) for k, v in float32.items())  # the forward pass did autocast
    for k, v in float32.items():
        # an Adam step moves a parameter by about lr whatever the gradient's precision: two steps apart at most
        torch.testing.assert_close(bf16[k], v, atol=3 * LR, rtol=0)
