"""``multitask train CONFIG --nproc 2`` (torchrun, gloo) writes the report one process writes, with the same numbers."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from multitask.cli import main
from multitask.training.distributed import torchrun_command
from test_cli import tiny_config


def _metrics(run_dir: Path) -> dict[tuple[str, str, str], float]:
    rows = csv.DictReader((run_dir / "results.csv").open())
    return {(r["method"], r["task"], r["metric"]): float(r["value"]) for r in rows}


def test_torchrun_command_runs_the_module_in_n_local_processes() -> None:
    command = torchrun_command(["-m", "multitask.cli", "train", "c.yaml"], 4)
    assert command[:3] == [sys.executable, "-m", "torch.distributed.run"]
    assert "--standalone" in command and "--nproc-per-node=4" in command
    assert command[-4:] == ["-m", "multitask.cli", "train", "c.yaml"]


def test_nproc_must_be_positive(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", str(tmp_path / "missing.yaml"), "--nproc", "0"]) == 2
    assert "--nproc must be a positive integer; got 0" in capsys.readouterr().err


@pytest.mark.slow
def test_two_processes_write_the_report_of_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tiny_config(tmp_path, rows=(300, 120), missing_every=4) | {
        "strategy": {"weighting": "uw", "aggregation": "mgda"},
        "training": {"epochs": 3, "batch_size": 25, "optimizer": {"lr": 0.01}, "checkpoint_every": 4},
        "compare": {"methods": ["stl", "mtl"]},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))

    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["train", str(path), "--output", str(one)]) == 0
    capsys.readouterr()
    command = [sys.executable, "-m", "multitask.cli", "train", str(path), "--output", str(two), "--nproc", "2"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("| method |") == 1  # rank 0 reports, once
    for name in ("results.csv", "comparison.png", "mtl/model.pt", "mtl/metrics.csv", "stl/y1/model.pt"):
        assert (two / name).is_file(), name
    expected, actual = _metrics(one), _metrics(two)
    assert expected.keys() == actual.keys()
    for key, value in expected.items():
        assert actual[key] == pytest.approx(value, abs=1e-5), key
