"""Two processes (gloo) end with the parameters, logs and metrics one process gets on the same global batches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import _distributed_cases as _cases
import pytest

from multitask.training.distributed import Distributed

PARAMETER_TOLERANCE = 1e-5
NUMBER_TOLERANCE = 1e-5  # losses, weights, gate means, metrics: absolute up to 1, relative above


def _launch(tmp_path: Path, cases: list[str]) -> dict[str, Any]:
    codes = _cases.launch(_cases.parity_worker, 2, str(tmp_path / "store"), str(tmp_path), cases)
    errors = "\n".join(p.read_text() for p in sorted(tmp_path.glob("*.error")))
    assert codes == [0, 0], f"exit codes {codes}\n{errors}"
    results: dict[str, Any] = {}
    for rank in range(2):
        results.update(json.loads((tmp_path / f"rank{rank}.json").read_text()))
    assert sorted(results) == sorted(cases)
    return results


def _check(results: dict[str, Any], exact: list[str]) -> None:
    for name, result in results.items():
        assert result["processes_identical"], f"{name}: the two processes' parameters differ"
        if name in exact:
            assert result["parameters"] < PARAMETER_TOLERANCE, f"{name}: parameters differ by {result['parameters']}"
            assert result["logged"] < NUMBER_TOLERANCE, f"{name}: logged numbers differ by {result['logged']}"


def test_every_required_method_and_multi_input_match_one_process(tmp_path: Path) -> None:
    """EW, UW, DWA, GradNorm, MGDA, PCGrad, CAGrad, Nash-MTL and multi-input MGDA, in one launch of two processes."""
    results = _launch(tmp_path, _cases.REQUIRED + _cases.IN_SYNC_ONLY)
    _check(results, _cases.REQUIRED)
    # with dropout the masks differ from one process's, so the run does too, but the processes agree
    assert results["pcgrad_dropout"]["parameters"] > PARAMETER_TOLERANCE


@pytest.mark.slow
def test_other_paths_match_one_process(tmp_path: Path) -> None:
    """Gramian mode + L2, representation mode, multi-input weighting, MMoE gates, RLW, FAMO, GradDrop, GradVac."""
    _check(_launch(tmp_path, _cases.EXTRA), _cases.EXTRA)


def test_one_process_group_of_size_one_changes_nothing(tmp_path: Path) -> None:
    """World size 1 through the distributed code path: the same numbers as the plain run."""
    distributed = Distributed.init("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        for name in ("gradnorm", "cagrad"):
            parameters, numbers = _cases.max_difference(
                _cases.run_case(name, distributed, epochs=1), _cases.run_case(name, False, epochs=1)
            )
            assert parameters < 1e-6 and numbers < 1e-6, name
        assert distributed.bytes_by_kind["losses"] > 0 and distributed.bytes_by_kind["jacobian"] > 0
    finally:
        distributed.close()
