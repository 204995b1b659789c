"""A run killed with SIGKILL and resumed ends with exactly the parameters of an uninterrupted run."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from _killing import kill_after_step

SCRIPT = Path(__file__).with_name("_resumable_run.py")
STEPS_PER_EPOCH = 13  # ceil(400 / 32)


def _run(run_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(run_dir), *extra], capture_output=True, text=True, timeout=300, check=False
    )


def _final(run_dir: Path) -> dict[str, torch.Tensor]:
    state: dict[str, torch.Tensor] = torch.load(run_dir / "final.pt", weights_only=True)
    return state


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")
def test_sigkill_then_resume_equals_uninterrupted_run(tmp_path: Path) -> None:
    reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    reference = _run(reference_dir)
    assert reference.returncode == 0, reference.stderr

    target_step = STEPS_PER_EPOCH + 5  # inside the second epoch, after a validation
    killed_at = kill_after_step([sys.executable, str(SCRIPT), str(killed_dir)], killed_dir / "checkpoints", target_step)
    assert not (killed_dir / "final.pt").exists(), "the killed run must not have finished"
    assert killed_at < 4 * STEPS_PER_EPOCH

    resumed = _run(killed_dir, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    expected, actual = _final(reference_dir), _final(killed_dir)
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(expected[name], actual[name]), f"{name} differs after resume"
    # the resumed run's log holds each epoch once, as the reference's does
    assert (killed_dir / "metrics.csv").read_text().count("\n") == (reference_dir / "metrics.csv").read_text().count(
        "\n"
    )
