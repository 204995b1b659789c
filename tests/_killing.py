"""Kill a training process with SIGKILL once it has checkpointed a given step (for the kill-and-resume tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from multitask.training.checkpoint import list_checkpoints


def newest_step(checkpoints: Path) -> int | None:
    """The global step of the newest checkpoint in ``checkpoints`` (None when there is none)."""
    found = list_checkpoints(checkpoints)
    return int(found[-1].stem.split("-")[1]) if found else None


def kill_after_step(
    command: Sequence[str], checkpoints: Path, step: int, env: Mapping[str, str] | None = None, timeout: float = 240
) -> int:
    """Start ``command``, SIGKILL it as soon as a checkpoint of ``step`` or later exists; the newest step then.

    Fails the test when the process ends by itself first.
    """
    process = subprocess.Popen(list(command), stderr=subprocess.PIPE, env=dict(env) if env is not None else None)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        newest = newest_step(checkpoints)
        if newest is not None and newest >= step:
            break
        if process.poll() is not None:
            pytest.fail(f"the run ended before it could be killed: {process.stderr.read() if process.stderr else ''}")
        time.sleep(0.005)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    killed_at = newest_step(checkpoints)
    assert killed_at is not None
    return killed_at
