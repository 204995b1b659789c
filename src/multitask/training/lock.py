"""One writer per run folder: an exclusive lock, held for the whole run, that a killed holder cannot leave behind.

The lock is a POSIX record lock (``fcntl.lockf``) on ``RUN_DIR/.lock``, a file that names the holder's process
id. The operating system releases it when its holder exits in any way (SIGKILL included), and, unlike
``flock``, processes forked from the holder (DataLoader workers, which may outlive a killed parent for a few
seconds) do not inherit it; so a stale lock file never blocks a later run. A second writer while the first is
alive is refused with a message naming it, in another process or in the same one. Where ``fcntl`` does not
exist (Windows), runs are not locked.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType

from multitask.errors import ConfigError, os_reason
from multitask.layout import LOCK_FILE

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_HELD: set[str] = set()  # the lock files this process holds


def existing_folder(directory: Path) -> bool:
    """Whether ``directory`` exists (False: it does not yet).

    Raises:
        ConfigError: It exists but is not a folder (a file, ``/dev/null``), or it cannot be looked at (a NUL
            byte, a name too long); the message names it and the reason.
    """
    shown = _shown(directory)
    try:
        if not directory.exists():
            return False
        if directory.is_dir():
            return True
    except (OSError, ValueError) as error:
        raise ConfigError(f"output folder {shown} cannot be used: {os_reason(error)}") from None
    raise ConfigError(f"output folder {shown} is not a folder (a file or a device): choose another --output")


def prepare_folder(directory: Path) -> Path:
    """``directory``, created if needed.

    Raises:
        ConfigError: It is not a folder or cannot be looked at (`existing_folder`), or cannot be created (a
            read-only place, a parent that is a file); the message names it and the reason.
    """
    if not existing_folder(directory):
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except (OSError, ValueError) as error:
            raise ConfigError(f"output folder {_shown(directory)} cannot be created: {os_reason(error)}") from None
    return directory


def _shown(directory: Path) -> str:
    return str(directory) if len(str(directory)) <= 120 else str(directory)[:100] + "..."


class RunFolderLock:
    """An exclusive lock on a run folder (``with RunFolderLock(run_dir): ...``), refusing a second writer.

    Args:
        directory: The run folder (created if needed).

    Raises:
        ConfigError: On `acquire`: another live process holds the folder (named by its pid), or the folder
            cannot be created.
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)
        self._descriptor: int | None = None
        self._key = ""

    @property
    def path(self) -> Path:
        """The lock file."""
        return self.directory / LOCK_FILE

    def acquire(self) -> RunFolderLock:
        """Take the lock (at once or not at all)."""
        prepare_folder(self.directory)
        if fcntl is None or self._descriptor is not None:
            return self
        try:
            descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise ConfigError(f"cannot lock the run folder {self.directory}: {error.strerror}") from None
        key = os.path.realpath(self.path)
        try:
            if key in _HELD:  # POSIX locks are per process: refuse a second writer of this process ourselves
                raise BlockingIOError
            fcntl.lockf(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except (BlockingIOError, PermissionError):
            holder = os.read(descriptor, 32).decode(errors="replace").strip() or "another process"
            os.close(descriptor)
            raise ConfigError(
                f"run folder {self.directory} is in use by process {holder}: wait for that run to end, or write "
                "to another folder (--output)"
            ) from None
        os.ftruncate(descriptor, 0)
        os.write(descriptor, f"{os.getpid()}\n".encode())
        self._descriptor, self._key = descriptor, key
        _HELD.add(key)
        return self

    def release(self) -> None:
        """Give the lock up (the file stays; it is free for the next run)."""
        if self._descriptor is None:
            return
        assert fcntl is not None
        fcntl.lockf(self._descriptor, fcntl.LOCK_UN)
        os.close(self._descriptor)
        _HELD.discard(self._key)
        self._descriptor = None

    def __enter__(self) -> RunFolderLock:
        return self.acquire()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.release()
