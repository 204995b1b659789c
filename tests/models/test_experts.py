"""Mixture-of-experts models (MMoE, OMoE, CGC, PLE, DSelect-k): gates, parameter counts, construction errors."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from _models import TASK_NAMES, D, H, N, batch, build, expert, make_tasks
from torch import nn

from multitask.errors import ConfigError, ShapeError
from multitask.models import CGC, PLE, DSelectK, MMoE, MultiTaskModel
from multitask.models._dselect_k import smooth_step


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


EXPERT = D * H + H
HEADS = len(TASK_NAMES) * (H * 2 + 2)


@pytest.mark.parametrize("name", ["mmoe", "omoe", "cgc", "ple", "dselect_k"])
def test_gate_weights_are_distributions(name: str) -> None:
    model = build(name)
    model(batch())
    weights = model.last_gate_weights  # type: ignore[attr-defined]
    assert weights
    for value in weights.values():
        assert value.shape[0] == N and bool((value >= 0).all())
        torch.testing.assert_close(value.sum(dim=-1), torch.ones(N))


def test_mmoe_parameter_count_and_gates() -> None:
    model = build("mmoe")
    assert isinstance(model, MMoE)
    assert count(model) == 3 * EXPERT + len(TASK_NAMES) * (D * 3 + 3) + HEADS
    assert count(build("omoe")) == 3 * EXPERT + (D * 3 + 3) + HEADS
    gates = model.gate_weights(batch(), ["b"])
    assert set(gates) == {"b"} and gates["b"].shape == (N, 3)


def test_omoe_gives_every_task_the_same_gate() -> None:
    model = build("omoe")
    model(batch())
    weights = model.last_gate_weights  # type: ignore[attr-defined]
    torch.testing.assert_close(weights["a"], weights["c"])


def test_mmoe_gate_can_read_another_column() -> None:
    torch.manual_seed(0)
    model = MMoE([expert() for _ in range(2)], make_tasks(), in_features=D, gate_key="user", gate_features=3)
    data = batch() | {"user": torch.randn(N, 3)}
    assert model(data)["a"].shape == (N, 2)
    with pytest.raises(ShapeError, match="gate input 'user' has 4 features per row, expected 3"):
        model(batch() | {"user": torch.randn(N, 4)})


def test_cgc_and_ple_parameter_counts() -> None:
    cgc = build("cgc")  # 2 experts per task, 1 shared; gates over 3 experts
    assert count(cgc) == (3 * 2 + 1) * EXPERT + 3 * (D * 3 + 3) + HEADS
    ple = build("ple")  # 3 levels; 1 expert per task, 2 shared; task gates over 3, shared gates over 5
    level_experts = lambda size: (3 + 2) * (size * H + H)  # noqa: E731
    gates = lambda size, shared: 3 * (size * 3 + 3) + (size * 5 + 5 if shared else 0)  # noqa: E731
    expected = level_experts(D) + gates(D, True) + 2 * level_experts(H) + gates(H, True) + gates(H, False) + HEADS
    assert count(ple) == expected


def test_ple_records_every_level() -> None:
    model = build("ple")
    model(batch())
    weights = model.last_gate_weights  # type: ignore[attr-defined]
    assert weights["level1/a"].shape == (N, 3) and weights["level2/shared"].shape == (N, 5)
    assert "level3/shared" not in weights


def test_cgc_is_one_ple_level() -> None:
    torch.manual_seed(0)
    cgc = CGC(expert, make_tasks(), in_features=D, num_task_experts=2, num_shared_experts=1)
    torch.manual_seed(0)
    ple = PLE(expert, make_tasks(), in_features=D, num_task_experts=2, num_shared_experts=1, num_levels=1)
    for name in TASK_NAMES:
        torch.testing.assert_close(cgc(batch())[name], ple(batch())[name])


def test_smooth_step() -> None:
    t = torch.tensor([-2.0, -0.5, 0.0, 0.25, 0.5, 3.0])
    torch.testing.assert_close(smooth_step(t, 1.0), torch.tensor([0.0, 0.0, 0.5, 0.84375, 1.0, 1.0]))


@pytest.mark.parametrize("num_experts", [4, 5])
def test_dselect_k_uses_at_most_k_experts_once_saturated(num_experts: int) -> None:
    torch.manual_seed(0)
    model = DSelectK([expert() for _ in range(num_experts)], make_tasks(), in_features=D, k=2)
    bits = 2 if num_experts == 4 else 3
    code_one, code_two = [5.0] + [-5.0] * (bits - 1), [-5.0, 5.0] + [-5.0] * (bits - 2)
    with torch.no_grad():  # saturate every selector: one on code 1 (expert 1), one on code 2 (expert 2)
        for gate in model.gates.values():
            gate.selectors.weight.zero_()  # type: ignore[union-attr]
            gate.selectors.bias.copy_(torch.tensor(code_one + code_two))  # type: ignore[operator]
    weights = model.gate_weights(batch())
    for value in weights.values():
        assert int((value[0] > 0).sum()) == 2 and bool(value[:, 1:3].sum(dim=-1).sub(1).abs().lt(1e-6).all())


def test_dselect_k_entropy_penalty_only_while_training() -> None:
    torch.manual_seed(0)
    model = DSelectK([expert() for _ in range(4)], make_tasks(), in_features=D, k=2, entropy_weight=0.5)
    model(batch())
    assert model.regularization().item() > 0
    model.eval()
    assert model.regularization().item() == 0


def alternating_sizes() -> Callable[[int], nn.Module]:
    """An expert factory whose experts output 3, 4, 3, 4, ... features."""
    sizes = iter([3, 4] * 20)
    return lambda size: nn.Linear(size, next(sizes))


BAD: list[tuple[str, Callable[[], MultiTaskModel], str]] = [
    ("zero experts", lambda: MMoE([], make_tasks(), in_features=D), "at least one expert; got zero"),
    (
        "mismatched experts",
        lambda: MMoE([nn.Linear(D, 3), nn.Linear(D, 4)], make_tasks(), in_features=D),
        r"same size; got output sizes \[3, 4\]",
    ),
    ("expert on the wrong input", lambda: MMoE([nn.Linear(7, 3)], make_tasks(), in_features=D), "expert 0 fails"),
    ("gate size", lambda: MMoE([expert()], make_tasks(), in_features=D, gate_features=7), "gate_features=7"),
    ("gate key size", lambda: MMoE([expert()], make_tasks(), in_features=D, gate_key="u"), "needs gate_features"),
    ("one task", lambda: MMoE([expert()], make_tasks(("a",)), in_features=D), "at least two tasks"),
    ("zero task experts", lambda: CGC(expert, make_tasks(), in_features=D, num_task_experts=0), "positive integer"),
    ("zero levels", lambda: PLE(expert, make_tasks(), in_features=D, num_levels=0), "num_levels"),
    (
        "mismatched factory",
        lambda: PLE(alternating_sizes(), make_tasks(), in_features=D),
        "output sizes",
    ),
    ("k too large", lambda: DSelectK([expert()], make_tasks(), in_features=D, k=2), "k must be between 1 and"),
    ("dselect zero experts", lambda: DSelectK([], make_tasks(), in_features=D), "at least one expert"),
]


@pytest.mark.parametrize(("case", "make", "message"), BAD, ids=[case for case, _, _ in BAD])
def test_bad_construction_raises_a_clear_error(case: str, make: Callable[[], MultiTaskModel], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make()
