"""`load_image_folder` (images + a CSV of per-task labels), `ImageAugmentation`, the ``image_folder`` config type."""

from __future__ import annotations

import doctest
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from multitask.cli import main
from multitask.config import ImageFolderDataConfig, load_config
from multitask.data import ImageAugmentation, LazyDataset, MultiTaskData, load_image_folder
from multitask.data import _augment as augment_module
from multitask.data._cells import IGNORE_INDEX
from multitask.errors import ConfigError, DataError
from multitask.experiment import load_data

COLOURS = ("red", "green", "blue")
N = 40


def _pixels(k: int) -> np.ndarray:
    """Image ``k``: every channel at ``6k``, its colour channel (``k % 3``) at ``60 + 4k``."""
    pixels = np.full((8, 8, 3), 6 * k, np.uint8)
    pixels[:, :, k % 3] = 60 + 4 * k
    pixels[0, 0] = 255 - k  # one odd pixel: flips and crops show
    return pixels


def _brightness(k: int) -> float:
    return float(_pixels(k).mean() / 255)


def _folder(tmp_path: Path, rows: list[str] | None = None, header: str = "image,bright,colour,brightness") -> Path:
    """``N`` 8×8 PNG files in ``root/img`` and ``root/labels.csv``: bright (mean > 0.5), colour, brightness."""
    root = tmp_path / "photos"
    (root / "img").mkdir(parents=True)
    for k in range(N):
        Image.fromarray(_pixels(k)).save(root / "img" / f"{k:02d}.png")
    if rows is None:
        rows = [f"img/{k:02d}.png,{int(_brightness(k) > 0.5)},{COLOURS[k % 3]},{_brightness(k):.6f}" for k in range(N)]
    (root / "labels.csv").write_text("\n".join([header, *rows]) + "\n")
    return root


def _all(data: MultiTaskData) -> dict[str, torch.Tensor]:
    """Every row of the training split (with both held-out fractions 0: all images, in CSV order)."""
    return data.dataset("train")[slice(0, len(data.dataset("train")))]


def _rows(split: object) -> list[int]:
    """The image numbers of a split, read from its (unique) brightness labels."""
    assert isinstance(split, LazyDataset)
    values = split.columns["brightness"].tolist()
    return sorted(int(np.argmin([abs(v - _brightness(k)) for k in range(N)])) for v in values)


def test_kinds_classes_and_labels_are_read_from_the_csv(tmp_path: Path) -> None:
    data = load_image_folder(_folder(tmp_path), val_fraction=0, test_fraction=0)
    assert data.kinds == {"bright": "binary", "colour": "multiclass", "brightness": "regression"}
    assert data.classes == {"colour": ["blue", "green", "red"]}  # sorted distinct values
    assert data.task_info["colour"].num_outputs == 3
    rows = _all(data)
    bright = torch.tensor([float(_brightness(k) > 0.5) for k in range(N)])
    assert 0 < bright.sum() < N  # both labels occur
    assert torch.equal(rows["bright"], bright) and rows["bright"].dtype == torch.float32
    assert rows["colour"].tolist() == [("blue", "green", "red").index(COLOURS[k % 3]) for k in range(N)]
    assert rows["colour"].dtype == torch.int64
    assert torch.allclose(rows["brightness"], torch.tensor([_brightness(k) for k in range(N)]), atol=1e-6)


