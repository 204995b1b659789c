"""A process killed mid-run ends the others with a clear error, not a hang; the run resumes from its checkpoint."""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import _distributed_cases as cases
import pytest
import torch

from multitask.training.checkpoint import list_checkpoints

STEPS_PER_EPOCH = 7  # ceil(151 / 25)
KILL_AFTER_STEP = STEPS_PER_EPOCH + 2  # inside the second epoch, after a validation
SCRIPT = Path(__file__).with_name("_killable_run.py")

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")


def _newest_step(run_dir: Path) -> int:
    checkpoints = list_checkpoints(run_dir / "checkpoints")
    return int(checkpoints[-1].stem.split("-")[1]) if checkpoints else -1


def _wait_for_step(run_dir: Path, step: int, alive: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 240
    while _newest_step(run_dir) < step:
        if not alive() or time.monotonic() > deadline:
            pytest.fail(f"the run ended or stalled before step {step} (newest checkpoint: {_newest_step(run_dir)})")
        time.sleep(0.01)


def _assert_same_parameters(expected_dir: Path, actual_dir: Path) -> None:
    expected = torch.load(expected_dir / "final.pt", weights_only=True)
    actual = torch.load(actual_dir / "final.pt", weights_only=True)
    assert expected.keys() == actual.keys()
    for name in expected:
        torch.testing.assert_close(actual[name], expected[name], rtol=0, atol=1e-5, msg=name)


def test_killed_process_ends_the_other_with_a_clear_error_then_one_process_resumes(tmp_path: Path) -> None:
    killed_dir, reference_dir = tmp_path / "killed", tmp_path / "reference"
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # imports torch._dynamo once, before forking
    context = multiprocessing.get_context("fork")
    processes = [
        context.Process(target=cases.killable_worker, args=(rank, 2, str(tmp_path / "store"), str(killed_dir)))
        for rank in range(2)
    ]
    for process in processes:
        process.start()
    try:
        _wait_for_step(killed_dir, KILL_AFTER_STEP, lambda: all(p.is_alive() for p in processes))
        os.kill(processes[1].pid, signal.SIGKILL)  # type: ignore[arg-type]
        processes[0].join(120)  # far longer than gloo needs to notice a dead peer; a hang fails here
        assert not processes[0].is_alive(), "the surviving process hangs"
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
            process.join()
    crash = killed_dir / "rank0.crash"
    assert not crash.exists(), crash.read_text()
    assert processes[0].exitcode == 3  # a DistributedError, not a backend traceback
    message = (killed_dir / "rank0.error").read_text()
    assert "process 0 of 2" in message and "most likely died" in message and "--resume" in message
    assert not (killed_dir / "final.pt").exists()
    assert KILL_AFTER_STEP <= _newest_step(killed_dir) < cases.EPOCHS_TO_RESUME * STEPS_PER_EPOCH

    # the two-process checkpoint resumes in one process and ends where an uninterrupted run ends
    cases.resumable_fit(killed_dir, False, slow=False, resume=True)
    cases.resumable_fit(reference_dir, False, slow=False)
    _assert_same_parameters(reference_dir, killed_dir)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.slow
def test_torchrun_style_processes_report_a_dead_peer_on_stderr_and_resume_with_two(tmp_path: Path) -> None:
    """Separate interpreters started as torchrun starts them (environment variables): the user-facing messages."""
    killed_dir, reference_dir = tmp_path / "killed", tmp_path / "reference"

    def start(rank: int, port: int, *extra: str) -> subprocess.Popen[str]:
        environment = os.environ | {
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
            "MULTITASK_DIST_TIMEOUT": "30",
            "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), *sys.path]),
        }
        command = [sys.executable, str(SCRIPT), str(killed_dir), *extra]
        return subprocess.Popen(command, env=environment, stderr=subprocess.PIPE, text=True)

    port = _free_port()
    processes = [start(rank, port) for rank in range(2)]
    try:
        _wait_for_step(killed_dir, KILL_AFTER_STEP, lambda: all(p.poll() is None for p in processes))
        processes[1].send_signal(signal.SIGKILL)
        _, stderr = processes[0].communicate(timeout=120)  # a hang fails here
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.communicate()
    assert processes[0].returncode not in (0, None)
    assert "multitask.errors.DistributedError: process 0 of 2" in stderr and "most likely died" in stderr

    port = _free_port()
    resumed = [start(rank, port, "--resume") for rank in range(2)]
    for process in resumed:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
    cases.resumable_fit(reference_dir, False, slow=False)
    _assert_same_parameters(reference_dir, killed_dir)
