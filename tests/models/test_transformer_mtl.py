"""Multi-task fine-tuning of a (tiny, random) BERT: per-task adapters inside it, gradient aggregation in each mode."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from _tiny_bert import HIDDEN, write_tiny_bert
from torch import Tensor, nn

from multitask import Strategy, Task, backward, task_losses
from multitask.aggregation import UPGrad
from multitask.jacobian import JacobianEngine
from multitask.models import (
    PLE,
    HardSharing,
    MMoE,
    MultiTaskModel,
    SharedPrivate,
    SharedTrunk,
    TaskLoRA,
    TransformerEncoder,
)

pytest.importorskip("transformers")
KEYS = ("input_ids", "attention_mask")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


def tasks() -> list[Task]:
    return [Task("pos", nn.Linear(HIDDEN, 1), "binary"), Task("score", nn.Linear(HIDDEN, 1), "regression")]


def batch(encoder: TransformerEncoder) -> dict[str, Tensor]:
    texts = ["the movie was great fun", "i hated this boring film", "a good story", "the plot was awful"]
    columns = encoder.tokenize(texts)
    return {**columns, "pos": torch.tensor([1.0, 0.0, 1.0, 0.0]), "score": torch.tensor([0.9, -0.8, 0.5, -1.0])}


def test_adapters_train_per_task_inside_a_frozen_bert(folder: Path) -> None:
    torch.manual_seed(0)
    encoder = TransformerEncoder(folder)
    model = TaskLoRA(encoder, tasks(), rank=4, input_key=KEYS)
    assert len(model.adapted) == 4  # query and value of both layers
    frozen = {name: p.detach().clone() for name, p in model.named_parameters() if not p.requires_grad}
    assert any("embeddings" in name for name in frozen) and not any(".down." in n or ".up." in n for n in frozen)
    data = batch(encoder)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    history: list[float] = []
    for _ in range(5):
        optimizer.zero_grad()
        losses = task_losses(tasks(), model(data), data)
        losses.values.sum().backward()
        optimizer.step()
        history.append(float(losses.values.detach().sum()))
    assert float(task_losses(tasks(), model(data), data).values.detach().sum()) < history[0]
    for name, p in model.named_parameters():
        if not p.requires_grad:
            assert torch.equal(p, frozen[name]), f"the frozen backbone changed: {name}"
    layer = model.adapted[0]
    assert not torch.equal(layer.up["pos"], layer.up["score"])  # each task has its own adapter
    assert not torch.equal(model.encode(data, "pos"), model.encode(data, "score"))


def _step(model: MultiTaskModel, strategy: Strategy, engine: JacobianEngine, data: dict[str, Tensor]) -> None:
    model.zero_grad()
    shared = [p for p in model.shared_parameters() if p.requires_grad]
    others = [p for p in model.parameters() if p.requires_grad and id(p) not in {id(s) for s in shared}]
    outputs = model(data)
    features = model.shared_features()
    backward(
        task_losses(tasks(), outputs, data),
        strategy,
        shared_params=shared,
        task_params=others,
        features=features if strategy.on == "representation" else None,
        engine=engine,
    )


@pytest.mark.parametrize(
    ("on", "by_backward"), [("parameters", False), ("parameters", True), ("representation", False)]
)
def test_gradient_aggregation_on_a_shared_bert_in_each_mode(folder: Path, on: str, by_backward: bool) -> None:
    torch.manual_seed(0)
    encoder = TransformerEncoder(folder)
    model = HardSharing(encoder, tasks(), input_key=KEYS)
    data = batch(encoder)
    strategy = Strategy(aggregation=UPGrad(), on=on, tasks=["pos", "score"])  # type: ignore[arg-type]
    _step(model, strategy, JacobianEngine(update_by_backward=by_backward), data)
    grads = [p.grad for p in model.shared_parameters() if p.grad is not None]
    assert grads and all(bool(torch.isfinite(g).all()) for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_the_jacobian_and_gramian_paths_give_the_same_update(folder: Path) -> None:
    torch.manual_seed(0)
    encoder = TransformerEncoder(folder)
    encoder.eval()  # no dropout: the two passes see the same network
    model = TaskLoRA(encoder, tasks(), rank=4, scheme="mtl_lora", input_key=KEYS)
    with torch.no_grad():
        for layer in model.adapted:
            layer.shared_up.normal_(std=0.1)
    data = batch(encoder)
    updates = []
    for by_backward in (False, True):
        _step(
            model,
            Strategy(aggregation=UPGrad(), tasks=["pos", "score"]),
            JacobianEngine(update_by_backward=by_backward),
            data,
        )
        updates.append(torch.cat([p.grad.flatten() for p in model.shared_parameters() if p.grad is not None]))
    assert updates[0].numel() == sum(p.numel() for p in model.shared_parameters())  # the adapters only
    torch.testing.assert_close(updates[0], updates[1], rtol=1e-4, atol=1e-7)


def test_every_run_of_a_study_starts_from_the_pretrained_weights(folder: Path) -> None:
    from multitask.studies import fresh_copy

    encoder = TransformerEncoder(folder)
    model = nn.Sequential(encoder, nn.Linear(HIDDEN, 2))  # a pretrained encoder and a new layer
    copies = [fresh_copy(model, seed) for seed in (0, 1)]
    for copy in copies:
        for (name, original), copied in zip(encoder.named_parameters(), copy[0].parameters(), strict=True):
            assert torch.equal(original, copied), name  # the pretrained weights are copied, not re-initialised
    assert not torch.equal(copies[0][1].weight, copies[1][1].weight)  # the new layer is drawn from each seed


@pytest.mark.parametrize("mixture", ["mmoe", "ple"])
def test_experts_and_gates_over_the_pooled_output_of_a_bert(folder: Path, mixture: str) -> None:
    torch.manual_seed(0)
    encoder = TransformerEncoder(folder)

    def expert(width: int = HIDDEN) -> nn.Module:
        return nn.Sequential(nn.Linear(width, 8), nn.ReLU())

    heads = [Task("pos", nn.Linear(8, 1), "binary"), Task("score", nn.Linear(8, 1), "regression")]
    inner = (
        MMoE([expert() for _ in range(3)], heads, in_features=HIDDEN)
        if mixture == "mmoe"
        else PLE(expert, heads, in_features=HIDDEN, num_task_experts=1, num_shared_experts=1, num_levels=2)
    )
    model = SharedTrunk(encoder, inner, input_key=KEYS)
    data = batch(encoder)
    _step(model, Strategy(aggregation=UPGrad(), tasks=["pos", "score"]), JacobianEngine(), data)
    trunk = list(encoder.parameters())
    assert {id(p) for p in trunk} <= {id(p) for p in model.shared_parameters()}
    assert any(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in trunk)  # the encoder is fine-tuned
    assert set(model.last_gates()) and tuple(model.shared_features().shape) == (4, HIDDEN)


def test_a_shared_bert_with_a_private_bert_per_task(folder: Path) -> None:
    torch.manual_seed(0)
    shared = TransformerEncoder(folder)
    wide = [Task("pos", nn.Linear(2 * HIDDEN, 1), "binary"), Task("score", nn.Linear(2 * HIDDEN, 1), "regression")]
    model = SharedPrivate(shared, lambda: TransformerEncoder(folder), wide, gamma=0.01, input_key=KEYS)
    data = batch(shared)
    strategy = Strategy(aggregation=UPGrad(), on="representation", tasks=["pos", "score"])
    _step(model, strategy, JacobianEngine(), data)
    grads = [p.grad for name, p in shared.named_parameters() if not name.startswith("backbone.pooler")]
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads)
    assert tuple(model.shared_features().shape) == (4, HIDDEN)
