"""Tests of the loaders of the large benchmarks on small fixture files written in each dataset's layout:
NYUv2 (.npy), Cityscapes (PNG), CelebA, Office-31, Office-Home, ImageNet (JPEG) and GLUE (TSV, `datasets`)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from multitask import Trainer
from multitask.data import (
    LazyDataset,
    load_celeba,
    load_cityscapes,
    load_glue,
    load_imagenet,
    load_nyuv2,
    load_office31,
    load_office_home,
)
from multitask.data._glue import SEPARATOR, UNKNOWN, tokenize
from multitask.errors import ConfigError, DataError
from multitask.models import HardSharing


def write_jpeg(path: Path, value: int, size: tuple[int, int] = (10, 8)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, dtype=np.uint8)).save(path, quality=95)


# ------------------------------------------------------------------ NYUv2
def write_nyuv2(root: Path, split: str, n: int) -> None:
    rng = np.random.default_rng(0)
    for folder in ("image", "label", "depth", "normal"):
        (root / split / folder).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        label = rng.integers(-1, 13, size=(4, 6)).astype(np.float32)
        depth = rng.uniform(0.5, 5, size=(4, 6, 1)).astype(np.float32)
        depth[0, 0] = 0.0  # no measurement
        normal = rng.normal(size=(4, 6, 3)).astype(np.float32)
        normal[1, 1] = 0.0
        arrays = {"image": np.full((4, 6, 3), i / 10, np.float32), "label": label, "depth": depth, "normal": normal}
        for folder, array in arrays.items():
            np.save(root / split / folder / f"{i}.npy", array)


def test_nyuv2_layout(tmp_path: Path) -> None:
    write_nyuv2(tmp_path, "train", 12)
    write_nyuv2(tmp_path, "val", 3)
    data = load_nyuv2(tmp_path, val_fraction=0.25, seed=0)
    train, val, test = data.dataset("train"), data.dataset("val"), data.dataset("test")
    assert isinstance(train, LazyDataset) and (len(train), len(val), len(test)) == (9, 3, 3)
    batch = test[torch.arange(3)]
    assert batch["x"].shape == (3, 3, 4, 6) and batch["x"][:, 0, 0, 0].tolist() == pytest.approx([0.0, 0.1, 0.2])
    stored = np.load(tmp_path / "val" / "label" / "1.npy")
    assert torch.equal(batch["segmentation"][1], torch.from_numpy(np.where(stored < 0, -100, stored).astype(np.int64)))
    assert batch["depth"].shape == (3, 1, 4, 6) and torch.isnan(batch["depth"][:, 0, 0, 0]).all()
    assert int(torch.isnan(batch["depth"]).sum()) == 3
    assert batch["normal"].shape == (3, 3, 4, 6) and torch.isnan(batch["normal"][:, :, 1, 1]).all()
    assert all(info.dense for info in data.task_info.values()) and data.task_info["segmentation"].num_outputs == 13
    with pytest.raises(ConfigError, match="per-pixel"):
        data.make_tasks(8)
    # the 11-sample ordering is numeric (0, 1, ..., 10, 11), not lexicographic
    assert load_nyuv2(tmp_path, val_fraction=0.0).dataset("train")[slice(10, 12)]["x"][:, 0, 0, 0].tolist() == (
        pytest.approx([1.0, 1.1])
    )


def test_nyuv2_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"NYUv2: folder .*train not found; expected layout"):
        load_nyuv2(tmp_path)
    write_nyuv2(tmp_path, "train", 2)
    write_nyuv2(tmp_path, "val", 2)
    (tmp_path / "val" / "depth" / "1.npy").unlink()
    with pytest.raises(DataError, match=r"depth lacks \['1.npy'\]"):
        load_nyuv2(tmp_path)


# ------------------------------------------------------------------ Cityscapes
def write_cityscapes(root: Path, split: str, names: list[str], label_ids: np.ndarray) -> None:
    for i, name in enumerate(names):
        stem = f"aachen_{name}"
        image_dir, label_dir, disp_dir = (
            root / kind / split / "aachen" for kind in ("leftImg8bit", "gtFine", "disparity")
        )
        for folder in (image_dir, label_dir, disp_dir):
            folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((8, 16, 3), 40 * i, np.uint8)).save(image_dir / f"{stem}_leftImg8bit.png")
        Image.fromarray(label_ids.astype(np.uint8)).save(label_dir / f"{stem}_gtFine_labelIds.png")
        disparity = np.zeros((8, 16), dtype=np.uint16)
        disparity[:, 8:] = 257  # (257 - 1) / 256 = 1.0; 0 = no measurement
        Image.fromarray(disparity).save(disp_dir / f"{stem}_disparity.png")


def test_cityscapes_layout_and_label_mapping(tmp_path: Path) -> None:
    label_ids = np.zeros((8, 16), dtype=np.uint8)
    label_ids[:4] = 7  # road
    label_ids[4:, :8] = 26  # car; the rest 0 = unlabeled
    write_cityscapes(tmp_path, "train", ["000000_000019", "000001_000019"], label_ids)
    write_cityscapes(tmp_path, "val", ["000002_000019"], label_ids)
    data = load_cityscapes(tmp_path, image_size=(4, 8), val_fraction=0.5)
    assert [len(data.dataset(s)) for s in ("train", "val", "test")] == [1, 1, 1]
    batch = data.dataset("test")[slice(0, 1)]
    assert batch["x"].shape == (1, 3, 4, 8) and float(batch["x"].max()) == pytest.approx(0.0)
    segmentation = batch["segmentation"][0]
    assert segmentation[:2].unique().tolist() == [0]  # road -> train id 0
    assert segmentation[2:, :4].unique().tolist() == [13]  # car -> 13
    assert segmentation[2:, 4:].unique().tolist() == [-100]  # unlabeled -> ignored
    disparity = batch["disparity"][0, 0]
    assert torch.isnan(disparity[:, :4]).all() and torch.equal(disparity[:, 4:], torch.ones(4, 4))
    categories = load_cityscapes(tmp_path, image_size=(4, 8), num_classes=7, disparity=False, val_fraction=0.0)
    assert categories.tasks == ["segmentation"] and categories.val is None
    seg7 = categories.dataset("test")[slice(0, 1)]["segmentation"][0]
    assert seg7[0, 0] == 0 and seg7[3, 0] == 6  # flat, vehicle
    assert categories.task_info["segmentation"].classes[6] == "vehicle"


def test_cityscapes_names_what_is_missing(tmp_path: Path) -> None:
    label_ids = np.zeros((8, 16), dtype=np.uint8)
    write_cityscapes(tmp_path, "train", ["000000_000019"], label_ids)
    write_cityscapes(tmp_path, "val", ["000001_000019"], label_ids)
    (tmp_path / "disparity" / "val" / "aachen" / "aachen_000001_000019_disparity.png").unlink()
    with pytest.raises(DataError, match=r"aachen_000001_000019_disparity\.png is missing"):
        load_cityscapes(tmp_path, val_fraction=0.0)
    assert len(load_cityscapes(tmp_path, disparity=False, val_fraction=0.0).dataset("test")) == 1
    with pytest.raises(ConfigError, match=r"19 .* or 7"):
        load_cityscapes(tmp_path, num_classes=8)  # type: ignore[arg-type]


# ------------------------------------------------------------------ CelebA
def write_celeba(root: Path, partitions: list[int]) -> None:
    names = ["Smiling", "Male", "Young"]
    lines = [str(len(partitions)), " ".join(names)]
    for i, _ in enumerate(partitions):
        write_jpeg(root / "img_align_celeba" / f"{i + 1:06d}.jpg", 255 * (i % 2), size=(8, 10))
        values = ["1" if i % 2 else "-1", "1" if i % 3 == 0 else "-1", " 1"]
        lines.append(f"{i + 1:06d}.jpg  " + " ".join(values))
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    parts = "".join(f"{i + 1:06d}.jpg {p}\n" for i, p in enumerate(partitions))
    (root / "list_eval_partition.txt").write_text(parts)


def test_celeba_layout_and_a_training_run(tmp_path: Path) -> None:
    write_celeba(tmp_path, [0] * 16 + [1] * 2 + [2] * 2)
    data = load_celeba(tmp_path, image_size=4)
    assert data.tasks == ["Smiling", "Male", "Young"]
    train = data.dataset("train")
    assert [len(data.dataset(s)) for s in ("train", "val", "test")] == [16, 2, 2]
    assert train.columns["Smiling"][:4].tolist() == [0.0, 1.0, 0.0, 1.0] and train.columns["Young"].sum() == 16
    batch = train[torch.arange(4)]
    assert batch["x"].shape == (4, 3, 4, 4) and batch["x"][:, :, 1, 1].mean(dim=1).tolist() == pytest.approx(
        [0.0, 1.0, 0.0, 1.0], abs=0.02
    )
    multi = load_celeba(tmp_path, image_size=4, multilabel=True)
    assert multi.task_info["attributes"].classes == ("Smiling", "Male", "Young")
    assert multi.dataset("val").columns["attributes"].shape == (2, 3)
    # Smiling is the image brightness here: the Trainer learns it from images read off disk
    torch.manual_seed(0)
    tasks = data.make_tasks(8, tasks=["Smiling"])
    model = HardSharing(nn.Sequential(nn.Flatten(), nn.Linear(48, 8), nn.ReLU()), tasks)
    trainer = Trainer(model, tasks, max_epochs=15, batch_size=8, lr=0.05, progress=False)
    trainer.fit(train, data.val)
    assert trainer.evaluate(data.dataset("test"))["Smiling"]["accuracy"] == 1.0


def test_celeba_names_what_is_missing(tmp_path: Path) -> None:
    write_celeba(tmp_path, [0, 0, 1])
    (tmp_path / "list_eval_partition.txt").unlink()
    with pytest.raises(DataError, match=r"list_eval_partition\.txt not found; expected layout"):
        load_celeba(tmp_path)
    write_celeba(tmp_path, [0, 0, 1])
    with (tmp_path / "list_attr_celeba.txt").open("a") as file:
        file.write("000009.jpg 1 1\n")
    with pytest.raises(DataError, match="line 6: expected a file name and 3 values"):
        load_celeba(tmp_path)


# ------------------------------------------------------------------ Office-31, Office-Home, ImageNet
def test_office31_one_task_per_domain(tmp_path: Path) -> None:
    for d, domain in enumerate(("amazon", "dslr", "webcam")):
        for c, name in enumerate(("back_pack", "bike")):
            for i in range(5):
                write_jpeg(tmp_path / domain / "images" / name / f"frame_{i}.jpg", 100 * c + d)
    data = load_office31(tmp_path, image_size=(6, 5), seed=0)
    assert data.tasks == ["amazon", "dslr", "webcam"] and data.is_multi_input
    assert data.task_info["dslr"].classes == ("back_pack", "bike") and data.task_info["dslr"].num_outputs == 2
    assert [len(data.dataset(s, "webcam")) for s in ("train", "val", "test")] == [6, 2, 2]
    batch = data.dataset("train", "dslr")[torch.arange(6)]
    assert batch["x"].shape == (6, 3, 6, 5)
    brightness = (batch["x"].mean(dim=(1, 2, 3)) * 255).round()
    assert torch.equal(brightness > 50, batch["dslr"] == 1)  # class 1 images are brighter
    for image in (tmp_path / "webcam" / "images" / "bike").iterdir():
        image.unlink()
    with pytest.raises(DataError, match=r"Office-31 webcam: class folder .*bike holds no image file"):
        load_office31(tmp_path)
    (tmp_path / "webcam" / "images" / "bike").rmdir()
    (tmp_path / "webcam" / "images").rename(tmp_path / "webcam" / "pictures")
    with pytest.raises(DataError, match=r"Office-31 webcam: folder .*webcam/images not found; expected layout"):
        load_office31(tmp_path)


def test_office_home_accepts_both_spellings_of_real_world(tmp_path: Path) -> None:
    for domain in ("Art", "Clipart", "Product", "Real_World"):
        for name in ("Alarm_Clock", "Bike"):
            for i in range(5):
                write_jpeg(tmp_path / domain / name / f"{i:05d}.jpg", 10)
    data = load_office_home(tmp_path, image_size=4)
    assert data.tasks == ["art", "clipart", "product", "real_world"]
    assert len(data.dataset("test", "real_world")) == 2
    (tmp_path / "Real_World").rename(tmp_path / "Real World")
    assert len(load_office_home(tmp_path, image_size=4).dataset("train", "real_world")) == 6
    (tmp_path / "Art").rename(tmp_path / "Painting")
    with pytest.raises(DataError, match=r"Office-Home art: folder .*Art not found"):
        load_office_home(tmp_path)


def test_imagenet_class_folders(tmp_path: Path) -> None:
    for wnid in ("n01440764", "n01443537"):
        for i in range(6):
            write_jpeg(tmp_path / "train" / wnid / f"{wnid}_{i}.JPEG", 50)
        write_jpeg(tmp_path / "val" / wnid / f"ILSVRC2012_val_{wnid}.JPEG", 50)
    data = load_imagenet(tmp_path, image_size=8, val_fraction=0.25)
    assert data.task_info["label"].classes == ("n01440764", "n01443537")
    assert [len(data.dataset(s)) for s in ("train", "val", "test")] == [9, 3, 2]
    assert data.dataset("test").columns["label"].tolist() == [0, 1]
    assert data.dataset("test")[slice(0, 2)]["x"].shape == (2, 3, 8, 8)
    write_jpeg(tmp_path / "val" / "n99999999" / "x.JPEG", 1)
    with pytest.raises(DataError, match=r"classes \['n99999999'\] with no train folder"):
        load_imagenet(tmp_path)
    with pytest.raises(ConfigError, match="image_size"):
        load_imagenet(tmp_path, image_size=(0, 3))


# ------------------------------------------------------------------ GLUE
def write_glue(root: Path) -> None:
    (root / "CoLA").mkdir(parents=True)
    cola = [f"gj04\t{i % 2}\t\tThe cat sat number {i} ." for i in range(10)]
    (root / "CoLA" / "train.tsv").write_text("\n".join(cola) + "\n")
    (root / "CoLA" / "dev.tsv").write_text("\n".join(cola[:4]) + "\n")
    (root / "STS-B").mkdir()
    header = "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore"
    rows = [f"{i}\tmain\tf\t2012\t{i}\ts\ts\tA dog runs .\tA dog is running quickly .\t{i / 2}" for i in range(10)]
    (root / "STS-B" / "train.tsv").write_text("\n".join([header, *rows]) + "\n")
    (root / "STS-B" / "dev.tsv").write_text("\n".join([header, *rows[:3]]) + "\n")
    (root / "MNLI").mkdir()
    header = "\t".join(["index", "a", "b", "c", "d", "e", "f", "g", "sentence1", "sentence2", "label1", "gold_label"])
    labels = ["entailment", "neutral", "contradiction"]
    rows = ["\t".join([str(i), *"abcdefg", "He sleeps .", "He is awake .", "x", labels[i % 3]]) for i in range(10)]
    (root / "MNLI" / "train.tsv").write_text("\n".join([header, *rows]) + "\n")
    (root / "MNLI" / "dev_matched.tsv").write_text("\n".join([header, *rows[:6]]) + "\n")


def test_glue_tsv_layout(tmp_path: Path) -> None:
    write_glue(tmp_path)
    data = load_glue(tmp_path, tasks=["cola", "stsb", "mnli"], max_length=8, val_fraction=0.2)
    assert data.kinds == {"cola": "binary", "stsb": "regression", "mnli": "multiclass"}
    assert [len(data.dataset(s, "cola")) for s in ("train", "val", "test")] == [8, 2, 4]
    assert data.dataset("test", "mnli").columns["mnli"].tolist() == [0, 1, 2, 0, 1, 2]
    assert data.dataset("test", "stsb").columns["stsb"].tolist() == [0.0, 0.5, 1.0]
    tokens = data.dataset("test", "stsb").columns["tokens"][0]
    assert tokens.shape == (8,) and int((tokens == SEPARATOR).sum()) == 1  # a sentence pair
    assert int(tokens[4]) == SEPARATOR  # after the 4 tokens of "a dog runs ."
    vocabulary_size = data.num_embeddings["tokens"]
    assert int(torch.cat([data.dataset("train", t).columns["tokens"].flatten() for t in data.tasks]).max()) < (
        vocabulary_size
    )
    tasks = data.make_tasks(4)
    assert [t.kind for t in tasks] == ["binary", "regression", "multiclass"]


def test_glue_vocabulary_is_cut_and_unknown_words_marked(tmp_path: Path) -> None:
    write_glue(tmp_path)
    data = load_glue(tmp_path, tasks=["cola"], max_vocabulary=6, max_length=5)
    assert data.num_embeddings["tokens"] == 6
    tokens = data.dataset("test", "cola").columns["tokens"][0].tolist()
    # "the cat sat number 0 ." cut to 5 tokens; the 3-word vocabulary holds the first three (10 uses each, ties
    # in order of appearance), so "number" and "0" are unknown
    assert tokens == [3, 4, 5, UNKNOWN, UNKNOWN]
    assert tokenize("It's 5 o'clock!") == ["it", "'", "s", "5", "o", "'", "clock", "!"]


def test_glue_errors(tmp_path: Path) -> None:
    write_glue(tmp_path)
    with pytest.raises(ConfigError, match=r"unknown GLUE task\(s\) \['squad'\]"):
        load_glue(tmp_path, tasks=["squad"])
    with pytest.raises(DataError, match=r"neither .*RTE \(TSV files\) nor .*rte"):
        load_glue(tmp_path, tasks=["rte"])
    (tmp_path / "MNLI" / "dev_matched.tsv").write_text("index\tsentence1\tsentence2\tgold_label\n0\ta\tb\tmaybe\n")
    with pytest.raises(DataError, match=r"unknown label value\(s\) \['maybe'\]"):
        load_glue(tmp_path, tasks=["mnli"])


def test_glue_from_a_datasets_save(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "rte").mkdir()
    (tmp_path / "wnli").mkdir()
    saved = {
        "train": {"sentence1": [f"A {i} ." for i in range(10)], "sentence2": ["B ."] * 10, "label": [0, 1] * 5},
        "validation": {"sentence1": ["A ."] * 3, "sentence2": ["C ."] * 3, "label": [1, 1, 0]},
    }

    class Split(dict[str, list[object]]):
        def __len__(self) -> int:
            return len(self["label"])

    fake = types.ModuleType("datasets")
    fake.load_from_disk = lambda path: {k: Split(v) for k, v in saved.items()}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datasets", fake)
    data = load_glue(tmp_path, tasks=["rte"], val_fraction=0.2)
    assert data.dataset("test", "rte").columns["rte"].tolist() == [1.0, 1.0, 0.0]  # 1 = not_entailment
    assert len(data.dataset("train", "rte")) == 8
    monkeypatch.setitem(sys.modules, "datasets", None)  # not installed: the import fails
    with pytest.raises(DataError, match=r"install the `datasets` library"):
        load_glue(tmp_path, tasks=["wnli"])
