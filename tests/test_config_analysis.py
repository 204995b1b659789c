"""The config's ``analysis`` section: monitors on the multi-task runs and the HTML report at the end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from multitask.cli import main
from multitask.config import load_config
from multitask.errors import ConfigError
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
