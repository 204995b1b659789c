"""Checkpoints that survive crashes: atomic writes, a checksum, and loading without unpickling code.

File layout: the 8-byte magic ``MTCKPT1\\n``, the SHA-256 of the payload as 64 hex digits and a
newline, then the payload written by `torch.save`. Loading checks the magic, the length and the
checksum before it reads the payload with ``torch.load(weights_only=True)``, which refuses
anything but tensors and plain Python containers, so a checkpoint cannot run code.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from multitask.errors import CheckpointError

MAGIC = b"MTCKPT1\n"
_HEADER_SIZE = len(MAGIC) + 65
_NAME = re.compile(r"^checkpoint-(\d{9})\.pt$")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old file or the new one, never half.

    Writes a temporary file in the same folder, flushes and fsyncs it, renames it over ``path``,
    then fsyncs the folder so that the rename itself is durable.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)
    except OSError as error:  # e.g. a full disk: no partial file left, the previous file (if any) intact
        temporary.unlink(missing_ok=True)
        free = shutil.disk_usage(path.parent).free if path.parent.is_dir() else 0
        raise CheckpointError(
            f"cannot write {path}: {error.strerror or error}; it needs {len(data):,} bytes and {free:,} are free "
            "(the previous checkpoint is kept)"
        ) from None
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Save ``state`` (tensors, numbers, strings and containers of them) atomically with a checksum."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getvalue()
    digest = hashlib.sha256(payload).hexdigest().encode("ascii")
    atomic_write_bytes(path, MAGIC + digest + b"\n" + payload)


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by `save_checkpoint`, verifying it first.

    Raises:
        CheckpointError: The file is missing, not a checkpoint, truncated, or its checksum does not
            match (the message names the file).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CheckpointError(f"cannot read checkpoint {path}: {error}") from error
    if len(data) < _HEADER_SIZE or not data.startswith(MAGIC):
        raise CheckpointError(f"{path} is not a multitask checkpoint or is truncated (bad header)")
    expected = data[len(MAGIC) : len(MAGIC) + 64].decode("ascii", errors="replace")
    payload = data[_HEADER_SIZE:]
    if hashlib.sha256(payload).hexdigest() != expected:
        raise CheckpointError(
            f"checkpoint {path} is corrupt or truncated (checksum mismatch); delete it to resume from an earlier one"
        )
    try:
        state = torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except Exception as error:  # torch raises several types for unreadable payloads
        raise CheckpointError(f"checkpoint {path} cannot be loaded: {error}") from error
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} does not hold a state dictionary")
    return state


_TEMPORARY = re.compile(r"^\..+\.(\d+)\.tmp$")


def sweep_temporaries(directory: Path) -> list[Path]:
    """Delete the partial files that writers killed mid-write left in ``directory`` (``.NAME.PID.tmp`` of a
    process that no longer runs); the deleted paths."""
    removed: list[Path] = []
    if not directory.is_dir():
        return removed
    for entry in directory.iterdir():
        match = _TEMPORARY.match(entry.name)
        if match is None or not entry.is_file() or _alive(int(match.group(1))):
            continue
        entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def non_finite_entries(state: Any, prefix: str = "") -> list[str]:
    """The names of the floating-point tensors in a (nested) state that hold NaN or an infinity."""
    if isinstance(state, Tensor):
        return [prefix or "value"] if state.is_floating_point() and not bool(torch.isfinite(state).all()) else []
    items: Iterable[tuple[Any, Any]]
    if isinstance(state, dict):
        items = state.items()
    elif isinstance(state, list | tuple):
        items = enumerate(state)
    else:
        return []
    found: list[str] = []
    for key, value in items:
        found += non_finite_entries(value, f"{prefix}.{key}" if prefix else str(key))
    return found


def checkpoint_path(directory: Path, step: int) -> Path:
    """The file name of the checkpoint taken after global step ``step``."""
    return directory / f"checkpoint-{step:09d}.pt"


def list_checkpoints(directory: Path) -> list[Path]:
    """Checkpoints in ``directory``, oldest first."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if _NAME.match(p.name))


def prune_checkpoints(directory: Path, keep: int) -> None:
    """Delete all but the ``keep`` newest checkpoints."""
    for old in list_checkpoints(directory)[:-keep] if keep > 0 else []:
        old.unlink(missing_ok=True)


def capture_rng_state() -> dict[str, Any]:
    """The states of Python's, NumPy's and PyTorch's global generators, in a ``weights_only`` form."""
    version, internal, gauss = random.getstate()
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "python": [version, list(internal), gauss],
        "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],  # type: ignore[index]
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict[str, Any]) -> None:
    """Restore generators captured by `capture_rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
