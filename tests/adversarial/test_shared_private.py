"""The shared-private model: its outputs, the orthogonality term against a hand computation, any encoder."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from multitask import Strategy, Task, Trainer
from multitask.adversarial import Adversary
from multitask.data import ArrayDataset
from multitask.errors import ConfigError, ShapeError
from multitask.models import SharedPrivate
from multitask.models._shared_private import orthogonality


class Fixed(nn.Module):
    """Returns the same features whatever the input (with a parameter, so that gradients can flow)."""

    def __init__(self, values: list[list[float]]) -> None:
        super().__init__()
        self.values = nn.Parameter(torch.tensor(values))

    def forward(self, x: Tensor) -> Tensor:
        return self.values + 0 * x.sum()


def test_orthogonality_matches_a_hand_computation() -> None:
    s = [[1.0, 2.0], [3.0, 4.0]]  # S [N=2, d_s=2]
    private = {"a": Fixed([[1.0, 0.0], [0.0, 1.0]]), "b": Fixed([[1.0, 1.0], [1.0, 1.0]])}
    tasks = [Task(name, nn.Linear(4, 1), "regression") for name in ("a", "b")]
    model = SharedPrivate(Fixed(s), private, tasks, gamma=0.5)
    model({"x": torch.zeros(2, 1)})
    # SᵀH_a = Sᵀ = [[1, 3], [2, 4]]: 1 + 9 + 4 + 16 = 30; SᵀH_b = [[4, 4], [6, 6]]: 16 + 16 + 36 + 36 = 104
    value = model.regularization()
    assert value.item() == pytest.approx(0.5 * (30 + 104))
    assert model.last_orthogonality is not None and model.last_orthogonality.item() == pytest.approx(134.0)
    assert model.regularization().item() == 0.0  # the terms are used once
    # the term's gradient w.r.t. S is γ · 2 Σ_t H_t (SᵀH_t)ᵀ
    model({"x": torch.zeros(2, 1)})
    model.regularization().backward()
    shared_values = model.shared.values
    h_a, h_b = private["a"].values.detach(), private["b"].values.detach()
    s_t = shared_values.detach()
    expected = 0.5 * 2 * (h_a @ (s_t.T @ h_a).T + h_b @ (s_t.T @ h_b).T)
    assert shared_values.grad is not None
    torch.testing.assert_close(shared_values.grad, expected)


def test_orthogonality_function_and_eval_mode() -> None:
    # columns of S and H orthogonal over the samples: zero; one sample: ‖s hᵀ‖² = ‖s‖² ‖h‖²
    assert orthogonality(torch.tensor([[1.0], [0.0]]), torch.tensor([[0.0], [1.0]])).item() == 0.0
    assert orthogonality(torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 3.0]])).item() == pytest.approx(5 * 9)
    tasks = [Task(name, nn.Linear(5, 1), "binary") for name in ("a", "b")]
    model = SharedPrivate(nn.Linear(3, 3), lambda: nn.Linear(3, 2), tasks).eval()
    model({"x": torch.randn(4, 3)})
    assert model.regularization().item() == 0.0  # evaluation passes add nothing to the training objective
    assert model.last_orthogonality is None


def test_heads_read_shared_and_private_features_and_each_task_its_own_encoder() -> None:
    torch.manual_seed(0)
    tasks = [Task(name, nn.Linear(6 + 2, 1), "binary") for name in ("a", "b", "c")]
    model = SharedPrivate(nn.Linear(3, 6), lambda: nn.Linear(3, 2), tasks)
    x = torch.randn(7, 3)
    outputs = model({"x": x})
    features = model.shared_features()
    assert features is not None and features.shape == (7, 6)
    for name in ("a", "b", "c"):
        expected = model.heads[name](torch.cat([model.shared(x), model.private[name](x)], dim=-1))
        torch.testing.assert_close(outputs[name], expected)
    shared_ids = {id(p) for p in model.shared_parameters()}
    assert shared_ids == {id(p) for p in model.shared.parameters()}
    model({"x": x}, ["b"])["b"].sum().backward()
    reached = {name for name in ("a", "b", "c") if any(p.grad is not None for p in model.private[name].parameters())}
    assert reached == {"b"}


class GRUEncoder(nn.Module):
    def __init__(self, vocab: int, width: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, 8, padding_idx=0)
        self.rnn = nn.GRU(8, width, batch_first=True)

    def forward(self, tokens: Tensor) -> Tensor:
        _, last = self.rnn(self.embedding(tokens))
        result: Tensor = last[-1]
        return result


class TransformerEncoder(nn.Module):
    def __init__(self, vocab: int, width: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, width, padding_idx=0)
        layer = nn.TransformerEncoderLayer(width, nhead=2, dim_feedforward=16, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=1, enable_nested_tensor=False)

    def forward(self, tokens: Tensor) -> Tensor:
        result: Tensor = self.encoder(self.embedding(tokens)).mean(dim=1)
        return result


@pytest.mark.parametrize("encoder", [GRUEncoder, TransformerEncoder])
def test_any_text_encoder_trains_with_the_adversary(encoder: type[nn.Module]) -> None:
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    data = {
        name: ArrayDataset(
            tokens=torch.randint(1, 20, (24, 6), generator=generator),
            **{name: torch.randint(0, 2, (24,), generator=generator).float()},
        )
        for name in ("a", "b")
    }
    tasks = [Task(name, nn.Linear(8 + 4, 1), "binary") for name in ("a", "b")]
    model = SharedPrivate(encoder(20, 8), lambda: encoder(20, 4), tasks, input_key="tokens")
    trainer = Trainer(
        model,
        tasks,
        strategy=Strategy(adversary=Adversary(scheme="alternating")),
        max_epochs=2,
        batch_size=8,
        progress=False,
        device="cpu",
    )
    history = trainer.fit(data)
    assert {"adversary/accuracy", "adversary/loss", "model/orthogonality"} <= set(history[-1])
    assert 0.0 <= history[-1]["adversary/accuracy"] <= 1.0
    assert history[-1]["model/orthogonality"] > 0


def test_bad_construction_is_refused() -> None:
    tasks = [Task(name, nn.Linear(4, 1), "binary") for name in ("a", "b")]
    with pytest.raises(ConfigError, match="gamma"):
        SharedPrivate(nn.Linear(3, 2), lambda: nn.Linear(3, 2), tasks, gamma=-1.0)
    with pytest.raises(ConfigError, match="at least two tasks"):
        SharedPrivate(nn.Linear(3, 2), lambda: nn.Linear(3, 2), tasks[:1])
    with pytest.raises(ConfigError, match="exactly the tasks"):
        SharedPrivate(nn.Linear(3, 2), {"a": nn.Linear(3, 2)}, tasks)
    same = nn.Linear(3, 2)
    with pytest.raises(ConfigError, match="its own private encoder"):
        SharedPrivate(nn.Linear(3, 2), lambda: same, tasks)
    model = SharedPrivate(nn.Linear(3, 2), lambda: nn.Unflatten(1, (1, 3)), tasks)
    with pytest.raises(ShapeError, match=r"features \[N, d\]"):
        model({"x": torch.randn(4, 3)})


def test_models_holding_last_features_can_still_be_copied_and_pickled() -> None:
    import copy
    import pickle

    from multitask.models import HardSharing

    tasks = [Task(name, nn.Linear(6, 1), "binary") for name in ("a", "b")]
    for model in (
        SharedPrivate(nn.Linear(3, 3), lambda: nn.Linear(3, 3), tasks),
        HardSharing(nn.Linear(3, 6), tasks),
    ):
        model({"x": torch.randn(4, 3)})["a"].sum().backward()
        assert model.shared_features() is not None
        for clone in (copy.deepcopy(model), pickle.loads(pickle.dumps(model))):
            assert clone.shared_features() is None  # the last features are not copied
            torch.testing.assert_close(clone({"x": torch.ones(1, 3)})["a"], model({"x": torch.ones(1, 3)})["a"])
