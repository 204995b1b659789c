"""Tests of `HardSharing` (shared encoder, one head per task) and of the `MLP` building block."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from multitask.errors import ConfigError, DataError
from multitask.models import MLP, HardSharing, MultiTaskModel
from multitask.tasks import Task

N, D, H = 5, 4, 8


def make_tasks() -> list[Task]:
    return [
        Task("a", nn.Linear(H, 1), "binary"),
        Task("b", nn.Linear(H, 3), "multiclass"),
        Task("c", nn.Linear(H, 2), "regression"),
    ]


def make_model() -> HardSharing:
    torch.manual_seed(0)
    return HardSharing(MLP(D, hidden=[H]), make_tasks())


def batch(n: int = N) -> dict[str, Tensor]:
    return {"x": torch.randn(n, D, generator=torch.Generator().manual_seed(1))}


def test_is_a_multitask_model() -> None:
    assert isinstance(make_model(), MultiTaskModel)


def test_output_shapes_per_task() -> None:
    outputs = make_model()(batch())
    assert {name: tuple(out.shape) for name, out in outputs.items()} == {"a": (N, 1), "b": (N, 3), "c": (N, 2)}


def test_outputs_are_heads_of_the_shared_representation() -> None:
    model = make_model()
    data = batch()
    features = model.encoder(data["x"])
    outputs = model(data)
    for name in model.task_names:
        torch.testing.assert_close(outputs[name], model.heads[name](features))


def test_task_subset() -> None:
    model = make_model()
    outputs = model(batch(), ["c", "a"])
    assert set(outputs) == {"a", "c"}
    torch.testing.assert_close(outputs["c"], model(batch())["c"])


def test_unknown_task_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="'z'"):
        make_model()(batch(), ["a", "z"])


def test_duplicate_task_names_raise_config_error() -> None:
    tasks = [Task("a", nn.Linear(H, 1), "binary"), Task("a", nn.Linear(H, 1), "regression")]
    with pytest.raises(ConfigError, match="unique"):
        HardSharing(MLP(D, hidden=[H]), tasks)


def test_no_task_raises_config_error() -> None:
    with pytest.raises(ConfigError):
        HardSharing(MLP(D, hidden=[H]), [])


def test_missing_input_column_raises_data_error() -> None:
    with pytest.raises(DataError, match="'x'"):
        make_model()({"features": torch.randn(N, D)})


def test_custom_input_key() -> None:
    torch.manual_seed(0)
    model = HardSharing(MLP(D, hidden=[H]), make_tasks(), input_key="features")
    assert model({"features": torch.randn(N, D)})["b"].shape == (N, 3)


class TwoInputEncoder(nn.Module):
    """Concatenates a numeric and an embedded categorical input (positional arguments, in order)."""

    def __init__(self) -> None:
        super().__init__()
        self.embedding = nn.Embedding(10, 3)
        self.linear = nn.Linear(D + 3, H)

    def forward(self, numeric: Tensor, categorical: Tensor) -> Tensor:
        return self.linear(torch.cat([numeric, self.embedding(categorical)], dim=-1))


def test_multiple_input_keys_are_passed_positionally_in_order() -> None:
    torch.manual_seed(0)
    encoder = TwoInputEncoder()
    model = HardSharing(encoder, make_tasks(), input_key=["num", "cat"])
    numeric, categorical = torch.randn(N, D), torch.randint(0, 10, (N,))
    outputs = model({"cat": categorical, "num": numeric, "unused": torch.zeros(N)})
    torch.testing.assert_close(outputs["a"], model.heads["a"](encoder(numeric, categorical)))
    with pytest.raises(DataError, match="'cat'"):
        model({"num": numeric})


def make_adapter_model() -> tuple[HardSharing, dict[str, nn.Module]]:
    torch.manual_seed(0)
    adapters: dict[str, nn.Module] = {"a": nn.Linear(7, D), "b": nn.Linear(2, D)}
    tasks = [Task("a", nn.Linear(H, 1), "binary"), Task("b", nn.Linear(H, 3), "multiclass")]
    return HardSharing(MLP(D, hidden=[H]), tasks, adapters=adapters), adapters


def test_adapters_map_different_input_sizes_into_one_encoder() -> None:
    model, adapters = make_adapter_model()
    x_a, x_b = torch.randn(N, 7), torch.randn(N + 1, 2)
    out_a = model({"x": x_a}, ["a"])
    out_b = model({"x": x_b}, ["b"])
    assert set(out_a) == {"a"} and out_a["a"].shape == (N, 1)
    assert set(out_b) == {"b"} and out_b["b"].shape == (N + 1, 3)
    torch.testing.assert_close(out_a["a"], model.heads["a"](model.encoder(adapters["a"](x_a))))
    torch.testing.assert_close(out_b["b"], model.heads["b"](model.encoder(adapters["b"](x_b))))


def test_adapter_models_need_exactly_one_task_per_call() -> None:
    model, _ = make_adapter_model()
    with pytest.raises(ConfigError):
        model({"x": torch.randn(N, 7)})
    with pytest.raises(ConfigError):
        model({"x": torch.randn(N, 7)}, ["a", "b"])
    with pytest.raises(ConfigError):
        model.encode({"x": torch.randn(N, 7)})


def test_adapter_for_unknown_task_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="'z'"):
        HardSharing(MLP(D, hidden=[H]), make_tasks(), adapters={"z": nn.Linear(3, D)})


def ids(parameters: object) -> set[int]:
    return {id(p) for p in parameters}  # type: ignore[attr-defined]


def test_shared_and_task_specific_parameters_partition_the_model() -> None:
    model = make_model()
    shared = list(model.shared_parameters())
    specific = list(model.task_specific_parameters())
    assert ids(shared) == ids(model.encoder.parameters())
    expected_specific = ids(p for name in model.task_names for p in model.heads[name].parameters())
    assert ids(specific) == expected_specific
    assert ids(shared).isdisjoint(ids(specific))
    assert len(shared) + len(specific) == len(list(model.parameters()))


def test_adapters_are_task_specific_parameters() -> None:
    model, adapters = make_adapter_model()
    assert ids(model.shared_parameters()) == ids(model.encoder.parameters())
    specific = ids(model.task_specific_parameters())
    assert ids(adapters["a"].parameters()) <= specific
    assert ids(adapters["b"].parameters()) <= specific
    assert ids(model.encoder.parameters()).isdisjoint(specific)


def test_heads_are_the_tasks_heads_and_receive_gradients() -> None:
    tasks = make_tasks()
    model = HardSharing(MLP(D, hidden=[H]), tasks)
    for task in tasks:
        assert model.heads[task.name] is task.head
    outputs = model(batch())
    outputs["a"].sum().backward()
    assert tasks[0].head.weight.grad is not None
    assert tasks[1].head.weight.grad is None
    assert all(p.grad is not None for p in model.shared_parameters())


# ----- MLP -----
def test_mlp_layers_and_out_features() -> None:
    mlp = MLP(D, hidden=[6, 5], out_features=2, dropout=0.1)
    assert [type(layer) for layer in mlp] == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert mlp.out_features == 2
    assert mlp(torch.randn(N, D)).shape == (N, 2)
    assert MLP(D, hidden=[6, 5]).out_features == 5
    assert MLP(D, hidden=[6, 5])(torch.randn(N, D)).shape == (N, 5)


def test_empty_mlp_is_identity() -> None:
    mlp = MLP(D)
    x = torch.randn(N, D)
    torch.testing.assert_close(mlp(x), x)
    assert mlp.out_features == D
