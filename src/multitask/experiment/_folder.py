"""The run folder before the trainings: refused, resumed or cleared as the user asked, then holding the config."""

from __future__ import annotations

import shutil
from pathlib import Path

from multitask.errors import ConfigError
from multitask.layout import LOCK_FILE, RunLayout
from multitask.training.lock import existing_folder, prepare_folder


def _holds_a_run(directory: Path) -> bool:
    """Whether the run folder holds anything but its lock file."""
    return existing_folder(directory) and any(entry.name != LOCK_FILE for entry in directory.iterdir())


def check_run_dir(directory: Path, saved: str, resume: bool, overwrite: bool) -> None:
    """Raise unless the run folder may be used as ``resume``/``overwrite`` say (reads only)."""
    if _holds_a_run(directory) and not resume and not overwrite:
        raise ConfigError(f"{directory} already holds a run: pass --resume to continue it, or --output/--overwrite")
    previous = RunLayout(directory).config
    if resume and previous.is_file() and previous.read_text() != saved:
        raise ConfigError(
            f"{directory} was trained with a different config ({previous}); resume it with that config, "
            "or start a new run with --output or --overwrite"
        )


def prepare_run_dir(directory: Path, saved: str, resume: bool, overwrite: bool) -> None:
    """Check the run folder against ``resume``/``overwrite``, then create it holding ``config.yaml``."""
    check_run_dir(directory, saved, resume, overwrite)
    if _holds_a_run(directory) and not resume:  # overwrite: everything but the lock this run holds
        for entry in directory.iterdir():
            if entry.name != LOCK_FILE:
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    prepare_folder(directory)
    RunLayout(directory).config.write_text(saved)
