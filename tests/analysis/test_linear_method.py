"""The ``linear`` method: fit_linear recovers planted structure, evaluates like the Trainer, saves, reports."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from multitask import Task
from multitask.analysis import LINEAR_ESTIMATORS, LINEAR_PENALTIES, LinearRun, build_report, fit_linear
from multitask.data import ArrayDataset
from multitask.errors import ConfigError, DataError, UnknownNameError

SUPPORT = [3, 11, 17, 25, 38]  # the 5 of 40 features every task uses


def _regression(n: int = 400, seed: int = 0) -> ArrayDataset:
    """4 regression tasks sharing the features SUPPORT (weights ±[1, 2]), noise σ = 0.5; t0 misses 50 labels."""
    generator = np.random.default_rng(seed)
    x = generator.standard_normal((n, 40))
    weights = np.zeros((40, 4))
    weights[SUPPORT] = generator.uniform(1, 2, size=(5, 4)) * generator.choice([-1, 1], size=(5, 4))
    y = torch.tensor(x @ weights + 0.5 * generator.standard_normal((n, 4)), dtype=torch.float32)
    y[:50, 0] = math.nan
    return ArrayDataset(x=torch.tensor(x, dtype=torch.float32), **{f"t{t}": y[:, t] for t in range(4)})


def _tasks(names: list[str], kind: str = "regression") -> list[Task]:
    return [Task(name, nn.Identity(), kind) for name in names]  # type: ignore[arg-type]


REG_TASKS = _tasks(["t0", "t1", "t2", "t3"])
FEATURES = [f"f{j}" for j in range(40)]


@pytest.fixture(scope="module")
def l21_run() -> LinearRun:
    data = _regression()
    train, test = data.subset(torch.arange(200)), data.subset(torch.arange(200, 400))
    return fit_linear("l21", REG_TASKS, train, test, params={"alpha": 0.2}, feature_names=FEATURES)


def test_l21_selects_exactly_the_shared_features_and_predicts_well(l21_run: LinearRun) -> None:
    assert l21_run.estimator == "LeastSquaresL21" and l21_run.kind == "regression"
    assert sorted(l21_run.selection.selected) == sorted(f"f{j}" for j in SUPPORT)
    for features in l21_run.selection.per_task.values():
        assert sorted(features) == sorted(f"f{j}" for j in SUPPORT)
    assert np.asarray(l21_run.coef).shape == (4, 40) and len(l21_run.intercept) == 4
    # noise variance 0.25 against a signal variance of about 5 * 2.3: R² ≈ 0.98 at best
    for task in REG_TASKS:
        assert l21_run.test[task.name]["r2"] > 0.95
        assert l21_run.test[task.name]["mse"] < 0.4
    assert l21_run.fitted["n_iter_"] >= 1 and l21_run.seconds > 0


def test_missing_labels_are_left_out_of_the_fit() -> None:
    data = _regression()
    corrupted = dict(data.columns)
    corrupted["t1"] = data.columns["t1"].clone()
    corrupted["t1"][:100] = math.nan
    dirty = dict(corrupted)
    dirty["t1"] = corrupted["t1"].clone()
    dirty["t1"][:100] = 1e6  # would wreck the fit if these rows were used
    clean = fit_linear("l21", REG_TASKS, ArrayDataset(**corrupted), params={"alpha": 0.2})
    mask = torch.ones(400, dtype=torch.bool)
    mask[:100] = False
    masked_tasks = [*REG_TASKS[:1], Task("t1", nn.Identity(), "regression", mask_key="m"), *REG_TASKS[2:]]
    explicit = fit_linear("l21", masked_tasks, ArrayDataset(**dirty, m=mask), params={"alpha": 0.2})
    np.testing.assert_allclose(explicit.coef, clean.coef, atol=1e-6)


def test_evaluate_on_the_saved_run_reproduces_the_test_metrics(l21_run: LinearRun, tmp_path: Path) -> None:
    l21_run.write(tmp_path)
    again = LinearRun.read(tmp_path)
    test = _regression().subset(torch.arange(200, 400))
    assert again.evaluate(test, REG_TASKS) == l21_run.test
    # and by hand: MSE of x·w + b on the labelled rows
    x, y = test.columns["x"].double().numpy(), test.columns["t1"].double().numpy()
    by_hand = np.mean((x @ np.asarray(again.coef[1]) + again.intercept[1] - y) ** 2)
    assert again.test["t1"]["mse"] == pytest.approx(by_hand, rel=1e-9)


def test_write_and_read_round_trip_non_finite_numbers(l21_run: LinearRun, tmp_path: Path) -> None:
    run = dataclasses.replace(
        l21_run,
        test={"t0": {"r2": math.nan, "mse": math.inf}, "t1": {"r2": -math.inf, "mse": 0.5}},
        fitted={"n_iter_": 3.0, "dual_gap_": math.nan},
    )
    path = run.write(tmp_path)
    assert path.name == "linear.json" and (tmp_path / "linear.png").stat().st_size > 1000
    json.loads(path.read_text(), parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}"))
    back = LinearRun.read(path)
    assert math.isnan(back.test["t0"]["r2"]) and back.test["t0"]["mse"] == math.inf
    assert back.test["t1"] == {"r2": -math.inf, "mse": 0.5}
    assert math.isnan(back.fitted["dual_gap_"])
    assert back.coef == run.coef and back.intercept == run.intercept and back.selection == run.selection
    assert back.params == {"alpha": 0.2} and back.feature_names == FEATURES and back.clusters is None


def test_a_broken_file_raises_a_data_error(tmp_path: Path) -> None:
    (tmp_path / "linear.json").write_text('{"penalty": "l21"}')
    with pytest.raises(DataError, match="cannot read a linear model"):
        LinearRun.read(tmp_path)


def test_binary_tasks_get_a_logistic_model_with_a_high_auc() -> None:
    generator = np.random.default_rng(1)
    x = generator.standard_normal((600, 20))
    weights = np.zeros((20, 3))
    weights[[0, 5, 9]] = generator.uniform(1, 2, size=(3, 3))
    labels = (x @ weights + 0.5 * generator.standard_normal((600, 3)) > 0).astype(np.float32)
    labels[:40, 1] = np.nan  # missing binary labels
    data = ArrayDataset(x=torch.tensor(x), **{f"b{t}": torch.tensor(labels[:, t]) for t in range(3)})
    tasks = _tasks(["b0", "b1", "b2"], "binary")
    run = fit_linear("l21", tasks, data.subset(torch.arange(300)), data.subset(torch.arange(300, 600)))
    assert run.estimator == "LogisticL21" and run.kind == "binary"
    assert {"x0", "x5", "x9"} <= set(run.selection.selected)
    for task in tasks:  # a Bayes-optimal AUC is about 0.98 here; chance is 0.5
        assert run.test[task.name]["auc"] > 0.9
        assert set(run.test[task.name]) == {"auc", "accuracy", "f1", "log_loss"}


def test_clustered_model_recovers_two_planted_groups() -> None:
    generator = np.random.default_rng(1)
    x = generator.standard_normal((300, 8))
    centres = 2.0 * generator.standard_normal((2, 8))
    weights = np.stack([centres[0]] * 3 + [centres[1]] * 3) + 0.1 * generator.standard_normal((6, 8))
    y = x @ weights.T + 0.1 * generator.standard_normal((300, 6))
    names = ["p0", "q0", "p1", "q1", "p2", "q2"]  # interleaved so that the order gives nothing away
    order = [0, 3, 1, 4, 2, 5]
    data = ArrayDataset(
        x=torch.tensor(x), **{name: torch.tensor(y[:, j]) for name, j in zip(names, order, strict=True)}
    )
    run = fit_linear("clustered", _tasks(names), data, params={"alpha": 1.0, "beta": 0.01}, num_clusters=2)
    assert run.estimator == "LeastSquaresClustered" and run.clusters is not None
    assert {name[0]: {run.clusters[n] for n in names if n[0] == name[0]} for name in names} == {"p": {0}, "q": {1}}
    default = fit_linear("clustered", _tasks(names), data, params={"alpha": 1.0, "beta": 0.01})
    assert default.clusters == run.clusters  # n_clusters defaults to 2
    assert fit_linear("l21", _tasks(names), data).clusters is None


def test_every_penalty_has_a_regression_and_a_logistic_estimator() -> None:
    assert tuple(LINEAR_ESTIMATORS) == LINEAR_PENALTIES
    assert {"lasso", "l21", "trace", "clustered", "dirty", "mean", "graph", "robust"} <= set(LINEAR_PENALTIES)
    for regression, binary in LINEAR_ESTIMATORS.values():
        assert regression.__name__.startswith("LeastSquares") and binary.__name__.startswith("Logistic")
        assert regression.__name__.removeprefix("LeastSquares") == binary.__name__.removeprefix("Logistic")


# ----- errors, all raised before any fit -----
def _data() -> ArrayDataset:
    return _regression(100)


@pytest.mark.parametrize(
    ("penalty", "params", "error", "message"),
    [
        ("ridge", None, UnknownNameError, "unknown linear penalty 'ridge'; allowed: lasso, l21, trace"),
        ("l21", {"alpah": 0.1}, ConfigError, r"unknown parameter\(s\) \['alpah'\] for LeastSquaresL21; allowed: alpha"),
        ("l21", {"alpha": -1.0}, ConfigError, "LeastSquaresL21: alpha must be a finite number >= 0; got -1.0"),
        ("clustered", {"beta": 0.0}, ConfigError, "beta must be > 0"),
        ("l21", {"max_iter": 0}, ConfigError, "max_iter must be an integer >= 1"),
        ("l21", {"alpha": object()}, ConfigError, "numbers, strings, lists or None"),
        ("graph", {"graph": [[1.0, -1.0]]}, ConfigError, "graph must be a finite"),  # 1 edge row for 4 tasks
    ],
)
def test_bad_penalty_or_params(
    penalty: str, params: dict[str, object] | None, error: type[Exception], message: str, tmp_path: Path
) -> None:
    with pytest.raises(error, match=message):
        fit_linear(penalty, REG_TASKS, _data(), params=params, run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_tasks_the_linear_models_cannot_fit() -> None:
    data = ArrayDataset(**_data().columns, c=torch.zeros(100, dtype=torch.long), b=torch.zeros(100))
    with pytest.raises(ConfigError, match="task 'c' is multiclass; linear models take binary or regression"):
        fit_linear("l21", [*REG_TASKS, Task("c", nn.Linear(1, 3), "multiclass")], data)
    with pytest.raises(ConfigError, match=r"mix kinds: \{'binary': \['b'\], 'regression': \['t0'"):
        fit_linear("l21", [*REG_TASKS, Task("b", nn.Identity(), "binary")], data)
    with pytest.raises(DataError, match="binary labels must be 0 or 1"):
        fit_linear("l21", _tasks(["t0"], "binary"), data)
    with pytest.raises(DataError, match="all of one class"):
        fit_linear("l21", _tasks(["b"], "binary"), data)
    with pytest.raises(ConfigError, match="num_clusters must be an integer from 1 to the number of tasks"):
        fit_linear("l21", REG_TASKS, data, num_clusters=5)


def test_data_the_linear_models_cannot_use() -> None:
    columns = _data().columns
    with pytest.raises(DataError, match=r"no feature column 'features'; columns: \['t0'"):
        fit_linear("l21", REG_TASKS, _data(), input_key="features")
    with pytest.raises(DataError, match=r"must be features \[n, d\]; got shape \(100, 8, 5\)"):
        fit_linear("l21", REG_TASKS, ArrayDataset(**{**columns, "x": torch.zeros(100, 8, 5)}))
    with pytest.raises(DataError, match="no column 't3' for its labels"):
        fit_linear("l21", REG_TASKS, ArrayDataset(**{k: v for k, v in columns.items() if k != "t3"}))
    with pytest.raises(DataError, match="one dataset per task"):
        fit_linear("l21", REG_TASKS, {t.name: _data() for t in REG_TASKS})
    with pytest.raises(DataError, match="test column 'x' has 39 features; training has 40"):
        fit_linear("l21", REG_TASKS, _data(), ArrayDataset(**{**columns, "x": columns["x"][:, :39]}))
    with pytest.raises(DataError, match="3 feature names for 40 features"):
        fit_linear("l21", REG_TASKS, _data(), feature_names=["a", "b", "c"])


# ----- the report section -----
def test_the_report_shows_the_linear_model(l21_run: LinearRun, tmp_path: Path) -> None:
    clustered = dataclasses.replace(l21_run, clusters={"t0": 0, "t1": 1, "t2": 0, "t3": 1})
    clustered.write(tmp_path / "linear")
    page = build_report(tmp_path).read_text()
    section = re.search(r'<section id="linear"><h2>Linear model</h2>(.*?)</section>', page, flags=re.S)
    assert section is not None
    text = section.group(1)
    assert "<h3><code>linear/</code></h3>" in text and "LeastSquaresL21" in text and "alpha=0.2" in text
    assert "5 of 40 features selected" in text
    r2 = f"{l21_run.test['t2']['r2']:.4f}"
    assert re.search(rf"<tr><td>t2</td>(<td>[^<]*</td>)*<td>{r2}</td>", text)  # the per-task metric table
    norm = f"{max(l21_run.selection.row_norms):.4g}"
    assert f"<tr><td>{l21_run.selection.selected[0]}</td><td>{norm}</td></tr>" in text  # largest row first
    assert "<tr><td>t3</td><td>5</td>" in text  # per task: 5 features
    assert "<tr><td>0</td><td>t0, t2</td></tr><tr><td>1</td><td>t1, t3</td></tr>" in text  # the clusters
    assert text.count('src="data:image/png;base64,') == 1
    assert "Files that could not be read" not in page


def test_a_broken_linear_file_is_reported_on_the_page(tmp_path: Path) -> None:
    (tmp_path / "linear").mkdir()
    (tmp_path / "linear" / "linear.json").write_text("{broken")
    page = build_report(tmp_path).read_text()
    assert "Files that could not be read" in page and "linear/linear.json" in page
    assert 'id="linear"' not in page


# ----- the example of docs/analysis.md -----
def test_the_docs_example_prints_what_the_page_says(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    page = (Path(__file__).resolve().parents[2] / "docs" / "analysis.md").read_text()
    section = page.split("### Linear models from a config", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```py\n(.*?)```", section, flags=re.S)
    printed = re.search(r"```text\n(.*?)```", section, flags=re.S)
    assert code is not None and printed is not None
    monkeypatch.chdir(tmp_path)
    exec(compile(code.group(1), "docs/analysis.md", "exec"), {"__name__": "__example__"})  # our own docs
    assert capsys.readouterr().out == printed.group(1)
    assert (tmp_path / "runs/linear/linear.json").is_file() and (tmp_path / "runs/linear/report.html").is_file()
