"""A transformer encoder from a config: its tokenizer reads the text, adapters per task, the cross-section rules."""

from __future__ import annotations

import csv
import random
import sys
from pathlib import Path
from typing import Any

import pytest

from multitask.config import parse_config
from multitask.errors import ConfigError
from multitask.experiment import build_model, build_tasks, load_data, run_experiment
from multitask.models import TaskLoRA, TransformerEncoder

pytest.importorskip("transformers")
sys.path.insert(0, str(Path(__file__).parent / "models"))
from _tiny_bert import WORDS, write_tiny_bert


def _reviews(folder: Path) -> Path:
    rows = random.Random(0)
    path = folder / "reviews.csv"
    good, bad = ["good", "great", "fun", "liked"], ["bad", "awful", "boring", "hated"]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label", "source"])
        for source in ("films", "plays"):
            for index in range(100):
                label = index % 2
                words = [*rows.sample(WORDS, 3), *rows.choices(good if label else bad, k=2)]
                writer.writerow([" ".join(words), label, source])
    return path


def _config(folder: Path, **model: Any) -> dict[str, Any]:
    bert = write_tiny_bert(folder / "bert")
    return {
        "data": {"type": "movie_reviews", "path": str(_reviews(folder)), "max_length": 12},
        "tasks": [{"name": "films", "kind": "binary"}, {"name": "plays", "kind": "binary"}],
        "model": {"encoder": {"type": "transformer", "path": str(bert), "pooling": "mean"}, **model},
        "training": {"epochs": 2, "batch_size": 16, "optimizer": {"lr": 0.003}},
        "compare": {"methods": ["stl", "mtl"]},
    }


def test_the_encoders_tokenizer_reads_the_text_and_adapters_train(tmp_path: Path) -> None:
    config = parse_config(_config(tmp_path, type="task_lora", rank=2, scheme="mtl_lora"), base_dir=tmp_path)
    assert config.input_key == ("input_ids", "attention_mask")
    data = load_data(config)
    assert isinstance(data.train, dict) and set(data.train["films"].columns) >= {"input_ids", "attention_mask"}
    encoder = config.model.encoder.build()
    assert isinstance(encoder, TransformerEncoder) and encoder.pooling == "mean"
    tasks = build_tasks(config, data, encoder.out_features)
    model = build_model(config, "task_lora", 0)(tasks)
    assert isinstance(model, TaskLoRA) and len(model.adapted) == 4
    comparison = run_experiment(config, output=tmp_path / "run", progress=False)
    assert set(comparison.results) == {"stl", "mtl"}
    assert all(0.0 <= comparison.results["mtl"][t]["accuracy"] <= 1.0 for t in ("films", "plays"))


def test_hard_sharing_fine_tunes_the_whole_encoder_from_a_config(tmp_path: Path) -> None:
    config = parse_config(_config(tmp_path), base_dir=tmp_path)
    comparison = run_experiment(config, output=tmp_path / "run", progress=False)
    assert set(comparison.results) == {"stl", "mtl"}


def test_a_transformer_needs_text_and_a_checkpoint_folder(tmp_path: Path) -> None:
    raw = _config(tmp_path)
    raw["data"] = {"type": "census_income"}
    raw["tasks"] = [{"name": "income", "kind": "binary"}]
    with pytest.raises(ConfigError, match=r"model\.encoder\.type: data type census_income gives feature vectors"):
        parse_config(raw, base_dir=tmp_path)
    raw = _config(tmp_path)
    raw["model"]["encoder"]["path"] = str(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match=r"model\.encoder\.path: no Hugging Face checkpoint \(config\.json\)"):
        parse_config(raw, base_dir=tmp_path)
    raw = _config(tmp_path)
    raw["model"]["encoder"]["pooling"] = "max"
    with pytest.raises(ConfigError, match=r"model\.encoder\.pooling"):
        parse_config(raw, base_dir=tmp_path)


def test_shared_private_on_a_transformer_from_a_config(tmp_path: Path) -> None:
    config = parse_config(_config(tmp_path, type="shared_private"), base_dir=tmp_path)
    data = load_data(config)
    tasks = build_tasks(config, data, 32)
    model = build_model(config, "shared_private", 0)(tasks)
    outputs = model({**data.train["films"][:4]}, ["films"])
    assert tuple(outputs["films"].shape) == (4, 1) and tuple(model.shared_features().shape) == (4, 32)
