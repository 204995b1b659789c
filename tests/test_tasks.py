"""Tests of `Task`: missing labels, loss reduction, shapes, evaluation and configuration errors."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from multitask.errors import ConfigError, DataError, ShapeError, UnknownNameError
from multitask.metrics import BUILTIN_METRICS, Metric
from multitask.tasks import Task

N = 12


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def with_missing(target: Tensor, missing: Tensor, value: float) -> Tensor:
    target = target.clone()
    target[missing] = value
    return target


MISSING = torch.tensor([False, True, False, False, True, False, True, False, False, False, True, False])
LABELLED = ~MISSING


# ----- a missing label contributes nothing to the loss -----
@pytest.mark.parametrize("loss", ["mse", "l1", "huber"])
def test_regression_nan_labels_are_ignored(loss: str) -> None:
    task = Task("y", nn.Identity(), "regression", loss=loss)
    prediction, target = torch.randn(N, generator=gen(0)), torch.randn(N, generator=gen(1))
    value, count = task.compute_loss(prediction, {"y": with_missing(target, MISSING, math.nan)})
    reference, _ = task.compute_loss(prediction[LABELLED], {"y": target[LABELLED]})
    assert count == int(LABELLED.sum())
    torch.testing.assert_close(value, reference)
    assert torch.isfinite(value)


def test_regression_loss_reference_value() -> None:
    task = Task("y", nn.Identity(), "regression")
    prediction = torch.tensor([1.0, 2.0, 5.0])
    target = torch.tensor([0.0, math.nan, 3.0])
    value, count = task.compute_loss(prediction, {"y": target})
    assert count == 2
    assert float(value) == pytest.approx((1.0 + 4.0) / 2)


def test_binary_nan_labels_are_ignored() -> None:
    task = Task("b", nn.Identity(), "binary")
    logits = torch.randn(N, generator=gen(0))
    target = torch.randint(0, 2, (N,), generator=gen(1)).float()
    value, count = task.compute_loss(logits, {"b": with_missing(target, MISSING, math.nan)})
    expected = F.binary_cross_entropy_with_logits(logits[LABELLED], target[LABELLED])
    assert count == int(LABELLED.sum())
    torch.testing.assert_close(value, expected)


def test_multiclass_ignore_index_is_ignored() -> None:
    task = Task("c", nn.Identity(), "multiclass", ignore_index=-1)
    logits = torch.randn(N, 3, generator=gen(0))
    target = torch.randint(0, 3, (N,), generator=gen(1))
    value, count = task.compute_loss(logits, {"c": with_missing(target, MISSING, -1)})
    expected = F.cross_entropy(logits[LABELLED], target[LABELLED])
    assert count == int(LABELLED.sum())
    torch.testing.assert_close(value, expected)


def test_multiclass_default_ignore_index() -> None:
    task = Task("c", nn.Identity(), "multiclass")
    logits = torch.randn(N, 3, generator=gen(0))
    target = torch.randint(0, 3, (N,), generator=gen(1))
    value, count = task.compute_loss(logits, {"c": with_missing(target, MISSING, -100)})
    assert count == int(LABELLED.sum())
    torch.testing.assert_close(value, F.cross_entropy(logits[LABELLED], target[LABELLED]))


@pytest.mark.parametrize("kind", ["binary", "regression"])
def test_mask_key_marks_labelled_rows(kind: str) -> None:
    task = Task("t", nn.Identity(), kind, mask_key="t_mask")
    prediction = torch.randn(N, generator=gen(0))
    target = torch.randint(0, 2, (N,), generator=gen(1)).float()  # no NaN: only the mask says what is missing
    value, count = task.compute_loss(prediction, {"t": target, "t_mask": LABELLED})
    reference, _ = task.compute_loss(prediction[LABELLED], {"t": target[LABELLED], "t_mask": LABELLED[LABELLED]})
    assert count == int(LABELLED.sum())
    torch.testing.assert_close(value, reference)


def test_mask_key_combines_with_nan() -> None:
    task = Task("t", nn.Identity(), "regression", mask_key="m")
    prediction, target = torch.randn(N, generator=gen(0)), torch.randn(N, generator=gen(1))
    nan_rows = torch.zeros(N, dtype=torch.bool)
    nan_rows[0] = True
    batch = {"t": with_missing(target, nan_rows, math.nan), "m": LABELLED.long()}  # integer mask accepted
    value, count = task.compute_loss(prediction, batch)
    keep = LABELLED & ~nan_rows
    assert count == int(keep.sum())
    torch.testing.assert_close(value, F.mse_loss(prediction[keep], target[keep]))


def test_mask_key_for_multiclass() -> None:
    task = Task("c", nn.Identity(), "multiclass", mask_key="m")
    logits = torch.randn(N, 4, generator=gen(0))
    target = torch.randint(0, 4, (N,), generator=gen(1))
    value, count = task.compute_loss(logits, {"c": target, "m": LABELLED})
    assert count == int(LABELLED.sum())
    torch.testing.assert_close(value, F.cross_entropy(logits[LABELLED], target[LABELLED]))


def test_missing_mask_column_raises_data_error() -> None:
    task = Task("t", nn.Identity(), "regression", mask_key="t_mask")
    with pytest.raises(DataError, match="t_mask"):
        task.compute_loss(torch.zeros(3), {"t": torch.zeros(3)})


def test_unlabelled_rows_get_no_gradient() -> None:
    task = Task("y", nn.Identity(), "regression")
    prediction = torch.randn(N, generator=gen(0), requires_grad=True)
    target = with_missing(torch.randn(N, generator=gen(1)), MISSING, math.nan)
    value, _ = task.compute_loss(prediction, {"y": target})
    value.backward()
    assert prediction.grad is not None
    assert torch.isfinite(prediction.grad).all()
    assert (prediction.grad[MISSING] == 0).all()
    assert (prediction.grad[LABELLED] != 0).all()


# ----- a batch without any label -----
@pytest.mark.parametrize(
    ("kind", "out", "target"),
    [
        ("regression", 1, torch.full((N,), math.nan)),
        ("binary", 1, torch.full((N,), math.nan)),
        ("multiclass", 3, torch.full((N,), -100)),
        ("multilabel", 2, torch.full((N, 2), math.nan)),
    ],
)
def test_batch_without_labels_gives_zero_loss_and_no_gradient(kind: str, out: int, target: Tensor) -> None:
    torch.manual_seed(0)
    encoder = nn.Linear(3, 4)
    empty = Task("empty", nn.Linear(4, out), kind)
    other = Task("other", nn.Linear(4, 1), "regression")
    features = encoder(torch.randn(N, 3))
    batch = {"empty": target, "other": torch.randn(N)}
    loss, count = empty.compute_loss(empty.head(features), batch)
    assert count == 0
    assert float(loss) == 0.0
    assert not loss.requires_grad
    other_loss, _ = other.compute_loss(other.head(features), batch)
    (loss + other_loss).backward()
    for parameter in empty.head.parameters():
        assert parameter.grad is None or (parameter.grad == 0).all()
    for parameter in [*encoder.parameters(), *other.head.parameters()]:
        assert parameter.grad is not None
        assert torch.isfinite(parameter.grad).all()


def test_batch_without_labels_alone_backpropagates_nothing_and_no_nan() -> None:
    head = nn.Linear(4, 1)
    task = Task("y", head, "regression")
    prediction = head(torch.randn(N, 4, generator=gen(0)))
    loss, count = task.compute_loss(prediction, {"y": torch.full((N,), math.nan)})
    assert (float(loss), count) == (0.0, 0)
    total = loss + 0.0 * prediction.sum()  # how a trainer might combine it with a graph-carrying term
    total.backward()
    assert head.weight.grad is not None
    assert torch.isfinite(head.weight.grad).all()
    assert (head.weight.grad == 0).all()


# ----- multi-label: per-entry masking -----
def test_multilabel_missing_entries_inside_rows_use_masked_mean() -> None:
    task = Task("m", nn.Identity(), "multilabel")
    logits = torch.randn(N, 3, generator=gen(0))
    target = torch.randint(0, 2, (N, 3), generator=gen(1)).float()
    missing = torch.rand(N, 3, generator=gen(2)) < 0.3
    assert missing.any(dim=1).any() and not missing.all(dim=1).all()
    value, count = task.compute_loss(logits, {"m": with_missing(target, missing, math.nan)})
    labelled = ~missing
    per_entry = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    expected = (per_entry * labelled).sum() / labelled.sum()
    assert count == int(labelled.sum())
    torch.testing.assert_close(value, expected)
    torch.testing.assert_close(value, F.binary_cross_entropy_with_logits(logits[labelled], target[labelled]))


def test_multilabel_row_mask_key_broadcasts_over_labels() -> None:
    task = Task("m", nn.Identity(), "multilabel", mask_key="mask")
    logits = torch.randn(N, 3, generator=gen(0))
    target = torch.randint(0, 2, (N, 3), generator=gen(1)).float()
    value, count = task.compute_loss(logits, {"m": target, "mask": LABELLED})
    assert count == 3 * int(LABELLED.sum())
    torch.testing.assert_close(value, F.binary_cross_entropy_with_logits(logits[LABELLED], target[LABELLED]))


def test_multilabel_masked_entries_get_zero_finite_gradient() -> None:
    task = Task("m", nn.Identity(), "multilabel")
    logits = torch.randn(N, 3, generator=gen(0), requires_grad=True)
    target = torch.randint(0, 2, (N, 3), generator=gen(1)).float()
    missing = torch.rand(N, 3, generator=gen(2)) < 0.3
    value, _ = task.compute_loss(logits, {"m": with_missing(target, missing, math.nan)})
    value.backward()
    assert logits.grad is not None
    assert torch.isfinite(logits.grad).all()
    assert (logits.grad[missing] == 0).all()


# ----- custom losses -----
def scalar_loss(prediction: Tensor, target: Tensor) -> Tensor:
    return ((prediction - target) ** 2).sum() / prediction.numel()


def test_custom_scalar_loss_with_fully_labelled_rows() -> None:
    task = Task("m", nn.Identity(), "multilabel", loss=scalar_loss)
    logits = torch.randn(N, 3, generator=gen(0))
    target = torch.randint(0, 2, (N, 3), generator=gen(1)).float()
    value, count = task.compute_loss(logits, {"m": target})
    assert count == 3 * N
    torch.testing.assert_close(value, scalar_loss(logits, target))


def test_custom_scalar_loss_with_missing_1d_labels() -> None:
    task = Task("y", nn.Identity(), "regression", loss=scalar_loss)
    prediction, target = torch.randn(N, generator=gen(0)), torch.randn(N, generator=gen(1))
    value, _ = task.compute_loss(prediction, {"y": with_missing(target, MISSING, math.nan)})
    torch.testing.assert_close(value, scalar_loss(prediction[LABELLED], target[LABELLED]))


def test_custom_scalar_loss_with_partial_rows_raises_shape_error() -> None:
    task = Task("m", nn.Identity(), "multilabel", loss=scalar_loss)
    target = torch.ones(4, 3)
    target[1, 2] = math.nan
    with pytest.raises(ShapeError, match=r"'m'.*per entry"):
        task.compute_loss(torch.zeros(4, 3), {"m": target})


def test_custom_scalar_loss_with_whole_rows_missing() -> None:
    task = Task("m", nn.Identity(), "multilabel", loss=scalar_loss)
    logits = torch.randn(4, 3, generator=gen(0))
    target = torch.randint(0, 2, (4, 3), generator=gen(1)).float()
    target[1] = math.nan  # row 1 has no label at all; rows 0, 2, 3 are complete
    rows = torch.tensor([True, False, True, True])
    value, count = task.compute_loss(logits, {"m": target})
    assert count == 9
    torch.testing.assert_close(value, scalar_loss(logits[rows], target[rows]))


def test_custom_per_entry_loss_with_partial_rows() -> None:
    def per_entry(prediction: Tensor, target: Tensor) -> Tensor:
        return (prediction - target).abs()

    task = Task("r", nn.Identity(), "regression", loss=per_entry)
    prediction, target = torch.randn(N, 2, generator=gen(0)), torch.randn(N, 2, generator=gen(1))
    missing = torch.rand(N, 2, generator=gen(2)) < 0.3
    value, _ = task.compute_loss(prediction, {"r": with_missing(target, missing, math.nan)})
    torch.testing.assert_close(value, (prediction - target).abs()[~missing].mean())


# ----- shapes -----
@pytest.mark.parametrize("kind", ["binary", "regression"])
def test_n_by_1_head_output_is_squeezed(kind: str) -> None:
    task = Task("t", nn.Identity(), kind)
    prediction = torch.randn(N, 1, generator=gen(0))
    target = torch.randint(0, 2, (N,), generator=gen(1)).float()
    value, _ = task.compute_loss(prediction, {"t": target})
    reference, _ = task.compute_loss(prediction[:, 0], {"t": target})
    torch.testing.assert_close(value, reference)
    assert task.align(prediction, target).shape == (N,)


@pytest.mark.parametrize(
    ("kind", "prediction", "target"),
    [
        ("binary", torch.zeros(N, 2), torch.zeros(N)),
        ("binary", torch.zeros(N + 1), torch.zeros(N)),
        ("regression", torch.zeros(N, 3), torch.zeros(N, 2)),
        ("multilabel", torch.zeros(N, 3), torch.zeros(N, 2)),
        ("multiclass", torch.zeros(N), torch.zeros(N, dtype=torch.long)),
        ("multiclass", torch.zeros(N + 1, 3), torch.zeros(N, dtype=torch.long)),
    ],
)
def test_wrong_head_output_shape_raises_naming_the_task(kind: str, prediction: Tensor, target: Tensor) -> None:
    task = Task("my_task", nn.Identity(), kind)
    with pytest.raises(ShapeError, match="'my_task'"):
        task.compute_loss(prediction, {"my_task": target})


def test_transform_output() -> None:
    logits = torch.randn(N, 1, generator=gen(0))
    torch.testing.assert_close(Task("b", nn.Identity(), "binary").transform_output(logits), torch.sigmoid(logits[:, 0]))
    torch.testing.assert_close(Task("r", nn.Identity(), "regression").transform_output(logits), logits[:, 0])
    probabilities = Task("c", nn.Identity(), "multiclass").transform_output(torch.randn(N, 4, generator=gen(1)))
    torch.testing.assert_close(probabilities.sum(dim=-1), torch.ones(N))
    multilabel = torch.randn(N, 3, generator=gen(2))
    torch.testing.assert_close(
        Task("m", nn.Identity(), "multilabel").transform_output(multilabel), multilabel.sigmoid()
    )


# ----- configuration errors -----
def test_unknown_kind_lists_allowed() -> None:
    with pytest.raises(UnknownNameError, match=r"'ranking'.*allowed: binary, multiclass, multilabel, regression"):
        Task("t", nn.Identity(), "ranking")  # type: ignore[arg-type]


def test_unknown_loss_lists_allowed() -> None:
    with pytest.raises(UnknownNameError, match=r"'bce'.*allowed: mse, l1, huber"):
        Task("t", nn.Identity(), "regression", loss="bce")


def test_unknown_metric_lists_allowed() -> None:
    with pytest.raises(UnknownNameError, match=r"'mse'.*allowed: accuracy, f1, auc, log_loss"):
        Task("t", nn.Identity(), "binary", metrics=["auc", "mse"])


@pytest.mark.parametrize("name", ["a/b", "/", ""])
def test_bad_task_name_raises_config_error(name: str) -> None:
    with pytest.raises(ConfigError):
        Task(name, nn.Identity(), "binary")


def test_metrics_as_a_string_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="list of names"):
        Task("t", nn.Identity(), "binary", metrics="auc")


def test_head_must_be_a_module() -> None:
    with pytest.raises(ConfigError, match=r"nn\.Module"):
        Task("t", lambda x: x, "binary")  # type: ignore[arg-type]


def test_metric_mapping_with_a_non_metric_names_its_type() -> None:
    with pytest.raises(ConfigError, match="got function"):
        Task("t", nn.Identity(), "regression", metrics={"mine": lambda p, t: 0.0})  # type: ignore[dict-item]


def test_metric_order_sets_main_metric() -> None:
    assert Task("t", nn.Identity(), "binary", metrics=["f1", "auc"]).main_metric == "f1"
    assert Task("t", nn.Identity(), "regression").main_metric == "mse"


def test_missing_label_column_raises_data_error_naming_it() -> None:
    task = Task("income", nn.Identity(), "binary", target_key="y_income")
    with pytest.raises(DataError, match="'y_income'"):
        task.compute_loss(torch.zeros(3), {"income": torch.zeros(3), "x": torch.zeros(3)})


def test_target_key_is_read() -> None:
    task = Task("income", nn.Identity(), "regression", target_key="y")
    value, count = task.compute_loss(torch.tensor([1.0, 3.0]), {"y": torch.tensor([0.0, 0.0])})
    assert (float(value), count) == (5.0, 2)


# ----- evaluation -----
def test_evaluate_binary_ignores_unlabelled_samples() -> None:
    task = Task("b", nn.Identity(), "binary")
    logits = torch.randn(40, generator=gen(0))
    target = torch.randint(0, 2, (40,), generator=gen(1)).float()
    missing = torch.rand(40, generator=gen(2)) < 0.3
    partial = with_missing(target, missing, math.nan)
    _, mask = task.labels({"b": partial})
    result = task.evaluate(logits, partial, mask)
    reference = task.evaluate(logits[~missing], target[~missing], torch.ones(int((~missing).sum()), dtype=torch.bool))
    assert result.num_labelled == int((~missing).sum())
    assert result.loss == pytest.approx(reference.loss)
    assert result.metrics == pytest.approx(reference.metrics)
    for name, m in BUILTIN_METRICS["binary"].items():
        assert result.metrics[name] == pytest.approx(m(logits[~missing], target[~missing]))


def test_evaluate_multiclass_ignores_ignore_index() -> None:
    task = Task("c", nn.Identity(), "multiclass", metrics=["accuracy", "f1", "log_loss"])
    logits = torch.randn(40, 3, generator=gen(0))
    target = torch.randint(0, 3, (40,), generator=gen(1))
    missing = torch.rand(40, generator=gen(2)) < 0.3
    partial = with_missing(target, missing, -100)
    _, mask = task.labels({"c": partial})
    result = task.evaluate(logits, partial, mask)
    for name in ["accuracy", "f1", "log_loss"]:
        assert result.metrics[name] == pytest.approx(
            BUILTIN_METRICS["multiclass"][name](logits[~missing], target[~missing])
        )


def test_evaluate_multilabel_is_macro_over_columns_of_labelled_entries() -> None:
    task = Task("m", nn.Identity(), "multilabel", metrics=["auc", "accuracy"])
    logits = torch.randn(60, 3, generator=gen(0))
    target = torch.randint(0, 2, (60, 3), generator=gen(1)).float()
    missing = torch.rand(60, 3, generator=gen(2)) < 0.3
    partial = with_missing(target, missing, math.nan)
    _, mask = task.labels({"m": partial})
    result = task.evaluate(logits, partial, mask)
    for name in ["auc", "accuracy"]:
        m = BUILTIN_METRICS["multilabel"][name]
        expected = sum(m(logits[~missing[:, j], j], target[~missing[:, j], j]) for j in range(3)) / 3
        assert result.metrics[name] == pytest.approx(expected)
    assert result.num_labelled == int((~missing).sum())


def test_evaluate_without_labels_is_nan() -> None:
    task = Task("y", nn.Identity(), "regression")
    target = torch.full((5,), math.nan)
    result = task.evaluate(torch.zeros(5), target, torch.zeros(5, dtype=torch.bool))
    assert result.num_labelled == 0
    assert math.isnan(result.loss)
    assert all(math.isnan(v) for v in result.metrics.values())


def test_evaluate_custom_metric_mapping() -> None:
    calls: list[int] = []

    def count(prediction: Tensor, target: Tensor) -> float:
        calls.append(int(target.shape[0]))
        return float(target.shape[0])

    task = Task("y", nn.Identity(), "regression", metrics={"n": Metric(count, higher_is_better=True)})
    target = with_missing(torch.randn(N, generator=gen(0)), MISSING, math.nan)
    _, mask = task.labels({"y": target})
    result = task.evaluate(torch.zeros(N), target, mask)
    assert result.metrics == {"n": float(LABELLED.sum())}
    assert calls == [int(LABELLED.sum())]
