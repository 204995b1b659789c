"""`multitask.layout`: the run folder's names, shared by the writers and the readers."""

from __future__ import annotations

from pathlib import Path

from multitask.layout import (
    CHECKPOINTS_DIR,
    METRICS_FILE,
    RESULTS_FILE,
    SEARCH_DEPTH,
    STL,
    TENSORBOARD_DIR,
    RunLayout,
    transfer_method,
    transfer_pair,
)


def test_the_folders_of_a_run(tmp_path: Path) -> None:
    run = RunLayout(tmp_path)
    assert run.config == tmp_path / "config.yaml" and run.results == tmp_path / "results.csv"
    assert run.single_task("income") == tmp_path / "stl" / "income"
    assert run.method("mmoe") == tmp_path / "mmoe"
    assert run.method(transfer_method("a", "b")) == tmp_path / "transfer-a-to-b"
    assert run.seed(3).results == tmp_path / "seed-3" / "results.csv"
    assert run.negative_transfer("mtl") == tmp_path / "negative_transfer" / "mtl"
    assert run.pareto == tmp_path / "pareto"
    assert run.pareto_front == tmp_path / "pareto" / "pareto.json"
    assert run.pareto_plot == tmp_path / "pareto" / "pareto.png"
    assert run.grouping == tmp_path / "groups" / "grouping.json"
    assert run.seed(0).grouping == tmp_path / "seed-0" / "groups" / "grouping.json"


def test_transfer_names_round_trip() -> None:
    assert transfer_method("income", "marital") == "transfer:income->marital"
    assert transfer_pair("transfer:income->marital") == ("income", "marital")
    assert transfer_pair(STL) is None and transfer_pair("transfer:income") is None


def test_seeds_lists_the_seed_folders_in_numeric_order(tmp_path: Path) -> None:
    run = RunLayout(tmp_path)
    assert run.seeds() == [] and RunLayout(tmp_path / "missing").seeds() == []
    for seed in (10, 2, 0, -1):
        run.seed(seed).root.mkdir()
    for other in ("seed-x", "seed-", "seed-03", "seed-+4", "seeds-5", "stl"):
        (tmp_path / other).mkdir()
    (tmp_path / "seed-7").write_text("a file, not a seed's folder")
    assert run.seeds() == [-1, 0, 2, 10]
    assert [run.seed(seed).root for seed in run.seeds()][-1] == tmp_path / "seed-10"


def test_judged_methods_lists_the_negative_transfer_folders(tmp_path: Path) -> None:
    run = RunLayout(tmp_path)
    assert run.judged_methods() == []
    for method in ("mtl", "groups", "mtl-b"):
        run.negative_transfer(method).mkdir(parents=True)
    (run.negative_transfer("mtl").parent / "notes.txt").write_text("not a method")
    assert run.judged_methods() == ["groups", "mtl", "mtl-b"]


def test_find_goes_shallowest_first_and_skips_checkpoints_logs_hidden_and_deep_folders(tmp_path: Path) -> None:
    run = RunLayout(tmp_path)
    wanted = [
        run.results,
        run.seed(1).results,
        run.seed(0).results,
        run.method("mmoe") / METRICS_FILE,
        run.seed(0).single_task("income") / METRICS_FILE,
        run.seed(0).single_task("income") / "a" / METRICS_FILE,  # SEARCH_DEPTH levels down: the deepest searched
    ]
    skipped = [
        run.method("mtl") / CHECKPOINTS_DIR / METRICS_FILE,
        run.method("mtl") / TENSORBOARD_DIR / RESULTS_FILE,
        tmp_path / ".hidden" / RESULTS_FILE,
        run.seed(0).single_task("income") / "a" / "b" / METRICS_FILE,
    ]
    for path in (*wanted, *skipped, tmp_path / "other.txt"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    assert len(skipped[-1].parent.relative_to(tmp_path).parts) == SEARCH_DEPTH + 1
    found = run.find([RESULTS_FILE, METRICS_FILE, "absent.json"])
    assert found == {
        RESULTS_FILE: [run.results, run.seed(0).results, run.seed(1).results],
        METRICS_FILE: [run.method("mmoe") / METRICS_FILE, *wanted[-2:]],
        "absent.json": [],
    }
    assert run.find([]) == {}