def test_images_are_what_pillow_reads_as_float_rgb(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    data = load_image_folder(root, val_fraction=0, test_fraction=0)
    images = _all(data)["x"]
    assert images.shape == (N, 3, 8, 8) and images.dtype == torch.float32
    for k in (0, 17, N - 1):
        with Image.open(root / "img" / f"{k:02d}.png") as file:
            expected = np.asarray(file.convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 255
        assert torch.equal(images[k], torch.from_numpy(expected))
        assert torch.equal(images[k], torch.from_numpy(_pixels(k).transpose(2, 0, 1) / np.float32(255)))
    assert data.sample_shapes()["x"] == (3, 8, 8)


def test_resizing_to_image_size(tmp_path: Path) -> None:
    data = load_image_folder(_folder(tmp_path), image_size=(6, 4), val_fraction=0, test_fraction=0)
    assert _all(data)["x"].shape == (N, 3, 6, 4)
    assert "resized to (6, 4)" in data.preprocessing


def test_missing_cells_are_missing_labels(tmp_path: Path) -> None:
    rows = [f"img/{k:02d}.png,{int(_brightness(k) > 0.5)},{COLOURS[k % 3]},{_brightness(k):.6f}" for k in range(N)]
    rows[3] = f"img/03.png,,{COLOURS[0]},{_brightness(3)}"
    rows[5] = f"img/05.png,0,,{_brightness(5)}"
    rows[7] = "img/07.png,0,blue,NA"  # a missing marker, not only an empty cell
    data = load_image_folder(_folder(tmp_path, rows), val_fraction=0, test_fraction=0)
    labels = _all(data)
    assert torch.isnan(labels["bright"]).nonzero().flatten().tolist() == [3]
    assert (labels["colour"] == IGNORE_INDEX).nonzero().flatten().tolist() == [5]
    assert torch.isnan(labels["brightness"]).nonzero().flatten().tolist() == [7]
    assert data.kinds == {"bright": "binary", "colour": "multiclass", "brightness": "regression"}


def test_integer_columns_are_classes_in_numeric_order_and_many_values_are_regression(tmp_path: Path) -> None:
    header = "image,grade,count,flag,pet"
    rows = [f"img/{k:02d}.png,{(2, 10, 2.0, 33)[k % 4]},{k},{k % 2}.0,{('dog', 'cat')[k % 2]}" for k in range(N)]
    data = load_image_folder(_folder(tmp_path, rows, header), val_fraction=0, test_fraction=0)
    assert data.kinds == {"grade": "multiclass", "count": "regression", "flag": "binary", "pet": "multiclass"}
    assert data.classes == {"grade": ["2", "10", "33"], "pet": ["cat", "dog"]}  # 2 and 2.0 are one class
    labels = _all(data)
    assert labels["grade"][:4].tolist() == [0, 1, 0, 2]
    assert labels["count"].tolist() == list(range(N))
    assert labels["flag"][:4].tolist() == [0.0, 1.0, 0.0, 1.0]


def test_tasks_selects_columns_and_a_mapping_forces_kinds(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    data = load_image_folder(root, tasks=["colour", "bright"], val_fraction=0, test_fraction=0)
    assert data.tasks == ["colour", "bright"]
    assert set(data.dataset("train").keys()) == {"x", "colour", "bright"}
    kinds = {"bright": "multiclass", "colour": "multiclass"}
    forced = load_image_folder(root, tasks=kinds, val_fraction=0, test_fraction=0)  # type: ignore[arg-type]
    assert forced.kinds == kinds and forced.classes["bright"] == ["0", "1"]
    header, rows = "image,pet", [f"img/{k:02d}.png,{('dog', 'cat')[k % 2]}" for k in range(N)]
    root = _folder(tmp_path / "pets", rows, header)
    pets = load_image_folder(root, tasks={"pet": "binary"}, val_fraction=0, test_fraction=0)
    assert pets.kinds == {"pet": "binary"} and "1 = 'dog'" in pets.task_info["pet"].description
    assert _all(pets)["pet"].tolist() == [float(k % 2 == 0) for k in range(N)]  # dog, the later name, is 1


def test_random_split_sizes_and_seeds(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    data = load_image_folder(root, seed=3)
    train, val, test = _rows(data.train), _rows(data.val), _rows(data.test)
    assert (len(train), len(val), len(test)) == (28, 4, 8)
    assert sorted(train + val + test) == list(range(N))  # disjoint, and every image once
    again = load_image_folder(root, seed=3)
    assert (_rows(again.train), _rows(again.val), _rows(again.test)) == (train, val, test)
    assert _rows(load_image_folder(root, seed=4).test) != test
    no_val = load_image_folder(root, val_fraction=0, test_fraction=0.25)
    assert no_val.val is None and len(no_val.dataset("test")) == 10 and len(no_val.dataset("train")) == 30


def test_a_split_column_replaces_the_random_split(tmp_path: Path) -> None:
    names = ("train", "train", "train", "Val", "test ")  # case and spaces do not matter
    rows = [f"img/{k:02d}.png,{COLOURS[k % 3]},{_brightness(k)},{names[k % 5]}" for k in range(N)]
    data = load_image_folder(_folder(tmp_path, rows, "image,colour,brightness,fold"), split_column="fold")
    assert data.tasks == ["colour", "brightness"]  # the split column is not a task
    assert _rows(data.train) == [k for k in range(N) if k % 5 < 3]
    assert _rows(data.val) == [k for k in range(N) if k % 5 == 3]
    assert _rows(data.test) == [k for k in range(N) if k % 5 == 4]
    only_train = [row.rsplit(",", 1)[0] + ",train" for row in rows]
    data = load_image_folder(_folder(tmp_path / "b", only_train, "image,colour,brightness,fold"), split_column="fold")
    assert data.val is None and data.test is None and len(data.train) == N


def test_images_of_different_sizes_need_image_size(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    Image.fromarray(np.zeros((10, 8, 3), np.uint8)).save(root / "img" / "05.png")
    with pytest.raises(DataError, match=r"differ in size: .*00\.png is 8×8 .*05\.png is 10×8.*pass image_size"):
        load_image_folder(root)
    data = load_image_folder(root, image_size=8, val_fraction=0, test_fraction=0)
    assert _all(data)["x"].shape == (N, 3, 8, 8)


def _write(root: Path, text: str) -> Path:
    (root / "labels.csv").write_text(text)
    return root


@pytest.mark.parametrize(
    ("edit", "kwargs", "error", "message"),
    [
        (None, {"root_name": "absent"}, DataError, r"folder .*absent not found"),
        (None, {"labels": "other.csv"}, DataError, r"file .*other\.csv not found"),
        ("file,bright\nimg/00.png,1\n", {}, DataError, r"no column 'image' \(image_column\)"),
        ("image,bright\nimg/00.png,1\nimg/nope.png,0\n", {}, DataError, r"data row 2 .*nope\.png not found"),
        ("image,bright\n,1\n", {}, DataError, r"data row 1: the 'image' cell is empty"),
        (None, {"tasks": ["colour", "age"]}, DataError, r"no task column\(s\) \['age'\]"),
        ("image,bright,age\nimg/00.png,1,\nimg/01.png,0,na\n", {}, DataError, r"'age' has no label at all"),
        ("image,bright\n", {}, DataError, "no data rows"),
        ("", {}, DataError, "no data rows"),
        ("image\nimg/00.png\n", {}, DataError, "no label column besides 'image'"),
        (None, {"tasks": {"colour": "regression"}}, DataError, r"'colour' is regression but holds 'red'"),
        (None, {"tasks": {"colour": "binary"}}, DataError, r"'colour' is binary but has 3 distinct values"),
        (None, {"tasks": {"colour": "ordinal"}}, ConfigError, "task kinds must be one of"),
        (None, {"tasks": "colour"}, ConfigError, "tasks must be a list of column names"),
        (None, {"tasks": []}, ConfigError, "tasks is empty"),
        (None, {"tasks": ["image"]}, ConfigError, "'image' is the image column"),
        ("image,x\nimg/00.png,1\n", {}, ConfigError, "cannot be named 'x'"),
        (None, {"split_column": "fold"}, DataError, r"no column 'fold' \(split_column\)"),
        (None, {"split_column": "colour"}, DataError, r"data row 1: colour = 'red'; expected one of train, val, test"),
        (None, {"val_fraction": 0.5, "test_fraction": 0.5}, ConfigError, "sum below 1"),
        (None, {"val_fraction": -0.1}, ConfigError, "fractions must be ≥ 0"),
        (None, {"image_size": 0}, ConfigError, "image_size must be"),
        ("image,bright\nimg/00.png,1\nimg/01.png,0\n", {}, DataError, "cannot split 2 images"),
        ("image,fold,bright\nimg/00.png,val,1\n", {"split_column": "fold"}, DataError, "no image is in the training"),
    ],
)
def test_bad_inputs_raise_one_clear_error(
    tmp_path: Path, edit: str | None, kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    root = _folder(tmp_path)
    if edit is not None:
        _write(root, edit)
    if "root_name" in kwargs:
        root = tmp_path / kwargs.pop("root_name")
    with pytest.raises(error, match=message):
        load_image_folder(root, **kwargs)


def test_too_many_text_values_are_not_guessed_as_classes(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    _write(root, "image,note\n" + "".join(f"img/00.png,note {i}\n" for i in range(60)))
    with pytest.raises(DataError, match=r"60 distinct values, more than the 50 .*tasks=\{column: 'multiclass'\}"):
        load_image_folder(root)
    data = load_image_folder(root, tasks={"note": "multiclass"}, val_fraction=0, test_fraction=0)
    assert data.task_info["note"].num_outputs == 60


def test_an_absolute_labels_path_is_used_as_it_is(tmp_path: Path) -> None:
    root = _folder(tmp_path)
    elsewhere = tmp_path / "labels" / "tasks.csv"
    elsewhere.parent.mkdir()
    elsewhere.write_text((root / "labels.csv").read_text())
    (root / "labels.csv").unlink()
    assert len(load_image_folder(root, elsewhere, test_fraction=0.5).dataset("test")) == N // 2


# ImageAugmentation ----------------------------------------------------------------------------------------------


def _sample() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {"x": torch.rand(3, 6, 5, generator=generator) + 0.1, "label": torch.tensor(4)}  # no zero pixel


def test_no_flip_and_no_padding_is_the_identity() -> None:
    sample = _sample()
    out = ImageAugmentation()(sample)
    assert out is not sample and out.keys() == sample.keys()
    assert torch.equal(out["x"], sample["x"]) and out["label"] is sample["label"]


def test_hflip_flips_exactly_half_of_the_time() -> None:
    sample, augment = _sample(), ImageAugmentation(hflip=True)
    flipped = torch.flip(sample["x"], dims=[-1])
    fired = []
    for seed in range(200):
        torch.manual_seed(seed)
        image = augment(sample)["x"]
        assert image.shape == sample["x"].shape
        assert torch.equal(image, flipped) or torch.equal(image, sample["x"])
        fired.append(torch.equal(image, flipped))
    assert 70 < sum(fired) < 130  # p = 0.5: 100 ± 3.5 standard deviations
    assert not torch.equal(flipped, sample["x"])  # the image is not symmetric: a flip shows


def test_a_padded_crop_is_a_shifted_window_of_the_zero_padded_image() -> None:
    sample, p = _sample(), 2
    padded = torch.nn.functional.pad(sample["x"], (p, p, p, p))
    assert padded.shape == (3, 10, 9)
    offsets = set()
    for seed in range(300):  # all 25 shifts turn up with probability 1 − 25 · (24/25)³⁰⁰ > 1 − 1e-4
        torch.manual_seed(seed)
        image = ImageAugmentation(crop_padding=p)(sample)["x"]
        assert image.shape == (3, 6, 5)
        found = [
            (i, j)
            for i in range(2 * p + 1)
            for j in range(2 * p + 1)
            if torch.equal(image, padded[:, i : i + 6, j : j + 5])
        ]
        assert len(found) == 1  # every pixel > 0: one window matches
        offsets.add(found[0])
    assert len(offsets) == 25  # all (2p + 1)² shifts occur


def test_the_same_global_seed_gives_the_same_augmentation() -> None:
    sample, augment = _sample(), ImageAugmentation(hflip=True, crop_padding=3)
    torch.manual_seed(7)
    first = augment(sample)["x"]
    torch.manual_seed(7)
    assert torch.equal(augment(sample)["x"], first)
    outputs = []
    for seed in range(5):
        torch.manual_seed(seed)
        outputs.append(augment(sample)["x"])
    assert any(not torch.equal(outputs[0], other) for other in outputs[1:])


def test_the_randomness_comes_from_the_global_generator() -> None:
    torch.manual_seed(0)
    fresh = torch.rand(4)
    torch.manual_seed(0)
    ImageAugmentation(hflip=True, crop_padding=1)(_sample())
    assert not torch.equal(torch.rand(4), fresh)  # the augmentation drew from it


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"crop_padding": -1}, "crop_padding must be an int ≥ 0"),
        ({"crop_padding": 1.5}, "crop_padding must be an int ≥ 0"),
        ({"hflip": "yes"}, "hflip must be True or False"),
        ({"key": ""}, "key must name the image column"),
    ],
)
def test_bad_augmentation_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ImageAugmentation(**kwargs)


@pytest.mark.parametrize(
    ("sample", "message"),
    [
        ({"image": torch.zeros(3, 4, 4)}, r"no column 'x'; it has \['image'\]"),
        ({"x": torch.zeros(2, 3, 4, 4)}, r"one image \[C, H, W\] .*got \(2, 3, 4, 4\)"),
        ({"x": torch.zeros(4, 4)}, r"got \(4, 4\)"),
    ],
)
def test_bad_samples(sample: dict[str, torch.Tensor], message: str) -> None:
    with pytest.raises(DataError, match=message):
        ImageAugmentation(hflip=True)(sample)


def test_doctests() -> None:
    assert doctest.testmod(augment_module, raise_on_error=True).failed == 0


# The image_folder config type -----------------------------------------------------------------------------------


def _config(tmp_path: Path, **data: object) -> Path:
    root = _folder(tmp_path)
    config = {
        "name": "photos",
        "data": {"type": "image_folder", "root": root.name, "image_size": 8, "transform": {"hflip": True}, **data},
        "tasks": [
            {"name": "bright", "kind": "binary", "metrics": ["accuracy"]},
            {"name": "colour", "kind": "multiclass", "metrics": ["accuracy"]},
            {"name": "brightness", "kind": "regression"},
        ],
        "model": {"type": "hard_sharing", "encoder": {"type": "cnn", "channels": [4], "hidden": [8]}},
        "training": {"epochs": 2, "batch_size": 8},
        "compare": {"methods": ["stl", "mtl"]},
        "analysis": {"report": False},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_config_trains_on_an_image_folder(tmp_path: Path) -> None:
    output = tmp_path / "run"
    assert main(["train", str(_config(tmp_path)), "--output", str(output)]) == 0
    lines = (output / "results.csv").read_text().splitlines()[1:]
    found = {(line.split(",")[0], line.split(",")[1]) for line in lines}
    assert found >= {(method, task) for method in ("stl", "mtl") for task in ("bright", "colour", "brightness")}
    accuracy = [float(line.split(",")[3]) for line in lines if line.startswith("mtl,colour,accuracy")]
    assert len(accuracy) == 1 and 0 <= accuracy[0] <= 1


def test_the_config_section_builds_the_loader_arguments_and_the_transform(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path))
    assert isinstance(config.data, ImageFolderDataConfig)
    assert config.data.root == (tmp_path / "photos").resolve()  # relative to the config's folder
    assert config.data.transform is not None
    augment = config.data.transform.build()
    assert isinstance(augment, ImageAugmentation) and augment.hflip and augment.crop_padding == 0
    data = load_data(config)
    assert isinstance(data, MultiTaskData) and data.tasks == ["bright", "colour", "brightness"]
    assert (len(data.dataset("train")), len(data.dataset("val")), len(data.dataset("test"))) == (28, 4, 8)


def test_the_config_kinds_are_the_loaders_kinds(tmp_path: Path) -> None:
    path = _config(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["tasks"] = [raw["tasks"][0], {"name": "colour", "kind": "regression"}]
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(DataError, match="'colour' is regression but holds"):
        load_data(load_config(path))


@pytest.mark.parametrize(
    ("data", "tasks", "message"),
    [
        ({"root": "missing"}, None, r"data\.root: folder not found"),
        ({"image_size": 0}, None, "image_size must be a positive int"),
        ({"image_size": [8, -1]}, None, "image_size must be a positive int"),
        ({"val_fraction": 0.5, "test_fraction": 0.5}, None, "must be below 1"),
        ({"split_column": "image"}, None, "split_column and image_column are both 'image'"),
        ({"transform": {"crop_padding": -1}}, None, r"data\.transform\.crop_padding"),
        ({"transform": {"vflip": True}}, None, r"vflip: unknown key; did you mean 'hflip'\? allowed keys: hflip"),
        ({}, [{"name": "bright", "kind": "binary", "column": "b"}], "leave column and positive out"),
        ({}, [{"name": "brightness", "kind": "regression", "dense": True}], "are not per-pixel"),
    ],
)
def test_bad_image_folder_configs(
    tmp_path: Path, data: dict[str, object], tasks: list[dict[str, object]] | None, message: str
) -> None:
    path = _config(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["data"].update(data)
    if tasks is not None:
        raw["tasks"] = tasks
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match=message):
        load_config(path)


def test_images_need_a_cnn_encoder(tmp_path: Path) -> None:
    path = _config(tmp_path)
    raw = yaml.safe_load(path.read_text())
    raw["model"]["encoder"] = {"type": "mlp", "hidden": [8]}
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="data type image_folder gives images: use type cnn"):
        load_config(path)
