"""Headless Chromium for the tests that look at pages (the report, the docs site)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

# every host but this machine fails to resolve: a page that loads anything from elsewhere shows it
OFFLINE = "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"


def chromium() -> str:
    """The Chromium binary; skips the test (saying why) when there is none."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium); the browser check needs one")


def run_browser(binary: str, profile: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with a fresh ``profile`` folder and ``arguments`` (e.g. ``--dump-dom URL``)."""
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}",
    ]  # fmt: skip
    return subprocess.run([binary, *flags, *arguments], capture_output=True, text=True, timeout=120, check=False)
