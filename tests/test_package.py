"""``import multitask`` makes PyTorch's idle OpenMP threads sleep when it can, and never overrides the user."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = "import os, sys\n{before}import multitask\nprint(os.environ.get('OMP_WAIT_POLICY'), 'torch' in sys.modules)"


def _policy(before: str = "", **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"} | env
    code = PROBE.format(before=before)
    done = subprocess.run([sys.executable, "-c", code], env=environment, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_import_before_torch_sets_the_passive_wait_policy_without_loading_torch() -> None:
    assert _policy() == "PASSIVE False"


def test_the_users_setting_wins() -> None:
    assert _policy(OMP_WAIT_POLICY="ACTIVE") == "ACTIVE False"


@pytest.mark.parametrize("before", ["import torch\n"])
def test_after_torch_nothing_is_set_that_could_no_longer_take_effect(before: str) -> None:
    assert _policy(before) == "None True"
