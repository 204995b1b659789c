"""The command line end to end on a tiny CSV config: train, evaluate, resume, errors without tracebacks."""

from __future__ import annotations

import csv
import random
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from multitask.cli import main


def write_csv(path: Path, rows: int, seed: int, missing_every: int = 5) -> None:
    """A small two-task table: ``y1`` binary, ``y2`` regression with every ``missing_every``-th label missing."""
    rng = random.Random(seed)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["a", "b", "c", "y1", "y2"])
        for i in range(rows):
            a, b = rng.gauss(0, 1), rng.gauss(0, 1)
            c = rng.choice(["u", "v", "w"])
            y1 = int(a + (0.5 if c == "u" else 0) > 0)
            y2 = "" if i % missing_every == 0 else f"{2 * a - b + rng.gauss(0, 0.1):.4f}"
            writer.writerow([f"{a:.4f}", f"{b:.4f}", c, y1, y2])


def tiny_config(folder: Path, rows: tuple[int, int] = (400, 150), missing_every: int = 5) -> dict[str, Any]:
    """The tiny two-task CSV experiment: writes ``train.csv`` and ``test.csv`` in ``folder``, returns the config."""
    write_csv(folder / "train.csv", rows[0], 0, missing_every)
    write_csv(folder / "test.csv", rows[1], 1, missing_every)
    return {
        "name": "tiny",
        "data": {
            "type": "csv",
            "train": "train.csv",
            "test": "test.csv",
            "val_fraction": 0.25,
            "numeric": ["a", "b"],
            "categorical": ["c"],
        },
        "tasks": [
            {"name": "y1", "kind": "binary", "metrics": ["auc", "accuracy"]},
            {"name": "y2", "kind": "regression", "metrics": ["r2"]},
        ],
        "model": {"encoder": {"hidden": [16, 8]}},
        "training": {"epochs": 4, "batch_size": 32, "optimizer": {"lr": 0.01}, "checkpoint_every": 5},
        "compare": {"methods": ["stl", "mtl"], "transfer": [["y1", "y2"]]},
    }


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(tiny_config(tmp_path)))
    return path


