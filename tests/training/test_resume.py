"""A run killed with SIGKILL and resumed ends with exactly the parameters of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from multitask.training.checkpoint import list_checkpoints

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

    process = subprocess.Popen([sys.executable, str(SCRIPT), str(killed_dir)], stderr=subprocess.PIPE)
    target_step = STEPS_PER_EPOCH + 5  # inside the second epoch, after a validation
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        checkpoints = list_checkpoints(killed_dir / "checkpoints")
        if checkpoints and int(checkpoints[-1].stem.split("-")[1]) >= target_step:
            break
        if process.poll() is not None:
            pytest.fail(f"the run ended before it could be killed: {process.stderr.read() if process.stderr else ''}")
        time.sleep(0.01)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert not (killed_dir / "final.pt").exists(), "the killed run must not have finished"
    killed_at = int(list_checkpoints(killed_dir / "checkpoints")[-1].stem.split("-")[1])
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
