"""`multitask.layout`: the run folder's names, shared by the writers and the readers."""

from __future__ import annotations

from pathlib import Path

from multitask.layout import STL, RunLayout, transfer_method, transfer_pair


def test_the_folders_of_a_run(tmp_path: Path) -> None:
    run = RunLayout(tmp_path)
    assert run.config == tmp_path / "config.yaml" and run.results == tmp_path / "results.csv"
    assert run.single_task("income") == tmp_path / "stl" / "income"
    assert run.method("mmoe") == tmp_path / "mmoe"
    assert run.method(transfer_method("a", "b")) == tmp_path / "transfer-a-to-b"
    assert run.seed(3).results == tmp_path / "seed-3" / "results.csv"
    assert run.negative_transfer("mtl") == tmp_path / "negative_transfer" / "mtl"
    assert run.pareto == tmp_path / "pareto"


def test_transfer_names_round_trip() -> None:
    assert transfer_method("income", "marital") == "transfer:income->marital"
    assert transfer_pair("transfer:income->marital") == ("income", "marital")
    assert transfer_pair(STL) is None and transfer_pair("transfer:income") is None
