"""Which devices a run may name: checked before any work, with the fix in the message."""

from __future__ import annotations

import torch

from multitask.errors import ConfigError


def check_device(device: str | torch.device) -> torch.device:
    """``device`` as a ``torch.device`` that this machine can train on.

    Raises:
        ConfigError: The name does not parse, names a CUDA device this build or machine lacks (``cuda`` on a
            CPU-only build, ``cuda:99`` on a machine with 2), MPS where it is unavailable, the ``meta`` device
            (it holds no values), or another kind of device.
    """
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError):
        raise ConfigError(f"device {str(device)[:40]!r} is not a device name: use cpu, cuda, cuda:N or mps") from None
    if resolved.type == "cpu":
        return resolved
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {str(device)!r}: this PyTorch build or machine has no CUDA device; use cpu")
        count = torch.cuda.device_count()
        if resolved.index is not None and resolved.index >= count:
            raise ConfigError(
                f"device {str(device)!r}: this machine has {count} CUDA device(s): cuda:0 .. cuda:{count - 1}"
            )
        return resolved
    if resolved.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(f"device {str(device)!r}: MPS is not available here; use cpu")
        return resolved
    raise ConfigError(f"device {str(device)!r} cannot train a model here; use cpu, cuda or cuda:N (or mps on a Mac)")
