"""Config validation: each kind of mistake is refused up front with one line naming the field and the fix."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from multitask.config import METHODS, load_config, parse_config
from multitask.errors import ConfigError

VALID: dict[str, Any] = {
    "name": "tiny",
    "data": {"type": "csv", "train": "train.csv", "numeric": ["a", "b"], "categorical": ["c"], "val_fraction": 0.2},
    "tasks": [
        {"name": "y1", "kind": "binary", "metrics": ["auc", "accuracy"]},
        {"name": "y2", "kind": "regression", "loss": "huber"},
    ],
    "strategy": {"weighting": "ew"},
    "training": {"epochs": 2, "batch_size": 16, "optimizer": {"name": "adam", "lr": 0.01}},
}


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "train.csv").write_text("a,b,c,y1,y2\n1,2,u,0,0.5\n2,3,v,1,1.5\n")
    return tmp_path


def _with(path: str, value: Any) -> dict[str, Any]:
    config = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    node: Any = config
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is _DELETE:
        del node[last]
    elif last.isdigit():
        node[int(last)] = value
    else:
        node[last] = value
    return config


_DELETE = object()


def test_a_valid_config_parses_and_resolves_paths_next_to_the_file(folder: Path) -> None:
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(VALID))
    config = load_config(path)
    assert config.data.type == "csv"
    assert config.data.train == folder / "train.csv"  # type: ignore[union-attr]
    assert [t.name for t in config.tasks] == ["y1", "y2"]
    assert config.model.encoder.hidden == [128, 64]  # defaults filled in


MISTAKES = [
    # (what is wrong, config, the one line expected)
    (
        "unknown top-level key",
        {**VALID, "trainig": {}},
        "trainig: unknown key; did you mean 'training'? (11 allowed keys: see docs/config.md)",
    ),
    ("unknown nested key", _with("training.optimizer.lrate", 0.1), "training.optimizer.lrate: unknown key; allowed"),
    ("wrong type", _with("training.epochs", "ten"), "training.epochs: Input should be a valid integer"),
    ("out of range", _with("training.optimizer.lr", -1), "training.optimizer.lr: Input should be greater than 0"),
    (
        "unknown task kind",
        _with("tasks.0.kind", "ranking"),
        "tasks[0].kind: unknown value 'ranking'; allowed: binary, multiclass, regression",
    ),
    ("unknown loss", _with("tasks.1.loss", "bce"), "tasks[1]: unknown loss 'bce' for a regression task; allowed: mse"),
    ("unknown metric", _with("tasks.0.metrics", ["r2"]), "unknown metric 'r2' for a binary task; allowed: accuracy"),
    (
        "unknown strategy",
        _with("strategy.weighting", "nash"),
        "strategy.weighting: unknown weighting 'nash'; allowed: db_mtl, dwa, ew",
    ),
    (
        "preference not summing to one",
        _with("strategy", {"weighting": "linear", "weighting_params": {"preference": [0.5, 0.4]}}),
        "strategy: weighting_params for 'linear': preference must sum to one; got [0.5, 0.4]",
    ),
    (
        "preference of the wrong length",
        _with("strategy", {"weighting": "linear", "weighting_params": {"preference": [0.2, 0.3, 0.5]}}),
        "strategy.weighting_params: preference has 3 entries but there are 2 tasks (y1, y2)",
    ),
    (
        "unknown weighting parameter",
        _with("strategy", {"weighting": "dwa", "weighting_params": {"temp": 2}}),
        "strategy: weighting_params for 'dwa': got an unexpected parameter 'temp'",
    ),
    (
        "weighting parameter of the wrong type",
        _with("strategy", {"weighting": "gradnorm", "weighting_params": {"alpha": "high"}}),
        "strategy: weighting_params for 'gradnorm': alpha must be a number >= 0; got 'high'",
    ),
    (
        "weighting parameter that is not data",
        _with("strategy", {"weighting": "dwa", "weighting_params": {"temperature": {"a": 1}}}),
        "strategy.weighting_params.temperature",
    ),
    (
        "unknown aggregation",
        _with("strategy", {"aggregation": "nashmtl"}),
        "strategy.aggregation: unknown aggregation 'nashmtl'; allowed: aligned_mtl, cagrad",
    ),
    (
        "unknown aggregation parameter",
        _with("strategy", {"aggregation": "cagrad", "aggregation_params": {"cc": 0.5}}),
        "strategy: aggregation_params for 'cagrad': got an unexpected parameter 'cc'",
    ),
    (
        "aggregation parameters without a method",
        _with("strategy", {"aggregation_params": {"c": 0.5}}),
        "strategy: aggregation_params given without aggregation",
    ),
    (
        "unknown aggregation mode",
        _with("strategy", {"aggregation": "upgrad", "aggregation_mode": "rep"}),
        "strategy.aggregation_mode: unknown value 'rep'; allowed: jacobian, gramian, representation",
    ),
    ("unknown data type", _with("data.type", "parquet"), "data.type: unknown type 'parquet'; allowed: 'census_income'"),
    ("missing required key", _with("tasks", _DELETE), "tasks: required key is missing"),
    ("missing data path", _with("data.train", "nowhere.csv"), "data.train: file not found"),
    ("duplicate task", _with("tasks.1", {"name": "y1", "kind": "binary"}), "task names must be unique"),
    ("transfer to unknown task", _with("compare", {"transfer": [["y1", "zz"]]}), "compare.transfer pair ['y1', 'zz']"),
    (
        "unknown method",
        _with("compare", {"methods": ["moe"]}),
        f"compare.methods[0]: unknown value 'moe'; did you mean 'omoe'? ({len(METHODS)} allowed: see docs/config.md)",
    ),
    (
        "unknown architecture",
        _with("model", {"type": "mixture"}),
        "model.type: unknown value 'mixture'; allowed: hard_sharing, cgc, coupled, cross_stitch, dselect_k",
    ),
    ("repeated method", _with("compare", {"methods": ["mtl", "mtl"]}), "methods must not repeat"),
    (
        "the mtl model twice",
        _with("compare", {"methods": ["mtl", "hard_sharing"]}),
        "both mtl and hard_sharing (model.type)",
    ),
    ("zero experts", _with("model", {"type": "mmoe", "num_experts": 0}), "model.num_experts: Input should be greater"),
    ("negative lambda", _with("model", {"type": "soft_sharing", "lam": -1}), "model.lam: Input should be greater than"),
    ("k above experts", _with("model", {"type": "dselect_k", "num_experts": 2, "k": 3}), "k (3) must be at most"),
    (
        "a parameter no trained architecture reads",
        _with("model", {"num_experts": 8}),
        "model.num_experts is read only by dselect_k, mmoe, omoe; the trained architectures (hard_sharing)",
    ),
    (
        "temperature without its rule",
        _with("training", {"temperature": 2.0}),
        "sampling: temperature and a temperature τ go together",
    ),
    ("temperature rule without τ", _with("training", {"sampling": "temperature"}), "a temperature τ go together"),
    ("prefetching without workers", _with("training", {"prefetch_factor": 4}), "need worker processes"),
    ("negative workers", _with("training", {"num_workers": -1}), "training.num_workers: Input should be greater"),
    (
        "per-task batch sizes on single-input data",
        _with("training", {"batch_size": {"y1": 8, "y2": 8}}),
        "training.batch_size per task needs multi-input data",
    ),
    ("more tasks per step than tasks", _with("training", {"tasks_per_step": 3}), "tasks_per_step is 3 but there are 2"),
    (
        "experts that do not fit the heads",
        _with("model", {"type": "mmoe", "expert": {"hidden": [8]}}),
        "expert must output the encoder's width (64)",
    ),
]


@pytest.mark.parametrize(("config", "expected"), [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_each_kind_of_mistake_gives_one_clear_line(folder: Path, config: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(config, base_dir=folder, source="c.yaml")
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("c.yaml: ")
    assert expected in message, message


def test_not_yaml_and_not_a_mapping(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(bad)
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "absent.yaml")


def test_configs_cannot_execute_code(tmp_path: Path) -> None:
    path = tmp_path / "evil.yaml"
    path.write_text("data: !!python/object/apply:os.system ['echo pwned > " + str(tmp_path / "pwned") + "']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(path)
    assert not (tmp_path / "pwned").exists()


def test_architectures_and_their_parameters_are_accepted(folder: Path) -> None:
    raw = _with("model", {"type": "ple", "num_levels": 3, "num_task_experts": 2, "expert": {"hidden": [32, 64]}})
    raw["compare"] = {"methods": ["stl", "mtl", "mmoe", "soft_sharing"]}
    raw["model"] |= {"num_experts": 3, "lam": 0.5}
    config = parse_config(raw, base_dir=folder)
    assert config.model.type == "ple" and config.model.num_levels == 3
    assert config.compare.methods == ["stl", "mtl", "mmoe", "soft_sharing"]


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[1] / "examples" / "configs").glob("*.yaml")), ids=str)
def test_every_example_config_is_valid(path: Path) -> None:
    if "newsgroup" in path.name and not (Path(__file__).parents[2] / "shared" / "data" / "newsgroup").is_dir():
        pytest.skip("needs ../shared/data/newsgroup")
    config = load_config(path)
    assert config.tasks and config.compare.methods
