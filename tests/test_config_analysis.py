"""The config's ``analysis`` section: monitors on the multi-task runs and the HTML report at the end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from multitask.cli import main
from multitask.config import load_config
from multitask.errors import ConfigError
from multitask.experiment import evaluate_run
from test_cli import config_path  # noqa: F401  (the fixture: a small CSV experiment)


def test_monitors_record_on_the_multitask_run_and_the_run_ends_with_a_report(
    config_path: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    config = yaml.safe_load(config_path.read_text())
    config["analysis"] = {"conflict_every": 2, "affinity_every": 3, "affinity_lr": 0.01}
    config["training"] = {**config.get("training", {}), "epochs": 1}
    config_path.write_text(yaml.safe_dump(config))
    output = tmp_path / "run"
    assert main(["train", str(config_path), "--output", str(output)]) == 0
    records = [json.loads(line) for line in (output / "mtl" / "conflict.jsonl").read_text().splitlines()]
    assert records and all(record["step"] % 2 == 0 for record in records)
    affinity = json.loads((output / "mtl" / "affinity.json").read_text())
    assert affinity  # TAG's look-ahead affinity of the joint run
    assert not any((output / "stl").rglob("conflict.jsonl"))  # single-task runs have nothing to compare
    assert (output / "report.html").stat().st_size > 0


def test_analysis_keys_are_checked(config_path: Path) -> None:  # noqa: F811
    config = yaml.safe_load(config_path.read_text())
    config["analysis"] = {"affinity_lr": 0.1}
    config_path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match="affinity_lr is read only with affinity_every"):
        load_config(config_path)
    config["analysis"] = {"conflict_every": 0}
    config_path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=r"analysis\.conflict_every"):
        load_config(config_path)


def _edit(path: Path, **sections: object) -> None:
    config = yaml.safe_load(path.read_text())
    config.update(sections)
    config["training"] = {**config["training"], "epochs": 2}
    config["compare"] = {"methods": ["stl", "mtl"]}
    path.write_text(yaml.safe_dump(config))


def test_seeds_repeat_every_method_and_judge_negative_transfer_per_task(
    config_path: Path,  # noqa: F811
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _edit(config_path, analysis={"confidence": 0.9})
    output = tmp_path / "run"
    assert main(["train", str(config_path), "--output", str(output), "--seeds", "3", "5"]) == 0
    per_seed = [_results(output / f"seed-{seed}" / "results.csv") for seed in (3, 5)]
    mean = _results(output / "results.csv")
    for key in (("mtl", "y1", "auc"), ("stl", "y2", "r2")):  # the top-level results are the means over the seeds
        assert mean[key] == pytest.approx((per_seed[0][key] + per_seed[1][key]) / 2)
    verdicts = json.loads((output / "negative_transfer" / "mtl" / "negative_transfer.json").read_text())
    assert verdicts["confidence"] == 0.9 and len(verdicts["delta_m"]) == 2
    by_task = {v["task"]: v for v in verdicts["verdicts"]}
    assert set(by_task) == {"y1", "y2"}
    for seed_index, results in enumerate(per_seed):  # the verdicts pair each seed's STL and MTL values
        assert by_task["y1"]["stl"][seed_index] == pytest.approx(results[("stl", "y1", "auc")])
        assert by_task["y1"]["mtl"][seed_index] == pytest.approx(results[("mtl", "y1", "auc")])
    assert all(v["verdict"] in ("helps", "hurts", "no evidence") for v in by_task.values())
    printed = capsys.readouterr().out
    assert "means over seeds 3, 5" in printed and "Negative transfer of mtl" in printed
    again = evaluate_run(output)  # the saved models of both seeds, evaluated again and averaged
    assert again.results["mtl"]["y1"]["auc"] == pytest.approx(mean[("mtl", "y1", "auc")])
    assert "Negative transfer" in (output / "report.html").read_text()


def _results(path: Path) -> dict[tuple[str, str, str], float]:
    import csv

    with path.open() as handle:
        return {(r["method"], r["task"], r["metric"]): float(r["value"]) for r in csv.DictReader(handle)}


def _write_factor_csv(path: Path, rows: int, seed: int) -> None:
    """Tasks a0, a1 read the factor x0 + x1, tasks b0, b1 the factor x2 − x3 (x4..x7 are noise features)."""
    import csv
    import random

    rng = random.Random(seed)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([f"x{i}" for i in range(8)] + ["a0", "a1", "b0", "b1"])
        for _ in range(rows):
            x = [rng.gauss(0, 1) for _ in range(8)]
            u, v = x[0] + x[1], x[2] - x[3]
            targets = [u, 0.8 * u, v, 1.2 * v]
            writer.writerow([f"{z:.4f}" for z in x] + [f"{t + rng.gauss(0, 0.3):.4f}" for t in targets])


def _factor_config(tmp_path: Path, metric: str, **sections: object) -> Path:
    """A config of the four factor tasks (`_write_factor_csv`), with ``sections`` replacing its own."""
    _write_factor_csv(tmp_path / "train.csv", 300, 0)
    _write_factor_csv(tmp_path / "test.csv", 150, 1)
    config = {
        "data": {"type": "csv", "train": "train.csv", "test": "test.csv", "numeric": [f"x{i}" for i in range(8)]},
        "tasks": [{"name": name, "kind": "regression", "metrics": [metric]} for name in ("a0", "a1", "b0", "b1")],
        "model": {"encoder": {"hidden": [8]}},
        "training": {"epochs": 3, "batch_size": 32, "optimizer": {"lr": 0.01}},
    } | sections
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    return tmp_path / "config.yaml"


def test_groups_from_the_lookahead_affinity_are_trained_and_compared(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    analysis = {"affinity_every": 2, "groups": {"num_groups": 2}, "report": False}
    output = tmp_path / "run"
    assert main(["train", str(_factor_config(tmp_path, "mse", analysis=analysis)), "--output", str(output)]) == 0
    grouping = json.loads((output / "groups" / "grouping.json").read_text())
    assert sorted(map(sorted, grouping["groups"])) == [["a0", "a1"], ["b0", "b1"]]  # the two latent factors
    results = _results(output / "results.csv")
    for task in ("a0", "b1"):  # the groups' row holds what the group models measured on the test split
        assert results[("groups", task, "mse")] == pytest.approx(
            _results(output / "groups" / "results.csv")[("groups", task, "mse")]
        )
    assert ("groups", "*", "delta_m_percent") in results
    again = evaluate_run(output)  # the group models are found again and report the tasks they serve
    assert again.results["groups"]["b0"]["mse"] == pytest.approx(results[("groups", "b0", "mse")])
    assert "task groups trained (method groups): {a0, a1} | {b0, b1}" in capsys.readouterr().out


def test_a_pareto_sweep_after_the_runs_puts_the_compared_methods_on_the_front(
    config_path: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    _edit(config_path, analysis={"pareto": {"methods": ["linear"], "resolution": 3, "metric": {"y2": "r2"}}})
    output = tmp_path / "run"
    assert main(["train", str(config_path), "--output", str(output)]) == 0
    front = json.loads((output / "pareto" / "pareto.json").read_text())
    assert [p["preference"] for p in front["points"]] == [pytest.approx([1 / 3, 2 / 3]), pytest.approx([2 / 3, 1 / 3])]
    results = _results(output / "results.csv")
    assert front["others"]["stl"] == {"y1": results[("stl", "y1", "auc")], "y2": results[("stl", "y2", "r2")]}
    assert set(front["others"]) == {"stl", "mtl"}
    assert "Trade-off" in (output / "report.html").read_text()


@pytest.mark.parametrize(
    ("analysis", "methods", "message"),
    [
        ({"seeds": [1]}, ["stl", "mtl"], r"analysis\.seeds"),
        ({"seeds": [1, 1]}, ["stl", "mtl"], "seeds must not repeat"),
        ({"seeds": [0, 1]}, ["mtl"], "needs stl and at least one multi-task method"),
        ({"groups": {"num_groups": 2}}, ["stl", "mtl"], "set affinity_every"),
        ({"groups": {"num_groups": 3, "source": "pairwise"}}, ["stl", "mtl"], "num_groups must be from 1 to"),
        ({"pareto": {"metric": {"nope": "auc"}}}, ["stl", "mtl"], "unknown task"),
        ({"pareto": {"methods": ["mgda"]}}, ["stl", "mtl"], r"analysis\.pareto\.methods"),
        ({"affinity_every": 2}, ["stl"], "trains none"),
    ],
)
def test_bad_analysis_settings_are_refused_before_training(
    config_path: Path,  # noqa: F811
    analysis: dict[str, object],
    methods: list[str],
    message: str,
) -> None:
    config = yaml.safe_load(config_path.read_text())
    config["analysis"] = analysis
    config["compare"] = {"methods": methods}
    config_path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=message):
        load_config(config_path)


def test_a_linear_model_joins_the_comparison_with_its_selected_features_and_task_clusters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _factor_config(
        tmp_path,
        "r2",
        compare={"methods": ["stl", "linear"]},
        linear={"penalty": "l21", "params": {"alpha": 0.1}, "clusters": 2},
        training={"epochs": 1},
        analysis={"report": False},
    )
    output = tmp_path / "run"
    assert main(["train", str(path), "--output", str(output)]) == 0
    saved = json.loads((output / "linear" / "linear.json").read_text())
    assert sorted(saved["selection"]["selected"]) == ["x0", "x1", "x2", "x3"]  # the two factors' features only
    assert saved["clusters"]["a0"] == saved["clusters"]["a1"] != saved["clusters"]["b0"] == saved["clusters"]["b1"]
    results = _results(output / "results.csv")
    assert all(results[("linear", task, "r2")] > 0.8 for task in ("a0", "a1", "b0", "b1"))  # noise σ = 0.3
    assert "| linear |" in capsys.readouterr().out
    again = evaluate_run(output)
    assert again.results["linear"]["b1"]["r2"] == pytest.approx(results[("linear", "b1", "r2")])


def test_the_config_offers_the_linear_penalties_fit_linear_accepts() -> None:
    from typing import get_args

    from multitask.analysis import LINEAR_PENALTIES
    from multitask.config import LinearPenalty

    assert set(get_args(LinearPenalty)) == set(LINEAR_PENALTIES)


def test_linear_settings_are_checked(config_path: Path) -> None:  # noqa: F811
    config = yaml.safe_load(config_path.read_text())
    config["compare"] = {"methods": ["stl", "linear"]}
    config_path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match="every task regression or every task binary"):
        load_config(config_path)  # y1 is binary, y2 regression
    config["compare"] = {"methods": ["stl", "mtl"]}
    config["linear"] = {"penalty": "l21"}
    config_path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=r"read only when compare\.methods has linear"):
        load_config(config_path)
    config["compare"] = {"methods": ["stl", "linear"]}
    config["linear"] = {"penalty": "ridge"}
    config_path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=r"linear\.penalty"):
        load_config(config_path)


def test_groups_from_pair_trainings(config_path: Path, tmp_path: Path) -> None:  # noqa: F811
    _edit(config_path, analysis={"groups": {"num_groups": 1, "source": "pairwise"}, "report": False})
    output = tmp_path / "run"
    assert main(["train", str(config_path), "--output", str(output)]) == 0
    affinity = json.loads((output / "groups" / "affinity.json").read_text())
    assert affinity["kind"] == "pairwise" and affinity["samples"] == 1  # one pair: y1 with y2
    assert json.loads((output / "groups" / "grouping.json").read_text())["groups"] == [["y1", "y2"]]
    assert ("groups", "y1", "auc") in _results(output / "results.csv")