def test_train_then_evaluate(config_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "run"
    assert main(["train", str(config_path), "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert "| method | y1 auc | y1 accuracy | y2 r2 | Δm% | seconds |" in printed
    assert "Δm% of mtl against single-task models" in printed
    for name in ("config.yaml", "results.csv", "results.md", "comparison.png", "mtl/model.pt", "mtl/curves.png"):
        assert (output / name).is_file(), name
    assert (output / "stl" / "y1" / "model.pt").is_file()
    assert (output / "transfer-y1-to-y2" / "finetune" / "model.pt").is_file()
    rows = list(csv.DictReader((output / "results.csv").open()))
    mtl_auc = next(
        float(r["value"]) for r in rows if r["method"] == "mtl" and r["task"] == "y1" and r["metric"] == "auc"
    )
    assert mtl_auc > 0.9  # a learnable task: the run really trained

    assert main(["evaluate", str(output)]) == 0
    evaluated = capsys.readouterr().out
    assert f"{mtl_auc:.4f}" in evaluated  # the saved best model gives the same test AUC


def test_existing_run_needs_resume_or_overwrite(
    config_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "run"
    assert main(["train", str(config_path), "--output", str(output)]) == 0
    capsys.readouterr()
    assert main(["train", str(config_path), "--output", str(output)]) == 2
    assert "already holds a run: pass --resume" in capsys.readouterr().err
    assert main(["train", str(config_path), "--output", str(output), "--resume"]) == 0
    changed = yaml.safe_load(config_path.read_text())
    changed["training"]["epochs"] = 9
    config_path.write_text(yaml.safe_dump(changed))
    capsys.readouterr()
    assert main(["train", str(config_path), "--output", str(output), "--resume"]) == 2
    assert "was trained with a different config" in capsys.readouterr().err
    assert main(["train", str(config_path), "--output", str(output), "--overwrite"]) == 0


def test_config_error_exits_nonzero_with_one_line_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"data": {"type": "census_income"}, "tasks": [{"name": "income", "kind": "binry"}]}))
    result = subprocess.run(
        [sys.executable, "-m", "multitask.cli", "train", str(bad)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert (
        "tasks[0].kind: unknown value 'binry'; did you mean 'binary'? allowed: binary, multiclass, regression"
        in lines[0]
    )


def test_help_lists_the_commands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "multitask.cli", "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    for command in ("demo", "train", "evaluate"):
        assert command in result.stdout


def test_evaluate_a_folder_that_is_not_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "is not a run folder" in capsys.readouterr().err


def test_baselines_chosen_on_the_command_line(
    config_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "run"
    assert main(["train", str(config_path), "--output", str(output), "--methods", "stl", "--transfer", "y2:y1"]) == 0
    printed = capsys.readouterr().out
    assert "| stl |" in printed and "| transfer:y2->y1 |" in printed and "| mtl |" not in printed
    assert main(["train", str(config_path), "--output", str(tmp_path / "x"), "--transfer", "y2-y1"]) == 2
    assert "--transfer takes SOURCE:TARGET" in capsys.readouterr().err


def test_evaluate_works_for_a_run_trained_from_a_relative_config_path(
    config_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(config_path.parent)
    assert main(["train", config_path.name, "--output", "out", "--methods", "mtl"]) == 0
    capsys.readouterr()
    assert main(["evaluate", "out"]) == 0  # the saved config holds absolute data paths
    assert "| mtl |" in capsys.readouterr().out


def test_a_config_can_choose_a_gradient_aggregation(
    config_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = yaml.safe_load(config_path.read_text())
    config["strategy"] = {"aggregation": "upgrad"}
    config["compare"] = {"methods": ["mtl"]}
    config_path.write_text(yaml.safe_dump(config))
    output = tmp_path / "run"
    assert main(["train", str(config_path), "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    # what mtl meant, under the table and in results.md; without a terminal one line per finished model
    assert "- `mtl`: hard_sharing · weighting ew · aggregation upgrad" in printed
    assert "- `mtl`: hard_sharing · weighting ew · aggregation upgrad" in (output / "results.md").read_text()
    assert re.search(r"^✓ mtl \(1/1\)  4 epochs  [\d.]+ s  val ", printed, flags=re.M)
    rows = list(csv.DictReader((output / "results.csv").open()))
    auc = next(float(r["value"]) for r in rows if r["task"] == "y1" and r["metric"] == "auc")
    assert auc > 0.9  # trained through the aggregation path


def test_version_is_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    with pytest.raises(SystemExit) as stopped:
        main(["--version"])
    assert stopped.value.code == 0
    assert capsys.readouterr().out.strip() == f"multitask {version('multitask')}"


def test_every_option_of_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("demo", "train", "evaluate", "report", "bench"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        lines = capsys.readouterr().out.splitlines()
        # argparse prints an option without help alone on its line, with nothing indented below it
        alone = [
            line
            for line, below in zip(lines, [*lines[1:], ""], strict=True)
            if re.fullmatch(r"  --?[\w-]+( [A-Z_{},\w.]+)?", line) and not below.startswith("      ")
        ]
        assert alone == [], f"{command}: options without help: {alone}"


def test_mtl_alone_says_that_delta_m_needs_stl(
    config_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", str(config_path), "--output", str(tmp_path / "run"), "--methods", "mtl"]) == 0
    printed = capsys.readouterr().out
    assert "nan" not in printed
    assert "Δm% needs the single-task models: add stl to compare.methods" in printed


def test_a_binary_target_that_is_not_binary_names_the_file_and_the_config_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tiny_config(tmp_path)
    config["tasks"][0]["column"] = "c"  # three strings: u, v, w
    config["data"]["categorical"] = []
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    assert main(["train", str(path), "--output", str(tmp_path / "run")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("multitask: error: tasks[0] (y1): train.csv: binary target 'y1' (column 'c')")
    assert "got 3: ['u', 'v', 'w']; set tasks[0].positive to the value that means 1" in line


def test_python_dash_m_runs_bench(tmp_path: Path) -> None:
    # `python -m multitask.cli` ran main() before the later commands were defined (bench: NameError)
    missing = tmp_path / "missing"
    result = subprocess.run(
        [sys.executable, "-m", "multitask.cli", "bench", str(missing)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2, result.stderr[-500:]
    assert result.stderr.startswith("multitask: error:") and "Traceback" not in result.stderr
