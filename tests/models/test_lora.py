"""Per-task low-rank adapters: the LoRA and MTL-LoRA formulas, the frozen backbone, shared and task parameters."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from multitask import Strategy, Task, backward, task_losses
from multitask.aggregation import UPGrad
from multitask.errors import ConfigError
from multitask.jacobian import JacobianEngine
from multitask.models import MultiTaskLoRALinear, TaskLoRA

D, H = 6, 5


class Attention(nn.Module):
    """Named like a BERT attention block: query, key, value and an output projection."""

    def __init__(self) -> None:
        super().__init__()
        self.query, self.key, self.value, self.output = (nn.Linear(D, D) for _ in range(4))

    def forward(self, x: Tensor) -> Tensor:
        scores = torch.softmax(self.query(x) @ self.key(x).T / D**0.5, dim=-1)
        return torch.tanh(self.output(scores @ self.value(x)))


def encoder() -> nn.Module:
    return nn.Sequential(Attention(), nn.Linear(D, H), nn.Tanh())


def tasks(names: tuple[str, ...] = ("a", "b")) -> list[Task]:
    return [Task(name, nn.Linear(H, 1), "regression") for name in names]


def batch(n: int = 8) -> dict[str, Tensor]:
    generator = torch.Generator().manual_seed(3)
    return {"x": torch.randn(n, D, generator=generator), "a": torch.randn(n), "b": torch.randn(n)}


def _perturb_up_projections(model: TaskLoRA) -> None:
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if ".up." in name or name.endswith("shared_up"):
                parameter.normal_()


@pytest.mark.parametrize("scheme", ["lora", "mtl_lora"])
def test_adapters_start_as_the_pretrained_encoder(scheme: str) -> None:
    torch.manual_seed(0)
    base = encoder()
    expected = base(batch()["x"])
    model = TaskLoRA(base, tasks(), rank=2, scheme=scheme)  # type: ignore[arg-type]
    for name in ("a", "b"):  # B = 0 (the LoRA initialisation): every task starts from the pretrained function
        torch.testing.assert_close(model.encode(batch(), name), expected, rtol=0, atol=0)


def test_lora_layer_is_the_papers_formula() -> None:
    torch.manual_seed(0)
    base = nn.Linear(D, 3)
    layer = MultiTaskLoRALinear(base, ["a", "b"], rank=2, alpha=4.0)
    with torch.no_grad():
        layer.up["a"].normal_()
    x = torch.randn(5, D)
    layer.active = "a"
    expected = base(x) + (4.0 / 2) * x @ (layer.up["a"] @ layer.down["a"]).T  # W x + b + (α/r) B_a A_a x
    torch.testing.assert_close(layer(x), expected)
    layer.active = None
    torch.testing.assert_close(layer(x), base(x))


def test_mtl_lora_layer_is_the_papers_formula() -> None:
    torch.manual_seed(0)
    base = nn.Linear(D, 3)
    layer = MultiTaskLoRALinear(
        base, ["a", "b"], rank=2, alpha=2.0, scheme="mtl_lora", up_projections=3, temperature=0.5
    )
    with torch.no_grad():
        layer.shared_up.normal_()
        layer.transform["b"].add_(torch.randn(2, 2))
    x = torch.randn(5, D)
    layer.active = "b"
    w = torch.exp(layer.mixing["b"] / 0.5) / torch.exp(layer.mixing["b"] / 0.5).sum()
    update = sum(w[i] * layer.shared_up[i] for i in range(3)) @ layer.transform["b"] @ layer.shared_down
    torch.testing.assert_close(layer(x), base(x) + (2.0 / 2) * x @ update.T)  # Σ_i w_i B_i Λ_b A x


def test_a_frozen_backbone_stays_bit_identical_and_each_task_trains_its_own_adapter() -> None:
    torch.manual_seed(0)
    model = TaskLoRA(encoder(), tasks(), rank=2)
    frozen = {name: p.detach().clone() for name, p in model.named_parameters() if not p.requires_grad}
    adapters = {id(p) for p in model.adapter_parameters()}
    backbone = {name for name, p in model.encoder.named_parameters(prefix="encoder") if id(p) not in adapters}
    assert set(frozen) == backbone  # every encoder weight but the adapters, and nothing else
    adapted = sorted({name.split(".")[-1] for name, m in model.encoder.named_modules() if hasattr(m, "active")})
    assert adapted == ["query", "value"]  # the defaults: W_q and W_v, as the LoRA paper
    _perturb_up_projections(model)
    before = {name: p.detach().clone() for name, p in model.named_parameters() if p.requires_grad}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    outputs = model(batch(), ["a"])  # only task a's loss
    task_losses(tasks_for_loss(), outputs, batch()).values.sum().backward()
    optimizer.step()
    for name, p in model.named_parameters():
        if not p.requires_grad:
            assert torch.equal(p, frozen[name]), name
    moved = {name for name, p in model.named_parameters() if p.requires_grad and not torch.equal(p, before[name])}
    assert moved and all(".a" in name or "heads.a" in name for name in moved), moved  # b's adapter is untouched
    assert list(model.shared_parameters()) == []  # per-task adapters on a frozen backbone share nothing


def tasks_for_loss() -> list[Task]:
    return [Task("a", nn.Identity(), "regression")]


def test_mtl_lora_shares_its_projections_only() -> None:
    model = TaskLoRA(encoder(), tasks(), rank=2, scheme="mtl_lora")
    shared = {id(p) for p in model.shared_parameters()}
    named = {name for name, p in model.named_parameters() if id(p) in shared}
    assert named and all(name.endswith(("shared_down", "shared_up")) for name in named)
    assert len(named) == 4  # A and the B_i of the query and value layers
    unfrozen = TaskLoRA(encoder(), tasks(), rank=2, freeze_encoder=False)
    assert {id(p) for p in unfrozen.shared_parameters()} == {id(p) for p in unfrozen.encoder.parameters()} - {
        id(p) for p in unfrozen.adapter_parameters()
    }


@pytest.mark.parametrize("mode", ["jacobian", "gramian"])
def test_gradient_aggregation_acts_on_the_shared_adapters(mode: str) -> None:
    torch.manual_seed(0)
    model = TaskLoRA(encoder(), tasks(), rank=2, scheme="mtl_lora")
    _perturb_up_projections(model)
    all_tasks = [Task("a", nn.Identity(), "regression"), Task("b", nn.Identity(), "regression")]
    losses = task_losses(all_tasks, model(batch()), batch())
    shared = list(model.shared_parameters())
    task = [p for p in model.parameters() if p.requires_grad and id(p) not in {id(s) for s in shared}]
    engine = JacobianEngine(update_by_backward=mode == "gramian")  # the Gramian path never forms [T, P]
    backward(
        losses, Strategy(aggregation=UPGrad(), tasks=["a", "b"]), shared_params=shared, task_params=task, engine=engine
    )
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in shared)
    assert all(p.grad is None for p in model.parameters() if not p.requires_grad)


def test_unknown_target_layers_are_named_in_the_error() -> None:
    with pytest.raises(ConfigError, match=r"no linear layer of the encoder is named \['q_proj'\].*'output', 'query'"):
        TaskLoRA(encoder(), tasks(), target_modules=["q_proj"])
    every = TaskLoRA(nn.Sequential(nn.Linear(D, H), nn.Tanh(), nn.Linear(H, H)), tasks())
    assert len(every.adapted) == 2  # no query/value layers: every linear layer is adapted
