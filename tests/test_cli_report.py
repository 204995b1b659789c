"""`multitask report RUN_DIR`: writes the HTML page, honours --output, one-line errors with status 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from multitask.cli import main


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    history = [
        {"epoch": e, "train/a/loss": 1.0 / (e + 1), "train/b/loss": 2.0 / (e + 1), "val/a/auc": 0.6 + 0.1 * e}
        | {"val/b/mse": 1.5 - 0.2 * e, "weight/a": 1.0, "weight/b": 1.0}
        for e in range(3)
    ]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in history))
    return tmp_path


def test_report_writes_the_page_into_the_run_folder(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(run_dir)]) == 0
    page = run_dir / "report.html"
    assert page.is_file()
    assert f"report written to {page}" in capsys.readouterr().out
    text = page.read_text()
    assert "Training runs" in text and "data:image/png;base64," in text
    assert "Validation metrics after epoch 3" in text


def test_report_output_option(run_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "page.html"
    assert main(["report", str(run_dir), "--output", str(target)]) == 0
    assert target.is_file() and not (run_dir / "report.html").exists()


@pytest.mark.parametrize("folder", ["missing", "empty"])
def test_bad_folders_fail_with_one_line_and_status_2(
    folder: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / folder)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("multitask: error: ") and error.count("\n") == 1
    assert "not a folder" in error or "nothing to report" in error


def test_report_shows_the_results_first_and_the_config_collapsed_last(run_dir: Path) -> None:
    from multitask.analysis import Comparison

    (run_dir / "config.yaml").write_text("name: cli-report\n" + "".join(f"option_{i}: {i}\n" for i in range(100)))
    seeds = [
        Comparison({m: {"a": {"auc": 0.9 + d + s}} for m, d in (("stl", 0.0), ("mtl", 0.01))}, {"a": {"auc": True}})
        for s in (0.0, 0.02)
    ]
    mean = Comparison.mean(seeds)
    mean.descriptions = {"mtl": "hard_sharing · weighting ew"}
    mean.write(run_dir)
    assert main(["report", str(run_dir)]) == 0
    page = (run_dir / "report.html").read_text()
    order = [page.index(f'<section id="{s}">') for s in ("results", "chart", "runs", "config")]
    assert order == sorted(order)
    assert page.index("<h1>cli-report</h1>") < order[0]
    results = page[order[0] : order[1]]
    assert "a auc ↑" in results and "± 0.0141" in results and "<dd>hard_sharing · weighting ew</dd>" in results
    assert "bar charts</a> are below." in results  # no verdicts in this folder: none is promised
    assert "<details><summary>config.yaml: the run's full configuration (101 lines" in page[order[3] :]
    assert "option_99: 99" in page[order[3] :]  # all of it, collapsed
