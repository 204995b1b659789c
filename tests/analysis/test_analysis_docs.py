"""The Python example of docs/analysis.md runs as written and prints what the page says it prints."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[2] / "docs" / "analysis.md"


def test_the_page_example_finds_the_groups_and_writes_a_report(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__example__"}
    exec(compile(blocks[0], str(PAGE), "exec"), namespace)  # our own documentation
    lines = capsys.readouterr().out.splitlines()
    pair = ast.literal_eval(lines[0])  # the printed tuple (task, task, cosine)
    assert "adv" in pair[:2] and pair[2] < -0.3
    assert lines[1] == "{a0, a1, a2} | {b0, b1} | {adv}"
    assert lines[2] == "runs/quick/report.html" and (tmp_path / "runs/quick/report.html").is_file()
