"""Tests of the built-in metrics (reference values from scikit-learn) and of Δm%."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from multitask.errors import DataError, UnknownNameError
from multitask.metrics import BUILTIN_METRICS, DEFAULT_METRICS, Metric, builtin_metric, delta_m, relative_gain

N = 300
NUM_CLASSES = 4


def binary_data(seed: int, n: int = N) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits correlated with {0, 1} labels (both classes present)."""
    generator = torch.Generator().manual_seed(seed)
    target = torch.randint(0, 2, (n,), generator=generator).float()
    logits = 1.5 * (target - 0.5) + torch.randn(n, generator=generator)
    return logits, target


def multiclass_data(seed: int, n: int = N) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits [n, C] favouring the true class, every class present in the labels."""
    generator = torch.Generator().manual_seed(seed)
    target = torch.arange(n) % NUM_CLASSES
    target = target[torch.randperm(n, generator=generator)]
    logits = torch.randn(n, NUM_CLASSES, generator=generator)
    logits[torch.arange(n), target] += 1.0
    return logits, target


def regression_data(seed: int, n: int = N) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    target = 3.0 * torch.randn(n, generator=generator) + 1.0
    prediction = target + torch.randn(n, generator=generator)
    return prediction, target


def metric(kind: str, name: str) -> Metric:
    return BUILTIN_METRICS[kind][name]


# ----- binary: reference values from scikit-learn -----
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_auc_matches_sklearn(seed: int) -> None:
    logits, target = binary_data(seed)
    expected = skm.roc_auc_score(target.numpy(), logits.numpy())
    assert metric("binary", "auc")(logits, target) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_binary_auc_with_heavy_ties_matches_sklearn(seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    target = torch.randint(0, 2, (N,), generator=generator).float()
    scores = (torch.randint(0, 3, (N,), generator=generator) + target).float()  # 4 distinct values, heavy ties
    assert len(torch.unique(scores)) <= 4
    expected = skm.roc_auc_score(target.numpy(), scores.numpy())
    assert metric("binary", "auc")(scores, target) == pytest.approx(expected, abs=1e-12)


def test_binary_auc_of_constant_scores_is_one_half() -> None:
    _, target = binary_data(0)
    scores = torch.full((N,), 0.3)
    assert skm.roc_auc_score(target.numpy(), scores.numpy()) == pytest.approx(0.5)
    assert metric("binary", "auc")(scores, target) == pytest.approx(0.5, abs=1e-12)


def test_binary_auc_hand_computed() -> None:
    # positives {0.8, 0.4}, negatives {0.4, 0.1}: pairs (0.8>0.4, 0.8>0.1, 0.4=0.4 -> 1/2, 0.4>0.1) = 3.5 / 4
    scores = torch.tensor([0.8, 0.4, 0.4, 0.1])
    target = torch.tensor([1.0, 1.0, 0.0, 0.0])
    assert metric("binary", "auc")(scores, target) == pytest.approx(0.875, abs=1e-12)


@pytest.mark.parametrize("label", [0.0, 1.0])
def test_binary_auc_with_a_single_class_is_nan(label: float) -> None:
    scores = torch.randn(10, generator=torch.Generator().manual_seed(0))
    assert math.isnan(metric("binary", "auc")(scores, torch.full((10,), label)))


def test_multilabel_auc_with_a_single_class_is_nan() -> None:
    assert math.isnan(metric("multilabel", "auc")(torch.randn(5), torch.zeros(5)))


@pytest.mark.parametrize("seed", [0, 1])
def test_binary_f1_accuracy_log_loss_match_sklearn(seed: int) -> None:
    logits, target = binary_data(seed)
    y_true = target.numpy().astype(int)
    y_pred = (logits > 0).numpy().astype(int)
    probability = torch.sigmoid(logits.double()).numpy()
    assert metric("binary", "f1")(logits, target) == pytest.approx(skm.f1_score(y_true, y_pred), abs=1e-12)
    assert metric("binary", "accuracy")(logits, target) == pytest.approx(skm.accuracy_score(y_true, y_pred), abs=1e-6)
    assert metric("binary", "log_loss")(logits, target) == pytest.approx(skm.log_loss(y_true, probability), abs=1e-9)


def test_binary_f1_without_any_positive_is_zero() -> None:
    logits = torch.tensor([-1.0, -2.0, -0.5])
    target = torch.zeros(3)
    assert metric("binary", "f1")(logits, target) == 0.0


def test_binary_threshold_is_at_logit_zero() -> None:
    logits = torch.tensor([0.01, -0.01, 0.0])  # 0 is not > 0: predicted negative
    target = torch.tensor([1.0, 0.0, 0.0])
    assert metric("binary", "accuracy")(logits, target) == pytest.approx(1.0)
    assert metric("binary", "f1")(logits, target) == pytest.approx(1.0)


# ----- multi-class -----
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_multiclass_metrics_match_sklearn(seed: int) -> None:
    logits, target = multiclass_data(seed)
    y_true = target.numpy()
    y_pred = logits.argmax(dim=-1).numpy()
    probabilities = logits.softmax(dim=-1)
    assert metric("multiclass", "accuracy")(logits, target) == pytest.approx(
        skm.accuracy_score(y_true, y_pred), abs=1e-6
    )
    assert metric("multiclass", "f1")(logits, target) == pytest.approx(
        skm.f1_score(y_true, y_pred, average="macro"), abs=1e-12
    )
    expected_auc = skm.roc_auc_score(y_true, probabilities.numpy(), multi_class="ovr", average="macro")
    assert metric("multiclass", "auc")(logits, target) == pytest.approx(expected_auc, abs=1e-9)
    expected_log_loss = skm.log_loss(y_true, logits.double().softmax(dim=-1).numpy(), labels=range(NUM_CLASSES))
    assert metric("multiclass", "log_loss")(logits, target) == pytest.approx(expected_log_loss, abs=1e-9)


def test_multiclass_macro_f1_counts_classes_only_predicted() -> None:
    # class 2 is predicted but never true: it enters the macro mean with F1 0 (as in scikit-learn)
    target = torch.tensor([0, 0, 1, 1])
    logits = torch.nn.functional.one_hot(torch.tensor([0, 2, 1, 1]), 3).float()
    expected = skm.f1_score(target.numpy(), np.array([0, 2, 1, 1]), average="macro")
    assert metric("multiclass", "f1")(logits, target) == pytest.approx(expected, abs=1e-12)
    assert expected == pytest.approx((2 / 3 + 1.0 + 0.0) / 3)


def test_multiclass_auc_with_a_single_class_is_nan() -> None:
    logits = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    assert math.isnan(metric("multiclass", "auc")(logits, torch.ones(6, dtype=torch.long)))


# ----- regression -----
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_regression_metrics_match_sklearn(seed: int) -> None:
    prediction, target = regression_data(seed)
    y_true, y_pred = target.numpy().astype(np.float64), prediction.numpy().astype(np.float64)
    assert metric("regression", "mse")(prediction, target) == pytest.approx(skm.mean_squared_error(y_true, y_pred))
    assert metric("regression", "mae")(prediction, target) == pytest.approx(skm.mean_absolute_error(y_true, y_pred))
    assert metric("regression", "r2")(prediction, target) == pytest.approx(skm.r2_score(y_true, y_pred))


def test_r2_of_the_mean_predictor_is_zero_and_of_a_constant_target_is_nan() -> None:
    _, target = regression_data(0)
    assert metric("regression", "r2")(torch.full_like(target, float(target.double().mean())), target) == (
        pytest.approx(0.0, abs=1e-6)
    )
    assert math.isnan(metric("regression", "r2")(torch.randn(5), torch.full((5,), 2.0)))


def test_metric_of_no_sample_is_nan() -> None:
    for kind, table in BUILTIN_METRICS.items():
        for name, m in table.items():
            shape = (0, 3) if kind == "multiclass" else (0,)
            target = torch.zeros(0, dtype=torch.long if kind == "multiclass" else torch.float32)
            assert math.isnan(m(torch.zeros(shape), target)), (kind, name)


# ----- directions and lookup -----
EXPECTED_DIRECTIONS = {
    "binary": {"accuracy": True, "f1": True, "auc": True, "log_loss": False},
    "multiclass": {"accuracy": True, "f1": True, "auc": True, "log_loss": False},
    "multilabel": {"accuracy": True, "f1": True, "auc": True, "log_loss": False},
    "regression": {"mse": False, "mae": False, "r2": True},
}


def test_builtin_metric_directions() -> None:
    directions = {
        kind: {name: m.higher_is_better for name, m in table.items()} for kind, table in BUILTIN_METRICS.items()
    }
    assert directions == EXPECTED_DIRECTIONS


def test_default_metrics_are_builtin() -> None:
    assert set(DEFAULT_METRICS) == set(BUILTIN_METRICS)
    for kind, names in DEFAULT_METRICS.items():
        for name in names:
            assert builtin_metric(kind, name) is BUILTIN_METRICS[kind][name]


def test_builtin_metric_unknown_name_lists_allowed() -> None:
    with pytest.raises(UnknownNameError, match=r"'rmse'.*allowed: mse, mae, r2"):
        builtin_metric("regression", "rmse")


def test_builtin_metric_unknown_kind_lists_allowed() -> None:
    with pytest.raises(UnknownNameError, match=r"'ranking'.*allowed: binary, multiclass, multilabel, regression"):
        builtin_metric("ranking", "auc")


# ----- Δm% -----
DIRECTIONS = {"a": {"acc": True}, "b": {"mse": False}}


def test_delta_m_hand_computed() -> None:
    results = {"a": {"acc": 0.80}, "b": {"mse": 0.9}}
    baseline = {"a": {"acc": 0.75}, "b": {"mse": 1.0}}
    # 100 / 2 * (0.05 / 0.75 + 0.1 / 1.0)
    assert delta_m(results, baseline, DIRECTIONS) == pytest.approx(8.333333333333334, abs=1e-9)


def test_delta_m_averages_metrics_within_a_task_before_tasks() -> None:
    results = {"a": {"acc": 0.9, "f1": 0.5}, "b": {"mse": 2.0}}
    baseline = {"a": {"acc": 0.6, "f1": 0.5}, "b": {"mse": 1.0}}
    directions = {"a": {"acc": True, "f1": True}, "b": {"mse": False}}
    # task a: (0.5 + 0) / 2 = 0.25; task b: -(1.0) = -1; mean -0.375 -> -37.5
    assert delta_m(results, baseline, directions) == pytest.approx(-37.5)


def test_delta_m_of_the_baseline_itself_is_zero() -> None:
    baseline = {"a": {"acc": 0.75}, "b": {"mse": 1.0}}
    assert delta_m(baseline, baseline, DIRECTIONS) == 0.0


def test_delta_m_missing_baseline_entry_raises() -> None:
    with pytest.raises(DataError, match="b/mse"):
        delta_m({"a": {"acc": 0.8}, "b": {"mse": 0.9}}, {"a": {"acc": 0.75}}, DIRECTIONS)
    with pytest.raises(DataError, match="a/acc"):
        delta_m({"a": {"acc": 0.8}}, {"a": {"f1": 0.75}}, DIRECTIONS)


def test_delta_m_missing_direction_raises() -> None:
    with pytest.raises(DataError, match="a/f1"):
        delta_m({"a": {"f1": 0.8}}, {"a": {"f1": 0.75}}, DIRECTIONS)


@pytest.mark.parametrize("reference", [0.0, math.nan])
def test_delta_m_zero_or_nan_baseline_raises(reference: float) -> None:
    with pytest.raises(DataError, match="non-zero baseline"):
        delta_m({"b": {"mse": 0.5}}, {"b": {"mse": reference}}, DIRECTIONS)


def test_delta_m_empty_results_raise() -> None:
    with pytest.raises(DataError):
        delta_m({}, {}, {})
    with pytest.raises(DataError, match="'a'"):
        delta_m({"a": {}}, {"a": {}}, {"a": {}})


def test_relative_gain_is_signed_by_direction_and_measured_against_the_magnitude() -> None:
    assert relative_gain(0.9, 0.8, True) == pytest.approx(12.5)
    assert relative_gain(0.9, 0.8, False) == pytest.approx(-12.5)  # an error that grew: worse
    assert relative_gain(-0.5, -1.0, True) == pytest.approx(50.0)  # a negative R² that rose: better
    assert math.isnan(relative_gain(1.0, 0.0, True)) and math.isnan(relative_gain(math.nan, 1.0, True))
    # one task, one metric: delta_m is that metric's gain
    assert delta_m({"a": {"auc": 0.9}}, {"a": {"auc": 0.8}}, {"a": {"auc": True}}) == pytest.approx(12.5)
